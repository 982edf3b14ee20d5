// SPDX-License-Identifier: Apache-2.0
// Replay path of store-and-forward on its own (issue 4): RECORDS samples written to a sink's disk
// buffer, then drained by a SinkChannel into redis-server (appendonly yes, appendfsync always)
// with nothing else running in the mapper process. Reports CPU time per replayed record — of
// this process (all threads, user + system: disk reads, decoding, encoding, socket writes, GC)
// and of redis-server — which, unlike records/s, does not depend on what else the shared
// machine runs. Median of RUNS runs. Results: bench/results/data-plane-replay.json.
// Env: RECORDS (300000), RUNS (5).
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@mapperkit/framework';
import { SinkChannel } from '../packages/mapper-framework/src/sinks/channel.ts';
import { DiskQueue, type LineCodec } from '../packages/mapper-framework/src/sinks/disk-queue.ts';
import { decodeRecordLineLazy, encodeRecordLine } from '../packages/mapper-framework/src/sinks/record-line.ts';
import { createRedisWriter } from '../packages/mapper-framework/src/sinks/redis.ts';
import type { SinkRecord } from '../packages/mapper-framework/src/sinks/types.ts';
import { freePort, sleep, tempDir } from '../packages/mapper-framework/test/sinks-helpers.ts';

const root = new URL('..', import.meta.url).pathname;
const RECORDS = Number(process.env['RECORDS'] ?? 300_000);
const RUNS = Number(process.env['RUNS'] ?? 5);
const codec: LineCodec<SinkRecord> = { encode: encodeRecordLine, decode: decodeRecordLineLazy };
const log = createLogger({ level: 'silent' });
const round = (n: number, d = 2): number => Math.round(n * 10 ** d) / 10 ** d;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function procCpu(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

interface Run {
  recordsPerS: number;
  mapperCpuUsPerRecord: number;
  redisCpuUsPerRecord: number;
  writes: number;
}

async function once(): Promise<Run> {
  const { dir, cleanup } = tempDir('mkreplay-');
  const port = await freePort();
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always'], { stdio: 'ignore' });
  try {
    const opts = { dir: join(dir, 'buffer'), maxBytes: 256 * 1024 * 1024, maxAgeMs: 24 * 3600 * 1000, fsync: false };
    // 150 devices × 10 properties, as in bench/data-plane.ts.
    const q = await DiskQueue.open<SinkRecord>(opts, codec);
    const t0 = Date.now() - RECORDS;
    for (let i = 0; i < RECORDS; i += 10_000) {
      const batch: SinkRecord[] = [];
      for (let j = i; j < Math.min(RECORDS, i + 10_000); j++) {
        batch.push({ ns: 'default', dev: `dev-${j % 150}`, prop: `p${Math.floor(j / 150) % 10}`, type: j % 2 ? 'int' : 'float', val: String(j * 1.5), ts: t0 + j });
      }
      q.append(batch);
      await q.flush();
    }
    await q.close();
    await sleep(300);
    let writes = 0;
    const writer = createRedisWriter({ addr: `127.0.0.1:${port}`, db: 0 }, {
      credential: () => undefined,
      options: { httpBody: 'form', mqttPayload: 'json', mqttClientId: '', redisKeyTemplate: '{name}', influxFieldType: 'typed', mapperName: 'bench' },
      log,
    });
    await writer.ready?.(AbortSignal.timeout(10_000));
    let ch: SinkChannel | undefined;
    ch = new SinkChannel({
      spec: { kind: 'redis', addr: `127.0.0.1:${port}`, db: 0 },
      sink: 'redis:bench',
      writer,
      log,
      hooks: { onWrite: () => void writes++ },
      options: {
        queueCapacity: 50_000,
        batchSize: 1000,
        writeTimeoutMs: 10_000,
        retryInitialMs: 200,
        retryMaxMs: 1000,
        openBuffer: () => DiskQueue.open<SinkRecord>({ ...opts, onDrop: (r, n) => ch?.bufferDropped(r, n) }, codec),
        hasBacklog: true,
      },
    });
    const redisCpu0 = procCpu(redis.pid!);
    const cpu0 = process.cpuUsage();
    const w0 = performance.now();
    ch.start();
    while (ch.status().delivered < RECORDS) await sleep(50);
    const wall = (performance.now() - w0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const redisCpu = procCpu(redis.pid!) - redisCpu0;
    const st = ch.status();
    if (st.delivered !== RECORDS || Object.values(st.dropped).some((n) => n > 0)) throw new Error(`replay incomplete: ${JSON.stringify(st)}`);
    await ch.close(100);
    return {
      recordsPerS: Math.round(RECORDS / wall),
      mapperCpuUsPerRecord: round((cpu.user + cpu.system) / RECORDS),
      redisCpuUsPerRecord: round((redisCpu * 1e6) / RECORDS),
      writes,
    };
  } finally {
    redis.kill();
    await sleep(200);
    cleanup();
  }
}

const loadBefore = loadavg();
const runs: Run[] = [];
for (let i = 0; i < RUNS; i++) {
  const r = await once();
  console.log(`[data-plane-replay] run ${i + 1}/${RUNS}`, r);
  runs.push(r);
}
const result = {
  benchmark: 'data-plane-replay',
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, node: process.version, loadavgBefore: loadBefore.map((x) => round(x)), loadavgAfter: loadavg().map((x) => round(x)) },
  setup: {
    records: RECORDS,
    layout: '150 devices × 10 properties, upstream DataModel JSON members (~120 B)',
    sink: 'redis-server 7, appendonly yes, appendfsync always; one channel, nothing else in the process',
    note: 'CPU per record is the load-independent figure; records/s depends on what else the shared 2-core machine runs',
  },
  median: {
    recordsPerS: median(runs.map((r) => r.recordsPerS)),
    mapperCpuUsPerRecord: median(runs.map((r) => r.mapperCpuUsPerRecord)),
    redisCpuUsPerRecord: median(runs.map((r) => r.redisCpuUsPerRecord)),
    recordsPerWrite: Math.round(RECORDS / median(runs.map((r) => r.writes))),
  },
  runs,
};
console.log('[data-plane-replay]', result.median);
mkdirSync(join(root, 'bench', 'results'), { recursive: true });
writeFileSync(join(root, 'bench', 'results', 'data-plane-replay.json'), `${JSON.stringify(result, null, 2)}\n`);
console.log('[data-plane-replay] wrote bench/results/data-plane-replay.json');
process.exit(0);
