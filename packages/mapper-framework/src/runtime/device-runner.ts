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
import type { Sample } from '../sample.js';
import { checkRange, formatValue, parseValue, type PropertyValue } from '../values.js';
import { Backoff, sleep, withTimeout, within } from './backoff.js';
import type { PreparedDevice, PreparedProperty } from './prepare.js';
import type { LagRecorder, RuntimeStats } from './stats.js';

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

interface Group<V> {
  readonly cycle: number;
  readonly requests: PropertyRequest<V>[];
  nextDue: number;
  first: boolean;
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
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
  private exclusiveTail: Promise<unknown> = Promise.resolve();
  private flushing = false;
  private flushAgain = false;
  private currentState: DeviceState = 'unknown';
  private stateReason: string | undefined;
  private readonly observers: readonly RuntimeObserver[];
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
    this.observers = args.observers ?? [];
    this.prepared = args.prepared;
    this.driver = args.driver;
    this.log = args.log;
    this.hooks = args.hooks;
    this.opts = args.options;
    this.stats = args.stats;
    this.lag = args.lag;
    this.byName = new Map(args.prepared.properties.map((p) => [p.request.name, p]));
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

  /** Runs `fn` after every earlier client call has settled. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.exclusiveTail.then(fn, fn);
    this.exclusiveTail = run.catch(() => undefined);
    return run;
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
    const timers = new Set<NodeJS.Timeout>();

    return new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (err?: unknown): void => {
        if (done) return;
        done = true;
        for (const t of timers) clearTimeout(t);
        deviceSignal.removeEventListener('abort', onStop);
        if (!session.signal.aborted) session.abort(err ?? new MapperError('Cancelled', 'session ended'));
        if (err === undefined) resolve();
        else reject(err);
      };
      if (deviceSignal.aborted) {
        finish();
        return;
      }
      session.signal.addEventListener('abort', () => finish(deviceSignal.aborted ? undefined : session.signal.reason), { once: true });
      const lose = (cause: unknown): void => finish(new ConnectionLost('connection lost', { cause }));

      const later = (ms: number, fn: () => void): void => {
        // Node fires a timer beyond 2^31-1 ms after 1 ms; wake up early instead (the tick re-plans).
        const t = setTimeout(() => {
          timers.delete(t);
          if (!done) fn();
        }, Math.min(ms, MAX_CYCLE_MS));
        timers.add(t);
      };

      // State: check now, then periodically; also retries pending desired writes.
      const checkState = async (): Promise<void> => {
        try {
          const s = await this.exclusive(() => withTimeout((sig) => client.state(sig), this.opts.readTimeoutMs, session.signal, `state ${this.id}`));
          if (done) return;
          if (!DEVICE_STATES.includes(s)) this.setState('unhealthy', `driver returned unknown state "${String(s)}"`);
          else if (s === 'offline') {
            lose(new MapperError('Unreachable', 'driver reported the device offline'));
            return;
          } else this.setState(s);
        } catch (err) {
          if (done) return;
          const e = toMapperError(err, 'DeviceError', { device: this.id });
          // A driver that throws Unreachable/Timeout from state() says the link is gone, with the reason.
          if (e.kind === 'Unreachable' || e.kind === 'Timeout') {
            lose(e);
            return;
          }
          this.setState('unhealthy', e.message);
        }
        if (this.desiredPending.size > 0) await this.flushDesired(client, session.signal);
        later(this.opts.stateCheckMs, () => void checkState());
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
            if (!done) lose(new MapperError('Unreachable', 'subscription ended'));
          },
          (err: unknown) => {
            if (!done) lose(err);
          },
        );
      }

      // Polling: one timer per device, properties grouped by collectCycle. Ordinary properties
      // share one lane: one read() per tick for all that are due, never two at once. Each STREAM
      // property (a frame capture, a recording) gets its own lane so a long recording does not
      // hold up the device's other reads; its timeout is at least its collectCycle.
      interface Lane {
        readonly stream: boolean;
        readonly groups: Map<number, Group<V>>;
        reading: boolean;
      }
      const start = performance.now();
      const main: Lane = { stream: false, groups: new Map(), reading: false };
      const lanes: Lane[] = [main];
      for (const p of polled) {
        const lane = p.request.type === 'stream' ? { stream: true, groups: new Map<number, Group<V>>(), reading: false } : main;
        if (lane !== main) lanes.push(lane);
        const cycle = p.spec.collectCycle;
        let g = lane.groups.get(cycle);
        if (!g) lane.groups.set(cycle, (g = { cycle, requests: [], nextDue: start, first: true }));
        g.requests.push(p.request);
      }
      if (polled.length === 0) return;
      let failures = 0;
      const propsByRequest = new Map(polled.map((p) => [p.request, p]));

      const tickLane = (lane: Lane, now: number): void => {
        const due: Group<V>[] = [];
        for (const g of lane.groups.values()) if (g.nextDue <= now + 1) due.push(g);
        for (const g of due) {
          if (!lane.reading) this.lag.record(Math.max(0, now - g.nextDue));
          if (g.first) {
            // After the first read, spread devices over the cycle so 1000 devices registered
            // together do not all read in the same millisecond.
            g.first = false;
            const phase = hash(`${this.id}/${g.cycle}`) % g.cycle;
            g.nextDue = start + phase + (phase < g.cycle / 2 ? g.cycle : 0);
          } else g.nextDue += g.cycle;
          while (g.nextDue <= now) {
            g.nextDue += g.cycle;
            this.stats.overruns++;
          }
        }
        if (due.length === 0) return;
        if (lane.reading) {
          this.stats.overruns += due.length;
          return;
        }
        lane.reading = true;
        const requests = due.flatMap((g) => g.requests);
        const timeoutMs = lane.stream ? Math.max(this.opts.readTimeoutMs, ...due.map((g) => g.cycle)) : this.opts.readTimeoutMs;
        void this.readOnce(client, requests, propsByRequest, session.signal, { exclusive: !lane.stream, timeoutMs }).then((outcome) => {
          lane.reading = false;
          if (done || lane.stream) return; // a failing capture is a property error, not a lost device
          if (outcome === 'lost') lose(this.lastReadError);
          else if (outcome === 'failed') {
            failures++;
            if (failures >= this.opts.reconnectAfterFailures) lose(this.lastReadError);
          } else failures = 0;
        });
      };

      const tick = (): void => {
        const now = performance.now();
        for (const lane of lanes) tickLane(lane, now);
        let next = Infinity;
        for (const lane of lanes) for (const g of lane.groups.values()) next = Math.min(next, g.nextDue);
        later(Math.max(0, next - performance.now()), tick);
      };
      tick();
    });
  }

  private lastReadError: MapperError | undefined;

  /** One read() call; fans out samples. Returns 'ok', 'failed' (every property failed) or 'lost'. */
  private async readOnce(
    client: DeviceClient<V>,
    requests: PropertyRequest<V>[],
    props: Map<PropertyRequest<V>, PreparedProperty<V>>,
    signal: AbortSignal,
    lane: { exclusive: boolean; timeoutMs: number },
  ): Promise<'ok' | 'failed' | 'lost'> {
    this.stats.readCalls++;
    this.stats.propertyReads += requests.length;
    const device = this.id;
    let results: readonly ReadResult[];
    const started = performance.now();
    const observe = (failed: Map<string, MapperError>): void => {
      if (this.observers.length > 0) notify(this.observers, 'onRead', { deviceId: device, properties: requests.map((r) => r.name), failed, durationMs: performance.now() - started });
    };
    try {
      const call = (): Promise<readonly ReadResult[]> => withTimeout((s) => client.read(requests, s), lane.timeoutMs, signal, `read ${device}`);
      results = await (lane.exclusive ? this.exclusive(call) : call());
    } catch (err) {
      if (signal.aborted) return 'ok';
      const timedOut = err instanceof Error && err.name === 'TimeoutError';
      const e = toMapperError(err, timedOut ? 'Timeout' : 'Unreachable', { device });
      observe(new Map(requests.map((r) => [r.name, e])));
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
      observe(new Map(requests.map((r) => [r.name, e])));
      this.log.error({ err: e.message }, 'read failed');
      return 'failed';
    }
    const now = Date.now();
    const samples: Sample[] = [];
    let failed = 0;
    const failures = new Map<string, MapperError>();
    const { spec } = this.prepared;
    results.forEach((res, i) => {
      const req = requests[i]!;
      let error: MapperError | undefined;
      if (!res || typeof res !== 'object') error = new MapperError('Internal', `driver bug: read() result ${i} is ${String(res)}`);
      else if (!res.ok) error = toMapperError(res.error, 'DeviceError', { device, property: req.name });
      else if (!valueMatches(req.type, res.value))
        error = new MapperError('Internal', `device ${device} property ${req.name}: driver returned ${typeof res.value} for a ${req.type} property`, { device, property: req.name });
      if (error || !res || !res.ok) {
        failed++;
        const e = error ?? new MapperError('Internal', 'unreachable');
        failures.set(req.name, e);
        this.lastReadError = e;
        this.hooks.readFailed(device, req.name, e);
        this.log.debug({ property: req.name, err: e.message, kind: e.kind }, 'property read failed');
        return;
      }
      const p = props.get(req)!;
      samples.push({
        deviceId: device,
        deviceName: spec.name,
        namespace: spec.namespace,
        property: req.name,
        type: req.type,
        value: res.value,
        text: formatValue(res.value),
        timestamp: res.timestamp ?? now,
        collectCycle: p.spec.collectCycle,
        reportCycle: p.spec.reportCycle,
        pushMethod: p.spec.pushMethod,
      });
    });
    this.stats.readErrors += failed;
    observe(failures);
    if (samples.length > 0) {
      this.stats.samples += samples.length;
      this.hooks.samples(samples);
    }
    return failed === requests.length ? 'failed' : 'ok';
  }

  private async consumeSubscription(client: DeviceClient<V> & Subscribable<V>, props: PreparedProperty<V>[], signal: AbortSignal): Promise<void> {
    const byName = new Map(props.map((p) => [p.request.name, p]));
    const { spec } = this.prepared;
    const warned = new Set<string>();
    for await (const r of client.subscribe(
      props.map((p) => p.request),
      signal,
    )) {
      if (signal.aborted) return;
      const p = byName.get(r.property);
      if (!p) {
        if (!warned.has(r.property)) this.log.warn({ property: r.property }, 'subscription delivered a property that was not subscribed; ignored');
        warned.add(r.property);
        continue;
      }
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
      this.hooks.samples([
        {
          deviceId: spec.id,
          deviceName: spec.name,
          namespace: spec.namespace,
          property: r.property,
          type: p.request.type,
          value: r.value,
          text: formatValue(r.value),
          timestamp: r.timestamp ?? Date.now(),
          collectCycle: p.spec.collectCycle,
        reportCycle: p.spec.reportCycle,
          pushMethod: p.spec.pushMethod,
        },
      ]);
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
