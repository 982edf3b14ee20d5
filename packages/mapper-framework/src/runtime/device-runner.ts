// SPDX-License-Identifier: Apache-2.0
// One running device: connect with backoff, poll on collectCycle (one read() per tick for all
// due properties), subscriptions, desired writes, state checks, reconnect on loss.
import type { Logger } from 'pino';
import { MAX_CYCLE_MS, type PropertyType } from '../dmi/model.js';
import {
  DEVICE_STATES,
  type DeviceClient,
  type DeviceState,
  type DriverDefinition,
  isSubscribable,
  type PropertyRequest,
  type ReadResult,
  type Subscribable,
} from '../driver.js';
import { MapperError, toMapperError } from '../errors.js';
import { notify, type RuntimeObserver } from '../observer.js';
import { RuntimeSample, type Sample, type SampleSource } from '../sample.js';
import { checkRange, formatValue, parseValue, type PropertyValue } from '../values.js';
import { Backoff, RepeatedCall, sleep, withTimeout, within } from './backoff.js';
import type { PreparedDevice, PreparedProperty } from './prepare.js';
import { FunctionTask, nextAligned, phaseOf, scheduler } from './scheduler.js';
import type { LagRecorder, RuntimeStats } from './stats.js';
import { tuneHeapForMapper } from './v8-tuning.js';

export interface RunnerOptions {
  readonly readTimeoutMs: number;
  readonly writeTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly stateCheckMs: number;
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  readonly reconnectAfterFailures: number;
}

export interface RunnerHooks {
  samples(samples: Sample[]): void;
  readFailed(deviceId: string, property: string, error: MapperError): void;
  stateChanged(deviceId: string, state: DeviceState, reason: string | undefined): void;
  observedDesired(deviceId: string, property: string, value: string): void;
}

/** The properties of one read() call, and what the runtime needs per property, built once. */
interface Batch<V> {
  readonly requests: readonly PropertyRequest<V>[];
  /** Per request (same order): what its samples share. */
  readonly sources: readonly SampleSource[];
  /** Per request: its name (what observers get). */
  readonly names: readonly string[];
  readonly timeoutMs: number;
}

/** Properties of one lane with the same collectCycle. */
interface Group<V> {
  readonly cycle: number;
  readonly batch: Batch<V>;
  nextDue: number;
  first: boolean;
  /** Bit of this group in its lane's combination cache (0: too many groups to cache). */
  readonly bit: number;
}

/** A sequence of reads that never overlap: the device's ordinary properties, or one STREAM property. */
interface Lane<V> {
  readonly stream: boolean;
  /** Makes the read() calls of this lane (one signal and timer reused from read to read). */
  readonly caller: RepeatedCall<readonly PropertyRequest<V>[], readonly ReadResult[]>;
  readonly groups: Group<V>[];
  reading: boolean;
  /** Scratch list of the groups due in the current tick. */
  readonly due: Group<V>[];
  /** Batches of several groups due in the same tick, by the groups' bits. */
  readonly combos: Map<number, Batch<V>>;
}

/** What the reads of one connected session share. */
interface SessionCtx {
  done: boolean;
  /** Consecutive reads in which every property failed. */
  failures: number;
  readonly signal: AbortSignal;
  lose(cause: unknown): void;
}

const NO_FAILURES: ReadonlyMap<string, MapperError> = new Map();

function newLane<V>(stream: boolean, caller: Lane<V>['caller']): Lane<V> {
  return { stream, caller, groups: [], reading: false, due: [], combos: new Map() };
}

function newBatch<V>(requests: readonly PropertyRequest<V>[], sources: readonly SampleSource[], timeoutMs: number): Batch<V> {
  // Frozen: the same array goes to every read() of this batch, and a driver may rely on that
  // (e.g. cache its request plan by the array's identity).
  return { requests: Object.freeze(requests), sources, names: Object.freeze(requests.map((r) => r.name)), timeoutMs };
}

