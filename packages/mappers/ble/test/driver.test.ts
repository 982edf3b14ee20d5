// SPDX-License-Identifier: Apache-2.0
// The BLE driver over the REAL noble library (its custom-binding entry point), with noble's
// bindings replaced by an emulated controller and peripheral (test/fixtures). No radio exists
// on the build machines, so this is one layer below the HCI socket: noble's own code runs,
// the HCI transport and the peripheral are emulated.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLogger, type DeviceClient, isMapperError, isSubscribable, type Logger, type PropertyRequest, type PropertyType, type Reading, type Subscribable } from '@mapperkit/framework';
import { describeDriverConformance } from '@mapperkit/framework/testing';
import { type BleVisitor, protocolConfigSchema, visitorConfigSchema } from '../src/config.js';
import { createBleDriver } from '../src/driver.js';
import { EmulatedBindings, EmulatedPeripheral } from './fixtures/emulated-bindings.js';
import { beaconPeripheral, SENSOR_MAC, SENSOR_NAME, sensorWorld, TAG_IR_CONFIG, TAG_IR_DATA, XIAOMI_DATA } from './fixtures/sensor.js';

const silent = createLogger({ level: 'silent' });

// AbortSignal.timeout() timers do not keep the event loop alive; while a test waits only on one
// (a connection that can never complete), something must, as the mapper's own timers do in production.
let keepAlive: NodeJS.Timeout | undefined;
before(() => {
  keepAlive = setInterval(() => undefined, 1000);
});
after(() => clearInterval(keepAlive));
const device = { id: 'default/sensor', name: 'sensor', namespace: 'default', model: 'env-sensor' };

function request(name: string, type: PropertyType, raw: Record<string, unknown>, accessMode: 'ReadOnly' | 'ReadWrite' = 'ReadOnly'): PropertyRequest<BleVisitor> {
  return { name, type, accessMode, visitor: visitorConfigSchema.parse(raw), minimum: undefined, maximum: undefined, unit: '' };
}

function captureLogger(): { log: Logger; lines: () => { msg: string; [k: string]: unknown }[] } {
  const out: string[] = [];
  const log = createLogger({ level: 'debug', destination: { write: (s: string) => void out.push(s) } });
  return { log, lines: () => out.map((l) => JSON.parse(l) as { msg: string }) };
}

async function connect(
  driver: ReturnType<typeof createBleDriver>,
  raw: Record<string, unknown>,
  log: Logger = silent,
  timeoutMs = 3000,
  dev = device,
): Promise<DeviceClient<BleVisitor> & Subscribable<BleVisitor>> {
  const client = await driver.connect({ device: dev, config: protocolConfigSchema.parse(raw), log }, AbortSignal.timeout(timeoutMs));
  assert.ok(isSubscribable(client), 'the BLE client implements Subscribable');
  return client as DeviceClient<BleVisitor> & Subscribable<BleVisitor>;
}

/** Collects readings from a subscription until `count` arrived or it ends. */
function collect(iterable: AsyncIterable<Reading>, into: Reading[]): Promise<unknown> {
  return (async () => {
    for await (const r of iterable) into.push(r);
  })();
}

