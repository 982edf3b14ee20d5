// SPDX-License-Identifier: Apache-2.0
// Benchmark child (plain JS on the built packages, so tsx's own memory is not measured): one mapper process (virtual driver) whose own CPU, memory and tick lag are
// measured. Controlled by the parent over IPC. Built only on the framework's public API.
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';
import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createLogger, createMapper } from '@mapperkit/framework';
import { virtualDriver } from '@mapperkit/example-virtual-mapper';

const [socketDir] = process.argv.slice(2);
if (!socketDir) throw new Error('usage: mapper-child <socketDir>');

// Count what the driver is asked to read, to prove read-once fan-out: every property read of
// every device in total, and per property for a sample of devices (the first 20), whose
// largest count shows that no property is read more than once per cycle. Cheap enough not to
// weigh on the measured process (one counter per read; map lookups only for sampled devices).
let propertyReadsTotal = 0;
const perProperty = new Map();
const counted = {
  ...virtualDriver,
  async connect(ctx, signal) {
    const client = await virtualDriver.connect(ctx, signal);
    const read = client.read.bind(client);
    const sampled = Number(/^dev-(\d+)$/.exec(ctx.device.name)?.[1] ?? Infinity) < 20;
    client.read = (requests, s) => {
      propertyReadsTotal += requests.length;
      if (sampled) for (const r of requests) perProperty.set(`${ctx.device.id}/${r.name}`, (perProperty.get(`${ctx.device.id}/${r.name}`) ?? 0) + 1);
      return read(requests, s);
    };
    return client;
  },
};

const consumerCounts = [0, 0, 0];
const consumers = consumerCounts.map((_, i) => ({
  name: `bench-consumer-${i}`,
  accept(samples) {
    consumerCounts[i] += samples.length;
  },
}));

// Garbage collections in the window: count and pause time per kind (young-generation
// scavenges vs full mark-compacts), to tell allocation churn from retained memory.
const gc = { scavenges: 0, scavengeMs: 0, markCompacts: 0, markCompactMs: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (e.detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) {
      gc.scavenges++;
      gc.scavengeMs += e.duration;
    } else if (e.detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) {
      gc.markCompacts++;
      gc.markCompactMs += e.duration;
    }
  }
}).observe({ entryTypes: ['gc'] });
let gcMark = { ...gc };

let mapper;
let cpuMark = process.cpuUsage();
let timeMark = performance.now();
let readsMark = 0;
let perPropertyMark = new Map();
let consumerMark = [0, 0, 0];
const rss = [];
let rssTimer;

// CPU time by thread (Linux): the main thread, and the others (V8's compiler and GC helpers,
// libuv's pool). A fresh process's optimizing compiles run on the helpers.
const CLOCK_TICK_MS = 1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
function threadCpuMs() {
  const out = { main: 0, helpers: 0 };
  for (const tid of readdirSync('/proc/self/task')) {
    let stat;
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    // Fields after "(comm)": state is the first; utime and stime are the 12th and 13th.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out[tid === String(process.pid) ? 'main' : 'helpers'] += (Number(f[11]) + Number(f[12])) * CLOCK_TICK_MS;
  }
  return out;
}
let threadMark = threadCpuMs();

function totalReads() {
  return propertyReadsTotal;
}

// BENCH_PROFILE=file.cpuprofile / BENCH_ALLOC_PROFILE=file.heapprofile: CPU profile / sampled
// allocations (collected objects included) of the measurement window (from 'mark' to 'measure').
let cpuSession;
let allocSession;
async function startProfiles() {
  if (!process.env.BENCH_PROFILE && !process.env.BENCH_ALLOC_PROFILE) return;
  const { Session } = await import('node:inspector/promises');
  if (process.env.BENCH_PROFILE && !cpuSession) {
    cpuSession = new Session();
    cpuSession.connect();
    await cpuSession.post('Profiler.enable');
    await cpuSession.post('Profiler.start');
  }
  if (process.env.BENCH_ALLOC_PROFILE && !allocSession) {
    allocSession = new Session();
    allocSession.connect();
    await allocSession.post('HeapProfiler.enable');
    await allocSession.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  }
}
async function stopProfiles() {
  const { writeFileSync } = await import('node:fs');
  if (cpuSession) {
    const { profile } = await cpuSession.post('Profiler.stop');
    writeFileSync(process.env.BENCH_PROFILE, JSON.stringify(profile));
    cpuSession.disconnect();
  }
  if (allocSession) {
    const { profile } = await allocSession.post('HeapProfiler.stopSampling');
    writeFileSync(process.env.BENCH_ALLOC_PROFILE, JSON.stringify(profile));
    allocSession.disconnect();
  }
  // Only the first window (the load phase) is profiled.
  delete process.env.BENCH_PROFILE;
  delete process.env.BENCH_ALLOC_PROFILE;
  cpuSession = undefined;
  allocSession = undefined;
}

