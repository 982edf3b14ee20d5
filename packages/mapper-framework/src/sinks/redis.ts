// SPDX-License-Identifier: Apache-2.0
// Redis sink (ioredis): upstream's layout — one sorted set per device, score = sample time in
// ms, member = the DataModel JSON. A batch is one pipeline holding one multi-member ZADD per
// key, encoded here (a sorted set orders by score, so grouping a batch by key changes nothing
// that is stored, and costs Redis and the client about half of one ZADD per record). ZADD of
// an identical member is idempotent, so a batch replayed after an ambiguous failure is not
// duplicated. If a grouped command fails, the batch is written again one ZADD per record to
// find the exact record Redis refuses.
import { type ChainableCommander, Command, type Pipeline, Redis } from 'ioredis';
import { dataModelJson } from './data-model.js';
import { SinkError, type SinkRecord, type SinkWriter, type WriterContext, WRITER_HINTS } from './types.js';

/** `host:port` (upstream) or a `redis://` / `rediss://` URL. */
export function parseRedisAddr(addr: string): { host: string; port: number; tls: boolean } {
  const a = addr.trim();
  if (/^rediss?:\/\//.test(a)) {
    const u = new URL(a);
    return { host: u.hostname, port: Number(u.port || 6379), tls: u.protocol === 'rediss:' };
  }
  const m = /^\[?([^\]]*?)\]?(?::(\d+))?$/.exec(a);
  if (!m || !m[1]) throw new Error(`redis addr "${addr}" is not host:port`);
  return { host: m[1], port: Number(m[2] ?? 6379), tls: false };
}

export function redisKey(template: string, r: Pick<SinkRecord, 'ns' | 'dev'>): string {
  return template.replaceAll('{name}', r.dev).replaceAll('{namespace}', r.ns);
}

/**
 * `ZADD key score member [score member …]` in RESP, written into one buffer: what ioredis would
 * send, without its per-argument work (flattening, number conversion, one string concatenation
 * per argument, then encoding the whole string again) — half of the client's CPU per record
 * while a backlog is replayed.
 */
export function encodeZadd(key: string, records: readonly SinkRecord[]): Buffer {
  const members: string[] = new Array(records.length);
  const heads: string[] = new Array(records.length);
  const keyBytes = Buffer.byteLength(key);
  const head = `*${2 + 2 * records.length}\r\n$4\r\nZADD\r\n$${keyBytes}\r\n`;
  let size = head.length + keyBytes + 2;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    const m = dataModelJson(r);
    const score = String(Math.trunc(r.ts));
    const mb = Buffer.byteLength(m);
    members[i] = m;
    heads[i] = `$${score.length}\r\n${score}\r\n$${mb}\r\n`;
    size += heads[i]!.length + mb + 2;
  }
  const buf = Buffer.allocUnsafe(size);
  let o = buf.write(head, 0, 'latin1');
  o += buf.write(key, o, 'utf8');
  buf[o++] = 13;
  buf[o++] = 10;
  for (let i = 0; i < records.length; i++) {
    o += buf.write(heads[i]!, o, 'latin1');
    o += buf.write(members[i]!, o, 'utf8');
    buf[o++] = 13;
    buf[o++] = 10;
  }
  return buf;
}

/** A ZADD whose RESP bytes are already encoded (ioredis' own Script command overrides toWritable the same way). */
class ZaddCommand extends Command {
  private readonly raw: Buffer;

  constructor(key: string, raw: Buffer) {
    super('zadd', [key]);
    this.raw = raw;
  }

  override toWritable(): Buffer {
    return this.raw;
  }
}

export function createRedisWriter(spec: { addr: string; db: number }, ctx: WriterContext): SinkWriter {
  const { host, port, tls } = parseRedisAddr(spec.addr);
  const password = ctx.credential('PASSWORD');
  const client = new Redis({
    host,
    port,
    db: spec.db,
    ...(password ? { password } : {}),
    ...(tls ? { tls: {} } : {}),
    // Fail fast while disconnected: the channel buffers to disk instead of ioredis' memory.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 5000,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 6), 2000),
    lazyConnect: false,
  });
  let lastConnErr = '';
  client.on('error', (err: Error) => {
    // ioredis reports every failed reconnect; log changes only.
    if (err.message !== lastConnErr) {
      lastConnErr = err.message;
      ctx.log.debug({ err: err.message }, 'redis connection error');
    }
  });
  client.on('ready', () => {
    lastConnErr = '';
  });
  const template = ctx.options.redisKeyTemplate;
  // The default template is the device name (upstream): no string work per record.
  const keyOf = template === '{name}' ? (r: SinkRecord): string => r.dev : (r: SinkRecord): string => redisKey(template, r);
  const exec = async (p: ReturnType<Redis['pipeline']>): Promise<[Error | null, unknown][]> => {
    let results: [Error | null, unknown][] | null;
    try {
      results = await p.exec();
    } catch (err) {
      throw new SinkError(`redis ${spec.addr}: ${(err as Error).message}`, { cause: err });
    }
    if (!results) throw new SinkError(`redis ${spec.addr}: pipeline aborted`);
    return results;
  };
  return {
    ...WRITER_HINTS.redis,
    ready: (signal) =>
      client.status === 'ready'
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            const done = (): void => {
              client.off('ready', done);
              signal.removeEventListener('abort', done);
              resolve();
            };
            client.once('ready', done);
            signal.addEventListener('abort', done, { once: true });
          }),
    async write(records: readonly SinkRecord[]): Promise<void> {
      if (client.status !== 'ready') throw new SinkError(`redis ${spec.addr} not connected (${client.status}${lastConnErr ? `: ${lastConnErr}` : ''})`);
      // One ZADD per key, members in batch order.
      const groups = new Map<string, SinkRecord[]>();
      for (const r of records) {
        const k = keyOf(r);
        const g = groups.get(k);
        if (g) g.push(r);
        else groups.set(k, [r]);
      }
      const p = client.pipeline() as ChainableCommander & Pipeline;
      for (const [k, rs] of groups) p.sendCommand(new ZaddCommand(k, encodeZadd(k, rs)));
      const results = await exec(p);
      if (results.every(([e]) => e === null)) return;
      // A key refused its ZADD (WRONGTYPE…): find the record, one ZADD each (idempotent for the rest).
      const single = client.pipeline();
      for (const r of records) single.zadd(keyOf(r), r.ts, dataModelJson(r));
      const each = await exec(single);
      const bad = each.findIndex(([e]) => e !== null);
      if (bad >= 0) {
        const e = each[bad]![0]!;
        // WRONGTYPE: the key exists with another type; that record can never be stored.
        throw new SinkError(`redis ${spec.addr}: ${e.message}`, { delivered: bad, permanent: /^WRONGTYPE/.test(e.message) });
      }
    },
    async close(): Promise<void> {
      client.disconnect();
    },
  };
}