async function until(fn: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

{
  // The framework's driver conformance suite against the emulated peripheral.
  const { bindings } = sensorWorld();
  describeDriverConformance('bluetooth (real noble, emulated peripheral)', {
    driver: createBleDriver({ bindings: () => bindings, gattTimeoutMs: 1000 }),
    async setup() {
      return { protocolConfig: { macAddress: SENSOR_MAC }, teardown: async () => bindings.shutdown() };
    },
    properties: [
      { name: 'battery', type: 'int', visitor: { characteristicUUID: '2a19', dataFormat: 'uint8' }, expect: 87 },
      { name: 'temperature', type: 'float', visitor: { characteristicUUID: '2A6E', serviceUUID: '181A', dataFormat: 'int16', orderOfOperations: 'Multiply:0.01' }, expect: 21.5 },
      // upstream's own converter examples, flattened / string-encoded for DMI:
      { name: 'humidity', type: 'string', visitor: { characteristicUUID: XIAOMI_DATA, startIndex: 2, endIndex: 2, orderOfOperations: '[{"operationType":"Divide","operationValue":100}]' }, expect: '0.450000' },
      {
        name: 'irTemperature',
        type: 'double',
        visitor: { characteristicUUID: TAG_IR_DATA, dataConverter: '{"startIndex":1,"endIndex":0,"shiftRight":2,"orderOfOperations":[{"operationType":"Multiply","operationValue":0.03125}]}' },
        expect: 94.96875,
      },
      { name: 'firmware', type: 'string', visitor: { characteristicUUID: '0a01' }, expect: 'v1.2.3' },
      { name: 'relay', type: 'string', visitor: { characteristicUUID: 'fff1', dataWrite: '{"ON":[1],"OFF":[0]}' }, expect: 'OFF', write: 'ON' },
      { name: 'setpoint', type: 'float', visitor: { characteristicUUID: 'fff5', dataFormat: 'int16', orderOfOperations: 'Multiply:0.1' }, expect: 20.5, write: 22.5 },
      { name: 'irEnable', type: 'boolean', visitor: { characteristicUUID: TAG_IR_CONFIG, dataFormat: 'uint8' }, expect: false, write: true },
    ],
    invalidProtocolConfig: { macAddress: 'not-a-mac' },
    invalidVisitor: { characteristicUUID: '2a6e', dataFormat: 'int16', startIndex: 0 },
    unreachableProtocolConfig: { macAddress: '00:00:5E:00:53:01', scanTimeoutMs: 300 },
  });
}

describe('bluetooth driver over real noble with an emulated peripheral', () => {
  const { bindings, sensor } = sensorWorld();
  const other = new EmulatedPeripheral({ address: 'D0:00:00:00:00:02', localName: 'Other', rssi: -80, services: [] });
  bindings.addPeripheral(other);
  bindings.addPeripheral(beaconPeripheral());
  const driver = createBleDriver({ bindings: () => bindings, gattTimeoutMs: 800, discoverScanMs: 150 });
  let client: DeviceClient<BleVisitor> & Subscribable<BleVisitor>;

  before(async () => {
    client = await connect(driver, { macAddress: SENSOR_MAC.toLowerCase().replace(/:/g, '-') });
  });
  after(async () => {
    await client.close();
    bindings.shutdown();
  });

  it('discovers services and characteristics once per connection and reads from the cache', async () => {
    const reqs = [request('battery', 'int', { characteristicUUID: '2a19', dataFormat: 'uint8' }), request('humidity', 'float', { characteristicUUID: '2a6f', dataFormat: 'uint16', orderOfOperations: 'Divide:100' })];
    for (let i = 0; i < 5; i++) {
      const r = await client.read(reqs, AbortSignal.timeout(2000));
      assert.deepEqual(
        r.map((x) => (x.ok ? x.value : x.error.message)),
        [87, 50],
      );
    }
    assert.equal(sensor.stats.serviceDiscoveries, 1, 'services discovered once');
    assert.equal(bindings.count('discoverCharacteristics', sensor.id), sensor.spec.services.length, 'characteristics discovered once per service');
    assert.equal(bindings.count('read', sensor.id), 10);
  });

  it('removes the SIGINT handler noble\'s HCI bindings install (it would exit(1) past graceful shutdown)', () => {
    assert.ok(bindings.onSigIntBinded, 'the emulated bindings installed one, as noble\'s HCI bindings do');
    assert.ok(!process.listeners('SIGINT').includes(bindings.onSigIntBinded));
  });

  it('reports GATT problems per property, naming the characteristic', async () => {
    const r = await client.read(
      [
        request('missing', 'int', { characteristicUUID: '2a99', dataFormat: 'uint8' }),
        request('wrongService', 'int', { characteristicUUID: '2a19', serviceUUID: '1801', dataFormat: 'uint8' }),
        request('attError', 'int', { characteristicUUID: 'fff8', dataFormat: 'uint8' }),
        request('notReadable', 'int', { characteristicUUID: 'fff6', dataFormat: 'uint8' }),
        request('noDecode', 'int', { characteristicUUID: '2a19' }),
        request('ok', 'int', { characteristicUUID: '2a19', dataFormat: 'uint8' }),
      ],
      AbortSignal.timeout(2000),
    );
    const [missing, wrongService, attError, notReadable, noDecode, ok] = r.map((x) => x);
    assert.ok(missing && !missing.ok && missing.error.kind === 'InvalidConfig' && /characteristic 2a99 not found on c4:7c:8d:6a:3e:01 \(services: 1800, 180f, 181a/.test(missing.error.message));
    assert.ok(wrongService && !wrongService.ok && /service 1801 not found/.test(wrongService.error.message));
    // noble turns an ATT error answering a read into an empty value.
    assert.ok(attError && !attError.ok && /uint8 at offset 0 needs 1 bytes, the value has 0 \(noble reports a failed GATT read/.test(attError.error.message));
    assert.ok(notReadable && !notReadable.ok && /characteristic fff6 is not readable \(properties: writeWithoutResponse\)/.test(notReadable.error.message));
    assert.ok(noDecode && !noDecode.ok && /needs dataFormat/.test(noDecode.error.message));
    assert.ok(ok?.ok && ok.value === 87);
  });

  it('writes with response, without response, and reports a refused write as a timeout with the reason noble hides', async () => {
    await client.write(request('relay', 'string', { characteristicUUID: 'fff1', dataWrite: '{"ON":[1],"OFF":[0]}' }, 'ReadWrite'), 'ON', AbortSignal.timeout(2000));
    assert.deepEqual([...sensor.value('fff1')], [1]);
    await client.write(request('cmd', 'int', { characteristicUUID: 'fff6', dataFormat: 'uint16', byteOrder: 'big' }, 'ReadWrite'), 258, AbortSignal.timeout(2000));
    // Without response, noble resolves when the command is queued; the peripheral gets it right after.
    await until(() => sensor.written.length === 2, 1000, 'the write without response');
    assert.deepEqual(sensor.written.at(-1), { characteristic: 'fff6', data: Buffer.from([1, 2]), withoutResponse: true });
    await assert.rejects(
      client.write(request('refusing', 'int', { characteristicUUID: 'fff7', dataFormat: 'uint8' }, 'ReadWrite'), 5, AbortSignal.timeout(300)),
      (e: unknown) => isMapperError(e) && e.kind === 'Timeout' && /noble does not report GATT write errors/.test(e.message),
    );
    await assert.rejects(
      client.write(request('ro', 'int', { characteristicUUID: '2a19', dataFormat: 'uint8' }, 'ReadWrite'), 5, AbortSignal.timeout(2000)),
      (e: unknown) => isMapperError(e) && e.kind === 'WriteRejected' && /characteristic 2a19 is not writable \(properties: read, notify\)/.test(e.message),
    );
    await assert.rejects(
      client.write(request('range', 'int', { characteristicUUID: 'fff5', dataFormat: 'int8' }, 'ReadWrite'), 300, AbortSignal.timeout(2000)),
      (e: unknown) => isMapperError(e) && e.kind === 'WriteRejected' && /does not fit int8/.test(e.message),
    );
    // The link survived all of it.
    assert.equal(await client.state(AbortSignal.timeout(1000)), 'ok');
  });

  it('chooses notifications like upstream: notify/indicate with a CCCD, else polling', () => {
    assert.equal(client.isSubscribed(request('t', 'float', { characteristicUUID: '2a6e', dataFormat: 'int16' })), true);
    assert.equal(client.isSubscribed(request('t', 'float', { characteristicUUID: '2a6e', dataFormat: 'int16', mode: 'read' })), false);
    assert.equal(client.isSubscribed(request('h', 'float', { characteristicUUID: '2a6f', dataFormat: 'uint16' })), false, 'read-only characteristic is polled');
    assert.equal(client.isSubscribed(request('n', 'int', { characteristicUUID: 'fff3', dataFormat: 'uint8' })), false, 'notify without CCCD is polled');
    assert.equal(client.isSubscribed(request('n', 'int', { characteristicUUID: 'fff3', dataFormat: 'uint8', mode: 'notify' })), false);
  });

  it('a visitor that insists on notify where there is no CCCD fails with a clear error', async () => {
    const [r] = await client.read([request('n', 'int', { characteristicUUID: 'fff3', dataFormat: 'uint8', mode: 'notify' })], AbortSignal.timeout(2000));
    assert.ok(r && !r.ok && r.error.kind === 'InvalidConfig' && /cannot notify \(properties: read, notify, no CCCD\) but the visitor's mode is notify/.test(r.error.message));
  });

  it('delivers notifications through subscribe(), decoded per property, and serves notify-only reads from them', async () => {
    const counter = request('counter', 'int', { characteristicUUID: 'fff2', dataFormat: 'uint32' });
    const [before] = await client.read([counter], AbortSignal.timeout(2000));
    assert.ok(before && !before.ok && /not readable \(properties: notify\) and has not notified a value yet/.test(before.error.message));

    const temp = request('temperature', 'float', { characteristicUUID: '2a6e', dataFormat: 'int16', orderOfOperations: 'Multiply:0.01' });
    const tempText = request('temperatureRaw', 'string', { characteristicUUID: '2a6e', dataFormat: 'hex' });
    const ctl = new AbortController();
    const got: Reading[] = [];
    const done = collect(client.subscribe([temp, tempText, counter], ctl.signal), got);
    await until(() => sensor.subscribed('2a6e') && sensor.subscribed('fff2'), 2000, 'CCCD writes');
    // First the current value of the readable characteristic (read once at subscription time)...
    await until(() => got.length >= 2, 2000, 'initial readings');
    assert.deepEqual(
      got.map((r) => [r.property, 'value' in r ? r.value : r.error.message]),
      [
        ['temperature', 21.5],
        ['temperatureRaw', '6608'],
      ],
    );
    // ...then every notification.
    const b = Buffer.alloc(2);
    b.writeInt16LE(-1234);
    sensor.setValue('2a6e', b);
    sensor.setValue('fff2', Buffer.from([0x2a, 0, 0, 0]));
    await until(() => got.length >= 5, 2000, 'three more readings');
    assert.deepEqual(
      got.slice(2).map((r) => [r.property, 'value' in r ? r.value : r.error.message]),
      [
        ['temperature', -12.34],
        ['temperatureRaw', '2efb'],
        ['counter', 42],
      ],
    );
    assert.ok(got.every((r) => typeof r.timestamp === 'number'));
    const [afterNotify] = await client.read([counter], AbortSignal.timeout(2000));
    assert.ok(afterNotify?.ok && afterNotify.value === 42, 'a notify-only characteristic reads as its last notification');
    ctl.abort();
    await done;
    await until(() => !sensor.subscribed('2a6e'), 2000, 'notifications disabled after the subscription ended');
  });

  it('finds a device by local name', async () => {
    // Same driver (one noble per adapter: a second noble on the same bindings would see events for peripherals it never saw).
    const c = await connect(driver, { localName: 'Other' }, silent, 3000, { ...device, id: 'default/other', name: 'other' });
    try {
      assert.equal(await c.state(AbortSignal.timeout(500)), 'ok');
      assert.equal(other.stats.connects, 1);
    } finally {
      await c.close();
    }
    assert.equal(other.connected, false, 'close() disconnects');
  });

  it('refuses a device that advertises as not connectable, instead of waiting forever', async () => {
    await assert.rejects(
      connect(driver, { localName: 'Beacon' }, silent, 3000, { ...device, id: 'default/beacon', name: 'beacon' }),
      (e: unknown) => isMapperError(e) && e.kind === 'Unreachable' && /BLE device "Beacon" advertises as not connectable/.test(e.message),
    );
    assert.equal(bindings.count('connect', 'f00d00000003'), 0);
  });

  it('discovers advertising devices by scanning (Discoverable)', async () => {
    const found = await driver.discover(AbortSignal.timeout(5000));
    const byId = new Map(found.map((d) => [d.id, d]));
    // The connected sensor does not advertise; the other peripheral does.
    assert.deepEqual(byId.get('D0:00:00:00:00:02'), {
      id: 'D0:00:00:00:00:02',
      name: 'Other',
      protocolConfig: { macAddress: 'D0:00:00:00:00:02', localName: 'Other' },
      details: { rssi: '-80', addressType: 'public', connectable: 'true' },
    });
    assert.equal(byId.has(SENSOR_MAC), false);
    assert.equal(bindings.scanning, false, 'scanning stops when nobody needs it');
  });
});

describe('bluetooth driver: link loss, adapter states and a missing adapter', () => {
  it('ends the subscription with Unreachable naming the HCI reason when the link drops; state goes offline; reads reject', async () => {
    const { bindings, sensor } = sensorWorld();
    const driver = createBleDriver({ bindings: () => bindings });
    const client = await connect(driver, { macAddress: SENSOR_MAC });
    try {
      const ctl = new AbortController();
      const got: Reading[] = [];
      const done = collect(client.subscribe([request('battery', 'int', { characteristicUUID: '2a19', dataFormat: 'uint8' })], ctl.signal), got);
      await until(() => sensor.subscribed('2a19'), 2000, 'subscription');
      await until(() => got.length === 1, 2000, 'the initial reading');
      sensor.setValue('2a19', Buffer.from([86]));
      await until(() => got.length === 2, 2000, 'a notification');
      assert.deepEqual(
        got.map((r) => ('value' in r ? r.value : r.error.message)),
        [87, 86],
      );
      sensor.dropLink(0x08);
      await assert.rejects(done, (e: unknown) => isMapperError(e) && e.kind === 'Unreachable' && /disconnected \(reason 0x08 \(connection timeout\)\)/.test(e.message));
      assert.equal(await client.state(AbortSignal.timeout(500)), 'offline');
      await assert.rejects(client.read([request('battery', 'int', { characteristicUUID: '2a19', dataFormat: 'uint8' })], AbortSignal.timeout(500)), (e: unknown) => isMapperError(e) && e.kind === 'Unreachable');
    } finally {
      await client.close();
      bindings.shutdown();
    }
  });

  it('a read in flight when the link drops rejects at once instead of waiting for its timeout', async () => {
    const { bindings, sensor } = sensorWorld({ latencyMs: 200 });
    const client = await connect(createBleDriver({ bindings: () => bindings }), { macAddress: SENSOR_MAC }, silent, 10_000);
    try {
      const started = Date.now();
      const pending = client.read([request('battery', 'int', { characteristicUUID: '2a19', dataFormat: 'uint8' })], AbortSignal.timeout(5000));
      setTimeout(() => sensor.dropLink(0x13), 50);
      await assert.rejects(pending, (e: unknown) => isMapperError(e) && e.kind === 'Unreachable' && /reason 0x13/.test(e.message));
      assert.ok(Date.now() - started < 1000);
    } finally {
      await client.close();
      bindings.shutdown();
    }
  });

  it('cancels a pending LE connection when connect() is aborted, then connects once the device advertises', async () => {
    const { bindings, sensor } = sensorWorld();
    const driver = createBleDriver({ bindings: () => bindings });
    const first = await connect(driver, { macAddress: SENSOR_MAC });
    await first.close();
    sensor.stopAdvertising(); // known from the scan, but gone
    await assert.rejects(connect(driver, { macAddress: SENSOR_MAC }, silent, 300), (e: unknown) => isMapperError(e) && e.kind === 'Timeout');
    assert.equal(bindings.count('cancelConnect', sensor.id), 1, 'the pending connection was cancelled');
    sensor.startAdvertising();
    const again = await connect(driver, { macAddress: SENSOR_MAC });
    assert.equal(await again.state(AbortSignal.timeout(500)), 'ok');
    await again.close();
    bindings.shutdown();
  });

  it('an adapter that is off or unsupported fails connect() with Unreachable naming the state', async () => {
    const off = new EmulatedBindings({ adapterState: 'poweredOff' });
    await assert.rejects(
      createBleDriver({ bindings: () => off }).connect({ device, config: protocolConfigSchema.parse({ macAddress: SENSOR_MAC }), log: silent }, AbortSignal.timeout(200)),
      (e: unknown) => isMapperError(e) && e.kind === 'Unreachable' && /Bluetooth adapter not ready \(state poweredOff\)/.test(e.message),
    );
    const unsupported = new EmulatedBindings({ adapterState: 'unsupported' });
    const started = Date.now();
    await assert.rejects(
      createBleDriver({ bindings: () => unsupported }).connect({ device, config: protocolConfigSchema.parse({ macAddress: SENSOR_MAC }), log: silent }, AbortSignal.timeout(5000)),
      (e: unknown) => isMapperError(e) && e.kind === 'Unreachable' && /adapter state is unsupported/.test(e.message),
    );
    assert.ok(Date.now() - started < 1000, 'an unsupported adapter fails at once');
    off.shutdown();
    unsupported.shutdown();
  });

  it('without an adapter: connect and discover fail with Unreachable, the clear log line is written once, and a later adapter is picked up', async () => {
    let attempts = 0;
    let adapter: EmulatedBindings | undefined;
    const { log, lines } = captureLogger();
    const driver = createBleDriver({
      logger: log,
      bindings: () => {
        attempts++;
        if (!adapter) throw Object.assign(new Error('EAFNOSUPPORT, Address family not supported by protocol'), { code: 'EAFNOSUPPORT' });
        return adapter;
      },
    });
    const cfg = protocolConfigSchema.parse({ macAddress: SENSOR_MAC });
    for (let i = 0; i < 3; i++) {
      await assert.rejects(
        driver.connect({ device, config: cfg, log }, AbortSignal.timeout(1000)),
        (e: unknown) => isMapperError(e) && e.kind === 'Unreachable' && /Bluetooth unavailable on this machine \(EAFNOSUPPORT: EAFNOSUPPORT, Address family not supported by protocol\)/.test(e.message),
      );
    }
    await assert.rejects(driver.discover(AbortSignal.timeout(1000)), (e: unknown) => isMapperError(e) && e.kind === 'Unreachable');
    const errors = lines().filter((l) => /^Bluetooth unavailable: no HCI adapter could be opened/.test(l.msg));
    assert.equal(errors.length, 1, 'logged once, not on every retry');
    assert.equal(attempts, 4, 'each attempt tries to open the adapter again');
    // The adapter appears (a dongle plugged in): the next attempt works.
    const world = sensorWorld();
    adapter = world.bindings;
    const client = await driver.connect({ device, config: cfg, log }, AbortSignal.timeout(3000));
    assert.equal(await client.state(AbortSignal.timeout(500)), 'ok');
    await client.close();
    adapter.shutdown();
  });

  it('names a device that is not advertising after scanTimeoutMs', async () => {
    const { bindings } = sensorWorld();
    await assert.rejects(
      connect(createBleDriver({ bindings: () => bindings }), { localName: 'Nobody', scanTimeoutMs: 150 }),
      (e: unknown) => isMapperError(e) && e.kind === 'Unreachable' && /BLE device "Nobody" not found: no advertisement seen in \d+ ms of scanning/.test(e.message),
    );
    assert.equal(bindings.scanning, false);
    bindings.shutdown();
  });

  it('does not let two devices share one peripheral', async () => {
    const { bindings } = sensorWorld();
    const driver = createBleDriver({ bindings: () => bindings });
    const a = await connect(driver, { macAddress: SENSOR_MAC });
    try {
      await assert.rejects(
        driver.connect({ device: { ...device, id: 'default/twin', name: 'twin' }, config: protocolConfigSchema.parse({ localName: SENSOR_NAME }), log: silent }, AbortSignal.timeout(2000)),
        (e: unknown) => isMapperError(e) && e.kind === 'Unreachable' && /already connected for device default\/sensor/.test(e.message),
      );
      assert.equal(await a.state(AbortSignal.timeout(500)), 'ok', 'the first device keeps its link');
    } finally {
      await a.close();
      bindings.shutdown();
    }
  });
});
