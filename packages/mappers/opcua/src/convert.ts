// SPDX-License-Identifier: Apache-2.0
// OPC UA Variant <-> property values. Reads convert the node's value to the model type;
// writes coerce the model value to the node's built-in DataType, refusing values that do
// not fit (range, integrality, format) with a message naming the limit.
import { formatValue, MapperError, type PropertyType, type PropertyValue } from '@mapperkit/framework';
import { DataType, Variant, VariantArrayType } from 'node-opcua';

type Int64Pair = [number, number];

function isInt64Pair(v: unknown): v is Int64Pair {
  return Array.isArray(v) && v.length === 2 && typeof v[0] === 'number' && typeof v[1] === 'number';
}

function pairToBigInt(pair: Int64Pair, signed: boolean): bigint {
  const u = (BigInt(pair[0] >>> 0) << 32n) | BigInt(pair[1] >>> 0);
  return signed ? BigInt.asIntN(64, u) : u;
}

function bigIntToPair(v: bigint): Int64Pair {
  const u = BigInt.asUintN(64, v);
  return [Number(u >> 32n), Number(u & 0xffffffffn)];
}

/** The shortest decimal that rounds to the same float32 as `x`. */
export function shortestFloat32(x: number): number {
  if (!Number.isFinite(x)) return x;
  const f = Math.fround(x);
  for (let p = 1; p <= 9; p++) {
    const d = Number(f.toPrecision(p));
    if (Math.fround(d) === f) return d;
  }
  return f;
}

