// SPDX-License-Identifier: Apache-2.0
// TDengine sink over its REST endpoint (@tdengine/rest; TDengine has no parameter binding over
// REST). Upstream's layout — a super table per device with columns
// (ts, deviceid, propertyname, data, type) and a tag, a sub table per property — with valid
// identifiers (upstream used `<ns>/<device>`, which TDengine rejects, and sub tables named
// after the bare property, which collide between devices) and values written only as escaped
// literals or integers: no text from a device or a CRD reaches the SQL unescaped.
import { createHash } from 'node:crypto';
import tdengine from '@tdengine/rest';
import { SinkError, type SinkRecord, type SinkWriter, type WriterContext } from './types.js';

const MAX_IDENT = 192;

/**
 * A TDengine identifier from arbitrary text: lower-case `[a-z0-9_]`, not starting with a
 * digit, at most 192 characters. `-` and `.` (Kubernetes names) become `_`; when anything else
 * had to change (case, other characters, length) a hash of the original is appended so that
 * distinct names never map to the same table.
 */
export function tdIdentifier(text: string, prefix = 't'): string {
  let s = text.replace(/[-.]/g, '_');
  const lossy = /[^a-z0-9_]/.test(s);
  s = s.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  if (s === '' || /^[0-9]/.test(s)) s = `${prefix}_${s}`;
  const hash = createHash('sha256').update(text).digest('hex').slice(0, 8);
  if (lossy) s = `${s}_${hash}`;
  if (s.length > MAX_IDENT) s = `${s.slice(0, MAX_IDENT - 9)}_${hash}`;
  return s;
}

/** A SQL string literal: single-quoted, with `\` and `'` escaped as TDengine requires. */
export function tdString(s: string): string {
  return `'${s.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

/** Super table of a device: `<namespace>__<device>` (Kubernetes names cannot contain `_`, so `__` is unambiguous). */
export function tdSuperTable(ns: string, dev: string): string {
  return tdIdentifier(`${ns}__${dev}`);
}

/** Sub table of one property of one device. */
export function tdSubTable(ns: string, dev: string, prop: string): string {
  return tdIdentifier(`${ns}__${dev}__${prop}`);
}

const COLUMN_BYTES = 1024;

export function tdCreateSuperTable(db: string, stable: string): string {
  return `CREATE STABLE IF NOT EXISTS ${db}.${stable} (ts TIMESTAMP, deviceid VARCHAR(${COLUMN_BYTES}), propertyname VARCHAR(${COLUMN_BYTES}), data VARCHAR(${COLUMN_BYTES}), type VARCHAR(64)) TAGS (location VARCHAR(${COLUMN_BYTES}))`;
}

/** One multi-table INSERT for a batch (timestamps as integer ms: the database must use ms precision, TDengine's default). */
export function tdInsert(db: string, records: readonly SinkRecord[]): string {
  const parts: string[] = [];
  let current = '';
  for (const r of records) {
    const sub = tdSubTable(r.ns, r.dev, r.prop);
    const row = `(${Math.trunc(r.ts)}, ${tdString(`${r.ns}/${r.dev}`)}, ${tdString(r.prop)}, ${tdString(r.val)}, ${tdString(r.type)})`;
    if (sub !== current) {
      parts.push(` ${db}.${sub} USING ${db}.${tdSuperTable(r.ns, r.dev)} TAGS (${tdString(r.prop)}) VALUES ${row}`);
      current = sub;
    } else {
      parts.push(` ${row}`);
    }
  }
  return `INSERT INTO${parts.join('')}`;
}

/** `host:port` (upstream DSN `http(addr)`) or a URL. */
function restTarget(addr: string): { scheme: string; host: string; port: number } {
  const u = new URL(addr.includes('://') ? addr : `http://${addr}`);
  return { scheme: u.protocol.replace(':', ''), host: u.hostname, port: Number(u.port || 6041) };
}

const PERMANENT = /too long|out of range|invalid (timestamp|value|number|data)|value (is )?too|data type mismatch/i;

export function createTdengineWriter(spec: { addr: string; dbname: string }, ctx: WriterContext): SinkWriter {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(spec.dbname)) {
    // Checked when the sink is configured too; kept here for restored buffers.
    throw new SinkError(`TDengine dbName "${spec.dbname}" is not a valid identifier`, { permanent: true });
  }
  const db = spec.dbname;
  const target = restTarget(spec.addr);
  const cursor = tdengine.connect({ ...target, path: '/rest/sql', user: ctx.credential('USERNAME') ?? 'root', passwd: ctx.credential('PASSWORD') ?? 'taosdata' }).cursor();
  const created = new Set<string>();
  const run = async (sql: string): Promise<void> => {
    let res: Awaited<ReturnType<typeof cursor.query>>;
    try {
      res = await cursor.query(sql);
    } catch (err) {
      throw new SinkError(`tdengine ${spec.addr}: ${(err as Error).message}`, { cause: err });
    }
    const code = res.getErrCode();
    if (code !== undefined && code !== 0) {
      const desc = res.getErrStr() ?? '';
      throw new SinkError(`tdengine ${spec.addr}: [${code}] ${desc}`, { permanent: PERMANENT.test(desc) });
    }
  };
  return {
    async write(records: readonly SinkRecord[]): Promise<void> {
      for (const r of records) {
        const st = tdSuperTable(r.ns, r.dev);
        if (created.has(st)) continue;
        await run(tdCreateSuperTable(db, st));
        created.add(st);
      }
      await run(tdInsert(db, records));
    },
    async close(): Promise<void> {},
  };
}
