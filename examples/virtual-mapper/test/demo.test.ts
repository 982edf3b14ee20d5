// SPDX-License-Identifier: Apache-2.0
// `npm run demo` (scripts/demo.ts) must keep working on a fresh clone: run it for a few seconds.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

it('the demo starts a local edge, shows live values and stops cleanly', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'scripts', 'demo.ts')], { cwd: root, env: { ...process.env, DEMO_SECONDS: '10' }, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /default\/thermostat-1\s+ok\s+temperature=\d+(\.\d+)?\s+setpoint=21\.5 \(desired 21\.5\)/);
  assert.match(r.stdout, /demo stopped; no processes or sockets left behind/);
});
