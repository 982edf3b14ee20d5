// SPDX-License-Identifier: Apache-2.0
// `npm run demo`: a local edge on this machine —
//   edgecore-dmi (the edgecore stand-in: DMI server on a unix socket, Device/DeviceModel YAML, dashboard),
//   a simulated Modbus TCP thermostat in its own process (modbus-sim),
//   the Modbus mapper (mapper-modbus), registering with edgecore-dmi and polling the simulator —
// with live twin values in the terminal and on the dashboard. Ctrl-C stops everything and leaves
// no process, socket or temp file behind. DEMO_SECONDS=N stops after N seconds (used by the
// demo's test); DEMO_HTTP=127.0.0.1:PORT pins the dashboard address.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEdgecoreDmi } from '@mapperkit/edgecore-dmi';

const root = new URL('..', import.meta.url).pathname;
const modbus = join(root, 'packages', 'mappers', 'modbus');
const dir = mkdtempSync(join(tmpdir(), 'mapperkit-demo-'));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

// 1. The simulated device, in its own process.
const simPort = await freePort();
const children: ChildProcess[] = [];
const sim = spawn(process.execPath, [join(modbus, 'bin', 'modbus-sim.js'), '--port', String(simPort)], { stdio: ['ignore', 'pipe', 'inherit'] });
children.push(sim);
await new Promise<void>((resolve, reject) => {
  sim.stdout!.on('data', (d: Buffer) => {
    if (d.toString().includes('"ready":true')) resolve();
  });
  sim.once('exit', (code) => reject(new Error(`modbus-sim exited (${code})`)));
});

// 2. edgecore-dmi with the example Device/DeviceModel, pointed at the simulator's port.
const yaml = readFileSync(join(modbus, 'devices', 'thermostat.yaml'), 'utf8').replace(/port: 5020/g, `port: ${simPort}`);
writeFileSync(join(dir, 'devices.yaml'), yaml);
const edge = await startEdgecoreDmi({
  socketPath: join(dir, 'dmi.sock'),
  devices: [join(dir, 'devices.yaml')],
  http: process.env['DEMO_HTTP'] ?? '127.0.0.1:0',
  dbPath: join(dir, 'store.db'),
  logLevel: 'warn',
});

// 3. The Modbus mapper, exactly as it runs on an edge node (its own config.yaml, its own socket).
writeFileSync(
  join(dir, 'config.yaml'),
  `grpc_server:\n  socket_path: ${join(dir, 'modbus.sock')}\ncommon:\n  name: modbus-mapper\n  protocol: modbus\n  edgecore_sock: ${join(dir, 'dmi.sock')}\n  http_port: 0\ndata_plane:\n  buffer_dir: ${join(dir, 'buffer')}\n`,
);
const mapper = spawn(process.execPath, [join(modbus, 'bin', 'mapper-modbus.js'), '--config-file', join(dir, 'config.yaml'), '--v', '0'], { stdio: ['ignore', 'ignore', 'inherit'] });
children.push(mapper);

console.log('Mapperkit demo: a local edge with one simulated Modbus thermostat');
console.log(`  dashboard      ${edge.url}/`);
console.log(`  edgecore-dmi   DMI socket ${edge.socketPath}`);
console.log(`  modbus-sim     127.0.0.1:${simPort} (pid ${sim.pid})`);
console.log(`  mapper-modbus  pid ${mapper.pid}`);
console.log(`try: npx edgecore-dmi --server ${edge.url} set-desired thermostat-1 setpoint 24      Ctrl-C to stop\n`);

const tty = process.stdout.isTTY;
let lines = 0;
const render = (): void => {
  const rows: string[] = [];
  for (const d of edge.devices()) {
    const cells = d.twins
      .filter((t) => t.reported !== undefined)
      .map((t) => `${t.property}=${t.reported}${t.observedDesired ? ` (desired ${t.observedDesired})` : ''}`);
    rows.push(`${d.id.padEnd(22)} ${(d.state ?? '…').padEnd(9)} ${cells.join('  ') || 'waiting for first report'}`);
  }
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
  await Promise.all(
    children.map((c) =>
      c.exitCode !== null || c.signalCode !== null
        ? undefined
        : new Promise((resolve) => {
            c.once('exit', resolve);
            c.kill('SIGTERM');
            setTimeout(() => c.kill('SIGKILL'), 5000).unref();
          }),
    ),
  );
  await edge.close();
  rmSync(dir, { recursive: true, force: true });
  console.log('\ndemo stopped; no processes or sockets left behind');
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
for (const c of children) {
  c.on('exit', (code) => {
    if (!stopping) {
      console.error(`a demo process exited unexpectedly (code ${code})`);
      void stop(1);
    }
  });
}
const seconds = Number(process.env['DEMO_SECONDS'] ?? 0);
if (seconds > 0) setTimeout(() => void stop(0), seconds * 1000);
