// SPDX-License-Identifier: Apache-2.0
// The fault-injection soak: one process tree on loopback —
//   edgecore-dmi (bin) ── DMI ── mapper-modbus (bin) ── Modbus TCP ── modbus-sim (bin) × K
//                                    │  └── one device through a proxy that cuts mid-frame
//                                    ├── Redis sink  → redis-server (AOF, password from a file)
//                                    └── MQTT sink   → mosquitto → counting subscriber (here)
// — and a fault schedule, logged, that kills and restarts the simulators, edgecore-dmi,
// redis-server and mosquitto, sends malformed DMI calls and bad YAML, and drops a device's
// TCP connection in the middle of a response frame. Afterwards production is stopped, the
// sinks drain, and every sample the mapper accepted for a sink is looked for in that sink.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import mqtt from 'mqtt';
import { nodeBin } from './bins.js';
import { abuseMapperDmi, type AbuseOutcome } from './dmi-abuse.js';
import { deviceName, fleetYaml, PUSHED_PROPERTIES } from './fleet.js';
import { mosquittoPeer, type Peer, redisPeer } from './peers.js';
import { httpRequest } from './http-client.js';
import { alive, childrenOf, fdsOf, freePort, freePortRange, listeningPorts, ManagedProcess, rssOf, sleep, socketsOf, until } from './procs.js';
import { type CutProxy, startCutProxy } from './proxy.js';
import { linearFit, mb, metric, parsePrometheus, percentile, round } from './stats.js';

export type FaultKind = 'sim-kill' | 'edgecore-kill' | 'redis-kill' | 'mosquitto-kill' | 'dmi-garbage' | 'bad-yaml' | 'cut-mid-frame';
export const ALL_FAULTS: readonly FaultKind[] = ['sim-kill', 'edgecore-kill', 'redis-kill', 'cut-mid-frame', 'mosquitto-kill', 'dmi-garbage', 'bad-yaml'];

export interface SoakOptions {
  /** Measured window (faults, then a quiet tail); setup and the final drain come on top. */
  readonly durationMs: number;
  readonly devices?: number;
  readonly simProcesses?: number;
  /** collectCycle = reportCycle of the pushed properties. */
  readonly cycleMs?: number;
  /** Resource sampling period. */
  readonly sampleEveryMs?: number;
  /** How long redis-server / mosquitto stay down; simulators stay down for half of it. */
  readonly outageMs?: number;
  /** Pause between two faults. */
  readonly gapMs?: number;
  /** Quiet tail without faults at the end of the measured window (default 15 % of it, at least 10 s). */
  readonly quietMs?: number;
  readonly faults?: readonly FaultKind[];
  /** Mapper log verbosity (`--v`). */
  readonly verbosity?: number;
  /** Work directory (default: a new temp dir, removed at the end unless keepWorkDir). */
  readonly workDir?: string;
  readonly keepWorkDir?: boolean;
  /** Progress lines. */
  readonly log?: (line: string) => void;
}

export interface FaultRecord {
  readonly kind: FaultKind;
  /** Seconds since the start of the measured window. */
  readonly atS: number;
  readonly tookMs: number;
  readonly ok: boolean;
  readonly details: Record<string, unknown>;
  readonly problems: string[];
}

export interface ResourceSample {
  readonly tS: number;
  readonly rssMB: number;
  readonly heapUsedMB: number;
  readonly heapTotalMB: number;
  readonly externalMB: number;
  readonly eventLoopLagP99Ms: number;
  readonly eventLoopLagMaxMs: number;
  readonly fds: number;
  readonly devicesOk: number;
  readonly edgecoreRssMB: number | undefined;
  readonly sinks: Record<string, { accepted: number; delivered: number; buffered: number; queued: number; state: string }>;
}

export interface SinkAccount {
  /** Samples the mapper routed to the sink (mapper_sink_accepted_total). */
  readonly produced: number;
  /** Distinct samples found in the sink (ZCARD / unique MQTT messages). */
  readonly delivered: number;
  /** produced − delivered (never negative unless the sink holds more than produced). */
  readonly missing: number;
  /** The mapper's own count of acknowledged records (includes re-sends). */
  readonly mapperDelivered: number;
  readonly mapperDropped: Record<string, number>;
  /** Messages received more than once (at-least-once delivery). */
  readonly duplicates: number;
  /** When missing > 0: the missing samples by second of the measured window (sample time), and a few of them. */
  readonly missingBySecond?: Record<string, number>;
  readonly missingExamples?: string[];
  readonly peakBufferedRecords: number;
  readonly drainMs: number;
}

