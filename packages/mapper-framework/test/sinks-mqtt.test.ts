// SPDX-License-Identifier: Apache-2.0
// MQTT sink end to end: Device CRD with pushMethod.mqtt → mapper → real mosquitto → subscriber.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { crdYaml, type Peer, recorder, sleep, startMapper, startMosquitto, tempDir, until } from './sinks-helpers.ts';

interface Got {
  topic: string;
  payload: string;
  retain: boolean;
  qos: number;
}

async function subscriber(port: number, topic: string, opts: mqtt.IClientOptions = {}): Promise<{ client: mqtt.MqttClient; got: Got[] }> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 100, ...opts });
  const got: Got[] = [];
  client.on('message', (t, payload, packet) => got.push({ topic: t, payload: payload.toString(), retain: packet.retain, qos: packet.qos }));
  await client.subscribeAsync(topic, { qos: 1 });
  return { client, got };
}

describe('mqtt sink (real mosquitto)', () => {
  let broker: Peer;
  before(async () => {
    broker = await startMosquitto({ persistent: true });
  });
  after(() => broker?.dispose());

  it('publishes upstream text payloads with the CRD qos and retained flag, one connection for all properties', async () => {
    const sub = await subscriber(broker.port, 'plant/#');
    const pm = (topic: string, qos: number, retained: boolean): string => `mqtt:\n  address: tcp://127.0.0.1:${broker.port}\n  topic: ${topic}\n  qos: ${qos}\n  retained: ${retained}`;
    const rig = await startMapper(
      crdYaml('press', [
        { name: 'temp', pushMethod: pm('plant/press/temp', 1, true) },
        { name: 'speed', pushMethod: pm('plant/press/speed', 0, false) },
      ]),
    );
    try {
      await until(() => sub.got.filter((g) => g.topic === 'plant/press/temp').length >= 3 && sub.got.some((g) => g.topic === 'plant/press/speed'), 10_000, 'messages');
      const temp = sub.got.filter((g) => g.topic === 'plant/press/temp');
      for (const [i, g] of temp.entries()) {
        assert.match(g.payload, /^time is \d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}plant\/press\/temp: \d+$/);
        assert.equal(g.payload.split(': ')[1], String(Number(temp[0]!.payload.split(': ')[1]) + i), 'in order, none missing');
        assert.equal(g.qos, 1);
      }
      assert.equal(sub.got.find((g) => g.topic === 'plant/press/speed')!.qos, 0);
      assert.equal(rig.mapper.sinks().length, 1, 'one connection per broker');
      // A late subscriber gets the retained value of temp, and nothing retained for speed.
      const late = await subscriber(broker.port, 'plant/press/+');
      await until(() => late.got.length > 0, 5000, 'retained message');
      const retained = late.got.filter((g) => g.retain);
      assert.ok(retained.length >= 1 && retained.every((g) => g.topic === 'plant/press/temp'), JSON.stringify(retained));
      await late.client.endAsync();
    } finally {
      await rig.stop();
      await sub.client.endAsync();
    }
  });

  it('publishes the DataModel JSON with data_plane.mqtt.payload: json', async () => {
    const sub = await subscriber(broker.port, 'json/#');
    const rig = await startMapper(crdYaml('jdev', [{ name: 'level', pushMethod: `mqtt:\n  address: mqtt://127.0.0.1:${broker.port}\n  topic: json/level\n  qos: 1` }]), {
      configExtra: 'data_plane:\n  mqtt:\n    payload: json\n',
    });
    try {
      await until(() => sub.got.length >= 2, 10_000, 'json messages');
      const m = JSON.parse(sub.got[0]!.payload) as Record<string, unknown>;
      assert.deepEqual(Object.keys(m), ['DeviceName', 'PropertyName', 'Namespace', 'Value', 'Type', 'TimeStamp']);
      assert.equal(m['DeviceName'], 'jdev');
      assert.equal(m['PropertyName'], 'level');
      assert.equal(typeof m['TimeStamp'], 'number');
    } finally {
      await rig.stop();
      await sub.client.endAsync();
    }
  });

  it('QoS 0 packets written by the sink itself reach subscribers intact: retained flag, UTF-8 topics and payloads, 1-, 2- and 3-byte remaining lengths, in order', async () => {
    const sub = await subscriber(broker.port, 'q0/#');
    const big = `é${'x'.repeat(20_000)}😀`; // remaining length > 16,383: a 3-byte length
    const mid = `ü${'y'.repeat(300)}`; // > 127: 2 bytes
    const pm = (topic: string, retained: boolean): string => `mqtt:\n  address: tcp://127.0.0.1:${broker.port}\n  topic: ${topic}\n  qos: 0\n  retained: ${retained}`;
    const rec = recorder();
    const rig = await startMapper(
      crdYaml('qzero', [
        { name: 'n', collectCycle: 20, reportCycle: 20, pushMethod: pm('q0/zähler', false) },
        { name: 'big', type: 'STRING', fixed: big, pushMethod: pm('q0/big', true) },
        { name: 'mid', type: 'STRING', fixed: mid, pushMethod: pm('q0/mid', false) },
      ]),
      { consumers: [rec], configExtra: 'data_plane:\n  mqtt:\n    payload: json\n' },
    );
    try {
      await until(() => sub.got.filter((g) => g.topic === 'q0/zähler').length >= 30 && sub.got.some((g) => g.topic === 'q0/big') && sub.got.some((g) => g.topic === 'q0/mid'), 10_000, 'messages');
      await rig.ec.removeDevice('default', 'qzero');
      const produced = rec.samples.filter((s) => s.property === 'n').map((s) => s.text);
      await until(() => sub.got.filter((g) => g.topic === 'q0/zähler').length >= produced.length, 10_000, 'all counter messages');
      const n = sub.got.filter((g) => g.topic === 'q0/zähler');
      assert.deepEqual(n.map((g) => (JSON.parse(g.payload) as { Value: string }).Value), produced, 'every counter sample once, in order');
      assert.ok(n.every((g) => g.qos === 0 && !g.retain));
      for (const [topic, value] of [['q0/big', big], ['q0/mid', mid]] as const) {
        const g = sub.got.find((x) => x.topic === topic)!;
        assert.equal((JSON.parse(g.payload) as { Value: string }).Value, value, `${topic} payload intact`);
        assert.equal(g.qos, 0);
      }
      // Retained (flag in the fixed header): a late subscriber gets q0/big, not the others.
      const late = await subscriber(broker.port, 'q0/#');
      await until(() => late.got.length > 0, 5000, 'retained message');
      await sleep(300);
      assert.deepEqual([...new Set(late.got.filter((g) => g.retain).map((g) => g.topic))], ['q0/big']);
      assert.equal((JSON.parse(late.got.find((g) => g.retain)!.payload) as { Value: string }).Value, big);
      await late.client.endAsync();
      assert.equal(rig.mapper.sinks()[0]!.state, 'up');
    } finally {
      await rig.stop();
      await sub.client.endAsync();
    }
  });

  it('survives a broker restart: reconnects and publishes what it buffered meanwhile, in order', async () => {
    // The subscriber's session (clean: false, QoS 1) survives the restart, so it receives what was published while it was away.
    const sub = await subscriber(broker.port, 'restart/v', { clean: false, clientId: 'mk-restart-sub' });
    const rec = recorder();
    const rig = await startMapper(
      crdYaml('rdev', [{ name: 'v', collectCycle: 50, reportCycle: 50, pushMethod: `mqtt:\n  address: tcp://127.0.0.1:${broker.port}\n  topic: restart/v\n  qos: 1` }]),
      // A small memory queue, so that the outage goes through the disk buffer.
      { consumers: [rec], configExtra: 'data_plane:\n  queue_capacity: 20\n' },
    );
    try {
      await until(() => sub.got.length >= 5, 10_000, 'first messages');
      await broker.stop();
      await sleep(3000);
      const during = rig.mapper.sinks()[0]!;
      assert.equal(during.state, 'buffering');
      assert.ok(during.bufferedRecords > 0, JSON.stringify(during));
      await broker.start();
      await sleep(1500);
      await rig.ec.removeDevice('default', 'rdev');
      const produced = rec.samples.filter((s) => s.deviceId === 'default/rdev').map((s) => s.text);
      await until(() => sub.got.length >= produced.length, 15_000, `all ${produced.length} messages`);
      const values = sub.got.map((g) => g.payload.split(': ')[1]);
      assert.deepEqual(values, produced, 'every sample once, in order');
      await until(() => rig.mapper.sinks()[0]!.state === 'up', 5000, 'sink up again');
    } finally {
      await rig.stop();
      await sub.client.endAsync();
    }
  });
});

