// SPDX-License-Identifier: Apache-2.0
// The mapper runtime: device/model registry, DMI server handlers, registration with edgecore
// (and re-registration after edgecore restarts), fan-out of samples to every consumer.
import type { Logger } from 'pino';
import type { MapperConfig } from '../config.js';
import { type DeviceModelSpec, type DeviceSpec, deviceFromProto, modelFromProto, type PropertyType, resourceId } from '../dmi/model.js';
import type { DeviceState, DriverDefinition } from '../driver.js';
import { MapperError, toMapperError } from '../errors.js';
import { Device, type DeviceModel, type MapperRegisterResponse, type Twin } from '../generated/v1beta1/api.js';
import { notify, type RuntimeObserver } from '../observer.js';
import type { Sample, SampleConsumer } from '../sample.js';
import type { PropertyValue } from '../values.js';
import { Backoff, sleep } from './backoff.js';
import { DeviceRunner } from './device-runner.js';
import type { UnixGrpcServer } from '../dmi/transport.js';
import { type DeviceService, startDeviceMapperServer } from './dmi-server.js';
import { EdgecoreLink } from './edgecore-link.js';
import { LastValueCache, type LastValue } from './last-values.js';
import { type PreparedDevice, prepareDevice, preparationErrors } from './prepare.js';
import { Reporter } from './reporter.js';
import { LagRecorder, newStats, type RuntimeStats } from './stats.js';

/** Read-only view of one registered device. */
export interface DeviceView {
  readonly id: string;
  readonly spec: DeviceSpec;
  readonly model: DeviceModelSpec;
  readonly state: DeviceState;
  /** Why the device is not `ok`, when known. */
  readonly stateDetail: string | undefined;
  readonly connected: boolean;
  /** Properties that could not be set up, with the reason. */
  readonly disabled: ReadonlyMap<string, MapperError>;
  /** Desired values written to the device so far. */
  readonly observedDesired: ReadonlyMap<string, string>;
  /** Latest value or failure per property. */
  readonly values: ReadonlyMap<string, LastValue>;
}

/** Snapshot of runtime counters plus collect-tick lateness percentiles (ms). */
export interface StatsSnapshot extends RuntimeStats {
  readonly devices: number;
  readonly tickLagP50: number;
  readonly tickLagP99: number;
  readonly tickLagMax: number;
  readonly ticks: number;
  readonly registered: boolean;
}

export interface MapperRuntimeOptions<P, V> {
  readonly driver: DriverDefinition<P, V>;
  readonly config: MapperConfig;
  readonly log: Logger;
  /** Extra sample consumers (sinks); each gets every sample, read once. */
  readonly consumers?: readonly SampleConsumer[];
  /** Instrumentation hooks (metrics). */
  readonly observers?: readonly RuntimeObserver[];
}

interface Record_<P, V> {
  /**
   * The Device message as received, kept encoded (GetDevice answers with it; a model change
   * re-applies it). Decoded, its Any-typed config values cost ~12 KB for a device of 10
   * properties; encoded, 2.3 KB.
   */
  encoded: Uint8Array;
  runner: DeviceRunner<P, V>;
  /** What the running device was built from; compared (as a fingerprint) only when an update arrives. */
  built: { spec: DeviceSpec; model: DeviceModelSpec };
}

const MODEL_WAIT_ATTEMPTS = 3;
const MODEL_WAIT_MS = 1000;

function bigintSafe(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}

function fingerprint(spec: DeviceSpec, model: DeviceModelSpec): string {
  const properties = spec.properties.map((p) => ({ ...p, desired: undefined }));
  return JSON.stringify({ ...spec, properties, model }, bigintSafe);
}

export class MapperRuntime<P, V> implements DeviceService {
  readonly config: MapperConfig;
  readonly log: Logger;
  private readonly driver: DriverDefinition<P, V>;
  private readonly models = new Map<string, DeviceModelSpec>();
  private readonly devices = new Map<string, Record_<P, V>>();
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly stats_ = newStats();
  private readonly lag = new LagRecorder();
  private readonly cache = new LastValueCache();
  private readonly consumers: SampleConsumer[];
  private readonly observers: readonly RuntimeObserver[];
  private readonly reporter: Reporter;
  private readonly link: EdgecoreLink;
  private readonly ctl = new AbortController();
  private server: UnixGrpcServer | undefined;
  private registered = false;
  private registering: Promise<void> | undefined;
  private registerAgain = false;
  private wake: AbortController = new AbortController();
  private firstRegistration: Promise<void>;
  private resolveFirst!: () => void;

