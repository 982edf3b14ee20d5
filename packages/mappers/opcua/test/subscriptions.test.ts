// SPDX-License-Identifier: Apache-2.0
// Subscriptions: monitored items push changes (with absolute and percent deadbands), refused
// items do not stop the others, and through the mapper subscribed properties are not polled
// while their twins are still reported no more often than reportCycle.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Reading } from '@mapperkit/framework';
import type { OpcuaDeviceClient } from '../src/client.ts';
import { connect, crdYaml, type MapperRig, request, sleep, startMapper, TestServer, until } from './helpers.ts';

const pki = mkdtempSync(join(tmpdir(), 'opcua-sub-pki-'));
let server: TestServer;

before(async () => {
  server = await TestServer.start({ changeEveryMs: 100 });
});

after(async () => {
  await server?.stop();
  rmSync(pki, { recursive: true, force: true });
});

/** Collects what a subscription pushes until `stop` is called. */
function collect(client: OpcuaDeviceClient, reqs: Parameters<OpcuaDeviceClient['subscribe']>[0]): { readings: Reading[]; done: Promise<unknown>; stop: () => void } {
  const ctl = new AbortController();
  const readings: Reading[] = [];
  const done = (async () => {
    for await (const r of client.subscribe(reqs, ctl.signal)) readings.push(r);
  })().catch((e: unknown) => e);
  return { readings, done, stop: () => ctl.abort() };
}

const values = (rs: Reading[], prop: string): unknown[] => rs.flatMap((r) => (r.property === prop && 'value' in r ? [r.value] : []));
const errors = (rs: Reading[], prop: string): string[] => rs.flatMap((r) => (r.property === prop && 'error' in r ? [r.error.message] : []));

describe('subscriptions', () => {
  let client: OpcuaDeviceClient;
  before(async () => {
    client = await connect({ url: server.endpointUrl, pkiDir: pki, publishingInterval: 100 });
  });
  after(() => client?.close());

  it('isSubscribed follows the visitor, then the device default', async () => {
    const polled = await request('p', 'double', { nodeID: 'ns=2;s=Double' });
    const sub = await request('s', 'double', { nodeID: 'ns=2;s=Double', subscribe: true });
    assert.equal(client.isSubscribed(polled), false);
    assert.equal(client.isSubscribed(sub), true);
    const c2 = await connect({ url: server.endpointUrl, pkiDir: pki, subscribe: true });
    try {
      assert.equal(c2.isSubscribed(polled), true);
      assert.equal(c2.isSubscribed(await request('x', 'double', { nodeID: 'ns=2;s=Double', subscribe: false })), false);
    } finally {
      await c2.close();
    }
  });

  it('pushes the initial value and every change of a changing node, with source timestamps', async () => {
    await server.resetStats();
    const counter = await request('counter', 'int', { nodeID: 'ns=2;i=1001', subscribe: true, samplingInterval: 50 });
    const s = collect(client, [counter]);
    await until(() => values(s.readings, 'counter').length >= 5, 5000, '5 counter notifications');
    s.stop();
    assert.equal(await s.done, undefined, 'the iteration ends cleanly on abort');
    const vs = values(s.readings, 'counter') as number[];
    for (let i = 1; i < vs.length; i++) assert.ok(vs[i]! > vs[i - 1]!, `counter increases: ${vs.join(',')}`);
    assert.ok(s.readings.every((r) => typeof r.timestamp === 'number' && Math.abs(r.timestamp - Date.now()) < 60_000));
    const st = await server.stats();
    assert.equal(st.createSubscriptionRequests, 1);
    assert.equal(st.createMonitoredItemsRequests, 1);
    assert.equal(st.deviceReadRequests, 0, 'subscribed values are pushed, not read');
  });

  it('an absolute deadband suppresses smaller changes', async () => {
    await server.set('Level', 50);
    const level = await request('level', 'double', { nodeID: 'ns=2;s=Level', subscribe: true, samplingInterval: 20, deadbandType: 'Absolute', deadbandValue: 1 });
    const s = collect(client, [level]);
    await until(() => s.readings.length >= 1, 5000, 'initial value');
    for (const v of [50.4, 50.9, 52, 52.5, 49]) {
      await server.set('Level', v);
      await sleep(400);
    }
    await sleep(300);
    s.stop();
    await s.done;
    assert.deepEqual(values(s.readings, 'level'), [50, 52, 49]);
  });

  it('a percent deadband is relative to the EURange (0-200: 5 % = 10)', async () => {
    await server.set('Level', 100);
    const level = await request('level', 'double', { nodeID: 'ns=2;s=Level', subscribe: true, samplingInterval: 20, deadbandType: 'Percent', deadbandValue: 5 });
    const s = collect(client, [level]);
    await until(() => s.readings.length >= 1, 5000, 'initial value');
    for (const v of [105, 109, 111, 104, 125]) {
      await server.set('Level', v);
      await sleep(400);
    }
    await sleep(300);
    s.stop();
    await s.done;
    assert.deepEqual(values(s.readings, 'level'), [100, 111, 125], '104 and 109 are within 10 of the last reported value');
  });

  it('items the server refuses become per-property errors; the others keep delivering', async () => {
    const reqs = [
      await request('missing', 'double', { nodeID: 'ns=2;s=NoSuchNode', subscribe: true }),
      // A percent deadband needs an EURange; Double has none.
      await request('noRange', 'double', { nodeID: 'ns=2;s=Double', subscribe: true, deadbandType: 'Percent', deadbandValue: 1 }),
      await request('sine', 'double', { nodeID: 'ns=2;s=Sine', subscribe: true, samplingInterval: 50 }),
    ];
    const s = collect(client, reqs);
    await until(() => values(s.readings, 'sine').length >= 3, 5000, 'sine notifications');
    s.stop();
    await s.done;
    assert.deepEqual(values(s.readings, 'missing'), []);
    assert.deepEqual(values(s.readings, 'noRange'), []);
    assert.deepEqual(errors(s.readings, 'missing'), ['node ns=2;s=NoSuchNode: monitored item refused: BadNodeIdUnknown (The node id refers to a node that does not exist in the server address space.)']);
    assert.equal(errors(s.readings, 'noRange').length, 1);
    assert.match(errors(s.readings, 'noRange')[0]!, /node ns=2;s=Double: monitored item refused: Bad\w+/);
    assert.deepEqual(errors(s.readings, 'sine'), []);
  });

  it('different monitoring parameters go out as one CreateMonitoredItems call per parameter set, as the visitors say', async () => {
    await server.resetStats();
    const reqs = [
      await request('a', 'double', { nodeID: 'ns=2;s=Double', subscribe: true, samplingInterval: 100 }),
      await request('b', 'double', { nodeID: 'ns=2;s=Float', subscribe: true, samplingInterval: 100 }),
      await request('c', 'double', { nodeID: 'ns=2;s=Level', subscribe: true, samplingInterval: 250, queueSize: 10, deadbandType: 'Absolute', deadbandValue: 0.5 }),
    ];
    const s = collect(client, reqs);
    await until(() => new Set(s.readings.map((r) => r.property)).size === 3, 15_000, 'initial values of a, b, c');
    s.stop();
    await s.done;
    const st = await server.stats();
    assert.equal(st.createSubscriptionRequests, 1, 'one subscription per subscribe() call');
    assert.equal(st.createMonitoredItemsRequests, 2);
    // What the server was asked for: the visitors' sampling interval, queue size and deadband (queueSize default 1).
    const items = new Map((await server.monitoredItems()).map((i) => [i.nodeId, i]));
    assert.deepEqual(items.get('ns=2;s=Double'), { nodeId: 'ns=2;s=Double', samplingInterval: 100, queueSize: 1, discardOldest: true, deadbandType: 'None', deadbandValue: 0 });
    assert.deepEqual(items.get('ns=2;s=Level'), { nodeId: 'ns=2;s=Level', samplingInterval: 250, queueSize: 10, discardOldest: true, deadbandType: 'Absolute', deadbandValue: 0.5 });
    assert.equal(items.size, 3);
  });

  it('the subscription fails (so the framework reconnects) when the client is closed under it', async () => {
    const c = await connect({ url: server.endpointUrl, pkiDir: pki, publishingInterval: 100 });
    const s = collect(c, [await request('sine', 'double', { nodeID: 'ns=2;s=Sine', subscribe: true })]);
    await until(() => s.readings.length >= 1, 5000, 'first value');
    await c.close();
    const err = await s.done;
    assert.ok(err instanceof Error && /client closed/.test(err.message), `iteration ends with an error, got ${String(err)}`);
  });
});