/** The batch of several groups due together (cached: the same groups coincide again and again). */
function combined<V>(lane: Lane<V>, due: readonly Group<V>[]): Batch<V> {
  let key = 0;
  for (const g of due) key = g.bit === 0 ? -1 : key < 0 ? key : key | g.bit;
  const cached = key > 0 ? lane.combos.get(key) : undefined;
  if (cached) return cached;
  const batch = newBatch(
    due.flatMap((g) => g.batch.requests),
    due.flatMap((g) => g.batch.sources),
    due.reduce((t, g) => Math.max(t, g.batch.timeoutMs), 0),
  );
  if (key > 0) lane.combos.set(key, batch);
  return batch;
}

/** What every sample of a property shares. */
function sourceOf<V>(spec: PreparedDevice<unknown, V>['spec'], p: PreparedProperty<V>): SampleSource {
  return {
    deviceId: spec.id,
    deviceName: spec.name,
    namespace: spec.namespace,
    property: p.request.name,
    type: p.request.type,
    collectCycle: p.spec.collectCycle,
    reportCycle: p.spec.reportCycle,
    pushMethod: p.spec.pushMethod,
  };
}

function valueMatches(type: PropertyType, v: PropertyValue): boolean {
  switch (type) {
    case 'int':
      return typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v));
    case 'float':
    case 'double':
      return typeof v === 'number';
    case 'boolean':
      return typeof v === 'boolean';
    case 'bytes':
      return v instanceof Uint8Array;
    default:
      return true;
  }
}

class ConnectionLost extends Error {}

export class DeviceRunner<P, V> {
  readonly prepared: PreparedDevice<P, V>;
  private readonly driver: DriverDefinition<P, V>;
  private readonly log: Logger;
  private readonly hooks: RunnerHooks;
  private readonly opts: RunnerOptions;
  private readonly stats: RuntimeStats;
  private readonly lag: LagRecorder;
  private readonly ctl = new AbortController();
  private readonly byName: Map<string, PreparedProperty<V>>;
  private client: DeviceClient<V> | undefined;
  private loop: Promise<void> | undefined;
  /** Desired values of writable properties, from the Device spec. */
  private desired = new Map<string, string>();
  /** Desired values not yet written on the current connection. */
  private desiredPending = new Map<string, string>();
  private readonly observed = new Map<string, string>();
  /** Serialises read/write/state calls on the client (the contract promises no concurrent calls). */
  private clientBusy = false;
  private readonly clientWaiters: (() => void)[] = [];
  /** Label of read timeouts ("read ns/name"). */
  private readonly readWhat: string;
  private flushing = false;
  private flushAgain = false;
  private currentState: DeviceState = 'unknown';
  private stateReason: string | undefined;
  private readonly observers: readonly RuntimeObserver[];
  /** Observers with an onRead hook (called for every read: found once, not per call). */
  private readonly readObservers: readonly RuntimeObserver[];
  private connectedOnce = false;

  constructor(args: {
    prepared: PreparedDevice<P, V>;
    driver: DriverDefinition<P, V>;
    log: Logger;
    hooks: RunnerHooks;
    options: RunnerOptions;
    stats: RuntimeStats;
    lag: LagRecorder;
    observers?: readonly RuntimeObserver[];
  }) {
    tuneHeapForMapper(args.log);
    this.observers = args.observers ?? [];
    this.readObservers = this.observers.filter((o) => typeof o.onRead === 'function');
    this.prepared = args.prepared;
    this.driver = args.driver;
    this.log = args.log;
    this.hooks = args.hooks;
    this.opts = args.options;
    this.stats = args.stats;
    this.lag = args.lag;
    this.byName = new Map(args.prepared.properties.map((p) => [p.request.name, p]));
    this.readWhat = `read ${args.prepared.spec.id}`;
    this.setDesired(args.prepared);
  }

  get id(): string {
    return this.prepared.spec.id;
  }

  get state(): DeviceState {
    return this.currentState;
  }

  get stateDetail(): string | undefined {
    return this.stateReason;
  }

  /** Desired values applied so far, by property. */
  get observedDesired(): ReadonlyMap<string, string> {
    return this.observed;
  }

  get connected(): boolean {
    return this.client !== undefined;
  }

  start(): void {
    if (this.loop) return;
    if (this.prepared.fatal) {
      this.setState('unhealthy', this.prepared.fatal.message);
      this.log.error({ err: this.prepared.fatal.message }, 'device not started: invalid configuration');
      this.loop = Promise.resolve();
      return;
    }
    for (const [name, err] of this.prepared.disabled) this.log.warn({ property: name, err: err.message }, 'property disabled');
    this.loop = this.run().catch((err: unknown) => {
      this.log.error({ err: toMapperError(err).message }, 'device loop failed');
    });
  }