  constructor(opts: MapperRuntimeOptions<P, V>) {
    this.driver = opts.driver;
    this.config = opts.config;
    this.log = opts.log;
    this.observers = opts.observers ?? [];
    const c = opts.config;
    if (c.common.protocol !== opts.driver.protocol) {
      throw new MapperError('InvalidConfig', `config common.protocol "${c.common.protocol}" does not match the driver's protocol "${opts.driver.protocol}"`, {
        key: 'common.protocol',
      });
    }
    this.link = new EdgecoreLink({
      socketPath: c.common.edgecore_sock,
      mapper: {
        name: c.common.name,
        version: c.common.version,
        apiVersion: c.common.api_version,
        protocol: c.common.protocol,
        address: Buffer.from(c.grpc_server.socket_path, 'utf8'),
        state: 'ok',
      },
      timeoutMs: c.runtime.dmi_timeout_ms,
      backoffInitialMs: c.runtime.backoff_initial_ms,
      backoffMaxMs: c.runtime.backoff_max_ms,
      log: this.log.child({ component: 'dmi-client' }),
      observers: this.observers,
    });
    this.reporter = new Reporter(this.link, { rate: c.runtime.report_rate, burst: c.runtime.report_burst }, this.log.child({ component: 'reporter' }), this.stats_);
    this.reporter.onTransportFailure = (err) => {
      if (EdgecoreLink.isUnavailable(err)) this.scheduleRegistration('report failed: edgecore unavailable');
    };
    this.consumers = [this.reporter, this.cache, ...(opts.consumers ?? [])];
    this.firstRegistration = new Promise((res) => (this.resolveFirst = res));
  }

  /** Starts the DMI server, then registers with edgecore in the background (with backoff). */
  async start(): Promise<void> {
    if (this.driver.init) {
      const log = this.log.child({ driver: this.driver.protocol });
      try {
        await this.driver.init({ log }, this.ctl.signal);
      } catch (err) {
        log.error({ err: toMapperError(err).message }, 'driver init failed; devices will retry connecting');
      }
    }
    this.server = await startDeviceMapperServer(this.config.grpc_server.socket_path, this, this.log.child({ component: 'dmi-server' }));
    this.log.info({ socket: this.server.path, edgecore: this.config.common.edgecore_sock, protocol: this.driver.protocol }, 'DeviceMapperService listening');
    this.scheduleRegistration('startup');
  }

  /** Resolves once the first MapperRegister succeeded and its devices are started. */
  whenRegistered(): Promise<void> {
    return this.firstRegistration;
  }

  private scheduleRegistration(reason: string): void {
    if (this.ctl.signal.aborted) return;
    if (this.registered) notify(this.observers, 'onRegistration', { registered: false });
    this.registered = false;
    this.reporter.setOnline(false);
    if (this.registering) {
      this.registerAgain = true;
      this.wake.abort();
      return;
    }
    this.log.info({ reason }, 'registering with edgecore');
    this.registering = this.registrationLoop().finally(() => {
      this.registering = undefined;
      if (this.registerAgain && !this.ctl.signal.aborted) {
        this.registerAgain = false;
        this.scheduleRegistration('edgecore reconnected during registration');
      }
    });
  }

  private async registrationLoop(): Promise<void> {
    const backoff = new Backoff(Math.min(200, this.config.runtime.backoff_initial_ms), 2000);
    const signal = this.ctl.signal;
    while (!signal.aborted) {
      this.registerAgain = false;
      try {
        const resp = await this.link.registerOnce();
        if (signal.aborted) return;
        this.stats_.registrations++;
        const first = this.stats_.registrations === 1;
        this.log.info({ devices: resp.deviceList.length, models: resp.modelList.length, first }, 'registered with edgecore');
        await this.applyRegistration(resp, first);
        this.registered = true;
        notify(this.observers, 'onRegistration', { registered: true });
        this.reporter.setOnline(true);
        this.link.watch({
          onDown: () => {
            this.log.warn('connection to edgecore lost');
            if (this.registered) notify(this.observers, 'onRegistration', { registered: false });
            this.registered = false;
            this.reporter.setOnline(false);
          },
          onUp: () => this.scheduleRegistration('edgecore is back'),
        });
        this.resolveFirst();
        return;
      } catch (err) {
        if (signal.aborted) return;
        const delay = backoff.next();
        const e = err as { code?: number; details?: string; message?: string };
        const level = backoff.attempts <= 1 || backoff.attempts % 20 === 0 ? 'warn' : 'debug';
        this.log[level]({ socket: this.config.common.edgecore_sock, code: e.code, err: e.details || e.message, retryInMs: delay }, 'MapperRegister failed; retrying');
        this.wake = new AbortController();
        await sleep(delay, AbortSignal.any([signal, this.wake.signal])).catch(() => undefined);
      }
    }
  }

