// SPDX-License-Identifier: Apache-2.0
// End to end: the framework's test edgecore (real DMI over unix sockets) + the mapper runtime +
// this driver + the REAL noble library on emulated bindings and peripherals. Covers twins from
// polled and notified characteristics, desired writes, REST-style writes, discovery, and a
// link loss with reconnect, re-discovery, re-subscription and desired values written again.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger, createMapper, type MapperHandle } from '@mapperkit/framework';
import { TestEdgecore } from '@mapperkit/framework/testing';
import { createBleDriver } from '../src/driver.js';
import { type EmulatedBindings, type EmulatedPeripheral } from './fixtures/emulated-bindings.js';
import { beaconPeripheral, sensorWorld, xiaomiPeripheral } from './fixtures/sensor.js';

const SAMPLE = readFileSync(new URL('../devices/devices.yaml', import.meta.url), 'utf8');
const SENSOR = 'default/env-sensor-1';
const XIAOMI = 'default/xiaomi-th-1';

function mapperConfig(dir: string): string {
  return [
    'grpc_server:',
    `  socket_path: ${join(dir, 'bluetooth.sock')}`,
    'common:',
    '  name: ble-mapper',
    '  protocol: bluetooth',
    `  edgecore_sock: ${join(dir, 'dmi.sock')}`,
    '  http_port: 0',
    'runtime:',
    '  report_rate: 1000',
    '  report_burst: 1000',
    '  state_check_ms: 100',
    '  backoff_initial_ms: 50',
    '  backoff_max_ms: 200',
    '  read_timeout_ms: 1000',
    '  write_timeout_ms: 1000',
    '  connect_timeout_ms: 1000',
    '',
  ].join('\n');
}

interface Rig {
  ec: TestEdgecore;
  mapper: MapperHandle;
  bindings: EmulatedBindings;
  sensor: EmulatedPeripheral;
  xiaomi: EmulatedPeripheral;
  stop(): Promise<void>;
}