  /** Stops polling, aborts in-flight calls and closes the client. Bounded by `timeoutMs`. */
  async stop(timeoutMs = 5000): Promise<void> {
    if (!this.ctl.signal.aborted) this.ctl.abort(new MapperError('Cancelled', `device ${this.id} stopped`));
    if (this.loop) await within(this.loop, timeoutMs);
  }

  /** Takes new desired values without reconnecting (an UpdateDevice that changed only `desired`). */
  applyDesired(prepared: PreparedDevice<P, V>): void {
    this.setDesired(prepared);
    for (const [name, text] of this.desired) if (this.observed.get(name) !== text) this.desiredPending.set(name, text);
    for (const name of [...this.desiredPending.keys()]) if (!this.desired.has(name)) this.desiredPending.delete(name);
    if (this.client) void this.flushDesired(this.client, this.ctl.signal);
  }

  private setDesired(prepared: PreparedDevice<P, V>): void {
    this.desired = new Map();
    for (const p of prepared.properties) {
      const d = p.spec.desired?.value;
      if (d === undefined || d === '' || p.request.accessMode !== 'ReadWrite' || p.request.type === 'stream') continue;
      this.desired.set(p.request.name, d);
    }
  }

  /** Takes the client: undefined when it was free, else a promise of the turn (FIFO). */
  private acquire(): Promise<void> | undefined {
    if (!this.clientBusy) {
      this.clientBusy = true;
      return undefined;
    }
    return new Promise<void>((resolve) => this.clientWaiters.push(resolve));
  }

  private release(): void {
    const next = this.clientWaiters.shift();
    if (next) next();
    else this.clientBusy = false;
  }

  /** Runs `fn` after every earlier client call has settled. */
  private async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const wait = this.acquire();
    if (wait) await wait;
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  /**
   * Writes a property (desired value, device method or REST). `value` is text as DMI and REST
   * carry it. Throws MapperError naming device and property.
   */
  async write(property: string, text: string, signal?: AbortSignal): Promise<PropertyValue> {
    const ctx = { device: this.id, property };
    const p = this.byName.get(property);
    if (!p) {
      const why = this.prepared.disabled.get(property);
      throw new MapperError(why ? 'InvalidConfig' : 'PropertyNotFound', why ? why.message : `device ${this.id} has no property ${property}`, ctx);
    }
    if (p.request.accessMode !== 'ReadWrite') throw new MapperError('WriteRejected', `device ${this.id} property ${property} is ReadOnly`, ctx);
    let value: PropertyValue;
    try {
      value = parseValue(text, p.request.type);
      checkRange(value, p.request);
    } catch (err) {
      throw toMapperError(err, 'WriteRejected', ctx);
    }
    const client = this.client;
    if (!client) throw new MapperError('Unreachable', `device ${this.id} is not connected (${this.currentState})`, ctx);
    const parent = signal ? AbortSignal.any([signal, this.ctl.signal]) : this.ctl.signal;
    const started = performance.now();
    try {
      await this.exclusive(() => withTimeout((s) => client.write(p.request, value, s), this.opts.writeTimeoutMs, parent, `write ${this.id}/${property}`));
    } catch (err) {
      const e = toMapperError(err, 'DeviceError', ctx);
      notify(this.observers, 'onWrite', { deviceId: this.id, property, durationMs: performance.now() - started, error: e });
      throw e;
    }
    notify(this.observers, 'onWrite', { deviceId: this.id, property, durationMs: performance.now() - started, error: undefined });
    return value;
  }

  private setState(state: DeviceState, reason?: string): void {
    const changed = state !== this.currentState;
    this.currentState = state;
    this.stateReason = reason;
    if (changed) {
      const fields = reason ? { state, reason } : { state };
      if (state === 'ok' || state === 'online') this.log.info(fields, 'device state');
      else this.log.warn(fields, 'device state');
      this.hooks.stateChanged(this.id, state, reason);
      notify(this.observers, 'onState', { deviceId: this.id, state, reason });
    }
  }

