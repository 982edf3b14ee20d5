// SPDX-License-Identifier: Apache-2.0
// The mapper's REST API: upstream's routes with upstream's JSON bytes (key casing, key order,
// Go escaping, RFC 3339 timeStamp) served from the last-value cache, plus JSON writes
// (PUT/POST), all properties of a device, /metrics, /healthz and /readyz.
//
// node:http directly: the route table is fixed and small, and matching upstream's responses
// byte for byte is easier without a framework's serialisation in between.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { MapperError, toMapperError } from '../errors.js';
import type { DeviceView } from '../runtime/mapper.js';
import type { SinkStatus } from '../sinks/channel.js';
import { dataModelJson, goJson, goRfc3339 } from '../sinks/data-model.js';
import { formatValue, type PropertyValue } from '../values.js';

export const API_VERSION = 'v1';
const API = `/api/${API_VERSION}`;
const MAX_BODY = 64 * 1024;

/** What the REST server reads and calls; the mapper handle provides it. */
export interface RestBackend {
  devices(): DeviceView[];
  device(id: string): DeviceView | undefined;
  writeProperty(namespace: string, name: string, property: string, value: string, signal?: AbortSignal): Promise<PropertyValue>;
  /** Registered with edgecore (readiness). */
  registered(): boolean;
  /** Liveness: a reason when the process should be restarted (optional; healthy without it). */
  unhealthy?(): string | undefined;
  sinks(): readonly SinkStatus[];
  /** Prometheus exposition; undefined disables /metrics. */
  metrics?: { render(): Promise<string>; readonly contentType: string };
}

export interface RestServerOptions {
  readonly backend: RestBackend;
  readonly port: number;
  readonly host: string;
  /** Bearer token required by write routes; undefined = writes are open (upstream behaviour). */
  readonly writeToken?: string | undefined;
  readonly log: Logger;
}

export interface RestServer {
  /** Where the server listens. */
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

/** The bearer token for write routes: `rest.write_token_file`, else env `REST_TOKEN_FILE`, else env `REST_TOKEN`. */
export function resolveWriteToken(file: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const path = file || env['REST_TOKEN_FILE'];
  if (path) {
    const t = readFileSync(path, 'utf8').trim();
    if (!t) throw new MapperError('InvalidConfig', `REST write token file ${path} is empty`, { key: 'rest.write_token_file' });
    return t;
  }
  const t = env['REST_TOKEN']?.trim();
  return t || undefined;
}

/** The RFC 3339 `timeStamp` (second resolution, as upstream's), formatted once per second. */
let stampSecond = -1;
let stampJson = '';
function timeStampJson(): string {
  const now = Date.now();
  const sec = Math.floor(now / 1000);
  if (sec !== stampSecond) {
    stampSecond = sec;
    stampJson = goJson(goRfc3339(now));
  }
  return stampJson;
}

function base(status: number): string {
  return `"apiVersion":"${API_VERSION}","statusCode":${status},"timeStamp":${timeStampJson()}`;
}

/** An upstream-shaped body: the base response with `extra` keys (already JSON) merged in. */
function body(status: number, extra: string): string {
  return `{${base(status)}${extra ? `,${extra}` : ''}}`;
}

class HttpError extends Error {
  readonly status: number;
  readonly kind: string;
  readonly headers: Record<string, string>;
  readonly details: Record<string, string | undefined>;
  constructor(status: number, kind: string, message: string, details: Record<string, string | undefined> = {}, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.kind = kind;
    this.details = details;
    this.headers = headers;
  }
}

/** A MapperError as an HttpError with an upstream-style message prefix. */
function fromMapperError(prefix: string, err: unknown): HttpError {
  const e = toMapperError(err);
  return new HttpError(e.httpStatus, e.kind, `${prefix}: ${e.message}`, { device: e.device, property: e.property, key: e.key });
}

function decodeSegments(path: string): string[] {
  return path
    .split('/')
    .slice(1)
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        throw new HttpError(400, 'BadRequest', `malformed percent-encoding in path segment "${s}"`);
      }
    });
}

