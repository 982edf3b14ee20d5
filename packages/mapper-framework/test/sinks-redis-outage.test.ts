// SPDX-License-Identifier: Apache-2.0
// Store-and-forward against a real redis-server: killed for 20 s under load and restarted,
// every sample produced is in Redis afterwards, in order; the sink's state is visible. Redis
// runs with an fsynced append-only file, so what it acknowledged before the kill survives.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { SinkState } from '@mapperkit/framework';
import { CaptureServer, crdYaml, type MapperRig, type Peer, recorder, sleep, startMapper, startRedis, until } from './sinks-helpers.ts';

const PROPS = 8;
const CYCLE_MS = 10; // 8 properties every 10 ms: ~800 samples/s

describe('redis outage of 20 s under load (real redis-server, SIGKILL)', () => {
  let redis: Peer;
  let rig: MapperRig;
  let client: Redis;
  // A second sink of p0 (HTTP): it must not notice Redis' outage.
  let http: CaptureServer;
  const rec = recorder();
  before(async () => {
    redis = await startRedis({ durable: true });
    http = await new CaptureServer().start();
    const pm = `dbMethod:\n  redis:\n    redisClientConfig:\n      addr: 127.0.0.1:${redis.port}\n      db: 0`;
    const both = `http:\n  hostName: http://127.0.0.1\n  port: ${http.port}\n  requestPath: /p0\n${pm}`;
    const props = Array.from({ length: PROPS }, (_, i) => ({ name: `p${i}`, collectCycle: CYCLE_MS, reportCycle: CYCLE_MS, pushMethod: i === 0 ? both : pm }));
    rig = await startMapper(crdYaml('loaded', props), { consumers: [rec], configExtra: 'data_plane:\n  retry_initial_ms: 100\n  retry_max_ms: 1000\n  batch_size: 1000\n  queue_capacity: 500\n' });
  });
  after(async () => {
    client?.disconnect();
    await rig?.stop();
    await redis?.dispose();
    await http?.close();
  });

  it('buffers to disk while Redis is down and replays everything in order when it is back', async () => {
    await sleep(2000);
    const states = new Set<SinkState>();
    const poll = setInterval(() => {
      for (const s of rig.mapper.sinks()) if (s.kind === 'redis') states.add(s.state);
    }, 100);
    try {
      // On a loaded machine the sink may still be catching up with its start: the outage begins from `up`.
      await until(() => rig.mapper.sinks().length === 2 && rig.mapper.sinks().every((x) => x.state === 'up'), 20_000, 'sinks up before the outage');
      await redis.kill();
      const killedAt = Date.now();
      const httpAtKill = http.requests.length;
      await sleep(2000);
      const during = rig.mapper.sinks().find((s) => s.kind === 'redis')!;
      assert.equal(during.state, 'buffering');
      assert.ok(during.bufferedRecords > 0 && during.bufferedBytes > 0, `disk buffer in use: ${JSON.stringify(during)}`);
      assert.ok(during.writeErrors > 0);
      await sleep(20_000 - (Date.now() - killedAt));
      const buffered = rig.mapper.sinks().find((s) => s.kind === 'redis')!.bufferedRecords;
      // The other sink of p0 kept delivering during the outage (100 samples/s).
      const other = rig.mapper.sinks().find((s) => s.kind === 'http')!;
      assert.equal(other.state, 'up', JSON.stringify(other));
      assert.equal(other.bufferedRecords, 0);
      assert.ok(http.requests.length - httpAtKill > 1000, `HTTP sink delivered ${http.requests.length - httpAtKill} samples while Redis was down`);
      assert.ok(buffered > 10_000, `~20 s of samples buffered (${buffered})`);
      await redis.start();
      const restartedAt = Date.now();
      // Stop producing so that "everything" is a fixed set, then wait for the buffer to drain.
      await rig.ec.removeDevice('default', 'loaded');
      client = new Redis({ port: redis.port, host: '127.0.0.1' });
      await until(() => {
        const s = rig.mapper.sinks().find((x) => x.kind === 'redis')!;
        return s.state !== 'buffering' && s.bufferedRecords === 0 && s.queued === 0;
      }, 30_000, 'buffer drained');
      const drainMs = Date.now() - restartedAt;
      const produced = rec.samples.filter((s) => s.deviceId === 'default/loaded');
      const members = await client.zrange('loaded', '0', '-1', 'WITHSCORES');
      const stored: { prop: string; value: number; ts: number }[] = [];
      for (let i = 0; i < members.length; i += 2) {
        const m = JSON.parse(members[i]!) as { PropertyName: string; Value: string; TimeStamp: number };
        stored.push({ prop: m.PropertyName, value: Number(m.Value), ts: m.TimeStamp });
      }
      assert.equal(stored.length, produced.length, `every sample produced is in Redis (${produced.length} produced, ${stored.length} stored, drained in ${drainMs} ms)`);
      for (let p = 0; p < PROPS; p++) {
        const name = `p${p}`;
        const want = produced.filter((s) => s.property === name).map((s) => `${s.text}@${s.timestamp}`);
        // ZRANGE order is score (sample time) order; a property's counter must come out 1, 2, 3… without gaps.
        const got = stored.filter((s) => s.prop === name).map((s) => `${s.value}@${s.ts}`);
        assert.deepEqual(got, want, `property ${name}: complete and in order`);
        const values = stored.filter((s) => s.prop === name).map((s) => s.value);
        assert.deepEqual(values, values.map((_, i) => i + 1));
      }
      // up (waited for above) → buffering (seen while polling) → up (below).
      assert.ok(states.has('buffering'), `state went through buffering: ${[...states].join(',')}`);
      const final = rig.mapper.sinks().find((x) => x.kind === 'redis')!;
      assert.equal(final.state, 'up');
      assert.equal(final.dropped.cap + final.dropped.age + final.dropped.rejected + final.dropped.overflow + final.dropped.corrupt, 0);
      assert.ok(final.delivered >= produced.length);
      // The HTTP sink got every p0 sample once, in order, outage or not.
      await until(() => http.requests.length >= produced.filter((x) => x.property === 'p0').length, 10_000, 'HTTP sink complete');
      assert.deepEqual(
        http.requests.map((r) => new URLSearchParams(r.body).get('p0')),
        produced.filter((x) => x.property === 'p0').map((x) => x.text),
      );
    } finally {
      clearInterval(poll);
    }
  });
});
