// SPDX-License-Identifier: Apache-2.0
// The mapper under test, alone in its process and run as shipped (built dist, plain node):
// createMapper with the Modbus driver, registered with the orchestrator's TestEdgecore.
// Measures itself over a window after a warm-up.
// usage: node mapper-child.mjs JSON  -> one JSON line
//   JSON = { edgecoreSock, mapperSock, devices, warmupS, measureS, writeEveryMs, runtime: {…} }
import { PerformanceObserver, constants as perfConstants, performance } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';
import { createLogger, createMapper } from '@mapperkit/framework';
import { createModbusDriver } from '@mapperkit/mapper-modbus';

const args = JSON.parse(process.argv[2] ?? '{}');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const driver = createModbusDriver();
const runtime = Object.entries(args.runtime ?? {})
  .map(([k, v]) => `  ${k}: ${v}\n`)
  .join('');
// Completed reads (time, properties) to compute rates between read completions, so a window
// never cuts a long read in half.
const completions = [];
let recording = false;
const observer = {
  onRead(e) {
    if (recording) completions.push([performance.now(), e.properties.length - e.failed.size]);
  },
};
const mapper = await createMapper({
  driver,
  observers: [observer],
  logger: createLogger({ level: process.env.BENCH_LOG ?? 'silent' }),
  config: `grpc_server:\n  socket_path: ${args.mapperSock}\ncommon:\n  name: modbus-bench\n  protocol: modbus\n  edgecore_sock: ${args.edgecoreSock}\n${runtime ? `runtime:\n${runtime}` : ''}`,
});
await mapper.whenRegistered();
const connectDeadline = Date.now() + 60_000;
while (mapper.devices().filter((d) => d.connected).length < args.devices) {
  if (Date.now() > connectDeadline) throw new Error(`only ${mapper.devices().filter((d) => d.connected).length}/${args.devices} devices connected`);
  await sleep(100);
}
await sleep(args.warmupS * 1000);

// BENCH_PROFILE=file.cpuprofile: CPU profile of the measurement window only.
// BENCH_ALLOC_PROFILE=file.heapprofile: sampled allocations of the window, including objects
// already collected (where the garbage comes from).
let profiler;
let allocProfiler;
if (process.env.BENCH_PROFILE) {
  const { Session } = await import('node:inspector/promises');
  profiler = new Session();
  profiler.connect();
  await profiler.post('Profiler.enable');
  await profiler.post('Profiler.start');
}
if (process.env.BENCH_ALLOC_PROFILE) {
  const { Session } = await import('node:inspector/promises');
  allocProfiler = new Session();
  allocProfiler.connect();
  await allocProfiler.post('HeapProfiler.enable');
  await allocProfiler.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
}
const requests = () => driver.linkStats().reduce((n, l) => n + l.requests, 0);
const s0 = mapper.stats();
const r0 = requests();
mapper.resetStats();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
recording = true;
const latencies = [];
let writeErrors = 0;
let writer;
if (args.writeEveryMs > 0) {
  let seq = 0;
  writer = setInterval(() => {
    const dev = Math.floor(Math.random() * args.devices);
    const started = performance.now();
    mapper.writeProperty('default', `dev-${dev}`, 'p0', String(seq++ & 0xffff)).then(
      () => latencies.push(performance.now() - started),
      () => writeErrors++,
    );
  }, args.writeEveryMs);
}
// Garbage collections in the window: count and pause time per kind (young generation
// scavenges vs full mark-compacts), to tell allocation churn from retained memory.
const gc = { scavenges: 0, scavengeMs: 0, markCompacts: 0, markCompactMs: 0, other: 0, otherMs: 0 };
const gcObserver = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = e.detail?.kind;
    if (kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) {
      gc.scavenges++;
      gc.scavengeMs += e.duration;
    } else if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) {
      gc.markCompacts++;
      gc.markCompactMs += e.duration;
    } else {
      gc.other++;
      gc.otherMs += e.duration;
    }
  }
});
gcObserver.observe({ entryTypes: ['gc'] });
let maxRss = process.memoryUsage().rss;
const sampler = setInterval(() => (maxRss = Math.max(maxRss, process.memoryUsage().rss)), 500);
await sleep(args.measureS * 1000);
recording = false;
clearInterval(writer);
clearInterval(sampler);
const dt = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
gcObserver.disconnect();
const spaces = Object.fromEntries(getHeapSpaceStatistics().map((sp) => [sp.space_name, Math.round((sp.space_size / 2 ** 20) * 10) / 10]));
const s1 = mapper.stats();
const r1 = requests();
latencies.sort((a, b) => a - b);
const pct = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)] : null);
// Points/s between the first and the last read completed in the window.
let points = 0;
for (let i = 1; i < completions.length; i++) points += completions[i][1];
const span = completions.length > 1 ? (completions[completions.length - 1][0] - completions[0][0]) / 1000 : 0;
// Live heap after a full collection (the child runs with --expose-gc): tells retained memory
// from garbage V8 has not collected yet.
const heapBeforeGc = process.memoryUsage();
globalThis.gc?.();
const liveHeapMB = process.memoryUsage().heapUsed / 2 ** 20;
if (profiler) {
  const { profile } = await profiler.post('Profiler.stop');
  (await import('node:fs')).writeFileSync(process.env.BENCH_PROFILE, JSON.stringify(profile));
}
if (allocProfiler) {
  const { profile } = await allocProfiler.post('HeapProfiler.stopSampling');
  (await import('node:fs')).writeFileSync(process.env.BENCH_ALLOC_PROFILE, JSON.stringify(profile));
}
if (process.env.BENCH_HEAPSNAPSHOT) (await import('node:v8')).writeHeapSnapshot(process.env.BENCH_HEAPSNAPSHOT);
console.log(
  JSON.stringify({
    seconds: dt,
    devices: mapper.devices().length,
    pointsPerS: span > 0 ? points / span : (s1.samples - s0.samples) / dt,
    samplesPerS: (s1.samples - s0.samples) / dt,
    requestsPerS: (r1 - r0) / dt,
    readCallsPerS: (s1.readCalls - s0.readCalls) / dt,
    readErrors: s1.readErrors - s0.readErrors,
    missedCycles: s1.overruns - s0.overruns,
    tickLagP50Ms: s1.tickLagP50,
    tickLagP99Ms: s1.tickLagP99,
    tickLagMaxMs: s1.tickLagMax,
    twinReports: s1.twinReports - s0.twinReports,
    cpuPctOfOneCore: (100 * (cpu.user + cpu.system)) / 1e6 / dt,
    cpuUserPct: (100 * cpu.user) / 1e6 / dt,
    cpuSystemPct: (100 * cpu.system) / 1e6 / dt,
    gc: { ...gc, scavengeMs: Math.round(gc.scavengeMs), markCompactMs: Math.round(gc.markCompactMs), otherMs: Math.round(gc.otherMs) },
    heapSpacesMB: spaces,
    rssMB: maxRss / 2 ** 20,
    heapUsedMB: heapBeforeGc.heapUsed / 2 ** 20,
    heapTotalMB: heapBeforeGc.heapTotal / 2 ** 20,
    externalMB: heapBeforeGc.external / 2 ** 20,
    liveHeapAfterGcMB: liveHeapMB,
    maxRssMB: process.resourceUsage().maxRSS / 1024,
    writes: latencies.length,
    writeErrors,
    writeLatencyP50Ms: pct(50),
    writeLatencyP95Ms: pct(95),
    writeLatencyMaxMs: pct(100),
  }),
);
await mapper.stop();
process.exit(0);
