// SPDX-License-Identifier: Apache-2.0
// Fuzzed HTTP requests: method, path segments (route words, ids, percent-encodings valid and
// broken, dot segments, long and odd segments), query, headers (token right/wrong/absent,
// content types) and body (JSON values, junk, oversized). Sent over a keep-alive agent; a few
// through a raw socket (bytes Node's client refuses to send).
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import fc from 'fast-check';

export interface FuzzRequest {
  readonly method: string;
  /** Path segments exactly as sent (already percent-encoded where needed). */
  readonly segments: readonly string[];
  readonly trailingSlash: boolean;
  readonly query: string;
  readonly auth: 'none' | 'right' | 'wrong' | 'basic' | 'long' | 'lowercase';
  readonly contentType: string | undefined;
  readonly body: string | undefined;
  readonly raw: boolean;
}

export interface FuzzResponse {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
  /** Set when the connection failed instead of answering. */
  readonly error?: string;
}

export function pathOf(r: Pick<FuzzRequest, 'segments' | 'trailingSlash' | 'query'>): string {
  return `/${r.segments.join('/')}${r.trailingSlash ? '/' : ''}${r.query}`;
}

/** Segments as the server will see them after percent-decoding; undefined when that fails. */
export function decodedSegments(r: Pick<FuzzRequest, 'segments' | 'trailingSlash'>): string[] | undefined {
  try {
    return [...r.segments, ...(r.trailingSlash ? [''] : [])].map((s) => decodeURIComponent(s));
  } catch {
    return undefined;
  }
}

