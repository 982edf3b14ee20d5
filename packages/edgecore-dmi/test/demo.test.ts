// SPDX-License-Identifier: Apache-2.0
// `npm run demo` (scripts/demo.ts) must keep working on a fresh clone: edgecore-dmi + a Modbus
// simulator process + the Modbus mapper. Run it for a few seconds and check it cleans up.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

it('the demo runs a local edge with live Modbus values and stops without leftovers', () => {
  const before = new Set(readdirSync(tmpdir()).filter((n) => n.startsWith('mapperkit-demo-')));
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'scripts', 'demo.ts')], { cwd: root, env: { ...process.env, DEMO_SECONDS: '12' }, encoding: 'utf8', timeout: 90_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /dashboard\s+http:\/\/127\.0\.0\.1:\d+\//);
  assert.match(r.stdout, /default\/thermostat-1\s+ok\s+temperature=\d+(\.\d+)?\s+setpoint=21\.5 \(desired 21\.5\)/, r.stdout);
  assert.match(r.stdout, /demo stopped; no processes or sockets left behind/);
  for (const m of r.stdout.matchAll(/\(pid (\d+)\)|mapper-modbus\s+pid (\d+)/g)) {
    const pid = m[1] ?? m[2];
    assert.equal(existsSync(`/proc/${pid}`), false, `process ${pid} is gone`);
  }
  const after = readdirSync(tmpdir()).filter((n) => n.startsWith('mapperkit-demo-') && !before.has(n));
  assert.deepEqual(after, [], 'temp dir with sockets removed');
});

it('Ctrl-C (SIGINT to the whole foreground process group, as a terminal sends it) stops everything without leftovers', async () => {
  const before = new Set(readdirSync(tmpdir()).filter((n) => n.startsWith('mapperkit-demo-')));
  // detached: the demo leads its own process group, like a shell job; its children are in it.
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'scripts', 'demo.ts')], { cwd: root, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const deadline = Date.now() + 60_000;
  while (!/default\/thermostat-1\s+ok\s+temperature=/.test(out) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 200));
  assert.match(out, /default\/thermostat-1\s+ok\s+temperature=/, `no live value before Ctrl-C:\n${out}\n${err}`);
  const pids = [...out.matchAll(/\(pid (\d+)\)|mapper-modbus\s+pid (\d+)/g)].map((m) => Number(m[1] ?? m[2]));
  assert.equal(pids.length, 2, out);
  process.kill(-child.pid!, 'SIGINT');
  const timeout = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 30_000);
  const { code, signal } = await exited;
  clearTimeout(timeout);
  assert.deepEqual({ code, signal }, { code: 0, signal: null }, err);
  assert.match(out, /demo stopped; no processes or sockets left behind/);
  assert.doesNotMatch(err, /exited unexpectedly/);
  for (const pid of pids) assert.equal(existsSync(`/proc/${pid}`), false, `process ${pid} is gone`);
  const after = readdirSync(tmpdir()).filter((n) => n.startsWith('mapperkit-demo-') && !before.has(n));
  assert.deepEqual(after, [], 'temp dir with sockets removed');
});