describe('subscriptions through the mapper', () => {
  let rig: MapperRig;
  after(() => rig?.stop());

  it('subscribed properties are not polled; their twins are reported at most once per reportCycle', async () => {
    await server.resetStats();
    rig = await startMapper(
      crdYaml(
        'sub-model',
        [
          // Counter changes every 100 ms; sampled every 50 ms; reported every 1000 ms.
          { name: 'counter', type: 'INT', visitor: { nodeID: 'ns=2;i=1001', subscribe: true, samplingInterval: 50 }, collectCycle: 1000, reportCycle: 1000 },
          { name: 'sine', type: 'DOUBLE', visitor: { nodeID: 'ns=2;s=Sine', subscribe: true, samplingInterval: 50 }, collectCycle: 1000, reportCycle: 1000 },
        ],
        [{ name: 'plc-sub', protocol: { url: server.endpointUrl, pkiDir: pki, publishingInterval: 100 } }],
      ),
    );
    await rig.ec.waitFor(() => rig.ec.twinsOf('default/plc-sub').size === 2, 15_000, 'twins of plc-sub');
    const first = Number(rig.ec.twinsOf('default/plc-sub').get('counter')!.reported);
    const reportsBefore = rig.ec.statusReports.length;
    const samplesBefore = rig.mapper.stats().samples;
    await sleep(3000);
    const reports = rig.ec.statusReports.length - reportsBefore;
    const samples = rig.mapper.stats().samples - samplesBefore;
    assert.ok(samples >= 30, `≥ 30 pushed samples in 3 s (counter + sine change every 100 ms), got ${samples}`);
    assert.ok(reports >= 2 && reports <= 4, `twin reports bounded by reportCycle 1000 ms: ${reports} in 3 s`);
    assert.ok(Number(rig.ec.twinsOf('default/plc-sub').get('counter')!.reported) > first, 'reported counter advanced');
    const st = await server.stats();
    assert.equal(st.deviceReadRequests, 0, 'no Read calls for subscribed properties');
    assert.equal(st.createSubscriptionRequests, 1);
    assert.equal(rig.mapper.stats().readCalls, 0);
  });
});
