// SPDX-License-Identifier: Apache-2.0
// JSON views for the API: proto messages with every google.protobuf.Any decoded (so users see
// exactly which wrapper edgecore put on the wire), bigints as numbers.
import { decodeAny } from '@mapperkit/framework/dmi';

function isAny(v: object): v is { typeUrl: string; value: Uint8Array } {
  const o = v as { typeUrl?: unknown; value?: unknown };
  return typeof o.typeUrl === 'string' && o.value instanceof Uint8Array && Object.keys(v).length === 2;
}

/** A proto message as plain JSON: Any → `{ "@type": "FloatValue", "value": 5502 }`. */
export function protoJson(v: unknown): unknown {
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  if (Array.isArray(v)) return v.map(protoJson);
  if (typeof v === 'object' && v !== null) {
    if (isAny(v)) {
      const type = v.typeUrl.slice(v.typeUrl.lastIndexOf('.') + 1);
      try {
        return { '@type': type, value: decodeAny(v as never) };
      } catch (err) {
        return { '@type': v.typeUrl, error: (err as Error).message };
      }
    }
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = protoJson(x);
    return out;
  }
  return v;
}

/** Checks a twin value against the model type, as edgecore's DeviceTwin does before storing it. */
export function twinValueProblem(type: string, value: string): string | undefined {
  switch (type.toUpperCase()) {
    case 'INT':
      return /^[+-]?\d+$/.test(value) && BigInt(value) <= 2n ** 63n - 1n && BigInt(value) >= -(2n ** 63n) ? undefined : `"${value}" is not a valid INT`;
    case 'FLOAT':
    case 'DOUBLE':
      return value.trim() !== '' && (Number.isFinite(Number(value)) || /^[+-]?(inf|infinity|nan)$/i.test(value)) ? undefined : `"${value}" is not a valid ${type.toUpperCase()}`;
    case 'BOOLEAN':
      return value === 'true' || value === 'false' ? undefined : `"${value}" is not a valid BOOLEAN (edgecore accepts only "true" or "false")`;
    default:
      return undefined;
  }
}

/** Checks a desired value given by a user (set-desired) against the model type. */
export function desiredValueProblem(type: string, value: string): string | undefined {
  if (type.toUpperCase() === 'BOOLEAN') return /^(1|0|t|f|true|false|TRUE|FALSE|True|False|T|F)$/.test(value) ? undefined : `"${value}" is not a boolean`;
  return twinValueProblem(type, value);
}
