// SPDX-License-Identifier: Apache-2.0
// Redis sink end to end: Device CRD with pushMethod.dbMethod.redis → mapper → real redis-server.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { crdYaml, type MapperRig, type Peer, recorder, sleep, startMapper, startRedis, until } from './sinks-helpers.ts';

describe('redis sink (real redis-server)', () => {
  let redis: Peer;
  let client: Redis;
  before(async () => {
    redis = await startRedis();
    client = new Redis({ port: redis.port, host: '127.0.0.1', lazyConnect: false });
  });
  after(async () => {
    client?.disconnect();
    await redis?.dispose();
  });

  it('stores samples with upstream layout: ZSET per device name, score = sample ms, member = DataModel JSON', async () => {
    const rec = recorder();
    const pm = (db: number): string => `dbMethod:\n  redis:\n    redisClientConfig:\n      addr: 127.0.0.1:${redis.port}\n      db: ${db}\n      poolsize: 10\n      minIdleConns: 2`;
    const rig: MapperRig = await startMapper(
      crdYaml('boiler', [
        { name: 'temp', pushMethod: pm(0) },
        { name: 'label', type: 'STRING', fixed: 'a "quoted" <value> & more, é 😀', pushMethod: pm(0) },
      ]),
      { consumers: [rec] },
    );
    try {
      await until(async () => (await client.zcard('boiler')) >= 10, 10_000, '10 samples in redis');
      const members = await client.zrange('boiler', '0', '-1', 'WITHSCORES');
      const temp: { v: number; ts: number; score: number }[] = [];
      for (let i = 0; i < members.length; i += 2) {
        const m = JSON.parse(members[i]!) as Record<string, unknown>;
        assert.deepEqual(Object.keys(m), ['DeviceName', 'PropertyName', 'Namespace', 'Value', 'Type', 'TimeStamp']);
        assert.equal(m['DeviceName'], 'boiler');
        assert.equal(m['Namespace'], 'default');
        assert.equal(Number(members[i + 1]), m['TimeStamp'], 'score is the sample time in ms');
        if (m['PropertyName'] === 'temp') {
          assert.equal(m['Type'], 'int');
          temp.push({ v: Number(m['Value']), ts: Number(m['TimeStamp']), score: Number(members[i + 1]) });
        } else {
          assert.equal(m['PropertyName'], 'label');
          assert.equal(m['Value'], 'a "quoted" <value> & more, é 😀', 'multi-byte UTF-8 members arrive intact (RESP lengths are bytes)');
          // Go's encoding/json escapes <, > and & — byte-compatible with upstream members.
          assert.ok(members[i]!.includes('\\u003cvalue\\u003e \\u0026 more'), members[i]);
        }
      }
      assert.ok(temp.length >= 5);
      // Batched: one multi-member ZADD per device key and batch, not one command per sample.
      const zadd = /cmdstat_zadd:calls=(\d+)/.exec(await client.info('commandstats'));
      assert.ok(zadd && Number(zadd[1]) >= 1 && Number(zadd[1]) < members.length / 2, `ZADD calls ${zadd?.[1]} for ${members.length / 2} members`);
      // Counter values arrive complete and in order.
      assert.deepEqual(
        temp.map((t) => t.v),
        temp.map((_, i) => temp[0]!.v + i),
      );
      // Each member is one of the samples the runtime produced (same value and timestamp).
      for (const t of temp) assert.ok(rec.samples.some((s) => s.property === 'temp' && s.text === String(t.v) && s.timestamp === t.ts));
      const st = rig.mapper.sinks();
      assert.equal(st.length, 1, 'both properties share one connection');
      assert.equal(st[0]!.kind, 'redis');
      assert.equal(st[0]!.sink, `redis:127.0.0.1:${redis.port}/0`);
      assert.equal(st[0]!.state, 'up');
    } finally {
      await rig.stop();
    }
  });

  it('honours reportCycle: one sample (the latest) per reportCycle when collectCycle is shorter', async () => {
    await client.del('slow');
    const rec = recorder();
    const rig = await startMapper(
      crdYaml('slow', [{ name: 'temp', collectCycle: 50, reportCycle: 400, pushMethod: `dbMethod:\n  redis:\n    redisClientConfig:\n      addr: 127.0.0.1:${redis.port}\n      db: 0` }]),
      { consumers: [rec] },
    );
    try {
      await sleep(2200);
      const members = (await client.zrange('slow', '0', '-1')).map((m) => JSON.parse(m) as { Value: string; TimeStamp: number });
      const produced = rec.samples.filter((s) => s.deviceId === 'default/slow').length;
      assert.ok(produced >= 25, `the device is read every 50 ms (${produced} samples)`);
      assert.ok(members.length >= 4 && members.length <= 7, `about one push per 400 ms in 2.2 s, got ${members.length}`);
      for (let i = 1; i < members.length; i++) {
        const gap = members[i]!.TimeStamp - members[i - 1]!.TimeStamp;
        assert.ok(gap >= 300, `pushes at least ~reportCycle apart (gap ${gap} ms)`);
      }
      // Every pushed value is the latest sample at its push time: values increase, skipping the ones in between.
      const values = members.map((m) => Number(m.Value));
      assert.ok(values.every((v, i) => i === 0 || v > values[i - 1]! + 1), `skips intermediate samples: ${values.join(',')}`);
    } finally {
      await rig.stop();
    }
  });

  it('namespaced keys on request (data_plane.redis.key_template) and the password from a file', async () => {
    const { writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    await client.config('SET', 'requirepass', 's3cret');
    const authed = new Redis({ port: redis.port, host: '127.0.0.1', password: 's3cret' });
    const secretDir = join(tmpdir(), `mk-secret-${process.pid}`);
    (await import('node:fs')).mkdirSync(secretDir, { recursive: true });
    writeFileSync(join(secretDir, 'password'), 's3cret\n');
    const rig = await startMapper(
      crdYaml('ns-dev', [{ name: 'temp', pushMethod: `dbMethod:\n  redis:\n    redisClientConfig:\n      addr: 127.0.0.1:${redis.port}\n      db: 3` }], { namespace: 'plant-a' }),
      { configExtra: `data_plane:\n  credentials_dir: ${secretDir}\n  redis:\n    key_template: "{namespace}/{name}"\n` },
    );
    try {
      await authed.select(3);
      await until(async () => (await authed.zcard('plant-a/ns-dev')) >= 3, 10_000, 'samples under plant-a/ns-dev');
      assert.equal(await authed.exists('ns-dev'), 0);
    } finally {
      await rig.stop();
      await authed.config('SET', 'requirepass', '');
      authed.disconnect();
    }
  });
});
