// SPDX-License-Identifier: Apache-2.0
// Upstream wire formats shared by sinks and the REST API: the DataModel JSON object (Go
// encoding/json of a struct without tags), Go's string escaping, Go time layouts.
import type { SinkRecord } from './types.js';

const NEEDS_ESCAPE = /[\u0000-\u001f"\\<>&\u2028\u2029\ud800-\udfff\u007f]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const GO_ESCAPES: Record<string, string> = { '<': '\\u003c', '>': '\\u003e', '&': '\\u0026', '\u2028': '\\u2028', '\u2029': '\\u2029' };

/**
 * A JSON string literal exactly as Go's json.Marshal writes it: HTML-sensitive characters and
 * U+2028/U+2029 escaped as \uXXXX, invalid UTF-16 replaced by U+FFFD.
 */
export function goString(s: string): string {
  // Fast path: nothing to escape (the common case for values and names).
  if (!NEEDS_ESCAPE.test(s)) return `"${s}"`;
  return JSON.stringify(s.replace(LONE_SURROGATE, '\ufffd')).replace(/[<>&\u2028\u2029]/g, (c) => GO_ESCAPES[c]!);
}

/**
 * Go's json.Marshal of a value built from plain objects, arrays, strings, numbers, booleans
 * and null (key order as given). Used where upstream clients compare bytes.
 */
export function goJson(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  switch (typeof v) {
    case 'string':
      return goString(v);
    case 'number':
      return Number.isFinite(v) ? String(v) : 'null';
    case 'bigint':
      return v.toString();
    case 'boolean':
      return v ? 'true' : 'false';
    default:
      break;
  }
  if (Array.isArray(v)) return `[${v.map(goJson).join(',')}]`;
  const parts: string[] = [];
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (x === undefined) continue;
    parts.push(`${goString(k)}:${goJson(x)}`);
  }
  return `{${parts.join(',')}}`;
}

/** The upstream `DataModel` (Go field names, no JSON tags) of a sample. */
export interface DataModel {
  readonly DeviceName: string;
  readonly PropertyName: string;
  readonly Namespace: string;
  readonly Value: string;
  readonly Type: string;
  readonly TimeStamp: number;
}

export function dataModelOf(r: Pick<SinkRecord, 'dev' | 'prop' | 'ns' | 'val' | 'type' | 'ts'>): DataModel {
  return { DeviceName: r.dev, PropertyName: r.prop, Namespace: r.ns, Value: r.val, Type: r.type, TimeStamp: r.ts };
}

/** `json.Marshal(DataModel)` byte for byte (a record read back from the disk buffer carries it already). */
export function dataModelJson(r: Pick<SinkRecord, 'dev' | 'prop' | 'ns' | 'val' | 'type' | 'ts' | 'json'>): string {
  if (r.json !== undefined) return r.json;
  return `{"DeviceName":${goString(r.dev)},"PropertyName":${goString(r.prop)},"Namespace":${goString(r.ns)},"Value":${goString(r.val)},"Type":${goString(r.type)},"TimeStamp":${Math.trunc(r.ts)}}`;
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** Go layout `2006-01-02 15:04:05` in local time (what upstream puts in HTTP/MQTT pushes). */
export function goLocalTime(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Go `time.RFC3339` in local time (`2006-01-02T15:04:05Z07:00`): `Z` for UTC, else `+hh:mm`. */
export function goRfc3339(ms: number): string {
  const d = new Date(ms);
  const off = -d.getTimezoneOffset();
  const zone = off === 0 ? 'Z' : `${off > 0 ? '+' : '-'}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
  return `${goLocalTime(ms).replace(' ', 'T')}${zone}`;
}
