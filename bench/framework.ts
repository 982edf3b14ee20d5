// SPDX-License-Identifier: Apache-2.0
// Framework benchmark (issue 2): virtual driver, mapper in its own process, test edgecore here.
//   1. load: DEVICES × PROPS properties at 1 s for LOAD_SECONDS — mapper CPU share, RSS, tick lag p99,
//      and proof of read-once fan-out (driver reads per property per cycle with 3 consumers attached)
//   2. idle: one device, RSS at 10 s and over the last 20 s of IDLE_SECONDS (40), anonymous vs file-backed
//   3. 1,000 RegisterDevice calls end to end (calls answered, then every device sampled)
// Results: bench/results/framework.json (framework-plain-node.json with BENCH_PLAIN_NODE=1). Env: LOAD_SECONDS (default 120), WARMUP_SECONDS (20), DEVICES (1000),
// PROPS (10), REGISTER_RUNS (3), PARTS (load,idle,register; a partial run only prints), BENCH_PROFILE / BENCH_ALLOC_PROFILE (see mapper-child.mjs).
// The mapper child runs with the environment the mapper images set (deploy/images/runtime-env.json: V8 semi-space
// and malloc arenas); BENCH_PLAIN_NODE=1 runs it with node's defaults instead.
import { execFile, execFileSync, fork, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Device, type DeviceModel, encodeCustomizedValue } from '@mapperkit/framework/dmi';
import { TestEdgecore } from '@mapperkit/framework/testing';

