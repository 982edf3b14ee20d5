// SPDX-License-Identifier: Apache-2.0
// The data plane: a SampleConsumer that routes each property's samples to the sinks its
// pushMethod names, at the property's reportCycle, through one channel per sink connection.
//
// Cadence: with `data_plane.push_mode: cycle` (default) a property ships at most one sample per
// reportCycle to its sinks — the latest one, as upstream reads the device once per
// reportCycle — and when reportCycle <= collectCycle every sample is shipped (never the same
// sample twice). `every_sample` ships every sample read.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { MapperConfig } from '../config.js';
import type { PushMethod } from '../generated/v1beta1/api.js';
import type { Sample, SampleConsumer } from '../sample.js';
import { type ChannelHooks, SinkChannel, type SinkStatus } from './channel.js';
import { lookupCredential } from './credentials.js';
import { dataModelJson } from './data-model.js';
import { DiskQueue, type LineCodec } from './disk-queue.js';
import { decodeRecordLine, decodeRecordLineLazy, encodeRecordLine } from './record-line.js';
import { channelDirName, channelKey, channelLabel, parsePushMethod, type Target } from './targets.js';
import { type ChannelSpec, type CredentialName, type SinkRecord, type SinkWriter, WRITER_HINTS, type WriterContext, type WriterHints, type WriterOptions } from './types.js';

export type { SinkStatus, SinkState } from './channel.js';

/** Creates the writer of a channel; replaceable for tests. */
export type WriterFactory = (spec: ChannelSpec, ctx: WriterContext) => SinkWriter;

/**
 * A writer whose module (and client library: ioredis, mqtt, mysql2, @tdengine/rest) is loaded on
 * first use, so a mapper without that sink never pays for the library in memory or start-up time.
 */
function lazyWriter(load: () => Promise<SinkWriter>, hints: WriterHints = {}): SinkWriter {
  let writer: Promise<SinkWriter> | undefined;
  let closed = false;
  const get = (): Promise<SinkWriter> => (writer ??= load());
  return {
    ...hints,
    async write(records, signal) {
      return (await get()).write(records, signal);
    },
    async ready(signal) {
      const w = await get();
      await w.ready?.(signal);
    },
    async close() {
      if (closed) return;
      closed = true;
      if (writer) await (await writer.catch(() => undefined))?.close();
    },
  };
}

export const defaultWriterFactory: WriterFactory = (spec, ctx) => {
  switch (spec.kind) {
    case 'http':
      return lazyWriter(async () => (await import('./http.js')).createHttpWriter(spec, ctx));
    case 'mqtt':
      return lazyWriter(async () => (await import('./mqtt.js')).createMqttWriter(spec, ctx));
    case 'otel':
      return lazyWriter(async () => (await import('./otel.js')).createOtelWriter(spec, ctx));
    case 'redis':
      return lazyWriter(async () => (await import('./redis.js')).createRedisWriter(spec, ctx), WRITER_HINTS.redis);
    case 'tdengine':
      return lazyWriter(async () => (await import('./tdengine.js')).createTdengineWriter(spec, ctx));
    case 'mysql':
      return lazyWriter(async () => (await import('./mysql.js')).createMysqlWriter(spec, ctx));
    case 'influxdb2':
      return lazyWriter(async () => (await import('./influxdb2.js')).createInfluxWriter(spec, ctx));
  }
};

export interface DataPlaneOptions {
  readonly config: MapperConfig;
  readonly log: Logger;
  /** collectCycle of a property (decides whether every sample is shipped); unknown → undefined. */
  readonly collectCycle?: (deviceId: string, property: string) => number | undefined;
  readonly hooks?: ChannelHooks;
  readonly writerFactory?: WriterFactory;
}

interface Slot {
  readonly pm: PushMethod | undefined;
  readonly targets: readonly Target[];
  /** The channel of each target (resolved once, not per sample). */
  readonly channels: readonly SinkChannel[];
  /** Whether the DataModel JSON is encoded once per sample and shared (two or more targets send it). */
  readonly shareJson: boolean;
  /** undefined while the property's collectCycle is not known yet (decided on a later sample). */
  everySample: boolean | undefined;
  last: number;
  pending: Sample | undefined;
  timer: NodeJS.Timeout | undefined;
}

