// SPDX-License-Identifier: Apache-2.0
// Server killed (SIGKILL) and restarted mid-run: the device is reported offline, the mapper
// reconnects with backoff and re-creates the session and the subscription with the same
// security settings, and twins of polled and subscribed properties resume.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { crdYaml, type MapperRig, PASSWORD, sleep, startMapper, TestServer, USER } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'opcua-rec-'));
const passwordFile = join(dir, 'password');
writeFileSync(passwordFile, PASSWORD);
let server: TestServer;
let rig: MapperRig;

before(async () => {
  server = await TestServer.start({ changeEveryMs: 100 });
});

after(async () => {
  await rig?.stop();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('server restart', () => {
  it('offline while the server is gone; back to ok with a new secured session and subscription; twins resume', async () => {
    const protocol = {
      url: server.endpointUrl,
      pkiDir: join(dir, 'pki'),
      securityPolicy: 'Basic256Sha256',
      securityMode: 'SignAndEncrypt',
      userName: USER,
      passwordFile,
      serverCertificate: server.serverCertificateFile,
      publishingInterval: 100,
    };
    rig = await startMapper(
      crdYaml(
        'rec-model',
        [
          { name: 'double', type: 'DOUBLE', visitor: { nodeID: 'ns=2;s=Double' }, collectCycle: 200 },
          { name: 'counter', type: 'INT', visitor: { nodeID: 'ns=2;i=1001' }, collectCycle: 200 },
          { name: 'sine', type: 'DOUBLE', visitor: { nodeID: 'ns=2;s=Sine', subscribe: true, samplingInterval: 50 }, collectCycle: 200, reportCycle: 200 },
        ],
        [
          { name: 'plc', protocol },
          // Subscription only: nothing is polled, so only state checks can notice a frozen server.
          { name: 'plc-sub', protocol, props: [{ name: 'sine', type: 'DOUBLE', visitor: { nodeID: 'ns=2;s=Sine', subscribe: true, samplingInterval: 50 }, reportCycle: 200 }] },
        ],
      ),
      { read_timeout_ms: 1500 },
    );
    const id = 'default/plc';
    await rig.ec.waitFor(() => rig.ec.twinsOf(id).size === 3 && rig.ec.stateOf(id) === 'ok' && rig.ec.stateOf('default/plc-sub') === 'ok', 20_000, 'twins and ok state');
    const activationsBefore = (await server.activations()).length;

    await server.kill();
    const killedAt = Date.now();
    await rig.ec.waitFor(() => rig.ec.stateOf(id) === 'offline', 10_000, 'offline state report');
    const detected = Date.now() - killedAt;
    assert.ok(detected < 5000, `loss detected in ${detected} ms`);
    assert.equal(rig.mapper.device(id)?.state, 'offline');
    assert.match(rig.mapper.device(id)?.stateDetail ?? '', /lost|closed|cannot be established|ECONNREFUSED/i);
    await sleep(1500); // a few failed reconnect attempts against a closed port

    await server.restart();
    const restartedAt = Date.now();
    await server.set('Double', 99.5);
    await rig.ec.waitFor(() => rig.ec.stateOf(id) === 'ok', 15_000, 'ok state after restart');
    await rig.ec.waitFor(() => rig.ec.twinsOf(id).get('double')?.reported === '99.5', 10_000, 'polled twin from the restarted server');
    await rig.ec.waitFor(() => (rig.ec.twinsOf(id).get('sine')?.reportedAt ?? 0) > restartedAt + 500, 10_000, 'subscribed twin updating after restart');

    const acts = await server.activations();
    assert.ok(acts.length >= 1, 'a new session was activated on the restarted server');
    for (const a of acts) assert.deepEqual({ m: a.securityMode, p: a.securityPolicy, i: a.identity }, { m: 'SignAndEncrypt', p: 'Basic256Sha256', i: `username:${USER}` });
    const st = await server.stats();
    assert.ok(st.createSubscriptionRequests >= 1, 'subscription re-created');
    assert.ok(st.createMonitoredItemsRequests >= 1, 'monitored items re-created');
    assert.ok(activationsBefore >= 1);
  });

  it('a frozen server (SIGSTOP: connection open, no answers) is detected by state checks, also on a subscription-only device', async () => {
    const ids = ['default/plc', 'default/plc-sub'];
    await rig.ec.waitFor(() => ids.every((i) => rig.ec.stateOf(i) === 'ok'), 15_000, 'both ok');
    server.pause();
    try {
      await rig.ec.waitFor(() => ids.every((i) => rig.ec.stateOf(i) === 'offline'), 20_000, 'both offline while the server is frozen');
      // The reason is in the driver's log (state() can only say `offline`, not why).
      const lost = rig.logs.filter((l) => l.includes('"device":"default/plc-sub"') && l.includes('OPC UA connection lost'));
      // Which detector fires first (two failed state checks, a request timeout, or the socket itself) depends on timing.
      assert.ok(lost.some((l) => /did not answer two state checks in a row|timed out|Timeout|connection .* lost/i.test(l)), `plc-sub loss reason in the log: ${lost.join('')}`);
    } finally {
      server.resume();
    }
    const resumedAt = Date.now();
    await rig.ec.waitFor(() => ids.every((i) => rig.ec.stateOf(i) === 'ok'), 30_000, 'both ok after the server resumed');
    await rig.ec.waitFor(() => (rig.ec.twinsOf('default/plc-sub').get('sine')?.reportedAt ?? 0) > resumedAt, 10_000, 'subscribed twin updating again');
  });
});