async function startRig(yamlText: string): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'mk-ble-'));
  const xiaomi = xiaomiPeripheral();
  const { bindings, sensor } = sensorWorld({ extra: [xiaomi, beaconPeripheral()] });
  const { devices, models } = TestEdgecore.fromCrdYaml(yamlText);
  const ec = await TestEdgecore.start({ socketPath: join(dir, 'dmi.sock'), devices, models, limiter: false });
  const mapper = await createMapper({
    driver: createBleDriver({ bindings: () => bindings, discoverScanMs: 150 }),
    config: mapperConfig(dir),
    logger: createLogger({ level: process.env['MK_TEST_LOG'] ? 'debug' : 'silent' }),
  });
  await mapper.whenRegistered();
  return {
    ec,
    mapper,
    bindings,
    sensor,
    xiaomi,
    async stop() {
      await mapper.stop();
      await ec.close();
      bindings.shutdown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const twin = (ec: TestEdgecore, id: string, prop: string): string | undefined => ec.twinsOf(id).get(prop)?.reported;

function int16le(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16LE(n);
  return b;
}

describe('mapper-ble end to end with the test edgecore (devices/devices.yaml)', () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig(SAMPLE);
  });
  after(async () => {
    await rig.stop();
  });

  it('reports twins of polled and notified characteristics, with desired values written', async () => {
    const { ec } = rig;
    const want: [string, string, string][] = [
      [SENSOR, 'temperature', '21.5'],
      [SENSOR, 'humidity', '50'],
      [SENSOR, 'battery', '87'],
      [SENSOR, 'deviceName', 'Env-Sensor'],
      [SENSOR, 'relay', 'ON'],
      [SENSOR, 'setpoint', '22.5'],
      [XIAOMI, 'humidity', '45'],
      [XIAOMI, 'temperature', '21.4'],
    ];
    await ec.waitFor(() => want.every(([id, p, v]) => twin(ec, id, p) === v), 8000, 'every twin').catch((err: unknown) => {
      const got = want.map(([id, p]) => `${id}.${p}=${String(twin(ec, id, p))}`).join(', ');
      throw new Error(`${(err as Error).message}; got ${got}`);
    });
    await ec.waitFor(() => ec.stateOf(SENSOR) === 'ok' && ec.stateOf(XIAOMI) === 'ok', 3000, 'states ok');
    // The desired values reached the peripheral as bytes.
    assert.deepEqual([...rig.sensor.value('fff1')], [1], 'relay ON → dataWrite [1]');
    assert.equal(rig.sensor.value('fff5').readInt16LE(0), 225, 'setpoint 22.5 → int16 225 (Multiply 0.1 undone)');
    assert.equal(ec.twinsOf(SENSOR).get('relay')?.observedDesired, 'ON');
    // Notifying characteristics were subscribed (upstream's rule), the others polled.
    assert.ok(rig.sensor.subscribed('2a6e'), 'temperature by notification');
    assert.ok(!rig.sensor.subscribed('2a19'), 'battery has mode: read');
    assert.ok(rig.xiaomi.subscribed('ebe0ccc1-7a0a-4b0c-8a1a-6ff2997da3a6'));
  });

  it('a notification reaches the twin without a poll', async () => {
    const { ec, sensor, xiaomi } = rig;
    const readsBefore = sensor.stats.reads;
    sensor.setValue('2a6e', int16le(-512));
    xiaomi.setValue('ebe0ccc1-7a0a-4b0c-8a1a-6ff2997da3a6', Buffer.from([0x10, 0x09, 61]));
    await ec.waitFor(() => twin(ec, SENSOR, 'temperature') === '-5.12' && twin(ec, XIAOMI, 'humidity') === '61' && twin(ec, XIAOMI, 'temperature') === '23.2', 4000, 'notified twins');
    // Polls continue for the polled properties only; the temperature characteristic was read once, at subscription.
    const tempReads = rig.bindings.calls.filter((c) => c.method === 'read' && c.args[2] === '2a6e').length;
    assert.equal(tempReads, 1);
    assert.ok(sensor.stats.reads >= readsBefore);
  });

  it('writes a property the way a device method / REST write does', async () => {
    await rig.mapper.writeProperty('default', 'env-sensor-1', 'relay', 'OFF');
    assert.deepEqual([...rig.sensor.value('fff1')], [0]);
    await rig.ec.waitFor(() => twin(rig.ec, SENSOR, 'relay') === 'OFF', 4000, 'relay twin OFF');
    await assert.rejects(rig.mapper.writeProperty('default', 'env-sensor-1', 'setpoint', '40'), /above the maximum 30/);
    await assert.rejects(rig.mapper.writeProperty('default', 'env-sensor-1', 'relay', 'HALF'), /no dataWrite entry for "HALF"/);
  });

  it('discovers what advertises nearby (connected peripherals stop advertising)', async () => {
    const found = await rig.mapper.discover(AbortSignal.timeout(5000));
    assert.deepEqual(
      found.map((d) => [d.id, d.name, d.protocolConfig]),
      [['F0:0D:00:00:00:03', 'Beacon', { macAddress: 'F0:0D:00:00:00:03', localName: 'Beacon' }]],
    );
    assert.deepEqual(found[0]?.details, { rssi: '-60', addressType: 'random', connectable: 'false', serviceUuids: 'feaa', txPowerLevel: '-8' });
  });
});