const SPEC_FILE = 'channel.json';
const recordLineCodec: LineCodec<SinkRecord> = { encode: encodeRecordLine, decode: decodeRecordLine };
/** Redis needs only the device name, the time and the DataModel JSON of a record: lines are not parsed. */
const redisLineCodec: LineCodec<SinkRecord> = { encode: encodeRecordLine, decode: decodeRecordLineLazy };

export class DataPlane implements SampleConsumer {
  readonly name = 'data-plane';
  private readonly config: MapperConfig;
  private readonly log: Logger;
  private readonly hooks: ChannelHooks;
  private readonly factory: WriterFactory;
  private readonly channels = new Map<string, SinkChannel>();
  private readonly broken = new Set<string>();
  private readonly slots = new Map<string, Map<string, Slot>>();
  private readonly writerOptions: WriterOptions;
  private collectCycle: (deviceId: string, property: string) => number | undefined;
  private readonly credentialsLogged = new Set<string>();
  private closed = false;
  private readonly bufferDir: string;
  private dirLock: boolean | undefined;

  constructor(opts: DataPlaneOptions) {
    this.config = opts.config;
    this.log = opts.log;
    this.hooks = opts.hooks ?? {};
    this.factory = opts.writerFactory ?? defaultWriterFactory;
    this.collectCycle = opts.collectCycle ?? (() => undefined);
    const dp = opts.config.data_plane;
    this.bufferDir = dp.buffer_dir || join('/var/lib/mapperkit', opts.config.common.name.replace(/[^A-Za-z0-9_.-]/g, '_'), 'buffer');
    this.writerOptions = {
      httpBody: dp.http.body,
      mqttPayload: dp.mqtt.payload,
      mqttClientId: dp.mqtt.client_id,
      redisKeyTemplate: dp.redis.key_template,
      influxFieldType: dp.influxdb2.field_type,
      mapperName: opts.config.common.name,
    };
  }

  /** Late binding of the collectCycle lookup (the runtime exists after the consumer). */
  setCollectCycleLookup(fn: (deviceId: string, property: string) => number | undefined): void {
    this.collectCycle = fn;
  }

  /**
   * Restarts delivery of disk buffers left by a previous run, so buffered samples reach their
   * sink even before (or without) a device naming it again.
   */
  restoreBuffers(): void {
    const dir = this.bufferDir;
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    if (!this.lockBufferDir()) return;
    for (const name of names) {
      const file = join(dir, name, SPEC_FILE);
      if (!existsSync(file)) continue;
      try {
        const spec = JSON.parse(readFileSync(file, 'utf8')) as ChannelSpec;
        if (channelDirName(spec) !== name) continue;
        if (!readdirSync(join(dir, name)).some((f) => f.endsWith('.seg'))) continue;
        const ch = this.channel({ spec, key: channelKey(spec), route: undefined });
        if (ch) this.log.info({ sink: ch.sink }, 'replaying samples buffered by a previous run');
      } catch (err) {
        this.log.warn({ dir: join(dir, name), err: (err as Error).message }, 'unreadable sink buffer ignored');
      }
    }
  }

  accept(samples: readonly Sample[]): void {
    if (this.closed) return;
    for (const s of samples) {
      if (!s.pushMethod) continue;
      let bySlot = this.slots.get(s.deviceId);
      if (!bySlot) this.slots.set(s.deviceId, (bySlot = new Map()));
      let slot = bySlot.get(s.property);
      if (!slot || slot.pm !== s.pushMethod) {
        if (slot?.timer) clearTimeout(slot.timer);
        slot = this.newSlot(s);
        bySlot.set(s.property, slot);
      }
      if (slot.targets.length === 0) continue;
      if (slot.everySample === undefined) slot.everySample = this.shipsEverySample(s);
      if (slot.everySample !== false) {
        this.route(slot, s);
        continue;
      }
      if (slot.timer) {
        slot.pending = s;
        continue;
      }
      const now = Date.now();
      if (now - slot.last >= s.reportCycle) {
        slot.last = now;
        this.route(slot, s);
      } else {
        slot.pending = s;
        const sl = slot;
        slot.timer = setTimeout(() => this.flushSlot(sl), slot.last + s.reportCycle - now);
      }
    }
  }

