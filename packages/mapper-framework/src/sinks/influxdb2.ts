// SPDX-License-Identifier: Apache-2.0
// InfluxDB 2 sink: line protocol batches to `<url>/api/v2/write?org=&bucket=&precision=ms`,
// token from `TOKEN`. Point layout per the CRD: measurement, tags, one field `fieldKey`.
// Field type: typed (int → 42i, float → 21.5, boolean → true, others strings) or, like
// upstream, always a string.
import { post, redactUrl } from './http.js';
import { type InfluxRoute, SinkError, type SinkRecord, type SinkWriter, type WriterContext } from './types.js';

const escMeasurement = (s: string): string => s.replace(/[\\, \n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
const escKey = (s: string): string => s.replace(/[\\,= \n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
const escString = (s: string): string => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

/** The field value of a record in line protocol. */
export function influxFieldValue(r: Pick<SinkRecord, 'type' | 'val'>, mode: 'typed' | 'string'): string {
  if (mode === 'typed') {
    const t = r.val.trim();
    if (r.type === 'int' && /^[+-]?\d+$/.test(t)) return `${t}i`;
    if ((r.type === 'float' || r.type === 'double') && t !== '' && Number.isFinite(Number(t))) return t;
    if (r.type === 'boolean' && (t === 'true' || t === 'false')) return t;
  }
  return escString(r.val);
}

/** One line of line protocol (ms precision). Tags sorted by key, as InfluxDB recommends. */
export function influxLine(r: SinkRecord, mode: 'typed' | 'string'): string {
  const route = r.route as InfluxRoute | undefined;
  const measurement = route?.measurement || r.dev;
  const fieldKey = route?.fieldKey || r.prop;
  const tags = Object.entries(route?.tags ?? {})
    .filter(([k, v]) => k !== '' && v !== '')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `,${escKey(k)}=${escKey(v)}`)
    .join('');
  return `${escMeasurement(measurement)}${tags} ${escKey(fieldKey)}=${influxFieldValue(r, mode)} ${Math.trunc(r.ts)}`;
}

export function influxWriteUrl(spec: { url: string; org: string; bucket: string }): string {
  const u = new URL(spec.url.includes('://') ? spec.url : `http://${spec.url}`);
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/api/v2/write`;
  u.search = '';
  u.searchParams.set('org', spec.org);
  u.searchParams.set('bucket', spec.bucket);
  u.searchParams.set('precision', 'ms');
  return u.toString();
}

export function createInfluxWriter(spec: { url: string; org: string; bucket: string }, ctx: WriterContext): SinkWriter {
  const url = influxWriteUrl(spec);
  const token = ctx.credential('TOKEN');
  const where = `influxdb2 ${redactUrl(spec.url)} bucket ${spec.bucket}`;
  const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8', accept: 'application/json' };
  if (token) headers['authorization'] = `Token ${token}`;
  const mode = ctx.options.influxFieldType;
  return {
    async write(records: readonly SinkRecord[], signal: AbortSignal): Promise<void> {
      const body = records.map((r) => influxLine(r, mode)).join('\n');
      try {
        const res = await post(url, body, headers, 10_000, signal, where);
        await res.arrayBuffer().catch(() => undefined);
      } catch (err) {
        // A refused batch (400/422: field type conflict, bad point) is isolated record by record by the channel.
        if (err instanceof SinkError) throw err;
        throw new SinkError(`${where}: ${(err as Error).message}`, { cause: err });
      }
    },
    async close(): Promise<void> {},
  };
}