  /** Applies a MapperRegister response: models first, then devices; on re-registration, stops devices edgecore no longer lists. */
  private async applyRegistration(resp: MapperRegisterResponse, first: boolean): Promise<void> {
    const seenModels = new Set<string>();
    for (const m of resp.modelList) {
      const id = resourceId(m.namespace, m.name);
      if (seenModels.has(id)) continue;
      seenModels.add(id);
      this.upsertModel(m, false);
    }
    const listed = new Set<string>();
    await Promise.all(
      resp.deviceList.map(async (d) => {
        listed.add(resourceId(d.namespace, d.name));
        try {
          await this.serial(resourceId(d.namespace, d.name), () => this.applyDevice(d, false, false));
        } catch (err) {
          this.log.error({ device: resourceId(d.namespace, d.name), err: toMapperError(err).message }, 'device from MapperRegister not started');
        }
      }),
    );
    if (!first) {
      const vanished = [...this.devices.keys()].filter((id) => !listed.has(id));
      for (const id of vanished) {
        this.log.info({ device: id }, 'device no longer listed by edgecore; stopping it');
        await this.serial(id, () => this.dropDevice(id));
      }
    }
  }

  private serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.chains.set(id, tail);
    void tail.then(() => {
      if (this.chains.get(id) === tail) this.chains.delete(id);
    });
    return next;
  }

  private upsertModel(m: DeviceModel, strict: boolean): DeviceModelSpec {
    const { value, problems } = modelFromProto(m);
    if (!m.name) throw new MapperError('InvalidConfig', 'device model name is required', { key: 'model.name' });
    if (strict && problems.length > 0) throw new MapperError('InvalidConfig', problems.map((p) => p.message).join('; '), { key: problems[0]?.key });
    for (const p of problems) this.log.warn({ model: value.id, err: p.message }, 'model problem');
    this.models.set(value.id, value);
    return value;
  }

  private async findModel(id: string, wait: boolean): Promise<DeviceModelSpec | undefined> {
    for (let i = 0; ; i++) {
      const m = this.models.get(id);
      if (m || !wait || i >= MODEL_WAIT_ATTEMPTS - 1) return m;
      // The model may arrive just after the device (upstream waits the same way).
      await sleep(MODEL_WAIT_MS, this.ctl.signal);
    }
  }

  /**
   * Registers or updates a device. Strict (DMI RPCs): any invalid config rejects the call and
   * leaves a running device untouched. Lenient (MapperRegister list): problems are logged,
   * bad properties disabled, a device with bad protocol config kept `unhealthy`.
   */
  private async applyDevice(proto: Device, strict: boolean, waitForModel: boolean, encoded?: Uint8Array): Promise<void> {
    if (this.ctl.signal.aborted) throw new MapperError('Cancelled', 'mapper is shutting down');
    const { value: spec, problems } = deviceFromProto(proto);
    if (!spec.name) throw new MapperError('InvalidConfig', 'device name is required', { key: 'device.name' });
    for (const p of problems) this.log.warn({ device: spec.id, key: p.key, err: p.message }, 'device config problem');
    const model = await this.findModel(spec.modelId, waitForModel);
    if (!model) {
      throw new MapperError('ModelNotFound', `deviceModel ${spec.modelName || '(empty)'} in ${spec.namespace} namespace not found (device ${spec.id})`, {
        device: spec.id,
        key: 'spec.deviceModelReference',
      });
    }
    const prepared = await prepareDevice(this.driver, spec, model);
    if (this.log.isLevelEnabled('debug')) {
      this.log.debug(
        {
          device: spec.id,
          model: model.id,
          properties: prepared.properties.map((p) => ({ name: p.request.name, type: p.request.type, collectCycle: p.spec.collectCycle, reportCycle: p.spec.reportCycle, reportToCloud: p.spec.reportToCloud })),
          stateReport: spec.stateReport,
        },
        'device configuration',
      );
    }
    const errs = preparationErrors(prepared as PreparedDevice<unknown, unknown>);
    if (strict && errs.length > 0) {
      throw new MapperError('InvalidConfig', errs.map((e) => e.message).join('; '), { device: spec.id, property: errs[0]?.property, key: errs[0]?.key });
    }
    const stored = encoded ?? Device.encode(proto).finish();
    const existing = this.devices.get(spec.id);
    if (existing && fingerprint(existing.built.spec, existing.built.model) === fingerprint(spec, model)) {
      existing.encoded = stored;
      existing.runner.applyDesired(prepared);
      this.log.debug({ device: spec.id }, 'device unchanged apart from desired values; not restarted');
      return;
    }
    if (existing) {
      this.log.info({ device: spec.id }, 'device changed; restarting it');
      await existing.runner.stop();
    }
    const runner = new DeviceRunner<P, V>({
      prepared,
      driver: this.driver,
      log: this.log.child({ device: spec.id }),
      options: {
        readTimeoutMs: this.config.runtime.read_timeout_ms,
        writeTimeoutMs: this.config.runtime.write_timeout_ms,
        connectTimeoutMs: this.config.runtime.connect_timeout_ms,
        stateCheckMs: this.config.runtime.state_check_ms,
        backoffInitialMs: this.config.runtime.backoff_initial_ms,
        backoffMaxMs: this.config.runtime.backoff_max_ms,
        reconnectAfterFailures: this.config.runtime.reconnect_after_failures,
      },
      stats: this.stats_,
      lag: this.lag,
      observers: this.observers,
      hooks: {
        samples: (s) => this.fanOut(s),
        readFailed: (deviceId, property, error) => {
          const f = { deviceId, property, error, timestamp: Date.now() };
          for (const c of this.consumers) {
            try {
              c.readFailed?.(f);
            } catch (err) {
              this.consumerFailed(c, err);
            }
          }
        },
        stateChanged: (deviceId, state) => {
          if (this.devices.get(deviceId)?.runner === runner) this.reporter.stateChanged(deviceId, state);
        },
        observedDesired: (deviceId, property, value) => {
          if (this.devices.get(deviceId)?.runner === runner) this.reporter.observedDesired(deviceId, property, value);
        },
      },
    });
    this.devices.set(spec.id, { encoded: stored, runner, built: { spec, model } });
    const types = new Map<string, PropertyType>(prepared.properties.map((p) => [p.request.name, p.request.type]));
    this.reporter.addDevice(spec, types, runner.state, runner.observedDesired);
    runner.start();
    this.log.info({ device: spec.id, model: model.id, properties: prepared.properties.length, disabled: prepared.disabled.size }, existing ? 'device restarted' : 'device added');
  }

  private fanOut(samples: Sample[]): void {
    for (const c of this.consumers) {
      try {
        c.accept(samples);
      } catch (err) {
        this.consumerFailed(c, err);
      }
    }
  }

  private consumerFailed(c: SampleConsumer, err: unknown): void {
    this.stats_.consumerErrors++;
    this.log.error({ consumer: c.name, err: toMapperError(err).message }, 'sample consumer failed');
  }

  private async dropDevice(id: string): Promise<boolean> {
    const rec = this.devices.get(id);
    if (!rec) return false;
    this.devices.delete(id);
    this.reporter.removeDevice(id);
    await rec.runner.stop();
    for (const c of this.consumers) {
      try {
        c.deviceRemoved?.(id);
      } catch (err) {
        this.consumerFailed(c, err);
      }
    }
    this.log.info({ device: id }, 'device removed');
    return true;
  }

  // ---- DeviceService (DMI server) ----

  registerDevice(device: Device, encoded?: Uint8Array): Promise<void> {
    return this.serial(resourceId(device.namespace, device.name), () => this.applyDevice(device, true, true, encoded));
  }

  updateDevice(device: Device, encoded?: Uint8Array): Promise<void> {
    const id = resourceId(device.namespace, device.name);
    return this.serial(id, async () => {
      if (!this.devices.has(id)) this.log.info({ device: id }, 'UpdateDevice for an unknown device; registering it');
      await this.applyDevice(device, true, true, encoded);
    });
  }

  removeDevice(namespace: string, name: string): Promise<void> {
    const id = resourceId(namespace, name);
    return this.serial(id, async () => {
      if (!(await this.dropDevice(id))) throw new MapperError('DeviceNotFound', `device ${id} not found`, { device: id });
    });
  }

  async createModel(model: DeviceModel): Promise<void> {
    const spec = this.upsertModel(model, true);
    await this.restartDevicesOf(spec.id);
  }

  async updateModel(model: DeviceModel): Promise<void> {
    const id = resourceId(model.namespace, model.name);
    if (!this.models.has(id)) this.log.info({ model: id }, 'UpdateDeviceModel for an unknown model; creating it');
    this.upsertModel(model, true);
    await this.restartDevicesOf(id);
  }

  private async restartDevicesOf(modelId: string): Promise<void> {
    const users = [...this.devices.entries()].filter(([, r]) => r.runner.prepared.spec.modelId === modelId);
    await Promise.all(
      users.map(([id, r]) =>
        this.serial(id, () => this.applyDevice(Device.decode(r.encoded), false, false, r.encoded)).catch((err: unknown) =>
          this.log.error({ device: id, err: toMapperError(err).message }, 'device not restarted after model change'),
        ),
      ),
    );
  }

  async removeModel(namespace: string, name: string): Promise<void> {
    const id = resourceId(namespace, name);
    this.models.delete(id);
    const users = [...this.devices.values()].filter((r) => r.runner.prepared.spec.modelId === id).map((r) => r.runner.id);
    if (users.length > 0) this.log.warn({ model: id, devices: users }, 'model removed while devices still use it; they keep running with the last model');
  }

  getDevice(namespace: string, name: string): Device {
    const id = resourceId(namespace, name);
    const rec = this.devices.get(id);
    if (!rec) throw new MapperError('DeviceNotFound', `device ${id} not found`, { device: id });
    const twins: Twin[] = [];
    const values = this.cache.device(id);
    for (const p of rec.runner.prepared.properties) {
      const v = values.get(p.request.name)?.sample;
      const d = rec.runner.observedDesired.get(p.request.name);
      twins.push({
        propertyName: p.request.name,
        reported: v ? { value: v.text, metadata: { timestamp: String(v.timestamp), type: v.type } } : undefined,
        observedDesired: { value: d ?? '', metadata: { type: p.request.type } },
      });
    }
    const proto = Device.decode(rec.encoded);
    return { ...proto, status: { twins, reportToCloud: proto.status?.reportToCloud ?? false, reportCycle: proto.status?.reportCycle ?? 0n } };
  }

  // ---- views for REST, metrics, tests ----

  deviceViews(): DeviceView[] {
    return [...this.devices.keys()].map((id) => this.deviceView(id)!);
  }

  deviceView(id: string): DeviceView | undefined {
    const rec = this.devices.get(id);
    if (!rec) return undefined;
    const r = rec.runner;
    return {
      id,
      spec: r.prepared.spec,
      model: r.prepared.model,
      state: r.state,
      stateDetail: r.stateDetail,
      connected: r.connected,
      disabled: r.prepared.disabled,
      observedDesired: r.observedDesired,
      values: this.cache.device(id),
    };
  }

  /** Writes a property from text (REST device methods, tools). */
  async writeProperty(namespace: string, name: string, property: string, text: string, signal?: AbortSignal): Promise<PropertyValue> {
    const id = resourceId(namespace, name);
    const rec = this.devices.get(id);
    if (!rec) throw new MapperError('DeviceNotFound', `device ${id} not found`, { device: id });
    return rec.runner.write(property, text, signal);
  }

  stats(): StatsSnapshot {
    return {
      ...this.stats_,
      devices: this.devices.size,
      tickLagP50: this.lag.percentile(50),
      tickLagP99: this.lag.percentile(99),
      tickLagMax: this.lag.percentile(100),
      ticks: this.lag.count,
      registered: this.registered,
    };
  }

  /** Clears the tick-lag reservoir (benchmarks discard warm-up). */
  resetLag(): void {
    this.lag.reset();
  }

  /** Stops everything: DMI server, devices (closing their clients), consumers, edgecore channel, socket file. */
  async stop(): Promise<void> {
    if (this.ctl.signal.aborted) return;
    this.ctl.abort(new MapperError('Cancelled', 'mapper shutting down'));
    this.wake.abort();
    await this.server?.close();
    await Promise.all([...this.devices.values()].map((r) => r.runner.stop()));
    this.devices.clear();
    for (const c of this.consumers) {
      try {
        await c.close?.();
      } catch (err) {
        this.consumerFailed(c, err);
      }
    }
    this.link.close();
    try {
      await this.driver.dispose?.();
    } catch (err) {
      this.log.warn({ err: toMapperError(err).message }, 'driver dispose failed');
    }
    this.log.info('mapper stopped');
  }
}
