// SPDX-License-Identifier: Apache-2.0
// Files added, changed and deleted → the right DMI call on a real mapper (the virtual-mapper
// example's driver under the framework runtime); a mapper that is down gets everything when
// it registers again; set-desired reaches the device.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { MapperHandle } from '@mapperkit/framework';
import type { DmiMethod, EdgecoreDmi } from '../src/index.js';
import { deviceYaml, eventually, MODEL_YAML, startServer, startVirtualMapper, TempDir } from './helpers.ts';

describe('inventory files → DMI calls on a real mapper', () => {
  const dir = new TempDir();
  let server: EdgecoreDmi;
  let mapper: MapperHandle | undefined;
  const devices = dir.join('devices');

  const calls = (method: DmiMethod, target: string): number => server.calls(500).filter((c) => c.method === method && c.target === target && c.ok).length;

  before(async () => {
    mkdirSync(devices);
    server = await startServer(dir, { devices, limiter: false });
    mapper = await startVirtualMapper(dir, server.socketPath);
    await mapper.whenRegistered();
  });
  after(async () => {
    await mapper?.stop();
    await server?.close();
    dir.remove();
  });

  it('an added file → CreateDeviceModel then RegisterDevice; the device runs and its twins are stored', async () => {
    dir.file('devices/model.yaml', MODEL_YAML);
    dir.file('devices/t1.yaml', deviceYaml('t1'));
    await eventually(() => mapper!.device('default/t1'), 10_000, 'default/t1 on the mapper');
    // The mapper has the device before its answer arrives: wait for the recorded call.
    await eventually(() => calls('RegisterDevice', 'default/t1') === 1, 5000, 'the RegisterDevice answer');
    assert.equal(calls('CreateDeviceModel', 'default/thermo'), 1);
    const order = server.calls(500).map((c) => c.method);
    assert.ok(order.indexOf('CreateDeviceModel') < order.indexOf('RegisterDevice'));
    await eventually(() => server.deviceView('t1')!.twins.find((t) => t.property === 'temperature')!.reported !== undefined, 10_000, 'a temperature twin');
    assert.equal(server.deviceView('t1')!.delivery.status, 'delivered');
    assert.equal(server.deviceView('t1')!.state, 'ok');
  });

  it('a changed device → UpdateDevice, and the mapper runs the new definition', async () => {
    assert.equal(mapper!.device('default/t1')!.spec.protocol['seed'], 1);
    dir.file('devices/t1.yaml', deviceYaml('t1', { seed: 7 }));
    await eventually(() => mapper!.device('default/t1')?.spec.protocol['seed'] === 7, 10_000, 'seed 7 on the mapper');
    await eventually(() => calls('UpdateDevice', 'default/t1') === 1, 5000, 'the UpdateDevice answer');
    assert.equal(calls('RegisterDevice', 'default/t1'), 1, 'no second RegisterDevice');
  });

  it('touching a file without changing its content makes no call', async () => {
    const before = server.calls(500).length;
    dir.file('devices/t1.yaml', deviceYaml('t1', { seed: 7 }));
    server.reload(true);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(server.calls(500).length, before);
  });

  it('a changed model → UpdateDeviceModel; a model default change also updates the devices it reaches', async () => {
    dir.file('devices/model.yaml', MODEL_YAML.replace('latencyMs: 0', 'latencyMs: 1').replace('type: FLOAT\n      accessMode: ReadOnly', 'type: FLOAT\n      accessMode: ReadOnly\n      unit: degC'));
    await eventually(() => calls('UpdateDeviceModel', 'default/thermo') === 1, 10_000, 'UpdateDeviceModel');
    await eventually(() => mapper!.device('default/t1')?.spec.protocol['latencyMs'] === 1, 10_000, 'latencyMs 1 merged into t1');
    assert.equal(mapper!.device('default/t1')!.model.properties.find((p) => p.name === 'temperature')!.unit, 'degC');
    await eventually(() => calls('UpdateDevice', 'default/t1') === 2, 5000, 'the second UpdateDevice answer');
  });

  it('a device moved to another file is not re-sent; a second device in a multi-document file is registered', async () => {
    rmSync(dir.join('devices', 't1.yaml'));
    dir.file('devices/two.yaml', `${deviceYaml('t1', { seed: 7 })}---\n${deviceYaml('t2', { seed: 3 })}`);
    await eventually(() => mapper!.device('default/t2'), 10_000, 't2 on the mapper');
    assert.equal(calls('RemoveDevice', 'default/t1'), 0);
    assert.equal(calls('UpdateDevice', 'default/t1'), 2);
    assert.ok(server.deviceView('t1')!.source.endsWith('two.yaml:1'));
  });

  it('a deleted device → RemoveDevice; the mapper stops it', async () => {
    dir.file('devices/two.yaml', deviceYaml('t1', { seed: 7 }));
    await eventually(() => !mapper!.device('default/t2'), 10_000, 't2 removed from the mapper');
    await eventually(() => calls('RemoveDevice', 'default/t2') === 1, 5000, 'the RemoveDevice answer');
    assert.equal(server.deviceView('t2'), undefined);
  });

  it('set-desired → UpdateDevice carrying the desired value; the mapper writes it and reports it back', async () => {
    const v = server.setDesired('t1', 'setpoint', '23.5');
    assert.equal(v.twins.find((t) => t.property === 'setpoint')!.desired, '23.5');
    assert.equal(v.twins.find((t) => t.property === 'setpoint')!.desiredOverride, true);
    await eventually(() => mapper!.device('default/t1')?.observedDesired.get('setpoint') === '23.5', 10_000, 'the mapper to write 23.5');
    await eventually(() => {
      const t = server.deviceView('t1')!.twins.find((x) => x.property === 'setpoint')!;
      return t.reported === '23.5' && t.observedDesired === '23.5';
    }, 10_000, 'reported and observedDesired 23.5');
    assert.throws(() => server.setDesired('t1', 'temperature', '1'), /ReadOnly/);
    assert.throws(() => server.setDesired('t1', 'setpoint', 'warm'), /"warm" is not a valid FLOAT/);
    assert.throws(() => server.setDesired('t1', 'nope', '1'), /has no property "nope"/);
    assert.throws(() => server.setDesired('t9', 'setpoint', '1'), /device default\/t9 not found/);
  });

  it('a mapper that is down: calls are kept (pending, retried), and delivered when it registers again', async () => {
    await mapper!.stop();
    mapper = undefined;
    dir.file('devices/t3.yaml', deviceYaml('t3', { seed: 4 }));
    rmSync(dir.join('devices', 'two.yaml')); // t1 deleted while the mapper is down
    await eventually(() => server.deviceView('t3')?.delivery.status === 'pending', 10_000, 't3 pending');
    // Generous waits: retries come every ≤ 500 ms here, but a loaded CI machine can stretch one attempt.
    await eventually(() => server.calls(500).some((c) => c.target === 'default/t3' && !c.ok && c.code === 14), 30_000, 'a failed (UNAVAILABLE) attempt');
    // Retries come from the channel's own backoff timer, not from inventory reloads: the two file
    // changes above make at most two reloads, so three more attempts need the timer.
    const failed = (): number => server.calls(500).filter((c) => c.target === 'default/t3' && !c.ok).length;
    const failedBefore = failed();
    await eventually(() => failed() >= failedBefore + 3, 30_000, 'three retries with no inventory change');
    await eventually(() => server.mappers().find((m) => m.name === 'virtual-mapper')!.sync!.nextRetryAt !== undefined, 10_000, 'a planned retry in the view');
    const sync = server.mappers().find((m) => m.name === 'virtual-mapper')!.sync!;
    assert.equal(sync.status, 'retrying');
    assert.ok(sync.pending >= 1);
    assert.ok(sync.lastError);

    mapper = await startVirtualMapper(dir, server.socketPath);
    await mapper.whenRegistered();
    assert.ok(mapper.device('default/t3'), 't3 came with the MapperRegister response');
    assert.equal(mapper.device('default/t1'), undefined, 't1 was deleted meanwhile');
    await eventually(() => server.deviceView('t3')!.delivery.status === 'delivered', 10_000, 't3 delivered');
    await eventually(() => server.mappers().find((m) => m.name === 'virtual-mapper')!.sync!.status === 'in-sync', 10_000, 'in sync');
    assert.equal(server.mappers().find((m) => m.name === 'virtual-mapper')!.registrations, 2);
  });

  it('a device whose protocol has no mapper waits as no-mapper and is listed for the mapper that registers it', async () => {
    dir.file('devices/t4.yaml', deviceYaml('t4', { protocol: 'modbus' }));
    await eventually(() => server.deviceView('t4')?.delivery.status === 'no-mapper', 10_000, 't4 waiting for a modbus mapper');
    assert.ok(mapper, 'the virtual mapper of the previous test is running');
    assert.equal(mapper.device('default/t4'), undefined, 'never sent to the virtual mapper');
  });
});