  private flushSlot(slot: Slot): void {
    slot.timer = undefined;
    const s = slot.pending;
    slot.pending = undefined;
    if (!s || this.closed) return;
    slot.last = Date.now();
    this.route(slot, s);
  }

  private newSlot(s: Sample): Slot {
    const { targets, problems } = parsePushMethod(s.pushMethod, { device: s.deviceId, property: s.property });
    for (const p of problems) this.log.error({ device: s.deviceId, property: s.property, key: p.key, err: p.message }, 'push method not usable; ignored');
    const usable = targets.filter((t) => this.channel(t) !== undefined);
    const channels = usable.map((t) => this.channels.get(t.key)!);
    // Redis members, JSON MQTT payloads and JSON HTTP bodies are the same DataModel bytes.
    const json = usable.filter((t) => t.spec.kind === 'redis' || (t.spec.kind === 'mqtt' && this.writerOptions.mqttPayload === 'json') || (t.spec.kind === 'http' && this.writerOptions.httpBody === 'json')).length;
    const everySample = this.shipsEverySample(s);
    if (usable.length > 0) {
      this.log.info(
        { device: s.deviceId, property: s.property, sinks: usable.map((t) => channelLabel(t.spec)), reportCycleMs: s.reportCycle, everySample },
        'property pushes to sinks',
      );
    }
    return { pm: s.pushMethod, targets: usable, channels, shareJson: json >= 2, everySample, last: 0, pending: undefined, timer: undefined };
  }

  /** Whether a property ships every sample; undefined when its collectCycle is unknown (then every sample ships until it is). */
  private shipsEverySample(s: Sample): boolean | undefined {
    if (this.config.data_plane.push_mode === 'every_sample') return true;
    const collect = s.collectCycle ?? this.collectCycle(s.deviceId, s.property);
    return collect === undefined ? undefined : s.reportCycle <= collect;
  }

  private route(slot: Slot, s: Sample): void {
    const base = { ns: s.namespace, dev: s.deviceName, prop: s.property, type: s.type, val: s.text, ts: s.timestamp };
    const json = slot.shareJson ? dataModelJson(base) : undefined;
    for (let i = 0; i < slot.targets.length; i++) {
      const route = slot.targets[i]!.route;
      const r: SinkRecord = route
        ? { ns: base.ns, dev: base.dev, prop: base.prop, type: base.type, val: base.val, ts: base.ts, route, json }
        : { ns: base.ns, dev: base.dev, prop: base.prop, type: base.type, val: base.val, ts: base.ts, json };
      slot.channels[i]!.push(r);
    }
  }

  private credential(kind: string, name: CredentialName): string | undefined {
    const { value, source } = lookupCredential(name, this.config.data_plane.credentials_dir);
    const k = `${kind}:${name}`;
    if (!this.credentialsLogged.has(k)) {
      this.credentialsLogged.add(k);
      // Where a credential came from is worth a line; one that is not set (most are optional) only at debug.
      if (value === undefined) this.log.debug({ sink: kind, credential: name }, 'sink credential not set');
      else this.log.info({ sink: kind, credential: name, source }, 'sink credential loaded');
    }
    return value;
  }

