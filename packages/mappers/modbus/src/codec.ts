// SPDX-License-Identifier: Apache-2.0
// Register contents <-> property values: byte/word order, data types, scale and offset,
// conversion to the model type, and the inverse for writes with range checks.
import { MapperError, type PropertyType, type PropertyValue } from '@mapperkit/framework';
import { shortestFloat32 } from '@mapperkit/framework/dmi';
import { type Kind, type ModbusVisitor, tableName } from './config.js';

/** A decoded register value before conversion to the model type. */
export type RawValue = number | bigint | boolean | string | Uint8Array;

/** Integer ranges of the fixed-width kinds (raw register values). */
const INT_RANGE: Readonly<Partial<Record<Kind, readonly [bigint, bigint]>>> = {
  int16: [-0x8000n, 0x7fffn],
  uint16: [0n, 0xffffn],
  int32: [-0x8000_0000n, 0x7fff_ffffn],
  uint32: [0n, 0xffff_ffffn],
  int64: [-0x8000_0000_0000_0000n, 0x7fff_ffff_ffff_ffffn],
  uint64: [0n, 0xffff_ffff_ffff_ffffn],
};

const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * Reorders register bytes between wire order and big-endian "ABCD" order. Both swaps are
 * involutions, so the same function converts in both directions. Returns `bytes` itself
 * when nothing is swapped.
 */
