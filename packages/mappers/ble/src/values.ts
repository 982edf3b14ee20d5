// SPDX-License-Identifier: Apache-2.0
// A property's bytes <-> its typed value, as the visitor says.
import { formatValue, MapperError, parseValue, type PropertyType, type PropertyValue } from '@mapperkit/framework';
import { shortestFloat32 } from '@mapperkit/framework/dmi';
import type { BleVisitor } from './config.js';
import { applyOperations, decodeTyped, encodeTyped, formatGoFloat, invertOperations, isIntegerFormat, upstreamConvert } from './converter.js';

/** Upstream's Go zero values: the converter of a visitor that gives only orderOfOperations. */
const NO_CONVERTER = { startIndex: 0, endIndex: 0, shiftLeft: 0, shiftRight: 0 } as const;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * A number (from a converter) as a value of the model type. `upstream` numbers become
 * upstream's `%f` text in STRING properties. After arithmetic, float64 noise is removed by
 * keeping 15 significant digits (2150 × 0.01 is 21.500000000000004 in float64); FLOAT
 * properties are float32, as in KubeEdge, and take the shortest decimal that is that float32.
 */
function fromNumber(n: number | bigint, type: PropertyType, flavour: 'upstream' | 'typed', arithmetic = false): PropertyValue {
  if (typeof n === 'number' && type !== 'string') {
    if (arithmetic && Number.isFinite(n) && n !== 0) n = Number(n.toPrecision(15));
    if (type === 'float' && Number.isFinite(n)) n = shortestFloat32(Math.fround(n));
  }
  if (typeof n === 'bigint') {
    switch (type) {
      case 'int':
        return n;
      case 'float':
      case 'double':
        return Number(n);
      case 'boolean':
        return n !== 0n;
      case 'string':
        return flavour === 'upstream' ? formatGoFloat(Number(n)) : n.toString();
      default:
        throw new MapperError('Unsupported', `a ${type} property cannot take a converted number`);
    }
  }
  switch (type) {
    case 'int': {
      if (!Number.isFinite(n)) throw new MapperError('DeviceError', `converted value ${n} is not a finite number`);
      const t = Math.trunc(n);
      return Number.isSafeInteger(t) ? t : BigInt(t);
    }
    case 'float':
    case 'double':
      return n;
    case 'boolean':
      return n !== 0;
    case 'string':
      return flavour === 'upstream' ? formatGoFloat(n) : formatValue(n);
    default:
      throw new MapperError('Unsupported', `a ${type} property cannot take a converted number`);
  }
}

function fromText(text: string, type: PropertyType): PropertyValue {
  if (type === 'string') return text;
  try {
    return parseValue(text, type);
  } catch (err) {
    throw new MapperError('DeviceError', `the device sent "${text}", which is not a ${type}`, { cause: err });
  }
}

/**
 * Decodes a characteristic value for a property:
 * 1. `bytes` properties get the raw value;
 * 2. `dataFormat` → typed decode at `offset`, then `orderOfOperations`;
 * 3. any upstream converter key (`startIndex`, `endIndex`, shifts, `orderOfOperations`) → upstream's converter;
 * 4. `dataWrite` whose bytes equal the value → that entry's name (a switch reads back `ON`);
 * 5. `string` properties → UTF-8 text; `boolean` properties → whether any byte is non-zero;
 * 6. numeric properties without any of the above → MapperError('InvalidConfig') asking for
 *    dataFormat (upstream silently read byte 0 as a decimal number here).
 * Throws MapperError('DeviceError') when the value does not fit the visitor.
 */
export function decodeValue(data: Uint8Array, visitor: BleVisitor, type: PropertyType): PropertyValue {
  if (type === 'bytes') return new Uint8Array(data);
  if (type === 'stream') throw new MapperError('Unsupported', 'BLE characteristics cannot back stream properties');
  if (visitor.format) {
    const r = decodeTyped(data, visitor.format, visitor.offset, visitor.byteOrder);
    if (typeof r === 'string') return fromText(r, type);
    if (visitor.operations.length > 0) return fromNumber(applyOperations(Number(r), visitor.operations), type, 'typed', true);
    return fromNumber(r, type, 'typed');
  }
  if (visitor.converter || visitor.operations.length > 0) {
    return fromNumber(upstreamConvert(data, visitor.converter ?? NO_CONVERTER, visitor.operations), type, 'upstream', visitor.operations.length > 0);
  }
  if (visitor.dataWrite) {
    for (const [name, bytes] of visitor.dataWrite) {
      if (!sameBytes(bytes, data)) continue;
      try {
        return type === 'string' ? name : parseValue(name, type);
      } catch {
        break;
      }
    }
  }
  if (type === 'string') return Buffer.from(data).toString('utf8').replace(/\0+$/, '');
  if (type === 'boolean') return data.some((b) => b !== 0);
  // Upstream silently applied its converter's zero defaults here (byte 0 as a decimal number,
  // kubeedge/kubeedge#734); guessing a width would be as silent, so ask for one instead.
  throw new MapperError(
    'InvalidConfig',
    `a ${type} property needs dataFormat (e.g. uint8, int16, float32) or upstream's startIndex/endIndex to decode the characteristic's ${data.length}-byte value`,
    { key: 'dataFormat' },
  );
}

/**
 * Encodes a value to write:
 * 1. a `dataWrite` entry named like the value's text (exact, then case-insensitive); without
 *    `dataFormat`, a value missing from `dataWrite` is refused;
 * 2. `dataFormat` → typed encode, after undoing `orderOfOperations`;
 * 3. `string` → UTF-8 bytes (what the last upstream mapper wrote), `bytes` → as is,
 *    `boolean` → one byte 1/0.
 * Throws MapperError('WriteRejected') naming what is missing.
 */
export function encodeValue(value: PropertyValue, visitor: BleVisitor, type: PropertyType): Uint8Array {
  const text = formatValue(value);
  if (visitor.dataWrite) {
    const exact = visitor.dataWrite.get(text);
    if (exact) return exact;
    const lower = text.toLowerCase();
    for (const [name, bytes] of visitor.dataWrite) if (name.toLowerCase() === lower) return bytes;
  }
  if (!visitor.format && visitor.dataWrite) {
    // A dataWrite map lists the values the device understands; anything else is refused.
    throw new MapperError('WriteRejected', `no dataWrite entry for "${text}" (dataWrite has ${[...visitor.dataWrite.keys()].map((k) => `"${k}"`).join(', ') || 'no entries'})`);
  }
  if (visitor.format) {
    if (visitor.format === 'utf8' || visitor.format === 'hex') return encodeTyped(text, visitor.format, visitor.byteOrder);
    let raw: number | bigint;
    if (typeof value === 'boolean') raw = value ? 1 : 0;
    else if (typeof value === 'bigint') raw = value;
    else if (typeof value === 'number') raw = value;
    else if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) raw = Number(value);
    else throw new MapperError('WriteRejected', `"${text}" is not a number, so it cannot be written as ${visitor.format}`);
    if (visitor.operations.length > 0) {
      raw = invertOperations(Number(raw), visitor.operations);
      if (isIntegerFormat(visitor.format)) raw = Math.round(raw);
    }
    return encodeTyped(raw, visitor.format, visitor.byteOrder);
  }
  if (type === 'string' && typeof value === 'string') return new Uint8Array(Buffer.from(value, 'utf8'));
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'boolean') return new Uint8Array([value ? 1 : 0]);
  throw new MapperError('WriteRejected', `a ${type} value needs dataWrite or dataFormat to be written; add one of them to the visitor`);
}
