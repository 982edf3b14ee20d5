// SPDX-License-Identifier: Apache-2.0
// `npm run demo`: a local edge on this machine — an edgecore stand-in serving DMI on a unix
// socket, the example devices from YAML, and a mapper process — with live twin values.
// Ctrl-C stops everything. DEMO_SECONDS=N stops after N seconds (used by the demo's test).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestEdgecore } from '@mapperkit/framework/testing';

const root = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'mapperkit-demo-'));
const yamlFile = join(root, 'examples', 'virtual-mapper', 'resources', 'devices.yaml');
const inventory = TestEdgecore.fromCrdYaml(readFileSync(yamlFile, 'utf8'));
const edge = await TestEdgecore.start({ socketPath: join(dir, 'dmi.sock'), ...inventory });
writeFileSync(
  join(dir, 'config.yaml'),
  `grpc_server:\n  socket_path: ${join(dir, 'virtual.sock')}\ncommon:\n  name: virtual-mapper\n  protocol: virtual\n  edgecore_sock: ${join(dir, 'dmi.sock')}\n`,
);
const mapper = spawn(join(root, 'node_modules', '.bin', 'mapper-virtual'), ['--config-file', join(dir, 'config.yaml'), '--v', '0'], { stdio: ['ignore', 'ignore', 'inherit'] });

console.log(`Mapperkit demo — edgecore DMI socket ${join(dir, 'dmi.sock')}, mapper mapper-virtual (pid ${mapper.pid})`);
console.log(`devices from ${yamlFile}; Ctrl-C to stop\n`);

const tty = process.stdout.isTTY;
let lines = 0;
const render = (): void => {
  const rows: string[] = [];
  for (const d of inventory.devices) {
    const id = `${d.namespace || 'default'}/${d.name}`;
    const twins = edge.twinsOf(id);
    const cells = [...twins].map(([p, t]) => `${p}=${t.reported}${t.observedDesired ? ` (desired ${t.observedDesired})` : ''}`);
    rows.push(`${id.padEnd(22)} ${(edge.stateOf(id) ?? '…').padEnd(9)} ${cells.join('  ') || 'waiting for first report'}`);
  }
  rows.push(`reports received: ${edge.statusReports.length} twin, ${edge.stateReports.length} state; throttled by the edgecore limiter: ${edge.rateLimited}`);
  if (tty && lines > 0) process.stdout.write(`\x1b[${lines}A\x1b[0J`);
  process.stdout.write(`${rows.join('\n')}\n`);
  lines = rows.length;
};
const timer = setInterval(render, 1000);

let stopping = false;
async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearInterval(timer);
  render();
  const exited = new Promise((r) => mapper.once('exit', r));
  mapper.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  await edge.close();
  rmSync(dir, { recursive: true, force: true });
  console.log('\ndemo stopped; no processes or sockets left behind');
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
mapper.on('exit', (code) => {
  if (!stopping) {
    console.error(`mapper exited unexpectedly (code ${code})`);
    void stop(1);
  }
});
const seconds = Number(process.env['DEMO_SECONDS'] ?? 0);
if (seconds > 0) setTimeout(() => void stop(0), seconds * 1000);
