// SPDX-License-Identifier: Apache-2.0
// The line format of the disk buffer: a record's upstream DataModel JSON (the exact bytes Redis
// stores as a member, Go encoding/json: `{"DeviceName":…,"PropertyName":…,"Namespace":…,
// "Value":…,"Type":…,"TimeStamp":…}`), with its sink route, if any, as one more key at the end.
//
// Replay is the hot path of store-and-forward: the line of a record without a route comes back
// as the record's `json`, so the Redis sink (and JSON payloads) never encode it again. (V8's
// JSON.parse beats cutting the line at its separators by hand, measured: 1.3 µs against 3.2 µs
// a line.) Lines in the earlier format (`{"ns":…}`, the SinkRecord as JSON) are still read.
import { dataModelJson } from './data-model.js';
import type { InfluxRoute, MqttRoute, SinkRecord } from './types.js';

const ROUTE = ',"route":';

/** One disk-buffer line (without the newline). */
export function encodeRecordLine(r: SinkRecord): string {
  const json = dataModelJson(r);
  return r.route === undefined ? json : `${json.slice(0, -1)}${ROUTE}${JSON.stringify(r.route)}}`;
}

const str = (v: unknown): v is string => typeof v === 'string';

/** The record of a disk-buffer line; undefined when the line is not one (corrupt). */
export function decodeRecordLine(line: string): SinkRecord | undefined {
  let o: Record<string, unknown>;
  try {
    const v = JSON.parse(line) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
    o = v as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const rt = o['route'];
  const route = typeof rt === 'object' && rt !== null && !Array.isArray(rt) ? (rt as MqttRoute | InfluxRoute) : undefined;
  if (rt !== undefined && !route) return undefined;
  if ('DeviceName' in o) {
    const { DeviceName: dev, PropertyName: prop, Namespace: ns, Value: val, Type: type, TimeStamp: ts } = o;
    if (!str(dev) || !str(prop) || !str(ns) || !str(val) || !str(type) || typeof ts !== 'number') return undefined;
    // Without a route the line is the DataModel JSON itself, byte for byte.
    return route ? { ns, dev, prop, type, val, ts, route } : { ns, dev, prop, type, val, ts, json: line };
  }
  // The earlier line format: the SinkRecord itself.
  const { ns, dev, prop, type, val, ts } = o;
  if (!str(ns) || !str(dev) || !str(prop) || !str(type) || !str(val) || typeof ts !== 'number') return undefined;
  return route ? { ns, dev, prop, type, val, ts, route } : { ns, dev, prop, type, val, ts };
}