/** Percent-encodes what cannot go raw into a path segment (UTF-8; lone surrogates become U+FFFD). */
const encodeSeg = (s: string): string =>
  s.replace(/[^\u0021-\u007e]|[%/?#]/gu, (c) =>
    [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  );

/**
 * Requests for a server. `templates` are the server's routes with `{slot}` segments filled from
 * `slots[slot]` (or a random segment now and then), so most requests reach a handler.
 */
export function requestArb(opts: { words: readonly string[]; ids: readonly string[]; templates?: readonly string[]; slots?: Readonly<Record<string, readonly string[]>> }): fc.Arbitrary<FuzzRequest> {
  const segment = fc.oneof(
    { weight: 10, arbitrary: fc.constantFrom(...opts.words) },
    { weight: 6, arbitrary: fc.constantFrom(...opts.ids) },
    { weight: 2, arbitrary: fc.constantFrom('', '.', '..', '%', '%zz', '%2', '%C0%AF', '%00', '%2F', '%2e%2e', '%E2%80%AE', '%FF%FE', '%F0%9F%98%80', '~', '*', 'null', 'undefined', '__proto__', 'constructor', 'hasOwnProperty', 'toString') },
    { weight: 2, arbitrary: fc.string({ maxLength: 12 }).map(encodeSeg) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }).map(encodeSeg) },
    { weight: 1, arbitrary: fc.integer({ min: 200, max: 20_000 }).map((n) => 'x'.repeat(n)) },
    { weight: 1, arbitrary: fc.oneof(fc.double(), fc.integer(), fc.constantFrom('1e400', '-0', 'NaN', 'true')).map((v) => encodeSeg(String(v))) },
  );
  const body = fc.oneof(
    { weight: 6, arbitrary: fc.oneof(fc.double(), fc.integer(), fc.boolean(), fc.string({ maxLength: 10 }), fc.constant(null), fc.array(fc.nat(), { maxLength: 2 }), fc.object({ maxDepth: 1 })).map((value) => JSON.stringify({ value })) },
    { weight: 2, arbitrary: fc.json({ maxDepth: 2 }) },
    { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
    { weight: 1, arbitrary: fc.constantFrom('', ' ', '{', '{"value":', '{"value": 1e999}', '{"__proto__": {"value": 1}}', '{"value": "21.5", "value": true}', '[1,2]') },
    { weight: 1, arbitrary: fc.integer({ min: 60_000, max: 200_000 }).map((n) => `{"value":"${'9'.repeat(n)}"}`) },
    { weight: 1, arbitrary: fc.integer({ min: 100, max: 5000 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`) },
  );
  const templated: fc.Arbitrary<string[]> =
    opts.templates && opts.templates.length > 0
      ? fc.tuple(fc.constantFrom(...opts.templates), fc.array(segment, { minLength: 12, maxLength: 12 }), fc.array(fc.nat(), { minLength: 12, maxLength: 12 }), fc.nat(9)).map(([tpl, randomSegs, picks, noise]) =>
          tpl.split('/').map((part, i) => {
            const m = /^\{(\w+)\}$/.exec(part);
            if (!m) return noise === 0 && i === picks[0]! % 6 ? randomSegs[i]! : part;
            const choices = opts.slots?.[m[1]!] ?? [];
            return choices.length === 0 || noise === 1 ? randomSegs[i]! : encodeSeg(choices[picks[i]! % choices.length]!);
          }),
        )
      : fc.constant([]);
  return fc.record({
    method: fc.oneof({ weight: 8, arbitrary: fc.constantFrom('GET', 'PUT', 'POST') }, { weight: 1, arbitrary: fc.constantFrom('DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND', 'get') }),
    segments: opts.templates ? fc.oneof({ weight: 3, arbitrary: templated }, { weight: 1, arbitrary: fc.array(segment, { minLength: 0, maxLength: 9 }) }) : fc.array(segment, { minLength: 0, maxLength: 9 }),
    trailingSlash: fc.oneof({ weight: 5, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
    query: fc.oneof(
      fc.constant(''),
      fc.constantFrom('?', '?property=temperature&limit=5', '?limit=-1', '?limit=1e9', '?limit=abc', '?property=', '?source=%zz', '?a=1&a=2', '?%ff=%fe'),
      fc.dictionary(fc.string({ maxLength: 6 }).map(encodeSeg), fc.string({ maxLength: 8 }).map(encodeSeg), { maxKeys: 3 }).map((q) => `?${Object.entries(q).map(([k, v]) => `${k}=${v}`).join('&')}`),
    ),
    auth: fc.constantFrom('none', 'right', 'right', 'wrong', 'basic', 'long', 'lowercase'),
    contentType: fc.option(fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'application/yaml', 'multipart/form-data', 'x/y', ''), { nil: undefined }),
    body: fc.option(body, { nil: undefined }),
    raw: fc.boolean().chain((b) => (b ? fc.boolean() : fc.constant(false))).chain((b) => (b ? fc.boolean() : fc.constant(false))),
  });
}

/** Sends fuzzed requests to one server; `token` is the right bearer token (if any). */
export class HttpFuzzClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 4 });
  private readonly port: number;
  private readonly token: string | undefined;
  constructor(port: number, token: string | undefined) {
    this.port = port;
    this.token = token;
  }

  private headers(r: FuzzRequest): Record<string, string> {
    const h: Record<string, string> = {};
    if (r.contentType !== undefined) h['content-type'] = r.contentType;
    switch (r.auth) {
      case 'right':
        if (this.token) h['authorization'] = `Bearer ${this.token}`;
        break;
      case 'lowercase':
        if (this.token) h['authorization'] = `bearer   ${this.token}  `;
        break;
      case 'wrong':
        h['authorization'] = `Bearer ${this.token ? `${this.token.slice(0, -1)}x` : 'nope'}`;
        break;
      case 'basic':
        h['authorization'] = `Basic ${Buffer.from(`admin:${this.token ?? ''}`).toString('base64')}`;
        break;
      case 'long':
        h['authorization'] = `Bearer ${'A'.repeat(8000)}`;
        break;
      case 'none':
        break;
    }
    return h;
  }

  /**
   * Sends one request. A connection error on a pooled keep-alive connection is retried once on
   * a fresh one (the server may have closed the pooled socket after a 4xx it answered early);
   * what still fails is reported.
   */
  async send(r: FuzzRequest, timeoutMs = 10_000): Promise<FuzzResponse> {
    if (r.raw) return this.sendRaw(r, timeoutMs);
    const first = await this.sendAgent(r, timeoutMs, this.agent);
    if (!first.error) return first;
    return this.sendAgent(r, timeoutMs, false);
  }

  private sendAgent(r: FuzzRequest, timeoutMs: number, agent: Agent | false): Promise<FuzzResponse> {
    return new Promise((resolve) => {
      let done = false;
      const finish = (x: FuzzResponse): void => {
        if (!done) {
          done = true;
          resolve(x);
        }
      };
      let req;
      try {
        const headers = this.headers(r);
        if (r.body !== undefined) headers['content-length'] = String(Buffer.byteLength(r.body));
        req = request({ host: '127.0.0.1', port: this.port, method: r.method.toUpperCase(), path: pathOf(r), agent, headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => finish({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', (e) => finish({ status: 0, contentType: '', body: '', error: e.message }));
        });
      } catch (err) {
        // Node's client refuses some paths/headers; send those raw.
        void this.sendRaw(r, timeoutMs).then(finish);
        void err;
        return;
      }
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', (e: NodeJS.ErrnoException) => finish({ status: 0, contentType: '', body: '', error: `${e.code ?? ''} ${e.message}`.trim() }));
      if (r.body !== undefined) req.end(r.body);
      else req.end();
    });
  }

  /** One request on its own connection, written byte for byte. */
  private sendRaw(r: FuzzRequest, timeoutMs: number): Promise<FuzzResponse> {
    return new Promise((resolve) => {
      const s = connect(this.port, '127.0.0.1');
      const chunks: Buffer[] = [];
      const t = setTimeout(() => s.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      const h = this.headers(r);
      const body = r.body ?? '';
      const head = [`${r.method} ${pathOf(r).replace(/[\r\n]/g, '')} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', ...Object.entries(h).map(([k, v]) => `${k}: ${v}`), `Content-Length: ${Buffer.byteLength(body)}`, '', ''].join('\r\n');
      s.on('connect', () => s.end(head + body));
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('error', () => undefined);
      s.on('close', () => {
        clearTimeout(t);
        const raw = Buffer.concat(chunks);
        const text = raw.toString('latin1');
        const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
        const sep = text.indexOf('\r\n\r\n');
        const head = text.slice(0, Math.max(0, sep));
        const ct = /\r\ncontent-type: ([^\r\n]*)/i.exec(head);
        let body: Buffer = sep >= 0 ? raw.subarray(sep + 4) : Buffer.alloc(0);
        if (/\r\ntransfer-encoding: chunked/i.test(head)) body = dechunk(body);
        resolve(m ? { status: Number(m[1]), contentType: ct?.[1] ?? '', body: body.toString('utf8') } : { status: 0, contentType: '', body: '', error: `no HTTP answer (${text.length} bytes)` });
      });
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** The payload of a chunked HTTP/1.1 body. */
function dechunk(b: Buffer): Buffer {
  const out: Buffer[] = [];
  let i = 0;
  while (i < b.length) {
    const eol = b.indexOf('\r\n', i);
    if (eol < 0) break;
    const size = parseInt(b.subarray(i, eol).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    out.push(b.subarray(eol + 2, eol + 2 + size));
    i = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}
