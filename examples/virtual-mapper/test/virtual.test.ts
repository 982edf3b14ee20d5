// SPDX-License-Identifier: Apache-2.0
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { describeDriverConformance, TestEdgecore } from '@mapperkit/framework/testing';
import { virtualDriver } from '@mapperkit/example-virtual-mapper';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const BIN = join(root, '..', '..', 'node_modules', '.bin', 'mapper-virtual');

describeDriverConformance('virtual', {
  driver: virtualDriver,
  setup: async () => ({ protocolConfig: { seed: 7 } }),
  properties: [
    { name: 'temperature', type: 'float', visitor: { kind: 'randomWalk', min: 10, max: 20 }, expect: (v) => typeof v === 'number' && v >= 10 && v <= 20 },
    { name: 'count', type: 'int', visitor: { kind: 'counter', min: 0, max: 10, initial: 3 }, expect: (v) => Number.isInteger(v) },
    { name: 'on', type: 'boolean', visitor: { kind: 'toggle' }, expect: (v) => typeof v === 'boolean' },
    { name: 'setpoint', type: 'float', visitor: { kind: 'constant', initial: 20 }, write: 22.5 },
  ],
  invalidProtocolConfig: { seed: 'abc' },
  invalidVisitor: { kind: 'sawtooth' },
  unreachableProtocolConfig: { failConnect: true },
});

function config(dir: string): string {
  return `grpc_server:\n  socket_path: ${dir}/virtual.sock\ncommon:\n  name: virtual-mapper\n  protocol: virtual\n  edgecore_sock: ${dir}/dmi.sock\n`;
}

describe('mapper-virtual (the bin, as a process)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mkv-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs with --config-file, reports the example devices, and shuts down cleanly on SIGTERM', async () => {
    assert.ok(existsSync(BIN), 'bin mapper-virtual is linked into node_modules/.bin by the workspace');
    const inv = TestEdgecore.fromCrdYaml(readFileSync(join(root, 'resources', 'devices.yaml'), 'utf8'));
    const ec = await TestEdgecore.start({ socketPath: join(dir, 'dmi.sock'), ...inv, limiter: false });
    writeFileSync(join(dir, 'config.yaml'), config(dir));
    const child = spawn(BIN, ['--config-file', join(dir, 'config.yaml'), '--v', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await ec.waitFor(() => ec.twinsOf('default/thermostat-1').size === 4 && ec.twinsOf('default/thermostat-2').size === 2, 10_000, 'twins of both thermostats');
      await ec.waitFor(() => ec.twinsOf('default/thermostat-1').get('setpoint')?.observedDesired === '21.5', 5000, 'desired setpoint applied');
      assert.equal(ec.stateOf('default/thermostat-1'), 'ok');
      const sock = statSync(join(dir, 'virtual.sock'));
      assert.ok(sock.isSocket());
      assert.equal(sock.mode & 0o777, 0o660, 'socket mode 0660');
      const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 0, 'clean exit code on SIGTERM');
      assert.equal(existsSync(join(dir, 'virtual.sock')), false, 'socket removed on shutdown');
      const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { level: string; msg: string });
      assert.ok(lines.some((l) => l.msg === 'shutting down'));
      assert.ok(lines.some((l) => l.level === 'debug'), '--v 2 enables debug logs');
    } finally {
      child.kill('SIGKILL');
      await ec.close();
    }
  });

  it('exits 2 with one line naming the key for a bad config.yaml', () => {
    writeFileSync(join(dir, 'bad.yaml'), 'grpc_server:\n  socket_path: /tmp/x.sock\ncommon:\n  name: v\n');
    const r = spawnSync(BIN, ['--config-file', join(dir, 'bad.yaml')], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /common\.protocol: required/);
  });

  it('exits 2 when common.protocol does not match the driver', () => {
    writeFileSync(join(dir, 'wrong.yaml'), config(dir).replace('protocol: virtual', 'protocol: modbus'));
    const r = spawnSync(BIN, ['--config-file', join(dir, 'wrong.yaml')], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /common\.protocol "modbus" does not match the driver's protocol "virtual"/);
  });

  it('refuses to delete a non-socket file at grpc_server.socket_path', () => {
    writeFileSync(join(dir, 'virtual.sock'), 'precious');
    writeFileSync(join(dir, 'config.yaml'), config(dir));
    const r = spawnSync(BIN, ['--config-file', join(dir, 'config.yaml')], { encoding: 'utf8', timeout: 10_000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /exists and is not a socket; refusing to delete it/);
    assert.equal(readFileSync(join(dir, 'virtual.sock'), 'utf8'), 'precious');
    rmSync(join(dir, 'virtual.sock'));
  });
});

