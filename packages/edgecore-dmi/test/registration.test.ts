// SPDX-License-Identifier: Apache-2.0
// MapperRegister semantics, filtering by protocol, the socket (stale file, mode), the emulated
// limiter and report validation, through a gRPC client on the real unix socket.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { DeviceManagerServiceClient, type MapperRegisterRequest, type MapperRegisterResponse, type ReportDeviceStatusRequest, unixTarget } from '@mapperkit/framework/dmi';
import type { EdgecoreDmi } from '../src/index.js';
import { deviceYaml, MODEL_YAML, startServer, TempDir } from './helpers.ts';

const OTHER = `apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata: { name: plc, namespace: line1 }
spec:
  protocol: modbus
  properties: [{ name: speed, type: INT, accessMode: ReadWrite }]
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: { name: plc-1, namespace: line1 }
spec:
  deviceModelRef: { name: plc }
  protocol: { protocolName: modbus, configData: { slaveID: 1 } }
  properties: [{ name: speed }]
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: { name: plc-2, namespace: line1 }
spec:
  deviceModelRef: { name: plc }
  protocol: { protocolName: modbus, configData: { slaveID: 2 } }
  properties: [{ name: speed }]
`;

function client(server: EdgecoreDmi): DeviceManagerServiceClient {
  return new DeviceManagerServiceClient(unixTarget(server.socketPath), credentials.createInsecure());
}

function register(c: DeviceManagerServiceClient, req: MapperRegisterRequest): Promise<MapperRegisterResponse> {
  return new Promise((res, rej) => c.mapperRegister(req, new Metadata(), { deadline: Date.now() + 3000 }, (e, r) => (e ? rej(e) : res(r))));
}

function report(c: DeviceManagerServiceClient, req: ReportDeviceStatusRequest): Promise<void> {
  return new Promise((res, rej) => c.reportDeviceStatus(req, new Metadata(), { deadline: Date.now() + 3000 }, (e) => (e ? rej(e) : res())));
}

function states(c: DeviceManagerServiceClient, name: string, state: string, namespace = 'default'): Promise<void> {
  return new Promise((res, rej) => c.reportDeviceStates({ deviceName: name, deviceNamespace: namespace, state }, new Metadata(), { deadline: Date.now() + 3000 }, (e) => (e ? rej(e) : res())));
}

const mapperInfo = (name: string, protocol: string, address: string) => ({ name, version: 'v1', apiVersion: 'v1.0.0', protocol, address: Buffer.from(address), state: 'ok' });

