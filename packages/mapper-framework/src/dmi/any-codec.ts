// SPDX-License-Identifier: Apache-2.0
// google.protobuf.Any <-> scalar values, the way KubeEdge puts CustomizedValue on the wire.
import { MapperError } from '../errors.js';
import { Any } from '../generated/google/protobuf/any.js';
import {
  BoolValue,
  DoubleValue,
  FloatValue,
  Int32Value,
  Int64Value,
  StringValue,
  UInt32Value,
  UInt64Value,
} from '../generated/google/protobuf/wrappers.js';
import type { CustomizedValue } from '../generated/v1beta1/api.js';
import { shortestFloat32 } from './values.js';

/** A decoded config value. Int64/UInt64 outside the safe integer range decode to their decimal text. */
export type ConfigValue = string | number | boolean;
/** A decoded CustomizedValue map. */
export type ConfigMap = Record<string, ConfigValue>;

const TYPE_PREFIX = 'type.googleapis.com/google.protobuf.';
/** Largest finite float32. */
const FLOAT32_MAX = 3.4028234663852886e38;

/** Wrapper kinds the codec understands. */
export type WrapperKind = 'String' | 'Bool' | 'Int32' | 'Int64' | 'UInt32' | 'UInt64' | 'Float' | 'Double';

function bigToValue(v: bigint): number | string {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
}

/**
 * Decodes one Any holding a google.protobuf wrapper. FloatValue is read as float32 and turned
 * into the number Go would print (0.1 stays 0.1). Throws MapperError('InvalidConfig') for any
 * other type URL or undecodable bytes.
 */
export function decodeAny(any: Any): ConfigValue {
  const url = any.typeUrl;
  const name = url.slice(url.lastIndexOf('/') + 1);
  try {
    switch (name) {
      case 'google.protobuf.StringValue':
        return StringValue.decode(any.value).value;
      case 'google.protobuf.BoolValue':
        return BoolValue.decode(any.value).value;
      case 'google.protobuf.Int32Value':
        return Int32Value.decode(any.value).value;
      case 'google.protobuf.UInt32Value':
        return UInt32Value.decode(any.value).value;
      case 'google.protobuf.Int64Value':
        return bigToValue(Int64Value.decode(any.value).value);
      case 'google.protobuf.UInt64Value':
        return bigToValue(UInt64Value.decode(any.value).value);
      case 'google.protobuf.FloatValue':
        return shortestFloat32(FloatValue.decode(any.value).value);
      case 'google.protobuf.DoubleValue':
        return DoubleValue.decode(any.value).value;
    }
  } catch (err) {
    throw new MapperError('InvalidConfig', `cannot decode ${name} payload: ${(err as Error).message}`, { cause: err });
  }
  throw new MapperError('InvalidConfig', `unsupported Any type "${url || '(empty)'}"; expected a google.protobuf wrapper`);
}

/** Callback for keys the codec had to skip. */
export type SkipHandler = (key: string, error: MapperError) => void;

/**
 * Decodes a CustomizedValue map. An undecodable entry is skipped and reported through `onSkip`
 * (the rest of the map still decodes), as upstream mappers do, but never silently.
 */
export function decodeCustomizedValue(cv: CustomizedValue | undefined, onSkip: SkipHandler): ConfigMap {
  const out: ConfigMap = {};
  if (!cv) return out;
  for (const [key, any] of Object.entries(cv.data)) {
    try {
      // defineProperty, not assignment: a key named "__proto__" must stay an ordinary key.
      Object.defineProperty(out, key, { value: decodeAny(any), enumerable: true, writable: true, configurable: true });
    } catch (err) {
      onSkip(key, err instanceof MapperError ? err : new MapperError('InvalidConfig', String(err), { key }));
    }
  }
  return out;
}

/** Packs a scalar into a specific wrapper kind. */
export function encodeAnyAs(kind: WrapperKind, value: ConfigValue | bigint): Any {
  const typeUrl = `${TYPE_PREFIX}${kind}Value`;
  const enc = (bytes: Uint8Array): Any => ({ typeUrl, value: Buffer.from(bytes) });
  switch (kind) {
    case 'String':
      return enc(StringValue.encode({ value: String(value) }).finish());
    case 'Bool':
      return enc(BoolValue.encode({ value: Boolean(value) }).finish());
    case 'Int32':
      return enc(Int32Value.encode({ value: Number(value) }).finish());
    case 'UInt32':
      return enc(UInt32Value.encode({ value: Number(value) }).finish());
    case 'Int64':
      return enc(Int64Value.encode({ value: BigInt(value) }).finish());
    case 'UInt64':
      return enc(UInt64Value.encode({ value: BigInt(value) }).finish());
    case 'Float': {
      const n = Number(value);
      if (Math.abs(n) > FLOAT32_MAX && Number.isFinite(n)) throw new MapperError('InvalidConfig', `number ${n} is beyond the float32 range`);
      return enc(FloatValue.encode({ value: n }).finish());
    }
    case 'Double':
      return enc(DoubleValue.encode({ value: Number(value) }).finish());
  }
}

/**
 * Packs a JSON value the way edgecore does (`dtcommon.dataToAny` after a JSON round-trip):
 * string → StringValue, boolean → BoolValue, every number → FloatValue (float32!).
 * Objects, arrays and null cannot be represented; this throws MapperError('InvalidConfig')
 * naming the key, as edgecore refuses to convert such a device.
 */
export function encodeAnyLikeEdgecore(value: unknown, key: string): Any {
  if (typeof value === 'string') return encodeAnyAs('String', value);
  if (typeof value === 'boolean') return encodeAnyAs('Bool', value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new MapperError('InvalidConfig', `${key}: number ${value} is not finite`, { key });
    // edgecore sends every number as a float32; Go would turn this one into +Inf, which no mapper can use.
    if (Math.abs(value) > FLOAT32_MAX) throw new MapperError('InvalidConfig', `${key}: number ${value} is beyond the float32 range edgecore sends numbers in`, { key });
    return encodeAnyAs('Float', value);
  }
  if (typeof value === 'bigint') return encodeAnyAs('Float', Number(value));
  const what = value === null ? 'null' : Array.isArray(value) ? 'an array' : `an ${typeof value}`;
  throw new MapperError(
    'InvalidConfig',
    `${key}: ${what} cannot be sent over DMI (configData values must be flat strings, numbers or booleans)`,
    { key },
  );
}

/** Encodes a flat map as edgecore does; see {@link encodeAnyLikeEdgecore}. `where` prefixes key names in errors. */
export function encodeCustomizedValue(map: Record<string, unknown> | undefined, where = 'configData'): CustomizedValue {
  const data: Record<string, Any> = {};
  for (const [k, v] of Object.entries(map ?? {})) {
    Object.defineProperty(data, k, { value: encodeAnyLikeEdgecore(v, `${where}.${k}`), enumerable: true, writable: true, configurable: true });
  }
  return { data };
}