describe('mapper-virtual doctor / schema / --help', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mkvd-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('doctor passes the example config and devices (socket check skipped)', () => {
    writeFileSync(join(dir, 'config.yaml'), config(dir));
    const r = spawnSync(BIN, ['doctor', '--config-file', join(dir, 'config.yaml'), '--devices', join(root, 'resources'), '--skip-socket'], { encoding: 'utf8', cwd: dir });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /0 error\(s\), 0 warning\(s\) — checked .*config\.yaml, 1 YAML file\(s\) \(1 model\(s\), 2 device\(s\)\), edgecore socket: skipped/);
  });

  it('doctor reports every problem with file, line, path and a fix, and exits 1', () => {
    const bad = readFileSync(join(root, 'resources', 'devices.yaml'), 'utf8')
      .replace('kind: randomWalk', 'kind: sawtooth')
      .replace('value: "21.5"', 'value: "45"')
      .replace('seed: 2', 'seed: { nested: 1 }');
    mkdirSync(join(dir, 'bad'), { recursive: true });
    writeFileSync(join(dir, 'bad', 'devices.yaml'), bad);
    const r = spawnSync(BIN, ['doctor', '--config-file', join(dir, 'config.yaml'), '--devices', join(dir, 'bad'), '--json'], { encoding: 'utf8', cwd: dir });
    assert.equal(r.status, 1, r.stderr);
    const report = JSON.parse(r.stdout) as { problems: { severity: string; file: string; path: string; message: string; line?: number; hint?: string }[]; checked: { socket: string } };
    const find = (re: RegExp) => report.problems.find((p) => re.test(`${p.path} ${p.message}`));
    const visitor = find(/properties\[0\]\.visitors\.configData\.kind/);
    assert.ok(visitor?.line && visitor.hint, 'bad visitor value named with its line and a hint');
    assert.ok(find(/desired\.value.*above the maximum 30/), 'desired value outside the model range');
    assert.ok(find(/thermostat-2.*an object cannot be sent/), 'nested configData');
    assert.equal(report.checked.socket, 'unreachable', 'edgecore socket checked');
  });

  it('schema writes JSON Schemas of config.yaml and the driver’s configData', () => {
    const r = spawnSync(BIN, ['schema', '--out', join(dir, 'schema')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const visitor = JSON.parse(readFileSync(join(dir, 'schema', 'visitor-config.schema.json'), 'utf8')) as { properties: Record<string, { enum?: string[] }> };
    assert.deepEqual(visitor.properties['kind']?.enum, ['randomWalk', 'counter', 'sine', 'toggle', 'constant']);
    assert.ok(existsSync(join(dir, 'schema', 'config.schema.json')));
    assert.ok(existsSync(join(dir, 'schema', 'devices.schema.json')));
  });

  it('--help prints usage; unknown flags exit 2 with the usage', () => {
    const h = spawnSync(BIN, ['--help'], { encoding: 'utf8' });
    assert.equal(h.status, 0);
    assert.match(h.stdout, /mapper-virtual doctor \[--config-file FILE\]/);
    const bad = spawnSync(BIN, ['--config', 'x.yaml'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /Unknown option '--config'/);
    const misplaced = spawnSync(BIN, ['--devices', 'x'], { encoding: 'utf8' });
    assert.equal(misplaced.status, 2);
    assert.match(misplaced.stderr, /--devices is only valid with: doctor/);
  });
});

describe('liveness when edgecore’s socket refuses access', () => {
  it('/healthz turns 503 naming the socket after MapperRegister keeps failing with EACCES; /readyz is 503 throughout', async () => {
    if (process.getuid?.() !== 0) return; // needs root to run the mapper as another user (CI runs as root)
    const dir = mkdtempSync(join(tmpdir(), 'mkva-'));
    const edgeDir = join(dir, 'edge');
    mkdirSync(edgeDir, { mode: 0o700 }); // edgecore's directory: the mapper's user cannot enter it
    const ec = await TestEdgecore.start({ socketPath: join(edgeDir, 'dmi.sock'), limiter: false });
    const { chmodSync } = await import('node:fs');
    chmodSync(dir, 0o777);
    const port = 20000 + Math.floor(Math.random() * 20000);
    writeFileSync(
      join(dir, 'config.yaml'),
      `grpc_server:\n  socket_path: ${dir}/virtual.sock\ncommon:\n  name: v\n  protocol: virtual\n  edgecore_sock: ${edgeDir}/dmi.sock\n  http_port: ${port}\nruntime:\n  unhealthy_after_ms: 1500\ndata_plane:\n  buffer_dir: ${dir}/buffer\n`,
    );
    const child = spawn('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, join(root, 'bin', 'mapper-virtual.js'), '--config-file', join(dir, 'config.yaml')], { stdio: 'ignore' });
    try {
      const get = async (path: string): Promise<{ status: number; body: string }> => {
        for (let i = 0; i < 50; i++) {
          try {
            const r = await fetch(`http://127.0.0.1:${port}${path}`);
            return { status: r.status, body: await r.text() };
          } catch {
            await new Promise((r) => setTimeout(r, 100));
          }
        }
        throw new Error(`no REST server on ${port}`);
      };
      assert.equal((await get('/healthz')).status, 200, 'healthy at first');
      assert.equal((await get('/readyz')).status, 503, 'not ready: not registered');
      await new Promise((r) => setTimeout(r, 2500));
      const h = await get('/healthz');
      assert.equal(h.status, 503);
      assert.match(h.body, /refused access to edgecore's socket .*dmi\.sock/);
    } finally {
      child.kill('SIGKILL');
      await ec.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