describe('MapperRegister and the socket', () => {
  const dir = new TempDir();
  let server: EdgecoreDmi | undefined;
  after(async () => {
    await server?.close();
    dir.remove();
  });

  it('removes a stale socket file, listens with mode 0660, and removes the socket on close', async () => {
    const sock = dir.join('dmi.sock');
    // A socket file left behind by a killed process.
    const py = spawnSync('/usr/bin/python3', ['-c', `import socket; s = socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(sock)})`]);
    assert.equal(py.status, 0);
    assert.ok(statSync(sock).isSocket());
    const s = await startServer(dir, { dbPath: dir.join('first.db') });
    assert.equal(statSync(sock).mode & 0o777, 0o660);
    await register(client(s), { withData: false, mapper: mapperInfo('m', 'virtual', dir.join('m.sock')) });
    await s.close();
    assert.throws(() => statSync(sock), /ENOENT/);
  });

  it('a directory as socket path means <dir>/dmi.sock (edgecore v1.23 dmiSockPath)', async () => {
    const d2 = new TempDir();
    const s = await startServer(d2, { socketPath: d2.path });
    assert.equal(s.socketPath, d2.join('dmi.sock'));
    assert.ok(statSync(d2.join('dmi.sock')).isSocket());
    await s.close();
    d2.remove();
  });

  it('refuses to delete a path that is not a socket', async () => {
    const d2 = new TempDir();
    d2.file('dmi.sock', 'not a socket');
    await assert.rejects(startServer(d2), /not a socket/);
    d2.remove();
  });

  it('returns only devices of the mapper protocol, pairwise with their models; withData=false returns nothing and creates no channel', async () => {
    dir.file('inv.yaml', `${MODEL_YAML}---\n${deviceYaml('t1')}---\n${deviceYaml('t2', { seed: 2 })}---\n${OTHER}`);
    server = await startServer(dir, { devices: dir.path, limiter: false });
    const c = client(server);

    const none = await register(c, { withData: false, mapper: mapperInfo('modbus-mapper', 'modbus', dir.join('modbus.sock')) });
    assert.deepEqual(none, { deviceList: [], modelList: [] });
    const m0 = server.mappers().find((m) => m.name === 'modbus-mapper')!;
    assert.equal(m0.withData, false);
    assert.equal(m0.active, false, 'edgecore creates no DMI client without withData');
    assert.equal(server.deviceView('line1/plc-1')!.delivery.status, 'no-mapper');

    const resp = await register(c, { withData: true, mapper: mapperInfo('modbus-mapper', 'modbus', dir.join('modbus.sock')) });
    assert.deepEqual(
      resp.deviceList.map((d) => `${d.namespace}/${d.name}`),
      ['line1/plc-1', 'line1/plc-2'],
    );
    assert.deepEqual(
      resp.modelList.map((m) => `${m.namespace}/${m.name}`),
      ['line1/plc', 'line1/plc'],
    );
    assert.equal(resp.deviceList[0]!.spec!.protocol!.configData!.data['slaveID']!.typeUrl, 'type.googleapis.com/google.protobuf.FloatValue');

    const v = await register(c, { withData: true, mapper: mapperInfo('virtual-mapper', 'virtual', dir.join('virtual.sock')) });
    assert.deepEqual(
      v.deviceList.map((d) => d.name),
      ['t1', 't2'],
    );
    assert.deepEqual(
      v.modelList.map((m) => m.name),
      ['thermo', 'thermo'],
    );
    // Model defaults merged into the device: model visitors for setpoint, model protocolConfigData.
    const t1 = v.deviceList[0]!;
    assert.ok('latencyMs' in t1.spec!.protocol!.configData!.data);
    const setpoint = t1.spec!.properties.find((p) => p.name === 'setpoint')!;
    assert.deepEqual(Object.keys(setpoint.visitors!.configData!.data).sort(), ['initial', 'kind']);

    const mappers = server.mappers();
    assert.deepEqual(
      mappers.map((m) => [m.name, m.protocol, m.active, m.registrations]),
      [
        ['modbus-mapper', 'modbus', true, 2],
        ['virtual-mapper', 'virtual', true, 1],
      ],
    );
    assert.equal(mappers[0]!.address, dir.join('modbus.sock'));
    c.close();
  });

  it('rejects a registration without protocol, as edgecore does', async () => {
    const c = client(server!);
    await assert.rejects(register(c, { withData: true, mapper: mapperInfo('x', '', dir.join('x.sock')) }), (e: ServiceError) => {
      assert.match(e.details, /protocol is nil/);
      return true;
    });
    c.close();
  });

  it('a second mapper for the same protocol takes over (one mapper per protocol), with a warning', async () => {
    const c = client(server!);
    await register(c, { withData: true, mapper: mapperInfo('modbus-mapper-2', 'modbus', dir.join('modbus2.sock')) });
    const ms = server!.mappers();
    assert.equal(ms.find((m) => m.name === 'modbus-mapper')!.active, false);
    assert.equal(ms.find((m) => m.name === 'modbus-mapper-2')!.active, true);
    assert.ok(server!.problems().some((p) => /modbus-mapper-2 replaced mapper modbus-mapper for protocol modbus/.test(p.message)));
    c.close();
  });

  it('validates reported twins against the model type and drops what edgecore would drop, naming device and property', async () => {
    const c = client(server!);
    await report(c, {
      deviceName: 'plc-1',
      deviceNamespace: 'line1',
      reportedDevice: { twins: [{ propertyName: 'speed', reported: { value: 'fast', metadata: {} }, observedDesired: { value: '', metadata: {} } }], reportToCloud: false, reportCycle: 0n },
    });
    assert.equal(server!.deviceView('line1/plc-1')!.twins[0]!.reported, undefined);
    assert.ok(server!.problems().some((p) => p.id === 'line1/plc-1' && p.field === 'twins.speed' && /"fast" is not a valid INT/.test(p.message)));
    await report(c, {
      deviceName: 'plc-1',
      deviceNamespace: 'line1',
      reportedDevice: { twins: [{ propertyName: 'speed', reported: { value: '1200', metadata: { type: 'int' } }, observedDesired: { value: '1000', metadata: {} } }], reportToCloud: false, reportCycle: 0n },
    });
    const t = server!.deviceView('line1/plc-1')!.twins[0]!;
    assert.equal(t.reported, '1200');
    assert.equal(t.observedDesired, '1000');
    assert.ok(!server!.problems().some((p) => p.field === 'twins.speed'), 'a good report clears the problem');
    await report(c, { deviceName: 'ghost', deviceNamespace: 'default', reportedDevice: { twins: [{ propertyName: 'x', reported: { value: '1', metadata: {} } }], reportToCloud: false, reportCycle: 0n } });
    assert.ok(server!.problems().some((p) => /ReportDeviceStatus for unknown device default\/ghost/.test(p.message)));
    await states(c, 'plc-2', 'ONLINE', 'line1');
    assert.equal(server!.deviceView('line1/plc-2')!.state, 'online', 'states are lower-cased as edgecore does');
    await assert.rejects(states(c, '', 'ok'), /deviceName is required/);
    c.close();
  });
});