  private async run(): Promise<void> {
    const signal = this.ctl.signal;
    const backoff = new Backoff(this.opts.backoffInitialMs, this.opts.backoffMaxMs);
    const { spec } = this.prepared;
    const log = this.log;
    while (!signal.aborted) {
      let client: DeviceClient<V>;
      const connectStarted = performance.now();
      const reconnect = this.connectedOnce;
      try {
        client = await withTimeout(
          (s) =>
            this.driver.connect(
              { device: { id: spec.id, name: spec.name, namespace: spec.namespace, model: spec.modelName }, config: this.prepared.protocolConfig as P, log },
              s,
            ),
          this.opts.connectTimeoutMs,
          signal,
          `connect ${spec.id}`,
        );
      } catch (err) {
        if (signal.aborted) break;
        const e = toMapperError(err, 'Unreachable', { device: spec.id });
        this.stats.connectFailures++;
        notify(this.observers, 'onConnect', { deviceId: spec.id, durationMs: performance.now() - connectStarted, error: e, reconnect });
        const delay = backoff.next();
        this.setState(e.kind === 'InvalidConfig' ? 'unhealthy' : 'offline', e.message);
        log.warn({ err: e.message, kind: e.kind, retryInMs: delay, attempt: backoff.attempts }, 'connect failed');
        await sleep(delay, signal).catch(() => undefined);
        continue;
      }
      if (signal.aborted) {
        await this.safeClose(client);
        break;
      }
      notify(this.observers, 'onConnect', { deviceId: spec.id, durationMs: performance.now() - connectStarted, error: undefined, reconnect });
      this.connectedOnce = true;
      this.client = client;
      // Desired values are (re)written on every connection: a device that lost power has lost them too.
      this.desiredPending = new Map(this.desired);
      log.info('connected');
      let lost: unknown;
      try {
        await this.session(client);
      } catch (err) {
        lost = err;
      }
      this.client = undefined;
      await this.safeClose(client);
      if (signal.aborted) break;
      backoff.reset();
      const delay = backoff.next();
      const e = toMapperError(lost instanceof ConnectionLost ? lost.cause : lost, 'Unreachable', { device: spec.id });
      this.setState('offline', e.message);
      log.warn({ err: e.message, retryInMs: delay }, 'connection lost; reconnecting');
      await sleep(delay, signal).catch(() => undefined);
    }
  }

  private async safeClose(client: DeviceClient<V>): Promise<void> {
    try {
      await within(client.close(), this.opts.connectTimeoutMs);
    } catch (err) {
      this.log.debug({ err: toMapperError(err).message }, 'close failed');
    }
  }

