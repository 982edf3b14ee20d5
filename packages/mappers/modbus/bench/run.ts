// SPDX-License-Identifier: Apache-2.0
// Modbus benchmark (npm run bench -w @mapperkit/mapper-modbus). Every party runs in its own
// process: the Modbus server (pymodbus 3.0, or this package's simulator = modbus-serial
// ServerTCP), the raw client loop, and the mapper (createMapper + the Modbus driver); this
// process plays edgecore (TestEdgecore) and collects the numbers.
//   (a) raw modbus-serial loop, one connection, 1 register per request: the limit
//   (a125) the same with 125 registers per request: the registers/s ceiling
//   (b) mapper, coalescing off (one request per property, upstream's behaviour): goal ≥ 0.9 × (a)
//   (c) mapper, coalescing on, contiguous map: goal ≥ 10 × (b)
//   (d) 500 simulated devices × 30 points at 1 s for 2 min: ≤ 25 % of a core, ≤ 200 MB RSS,
//       no missed cycle, tick lag p99 ≤ 100 ms, write latency p95 ≤ 50 ms
//   (e) 500 devices × 200 contiguous registers at 1 s: ≤ 1 core
// Writes bench/results/modbus.json at the repository root.
// Flags: --quick (short windows, 1 run: a smoke test, not for figures), --only a,b,c,d,d128,e,
// --seconds N (measurement window of (d) and (e))
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { TestEdgecore } from '@mapperkit/framework/testing';
import { fleet, type FleetOptions } from './fleet.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const PKG = join(HERE, '..');
const REPO = join(PKG, '..', '..', '..');
const RESULTS = join(REPO, 'bench', 'results', 'modbus.json');
const QUICK = process.argv.includes('--quick');
const onlyIdx = process.argv.findIndex((a) => a === '--only' || a.startsWith('--only='));
const onlyArg = onlyIdx < 0 ? '' : process.argv[onlyIdx]!.includes('=') ? process.argv[onlyIdx]!.split('=')[1]! : (process.argv[onlyIdx + 1] ?? '');
const ONLY = new Set(onlyArg.split(',').filter(Boolean));
const want = (s: string): boolean => ONLY.size === 0 || ONLY.has(s);
const secIdx = process.argv.indexOf('--seconds');
/** --seconds N: measurement window of (d)/(e) (default 120 / 60; quick 15). */
const FLEET_SECONDS = secIdx > 0 ? Number(process.argv[secIdx + 1]) : undefined;
const RUNS = QUICK ? 1 : 5;
const WINDOW_S = QUICK ? 3 : 10;
const TICK = 100; // getconf CLK_TCK on Linux
/** Extra node flags for the mapper process (e.g. BENCH_CHILD_NODE_ARGS="--cpu-prof" to profile it). */
const CHILD_NODE_ARGS = (process.env['BENCH_CHILD_NODE_ARGS'] ?? '').split(' ').filter(Boolean);

type Json = Record<string, unknown>;

function log(msg: string): void {
  process.stderr.write(`[bench modbus] ${msg}\n`);
}

function procTicks(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const parts = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return Number(parts[11]) + Number(parts[12]);
  } catch {
    return 0;
  }
}

function procRssMB(pid: number | undefined): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

function waitLine(proc: ChildProcess, match: (l: string) => boolean, what: string, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let err = '';
    proc.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-3000)));
    const rl = createInterface({ input: proc.stdout! });
    const t = setTimeout(() => reject(new Error(`${what}: no answer in ${timeoutMs} ms; stderr: ${err}`)), timeoutMs);
    proc.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`${what} exited ${code}; stderr: ${err}`));
    });
    rl.on('line', (l) => {
      if (match(l)) {
        clearTimeout(t);
        rl.close();
        resolve(l);
      }
    });
  });
}

async function stopProc(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const done = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 3000);
  await done;
  clearTimeout(t);
}

