// SPDX-License-Identifier: Apache-2.0
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