function tokenMatches(expected: string, header: string | undefined): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  if (!m) return false;
  const a = createHash('sha256').update(m[1]!.trim()).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  // curl -d sends form-urlencoded and fetch() text/plain by default: accept them when the body is JSON.
  if (!['', 'application/json', 'text/plain', 'application/x-www-form-urlencoded'].includes(type)) {
    throw new HttpError(415, 'UnsupportedMediaType', `expected Content-Type application/json, got "${type}"`);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > MAX_BODY) throw new HttpError(413, 'PayloadTooLarge', `request body larger than ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new HttpError(400, 'BadRequest', 'request body is empty; expected {"value": ...}');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, 'BadRequest', `request body is not JSON: ${(err as Error).message}`);
  }
}

/** The text of `{"value": …}` (string, number or boolean). */
function valueText(b: unknown): string {
  if (typeof b !== 'object' || b === null || Array.isArray(b) || !('value' in b)) throw new HttpError(400, 'BadRequest', 'expected a JSON object {"value": <string|number|boolean>}');
  const v = (b as { value: unknown }).value;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  throw new HttpError(400, 'BadRequest', '"value" must be a string, a number or a boolean');
}

export function startRestServer(opts: RestServerOptions): Promise<RestServer> {
  const { backend, log } = opts;

  const deviceOf = (ns: string, name: string, prefix: string): DeviceView => {
    const d = backend.device(`${ns}/${name}`);
    if (!d) throw new HttpError(404, 'DeviceNotFound', `${prefix}: device ${ns}/${name} not found`, { device: `${ns}/${name}` });
    return d;
  };

  const requireToken = (req: IncomingMessage): void => {
    if (opts.writeToken === undefined) return;
    if (!tokenMatches(opts.writeToken, req.headers['authorization'])) {
      throw new HttpError(401, 'Unauthorized', 'this route writes to devices and needs "Authorization: Bearer <token>"', {}, { 'www-authenticate': 'Bearer realm="mapper"' });
    }
  };

  const readProperty = (d: DeviceView, property: string): string => {
    const prefix = 'Get device data error';
    const lv = d.values.get(property);
    const known = d.spec.properties.some((p) => p.name === property);
    if (!known) throw new HttpError(404, 'PropertyNotFound', `${prefix}: device ${d.id} has no property ${property}`, { device: d.id, property });
    const disabled = d.disabled.get(property);
    if (!lv?.sample) {
      if (disabled) throw fromMapperError(prefix, disabled);
      if (lv?.error) throw fromMapperError(prefix, lv.error.error);
      throw new HttpError(503, 'NoValueYet', `${prefix}: no value read yet for device ${d.id} property ${property} (device ${d.state})`, { device: d.id, property });
    }
    return dataModelJson({ dev: d.spec.name, prop: property, ns: d.spec.namespace, val: lv.sample.text, type: lv.sample.type, ts: lv.sample.timestamp });
  };

  const write = async (req: IncomingMessage, ns: string, name: string, property: string, text: string, method: string | undefined): Promise<[number, string]> => {
    requireToken(req);
    const prefix = 'Write device data error';
    const d = deviceOf(ns, name, prefix);
    if (method !== undefined) {
      const m = d.spec.methods.find((x) => x.name === method);
      if (!m) throw new HttpError(404, 'MethodNotFound', `${prefix}: device ${d.id} has no method ${method}`, { device: d.id });
      if (!m.propertyNames.includes(property)) throw new HttpError(404, 'PropertyNotFound', `${prefix}: method ${method} of device ${d.id} does not include property ${property}`, { device: d.id, property });
    }
    const ctl = new AbortController();
    req.once('close', () => {
      if (!req.complete) ctl.abort(new MapperError('Cancelled', 'client went away'));
    });
    let value: PropertyValue;
    try {
      value = await backend.writeProperty(ns, name, property, text, ctl.signal);
    } catch (err) {
      throw fromMapperError(prefix, err);
    }
    log.info({ device: d.id, property, method, value: text }, 'REST write');
    const msg = `"Message":${goJson(`Write data ${text} to device ${d.id} successfully.`)}`;
    if (req.method === 'GET') return [200, body(200, msg)];
    const type = d.model.properties.find((p) => p.name === property)?.type ?? '';
    const data = dataModelJson({ dev: name, prop: property, ns, val: formatValue(value), type, ts: Date.now() });
    return [200, body(200, `${msg},"Data":${data}`)];
  };

  const methods = (d: DeviceView): string => {
    const types = new Map(d.model.properties.map((p) => [p.name, p.type]));
    const list = d.spec.methods.map((m) => {
      const parameters = m.propertyNames.map((p) => {
        const t = types.get(p);
        if (t === undefined) throw new HttpError(500, 'InvalidConfig', `Get device method error: unable to find device property ${p} defined in device method ${m.name}`, { device: d.id, property: p });
        return { PropertyName: p, ValueType: t };
      });
      return { Name: m.name, Path: `${API}/devicemethod/${d.spec.namespace}/${d.spec.name}/${m.name}/{propertyName}/{data}`, Parameters: parameters };
    });
    return goJson({ Methods: list });
  };

  const model = (d: DeviceView): string => {
    const m = d.model;
    const props = m.properties.map((p) => ({
      name: p.name || undefined,
      dataType: p.rawType,
      description: p.description || undefined,
      accessMode: p.accessMode || undefined,
      minimum: p.minimumText === '' ? undefined : p.minimumText,
      maximum: p.maximumText === '' ? undefined : p.maximumText,
      unit: p.unit || undefined,
    }));
    const fields: Record<string, unknown> = { id: m.id, name: m.name || undefined, namespace: m.namespace || undefined };
    if (props.length > 0) fields['properties'] = props;
    return goJson(fields).slice(1, -1);
  };

  const allProperties = (d: DeviceView): string => {
    const props = d.spec.properties.map((p) => {
      const lv = d.values.get(p.name);
      const disabled = d.disabled.get(p.name);
      const err = disabled ?? lv?.error?.error;
      const type = d.model.properties.find((m) => m.name === p.name)?.type ?? '';
      return {
        PropertyName: p.name,
        Value: lv?.sample?.text ?? '',
        Type: type,
        TimeStamp: lv?.sample?.timestamp ?? 0,
        Error: err ? err.message : '',
        ErrorTimeStamp: lv?.error?.timestamp ?? 0,
      };
    });
    return goJson({ DeviceName: d.spec.name, Namespace: d.spec.namespace, Model: d.model.name, State: d.state, StateDetail: d.stateDetail ?? '', Properties: props });
  };

  type Handler = (req: IncomingMessage, seg: string[]) => Promise<[number, string, string?]>;
  const route = (method: string, seg: string[]): Handler | 'method' | undefined => {
    const [a, v, kind, ...rest] = seg;
    if (seg.length === 1) {
      if (a === 'healthz') {
        if (method !== 'GET') return 'method';
        return async () => {
          const why = backend.unhealthy?.();
          return why === undefined ? [200, '{"status":"ok"}'] : [503, `{"status":"unhealthy","reason":${goJson(why)}}`];
        };
      }
      if (a === 'readyz')
        return method === 'GET' ? async () => (backend.registered() ? [200, '{"status":"ready"}'] : [503, '{"status":"not registered with edgecore"}']) : 'method';
      if (a === 'metrics' && backend.metrics) {
        const m = backend.metrics;
        return method === 'GET' ? async () => [200, await m.render(), m.contentType] : 'method';
      }
      return undefined;
    }
    if (a !== 'api' || v !== API_VERSION) return undefined;
    if (kind === 'ping' && rest.length === 0) return method === 'GET' ? async () => [200, body(200, `"Message":${goJson(`This is ${API_VERSION} API, the server is running normally.`)}`)] : 'method';
    if (kind === 'device') {
      if (rest.length === 0) {
        if (method !== 'GET') return 'method';
        return async () => {
          const list = backend.devices().map((d) => ({ DeviceName: d.spec.name, Namespace: d.spec.namespace, Model: d.model.name, State: d.state }));
          return [200, body(200, `"Data":${goJson(list)}`)];
        };
      }
      if (rest.length === 2) {
        const [ns, name] = rest as [string, string];
        return method === 'GET' ? async () => [200, body(200, `"Data":${allProperties(deviceOf(ns, name, 'Get device error'))}`)] : 'method';
      }
      if (rest.length === 3) {
        const [ns, name, prop] = rest as [string, string, string];
        if (method === 'GET') return async () => [200, body(200, `"Data":${readProperty(deviceOf(ns, name, 'Get device data error'), prop)}`)];
        if (method === 'PUT' || method === 'POST') return async (req) => {
          requireToken(req);
          return write(req, ns, name, prop, valueText(await readJson(req)), undefined);
        };
        return 'method';
      }
      return undefined;
    }
    if (kind === 'devicemethod') {
      if (rest.length === 2) {
        const [ns, name] = rest as [string, string];
        return method === 'GET' ? async () => [200, body(200, `"Data":${methods(deviceOf(ns, name, 'Get device method error'))}`)] : 'method';
      }
      if (rest.length === 4) {
        const [ns, name, m, prop] = rest as [string, string, string, string];
        if (method === 'PUT' || method === 'POST') return async (req) => {
          requireToken(req);
          return write(req, ns, name, prop, valueText(await readJson(req)), m);
        };
        return 'method';
      }
      if (rest.length === 5) {
        const [ns, name, m, prop, data] = rest as [string, string, string, string, string];
        return method === 'GET' ? async (req) => write(req, ns, name, prop, data, m) : 'method';
      }
      return undefined;
    }
    if (kind === 'meta' && rest[0] === 'model' && rest.length === 3) {
      const [, ns, name] = rest as [string, string, string];
      return method === 'GET' ? async () => [200, body(200, model(deviceOf(ns, name, 'Get device error')))] : 'method';
    }
    if (kind === 'database' && rest.length === 2) {
      return method === 'GET'
        ? async () => {
            throw new HttpError(503, 'Unsupported', 'The database is not enabled. Please configure mapper and try again');
          }
        : 'method';
    }
    return undefined;
  };

  const send = (req: IncomingMessage, res: ServerResponse, status: number, text: string, contentType = 'application/json', headers: Record<string, string> = {}): void => {
    // All headers in one writeHead (no per-header setHeader bookkeeping).
    const h: string[] = ['Content-Type', contentType, 'Content-Length', String(Buffer.byteLength(text))];
    const corr = req.headers['x-correlation-id'];
    if (typeof corr === 'string' && corr !== '') h.push('X-Correlation-ID', corr);
    for (const [k, v] of Object.entries(headers)) h.push(k, v);
    res.writeHead(status, h);
    res.end(text);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    try {
      const path = (req.url ?? '/').split('?')[0]!;
      const seg = decodeSegments(path);
      const h = route(method, seg);
      if (h === undefined) throw new HttpError(404, 'NotFound', `no route ${method} ${path}`);
      if (h === 'method') throw new HttpError(405, 'MethodNotAllowed', `${method} is not allowed on ${path}`);
      const [status, text, type] = await h(req, seg);
      send(req, res, status, text, type);
    } catch (err) {
      if (!(err instanceof HttpError)) {
        log.error({ err: (err as Error).message, url: req.url }, 'REST handler failed');
      }
      const e = err instanceof HttpError ? err : new HttpError(500, 'Internal', (err as Error).message ?? String(err));
      const details: Record<string, string> = { kind: e.kind };
      for (const [k, v] of Object.entries(e.details)) if (v !== undefined) details[k] = v;
      send(req, res, e.status, body(e.status, `"Message":${goJson(e.message)},"Error":${goJson(details)}`), 'application/json', e.headers);
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error({ err: (err as Error).message }, 'REST response failed');
      res.destroy();
    });
  });
  // A client may half-close its connection right after a request (FIN after sending, as `nc -N`
  // or a shell pipe does). Node's default answers nothing then: it aborts the request and ends
  // the socket at the FIN, before an asynchronous device write can answer. With half-open
  // connections allowed the answer is sent, then the connection closed. (`httpAllowHalfOpen` is
  // the http.Server property Node's own socket 'end' handler reads.)
  (server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  // Upstream: 10 s read and write timeouts.
  server.requestTimeout = 10_000;
  server.headersTimeout = 10_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      server.on('error', (err) => log.error({ err: err.message }, 'REST server error'));
      const a = server.address() as AddressInfo;
      resolve({
        address: { host: a.address, port: a.port },
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
}
