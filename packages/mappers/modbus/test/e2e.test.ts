// SPDX-License-Identifier: Apache-2.0
// End to end, three processes: the simulator CLI (modbus-serial ServerTCP), the mapper-modbus
// bin (built dist, as deployed), and this test playing edgecore (TestEdgecore on a unix
// socket). The example YAML in devices/ is used as shipped, only the port is changed:
// twins are reported, desired values land in the holding register (checked with mbpoll, an
// independent client), an UpdateDevice with a new desired value is written, the upstream-format
// Device works unchanged, and SIGTERM stops the mapper cleanly.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Device } from '@mapperkit/framework/dmi';
import { TestEdgecore } from '@mapperkit/framework/testing';
import { freePort, mbpollRead, PKG_DIR, SimulatorProcess, tempDir, until } from './helpers.ts';

const REPO = join(PKG_DIR, '..', '..', '..');

function loadExample(file: string, port: number): { devices: Device[]; models: ReturnType<typeof TestEdgecore.fromCrdYaml>['models'] } {
  const text = readFileSync(join(PKG_DIR, 'devices', file), 'utf8').replace(/port: "?5020"?/g, (m) => m.replace('5020', String(port)));
  assert.ok(text.includes(String(port)), `${file} names the simulator port`);
  return TestEdgecore.fromCrdYaml(text);
}

describe('e2e: simulator process + mapper-modbus bin + test edgecore', () => {
  let tmp: ReturnType<typeof tempDir>;
  let sim: SimulatorProcess;
  let ec: TestEdgecore;
  let mapper: ChildProcess;
  let mapperLog = '';
  let thermostat: Device;
  const T = 'default/thermostat-1';
  const U = 'default/temperature-instance';

  before(async () => {
    // The bin runs the built package; make sure dist is current.
    const build = spawnSync(process.execPath, [join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-b', PKG_DIR], { cwd: REPO, encoding: 'utf8' });
    assert.equal(build.status, 0, `tsc -b failed: ${build.stdout}${build.stderr}`);
    tmp = tempDir();
    sim = await SimulatorProcess.start(['--port', String(await freePort()), '--period-ms', '200', '--temperature', '20', '--setpoint', '21']);
    const a = loadExample('thermostat.yaml', sim.port);
    const b = loadExample('upstream-temperature.yaml', sim.port);
    thermostat = a.devices[0]!;
    ec = await TestEdgecore.start({ socketPath: join(tmp.dir, 'dmi.sock'), devices: [...a.devices, ...b.devices], models: [...a.models, ...b.models] });
    const cfg = join(tmp.dir, 'config.yaml');
    writeFileSync(
      cfg,
      readFileSync(join(PKG_DIR, 'config.yaml'), 'utf8')
        .replace('/etc/kubeedge/modbus.sock', join(tmp.dir, 'modbus.sock'))
        .replace('/etc/kubeedge/dmi.sock', join(tmp.dir, 'dmi.sock')),
    );
    mapper = spawn(process.execPath, [join(PKG_DIR, 'bin', 'mapper-modbus.js'), '--config-file', cfg, '--v', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    mapper.stdout!.on('data', (d: Buffer) => (mapperLog = (mapperLog + d.toString()).slice(-20_000)));
    mapper.stderr!.on('data', (d: Buffer) => (mapperLog = (mapperLog + d.toString()).slice(-20_000)));
    await ec.waitFor(() => ec.registrations.length > 0, 15_000, 'MapperRegister from the bin');
  });

  after(async () => {
    if (mapper && mapper.exitCode === null) {
      mapper.kill('SIGKILL');
      await new Promise((r) => mapper.once('exit', r));
    }
    await ec?.close();
    await sim?.stop();
    tmp?.cleanup();
  });

  it('registers as the modbus mapper', () => {
    const reg = ec.registrations[0]!.request;
    assert.equal(reg.withData, true);
    assert.equal(reg.mapper?.protocol, 'modbus');
    assert.equal(reg.mapper?.name, 'modbus-mapper');
  });

  it('reports every twin of the example device', async () => {
    const twins = () => ec.twinsOf(T);
    await ec.waitFor(() => ['temperature', 'setpoint', 'heating', 'heater-on', 'alarm', 'temperature-precise', 'humidity', 'uptime', 'model-name'].every((p) => twins().has(p)), 10_000, `all twins (log: ${mapperLog.slice(-2000)})`);
    const t = twins();
    assert.ok(Math.abs(Number(t.get('temperature')!.reported) - 20) < 5, `temperature ${t.get('temperature')!.reported}`);
    assert.equal(t.get('model-name')!.reported, 'MKSIM-01');
    assert.equal(t.get('heating')!.reported, 'true');
    assert.match(t.get('uptime')!.reported, /^\d+$/);
    assert.ok(Math.abs(Number(t.get('temperature-precise')!.reported) - Number(t.get('temperature')!.reported)) < 0.5, 'float32 copy agrees with the ×10 register');
    assert.equal(ec.stateOf(T), 'ok');
  });

  it('writes the desired setpoint into holding register 1', async () => {
    await ec.waitFor(() => ec.twinsOf(T).get('setpoint')?.observedDesired === '21.5' && ec.twinsOf(T).get('setpoint')?.reported === '21.5', 10_000, 'setpoint twin 21.5');
    assert.deepEqual(mbpollRead(sim.port, 1, 1), [215], 'mbpoll reads 215 (21.5 × 10) from the simulator');
  });

  it('the temperature changes over time and is reported', async () => {
    const seen = new Set<string>();
    // Two devices share edgecore's 1 report/s once the burst is spent, and near the setpoint the
    // temperature moves between few tenths: three distinct values took over 10 s once (full run).
    await until(() => {
      const v = ec.twinsOf(T).get('temperature')?.reported;
      if (v) seen.add(v);
      return seen.size >= 3;
    }, 30_000, 'three different temperatures');
  });

  it('writes a new desired value from UpdateDevice', async () => {
    const updated: Device = {
      ...thermostat,
      spec: {
        ...thermostat.spec!,
        properties: thermostat.spec!.properties.map((p) => (p.name === 'setpoint' ? { ...p, desired: { value: '23', metadata: {} } } : p)),
      },
    };
    await ec.updateDevice(updated);
    await ec.waitFor(() => ec.twinsOf(T).get('setpoint')?.observedDesired === '23' && ec.twinsOf(T).get('setpoint')?.reported === '23', 10_000, 'setpoint 23');
    assert.deepEqual(mbpollRead(sim.port, 1, 1), [230]);
  });

  it('runs the upstream-format Device unchanged', async () => {
    await ec.waitFor(() => ec.twinsOf(U).has('temperature') && ec.twinsOf(U).get('temperature-switch')?.reported === '1', 10_000, 'upstream device twins');
    assert.equal(ec.twinsOf(U).get('temperature-switch')!.observedDesired, '1');
    const up = Number(ec.twinsOf(U).get('temperature')!.reported);
    assert.ok(Math.abs(up - Number(ec.twinsOf(T).get('temperature')!.reported)) < 2, 'both devices read the same temperature register');
    assert.equal(ec.stateOf(U), 'ok');
  });

  it('stops on SIGTERM with exit code 0', async () => {
    const exited = new Promise<number | null>((r) => mapper.once('exit', (code) => r(code)));
    mapper.kill('SIGTERM');
    assert.equal(await exited, 0);
  });
});