describe('mqtt sink: broker login (real mosquitto requiring one)', () => {
  let broker: Peer;
  const { dir, cleanup } = tempDir('mkmqtt-cred-');
  before(async () => {
    broker = await startMosquitto({ users: { mapper: 's3cret', reader: 'r' } });
    mkdirSync(join(dir, 'good'));
    writeFileSync(join(dir, 'good', 'mqtt_username'), 'mapper\n');
    writeFileSync(join(dir, 'good', 'mqtt_password'), 's3cret\n');
    // Other sinks' credentials (a Redis password) are not the broker's: never sent to it.
    writeFileSync(join(dir, 'good', 'password'), 'redis-only\n');
    writeFileSync(join(dir, 'good', 'username'), 'tdengine-only\n');
    mkdirSync(join(dir, 'wrong'));
    writeFileSync(join(dir, 'wrong', 'mqtt_username'), 'mapper');
    writeFileSync(join(dir, 'wrong', 'mqtt_password'), 'not-it');
  });
  after(() => {
    broker?.dispose();
    cleanup();
  });
  const pushTo = (address: string, topic: string): string => `mqtt:\n  address: ${address}\n  topic: ${topic}\n  qos: 1`;

  it('logs in with MQTT_USERNAME/MQTT_PASSWORD from data_plane.credentials_dir (a mounted Secret), not with other sinks\' credentials', async () => {
    const sub = await subscriber(broker.port, 'cred/#', { username: 'reader', password: 'r' });
    const logs: string[] = [];
    const rig = await startMapper(crdYaml('cdev', [{ name: 'v', pushMethod: pushTo(`tcp://127.0.0.1:${broker.port}`, 'cred/v') }]), {
      configExtra: `data_plane:\n  credentials_dir: ${join(dir, 'good')}\n`,
      logs,
    });
    try {
      await until(() => sub.got.length >= 2, 10_000, 'messages from the logged-in sink');
      assert.equal(rig.mapper.sinks()[0]!.state, 'up');
      // Where the credentials came from is logged, never their values.
      const loaded = logs.filter((l) => l.includes('sink credential loaded')).map((l) => JSON.parse(l) as Record<string, string>);
      assert.deepEqual(loaded.map((l) => [l['credential'], l['source']]).sort(), [
        ['MQTT_PASSWORD', `file:${join(dir, 'good', 'mqtt_password')}`],
        ['MQTT_USERNAME', `file:${join(dir, 'good', 'mqtt_username')}`],
      ]);
      assert.ok(!logs.some((l) => l.includes('s3cret')), 'the password is never logged');
    } finally {
      await rig.stop();
      await sub.client.endAsync();
    }
  });

  it('without MQTT credentials, or with a wrong password, the broker refuses it: nothing published, samples buffered, the error kept', async () => {
    // A short write timeout: the first write waits that long for the connection.
    for (const creds of ['', `  credentials_dir: ${join(dir, 'wrong')}\n`]) {
      const configExtra = `data_plane:\n  write_timeout_ms: 1500\n${creds}`;
      const sub = await subscriber(broker.port, 'refused/#', { username: 'reader', password: 'r' });
      const logs: string[] = [];
      const rig = await startMapper(crdYaml('rdev', [{ name: 'v', pushMethod: pushTo(`tcp://127.0.0.1:${broker.port}`, 'refused/v') }]), { configExtra, logs });
      try {
        await until(() => rig.mapper.sinks()[0]?.state === 'buffering', 10_000, 'sink buffering');
        await sleep(1500);
        assert.equal(sub.got.length, 0);
        // Once the broker has refused the login, the sink's error says so; without any login it
        // also says where one is looked for.
        await until(() => /Not authorized|Bad User Name or Password/i.test(rig.mapper.sinks()[0]!.lastError ?? ''), 10_000, 'the refusal in the error');
        const lastError = rig.mapper.sinks()[0]!.lastError ?? '';
        if (creds === '') assert.match(lastError, /no broker login was found: .*MQTT_USERNAME\/MQTT_PASSWORD .*credentials_dir/);
        else assert.doesNotMatch(lastError, /no broker login was found/);
        // Optional credentials that are not set are no news at info level (most sinks have none).
        assert.ok(!logs.some((l) => l.includes('sink credential not set')), logs.filter((l) => l.includes('credential')).join('\n'));
      } finally {
        await rig.stop();
        await sub.client.endAsync();
      }
    }
  });

  it("the address's own user info wins over credentials_dir", async () => {
    const sub = await subscriber(broker.port, 'userinfo/#', { username: 'reader', password: 'r' });
    const rig = await startMapper(crdYaml('udev', [{ name: 'v', pushMethod: pushTo(`mqtt://mapper:s3cret@127.0.0.1:${broker.port}`, 'userinfo/v') }]), {
      configExtra: `data_plane:\n  credentials_dir: ${join(dir, 'wrong')}\n`,
    });
    try {
      await until(() => sub.got.length >= 2, 10_000, 'messages with the URL login');
    } finally {
      await rig.stop();
      await sub.client.endAsync();
    }
  });
});