  /** The channel of a target, created on first use; undefined if its writer cannot be built. */
  private channel(t: Target): SinkChannel | undefined {
    const existing = this.channels.get(t.key);
    if (existing) return existing;
    if (this.broken.has(t.key) || this.closed) return undefined;
    const spec = t.spec;
    const sink = channelLabel(spec);
    const log = this.log.child({ sink });
    let writer: SinkWriter;
    try {
      writer = this.factory(spec, { credential: (n) => this.credential(spec.kind, n), options: this.writerOptions, log });
    } catch (err) {
      this.broken.add(t.key);
      this.log.error({ sink, err: (err as Error).message }, 'sink not usable');
      return undefined;
    }
    const dp = this.config.data_plane;
    const dir = join(this.bufferDir, channelDirName(spec));
    let hasBacklog = false;
    try {
      hasBacklog = readdirSync(dir).some((f) => f.endsWith('.seg'));
    } catch {
      // No buffer yet.
    }
    let ch: SinkChannel;
    const openBuffer = async (): Promise<DiskQueue<SinkRecord>> => {
      if (!this.lockBufferDir()) throw new Error(`buffer directory ${this.bufferDir} is in use by another mapper process`);
      const q = await DiskQueue.open<SinkRecord>({
        dir,
        maxBytes: dp[spec.kind].buffer_max_bytes ?? dp.buffer_max_bytes,
        maxAgeMs: dp[spec.kind].buffer_max_age_ms ?? dp.buffer_max_age_ms,
        fsync: dp.buffer_fsync,
        onDrop: (reason, n) => ch.bufferDropped(reason, n),
      }, spec.kind === 'redis' ? redisLineCodec : recordLineCodec);
      // Remember the connection so a later run can replay without a device naming it (not when the URL carries credentials).
      if (!/\/\/[^/@]*@/.test(JSON.stringify(spec))) writeFileSync(join(dir, SPEC_FILE), JSON.stringify(spec));
      log.info({ dir }, 'disk buffer opened');
      return q;
    };
    ch = new SinkChannel({
      spec,
      sink,
      writer,
      log,
      hooks: this.hooks,
      options: {
        queueCapacity: dp.queue_capacity,
        batchSize: dp.batch_size,
        writeTimeoutMs: dp.write_timeout_ms,
        retryInitialMs: dp.retry_initial_ms,
        retryMaxMs: dp.retry_max_ms,
        openBuffer,
        hasBacklog,
      },
    });
    this.channels.set(t.key, ch);
    ch.start();
    return ch;
  }

  /**
   * Takes `<buffer_dir>/.lock` (pid inside) so that two mapper processes never share buffers.
   * A lock of a process that is gone is taken over.
   */
  private lockBufferDir(): boolean {
    if (this.dirLock !== undefined) return this.dirLock;
    const file = join(this.bufferDir, '.lock');
    try {
      mkdirSync(this.bufferDir, { recursive: true });
      try {
        writeFileSync(file, String(process.pid), { flag: 'wx' });
      } catch {
        const pid = Number(readFileSync(file, 'utf8').trim());
        let alive = false;
        if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) {
          try {
            process.kill(pid, 0);
            alive = true;
          } catch (err) {
            alive = (err as NodeJS.ErrnoException).code === 'EPERM';
          }
        }
        if (alive) {
          this.log.error({ dir: this.bufferDir, pid }, 'buffer directory is used by another mapper process; disk buffers disabled (set data_plane.buffer_dir)');
          this.dirLock = false;
          return false;
        }
        writeFileSync(file, String(process.pid));
      }
      this.dirLock = true;
    } catch (err) {
      this.log.error({ dir: this.bufferDir, err: (err as Error).message }, 'buffer directory not usable; disk buffers disabled');
      this.dirLock = false;
    }
    return this.dirLock;
  }

  deviceRemoved(deviceId: string): void {
    const bySlot = this.slots.get(deviceId);
    if (!bySlot) return;
    this.slots.delete(deviceId);
    // Ship what was read but not yet due, then forget the device.
    for (const slot of bySlot.values()) {
      if (slot.timer) clearTimeout(slot.timer);
      if (slot.pending) this.route(slot, slot.pending);
    }
  }

  /** Status of every sink channel. */
  status(): SinkStatus[] {
    return [...this.channels.values()].map((c) => c.status());
  }

  /** Flushes pending samples, gives each channel a moment to deliver, buffers the rest to disk. */
  async close(): Promise<void> {
    if (this.closed) return;
    for (const bySlot of this.slots.values()) {
      for (const slot of bySlot.values()) {
        if (slot.timer) clearTimeout(slot.timer);
        if (slot.pending) this.route(slot, slot.pending);
        slot.pending = undefined;
      }
    }
    this.closed = true;
    this.slots.clear();
    await Promise.all([...this.channels.values()].map((c) => c.close()));
    if (this.dirLock) {
      try {
        if (readFileSync(join(this.bufferDir, '.lock'), 'utf8').trim() === String(process.pid)) rmSync(join(this.bufferDir, '.lock'), { force: true });
      } catch {
        // Already gone.
      }
    }
  }
}