const root = new URL('..', import.meta.url).pathname;
const LOAD_SECONDS = Number(process.env['LOAD_SECONDS'] ?? 120);
const WARMUP_SECONDS = Number(process.env['WARMUP_SECONDS'] ?? 20);
const DEVICES = Number(process.env['DEVICES'] ?? 1000);
const PROPS = Number(process.env['PROPS'] ?? 10);
/** Fresh mappers (each followed by a floor run) per mode of the Python registration client. */
const REGISTER_RUNS = Math.max(1, Number(process.env['REGISTER_RUNS'] ?? 3));
/** PARTS=load,idle,register (default all; register-python: only its Python grpcio runs; register-python-one: only the one-channel one); partial runs print their figures without writing the results file. */
const PARTS = new Set((process.env['PARTS'] ?? 'load,idle,register').split(','));
/** Extra node flags for the mapper child (e.g. BENCH_CHILD_NODE_ARGS=--perf-basic-prof to profile it with perf). */
const CHILD_NODE_ARGS = (process.env['BENCH_CHILD_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
/** What the mapper images set (their Dockerfiles' ENV, checked by deploy-tests), unless BENCH_PLAIN_NODE=1. */
const RUNTIME_ENV: Record<string, string> = process.env['BENCH_PLAIN_NODE'] === '1' ? {} : (JSON.parse(readFileSync(join(root, 'deploy/images/runtime-env.json'), 'utf8')) as Record<string, string>);
const PARTIAL = !['load', 'idle', 'register'].every((p) => PARTS.has(p));

const KINDS = ['randomWalk', 'counter', 'sine', 'toggle', 'constant'];
const TYPES = ['FLOAT', 'INT', 'DOUBLE', 'BOOLEAN', 'FLOAT'];

function model(): DeviceModel {
  return {
    name: 'bench-model',
    namespace: 'default',
    spec: { properties: Array.from({ length: PROPS }, (_, i) => ({ name: `p${i}`, description: '', type: TYPES[i % 5]!, accessMode: 'ReadOnly', minimum: '', maximum: '', unit: '' })), commands: [] },
  };
}

function device(i: number): Device {
  return {
    name: `dev-${i}`,
    namespace: 'default',
    spec: {
      deviceModelReference: 'bench-model',
      protocol: { protocolName: 'virtual', configData: encodeCustomizedValue({ seed: i + 1 }) },
      properties: Array.from({ length: PROPS }, (_, p) => ({
        name: `p${p}`,
        desired: undefined,
        visitors: { protocolName: 'virtual', configData: encodeCustomizedValue({ kind: KINDS[p % 5]!, min: 0, max: 100 }) },
        collectCycle: 1000n,
        reportCycle: 1000n,
        reportToCloud: true,
        pushMethod: undefined,
      })),
      methods: [],
    },
    status: { twins: [], reportToCloud: false, reportCycle: 0n },
  };
}

class Child {
  private readonly proc: ChildProcess;
  private readonly waiting = new Map<string, (d: unknown) => void>();
  readonly ready: Promise<void>;
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
    this.proc = fork(join(root, 'bench', 'mapper-child.mjs'), [dir], {
      execArgv: ['--expose-gc', ...CHILD_NODE_ARGS],
      env: { ...process.env, ...RUNTIME_ENV },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.ready = new Promise((res) => this.waiting.set('ready', () => res()));
    this.proc.on('message', (m: { cmd: string; data: unknown }) => this.waiting.get(m.cmd)?.(m.data));
  }

  get pid(): number {
    return this.proc.pid!;
  }

  call<T>(cmd: string): Promise<T> {
    return new Promise((res) => {
      this.waiting.set(cmd, (d) => res(d as T));
      this.proc.send({ cmd });
    });
  }
}

/**
 * A floor process (bench/floor-child.mjs, same environment as the mapper child): node alone, or a
 * gRPC server answering DeviceMapperService at once after loading the mapper's npm dependencies.
 */
async function withFloor<T>(mode: 'bare' | 'server', fn: (pid: number, socketPath: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'mkfloor-'));
  const socketPath = join(dir, 'floor.sock');
  // execArgv: not this process's (tsx).
  const proc = fork(join(root, 'bench', 'floor-child.mjs'), [mode, socketPath], { execArgv: [], env: { ...process.env, ...RUNTIME_ENV }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  try {
    await new Promise<void>((res, rej) => {
      proc.once('message', () => res());
      proc.once('exit', (code) => rej(new Error(`floor child (${mode}) exited with ${code}`)));
    });
    return await fn(proc.pid!, socketPath);
  } finally {
    proc.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** RSS of another process (from /proc), MB: total, anonymous, file-backed. */
function rssOf(pid: number): { rss: number; anon: number; file: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const mb = (key: string): number => (Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024) / 1e6;
  return { rss: mb('VmRSS'), anon: mb('RssAnon'), file: mb('RssFile') };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (n: number, d = 2): number => Math.round(n * 10 ** d) / 10 ** d;
const pct = (xs: readonly number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? 0;
};

async function withMapper<T>(devices: Device[], fn: (child: Child, ec: TestEdgecore) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'mkbench-'));
  const ec = await TestEdgecore.start({ socketPath: join(dir, 'dmi.sock'), devices, models: [model()] });
  const child = new Child(dir);
  await child.ready;
  try {
    await child.call('start');
    return await fn(child, ec);
  } finally {
    await child.call('stop').catch(() => undefined);
    await ec.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Measure {
  elapsedMs: number;
  cpuShareOfOneCore: number;
  cpuMainThreadMs: number;
  cpuHelperThreadsMs: number;
  rssMaxMB: number;
  rssLastMB: number;
  rssFirstMB: number;
  rssSeriesMB: number[];
  heapUsedMB: number;
  heapTotalMB: number;
  externalMB: number;
  arrayBuffersMB: number;
  liveHeapAfterGcMB: number | undefined;
  heapSpacesMB: Record<string, number>;
  gc: { scavenges: number; scavengeMs: number; markCompacts: number; markCompactMs: number };
  tickLagP50: number;
  tickLagP99: number;
  tickLagMax: number;
  ticks: number;
  overruns: number;
  propertyReads: number;
  maxPropertyReads: number;
  consumerSamples: number[];
  devices: number;
  connected: number;
  sampled: number;
  twinReports: number;
  stateReports: number;
}

async function load(): Promise<Record<string, unknown>> {
  console.log(`[bench] load: ${DEVICES} devices × ${PROPS} properties at 1 s, ${WARMUP_SECONDS} s warm-up + ${LOAD_SECONDS} s measured`);
  return withMapper(Array.from({ length: DEVICES }, (_, i) => device(i)), async (child) => {
    await sleep(WARMUP_SECONDS * 1000);
    await child.call('mark');
    await sleep(LOAD_SECONDS * 1000);
    const m = await child.call<Measure>('measure-full');
    const cycles = m.elapsedMs / 1000;
    const readsPerPropertyPerCycle = m.propertyReads / (DEVICES * PROPS * cycles);
    return {
      devices: DEVICES,
      propertiesPerDevice: PROPS,
      collectCycleMs: 1000,
      seconds: round(m.elapsedMs / 1000, 1),
      cpuShareOfOneCore: round(m.cpuShareOfOneCore, 3),
      rssMaxMB: round(m.rssMaxMB, 1),
      rssAtStartMB: round(m.rssFirstMB, 1),
      rssAtEndMB: round(m.rssLastMB, 1),
      rssP50MB: pct(m.rssSeriesMB, 50),
      rssP95MB: pct(m.rssSeriesMB, 95),
      rssEvery10sMB: m.rssSeriesMB.filter((_, i) => i % 10 === 0),
      heapUsedMB: round(m.heapUsedMB, 1),
      heapTotalMB: round(m.heapTotalMB, 1),
      externalMB: round(m.externalMB, 1),
      arrayBuffersMB: round(m.arrayBuffersMB, 1),
      liveHeapAfterGcMB: m.liveHeapAfterGcMB === undefined ? null : round(m.liveHeapAfterGcMB, 1),
      heapSpacesMB: Object.fromEntries(Object.entries(m.heapSpacesMB).filter(([, v]) => v > 0)),
      gc: m.gc,
      tickLagP50Ms: round(m.tickLagP50),
      tickLagP99Ms: round(m.tickLagP99),
      tickLagMaxMs: round(m.tickLagMax),
      ticks: m.ticks,
      overruns: m.overruns,
      readOnce: {
        consumersAttached: 3 + 2,
        driverPropertyReads: m.propertyReads,
        readsPerPropertyPerCycle: round(readsPerPropertyPerCycle, 3),
        // The most any one property of 20 sampled devices was read in the window, per cycle.
        maxReadsOfOnePropertyPerCycle: round(m.maxPropertyReads / cycles, 3),
        samplesPerConsumer: m.consumerSamples,
      },
      twinReports: m.twinReports,
      goals: { cpuShareOfOneCore: 0.25, rssMaxMB: 150, tickLagP99Ms: 20 },
    };
  });
}

/**
 * Idle: one device for IDLE_SECONDS (default 40). RSS at 10 s, and over the last 20 s (median and
 * maximum of 1 s samples), after V8's memory reducer has shrunk the heap that loading the modules
 * grew (it runs some 8-16 s after start). RSS split into anonymous memory (V8 heap, malloc) and
 * file-backed pages (mostly the node binary's code; clean, shared, reclaimable by the kernel).
 */
async function idle(): Promise<Record<string, unknown>> {
  const seconds = Math.max(30, Number(process.env['IDLE_SECONDS'] ?? 40));
  console.log(`[bench] idle: one device, ${seconds} s; beside it, as long: node alone, and node serving gRPC after loading the mapper's npm dependencies`);
  // The floors idle beside the mapper (idle processes barely compete), measured the same way.
  const floor = (mode: 'bare' | 'server') =>
    withFloor(mode, async (pid) => {
      const series: ReturnType<typeof rssOf>[] = [];
      for (let t = 0; t <= seconds; t++) {
        series.push(rssOf(pid));
        await sleep(1000);
      }
      const last20s = series.slice(-20);
      const median = (k: 'rss' | 'anon' | 'file'): number => round(pct(last20s.map((x) => x[k]), 50), 1);
      return { rssMB: median('rss'), rssAnonymousMB: median('anon'), rssFileBackedMB: median('file') };
    });
  const [mapper, bareNode, dependenciesAndServer] = await Promise.all([idleMapper(seconds), floor('bare'), floor('server')]);
  return {
    ...mapper,
    floor: {
      note: "the same measure of two processes idling beside the mapper: node alone, and node serving DeviceMapperService (answers at once) after loading the mapper's npm dependencies (grpc-js, pino, yaml, zod, @bufbuild/protobuf/wire, prom-client): bench/floor-child.mjs",
      bareNode,
      dependenciesAndServer,
    },
    goal: { rssMB: 60 },
  };
}

async function idleMapper(seconds: number): Promise<Record<string, unknown>> {
  return withMapper([device(0)], async (child) => {
    await child.call('mark');
    await sleep(10_000);
    const at10s = await child.call<Measure>('measure');
    await sleep((seconds - 10) * 1000);
    const m = await child.call<Measure>('measure');
    // Anonymous (V8 heap, malloc) vs file-backed (the node binary's code, libraries), as for the floors.
    const split = rssOf(child.pid);
    const last20s = m.rssSeriesMB.slice(-20);
    return {
      devices: 1,
      seconds,
      rssMB: round(pct(last20s, 50), 1),
      rssMaxLast20sMB: round(Math.max(...last20s), 1),
      rssAt10sMB: round(at10s.rssLastMB, 1),
      rssAnonymousMB: round(split.anon, 1),
      rssFileBackedMB: round(split.file, 1),
      rssSeriesMB: m.rssSeriesMB,
      heapTotalMB: round(m.heapTotalMB, 1),
      cpuShareOfOneCore: round(m.cpuShareOfOneCore, 4),
      note: 'rssMB: median of the last 20 s; file-backed pages are the node binary and shared libraries',
    };
  });
}

/**
 * The mapper's CPU per call on its main thread and on its other threads: in a fresh process the
 * latter is mostly V8's optimizing compiler (TurboFan compiles on helper threads).
 */
function cpuSplit(m: Measure, calls: number): { mapperMainThreadCpuMsPerCall: number; mapperHelperThreadsCpuMsPerCall: number } {
  return { mapperMainThreadCpuMsPerCall: round(m.cpuMainThreadMs / calls, 3), mapperHelperThreadsCpuMsPerCall: round(m.cpuHelperThreadsMs / calls, 3) };
}

/** Polls the mapper until every registered device has been sampled (at most 60 s after `since`). */
async function untilEveryDeviceSampled(child: Child, since: number): Promise<void> {
  let m: Measure;
  do {
    await sleep(20);
    m = await child.call<Measure>('measure');
  } while (m.sampled < m.devices && performance.now() - since < 60_000);
}

async function registerMany(): Promise<Record<string, unknown>> {
  const n = 1000;
  console.log(`[bench] ${n} RegisterDevice calls end to end: sequential on a fresh mapper, 16 in flight, sequential again (warm)`);
  return withMapper([], async (child, ec) => {
    await ec.createDeviceModel(model());
    const run = async (offset: number, inFlight: number): Promise<Record<string, number>> => {
      const queue = Array.from({ length: n }, (_, i) => device(offset + i));
      const latencies: number[] = [];
      await child.call('mark');
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: inFlight }, async () => {
          for (let d = queue.shift(); d; d = queue.shift()) {
            const a = performance.now();
            await ec.registerDevice(d);
            latencies.push(performance.now() - a);
          }
        }),
      );
      const callsMs = performance.now() - t0;
      const atCalls = await child.call<Measure>('measure');
      await untilEveryDeviceSampled(child, t0);
      const allDevicesSampledMs = performance.now() - t0;
      for (let i = 0; i < n; i++) await ec.removeDevice('default', `dev-${offset + i}`);
      return {
        inFlight,
        allAnsweredMs: round(callsMs, 0),
        allDevicesSampledMs: round(allDevicesSampledMs, 0),
        callLatencyP50Ms: round(pct(latencies, 50)),
        callLatencyP99Ms: round(pct(latencies, 99)),
        mapperCpuMsPerCall: round((atCalls.cpuShareOfOneCore * atCalls.elapsedMs) / n, 3),
        ...cpuSplit(atCalls, n),
      };
    };
    // A fresh mapper: V8 has compiled none of the registration path yet (the first batch of
    // devices after a mapper starts). Then 16 calls in flight, then sequential again, warm.
    const sequential = await run(0, 1);
    const concurrent = await run(n, 16);
    const sequentialWarm = await run(2 * n, 1);
    return {
      calls: n,
      propertiesPerDevice: PROPS,
      sequential,
      concurrent,
      sequentialWarm,
      goalMs: 2000,
      note: 'client is the in-process test edgecore (grpc-js, tsx) in the parent process; the same client against a no-op grpc-js server in another process takes ~1.1 s for these 1,000 calls sequentially (warm)',
    };
  });
}

/**
 * 1,000 RegisterDevice calls one at a time on a fresh mapper from Python grpcio (gRPC C-core): a
 * compiled client like edgecore's Go one, so the figure is the mapper's warm-up and not also the
 * grpc-js client's. Needs Debian's python3-grpcio and python3-grpc-tools (scripts/setup-peers.sh).
 */
async function registerFromCompiledClient(): Promise<Record<string, unknown>> {
  const n = 1000;
  const PY = '/usr/bin/python3';
  console.log(`[bench] ${n} RegisterDevice calls one at a time on a fresh mapper, from Python grpcio`);
  const gen = mkdtempSync(join(tmpdir(), 'mkbench-py-'));
  try {
    const protoDir = join(root, 'packages/mapper-framework/proto/v1beta1');
    try {
      const include = existsSync('/usr/include/google/protobuf/any.proto') ? ['-I', '/usr/include'] : [];
      execFileSync(PY, ['-m', 'grpc_tools.protoc', '-I', protoDir, ...include, `--python_out=${gen}`, `--grpc_python_out=${gen}`, join(protoDir, 'api.proto')], { stdio: 'pipe' });
    } catch (err) {
      return { skipped: `Python grpcio/grpc_tools not usable (run scripts/setup-peers.sh): ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}` };
    }
    const pythonClient = async (socketPath: string, mode: 'one-channel' | 'dial-per-call') => {
      const { stdout } = await promisify(execFile)(PY, [join(root, 'bench/register-client.py'), gen, socketPath, String(n), '0', String(PROPS), mode], { encoding: 'utf8' });
      return JSON.parse(stdout) as { allAnsweredMs: number; callLatencyP50Ms: number; callLatencyP99Ms: number; meanMsPerTenthOfCalls: number[] };
    };
    // The floor: the same client and calls against a server that answers at once (a fresh one each).
    const floor = (mode: 'one-channel' | 'dial-per-call') => withFloor('server', (_pid, socketPath) => pythonClient(socketPath, mode));
    // A fresh mapper each: one channel for all calls; then a new connection per call, as edgecore's
    // DMI client dials (non-blocking grpc.Dial, one RPC, Close: upstream-kubeedge.md §7.3).
    const run = (mode: 'one-channel' | 'dial-per-call'): Promise<Record<string, unknown>> =>
      withMapper([], async (child) => {
        await child.call('mark');
        // Asynchronously: the test edgecore in this process keeps answering the mapper meanwhile.
        const client = await pythonClient(join(child.dir, 'virtual.sock'), mode);
        const answered = performance.now();
        const atCalls = await child.call<Measure>('measure');
        await untilEveryDeviceSampled(child, answered);
        return {
          ...client,
          everyDeviceSampledAfterTheLastAnswerMs: round(performance.now() - answered, 0),
          mapperCpuMsPerCall: round((atCalls.cpuShareOfOneCore * atCalls.elapsedMs) / n, 3),
          ...cpuSplit(atCalls, n),
        };
      });
    // PARTS=register-python-one: only the one-channel runs (e.g. for a profile of the mapper in it).
    const one = PARTS.has('register-python-one') && !PARTS.has('register-python') && !PARTS.has('register');
    // Runs of one build differ by ±30 % here: each mode runs REGISTER_RUNS times, a mapper then the
    // floor, and reports medians, ranges and the median of the pairs' ratios.
    const measureMode = async (mode: 'one-channel' | 'dial-per-call'): Promise<Record<string, unknown>> => {
      const runs: { mapper: Record<string, unknown>; floor: Awaited<ReturnType<typeof pythonClient>> }[] = [];
      for (let i = 0; i < REGISTER_RUNS; i++) {
        console.log(`[bench] ${mode}, run ${i + 1} of ${REGISTER_RUNS}: a fresh mapper, then the floor (bench/floor-child.mjs)`);
        runs.push({ mapper: await run(mode), floor: await floor(mode) });
      }
      const med = (xs: number[]): number => round(pct(xs, 50), 3);
      const ms = runs.map((r) => r.mapper['allAnsweredMs'] as number);
      const floorMs = runs.map((r) => r.floor.allAnsweredMs);
      return {
        allAnsweredMs: med(ms),
        rangeMs: [Math.min(...ms), Math.max(...ms)],
        floorAllAnsweredMs: med(floorMs),
        floorRangeMs: [Math.min(...floorMs), Math.max(...floorMs)],
        ratioToFloor: round(pct(runs.map((_, i) => ms[i]! / floorMs[i]!), 50), 2),
        mapperMainThreadCpuMsPerCall: med(runs.map((r) => r.mapper['mapperMainThreadCpuMsPerCall'] as number)),
        mapperHelperThreadsCpuMsPerCall: med(runs.map((r) => r.mapper['mapperHelperThreadsCpuMsPerCall'] as number)),
        runs,
      };
    };
    const oneChannel = await measureMode('one-channel');
    const dialPerCall = one ? undefined : await measureMode('dial-per-call');
    return {
      client: 'Python grpcio 1.51 (Debian), sequential unary calls; the request messages are built before the clock starts',
      calls: n,
      runsPerMode: REGISTER_RUNS,
      floor: "the same client and calls against a server that answers each call at once with an empty message, after loading the mapper's npm dependencies (bench/floor-child.mjs); a fresh one for each run",
      oneChannel,
      dialPerCall,
      goalMs: 2000,
    };
  } finally {
    rmSync(gen, { recursive: true, force: true });
  }
}

const started = new Date();
const load1 = loadavg()[0];
const result = {
  benchmark: 'framework',
  date: started.toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, loadavg1mAtStart: load1 },
  mapperEnvironment: { ...RUNTIME_ENV, source: Object.keys(RUNTIME_ENV).length > 0 ? 'deploy/images/runtime-env.json (the mapper images set it)' : "node's defaults (BENCH_PLAIN_NODE=1)" },
  load: PARTS.has('load') ? await load() : undefined,
  idle: PARTS.has('idle') ? await idle() : undefined,
  registerDevice: PARTS.has('register') ? await registerMany() : undefined,
  registerDeviceCompiledClient: PARTS.has('register') || PARTS.has('register-python') || PARTS.has('register-python-one') ? await registerFromCompiledClient() : undefined,
  loadavg1mAtEnd: loadavg()[0],
};
if (!PARTIAL) {
  mkdirSync(join(root, 'bench', 'results'), { recursive: true });
  writeFileSync(join(root, 'bench', 'results', Object.keys(RUNTIME_ENV).length > 0 ? 'framework.json' : 'framework-plain-node.json'), `${JSON.stringify(result, null, 2)}\n`);
}
console.log(JSON.stringify(result, null, 2));