export interface SoakReport {
  readonly benchmark: 'soak';
  readonly date: string;
  readonly machine: { cpus: number; model: string; node: string; loadavg1mAtStart: number; loadavg1mAtEnd: number; loadavgDuring: number[] };
  readonly config: Record<string, unknown>;
  readonly measuredS: number;
  readonly setupS: number;
  readonly faults: FaultRecord[];
  readonly faultCounts: Record<string, number>;
  readonly sinks: Record<'redis' | 'mqtt', SinkAccount>;
  readonly reRegistration: { count: number; msAfterSocket: number[]; msAfterRestart: number[]; maxMsAfterSocket: number; goalMs: number; devicesKept: boolean };
  readonly recovery: { simRestartMs: number[]; cutMidFrameMs: number[] };
  readonly memory: {
    rssStartMB: number;
    rssEndMB: number;
    rssMaxMB: number;
    heapUsedStartMB: number;
    heapUsedEndMB: number;
    secondHalf: { points: number; rssSlopeMBPerHour: number; rssResidualStdMB: number; heapUsedSlopeMBPerHour: number; heapUsedResidualStdMB: number };
    /**
     * The heap after garbage collection: the lowest heapUsed of each minute (the sawtooth's floor),
     * what a leak raises. With its least-squares slope over the second half.
     */
    heapFloor: { perMinuteMB: number[]; secondHalfSlopeMBPerHour: number; secondHalfResidualStdMB: number };
  };
  readonly eventLoopLag: { readings: number; p99MedianMs: number; p99P90Ms: number; p99MaxMs: number; maxMs: number; note: string };
  readonly fds: {
    start: number;
    end: number;
    /** Connections edgecore-dmi opened to the mapper's DMI socket (peer-driven: edgecore-dmi connects lazily, on its first call after a restart). */
    dmiInboundAtStart: number;
    dmiInboundAtEnd: number;
    /** start/end without those inbound DMI connections: what the mapper itself holds. */
    ownStart: number;
    ownEnd: number;
    startByKind: Record<string, number>;
    endByKind: Record<string, number>;
    socketsOnlyAtStart: string[];
    socketsOnlyAtEnd: string[];
  };
  readonly samples: ResourceSample[];
  readonly shutdown: Record<string, { code: number | null; signal: string | null }>;
  readonly leftovers: { processes: string[]; socketFiles: string[]; listeningPorts: number[] };
  readonly mapperUnexpectedExits: number;
  /** Every goal that was missed, in words (empty = all goals met). */
  readonly violations: string[];
}

interface DeviceRow {
  DeviceName: string;
  State: string;
}

const SINK_KINDS = ['redis', 'mqtt'] as const;

