// End to end: the whole mapper (config.yaml, devices/*.yaml, the driver) against an in-process
// edgecore and the simulated device. It registers, writes the desired value and reports twins.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { createLogger, createMapper, type MapperHandle, parseMapperConfig } from '@mapperkit/framework';
import { TestEdgecore } from '@mapperkit/framework/testing';
import driver from '../src/driver.js';
import { type Simulator, startSimulator } from './simulator.js';

const DEVICE = 'default/{{protocol}}-device-1';
let dir: string;
let sim: Simulator;
let edgecore: TestEdgecore;
let mapper: MapperHandle;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), '{{mapperName}}-'));
  sim = await startSimulator();
  const crds = ['devices/device-model.yaml', 'devices/device-instance.yaml'].map((f) => readFileSync(f, 'utf8')).join('\n---\n');
  const local = crds.replace(/port: 5020\b/, `port: ${sim.port}`);
  assert.notEqual(local, crds, 'devices/device-instance.yaml: expected "port: 5020" to point at the simulator');
  edgecore = await TestEdgecore.start({ socketPath: join(dir, 'dmi.sock'), ...TestEdgecore.fromCrdYaml(local) });
  const { config } = parseMapperConfig(readFileSync('config.yaml', 'utf8'));
  config.grpc_server.socket_path = join(dir, 'mapper.sock');
  config.common.edgecore_sock = join(dir, 'dmi.sock');
  mapper = await createMapper({ driver, config, logger: createLogger({ level: 'silent' }) });
  await mapper.whenRegistered();
});

after(async () => {
  await mapper?.stop();
  await edgecore?.close();
  await sim?.close();
  rmSync(dir, { recursive: true, force: true });
});

it('registers with edgecore as the {{protocol}} mapper', () => {
  assert.equal(edgecore.mapper?.protocol, '{{protocol}}');
});

it('reports the device twins', async () => {
  await edgecore.waitFor(() => edgecore.twinsOf(DEVICE).get('temperature')?.reported === '21.5', 10_000, 'temperature twin');
});

it('writes the desired setpoint to the device', async () => {
  await edgecore.waitFor(() => sim.values.get('setpoint') === '22', 10_000, 'setpoint written');
});
