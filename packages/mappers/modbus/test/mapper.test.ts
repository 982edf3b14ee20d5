// SPDX-License-Identifier: Apache-2.0
// The driver inside a real mapper (createMapper) talking DMI to a TestEdgecore over unix
// sockets, against pymodbus TCP in its own process: twins, desired writes, the device server
// killed and restarted mid-run, per-property exceptions, and one bad device next to good ones.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createMapper, type MapperHandle } from '@mapperkit/framework';
import { TestEdgecore } from '@mapperkit/framework/testing';
import { createModbusDriver } from '../src/index.ts';
import { freePort, PymodbusPeer, silentLog, sleep, tempDir, until } from './helpers.ts';

function crdYaml(port: number): string {
  const prop = (name: string, visitor: string, extra = '') => `
    - name: ${name}
      collectCycle: 200
      reportCycle: 200
      reportToCloud: true${extra}
      visitors:
        protocolName: modbus
        configData:
${visitor}`;
  return `
apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata: { name: boiler, namespace: default }
spec:
  protocol: modbus
  properties:
    - { name: temperature, type: FLOAT, accessMode: ReadOnly }
    - { name: setpoint, type: FLOAT, accessMode: ReadWrite, minimum: "5", maximum: "35" }
    - { name: burner, type: BOOLEAN, accessMode: ReadWrite }
    - { name: broken, type: INT, accessMode: ReadOnly }
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: { name: boiler-1, namespace: default }
spec:
  deviceModelRef: { name: boiler }
  protocol:
    protocolName: modbus
    configData: { communicateMode: TCP, ip: 127.0.0.1, port: "${port}", slaveID: 1, timeout: 300 }
  stateReport: { reportToCloud: true, reportCycle: 1000 }
  properties:${prop('temperature', '          register: HoldingRegister\n          offset: 0\n          dataType: int16\n          scale: 0.1')}${prop(
    'setpoint',
    '          register: HoldingRegister\n          offset: 1\n          dataType: int16\n          scale: 0.1',
    '\n      desired: { value: "22.5" }',
  )}${prop('burner', '          register: CoilRegister\n          offset: 0', '\n      desired: { value: "true" }')}${prop('broken', '          register: HoldingRegister\n          offset: 3')}
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: { name: misconfigured, namespace: default }
spec:
  deviceModelRef: { name: boiler }
  protocol:
    protocolName: modbus
    configData: { communicateMode: TCP, slaveID: 1 }
  properties:${prop('temperature', '          register: HoldingRegister\n          offset: 0')}
`;
}

describe('mapper with the Modbus driver, against pymodbus TCP', () => {
  let tmp: ReturnType<typeof tempDir>;
  let peer: PymodbusPeer;
  let ec: TestEdgecore;
  let mapper: MapperHandle;
  const ID = 'default/boiler-1';

  before(async () => {
    tmp = tempDir();
    const port = await freePort();
    // Holding 3 does not exist: the "broken" property reads exception 2.
    peer = await PymodbusPeer.start({ mode: 'tcp', port, slaves: { 1: { hr: { 0: [195, 150], 4: [0] }, co: { 0: [0] } } } });
    const { devices, models } = TestEdgecore.fromCrdYaml(crdYaml(port));
    ec = await TestEdgecore.start({ socketPath: join(tmp.dir, 'dmi.sock'), devices, models, limiter: false });
    mapper = await createMapper({
      driver: createModbusDriver(),
      logger: silentLog,
      config: `grpc_server:\n  socket_path: ${join(tmp.dir, 'modbus.sock')}\ncommon:\n  name: modbus-mapper\n  protocol: modbus\n  edgecore_sock: ${join(tmp.dir, 'dmi.sock')}\nruntime:\n  report_rate: 1000\n  report_burst: 1000\n  state_check_ms: 200\n  backoff_initial_ms: 100\n  backoff_max_ms: 400\n  read_timeout_ms: 2000\n  connect_timeout_ms: 2000\n`,
    });
    await mapper.whenRegistered();
  });

  after(async () => {
    await mapper?.stop();
    await ec?.close();
    await peer?.stop();
    tmp?.cleanup();
  });

  it('reports twins read from the device and writes desired values to it', async () => {
    await ec.waitFor(() => ec.twinsOf(ID).get('temperature')?.reported === '19.5', 5000, 'temperature twin');
    await ec.waitFor(() => ec.twinsOf(ID).get('setpoint')?.observedDesired === '22.5' && ec.twinsOf(ID).get('setpoint')?.reported === '22.5', 5000, 'setpoint written');
    assert.deepEqual(await peer.get(1, 'hr', 1, 1), [225], 'the desired value is in the holding register');
    assert.deepEqual(await peer.get(1, 'co', 0, 1), [1], 'the desired coil state is set');
    assert.equal(ec.twinsOf(ID).get('burner')?.reported, 'true');
    assert.equal(ec.stateOf(ID), 'ok');
  });

  it('reports a refused register as that property failing, the others keep reporting', async () => {
    const view = mapper.device(ID)!;
    await until(() => view.values.get('broken')?.error !== undefined, 3000, 'broken property error');
    const err = view.values.get('broken')!.error!.error;
    assert.equal(err.kind, 'DeviceError');
    assert.match(err.message, /property broken .*Modbus exception 2 \(illegal data address\)/);
    assert.equal(view.state, 'ok');
    assert.ok(!ec.twinsOf(ID).has('broken'), 'no twin for a property that never read');
  });

  it('a device with a bad protocol config is unhealthy and names the key; the good device runs', () => {
    const bad = mapper.device('default/misconfigured')!;
    assert.equal(bad.state, 'unhealthy');
    assert.match(bad.stateDetail ?? '', /ip: required for communicateMode TCP/);
    assert.equal(mapper.device(ID)!.state, 'ok');
  });

  it('writes through the mapper (REST/method path) with range checks', async () => {
    assert.equal(await mapper.writeProperty('default', 'boiler-1', 'setpoint', '30'), 30);
    assert.deepEqual(await peer.get(1, 'hr', 1, 1), [300]);
    await assert.rejects(mapper.writeProperty('default', 'boiler-1', 'setpoint', '40'), /above the maximum 35/);
    await assert.rejects(mapper.writeProperty('default', 'boiler-1', 'temperature', '20'), /ReadOnly/);
    assert.deepEqual(await peer.get(1, 'hr', 1, 1), [300]);
  });

  it('goes offline when the device server dies and resumes when it is back', async () => {
    await peer.kill();
    await until(() => mapper.device(ID)!.state === 'offline', 5000, 'state offline');
    await ec.waitFor(() => ec.stateOf(ID) === 'offline', 5000, 'offline reported to edgecore');
    await sleep(600); // a few failed reconnects while it is down
    await peer.launch();
    await peer.set(1, 'hr', 0, [250]);
    await until(() => mapper.device(ID)!.state === 'ok', 8000, 'state ok again');
    await ec.waitFor(() => ec.stateOf(ID) === 'ok', 5000, 'ok reported to edgecore');
    await ec.waitFor(() => ec.twinsOf(ID).get('temperature')?.reported === '25', 5000, 'new values after the restart');
    // The restarted server lost its registers; the mapper writes desired values on every new connection.
    await until(async () => (await peer.get(1, 'hr', 1, 1))[0] === 225, 5000, 'desired setpoint re-written after reconnect');
  });
});
