// SPDX-License-Identifier: Apache-2.0
// The real no-adapter path, as shipped: the `mapper-ble` bin with noble's default (HCI socket)
// bindings on a machine without Bluetooth. Nothing is injected. The mapper must load, register,
// report every BLE device offline with one clear log line, keep serving DMI, and stop cleanly.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { TestEdgecore } from '@mapperkit/framework/testing';

const pkg = fileURLToPath(new URL('..', import.meta.url));
const bin = join(pkg, 'bin', 'mapper-ble.js');
const SAMPLE = readFileSync(join(pkg, 'devices', 'devices.yaml'), 'utf8');

interface LogLine {
  level: string;
  msg: string;
  device?: string;
  err?: string;
  [k: string]: unknown;
}

// This is about machines without Bluetooth (every build machine here); where an adapter exists the
// path under test does not exist.
const adapters = existsSync('/sys/class/bluetooth') ? readdirSync('/sys/class/bluetooth').filter((n) => n.startsWith('hci')) : [];

describe('mapper-ble bin on a machine without a Bluetooth adapter', { skip: adapters.length > 0 ? `this machine has Bluetooth adapters (${adapters.join(', ')})` : false }, () => {
  let dir: string;
  let ec: TestEdgecore;
  let child: ChildProcess;
  let stdout = '';
  let stderr = '';
  let exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  const lines = (): LogLine[] =>
    stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogLine);

  before(async () => {
    assert.ok(existsSync(join(pkg, 'dist', 'main.js')), 'build the package first: npx tsc -b packages/mappers/ble');
    dir = mkdtempSync(join(tmpdir(), 'mk-ble-bin-'));
    const { devices, models } = TestEdgecore.fromCrdYaml(SAMPLE);
    ec = await TestEdgecore.start({ socketPath: join(dir, 'dmi.sock'), devices, models, limiter: false });
    const config = join(dir, 'config.yaml');
    writeFileSync(
      config,
      [
        'grpc_server:',
        `  socket_path: ${join(dir, 'bluetooth.sock')}`,
        'common:',
        '  name: ble-mapper',
        '  protocol: bluetooth',
        `  edgecore_sock: ${join(dir, 'dmi.sock')}`,
        '  http_port: 0',
        'runtime:',
        '  backoff_initial_ms: 100',
        '  backoff_max_ms: 300',
        '',
      ].join('\n'),
    );
    child = spawn(process.execPath, [bin, '--config-file', config, '--v', '1'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    exit = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  });

  after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await ec.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads, registers and reports every BLE device offline', async () => {
    await ec.waitFor(() => ec.stateOf('default/env-sensor-1') === 'offline' && ec.stateOf('default/xiaomi-th-1') === 'offline', 15_000, 'both devices offline').catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\nstdout:\n${stdout}\nstderr:\n${stderr}`);
    });
    assert.equal(ec.registrations.at(-1)?.request.mapper?.protocol, 'bluetooth');
    assert.equal(child.exitCode, null, 'the mapper is still running');
  });

  it('says why in one clear log line, not one per retry', async () => {
    // Let a few reconnect attempts (100-300 ms backoff) happen.
    await new Promise((r) => setTimeout(r, 1200));
    const unavailable = lines().filter((l) => l.msg.startsWith('Bluetooth unavailable'));
    assert.equal(unavailable.length, 1, stdout);
    assert.equal(unavailable[0]!.level, 'error');
    assert.match(unavailable[0]!.msg, /no HCI adapter could be opened, so every BLE device stays offline; the mapper keeps running and retries with backoff/);
    assert.match(unavailable[0]!.err ?? '', /EAFNOSUPPORT/);
    const connectFailures = lines().filter((l) => l.msg === 'connect failed' && l.device === 'default/env-sensor-1');
    assert.ok(connectFailures.length >= 2, 'connect is retried');
    assert.match(String(connectFailures[0]!.err), /Bluetooth unavailable on this machine \(EAFNOSUPPORT/);
    assert.doesNotMatch(stderr, /Error|at /, 'no stack trace');
  });

  it('keeps serving DMI: GetDevice answers and a new device is accepted (and offline too)', async () => {
    const got = await ec.getDevice('default', 'env-sensor-1');
    assert.equal(got.device?.name, 'env-sensor-1');
    const { devices } = TestEdgecore.fromCrdYaml(SAMPLE.replace('name: env-sensor-1', 'name: env-sensor-2'));
    const added = devices.find((d) => d.name === 'env-sensor-2');
    assert.ok(added);
    await ec.registerDevice(added);
    await ec.waitFor(() => ec.stateOf('default/env-sensor-2') === 'offline', 10_000, 'the new device offline');
  });

  it('stops cleanly on SIGTERM (exit 0)', async () => {
    child.kill('SIGTERM');
    const r = await exit;
    assert.deepEqual(r, { code: 0, signal: null }, stderr);
  });
});
