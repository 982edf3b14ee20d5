// SPDX-License-Identifier: Apache-2.0
// MySQL sink end to end against Debian's MariaDB server (temp datadir, started by the test).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { crdYaml, type Peer, recorder, startMapper, startMariadb, tempDir, until } from './sinks-helpers.ts';

const PASSWORD = "s3cr'et\"pw";

describe('mysql sink (real MariaDB)', () => {
  let db: Peer;
  let conn: mysql.Connection;
  const secrets = tempDir('mksec-');
  before(async () => {
    db = await startMariadb(PASSWORD);
    conn = await mysql.createConnection({ host: '127.0.0.1', port: db.port, user: 'mk', password: PASSWORD, database: 'mk' });
    writeFileSync(join(secrets.dir, 'password'), `${PASSWORD}\n`);
  });
  after(async () => {
    await conn?.end();
    await db?.dispose();
    secrets.cleanup();
  });

  it('creates a table per property on demand (upstream name and columns) and stores every sample with multi-row INSERTs', async () => {
    const rec = recorder();
    const pm = `dbMethod:\n  mysql:\n    mysqlClientConfig:\n      addr: 127.0.0.1:${db.port}\n      database: mk\n      userName: mk`;
    const rig = await startMapper(
      crdYaml('furnace', [
        { name: 'temp', collectCycle: 20, reportCycle: 20, pushMethod: pm },
        { name: 'note', type: 'STRING', fixed: "it's a \"quote\"; DROP TABLE x; --", collectCycle: 200, reportCycle: 200, pushMethod: pm },
      ]),
      { consumers: [rec], configExtra: `data_plane:\n  credentials_dir: ${secrets.dir}\n` },
    );
    try {
      await until(async () => {
        try {
          const [rows] = await conn.query('SELECT COUNT(*) AS n FROM `default/furnace/temp`');
          return (rows as { n: number }[])[0]!.n >= 40;
        } catch {
          return false;
        }
      }, 15_000, '40 rows of temp');
      // Hold writes for a moment (global read lock): samples queue up and go out as one multi-row INSERT.
      const [before] = await conn.query("SHOW GLOBAL STATUS LIKE 'Com_insert'");
      const insertsBefore = Number((before as { Value: string }[])[0]!.Value);
      const [countBefore] = await conn.query('SELECT COUNT(*) AS n FROM `default/furnace/temp`');
      const rowsBefore = (countBefore as { n: number }[])[0]!.n;
      await conn.query('LOCK TABLES `default/furnace/temp` READ');
      await new Promise((r) => setTimeout(r, 600));
      await conn.query('UNLOCK TABLES');
      await rig.ec.removeDevice('default', 'furnace');
      await until(() => rig.mapper.sinks()[0]!.queued === 0 && rig.mapper.sinks()[0]!.bufferedRecords === 0, 10_000, 'flushed');
      const [cols] = await conn.query('SHOW COLUMNS FROM `default/furnace/temp`');
      assert.deepEqual(
        (cols as { Field: string; Type: string }[]).map((c) => `${c.Field} ${c.Type}`),
        ['id int(11)', 'ts datetime(3)', 'field text'],
      );
      const [rows] = await conn.query('SELECT ts, field FROM `default/furnace/temp` ORDER BY id');
      const stored = (rows as { ts: Date; field: string }[]).map((r) => `${r.field}@${r.ts.getTime()}`);
      const produced = rec.samples.filter((s) => s.property === 'temp').map((s) => `${s.text}@${s.timestamp}`);
      assert.deepEqual(stored, produced, 'every sample, in order, with its ms timestamp');
      const [notes] = await conn.query('SELECT field FROM `default/furnace/note`');
      assert.ok((notes as { field: string }[]).length > 0);
      assert.equal((notes as { field: string }[])[0]!.field, "it's a \"quote\"; DROP TABLE x; --");
      // A multi-row INSERT per batch: the rows that queued during the lock took far fewer statements (the server counts them).
      const [status] = await conn.query("SHOW GLOBAL STATUS LIKE 'Com_insert'");
      const inserts = Number((status as { Value: string }[])[0]!.Value) - insertsBefore;
      const added = stored.length - rowsBefore;
      assert.ok(added >= 20 && inserts < added / 3, `INSERT statements (${inserts}) for ${added} rows`);
    } finally {
      await rig.stop();
    }
  });

  it('buffers (retries) on a wrong password instead of dropping samples, and never shows the password', async () => {
    const bad = tempDir('mkbad-');
    writeFileSync(join(bad.dir, 'password'), 'wrong');
    const pm = `dbMethod:\n  mysql:\n    mysqlClientConfig:\n      addr: 127.0.0.1:${db.port}\n      database: mk\n      userName: mk`;
    const rig = await startMapper(crdYaml('locked', [{ name: 'temp', pushMethod: pm }]), { configExtra: `data_plane:\n  credentials_dir: ${bad.dir}\n` });
    try {
      await until(() => (rig.mapper.sinks()[0]?.writeErrors ?? 0) >= 2, 10_000, 'auth failures');
      const st = rig.mapper.sinks()[0]!;
      assert.equal(st.state, 'buffering');
      assert.match(st.lastError ?? '', /Access denied/);
      assert.equal(st.dropped.rejected, 0, 'an auth error is not a refused sample');
      assert.ok(!JSON.stringify(st).includes('wrong'), 'the password appears nowhere in the status');
    } finally {
      await rig.stop();
      bad.cleanup();
    }
  });
});
