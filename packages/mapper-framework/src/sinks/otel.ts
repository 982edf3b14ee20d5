// SPDX-License-Identifier: Apache-2.0
// OpenTelemetry sink: OTLP/HTTP metrics (JSON encoding, OTLP 1.x) to `endpointURL`. One gauge
// per property, one resource per device (`device.id=<ns>/<name>`, `service.name=<mapper>`),
// one data point per sample with the sample's own time — so samples buffered during an
// outage are replayed with their original timestamps (the OTel SDK's observable gauges only
// report the value current at export time, which cannot carry a backlog).
import { type SinkRecord, type SinkWriter, type WriterContext } from './types.js';
import { post, redactUrl } from './http.js';

/** The OTLP/HTTP metrics URL: upstream passes the URL's path through; an empty path means the OTLP default `/v1/metrics`. */
export function otlpMetricsUrl(endpointURL: string): string {
  const u = new URL(endpointURL.includes('://') ? endpointURL : `http://${endpointURL}`);
  if (u.pathname === '' || u.pathname === '/') u.pathname = '/v1/metrics';
  return u.toString();
}

/** Numeric value of a sample for a gauge, or undefined (strings that are not numbers, bytes). */
export function gaugeValue(r: Pick<SinkRecord, 'type' | 'val'>): number | undefined {
  if (r.type === 'boolean') return r.val === 'true' ? 1 : r.val === 'false' ? 0 : undefined;
  if (r.type === 'bytes' || r.type === 'stream') return undefined;
  if (r.val.trim() === '') return undefined;
  const n = Number(r.val);
  return Number.isFinite(n) ? n : undefined;
}

const attr = (key: string, value: string): { key: string; value: { stringValue: string } } => ({ key, value: { stringValue: value } });

/** ExportMetricsServiceRequest (OTLP JSON) for a batch. Records without a numeric value are left out. */
export function otlpRequest(records: readonly SinkRecord[], serviceName: string): { body: object; points: number } {
  const byDevice = new Map<string, Map<string, { timeUnixNano: string; asDouble: number }[]>>();
  let points = 0;
  for (const r of records) {
    const v = gaugeValue(r);
    if (v === undefined) continue;
    const id = `${r.ns}/${r.dev}`;
    let props = byDevice.get(id);
    if (!props) byDevice.set(id, (props = new Map()));
    let dps = props.get(r.prop);
    if (!dps) props.set(r.prop, (dps = []));
    dps.push({ timeUnixNano: (BigInt(Math.trunc(r.ts)) * 1_000_000n).toString(), asDouble: v });
    points++;
  }
  const resourceMetrics = [...byDevice].map(([id, props]) => ({
    resource: { attributes: [attr('service.name', serviceName), attr('device.id', id)] },
    scopeMetrics: [
      {
        scope: { name: '@mapperkit/framework' },
        metrics: [...props].map(([name, dataPoints]) => ({ name, gauge: { dataPoints } })),
      },
    ],
  }));
  return { body: { resourceMetrics }, points };
}

export function createOtelWriter(spec: { endpoint: string }, ctx: WriterContext): SinkWriter {
  const url = otlpMetricsUrl(spec.endpoint);
  const where = `otlp ${redactUrl(url)}`;
  let warnedNonNumeric = false;
  return {
    async write(records: readonly SinkRecord[], signal: AbortSignal): Promise<void> {
      const { body, points } = otlpRequest(records, ctx.options.mapperName);
      if (points < records.length && !warnedNonNumeric) {
        warnedNonNumeric = true;
        const r = records.find((x) => gaugeValue(x) === undefined)!;
        ctx.log.warn({ device: `${r.ns}/${r.dev}`, property: r.prop, type: r.type }, 'OTel gauges carry numbers only; non-numeric samples are not exported');
      }
      if (points === 0) return;
      const res = await post(url, JSON.stringify(body), { 'content-type': 'application/json' }, 10_000, signal, where);
      await res.arrayBuffer().catch(() => undefined);
    },
    async close(): Promise<void> {},
  };
}
