// SPDX-License-Identifier: Apache-2.0
// HTTP push sink: POST per sample to `<hostName>:<port><requestPath>` (upstream), with the
// upstream form body `<property>=<value>&time=<local time>` (properly URL-encoded) or the
// DataModel JSON; `timeout` (ms) honoured; keep-alive connections (fetch/undici).
// Also the shared HTTP helpers of the OTLP and InfluxDB2 sinks.
import { dataModelJson, goLocalTime } from './data-model.js';
import { SinkError, type SinkRecord, type SinkWriter, type WriterContext } from './types.js';

/** Default when the CRD `timeout` is 0 or absent. */
export const DEFAULT_HTTP_TIMEOUT_MS = 5000;

/** `<hostName>:<port><requestPath>`, as upstream joins them (hostName carries the scheme; port 0 = scheme default). */
export function httpPushUrl(hostName: string, port: number, requestPath: string): string {
  let host = hostName.trim().replace(/\/+$/, '');
  if (!/^https?:\/\//i.test(host)) host = `http://${host}`;
  const path = requestPath === '' ? '' : requestPath.startsWith('/') ? requestPath : `/${requestPath}`;
  const url = new URL(`${host}${port > 0 ? `:${port}` : ''}${path}`);
  return url.toString();
}

/** Responses that say "this request will never succeed" (bad content); everything else non-2xx is retried. */
export function isPermanentStatus(status: number): boolean {
  return status === 400 || status === 405 || status === 413 || status === 415 || status === 422;
}

/** A URL without userinfo, for logs and metric labels. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = '';
      u.password = '';
    }
    return u.toString().replace(/\/$/, '');
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//');
  }
}

/** POSTs `body`; throws SinkError (retryable unless the status says the content is bad). */
export async function post(url: string, body: string | Uint8Array, headers: Record<string, string>, timeoutMs: number, signal: AbortSignal, what: string): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', body, headers, signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const why = e.name === 'TimeoutError' ? `timed out after ${timeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
    throw new SinkError(`${what}: ${why}`, { cause: err });
  }
  if (res.status >= 200 && res.status < 300) return res;
  const text = (await res.text().catch(() => '')).slice(0, 300);
  throw new SinkError(`${what}: HTTP ${res.status}${text ? ` ${text}` : ''}`, { permanent: isPermanentStatus(res.status) });
}

export function httpBody(format: 'form' | 'json', r: SinkRecord): { body: string; contentType: string } {
  if (format === 'json') return { body: dataModelJson(r), contentType: 'application/json' };
  const form = new URLSearchParams();
  form.append(r.prop, r.val);
  form.append('time', goLocalTime(r.ts));
  return { body: form.toString(), contentType: 'application/x-www-form-urlencoded' };
}

export function createHttpWriter(spec: { url: string; timeoutMs: number }, ctx: WriterContext): SinkWriter {
  const where = `http ${redactUrl(spec.url)}`;
  return {
    async write(records: readonly SinkRecord[], signal: AbortSignal): Promise<void> {
      // One request per sample (the receiver expects one value per POST), in order.
      for (let i = 0; i < records.length; i++) {
        const { body, contentType } = httpBody(ctx.options.httpBody, records[i]!);
        try {
          const res = await post(spec.url, body, { 'content-type': contentType }, spec.timeoutMs, signal, where);
          await res.arrayBuffer().catch(() => undefined);
        } catch (err) {
          const e = err as SinkError;
          throw new SinkError(e.message, { delivered: i, permanent: e.permanent, cause: err });
        }
      }
    },
    async close(): Promise<void> {},
  };
}
