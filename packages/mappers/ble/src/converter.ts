// SPDX-License-Identifier: Apache-2.0
// Bytes <-> values: the legacy KubeEdge BLE data converter (kept exactly), typed decodes and
// encodes, the ordered arithmetic operations, and the data-write byte strings.
import { MapperError } from '@mapperkit/framework';

/** Operation names as upstream spells them; matched case-insensitively. */
export const OPERATION_TYPES = ['Add', 'Subtract', 'Multiply', 'Divide'] as const;
export type OperationType = (typeof OPERATION_TYPES)[number];

/** One step of `orderOfOperations`. */
export interface Operation {
  readonly type: OperationType;
  readonly value: number;
}

/** The index/shift part of upstream's `dataConverter`. */
export interface UpstreamConverter {
  readonly startIndex: number;
  readonly endIndex: number;
  readonly shiftLeft: number;
  readonly shiftRight: number;
}

/** Typed decodes (and encodes) offered next to the upstream converter. */
export const DATA_FORMATS = ['int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float32', 'float64', 'utf8', 'hex'] as const;
export type DataFormat = (typeof DATA_FORMATS)[number];
export type ByteOrder = 'little' | 'big';

const WIDTH: Readonly<Record<DataFormat, number>> = {
  int8: 1,
  uint8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  int64: 8,
  uint64: 8,
  float32: 4,
  float64: 8,
  utf8: 0,
  hex: 0,
};

/** Bytes a fixed-width format needs (0 for `utf8`/`hex`, which take the rest of the value). */
export function formatWidth(format: DataFormat): number {
  return WIDTH[format];
}

export function isIntegerFormat(format: DataFormat): boolean {
  return format.startsWith('int') || format.startsWith('uint');
}

const UINT64_MAX = (1n << 64n) - 1n;

/** Parses an operation name case-insensitively; `undefined` when it is none of Add/Subtract/Multiply/Divide. */
export function operationType(name: string): OperationType | undefined {
  const upper = name.trim().toUpperCase();
  return OPERATION_TYPES.find((t) => t.toUpperCase() === upper);
}

/**
 * The bytes upstream's converter looks at, as an unsigned integer, exactly as the legacy
 * mapper computes it: bytes from `startIndex` to `endIndex` inclusive (walking down when
 * start > end, which is how upstream expresses byte order), the **decimal text** of each
 * byte concatenated (`[0x01, 0x2c]` → `"144"`, not 300), parsed as a base-10 uint64
 * (Go's ParseUint: clamps to 2^64-1 on overflow), then `shiftLeft` (wrapping at 64 bits)
 * or, only when shiftLeft is 0, `shiftRight`.
 *
 * Throws MapperError('DeviceError') when an index is outside the value (upstream indexes the
 * slice unchecked and panics).
 */
export function upstreamRaw(data: Uint8Array, conv: UpstreamConverter): bigint {
  const { startIndex, endIndex } = conv;
  const last = Math.max(startIndex, endIndex);
  if (last >= data.length) {
    throw new MapperError('DeviceError', `dataConverter index ${last} is outside the ${data.length}-byte value${data.length === 0 ? ' (noble reports a failed GATT read as an empty value)' : ''}`);
  }
  let text = '';
  if (startIndex <= endIndex) for (let i = startIndex; i <= endIndex; i++) text += String(data[i]);
  else for (let i = startIndex; i >= endIndex; i--) text += String(data[i]);
  let v = BigInt(text);
  if (v > UINT64_MAX) v = UINT64_MAX;
  if (conv.shiftLeft !== 0) v = conv.shiftLeft >= 64 ? 0n : (v << BigInt(conv.shiftLeft)) & UINT64_MAX;
  else if (conv.shiftRight !== 0) v = conv.shiftRight >= 64 ? 0n : v >> BigInt(conv.shiftRight);
  return v;
}

/** Applies `orderOfOperations` in list order, in float64 (upstream's `finalResult`). */
export function applyOperations(n: number, ops: readonly Operation[]): number {
  let r = n;
  for (const op of ops) {
    switch (op.type) {
      case 'Add':
        r += op.value;
        break;
      case 'Subtract':
        r -= op.value;
        break;
      case 'Multiply':
        r *= op.value;
        break;
      case 'Divide':
        r /= op.value;
        break;
    }
  }
  return r;
}

/**
 * Undoes `orderOfOperations` (inverse operations in reverse order), to turn a value to write
 * into the raw number the device stores. Throws MapperError('WriteRejected') for a Multiply by
 * 0 or Divide by 0, which cannot be undone.
 */
export function invertOperations(n: number, ops: readonly Operation[]): number {
  let r = n;
  for (let i = ops.length - 1; i >= 0; i--) {
    const op = ops[i]!;
    switch (op.type) {
      case 'Add':
        r -= op.value;
        break;
      case 'Subtract':
        r += op.value;
        break;
      case 'Multiply':
        if (op.value === 0) throw new MapperError('WriteRejected', 'orderOfOperations multiplies by 0, so a written value cannot be converted back to bytes');
        r /= op.value;
        break;
      case 'Divide':
        if (op.value === 0) throw new MapperError('WriteRejected', 'orderOfOperations divides by 0, so a written value cannot be converted back to bytes');
        r *= op.value;
        break;
    }
  }
  return r;
}

