// SPDX-License-Identifier: Apache-2.0
// HTTP JSON API, server-sent events and the dashboard page (node:http, no framework: a dozen
// routes do not need one).
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES, isMapperError, MapperError } from '@mapperkit/framework';
import type { EdgecoreDmi, ServerEvent } from './server.js';

export interface HttpApi {
  readonly url: string;
  close(): Promise<void>;
}

const MAX_BODY = 4 * 1024 * 1024;
const DASHBOARD = fileURLToPath(new URL('../static/dashboard.html', import.meta.url));

/** Parses `host:port` (`:port` and `port` mean 127.0.0.1). */
export function parseListen(spec: string): { host: string; port: number } {
  const i = spec.lastIndexOf(':');
  const host = i > 0 ? spec.slice(0, i).replace(/^\[|\]$/g, '') : '127.0.0.1';
  const portText = i >= 0 ? spec.slice(i + 1) : spec;
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new MapperError('InvalidConfig', `--http ${spec}: "${portText}" is not a TCP port (0-65535)`, { key: 'http' });
  return { host, port };
}

/**
 * Devices may carry credentials in URLs (an MQTT broker `mqtt://user:password@host`, an HTTP
 * push target): the API, the event stream and so the dashboard show such URLs with the password
 * masked. (The mapper receives the Device unchanged over DMI.)
 */
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^/@\s:]*):([^/@\s]+)@/gi;
function redact(_key: string, value: unknown): unknown {
  return typeof value === 'string' && value.includes('@') ? value.replace(URL_PASSWORD, '$1:***@') : value;
}

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body, redact, 2);
  res.writeHead(code, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new MapperError('InvalidConfig', `request body larger than ${MAX_BODY} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function notFound(what: string): MapperError {
  return new MapperError('DeviceNotFound', what);
}

export async function startHttpApi(server: EdgecoreDmi, listen: string): Promise<HttpApi> {
  const { host, port } = parseListen(listen);
  const clients = new Set<ServerResponse>();
  const onEvent = (ev: ServerEvent): void => {
    const frame = `event: ${ev.type}\ndata: ${JSON.stringify(ev.data, redact)}\n\n`;
    for (const c of clients) c.write(frame);
  };
  server.events.on('event', onEvent);

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let url: URL;
    let parts: string[];
    try {
      const raw = req.url ?? '/';
      // "//x" would be taken for a host by new URL(path, base); no route starts with "//".
      if (!raw.startsWith('/') || raw.startsWith('//')) throw new Error('not an absolute path');
      url = new URL(raw, 'http://localhost');
      parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    } catch (err) {
      throw new MapperError('InvalidConfig', `bad request path ${JSON.stringify(req.url)}: ${(err as Error).message}`, { key: 'path' });
    }
    const method = req.method ?? 'GET';
    if (method === 'GET' && (url.pathname === '/' || url.pathname === '/index.html')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(readFileSync(DASHBOARD));
      return;
    }
    if (url.pathname === '/healthz') return send(res, 200, { ok: true });
    if (parts[0] !== 'api' || parts[1] !== 'v1') throw notFound(`no route ${method} ${url.pathname}`);
    const [, , resource, a, b, c, d, e] = parts;
    if (method === 'GET') {
      switch (resource) {
        case 'overview':
          return send(res, 200, { mappers: server.mappers(), devices: server.devices(), models: server.models(), problems: server.problems(), stats: server.stats() });
        case 'mappers':
          return send(res, 200, server.mappers());
        case 'models':
          return send(res, 200, server.models());
        case 'problems':
          return send(res, 200, server.problems());
        case 'calls':
          return send(res, 200, server.calls(Number(url.searchParams.get('limit') ?? 100)));
        case 'stats':
          return send(res, 200, server.stats());
        case 'devices': {
          if (a === undefined) return send(res, 200, server.devices());
          const ref = b === undefined ? a : `${a}/${b}`;
          if (c === 'history') {
            const prop = url.searchParams.get('property');
            if (!prop) throw new MapperError('InvalidConfig', 'query parameter "property" is required', { key: 'property' });
            if (!server.deviceView(ref)) throw notFound(`device ${ref} not found`);
            return send(res, 200, server.history(ref, prop, Number(url.searchParams.get('limit') ?? 500)));
          }
          const v = server.deviceDetail(ref);
          if (!v) throw notFound(`device ${ref.includes('/') ? ref : `default/${ref}`} not found`);
          return send(res, 200, v);
        }
        case 'events': {
          res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
          res.write(': connected\n\n');
          clients.add(res);
          const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
          req.on('close', () => {
            clearInterval(ping);
            clients.delete(res);
          });
          return;
        }
      }
    }
    if (method === 'POST' && (resource === 'apply' || resource === 'delete')) {
      const body = await readBody(req);
      const source = url.searchParams.get('source') ?? 'request';
      const result = resource === 'apply' ? server.apply(body, source) : server.delete(body, source);
      const failed = result.errors.some((x) => x.severity === 'error');
      return send(res, failed ? 422 : 200, result);
    }
    // PUT /api/v1/devices/{ns}/{name}/properties/{prop}/desired  body {"value": "…"}
    if (method === 'PUT' && resource === 'devices' && c === 'properties' && e === 'desired' && a && b && d) {
      const body = await readBody(req);
      let value: unknown;
      try {
        value = (JSON.parse(body) as { value?: unknown }).value;
      } catch {
        throw new MapperError('InvalidConfig', 'body must be JSON like {"value": "21.5"}', { key: 'value' });
      }
      if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
        throw new MapperError('InvalidConfig', 'body must be JSON like {"value": "21.5"}: "value" is required', { key: 'value' });
      }
      return send(res, 200, server.setDesired(`${a}/${b}`, d, String(value)));
    }
    throw notFound(`no route ${method} ${url.pathname}`);
  };

  const http = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      const e = isMapperError(err) ? err : new MapperError('Internal', (err as Error).message);
      if (!res.headersSent) send(res, ERROR_CODES[e.kind].http, { error: e.message, kind: e.kind, device: e.device, property: e.property, key: e.key });
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  const addr = http.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${shownHost}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.events.off('event', onEvent);
        for (const c of clients) c.end();
        clients.clear();
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}