export function reorder(bytes: Uint8Array, wordSwap: boolean, byteSwap: boolean): Uint8Array {
  if (!wordSwap && !byteSwap) return bytes;
  const n = bytes.length;
  const out = new Uint8Array(n);
  const words = n >> 1;
  for (let w = 0; w < words; w++) {
    const src = wordSwap ? words - 1 - w : w;
    const hi = bytes[2 * src]!;
    const lo = bytes[2 * src + 1]!;
    out[2 * w] = byteSwap ? lo : hi;
    out[2 * w + 1] = byteSwap ? hi : lo;
  }
  if (n & 1) out[n - 1] = bytes[n - 1]!;
  return out;
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function fromBig(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** Removes binary floating-point noise of a scale multiplication (0.1 × 3 → 0.3, not 0.30000000000000004). */
export function tidy(n: number): number {
  if (!Number.isFinite(n) || Number.isInteger(n)) return n;
  return Number(n.toPrecision(15));
}

/**
 * Decodes the registers of one property: `count` registers (2 bytes each, wire order) starting
 * at `byteOffset` of `wire`. `dv` may pass a DataView of `wire` that the caller reuses for
 * several properties of one answer.
 */
export function decodeRegisters(wire: Uint8Array, v: ModbusVisitor, byteOffset = 0, dv?: DataView): RawValue {
  let b: Uint8Array;
  let d: DataView;
  let at: number;
  if (!v.wordSwap && !v.byteSwap && v.kind !== 'string' && v.kind !== 'bytes') {
    // Fast path: read straight from the answer.
    b = wire;
    d = dv ?? view(wire);
    at = byteOffset;
  } else {
    const own = byteOffset === 0 && wire.length === v.count * 2 ? wire : wire.subarray(byteOffset, byteOffset + v.count * 2);
    b = reorder(own, v.wordSwap, v.byteSwap);
    if (b === own && v.kind === 'bytes') b = Uint8Array.from(own);
    d = view(b);
    at = 0;
  }
  switch (v.kind) {
    case 'int16':
      return d.getInt16(at);
    case 'uint16':
      return d.getUint16(at);
    case 'int32':
      return d.getInt32(at);
    case 'uint32':
      return d.getUint32(at);
    case 'int64':
      return fromBig(d.getBigInt64(at));
    case 'uint64':
      return fromBig(d.getBigUint64(at));
    case 'float32':
      // The shortest decimal that is this float32 (23.7, not 23.700000762939453), as Go prints it.
      return shortestFloat32(d.getFloat32(at));
    case 'float64':
      return d.getFloat64(at);
    case 'boolean':
      return d.getUint16(at) !== 0;
    case 'bit':
      return ((d.getUint16(at) >> (v.bitIndex ?? 0)) & 1) === 1;
    case 'string': {
      let end = b.length;
      while (end > 0 && b[end - 1] === 0) end--;
      return Buffer.from(b.buffer, b.byteOffset, end).toString('utf8');
    }
    case 'bytes':
      return b;
  }
}

/** Decodes the bits of one coil/discrete property (`bits[0]` is the first address). */
export function decodeBits(bits: readonly boolean[], v: ModbusVisitor): RawValue {
  if (v.kind === 'boolean' || v.kind === 'bit') return bits[0] === true;
  if (v.kind === 'bytes') {
    const out = new Uint8Array(Math.ceil(v.count / 8));
    for (let i = 0; i < v.count; i++) if (bits[i]) out[i >> 3]! |= 1 << (i & 7);
    return out;
  }
  let n = 0;
  for (let i = v.count - 1; i >= 0; i--) n = n * 2 + (bits[i] ? 1 : 0);
  return n;
}

function isNumeric(raw: RawValue): raw is number | bigint {
  return typeof raw === 'number' || typeof raw === 'bigint';
}

/** Applies scale and valueOffset (identity keeps integers, incl. bigint, exact). */
export function scaleValue(raw: number | bigint, v: ModbusVisitor): number | bigint {
  if (v.scale === 1 && v.valueOffset === 0) return raw;
  return tidy(Number(raw) * v.scale + v.valueOffset);
}

/**
 * Converts a decoded value to the property's model type. Throws MapperError('DeviceError')
 * when the registers cannot represent that type (e.g. text that is not a number).
 */
export function toModelValue(raw: RawValue, v: ModbusVisitor, type: PropertyType): PropertyValue {
  const value: RawValue = isNumeric(raw) ? scaleValue(raw, v) : raw;
  switch (type) {
    case 'int': {
      if (typeof value === 'bigint') return value;
      const n = typeof value === 'number' ? value : typeof value === 'boolean' ? (value ? 1 : 0) : textNumber(value);
      if (!Number.isFinite(n)) throw new MapperError('DeviceError', `register value ${String(n)} is not a finite number`);
      // Upstream truncates scaled values to an integer.
      const t = Math.trunc(n);
      return Number.isSafeInteger(t) ? t : BigInt(t);
    }
    case 'float':
    case 'double': {
      const n = typeof value === 'number' ? value : typeof value === 'bigint' ? Number(value) : typeof value === 'boolean' ? (value ? 1 : 0) : textNumber(value);
      if (!Number.isFinite(n)) throw new MapperError('DeviceError', `register value ${String(n)} is not a finite number`);
      return n;
    }
    case 'boolean':
      if (typeof value === 'boolean') return value;
      if (typeof value === 'number') return value !== 0;
      if (typeof value === 'bigint') return value !== 0n;
      if (typeof value === 'string') return textBool(value);
      return value.some((x) => x !== 0);
    case 'string':
      if (typeof value === 'string') return value;
      if (typeof value === 'boolean') return value ? 'true' : 'false';
      if (typeof value === 'number' || typeof value === 'bigint') return String(value);
      return Buffer.from(value).toString('utf8');
    case 'bytes':
      if (value instanceof Uint8Array) return value;
      if (typeof value === 'string') return new Uint8Array(Buffer.from(value, 'utf8'));
      throw new MapperError('DeviceError', `a ${v.kind} cannot be reported as bytes; use dataType bytes`);
    case 'stream':
      throw new MapperError('Unsupported', 'Modbus registers cannot hold a STREAM property');
  }
}

function textNumber(s: string | Uint8Array): number {
  const t = (typeof s === 'string' ? s : Buffer.from(s).toString('utf8')).trim();
  const n = t === '' ? Number.NaN : Number(t);
  if (!Number.isFinite(n)) throw new MapperError('DeviceError', `register text "${t}" is not a number`);
  return n;
}

function textBool(s: string): boolean {
  const t = s.trim().toLowerCase();
  if (['1', 'true', 't', 'on', 'yes'].includes(t)) return true;
  if (['0', 'false', 'f', 'off', 'no', ''].includes(t)) return false;
  throw new MapperError('DeviceError', `register text "${s}" is not a boolean`);
}

/** What a write sends. */
export type Encoded =
  /** Coils: FC5 (one) or FC15 (several). */
  | { readonly kind: 'bits'; readonly bits: boolean[] }
  /** Registers: FC6 (one, unless writeMultiple) or FC16. Values are the register words. */
  | { readonly kind: 'words'; readonly words: number[] }
  /** One bit of a holding register: read, modify, write. */
  | { readonly kind: 'bit'; readonly bitIndex: number; readonly on: boolean };

function where(v: ModbusVisitor): string {
  return `${tableName(v.table)} ${v.address}${v.count > 1 && v.table !== 'coil' ? `..${v.address + v.count - 1}` : ''}`;
}

function reject(message: string): never {
  throw new MapperError('WriteRejected', message);
}

function engineering(value: PropertyValue): number | bigint {
  if (typeof value === 'number' || typeof value === 'bigint') return value;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'string') {
    const t = value.trim();
    const n = t === '' ? Number.NaN : Number(t);
    if (!Number.isFinite(n)) reject(`"${value}" is not a number`);
    return /^[+-]?\d+$/.test(t) && !Number.isSafeInteger(n) ? BigInt(t) : n;
  }
  reject('bytes can only be written to a property with dataType bytes or string');
}

function checkBounds(eng: number | bigint, lo: number | undefined, hi: number | undefined, what: string): void {
  const n = Number(eng);
  if (lo !== undefined && n < lo) reject(`value ${String(eng)} is below the ${what} minimum ${lo}`);
  if (hi !== undefined && n > hi) reject(`value ${String(eng)} is above the ${what} maximum ${hi}`);
}

/** Inverse of scale/offset: the raw register value for an engineering value. */
export function unscale(eng: number | bigint, v: ModbusVisitor): number | bigint {
  if (v.scale === 1 && v.valueOffset === 0) return eng;
  return (Number(eng) - v.valueOffset) / v.scale;
}

/**
 * Encodes a value for writing: the inverse of reading. Checks the model minimum/maximum,
 * the visitor min/max and the range of the register type; throws MapperError('WriteRejected')
 * naming the limit.
 */
export function encodeWrite(value: PropertyValue, v: ModbusVisitor, bounds: { minimum: number | undefined; maximum: number | undefined }): Encoded {
  if (v.table === 'discrete' || v.table === 'input') reject(`${tableName(v.table)}s are read-only in Modbus (${where(v)})`);

  if (v.kind === 'string' || v.kind === 'bytes') {
    if (v.table === 'coil') {
      const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value instanceof Uint8Array ? value : reject('a bytes property takes bytes');
      if (bytes.length * 8 > Math.ceil(v.count / 8) * 8) reject(`${bytes.length} bytes do not fit in ${v.count} coils`);
      const bits: boolean[] = [];
      for (let i = 0; i < v.count; i++) bits.push(((bytes[i >> 3] ?? 0) >> (i & 7)) % 2 === 1);
      return { kind: 'bits', bits };
    }
    const bytes =
      value instanceof Uint8Array ? value : typeof value === 'string' ? new Uint8Array(Buffer.from(value, 'utf8')) : new Uint8Array(Buffer.from(String(value), 'utf8'));
    const cap = v.count * 2;
    if (bytes.length > cap) reject(`${bytes.length} bytes do not fit in ${v.count} register${v.count > 1 ? 's' : ''} (${cap} bytes) at ${where(v)}`);
    const canonical = new Uint8Array(cap);
    canonical.set(bytes);
    return { kind: 'words', words: toWords(reorder(canonical, v.wordSwap, v.byteSwap)) };
  }

  const eng = engineering(value);
  checkBounds(eng, bounds.minimum, bounds.maximum, 'property');
  checkBounds(eng, v.min, v.max, 'visitor');
  const raw = unscale(eng, v);

  if (v.table === 'coil') {
    const n = typeof raw === 'bigint' ? raw : Math.round(raw);
    if (v.kind === 'boolean' || v.kind === 'bit') {
      if (n !== 0 && n !== 1 && n !== 0n && n !== 1n) reject(`a coil takes 0 or 1 (true/false); got ${String(eng)}`);
      return { kind: 'bits', bits: [n === 1 || n === 1n] };
    }
    const max = 2 ** v.count - 1;
    const num = Number(n);
    if (!Number.isInteger(num) || num < 0 || num > max) reject(`value ${String(eng)} does not fit in ${v.count} coil${v.count > 1 ? 's' : ''} (0..${max})`);
    const bits: boolean[] = [];
    let rest = num;
    for (let i = 0; i < v.count; i++) {
      bits.push(rest % 2 === 1);
      rest = Math.floor(rest / 2);
    }
    return { kind: 'bits', bits };
  }

  // Holding registers.
  if (v.kind === 'boolean' || v.kind === 'bit') {
    const n = typeof raw === 'bigint' ? Number(raw) : Math.round(raw);
    if (n !== 0 && n !== 1) reject(`a ${v.kind === 'bit' ? `bit (${where(v)} bit ${v.bitIndex ?? 0})` : 'boolean register'} takes 0 or 1 (true/false); got ${String(eng)}`);
    if (v.kind === 'bit') return { kind: 'bit', bitIndex: v.bitIndex ?? 0, on: n === 1 };
    return { kind: 'words', words: [n] };
  }

  const bytes = new Uint8Array((v.count || 1) * 2);
  const d = view(bytes);
  if (v.kind === 'float32' || v.kind === 'float64') {
    const n = Number(raw);
    if (!Number.isFinite(n)) reject(`value ${String(eng)} is not a finite number`);
    if (v.kind === 'float32') {
      if (Math.abs(n) > FLOAT32_MAX) reject(`value ${String(eng)} is outside the float32 range (±${FLOAT32_MAX})`);
      d.setFloat32(0, n);
    } else d.setFloat64(0, n);
  } else {
    const range = INT_RANGE[v.kind]!;
    let big: bigint;
    if (typeof raw === 'bigint') big = raw;
    else {
      if (!Number.isFinite(raw)) reject(`value ${String(eng)} is not a finite number`);
      big = BigInt(Math.round(raw));
    }
    if (big < range[0] || big > range[1]) {
      const scaled = v.scale !== 1 || v.valueOffset !== 0 ? ` (raw ${big} after scale ${v.scale}${v.valueOffset ? ` and valueOffset ${v.valueOffset}` : ''})` : '';
      reject(`value ${String(eng)}${scaled} is outside the ${v.kind} range ${range[0]}..${range[1]} of ${where(v)}`);
    }
    switch (v.kind) {
      case 'int16':
        d.setInt16(0, Number(big));
        break;
      case 'uint16':
        d.setUint16(0, Number(big));
        break;
      case 'int32':
        d.setInt32(0, Number(big));
        break;
      case 'uint32':
        d.setUint32(0, Number(big));
        break;
      case 'int64':
        d.setBigInt64(0, big);
        break;
      case 'uint64':
        d.setBigUint64(0, big);
        break;
      default:
        reject(`cannot write a ${v.kind}`);
    }
  }
  return { kind: 'words', words: toWords(reorder(bytes, v.wordSwap, v.byteSwap)) };
}

function toWords(b: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i + 1 < b.length; i += 2) out.push((b[i]! << 8) | b[i + 1]!);
  return out;
}