/** Upstream's whole `ConvertReadData`: {@link upstreamRaw} as float64, then the operations. */
export function upstreamConvert(data: Uint8Array, conv: UpstreamConverter, ops: readonly Operation[]): number {
  return applyOperations(Number(upstreamRaw(data, conv)), ops);
}

/** A float64 as Go's `fmt.Sprintf("%f", v)` prints it (how upstream reported every BLE value). */
export function formatGoFloat(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  const neg = n < 0 || Object.is(n, -0);
  const abs = Math.abs(n);
  // toFixed switches to exponent notation from 1e21; such doubles are integers, so BigInt is exact.
  const text = abs < 1e21 ? abs.toFixed(6) : `${BigInt(abs).toString()}.000000`;
  return neg ? `-${text}` : text;
}

/**
 * Decodes a typed value at `offset`: integers as number (bigint beyond 2^53 for 64-bit),
 * floats as number, `utf8` as text (trailing NULs removed: devices pad fixed-size strings),
 * `hex` as lower-case hex text. Throws MapperError('DeviceError') when the value is too short.
 */
export function decodeTyped(data: Uint8Array, format: DataFormat, offset: number, order: ByteOrder): number | bigint | string {
  const need = offset + WIDTH[format];
  if (data.length < need) {
    throw new MapperError(
      'DeviceError',
      `${format} at offset ${offset} needs ${need} bytes, the value has ${data.length}${data.length === 0 ? ' (noble reports a failed GATT read as an empty value)' : ''}`,
    );
  }
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const le = order === 'little';
  switch (format) {
    case 'int8':
      return buf.readInt8(offset);
    case 'uint8':
      return buf.readUInt8(offset);
    case 'int16':
      return le ? buf.readInt16LE(offset) : buf.readInt16BE(offset);
    case 'uint16':
      return le ? buf.readUInt16LE(offset) : buf.readUInt16BE(offset);
    case 'int32':
      return le ? buf.readInt32LE(offset) : buf.readInt32BE(offset);
    case 'uint32':
      return le ? buf.readUInt32LE(offset) : buf.readUInt32BE(offset);
    case 'int64':
      return safe(le ? buf.readBigInt64LE(offset) : buf.readBigInt64BE(offset));
    case 'uint64':
      return safe(le ? buf.readBigUInt64LE(offset) : buf.readBigUInt64BE(offset));
    case 'float32':
      return le ? buf.readFloatLE(offset) : buf.readFloatBE(offset);
    case 'float64':
      return le ? buf.readDoubleLE(offset) : buf.readDoubleBE(offset);
    case 'utf8':
      return buf.subarray(offset).toString('utf8').replace(/\0+$/, '');
    case 'hex':
      return buf.subarray(offset).toString('hex');
  }
}