  /** Runs one connected session; resolves on stop, rejects with ConnectionLost. */
  private session(client: DeviceClient<V>): Promise<void> {
    const session = new AbortController();
    const deviceSignal = this.ctl.signal;
    const onStop = (): void => session.abort(deviceSignal.reason);
    deviceSignal.addEventListener('abort', onStop, { once: true });
    const { spec } = this.prepared;

    return new Promise<void>((resolve, reject) => {
      // Ticks and state checks are tasks of the process-wide scheduler (no timer per tick).
      const read = (requests: readonly PropertyRequest<V>[], signal: AbortSignal): Promise<readonly ReadResult[]> => client.read(requests, signal);
      const callers: { dispose(): void }[] = [];
      const newCaller = (): Lane<V>['caller'] => {
        const c = new RepeatedCall(read, session.signal, this.readWhat);
        callers.push(c);
        return c;
      };
      const stateCall = new RepeatedCall((_: undefined, sig: AbortSignal) => client.state(sig), session.signal, `state ${this.id}`);
      const tickTask = new FunctionTask(() => {
        if (!ctx.done) tick();
      });
      const stateTask = new FunctionTask(() => {
        if (!ctx.done) void checkState();
      });
      const finish = (err?: unknown): void => {
        if (ctx.done) return;
        ctx.done = true;
        scheduler.cancel(tickTask);
        scheduler.cancel(stateTask);
        stateCall.dispose();
        for (const c of callers) c.dispose();
        deviceSignal.removeEventListener('abort', onStop);
        if (!session.signal.aborted) session.abort(err ?? new MapperError('Cancelled', 'session ended'));
        if (err === undefined) resolve();
        else reject(err);
      };
      const ctx: SessionCtx = {
        done: false,
        failures: 0,
        signal: session.signal,
        lose: (cause: unknown): void => finish(new ConnectionLost('connection lost', { cause })),
      };
      if (deviceSignal.aborted) {
        finish();
        return;
      }
      session.signal.addEventListener('abort', () => finish(deviceSignal.aborted ? undefined : session.signal.reason), { once: true });

      // State: check now, then periodically; also retries pending desired writes.
      const checkState = async (): Promise<void> => {
        try {
          const s = await this.exclusive(() => stateCall.call(undefined, this.opts.readTimeoutMs));
          if (ctx.done) return;
          if (!DEVICE_STATES.includes(s)) this.setState('unhealthy', `driver returned unknown state "${String(s)}"`);
          else if (s === 'offline') {
            ctx.lose(new MapperError('Unreachable', 'driver reported the device offline'));
            return;
          } else this.setState(s);
        } catch (err) {
          if (ctx.done) return;
          const e = toMapperError(err, 'DeviceError', { device: this.id });
          // A driver that throws Unreachable/Timeout from state() says the link is gone, with the reason.
          if (e.kind === 'Unreachable' || e.kind === 'Timeout') {
            ctx.lose(e);
            return;
          }
          this.setState('unhealthy', e.message);
        }
        if (this.desiredPending.size > 0) await this.flushDesired(client, session.signal);
        if (!ctx.done) scheduler.schedule(stateTask, performance.now() + Math.min(this.opts.stateCheckMs, MAX_CYCLE_MS));
      };
      void checkState();

      // Subscriptions.
      const polled: PreparedProperty<V>[] = [];
      const subscribed: PreparedProperty<V>[] = [];
      for (const p of this.prepared.properties) {
        // STREAM properties (saveFrame/saveVideo) are polled like the rest: what a read of one
        // means (capture a frame, record a clip, return its path) is the driver's business.
        // They are never reported as twins.
        if (isSubscribable(client) && client.isSubscribed(p.request)) subscribed.push(p);
        else polled.push(p);
      }
      if (subscribed.length > 0 && isSubscribable(client)) {
        void this.consumeSubscription(client, subscribed, session.signal).then(
          () => {
            if (!ctx.done) ctx.lose(new MapperError('Unreachable', 'subscription ended'));
          },
          (err: unknown) => {
            if (!ctx.done) ctx.lose(err);
          },
        );
      }

      // Polling: properties grouped by collectCycle. Ordinary properties share one lane: one
      // read() per tick for all that are due, never two at once. Each STREAM property (a frame
      // capture, a recording) gets its own lane so a long recording does not hold up the
      // device's other reads; its timeout is at least its collectCycle.
      const start = performance.now();
      const main = newLane<V>(false, newCaller());
      const lanes: Lane<V>[] = [main];
      const byCycle = new Map<Lane<V>, Map<number, PreparedProperty<V>[]>>();
      for (const p of polled) {
        const lane = p.request.type === 'stream' ? newLane<V>(true, newCaller()) : main;
        if (lane !== main) lanes.push(lane);
        let cycles = byCycle.get(lane);
        if (!cycles) byCycle.set(lane, (cycles = new Map()));
        const list = cycles.get(p.spec.collectCycle);
        if (list) list.push(p);
        else cycles.set(p.spec.collectCycle, [p]);
      }
      for (const [lane, cycles] of byCycle) {
        for (const [cycle, props] of cycles) {
          const batch = newBatch(props.map((p) => p.request), props.map((p) => sourceOf(spec, p)), lane.stream ? Math.max(this.opts.readTimeoutMs, cycle) : this.opts.readTimeoutMs);
          lane.groups.push({ cycle, batch, nextDue: start, first: true, bit: lane.groups.length < 30 ? 1 << lane.groups.length : 0 });
        }
      }
      if (polled.length === 0) return;

      const tickLane = (lane: Lane<V>, now: number): void => {
        // Groups due now go to lane.due[0..count) (a scratch list, written by index: no
        // allocation, no length changes).
        const due = lane.due;
        let count = 0;
        for (const g of lane.groups) {
          if (g.nextDue > now + 1) continue;
          due[count++] = g;
          if (!lane.reading) this.lag.record(Math.max(0, now - g.nextDue));
          if (g.first) {
            // After the first read, spread devices over the cycle (see phaseOf).
            g.first = false;
            g.nextDue = nextAligned(start + g.cycle / 2, g.cycle, phaseOf(`${this.id}/${g.cycle}`, g.cycle));
          } else g.nextDue += g.cycle;
          while (g.nextDue <= now) {
            g.nextDue += g.cycle;
            this.stats.overruns++;
          }
        }
        if (count === 0) return;
        if (lane.reading) {
          this.stats.overruns += count;
          return;
        }
        lane.reading = true;
        void this.pollLane(ctx, lane, count === 1 ? due[0]!.batch : combined(lane, due.slice(0, count)));
      };

      const tick = (): void => {
        const now = performance.now();
        for (const lane of lanes) tickLane(lane, now);
        let next = Infinity;
        for (const lane of lanes) for (const g of lane.groups) if (g.nextDue < next) next = g.nextDue;
        scheduler.schedule(tickTask, next);
      };
      tick();
    });
  }