export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const N = opts.devices ?? 200;
  const K = Math.max(1, Math.min(opts.simProcesses ?? 2, N));
  const cycleMs = opts.cycleMs ?? 1000;
  const sampleEveryMs = opts.sampleEveryMs ?? 10_000;
  const outageMs = opts.outageMs ?? 8000;
  const gapMs = opts.gapMs ?? 5000;
  const quietMs = opts.quietMs ?? Math.max(10_000, Math.round(opts.durationMs * 0.15));
  const faults = opts.faults ?? ALL_FAULTS;
  const say = opts.log ?? ((l: string) => process.stderr.write(`[soak] ${l}\n`));
  const setupStart = Date.now();
  const loadStart = loadavg()[0]!;
  const loadDuring: number[] = [];
  const violations: string[] = [];
  const childrenBefore = new Set(childrenOf(process.pid).map((c) => c.pid));

  const work = opts.workDir ?? mkdtempSync(join(tmpdir(), 'mk-soak-'));
  for (const d of ['redis', 'mqtt', 'devices', 'buffer', 'secrets', 'logs']) mkdirSync(join(work, d), { recursive: true });
  const logs = join(work, 'logs');

  // Credentials: a Redis password and a REST write token, both from files (mounted Secrets).
  const redisPassword = randomBytes(18).toString('base64url');
  const restToken = randomBytes(24).toString('hex');
  writeFileSync(join(work, 'secrets', 'password'), `${redisPassword}\n`, { mode: 0o600 });
  writeFileSync(join(work, 'secrets', 'rest-token'), `${restToken}\n`, { mode: 0o600 });

  const procs: ManagedProcess[] = [];
  const peers: Peer[] = [];
  let proxy: CutProxy | undefined;
  let subscriber: mqtt.MqttClient | undefined;
  const seen = new Map<string, number>();
  const shutdown: Record<string, { code: number | null; signal: string | null }> = {};

  const redis = await redisPeer({ dir: join(work, 'redis'), password: redisPassword });
  const broker = await mosquittoPeer({ dir: join(work, 'mqtt') });
  peers.push(redis, broker);
  procs.push(redis.proc, broker.proc);
  const edgeHttp = await freePort();
  const restPort = await freePort();
  const edgeSock = join(work, 'dmi.sock');
  const mapperSock = join(work, 'mapper.sock');
  const edgeUrl = `http://127.0.0.1:${edgeHttp}`;
  const restUrl = `http://127.0.0.1:${restPort}`;

  const t0Holder = { t0: 0 };
  const sinceT0 = (t = Date.now()): number => round((t - t0Holder.t0) / 1000, 1);

  // ── helpers talking to the processes ──
  const getJson = async <T>(url: string, timeoutMs = 5000): Promise<T> => {
    const res = await httpRequest(url, { timeoutMs });
    if (res.status !== 200) throw new Error(`GET ${url}: ${res.status}`);
    return JSON.parse(res.body) as T;
  };
  const mapperDevices = async (): Promise<DeviceRow[]> => (await getJson<{ Data: DeviceRow[] }>(`${restUrl}/api/v1/device`)).Data;
  // Every scrape resets the mapper's event-loop-delay histogram (prom-client), so each reading covers the time since the previous scrape.
  const lagReadings: { tS: number; intervalMs: number; p99Ms: number; maxMs: number }[] = [];
  let lastScrape = 0;
  const scrape = async () => {
    const m = parsePrometheus((await httpRequest(`${restUrl}/metrics`, { timeoutMs: 5000 })).body);
    const now = Date.now();
    if (t0Holder.t0 > 0 && lastScrape > 0) {
      const p99 = metric(m, 'nodejs_eventloop_lag_p99_seconds');
      const max = metric(m, 'nodejs_eventloop_lag_max_seconds');
      if (p99 !== undefined && max !== undefined && p99 > 0) lagReadings.push({ tS: sinceT0(now), intervalMs: now - lastScrape, p99Ms: round(p99 * 1000, 2), maxMs: round(max * 1000, 2) });
    }
    lastScrape = now;
    return m;
  };
  const sinkLabel = (kind: 'redis' | 'mqtt'): string => (kind === 'redis' ? `redis:127.0.0.1:${redis.port}/0` : `mqtt:tcp://127.0.0.1:${broker.port}`);
  const sinkCounters = async () => {
    const m = await scrape();
    const out: Record<string, { accepted: number; delivered: number; buffered: number; queued: number; state: string; dropped: Record<string, number> }> = {};
    for (const k of SINK_KINDS) {
      const sink = m.find((s) => s.name === 'mapper_sink_accepted_total' && s.labels['kind'] === k)?.labels['sink'] ?? sinkLabel(k);
      const state = ['up', 'buffering', 'dropping'].find((st) => metric(m, 'mapper_sink_state', { kind: k, state: st }) === 1) ?? 'unknown';
      const dropped: Record<string, number> = {};
      for (const s of m) if (s.name === 'mapper_sink_dropped_total' && s.labels['kind'] === k && s.value > 0) dropped[s.labels['reason']!] = s.value;
      out[k] = {
        accepted: metric(m, 'mapper_sink_accepted_total', { kind: k, sink }) ?? 0,
        delivered: metric(m, 'mapper_sink_delivered_total', { kind: k, sink }) ?? 0,
        buffered: metric(m, 'mapper_sink_buffered_records', { kind: k, sink }) ?? 0,
        queued: metric(m, 'mapper_sink_queue_depth', { kind: k, sink }) ?? 0,
        state,
        dropped,
      };
    }
    return { metrics: m, sinks: out };
  };

  let mapper: ManagedProcess | undefined;
  let edge: ManagedProcess | undefined;
  const sims: ManagedProcess[] = [];
  const simOf: number[] = [];
  let ports: number[] = [];

  const records: FaultRecord[] = [];
  const samples: ResourceSample[] = [];
  const reRegAfterSocket: number[] = [];
  const reRegAfterRestart: number[] = [];
  let devicesKept = true;
  const simRecovery: number[] = [];
  const cutRecovery: number[] = [];
  const peakBuffered: Record<string, number> = { redis: 0, mqtt: 0 };
  let fdsStart: { total: number; byKind: Record<string, number> } = { total: 0, byKind: {} };
  let fdsEnd: { total: number; byKind: Record<string, number> } = { total: 0, byKind: {} };
  let socketsStart: string[] = [];
  let socketsEnd: string[] = [];
  const drainMs: Record<string, number> = { redis: 0, mqtt: 0 };
  let finalCounts: Awaited<ReturnType<typeof sinkCounters>>['sinks'] | undefined;
  const delivered: Record<string, number> = { redis: 0, mqtt: 0 };
  let mqttDuplicates = 0;
  let missingMqtt: { bySecond: Record<string, number>; examples: string[] } | undefined;
  let missingRedis: { bySecond: Record<string, number>; examples: string[] } | undefined;
  let leftovers: SoakReport['leftovers'] = { processes: [], socketFiles: [], listeningPorts: [] };
  let measuredMs = 0;

  try {
    await redis.start();
    await broker.start();
    say(`redis-server :${redis.port} (AOF always, password), mosquitto :${broker.port} (persistence) in ${work}`);

    // The counting subscriber: persistent session, QoS 1, so nothing published while it or the broker is away is lost.
    subscriber = mqtt.connect(`mqtt://127.0.0.1:${broker.port}`, { clientId: `soak-counter-${randomBytes(4).toString('hex')}`, clean: false, reconnectPeriod: 250, connectTimeout: 5000 });
    subscriber.on('message', (_topic, payload) => {
      try {
        const m = JSON.parse(payload.toString()) as { DeviceName: string; PropertyName: string; TimeStamp: number };
        const key = `${m.DeviceName}|${m.PropertyName}|${m.TimeStamp}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
      } catch {
        seen.set(`unparsable|${payload.toString().slice(0, 60)}`, 1);
      }
    });
    subscriber.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      subscriber!.once('connect', () => subscriber!.subscribe('soak/#', { qos: 1 }, (err) => (err ? reject(err) : resolve())));
    });

    // Simulators: K processes, consecutive ports each.
    const per = Math.ceil(N / K);
    for (let k = 0; k < K; k++) {
      const count = Math.min(per, N - k * per);
      const base = await freePortRange(count);
      const { cmd, args } = nodeBin('modbus-sim', ['--port', String(base), '--count', String(count), '--period-ms', '1000']);
      const sim = new ManagedProcess({ name: `modbus-sim-${k}`, cmd, args, logFile: join(logs, `modbus-sim-${k}.log`) });
      sim.start();
      await sim.waitForOutput(/"ready":true/, 60_000);
      sims.push(sim);
      procs.push(sim);
      for (let i = 0; i < count; i++) {
        ports.push(base + i);
        simOf.push(k);
      }
    }
    proxy = await startCutProxy(ports[0]!);
    ports = [proxy.port, ...ports.slice(1)];
    say(`${K} modbus-sim processes, ${N} devices (device ${deviceName(0)} through the cut proxy :${proxy.port})`);

    writeFileSync(join(work, 'devices', 'fleet.yaml'), fleetYaml({ ports, cycleMs, mqttPort: broker.port, redisPort: redis.port }));
    {
      const { cmd, args } = nodeBin('edgecore-dmi', ['serve', '--socket', edgeSock, '--devices', join(work, 'devices'), '--http', `127.0.0.1:${edgeHttp}`, '--db', join(work, 'edgecore.db'), '--log-level', 'warn']);
      edge = new ManagedProcess({ name: 'edgecore-dmi', cmd, args, logFile: join(logs, 'edgecore-dmi.log') });
      procs.push(edge);
      edge.start();
      await until(() => socketAccepts(edgeSock), 60_000, 'the edgecore-dmi socket');
    }
    const cfg = join(work, 'mapper-config.yaml');
    writeFileSync(
      cfg,
      [
        'grpc_server:',
        `  socket_path: ${mapperSock}`,
        'common:',
        '  name: soak-modbus',
        '  protocol: modbus',
        `  edgecore_sock: ${edgeSock}`,
        `  http_port: ${restPort}`,
        'rest:',
        `  write_token_file: ${join(work, 'secrets', 'rest-token')}`,
        'data_plane:',
        `  buffer_dir: ${join(work, 'buffer')}`,
        `  credentials_dir: ${join(work, 'secrets')}`,
        '  mqtt:',
        '    payload: json',
        '',
      ].join('\n'),
    );
    {
      const { cmd, args } = nodeBin('mapper-modbus', ['--config-file', cfg, '--v', String(opts.verbosity ?? 1)]);
      mapper = new ManagedProcess({ name: 'mapper-modbus', cmd, args, logFile: join(logs, 'mapper-modbus.log') });
      procs.push(mapper);
      mapper.start();
    }
    await until(
      async () => {
        try {
          const rows = await mapperDevices();
          return rows.length === N && rows.every((r) => r.State === 'ok');
        } catch {
          return false;
        }
      },
      180_000,
      `all ${N} devices ok in the mapper`,
      500,
    );
    // One full cycle of samples so every sink channel exists before the baseline.
    await until(async () => Object.values((await sinkCounters()).sinks).every((s) => s.delivered > 0), 30_000, 'both sinks delivering', 500);
    const setupS = round((Date.now() - setupStart) / 1000, 1);
    say(`setup done in ${setupS} s; measuring for ${opts.durationMs / 1000} s (faults, then ${quietMs / 1000} s quiet)`);

    // ── measured window ──
    t0Holder.t0 = Date.now();
    const tEnd = t0Holder.t0 + opts.durationMs;
    const faultEnd = tEnd - quietMs;
    await sleep(500);
    fdsStart = fdsOf(mapper.pid!) ?? fdsStart;
    socketsStart = socketsOf(mapper.pid!);

    let sampling = true;
    const sampler = (async () => {
      let next = t0Holder.t0;
      while (sampling) {
        try {
          const { metrics: m, sinks } = await sinkCounters();
          let ok = 0;
          try {
            ok = (await mapperDevices()).filter((r) => r.State === 'ok').length;
          } catch {
            ok = -1;
          }
          const edgeRss = edge?.pid && edge.running ? rssOf(edge.pid) : undefined;
          samples.push({
            tS: sinceT0(),
            rssMB: mb(metric(m, 'process_resident_memory_bytes') ?? rssOf(mapper!.pid!) ?? 0),
            heapUsedMB: mb(metric(m, 'nodejs_heap_size_used_bytes') ?? 0),
            heapTotalMB: mb(metric(m, 'nodejs_heap_size_total_bytes') ?? 0),
            externalMB: mb(metric(m, 'nodejs_external_memory_bytes') ?? 0),
            eventLoopLagP99Ms: round((metric(m, 'nodejs_eventloop_lag_p99_seconds') ?? Number.NaN) * 1000, 2),
            eventLoopLagMaxMs: round((metric(m, 'nodejs_eventloop_lag_max_seconds') ?? Number.NaN) * 1000, 2),
            fds: metric(m, 'process_open_fds') ?? fdsOf(mapper!.pid!)?.total ?? 0,
            devicesOk: ok,
            edgecoreRssMB: edgeRss === undefined ? undefined : mb(edgeRss),
            sinks: Object.fromEntries(Object.entries(sinks).map(([k, s]) => [k, { accepted: s.accepted, delivered: s.delivered, buffered: s.buffered, queued: s.queued, state: s.state }])),
          });
          loadDuring.push(round(loadavg()[0]!, 2));
        } catch (err) {
          say(`sample at ${sinceT0()} s failed: ${(err as Error).message}`);
        }
        next += sampleEveryMs;
        while (sampling && Date.now() < next) await sleep(Math.min(250, next - Date.now()));
      }
    })();

    // Watches sink backlogs during outages.
    const watchBacklog = async (stopAt: () => boolean): Promise<void> => {
      while (!stopAt()) {
        try {
          const { sinks } = await sinkCounters();
          for (const k of SINK_KINDS) peakBuffered[k] = Math.max(peakBuffered[k]!, sinks[k]!.buffered + sinks[k]!.queued);
        } catch {
          // mapper busy; next round
        }
        await sleep(500);
      }
    };

    const statesOk = async (names: readonly string[]): Promise<boolean> => {
      const rows = await mapperDevices();
      const set = new Set(names);
      return rows.filter((r) => set.has(r.DeviceName)).every((r) => r.State === 'ok') && rows.filter((r) => set.has(r.DeviceName)).length === names.length;
    };
    const allNames = ports.map((_, i) => deviceName(i));

    let simTurn = 0;
    const runFault = async (kind: FaultKind): Promise<FaultRecord> => {
      const start = Date.now();
      const details: Record<string, unknown> = {};
      const problems: string[] = [];
      const fdsBefore = fdsOf(mapper!.pid!)?.total;
      try {
        switch (kind) {
          case 'sim-kill': {
            const k = simTurn++ % sims.length;
            const sim = sims[k]!;
            const names = allNames.filter((_, i) => simOf[i] === k);
            details['simulator'] = sim.spec.name;
            details['devices'] = names.length;
            await sim.stop('SIGKILL');
            let sawOffline = 0;
            const downUntil = Date.now() + Math.max(2000, outageMs / 2);
            while (Date.now() < downUntil) {
              try {
                const rows = await mapperDevices();
                sawOffline = Math.max(sawOffline, rows.filter((r) => names.includes(r.DeviceName) && r.State !== 'ok').length);
              } catch {
                // ignore
              }
              await sleep(500);
            }
            details['devicesSeenNotOk'] = sawOffline;
            sim.start();
            await sim.waitForOutput(/"ready":true/, 60_000);
            const up = Date.now();
            await until(() => statesOk(names), 90_000, `devices of ${sim.spec.name} ok again`, 250);
            const ms = Date.now() - up;
            simRecovery.push(ms);
            details['recoveryMs'] = ms;
            if (sawOffline === 0) problems.push(`no device of the killed simulator was ever reported not ok`);
            break;
          }
          case 'edgecore-kill': {
            const e = edge!;
            await e.stop('SIGKILL');
            await sleep(1000);
            const spawnAt = Date.now();
            e.start();
            await until(() => socketAccepts(edgeSock), 60_000, 'the restarted edgecore-dmi socket', 20);
            const sockAt = Date.now();
            let regAt = 0;
            let view: { registeredAt: number; devices: number } | undefined;
            await until(
              async () => {
                try {
                  const ms = await getJson<{ name: string; registeredAt: number; devices: number }[]>(`${edgeUrl}/api/v1/mappers`, 2000);
                  view = ms.find((m) => m.name === 'soak-modbus' && m.registeredAt >= spawnAt);
                  if (view) regAt = view.registeredAt;
                  return view !== undefined;
                } catch {
                  return false;
                }
              },
              30_000,
              'MapperRegister at the restarted edgecore-dmi',
              50,
            );
            const afterSock = Math.max(0, regAt - sockAt);
            reRegAfterSocket.push(afterSock);
            reRegAfterRestart.push(regAt - spawnAt);
            details['reRegistrationMsAfterSocket'] = afterSock;
            details['reRegistrationMsAfterRestart'] = regAt - spawnAt;
            const rows = await mapperDevices();
            details['mapperDevicesAfter'] = rows.length;
            details['mapperDevicesOkAfter'] = rows.filter((r) => r.State === 'ok').length;
            details['edgecoreSeesDevices'] = view?.devices;
            if (rows.length !== N) {
              devicesKept = false;
              problems.push(`mapper has ${rows.length} devices after re-registration, not ${N}`);
            }
            if (afterSock > 5000) problems.push(`re-registration took ${afterSock} ms after the socket came back (goal 5000)`);
            break;
          }
          case 'redis-kill':
          case 'mosquitto-kill': {
            const peer = kind === 'redis-kill' ? redis : broker;
            const sinkKind = kind === 'redis-kill' ? 'redis' : 'mqtt';
            await peer.proc.stop('SIGKILL');
            let stop = false;
            const watcher = watchBacklog(() => stop);
            await sleep(outageMs);
            const before = (await sinkCounters()).sinks[sinkKind]!;
            details['stateWhileDown'] = before.state;
            details['backlogWhileDown'] = before.buffered + before.queued;
            await peer.start();
            const up = Date.now();
            await until(
              async () => {
                const s = (await sinkCounters()).sinks[sinkKind]!;
                return s.state === 'up' && s.buffered === 0 && s.queued < 1000;
              },
              120_000,
              `${sinkKind} backlog replayed`,
              250,
            );
            stop = true;
            await watcher;
            details['replayMs'] = Date.now() - up;
            break;
          }
          case 'dmi-garbage': {
            const target = deviceName(Math.min(7, N - 1));
            const outcomes: AbuseOutcome[] = await abuseMapperDmi(mapperSock, { existing: target });
            details['calls'] = outcomes.map((o) => `${o.call} → ${o.code}`);
            for (const o of outcomes) if (!o.ok) problems.push(`${o.call}: got ${o.code}, expected ${o.expected.join('/')}${o.detail ? ` (${o.detail})` : ''}`);
            const rows = await mapperDevices();
            details['mapperDevicesAfter'] = rows.length;
            if (rows.length !== N) problems.push(`mapper has ${rows.length} devices after malformed calls, not ${N}`);
            await until(() => statesOk([target]), 15_000, `${target} still ok`, 250).catch(() => problems.push(`${target} not ok after its refused UpdateDevice`));
            break;
          }
          case 'bad-yaml': {
            const dir = join(work, 'devices');
            writeFileSync(join(dir, 'zz-bad-syntax.yaml'), 'apiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {name: [unclosed\n  spec: : :\n');
            writeFileSync(
              join(dir, 'zz-bad-config.yaml'),
              fleetYaml({ ports: [ports[1] ?? ports[0]!], cycleMs, mqttPort: broker.port, redisPort: redis.port, namePrefix: 'soak-badcfg' })
                .split('---\n')
                .slice(1)
                .join('')
                .replace('register: HoldingRegister', 'register: NoSuchTable'),
            );
            const applied: number[] = [];
            for (const body of ['{{{ not yaml', '- just\n- a\n- list\n', Buffer.from(randomBytes(2048)).toString('latin1')]) {
              applied.push((await httpRequest(`${edgeUrl}/api/v1/apply?source=soak`, { method: 'POST', body, timeoutMs: 5000 })).status);
            }
            details['apiApplyStatuses'] = applied;
            if (applied.some((s) => s < 400 || s >= 500)) problems.push(`edgecore-dmi apply of bad YAML answered ${applied.join(', ')} (expected 4xx)`);
            let problemsSeen: string[] = [];
            await until(
              async () => {
                const ps = await getJson<{ message?: string; source?: string; origin?: { source: string } }[]>(`${edgeUrl}/api/v1/problems`, 3000);
                problemsSeen = ps.map((p) => JSON.stringify(p));
                return problemsSeen.some((p) => p.includes('zz-bad-syntax')) && problemsSeen.some((p) => p.includes('NoSuchTable') || p.includes('soak-badcfg'));
              },
              20_000,
              'edgecore-dmi to report both bad files',
              250,
            ).catch(() => problems.push(`edgecore-dmi did not report both bad files: ${problemsSeen.slice(0, 5).join(' | ').slice(0, 600)}`));
            const rows = await mapperDevices();
            details['mapperDevicesWithBadFiles'] = rows.length;
            if (rows.some((r) => r.DeviceName.startsWith('soak-badcfg'))) problems.push('the mapper runs the device whose register is NoSuchTable');
            unlinkSync(join(dir, 'zz-bad-syntax.yaml'));
            unlinkSync(join(dir, 'zz-bad-config.yaml'));
            await sleep(3000);
            const after = await mapperDevices();
            details['mapperDevicesAfter'] = after.length;
            if (after.length !== N) problems.push(`mapper has ${after.length} devices after the bad files were removed, not ${N}`);
            break;
          }
          case 'cut-mid-frame': {
            const dev = deviceName(0);
            const cutAt = Date.now();
            const cut = await proxy!.cutNextResponse(15_000);
            details['forwardedBytes'] = cut.forwarded;
            details['frameBytes'] = cut.frameBytes;
            let fresh = 0;
            await until(
              async () => {
                try {
                  const r = await getJson<{ Data: { TimeStamp: number } }>(`${restUrl}/api/v1/device/default/${dev}/temperature`, 2000);
                  fresh = r.Data.TimeStamp;
                  return fresh > cutAt + 100 && (await statesOk([dev]));
                } catch {
                  return false;
                }
              },
              60_000,
              `${dev} reading again after the cut`,
              100,
            );
            const ms = Date.now() - cutAt;
            cutRecovery.push(ms);
            details['recoveryMs'] = ms;
            details['proxyConnections'] = proxy!.connections();
            break;
          }
        }
      } catch (err) {
        problems.push((err as Error).message);
      }
      if (!mapper!.running) problems.push('the mapper process is gone');
      await sleep(1000);
      details['mapperFds'] = `${fdsBefore} -> ${fdsOf(mapper!.pid!)?.total}`;
      const rec: FaultRecord = { kind, atS: sinceT0(start), tookMs: Date.now() - start, ok: problems.length === 0, details, problems };
      say(`${rec.atS.toFixed(1)} s ${kind}: ${rec.ok ? 'ok' : `PROBLEM ${problems.join('; ')}`} ${JSON.stringify(details)}`);
      return rec;
    };

    // Faults, round-robin, until the quiet tail.
    let i = 0;
    while (Date.now() < faultEnd - 5000) {
      const kind = faults[i++ % faults.length]!;
      records.push(await runFault(kind));
      if (!mapper.running) break;
      await sleep(gapMs);
    }
    while (Date.now() < tEnd) await sleep(250);
    sampling = false;
    await sampler;
    measuredMs = Date.now() - t0Holder.t0;
    await sleep(500);
    fdsEnd = fdsOf(mapper.pid!) ?? fdsEnd;
    socketsEnd = socketsOf(mapper.pid!);

    // ── stop production, let the sinks drain, count what arrived ──
    for (const sim of sims) await sim.stop('SIGTERM');
    const drainStart = Date.now();
    await sleep(Math.max(3000, cycleMs * 3));
    for (const k of SINK_KINDS) {
      try {
        await until(
          async () => {
            const s = (await sinkCounters()).sinks[k]!;
            return s.buffered === 0 && s.queued === 0 && s.delivered >= s.accepted - Object.values(s.dropped).reduce((a, b) => a + b, 0);
          },
          180_000,
          `${k} sink drained`,
          500,
        );
      } catch (err) {
        violations.push((err as Error).message);
      }
      drainMs[k] = Date.now() - drainStart;
    }
    finalCounts = (await sinkCounters()).sinks;
    // Redis: one sorted set per device; members are the distinct DataModel JSON documents.
    const rc = new Redis({ host: '127.0.0.1', port: redis.port, password: redisPassword, lazyConnect: true, maxRetriesPerRequest: 2 });
    await rc.connect();
    const pipe = rc.pipeline();
    for (let d = 0; d < N; d++) pipe.zcard(deviceName(d));
    delivered['redis'] = ((await pipe.exec()) ?? []).reduce((a, [, n]) => a + Number(n ?? 0), 0);
    rc.disconnect();
    // MQTT: wait until the subscriber has seen as many distinct samples as produced (or it stops growing).
    let last = -1;
    let stableSince = Date.now();
    while (Date.now() - stableSince < 5000 && seen.size < finalCounts['mqtt']!.accepted) {
      if (seen.size !== last) {
        last = seen.size;
        stableSince = Date.now();
      }
      await sleep(250);
    }
    delivered['mqtt'] = [...seen.keys()].filter((k) => !k.startsWith('unparsable|')).length;
    if (delivered['mqtt'] < finalCounts['mqtt']!.accepted) missingMqtt = await missingSamples(redis.port, redisPassword, N, seen, t0Holder.t0);
    if (delivered['redis'] < finalCounts['redis']!.accepted && seen.size > 0) missingRedis = await missingSamples(redis.port, redisPassword, N, seen, t0Holder.t0, true);
    mqttDuplicates = [...seen.values()].reduce((a, n) => a + (n - 1), 0);
  } finally {
    // ── shutdown and leftovers ──
    try {
      if (mapper) shutdown['mapper-modbus'] = await mapper.stop('SIGTERM', 20_000);
      if (edge) shutdown['edgecore-dmi'] = await edge.stop('SIGTERM', 15_000);
      for (const sim of sims) shutdown[sim.spec.name] = await sim.stop('SIGTERM');
      await proxy?.close();
      await subscriber?.endAsync(true).catch(() => undefined);
      for (const p of peers) shutdown[p.name] = await p.proc.stop('SIGTERM');
      for (const p of procs) await p.close();
      await sleep(200);
      const leftProcs = procs.flatMap((p) => p.pids.filter(alive).map((pid) => `${p.spec.name} pid ${pid}`));
      for (const c of childrenOf(process.pid)) if (!childrenBefore.has(c.pid)) leftProcs.push(`child ${c.comm} pid ${c.pid}`);
      const used = new Set<number>([redis.port, broker.port, edgeHttp, restPort, ...ports, ...(proxy ? [proxy.port] : [])]);
      const listening = [...listeningPorts()].filter((p) => used.has(p));
      leftovers = { processes: leftProcs, socketFiles: [edgeSock, mapperSock].filter((f) => existsSync(f)), listeningPorts: listening };
    } finally {
      if (!opts.keepWorkDir && !opts.workDir) rmSync(work, { recursive: true, force: true });
    }
  }

  // ── the report ──
  const p99s = lagReadings.map((r) => r.p99Ms);
  const sinks = {} as Record<'redis' | 'mqtt', SinkAccount>;
  for (const k of SINK_KINDS) {
    const f = finalCounts?.[k];
    const produced = f?.accepted ?? 0;
    sinks[k] = {
      produced,
      delivered: delivered[k]!,
      missing: produced - delivered[k]!,
      mapperDelivered: f?.delivered ?? 0,
      mapperDropped: f?.dropped ?? {},
      duplicates: k === 'mqtt' ? mqttDuplicates : 0,
      peakBufferedRecords: peakBuffered[k]!,
      drainMs: drainMs[k]!,
      ...((k === 'mqtt' ? missingMqtt : missingRedis) ? { missingBySecond: (k === 'mqtt' ? missingMqtt : missingRedis)!.bySecond, missingExamples: (k === 'mqtt' ? missingMqtt : missingRedis)!.examples } : {}),
    };
    if (produced === 0) violations.push(`${k}: nothing produced`);
    if (produced !== delivered[k]) violations.push(`${k}: produced ${produced}, delivered ${delivered[k]} (${produced - delivered[k]!} missing)`);
    if (Object.keys(sinks[k].mapperDropped).length > 0) violations.push(`${k}: the mapper dropped ${JSON.stringify(sinks[k].mapperDropped)}`);
  }
  for (const r of records) if (!r.ok) violations.push(`fault ${r.kind} at ${r.atS} s: ${r.problems.join('; ')}`);
  const mapperExits = procs.find((p) => p.spec.name === 'mapper-modbus')?.unexpectedExits.length ?? 0;
  if (mapperExits > 0) violations.push(`the mapper exited unexpectedly ${mapperExits} time(s)`);
  if (shutdown['mapper-modbus'] && shutdown['mapper-modbus'].code !== 0) violations.push(`mapper exit on SIGTERM: ${JSON.stringify(shutdown['mapper-modbus'])}`);
  if (shutdown['edgecore-dmi'] && shutdown['edgecore-dmi'].code !== 0) violations.push(`edgecore-dmi exit on SIGTERM: ${JSON.stringify(shutdown['edgecore-dmi'])}`);
  const inbound = (socks: readonly string[]): number => Math.max(0, socks.filter((x) => x === `unix ${mapperSock}`).length - 1);
  const fdsReport = {
    start: fdsStart.total,
    end: fdsEnd.total,
    dmiInboundAtStart: inbound(socketsStart),
    dmiInboundAtEnd: inbound(socketsEnd),
    ownStart: fdsStart.total - inbound(socketsStart),
    ownEnd: fdsEnd.total - inbound(socketsEnd),
    startByKind: fdsStart.byKind,
    endByKind: fdsEnd.byKind,
    ...socketDiff(socketsStart, socketsEnd),
  };
  if (fdsReport.ownEnd !== fdsReport.ownStart) violations.push(`mapper file descriptors (without inbound DMI connections): ${fdsReport.ownStart} at start, ${fdsReport.ownEnd} at end; only at start ${JSON.stringify(fdsReport.socketsOnlyAtStart)}, only at end ${JSON.stringify(fdsReport.socketsOnlyAtEnd)}`);
  if (fdsReport.dmiInboundAtEnd > 1) violations.push(`${fdsReport.dmiInboundAtEnd} inbound DMI connections at the end (one edgecore-dmi)`);
  if (leftovers.processes.length + leftovers.socketFiles.length + leftovers.listeningPorts.length > 0) violations.push(`left behind: ${JSON.stringify(leftovers)}`);
  const counts: Record<string, number> = {};
  for (const r of records) counts[r.kind] = (counts[r.kind] ?? 0) + 1;
  for (const f of faults) if (!counts[f]) violations.push(`fault ${f} never ran (window too short)`);

  return {
    benchmark: 'soak',
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '', node: process.version, loadavg1mAtStart: round(loadStart, 2), loadavg1mAtEnd: round(loadavg()[0]!, 2), loadavgDuring: loadDuring },
    config: { devices: N, simulatorProcesses: K, cycleMs, pushedPropertiesPerDevice: PUSHED_PROPERTIES.length, sinks: ['redis (AOF always, password from credentials_dir)', 'mqtt QoS 1 (mosquitto persistence)'], outageMs, gapMs, quietMs, sampleEveryMs, durationMs: opts.durationMs, faults },
    measuredS: round(measuredMs / 1000, 1),
    setupS: round((t0Holder.t0 - setupStart) / 1000, 1),
    faults: records,
    faultCounts: counts,
    sinks,
    reRegistration: {
      count: reRegAfterSocket.length,
      msAfterSocket: reRegAfterSocket,
      msAfterRestart: reRegAfterRestart,
      maxMsAfterSocket: reRegAfterSocket.length ? Math.max(...reRegAfterSocket) : 0,
      goalMs: 5000,
      devicesKept,
    },
    recovery: { simRestartMs: simRecovery, cutMidFrameMs: cutRecovery },
    memory: summarizeMemory(samples, measuredMs / 1000, sampleEveryMs),
    eventLoopLag: {
      readings: p99s.length,
      p99MedianMs: round(percentile(p99s, 50), 2),
      p99P90Ms: round(percentile(p99s, 90), 2),
      p99MaxMs: round(Math.max(0, ...p99s), 2),
      maxMs: round(Math.max(0, ...lagReadings.map((r) => r.maxMs)), 2),
      note: "the mapper's own prom-client gauges (perf_hooks.monitorEventLoopDelay, 10 ms resolution). prom-client resets the histogram at every scrape, so each reading is the p99 since the previous scrape: every 10 s, and every 0.5 s while a sink outage is watched. p99MedianMs/p99P90Ms/p99MaxMs summarise those readings; maxMs is the longest single delay seen",
    },
    fds: fdsReport,
    samples,
    shutdown,
    leftovers,
    mapperUnexpectedExits: mapperExits,
    violations,
  };
}

/** Whether a unix socket accepts a connection (a stale socket file does not). */
function socketAccepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Sockets present at only one of two moments (multiset difference both ways). */
function socketDiff(a: readonly string[], b: readonly string[]): { socketsOnlyAtStart: string[]; socketsOnlyAtEnd: string[] } {
  const count = (xs: readonly string[]): Map<string, number> => {
    const m = new Map<string, number>();
    // Ephemeral local ports change across reconnects; compare by remote end and state.
    for (const x of xs) {
      const k = x.replace(/^tcp :\d+ -> /, 'tcp -> ');
      m.set(k, (m.get(k) ?? 0) + 1);
    }
    return m;
  };
  const ca = count(a);
  const cb = count(b);
  const only = (x: Map<string, number>, y: Map<string, number>): string[] => [...x].flatMap(([k, n]) => Array<string>(Math.max(0, n - (y.get(k) ?? 0))).fill(k));
  return { socketsOnlyAtStart: only(ca, cb), socketsOnlyAtEnd: only(cb, ca) };
}

/**
 * Samples present in one sink and not the other (each sink's content is the other's reference):
 * `inRedisNotMqtt` false → keys seen on MQTT but missing from Redis. Grouped by second since t0.
 */
async function missingSamples(
  redisPort: number,
  password: string,
  devices: number,
  mqttSeen: ReadonlyMap<string, number>,
  t0: number,
  redisMissing = false,
): Promise<{ bySecond: Record<string, number>; examples: string[] }> {
  const rc = new Redis({ host: '127.0.0.1', port: redisPort, password, lazyConnect: true, maxRetriesPerRequest: 2 });
  await rc.connect();
  const inRedis = new Set<string>();
  try {
    for (let d = 0; d < devices; d++) {
      for (const member of await rc.zrange(deviceName(d), '0', '-1')) {
        const m = JSON.parse(member) as { DeviceName: string; PropertyName: string; TimeStamp: number };
        inRedis.add(`${m.DeviceName}|${m.PropertyName}|${m.TimeStamp}`);
      }
    }
  } finally {
    rc.disconnect();
  }
  const missing = redisMissing ? [...mqttSeen.keys()].filter((k) => !inRedis.has(k)) : [...inRedis].filter((k) => !mqttSeen.has(k));
  const bySecond: Record<string, number> = {};
  for (const k of missing) {
    const sec = String(Math.floor((Number(k.split('|')[2]) - t0) / 1000));
    bySecond[sec] = (bySecond[sec] ?? 0) + 1;
  }
  return { bySecond, examples: missing.slice(0, 5) };
}

/**
 * Memory figures from the resource samples: start/end/max, least-squares slopes of RSS and heap
 * over the second half, and the heap floor (lowest heapUsed of each complete minute: the heap after
 * garbage collection, which a leak raises) with its second-half slope.
 */
export function summarizeMemory(samples: readonly ResourceSample[], measuredS: number, sampleEveryMs: number): SoakReport['memory'] {
  const half = measuredS / 2;
  const second = samples.filter((s) => s.tS >= half);
  const hours = (s: ResourceSample): number => s.tS / 3600;
  const rssFit = linearFit(second.map(hours), second.map((s) => s.rssMB));
  const heapFit = linearFit(second.map(hours), second.map((s) => s.heapUsedMB));
  const buckets = new Map<number, number[]>();
  for (const s of samples) {
    const minute = Math.floor(s.tS / 60);
    buckets.set(minute, [...(buckets.get(minute) ?? []), s.heapUsedMB]);
  }
  // Only minutes with most of their samples (the last, partial minute would be one sample, not a floor).
  const need = Math.max(1, Math.floor(60_000 / sampleEveryMs / 2) + 1);
  const floors = [...buckets].filter(([, v]) => v.length >= need).map(([m, v]) => ({ tS: m * 60 + 30, mb: Math.min(...v) }));
  const late = floors.filter((f) => f.tS >= half);
  const floorFit = linearFit(late.map((f) => f.tS / 3600), late.map((f) => f.mb));
  return {
    rssStartMB: samples[0]?.rssMB ?? 0,
    rssEndMB: samples.at(-1)?.rssMB ?? 0,
    rssMaxMB: Math.max(0, ...samples.map((s) => s.rssMB)),
    heapUsedStartMB: samples[0]?.heapUsedMB ?? 0,
    heapUsedEndMB: samples.at(-1)?.heapUsedMB ?? 0,
    secondHalf: {
      points: second.length,
      rssSlopeMBPerHour: round(rssFit.slope, 2),
      rssResidualStdMB: round(rssFit.residualStd, 2),
      heapUsedSlopeMBPerHour: round(heapFit.slope, 2),
      heapUsedResidualStdMB: round(heapFit.residualStd, 2),
    },
    heapFloor: { perMinuteMB: floors.map((f) => f.mb), secondHalfSlopeMBPerHour: round(floorFit.slope, 2), secondHalfResidualStdMB: round(floorFit.residualStd, 2) },
  };
}