describe('emulated edgecore limiter', () => {
  const dir = new TempDir();
  let server: EdgecoreDmi | undefined;
  after(async () => {
    await server?.close();
    dir.remove();
  });

  it('lets the burst through, refuses the rest with edgecore\'s message, and counts refusals per RPC and mapper', async () => {
    dir.file('inv.yaml', `${MODEL_YAML}---\n${deviceYaml('t1')}`);
    server = await startServer(dir, { devices: dir.path, limiter: { rate: 1, burst: 5 } });
    const c = client(server);
    await register(c, { withData: true, mapper: mapperInfo('chatty', 'virtual', dir.join('chatty.sock')) });
    const twin = { propertyName: 'temperature', reported: { value: '1.5', metadata: {} } };
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, () => report(c, { deviceName: 't1', deviceNamespace: 'default', reportedDevice: { twins: [twin], reportToCloud: false, reportCycle: 0n } })),
    );
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    // 5 tokens at start, 1 taken by MapperRegister, 1 more per second (a slow machine refills a few).
    assert.ok(refused.length >= 5 && refused.length <= 8, `refused ${refused.length}`);
    assert.match((refused[0]!.reason as ServiceError).details, /fail to ReportDeviceStatus because of too many request: ReportDeviceStatus/);
    const st = server.stats();
    assert.equal(st.limiter.enabled, true);
    assert.equal(st.limiter.throttled, refused.length);
    assert.equal(st.limiter.throttledByMethod['ReportDeviceStatus'], refused.length);
    assert.equal(st.limiter.throttledByMapper['chatty'], refused.length);
    assert.equal(st.requests['ReportDeviceStatus'], 12 - refused.length);
    c.close();
  });

  it('with the limiter off nothing is refused', async () => {
    const d2 = new TempDir();
    d2.file('inv.yaml', `${MODEL_YAML}---\n${deviceYaml('t1')}`);
    const s = await startServer(d2, { devices: d2.path, limiter: false });
    const c = client(s);
    const twin = { propertyName: 'temperature', reported: { value: '2', metadata: {} } };
    await Promise.all(Array.from({ length: 150 }, () => report(c, { deviceName: 't1', deviceNamespace: 'default', reportedDevice: { twins: [twin], reportToCloud: false, reportCycle: 0n } })));
    assert.equal(s.stats().limiter.throttled, 0);
    assert.equal(s.stats().requests['ReportDeviceStatus'], 150);
    c.close();
    await s.close();
    d2.remove();
  });
});