  /** One read of a lane, then what its outcome means for the session. */
  private async pollLane(ctx: SessionCtx, lane: Lane<V>, batch: Batch<V>): Promise<void> {
    const outcome = await this.readOnce(ctx, lane, batch);
    lane.reading = false;
    if (ctx.done || lane.stream) return; // a failing capture is a property error, not a lost device
    if (outcome === 'lost') ctx.lose(this.lastReadError);
    else if (outcome === 'failed') {
      ctx.failures++;
      if (ctx.failures >= this.opts.reconnectAfterFailures) ctx.lose(this.lastReadError);
    } else ctx.failures = 0;
  }

  private lastReadError: MapperError | undefined;

  /** One read() call; fans out samples. Returns 'ok', 'failed' (every property failed) or 'lost'. */
  private async readOnce(ctx: SessionCtx, lane: Lane<V>, batch: Batch<V>): Promise<'ok' | 'failed' | 'lost'> {
    const exclusive = !lane.stream;
    const { requests, sources } = batch;
    const signal = ctx.signal;
    this.stats.readCalls++;
    this.stats.propertyReads += requests.length;
    const device = this.id;
    let results: readonly ReadResult[];
    const started = performance.now();
    try {
      const wait = exclusive ? this.acquire() : undefined;
      if (wait) await wait;
      try {
        results = await lane.caller.call(requests, batch.timeoutMs);
      } finally {
        if (exclusive) this.release();
      }
    } catch (err) {
      if (signal.aborted) return 'ok';
      const timedOut = err instanceof Error && err.name === 'TimeoutError';
      const e = toMapperError(err, timedOut ? 'Timeout' : 'Unreachable', { device });
      this.observeRead(batch, new Map(requests.map((r) => [r.name, e])), started);
      this.lastReadError = e;
      this.stats.readErrors += requests.length;
      for (const r of requests) this.hooks.readFailed(device, r.name, e.withContext({ property: r.name }));
      this.log.warn({ err: e.message, kind: e.kind }, 'read failed');
      return timedOut ? 'failed' : 'lost';
    }
    if (signal.aborted) return 'ok';
    if (!Array.isArray(results) || results.length !== requests.length) {
      const e = new MapperError('Internal', `driver bug: read() returned ${Array.isArray(results) ? results.length : typeof results} results for ${requests.length} requests`, { device });
      this.lastReadError = e;
      this.stats.readErrors += requests.length;
      for (const r of requests) this.hooks.readFailed(device, r.name, e);
      this.observeRead(batch, new Map(requests.map((r) => [r.name, e])), started);
      this.log.error({ err: e.message }, 'read failed');
      return 'failed';
    }
    const now = Date.now();
    const samples = new Array<Sample>(results.length);
    let n = 0;
    let failures: Map<string, MapperError> | undefined;
    for (let i = 0; i < results.length; i++) {
      const res = results[i];
      const req = requests[i]!;
      if (res && typeof res === 'object' && res.ok === true && valueMatches(req.type, res.value)) {
        samples[n++] = new RuntimeSample(sources[i]!, res.value, res.timestamp ?? now);
        continue;
      }
      let e: MapperError;
      if (!res || typeof res !== 'object') e = new MapperError('Internal', `driver bug: read() result ${i} is ${String(res)}`);
      else if (!res.ok) e = toMapperError(res.error, 'DeviceError', { device, property: req.name });
      else e = new MapperError('Internal', `device ${device} property ${req.name}: driver returned ${typeof res.value} for a ${req.type} property`, { device, property: req.name });
      (failures ??= new Map()).set(req.name, e);
      this.lastReadError = e;
      this.hooks.readFailed(device, req.name, e);
      this.log.debug({ property: req.name, err: e.message, kind: e.kind }, 'property read failed');
    }
    const failed = failures ? failures.size : 0;
    this.stats.readErrors += failed;
    this.observeRead(batch, failures ?? NO_FAILURES, started);
    if (n > 0) {
      if (n < samples.length) samples.length = n;
      this.stats.samples += n;
      this.hooks.samples(samples);
    }
    return failed === requests.length ? 'failed' : 'ok';
  }