interface Server {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly port: number;
  /** Holding register where the 1000-register block starts. */
  readonly start: number;
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

async function startPymodbus(): Promise<Server> {
  const port = await freePort();
  const spec = { mode: 'tcp', port, slaves: { 1: { hr: { 0: Array.from({ length: 1000 }, (_, i) => i) } } } };
  const proc = spawn('/usr/bin/python3', [join(PKG, 'test', 'fixtures', 'pymodbus_server.py'), JSON.stringify(spec)], { stdio: ['pipe', 'pipe', 'pipe'] });
  await waitLine(proc, (l) => l.startsWith('{"ready": true'), 'pymodbus');
  return { name: 'pymodbus 3.0 (Debian, asyncio TCP server)', proc, port, start: 0 };
}

/** Simulators on `count` consecutive ports: tries a few random bases until one is free. */
async function startFleetSimulator(count: number, extra: string[]): Promise<Server> {
  let last: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    // Below the ephemeral range (32768+), where client sockets of other programs come and go.
    const base = 12000 + Math.floor(Math.random() * (32000 - 12000 - count));
    try {
      return await startSimulator(['--count', String(count), ...extra], base);
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

async function startSimulator(extra: string[] = [], port?: number): Promise<Server> {
  const p = port ?? (await freePort());
  // The built bin, as the demo runs it (npm run bench builds first).
  const proc = spawn(process.execPath, [join(PKG, 'bin', 'modbus-sim.js'), '--port', String(p), ...extra], { stdio: ['ignore', 'pipe', 'pipe'], cwd: PKG });
  await waitLine(proc, (l) => l.startsWith('{"ready"'), 'modbus-sim', 120_000);
  return { name: 'modbus-sim (modbus-serial 8 ServerTCP)', proc, port: p, start: 100 };
}

async function runJson(cmd: string, args: string[], what: string, timeoutMs: number): Promise<Json> {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: PKG });
  let line: string;
  try {
    line = await waitLine(proc, (l) => l.startsWith('{'), what, timeoutMs);
  } catch (err) {
    await stopProc(proc);
    throw err;
  }
  await new Promise((r) => (proc.exitCode !== null ? r(undefined) : proc.once('exit', r)));
  return JSON.parse(line) as Json;
}

async function rawRun(server: Server, nregs: number): Promise<Json> {
  const before = procTicks(server.proc.pid);
  const load = loadavg()[0];
  const out = await runJson(process.execPath, [join(HERE, 'raw-client.mjs'), String(server.port), String(server.start), String(nregs), String(WINDOW_S)], 'raw client', 60_000);
  const secs = Number(out['seconds']);
  return { ...out, serverCpuPct: ((procTicks(server.proc.pid) - before) / TICK / (secs + 0.4)) * 100, load1Before: load };
}

/** What mapper-child.mjs takes. */
interface ChildArgs {
  readonly edgecoreSock: string;
  readonly mapperSock: string;
  readonly devices: number;
  readonly warmupS: number;
  readonly measureS: number;
  /** Write property p0 of a random device every `writeEveryMs` (0 = no writes). */
  readonly writeEveryMs: number;
  /** config.yaml runtime overrides. */
  readonly runtime: Readonly<Record<string, number>>;
}

async function mapperRun(
  opts: FleetOptions,
  child: Omit<ChildArgs, 'edgecoreSock' | 'mapperSock' | 'devices'>,
  serverPid: number | undefined,
  timeoutMs: number,
  nodeArgs: string[] = [],
): Promise<Json> {
  const dir = mkdtempSync(join(tmpdir(), 'mkmb-bench-'));
  const { devices, models } = fleet(opts);
  // A MapperRegister answer carrying hundreds of devices exceeds gRPC's default 4 MB message
  // limit, so large fleets are added after registration with CreateDeviceModel/RegisterDevice,
  // as edgecore does for devices created later.
  const viaRegister = devices.length <= 50;
  const ec = await TestEdgecore.start({ socketPath: join(dir, 'dmi.sock'), devices: viaRegister ? devices : [], models: viaRegister ? models : [] });
  const args: ChildArgs = { ...child, edgecoreSock: join(dir, 'dmi.sock'), mapperSock: join(dir, 'modbus.sock'), devices: opts.devices };
  const load = loadavg()[0];
  const before = procTicks(serverPid);
  const t0 = Date.now();
  try {
    const running = runJson(process.execPath, ['--expose-gc', ...nodeArgs, ...CHILD_NODE_ARGS, join(HERE, 'mapper-child.mjs'), JSON.stringify(args)], 'mapper', timeoutMs);
    if (!viaRegister) {
      await Promise.race([ec.waitFor(() => ec.registrations.length > 0, 30_000, 'MapperRegister'), running]);
      for (const m of models) await ec.createDeviceModel(m);
      for (let i = 0; i < devices.length; i += 25) await Promise.all(devices.slice(i, i + 25).map((d) => ec.registerDevice(d)));
    }
    const out = await running;
    const serverCpuPct = ((procTicks(serverPid) - before) / TICK / ((Date.now() - t0) / 1000)) * 100;
    return { ...out, serverCpuPctWholeRun: serverCpuPct, edgecoreRateLimited: ec.rateLimited, load1Before: load };
  } finally {
    await ec.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function summary(runs: Json[]): Json {
  const out: Json = { runs: runs.length };
  const keys = Object.keys(runs[0] ?? {}).filter((k) => typeof runs[0]![k] === 'number');
  for (const k of keys) {
    const v = runs.map((r) => Number(r[k])).sort((a, b) => a - b);
    const med = v[Math.floor(v.length / 2)]!;
    out[k] = { median: round(med), min: round(v[0]!), max: round(v[v.length - 1]!) };
  }
  return out;
}

function round(n: number): number {
  return Math.abs(n) >= 100 ? Math.round(n) : Math.round(n * 100) / 100;
}

const med = (s: Json, k: string): number => ((s[k] as { median: number } | undefined)?.median ?? Number.NaN);

async function main(): Promise<void> {
  const startedAt = new Date().toISOString();
  const load0 = loadavg();
  log(`load average ${load0.map((l) => l.toFixed(2)).join(' ')} on ${cpus().length} cores${QUICK ? ' (quick mode: not for figures)' : ''}`);
  const scenarios: Json = {};
  const goals: Json = {};

  // (a)-(c) against each server.
  for (const make of [startPymodbus, () => startSimulator(['--block', '1000', '--period-ms', '1000'])]) {
    if (!['a', 'b', 'c'].some(want)) break;
    const server = await make();
    const key = server.name.startsWith('pymodbus') ? 'pymodbus' : 'serverTcp';
    const res: Json = { server: server.name };
    try {
      // Runs are interleaved (a, a125, b, c, then again) so a change of background load
      // affects every mode alike.
      const base: FleetOptions = { devices: 1, properties: 1000, start: server.start, host: '127.0.0.1', port: server.port, portPerDevice: false, cycleMs: 1, coalesce: false, reportToCloud: false, writable: false };
      const child = { warmupS: QUICK ? 1 : 2, measureS: WINDOW_S, writeEveryMs: 0, runtime: { read_timeout_ms: 10_000 } };
      const runs: Record<string, Json[]> = { a_raw_1reg: [], a_raw_125regs: [], b_mapper_coalescing_off: [], c_mapper_coalescing_on: [] };
      for (let i = 0; i < RUNS; i++) {
        log(`${key}: run ${i + 1}/${RUNS}`);
        if (want('a')) {
          runs['a_raw_1reg']!.push(await rawRun(server, 1));
          runs['a_raw_125regs']!.push(await rawRun(server, 125));
        }
        if (want('b')) runs['b_mapper_coalescing_off']!.push(await mapperRun(base, child, server.proc.pid, 120_000));
        if (want('c')) runs['c_mapper_coalescing_on']!.push(await mapperRun({ ...base, coalesce: true }, child, server.proc.pid, 120_000));
      }
      for (const [name, list] of Object.entries(runs)) if (list.length > 0) res[name] = { ...summary(list), samples: list };
      const a = res['a_raw_1reg'] as Json | undefined;
      const b = res['b_mapper_coalescing_off'] as Json | undefined;
      const c = res['c_mapper_coalescing_on'] as Json | undefined;
      if (a && b) {
        const ratio = med(b, 'pointsPerS') / med(a, 'pointsPerS');
        res['ratio_b_over_a'] = round(ratio);
        goals[`${key}: (b) ≥ 0.9 × (a) points/s`] = { value: round(ratio), pass: ratio >= 0.9 };
      }
      if (b && c) {
        const ratio = med(c, 'pointsPerS') / med(b, 'pointsPerS');
        res['ratio_c_over_b'] = round(ratio);
        goals[`${key}: (c) ≥ 10 × (b) points/s`] = { value: round(ratio), pass: ratio >= 10 };
      }
      res['serverRssMB'] = round(procRssMB(server.proc.pid));
    } finally {
      await stopProc(server.proc);
    }
    scenarios[key] = res;
  }

  // (d) 500 devices × 30 points at 1 s, with writes: once with Node's default heap sizing, once
  // with the old generation capped at 128 MB (how to run large fleets in a memory limit).
  for (const [part, key, nodeArgs] of [
    ['d', 'd_500x30_1s', [] as string[]],
    ['d128', 'd_500x30_1s_oldspace128', ['--max-old-space-size=128']],
  ] as const) {
    if (!want(part)) continue;
    const sim = await startFleetSimulator(500, ['--block', '30', '--period-ms', '5000']);
    try {
      log(`(d) 500 devices × 30 points at 1 s${nodeArgs.length ? ` (${nodeArgs.join(' ')})` : ''}`);
      const r = await mapperRun(
        { devices: 500, properties: 30, start: 100, host: '127.0.0.1', port: sim.port, portPerDevice: true, cycleMs: 1000, coalesce: true, reportToCloud: true, writable: true },
        { warmupS: QUICK ? 5 : 15, measureS: FLEET_SECONDS ?? (QUICK ? 15 : 120), writeEveryMs: 100, runtime: {} },
        sim.proc.pid,
        400_000,
        [...nodeArgs],
      );
      scenarios[key] = { simulator: sim.name, nodeArgs, ...r };
      const tag = nodeArgs.length ? ` [${nodeArgs.join(' ')}]` : '';
      goals[`(d)${tag} CPU ≤ 25 % of one core`] = { value: round(Number(r['cpuPctOfOneCore'])), pass: Number(r['cpuPctOfOneCore']) <= 25 };
      goals[`(d)${tag} RSS ≤ 200 MB`] = { value: round(Number(r['maxRssMB'])), pass: Number(r['maxRssMB']) <= 200 };
      goals[`(d)${tag} no missed cycle`] = { value: r['missedCycles'], pass: r['missedCycles'] === 0 };
      goals[`(d)${tag} tick lag p99 ≤ 100 ms`] = { value: round(Number(r['tickLagP99Ms'])), pass: Number(r['tickLagP99Ms']) <= 100 };
      goals[`(d)${tag} write latency p95 ≤ 50 ms`] = {
        value: r['writeLatencyP95Ms'] === null ? null : round(Number(r['writeLatencyP95Ms'])),
        pass: r['writeLatencyP95Ms'] !== null && Number(r['writeLatencyP95Ms']) <= 50,
      };
    } finally {
      await stopProc(sim.proc);
    }
  }

  // (e) 500 devices × 200 contiguous registers at 1 s.
  if (want('e')) {
    const sim = await startFleetSimulator(500, ['--block', '200', '--period-ms', '5000']);
    try {
      log('(e) 500 devices × 200 registers at 1 s');
      const r = await mapperRun(
        { devices: 500, properties: 200, start: 100, host: '127.0.0.1', port: sim.port, portPerDevice: true, cycleMs: 1000, coalesce: true, reportToCloud: true, writable: false },
        { warmupS: QUICK ? 5 : 15, measureS: FLEET_SECONDS ?? (QUICK ? 15 : 60), writeEveryMs: 0, runtime: {} },
        sim.proc.pid,
        400_000,
      );
      scenarios['e_500x200_1s'] = { simulator: sim.name, ...r };
      goals['(e) CPU ≤ 1 core'] = { value: round(Number(r['cpuPctOfOneCore'])), pass: Number(r['cpuPctOfOneCore']) <= 100 };
    } finally {
      await stopProc(sim.proc);
    }
  }

  const result = {
    benchmark: 'modbus',
    quick: QUICK,
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: { cores: cpus().length, cpu: cpus()[0]?.model, node: process.version, loadAvgAtStart: load0.map(round), loadAvgAtEnd: loadavg().map(round) },
    method:
      'Each party in its own process on loopback. Raw loop: modbus-serial client, one connection, sequential readHoldingRegisters. Mapper: createMapper + Modbus driver, one device of 1000 holding-register properties polled with collectCycle 1 ms (reads back to back), points/s = samples produced by the runtime; (d)/(e) drive 500 simulated devices on 500 ports. CPU = process user+system time / wall, % of one core.',
    scenarios,
    goals,
  };
  if (QUICK) {
    // Smoke runs never overwrite the real figures.
    const tmp = RESULTS.replace(/\.json$/, '.quick.tmp.json');
    mkdirSync(dirname(tmp), { recursive: true });
    writeFileSync(tmp, `${JSON.stringify(result, null, 2)}\n`);
    log(`quick mode: wrote ${tmp} (not for figures)`);
  } else {
    mkdirSync(dirname(RESULTS), { recursive: true });
    let previous: Json = {};
    try {
      previous = JSON.parse(readFileSync(RESULTS, 'utf8')) as Json;
    } catch {
      // first run
    }
    // Partial runs (--only) update their scenarios and keep the rest.
    const merged = ONLY.size > 0 ? { ...previous, ...result, scenarios: { ...(previous['scenarios'] as Json), ...scenarios }, goals: { ...(previous['goals'] as Json), ...goals } } : result;
    writeFileSync(RESULTS, `${JSON.stringify(merged, null, 2)}\n`);
    log(`wrote ${RESULTS}`);
  }
  process.stdout.write(`${JSON.stringify({ goals, machine: result.machine }, null, 2)}\n`);
}

await main();