process.on('message', async (msg) => {
  const reply = (data) => void process.send?.({ cmd: msg.cmd, data });
  switch (msg.cmd) {
    case 'start': {
      mapper = await createMapper({
        driver: counted,
        config: `grpc_server:\n  socket_path: ${socketDir}/virtual.sock\ncommon:\n  name: bench\n  protocol: virtual\n  edgecore_sock: ${socketDir}/dmi.sock\n`,
        logger: createLogger({ level: process.env.BENCH_LOG ?? 'warn' }),
        consumers,
      });
      await mapper.whenRegistered();
      reply({ pid: process.pid });
      break;
    }
    case 'mark': {
      // Start of a measurement window.
      await startProfiles();
      cpuMark = process.cpuUsage();
      threadMark = threadCpuMs();
      timeMark = performance.now();
      readsMark = totalReads();
      perPropertyMark = new Map(perProperty);
      consumerMark = [...consumerCounts];
      gcMark = { ...gc };
      mapper?.resetStats();
      rss.length = 0;
      clearInterval(rssTimer);
      rssTimer = setInterval(() => rss.push(process.memoryUsage.rss()), 1000);
      reply({});
      break;
    }
    case 'measure':
    case 'measure-full': {
      const cpu = process.cpuUsage(cpuMark);
      const threads = threadCpuMs();
      await stopProfiles();
      const elapsed = performance.now() - timeMark;
      const s = mapper.stats();
      rss.push(process.memoryUsage.rss());
      const mem = process.memoryUsage();
      // Live heap after a full collection (when run with --expose-gc): retained memory, as
      // opposed to garbage V8 has not collected yet.
      const full = msg.cmd === 'measure-full' && typeof globalThis.gc === 'function';
      if (full) globalThis.gc();
      const live = full ? process.memoryUsage().heapUsed / 1e6 : undefined;
      // BENCH_HEAPSNAPSHOT=file: heap snapshot at the end of the load window (after the full GC).
      if (full && process.env.BENCH_HEAPSNAPSHOT) {
        (await import('node:v8')).writeHeapSnapshot(process.env.BENCH_HEAPSNAPSHOT);
        delete process.env.BENCH_HEAPSNAPSHOT;
      }
      reply({
        heapTotalMB: mem.heapTotal / 1e6,
        externalMB: mem.external / 1e6,
        arrayBuffersMB: mem.arrayBuffers / 1e6,
        liveHeapAfterGcMB: live,
        heapSpacesMB: Object.fromEntries(getHeapSpaceStatistics().map((sp) => [sp.space_name, Math.round(sp.space_size / 1e5) / 10])),
        gc: {
          scavenges: gc.scavenges - gcMark.scavenges,
          scavengeMs: Math.round(gc.scavengeMs - gcMark.scavengeMs),
          markCompacts: gc.markCompacts - gcMark.markCompacts,
          markCompactMs: Math.round(gc.markCompactMs - gcMark.markCompactMs),
        },
        elapsedMs: elapsed,
        cpuShareOfOneCore: (cpu.user + cpu.system) / 1000 / elapsed,
        cpuMainThreadMs: threads.main - threadMark.main,
        cpuHelperThreadsMs: threads.helpers - threadMark.helpers,
        rssMaxMB: Math.max(...rss) / 1e6,
        rssLastMB: rss.at(-1) / 1e6,
        rssFirstMB: rss[0] / 1e6,
        rssMinMB: Math.min(...rss) / 1e6,
        rssSeriesMB: rss.map((r) => Math.round(r / 1e5) / 10),
        heapUsedMB: mem.heapUsed / 1e6,
        tickLagP50: s.tickLagP50,
        tickLagP99: s.tickLagP99,
        tickLagMax: s.tickLagMax,
        ticks: s.ticks,
        overruns: s.overruns,
        propertyReads: totalReads() - readsMark,
        // Most reads of one property (sampled devices) in the window.
        maxPropertyReads: Math.max(0, ...[...perProperty].map(([k, n]) => n - (perPropertyMark.get(k) ?? 0))),
        consumerSamples: consumerCounts.map((c, i) => c - consumerMark[i]),
        devices: s.devices,
        connected: mapper.devices().filter((d) => d.connected).length,
        sampled: mapper.devices().filter((d) => d.values.size > 0).length,
        twinReports: s.twinReports,
        stateReports: s.stateReports,
      });
      break;
    }
    case 'stop': {
      clearInterval(rssTimer);
      await mapper?.stop();
      reply({});
      process.exit(0);
    }
  }
});
process.send?.({ cmd: 'ready' });