describe('mapper-ble: link loss, reconnect with backoff, re-subscribe', () => {
  let rig: Rig;
  before(async () => {
    rig = await startRig(SAMPLE);
    await rig.ec.waitFor(() => twin(rig.ec, SENSOR, 'temperature') === '21.5' && twin(rig.ec, SENSOR, 'relay') === 'ON', 8000, 'first twins');
  });
  after(async () => {
    await rig.stop();
  });

  it('goes offline when the link drops, keeps the other device going, reconnects when the device is back and subscribes again', async () => {
    const { ec, sensor, xiaomi, bindings } = rig;
    assert.equal(sensor.stats.connects, 1);
    assert.equal(sensor.stats.subscribes, 1);
    const statesBefore = ec.stateReports.length;

    const attempts = (): number => bindings.count('startScanning') + bindings.count('connect', sensor.id);
    const attemptsBefore = attempts();
    const awaySince = Date.now();
    // The sensor goes out of range: supervision timeout, no advertisements. It loses its relay state meanwhile.
    sensor.stopAdvertising();
    sensor.dropLink(0x08);
    sensor.setValue('fff1', Buffer.from([0]), false);
    await ec.waitFor(() => ec.stateOf(SENSOR) === 'offline', 3000, 'sensor offline');
    assert.match(rig.mapper.device(SENSOR)?.stateDetail ?? '', /disconnected|not found|timed out|connect/i);
    // While it is away the mapper keeps serving the other device...
    xiaomi.setValue('ebe0ccc1-7a0a-4b0c-8a1a-6ff2997da3a6', Buffer.from([0x5c, 0x08, 33]));
    await ec.waitFor(() => twin(ec, XIAOMI, 'humidity') === '33', 3000, 'the other device still reports');
    assert.equal(ec.stateOf(XIAOMI), 'ok');
    // ...and keeps trying: a pending LE connection (cancelled at connect_timeout_ms), then scans, with backoff between.
    await ec.waitFor(() => attempts() - attemptsBefore >= 3, 10_000, 'repeated reconnect attempts');
    const made = attempts() - attemptsBefore;
    const perSecond = made / ((Date.now() - awaySince) / 1000);
    assert.ok(perSecond < 20, `${made} reconnect attempts in ${Date.now() - awaySince} ms: backoff, not a busy loop`);
    assert.ok(bindings.count('cancelConnect', sensor.id) >= 1, 'the pending connection to the absent device was cancelled');

    // It comes back.
    sensor.startAdvertising();
    await ec.waitFor(() => ec.stateOf(SENSOR) === 'ok', 6000, 'sensor ok again');
    assert.ok(ec.stateReports.slice(statesBefore).some((r) => r.request.deviceName === 'env-sensor-1' && r.request.state === 'offline'), 'offline was reported to edgecore');
    assert.equal(sensor.stats.connects, 2);
    assert.equal(sensor.stats.serviceDiscoveries, 2, 'GATT discovered again on the new connection');
    await rig.ec.waitFor(() => sensor.subscribed('2a6e'), 3000, 're-subscribed');
    assert.equal(sensor.stats.subscribes, 2);
    // The desired relay value is written again on the new connection.
    await ec.waitFor(() => sensor.value('fff1')[0] === 1, 3000, 'desired ON written again');

    // Notifications flow again.
    sensor.setValue('2a6e', int16le(1999));
    await ec.waitFor(() => twin(ec, SENSOR, 'temperature') === '19.99', 3000, 'notified twin after reconnect').catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; temperature twin is ${String(twin(ec, SENSOR, 'temperature'))}, last value ${JSON.stringify(rig.mapper.device(SENSOR)?.values.get('temperature'))}`);
    });
  });

  it('stays offline with a clear reason when a device never shows up, without disturbing the others', async () => {
    const missing = SAMPLE.replace('name: env-sensor-1', 'name: ghost').replace('C4:7C:8D:6A:3E:01', '00:00:5E:00:53:FF').replace('macAddress: "00:00:5E:00:53:FF"', 'macAddress: "00:00:5E:00:53:FF"\n      scanTimeoutMs: 200');
    const { devices } = TestEdgecore.fromCrdYaml(missing);
    const ghost = devices.find((d) => d.name === 'ghost');
    assert.ok(ghost);
    await rig.ec.registerDevice(ghost);
    await rig.ec.waitFor(() => rig.ec.stateOf('default/ghost') === 'offline', 4000, 'ghost offline');
    assert.match(rig.mapper.device('default/ghost')?.stateDetail ?? '', /BLE device 00:00:5e:00:53:ff not found: no advertisement seen in \d+ ms of scanning/);
    assert.equal(rig.ec.stateOf(SENSOR), 'ok');
    assert.equal(rig.ec.stateOf(XIAOMI), 'ok');
  });
});