function safe(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** A scalar of a Variant as a JS value: Int64/UInt64 as bigint, everything else as node-opcua gives it. */
function scalar(dataType: DataType, v: unknown): unknown {
  if ((dataType === DataType.Int64 || dataType === DataType.UInt64) && isInt64Pair(v)) return pairToBigInt(v, dataType === DataType.Int64);
  return v;
}

function describe(dataType: DataType): string {
  return DataType[dataType] ?? `DataType ${dataType}`;
}

/** JSON-able form of a scalar (arrays read into STRING properties). */
function jsonable(dataType: DataType, v: unknown): unknown {
  const s = scalar(dataType, v);
  if (typeof s === 'bigint') {
    const n = safe(s);
    return typeof n === 'number' ? n : n.toString();
  }
  if (dataType === DataType.Float && typeof s === 'number') return shortestFloat32(s);
  return textOf(dataType, s, true);
}

/** Text of a scalar for STRING properties (upstream: strings as is, numbers shortest decimal). */
function textOf(dataType: DataType, v: unknown, keepPrimitives = false): unknown {
  if (v === null || v === undefined) return keepPrimitives ? null : '';
  switch (typeof v) {
    case 'string':
      return v;
    case 'number':
      if (dataType === DataType.Float) return keepPrimitives ? shortestFloat32(v) : formatValue(shortestFloat32(v));
      return keepPrimitives ? v : formatValue(v);
    case 'bigint':
    case 'boolean':
      return keepPrimitives ? v : formatValue(v);
  }
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? '' : v.toISOString();
  if (Buffer.isBuffer(v)) return v.toString('utf8'); // upstream: ByteString as raw text
  if (dataType === DataType.LocalizedText) return (v as { text?: string | null }).text ?? '';
  if (dataType === DataType.QualifiedName) return (v as { name?: string | null }).name ?? '';
  if (dataType === DataType.StatusCode) return (v as { name?: string }).name ?? String(v);
  if (dataType === DataType.NodeId || dataType === DataType.ExpandedNodeId) return String(v);
  const json = (v as { toJSON?: () => unknown }).toJSON?.() ?? v;
  return JSON.stringify(json);
}

function numberOf(dataType: DataType, v: unknown): number | bigint | undefined {
  const s = scalar(dataType, v);
  if (typeof s === 'number' || typeof s === 'bigint') return s;
  if (typeof s === 'boolean') return s ? 1 : 0;
  if (dataType === DataType.StatusCode && s && typeof s === 'object' && 'value' in s) return Number((s as { value: number }).value);
  return undefined;
}

/**
 * Converts a Variant read from `node` to a value of the model type. Throws
 * MapperError('DeviceError') when the value cannot be represented (an array in a numeric
 * property, text that is not a number, an empty value).
 */
export function fromVariant(variant: { dataType: DataType; arrayType: VariantArrayType; value: unknown }, type: PropertyType, node: string): PropertyValue {
  const { dataType, value } = variant;
  const fail = (why: string): never => {
    throw new MapperError('DeviceError', `node ${node} (${describe(dataType)}): ${why}`);
  };
  if (variant.arrayType !== VariantArrayType.Scalar) {
    const items = Array.from((value ?? []) as ArrayLike<unknown>);
    if (type === 'string') return JSON.stringify(items.map((x) => jsonable(dataType, x)));
    return fail(`holds an array of ${items.length} values; read it into a STRING property (JSON text)`);
  }
  if (dataType === DataType.Null || value === null || value === undefined) return fail('has no value (Null)');
  switch (type) {
    case 'int': {
      const n = numberOf(dataType, value);
      if (typeof n === 'bigint') return safe(n);
      if (typeof n === 'number') {
        if (!Number.isFinite(n)) return fail(`${n} is not a finite number`);
        return Math.trunc(n);
      }
      if (typeof value === 'string' && /^\s*[+-]?\d+\s*$/.test(value)) return safe(BigInt(value.trim()));
      return fail(`cannot be read as an integer`);
    }
    case 'float':
    case 'double': {
      const n = numberOf(dataType, value);
      let x: number | undefined = n === undefined ? undefined : Number(n);
      if (x === undefined && typeof value === 'string' && value.trim() !== '') x = Number(value);
      if (x === undefined || Number.isNaN(x)) return fail(`cannot be read as a number`);
      // A float32 (model FLOAT, or a Float node) as the shortest decimal that is the same float32:
      // 0.1f reads as 0.1, not 0.10000000149011612.
      return type === 'float' || dataType === DataType.Float ? shortestFloat32(x) : x;
    }
    case 'boolean': {
      if (typeof value === 'boolean') return value;
      const n = numberOf(dataType, value);
      if (n !== undefined) return Number(n) !== 0;
      if (typeof value === 'string') {
        const s = value.trim().toLowerCase();
        if (s === 'true' || s === '1') return true;
        if (s === 'false' || s === '0') return false;
      }
      return fail('cannot be read as a boolean');
    }
    case 'string': {
      const s = scalar(dataType, value);
      return textOf(dataType, s) as string;
    }
    case 'bytes': {
      if (Buffer.isBuffer(value)) return new Uint8Array(value);
      if (typeof value === 'string') return new Uint8Array(Buffer.from(value, 'utf8'));
      return fail('cannot be read as bytes (expected ByteString or String)');
    }
    case 'stream':
      throw new MapperError('Unsupported', `node ${node}: STREAM properties are not supported by the OPC UA driver`);
  }
}

const INT_RANGES: Partial<Record<DataType, readonly [bigint, bigint]>> = {
  [DataType.SByte]: [-128n, 127n],
  [DataType.Byte]: [0n, 255n],
  [DataType.Int16]: [-32768n, 32767n],
  [DataType.UInt16]: [0n, 65535n],
  [DataType.Int32]: [-2147483648n, 2147483647n],
  [DataType.UInt32]: [0n, 4294967295n],
  [DataType.Int64]: [-(2n ** 63n), 2n ** 63n - 1n],
  [DataType.UInt64]: [0n, 2n ** 64n - 1n],
};

const FLOAT_MAX = 3.4028234663852886e38;
const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** Coerces one scalar to `dataType`; throws MapperError('WriteRejected') naming the limit. */
function coerceScalar(v: unknown, dataType: DataType, node: string): unknown {
  const name = describe(dataType);
  const reject = (why: string): never => {
    throw new MapperError('WriteRejected', `node ${node} has DataType ${name}: ${why}`);
  };
  const shown = (): string => (v instanceof Uint8Array ? `<${v.length} bytes>` : typeof v === 'string' ? JSON.stringify(v) : String(v));
  const range = INT_RANGES[dataType];
  if (range) {
    let big: bigint;
    if (typeof v === 'bigint') big = v;
    else if (typeof v === 'number') {
      if (!Number.isInteger(v)) return reject(`${shown()} is not an integer`);
      big = BigInt(v);
    } else if (typeof v === 'boolean') big = v ? 1n : 0n;
    else if (typeof v === 'string' && /^\s*[+-]?\d+\s*$/.test(v)) big = BigInt(v.trim());
    else return reject(`${shown()} is not an integer`);
    if (big < range[0] || big > range[1]) return reject(`${big} is outside ${range[0]}..${range[1]}`);
    return dataType === DataType.Int64 || dataType === DataType.UInt64 ? bigIntToPair(big) : Number(big);
  }
  switch (dataType) {
    case DataType.Boolean:
      if (typeof v === 'boolean') return v;
      if (v === 0 || v === 1 || v === 0n || v === 1n) return Number(v) === 1;
      if (typeof v === 'string' && /^(true|false|1|0)$/i.test(v.trim())) return /^(true|1)$/i.test(v.trim());
      return reject(`${shown()} is not a boolean`);
    case DataType.Float:
    case DataType.Double: {
      const n = typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : typeof v === 'boolean' ? Number(v) : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
      if (!Number.isFinite(n)) return reject(`${shown()} is not a finite number`);
      if (dataType === DataType.Float && Math.abs(n) > FLOAT_MAX) return reject(`${n} is outside the Float range ±${FLOAT_MAX}`);
      return dataType === DataType.Float ? Math.fround(n) : n;
    }
    case DataType.String:
    case DataType.XmlElement:
      return v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : formatValue(v as PropertyValue);
    case DataType.LocalizedText:
      return { text: v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : formatValue(v as PropertyValue) };
    case DataType.ByteString:
      if (v instanceof Uint8Array) return Buffer.from(v);
      if (typeof v === 'string') return Buffer.from(v, 'utf8');
      return reject(`${shown()} is not bytes`);
    case DataType.DateTime: {
      const d = typeof v === 'number' ? new Date(v) : typeof v === 'string' ? new Date(v) : undefined;
      if (!d || Number.isNaN(d.getTime())) return reject(`${shown()} is not a date (ISO 8601 text or ms since epoch)`);
      return d;
    }
    case DataType.Guid:
      if (typeof v === 'string' && GUID.test(v.trim())) return v.trim();
      return reject(`${shown()} is not a GUID`);
    default:
      throw new MapperError('Unsupported', `node ${node}: writing DataType ${name} is not supported`);
  }
}

/**
 * Builds the Variant to write: `value` (already of the model type) coerced to the node's
 * built-in `dataType`. For array nodes (`valueRank` ≥ 1) the value is JSON array text.
 */
export function toVariant(value: PropertyValue, dataType: DataType, valueRank: number, node: string): Variant {
  if (valueRank >= 1 || valueRank === 0 /* OneOrMoreDimensions */) {
    let items: unknown;
    try {
      items = typeof value === 'string' ? JSON.parse(value) : undefined;
    } catch {
      items = undefined;
    }
    if (!Array.isArray(items)) throw new MapperError('WriteRejected', `node ${node} is an array of ${describe(dataType)}; write it as JSON array text, e.g. [1,2,3]`);
    return new Variant({ dataType, arrayType: VariantArrayType.Array, value: items.map((x: unknown) => coerceScalar(x, dataType, node)) });
  }
  return new Variant({ dataType, arrayType: VariantArrayType.Scalar, value: coerceScalar(value, dataType, node) });
}

/** The DataType enum value of a built-in type name. */
export function dataTypeOf(name: string): DataType {
  const v = (DataType as unknown as Record<string, DataType>)[name];
  if (v === undefined) throw new MapperError('InvalidConfig', `unknown OPC UA built-in type ${name}`);
  return v;
}