  private observeRead(batch: Batch<V>, failed: ReadonlyMap<string, MapperError>, started: number): void {
    const observers = this.readObservers;
    if (observers.length === 0) return;
    const event = { deviceId: this.id, properties: batch.names, failed, durationMs: performance.now() - started };
    for (const o of observers) {
      try {
        o.onRead!(event);
      } catch {
        // Observers must not affect the data path.
      }
    }
  }

  private async consumeSubscription(client: DeviceClient<V> & Subscribable<V>, props: PreparedProperty<V>[], signal: AbortSignal): Promise<void> {
    const { spec } = this.prepared;
    const byName = new Map(props.map((p) => [p.request.name, { p, source: sourceOf(spec, p) }]));
    const warned = new Set<string>();
    for await (const r of client.subscribe(
      props.map((p) => p.request),
      signal,
    )) {
      if (signal.aborted) return;
      const entry = byName.get(r.property);
      if (!entry) {
        if (!warned.has(r.property)) this.log.warn({ property: r.property }, 'subscription delivered a property that was not subscribed; ignored');
        warned.add(r.property);
        continue;
      }
      const { p, source } = entry;
      if ('error' in r) {
        const e = toMapperError(r.error, 'DeviceError', { device: spec.id, property: r.property });
        this.stats.readErrors++;
        this.hooks.readFailed(spec.id, r.property, e);
        this.log.debug({ property: r.property, err: e.message, kind: e.kind }, 'subscribed value failed');
        continue;
      }
      if (!valueMatches(p.request.type, r.value)) {
        this.hooks.readFailed(spec.id, r.property, new MapperError('Internal', `driver returned ${typeof r.value} for a ${p.request.type} property`, { device: spec.id, property: r.property }));
        continue;
      }
      this.stats.samples++;
      this.hooks.samples([new RuntimeSample(source, r.value, r.timestamp ?? Date.now())]);
    }
  }

  private async flushDesired(client: DeviceClient<V>, signal: AbortSignal): Promise<void> {
    if (this.flushing) {
      this.flushAgain = true;
      return;
    }
    this.flushing = true;
    try {
      do {
        this.flushAgain = false;
        await this.flushOnce(client, signal);
      } while (this.flushAgain && !signal.aborted);
    } finally {
      this.flushing = false;
    }
  }

  private async flushOnce(client: DeviceClient<V>, signal: AbortSignal): Promise<void> {
    for (const [name, text] of [...this.desiredPending]) {
      if (signal.aborted || this.client !== client) return;
      try {
        await this.write(name, text, signal);
        if (this.desiredPending.get(name) === text) this.desiredPending.delete(name);
        this.observed.set(name, text);
        this.hooks.observedDesired(this.id, name, text);
        this.log.info({ property: name, value: text }, 'desired value written');
      } catch (err) {
        const e = toMapperError(err, 'DeviceError', { device: this.id, property: name });
        if (e.kind === 'WriteRejected' || e.kind === 'PropertyNotFound' || e.kind === 'Unsupported' || e.kind === 'InvalidConfig') {
          this.desiredPending.delete(name);
          this.log.error({ property: name, value: text, err: e.message }, 'desired value rejected; not retried until the Device changes');
        } else {
          this.log.warn({ property: name, value: text, err: e.message }, 'desired value not written yet; will retry');
        }
      }
    }
  }
}
