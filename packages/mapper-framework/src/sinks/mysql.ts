// SPDX-License-Identifier: Apache-2.0
// MySQL / MariaDB sink (mysql2): upstream's layout — one table per property named
// `<namespace>/<device>/<property>`, created on demand with (id, ts, field) — written with one
// multi-row INSERT per table per batch. Identifiers and values go through mysql2's escaping
// (`??` and `?` placeholders); nothing is pasted into SQL.
import { createHash } from 'node:crypto';
import mysql from 'mysql2/promise';
import { SinkError, type SinkRecord, type SinkWriter, type WriterContext } from './types.js';

const MAX_IDENT = 64;

/** Upstream's table name, shortened with a hash when it exceeds MySQL's 64-character limit. */
export function mysqlTable(r: Pick<SinkRecord, 'ns' | 'dev' | 'prop'>): string {
  const name = `${r.ns}/${r.dev}/${r.prop}`.replace(/\s+$/, '');
  if (name.length <= MAX_IDENT) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 10);
  return `${name.slice(0, MAX_IDENT - 11)}~${hash}`;
}

/** `host:port` (upstream DSN `tcp(addr)`), port 3306 by default. */
function hostPort(addr: string): { host: string; port: number } {
  const u = new URL(addr.includes('://') ? addr : `mysql://${addr}`);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 3306) };
}

/** mysql2 errors that say the row itself is bad (data exception / integrity constraint): retrying cannot help. */
function isPermanent(err: { sqlState?: string; fatal?: boolean }): boolean {
  if (err.fatal) return false;
  return typeof err.sqlState === 'string' && (err.sqlState.startsWith('22') || err.sqlState.startsWith('23'));
}

export function createMysqlWriter(spec: { addr: string; database: string; userName: string }, ctx: WriterContext): SinkWriter {
  const { host, port } = hostPort(spec.addr);
  const password = ctx.credential('PASSWORD');
  const pool = mysql.createPool({
    host,
    port,
    user: spec.userName,
    ...(password !== undefined ? { password } : {}),
    database: spec.database,
    connectionLimit: 2,
    connectTimeout: 5000,
    enableKeepAlive: true,
    // Timestamps are sent as local time (mysql2's default), as upstream formats them.
  });
  const created = new Set<string>();
  const where = `mysql ${host}:${port}/${spec.database}`;
  return {
    async write(records: readonly SinkRecord[]): Promise<void> {
      // Group by table, keeping first-seen order; one multi-row INSERT per table.
      const byTable = new Map<string, { first: number; rows: [Date, string][] }>();
      records.forEach((r, i) => {
        const t = mysqlTable(r);
        let g = byTable.get(t);
        if (!g) byTable.set(t, (g = { first: i, rows: [] }));
        g.rows.push([new Date(r.ts), r.val]);
      });
      let conn: mysql.PoolConnection;
      try {
        conn = await pool.getConnection();
      } catch (err) {
        throw new SinkError(`${where}: ${(err as Error).message}`, { cause: err });
      }
      try {
        await conn.beginTransaction();
        for (const [table, g] of byTable) {
          if (!created.has(table)) {
            await conn.query('CREATE TABLE IF NOT EXISTS ?? (id INT AUTO_INCREMENT PRIMARY KEY, ts DATETIME(3) NOT NULL, field TEXT)', [table]);
            created.add(table);
          }
          await conn.query('INSERT INTO ?? (ts, field) VALUES ?', [table, g.rows]);
        }
        await conn.commit();
      } catch (err) {
        await conn.rollback().catch(() => undefined);
        const e = err as Error & { sqlState?: string; fatal?: boolean; code?: string };
        if (e.code === 'ER_NO_SUCH_TABLE') created.clear();
        // The transaction is all or nothing: nothing of this batch was stored.
        throw new SinkError(`${where}: ${e.message}`, { permanent: isPermanent(e), cause: err });
      } finally {
        conn.release();
      }
    },
    async close(): Promise<void> {
      await pool.end().catch(() => undefined);
    },
  };
}