function safe(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

const INT_RANGE: Readonly<Record<string, readonly [bigint, bigint]>> = {
  int8: [-(1n << 7n), (1n << 7n) - 1n],
  uint8: [0n, (1n << 8n) - 1n],
  int16: [-(1n << 15n), (1n << 15n) - 1n],
  uint16: [0n, (1n << 16n) - 1n],
  int32: [-(1n << 31n), (1n << 31n) - 1n],
  uint32: [0n, (1n << 32n) - 1n],
  int64: [-(1n << 63n), (1n << 63n) - 1n],
  uint64: [0n, UINT64_MAX],
};

/**
 * Encodes a value in a typed format (the inverse of {@link decodeTyped}). Integer formats take
 * a number (rounded to the nearest integer) or bigint and check the format's range; `utf8`
 * and `hex` take text. Throws MapperError('WriteRejected') naming the limit.
 */
export function encodeTyped(value: number | bigint | string, format: DataFormat, order: ByteOrder): Uint8Array {
  const le = order === 'little';
  if (format === 'utf8') return new Uint8Array(Buffer.from(String(value), 'utf8'));
  if (format === 'hex') {
    const t = String(value).trim().replace(/^0x/i, '').replace(/[\s:-]/g, '');
    if (t.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(t)) throw new MapperError('WriteRejected', `"${String(value)}" is not a hex byte string`);
    return new Uint8Array(Buffer.from(t, 'hex'));
  }
  const buf = Buffer.alloc(WIDTH[format]);
  if (format === 'float32' || format === 'float64') {
    const n = typeof value === 'string' ? Number(value) : Number(value);
    if (!Number.isFinite(n)) throw new MapperError('WriteRejected', `"${String(value)}" is not a finite number`);
    if (format === 'float32') {
      if (Math.abs(n) > 3.4028234663852886e38) throw new MapperError('WriteRejected', `value ${n} does not fit float32`);
      if (le) buf.writeFloatLE(n);
      else buf.writeFloatBE(n);
    } else if (le) buf.writeDoubleLE(n);
    else buf.writeDoubleBE(n);
    return new Uint8Array(buf);
  }
  let big: bigint;
  if (typeof value === 'bigint') big = value;
  else {
    const n = typeof value === 'string' ? Number(value) : value;
    if (!Number.isFinite(n)) throw new MapperError('WriteRejected', `"${String(value)}" is not a finite number`);
    big = BigInt(Math.round(n));
  }
  const [min, max] = INT_RANGE[format]!;
  if (big < min || big > max) throw new MapperError('WriteRejected', `value ${big} does not fit ${format} (${min}..${max})`);
  switch (format) {
    case 'int8':
      buf.writeInt8(Number(big));
      break;
    case 'uint8':
      buf.writeUInt8(Number(big));
      break;
    case 'int16':
      if (le) buf.writeInt16LE(Number(big));
      else buf.writeInt16BE(Number(big));
      break;
    case 'uint16':
      if (le) buf.writeUInt16LE(Number(big));
      else buf.writeUInt16BE(Number(big));
      break;
    case 'int32':
      if (le) buf.writeInt32LE(Number(big));
      else buf.writeInt32BE(Number(big));
      break;
    case 'uint32':
      if (le) buf.writeUInt32LE(Number(big));
      else buf.writeUInt32BE(Number(big));
      break;
    case 'int64':
      if (le) buf.writeBigInt64LE(big);
      else buf.writeBigInt64BE(big);
      break;
    case 'uint64':
      if (le) buf.writeBigUInt64LE(big);
      else buf.writeBigUInt64BE(big);
      break;
  }
  return new Uint8Array(buf);
}

/**
 * Parses `orderOfOperations` given as text, in either spelling:
 * - upstream's JSON: `[{"operationType":"Divide","operationValue":100}]`;
 * - compact: `Divide:100, Add:-40` (`;` also separates).
 * Throws an Error naming the bad entry.
 */
export function parseOperationsText(text: string): Operation[] {
  const t = text.trim();
  if (t === '') return [];
  if (t.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(t);
    } catch (err) {
      throw new Error(`not valid JSON: ${(err as Error).message}`);
    }
    return parseOperationList(parsed);
  }
  return t
    .split(/[;,]/)
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((entry, i) => {
      const m = /^([A-Za-z]+)\s*[:=]?\s*(\S+)$/.exec(entry);
      if (!m) throw new Error(`entry ${i + 1} "${entry}" is not "<Add|Subtract|Multiply|Divide>:<number>"`);
      return operation(m[1]!, m[2]!, i);
    });
}

/** Parses upstream's `orderOfOperations` array (objects with operationType and operationValue). */
export function parseOperationList(list: unknown): Operation[] {
  if (!Array.isArray(list)) throw new Error('expected a list of {operationType, operationValue}');
  return list.map((item, i) => {
    if (typeof item !== 'object' || item === null) throw new Error(`entry ${i + 1} is not an object`);
    const o = item as Record<string, unknown>;
    return operation(o['operationType'], o['operationValue'] ?? 0, i);
  });
}

function operation(typeRaw: unknown, valueRaw: unknown, i: number): Operation {
  const type = typeof typeRaw === 'string' ? operationType(typeRaw) : undefined;
  if (!type) throw new Error(`entry ${i + 1}: operationType ${JSON.stringify(typeRaw)} is not one of ${OPERATION_TYPES.join(', ')}`);
  const value = typeof valueRaw === 'number' ? valueRaw : typeof valueRaw === 'string' && valueRaw.trim() !== '' ? Number(valueRaw) : Number.NaN;
  if (!Number.isFinite(value)) throw new Error(`entry ${i + 1}: operationValue ${JSON.stringify(valueRaw)} is not a number`);
  // Upstream would report +Inf/NaN forever; refuse the config instead.
  if (type === 'Divide' && value === 0) throw new Error(`entry ${i + 1}: Divide by 0`);
  return { type, value };
}

/**
 * One `dataWrite` value as bytes. Upstream's Go type is `map[string][]byte`, so JSON accepts
 * a list of byte numbers (`[1, 0]`) or a base64 string (`"AQA="`); `0x0100` (hex) is also
 * accepted. Throws an Error describing the problem.
 */
export function parseByteString(value: unknown): Uint8Array {
  if (Array.isArray(value)) {
    return new Uint8Array(
      value.map((b, i) => {
        const n = typeof b === 'string' && b.trim() !== '' ? Number(b) : b;
        if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 255) throw new Error(`byte ${i + 1} (${JSON.stringify(b)}) is not an integer 0-255`);
        return n;
      }),
    );
  }
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 255) return new Uint8Array([value]);
  if (typeof value === 'string') {
    const t = value.trim();
    if (/^0x/i.test(t)) {
      const hex = t.slice(2).replace(/[\s:_-]/g, '');
      if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new Error(`"${value}" is not a hex byte string`);
      return new Uint8Array(Buffer.from(hex, 'hex'));
    }
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t) || t.length % 4 !== 0) throw new Error(`"${value}" is neither a list of bytes, base64 nor 0x-prefixed hex`);
    return new Uint8Array(Buffer.from(t, 'base64'));
  }
  throw new Error(`${JSON.stringify(value)} is neither a list of bytes, base64 nor 0x-prefixed hex`);
}
