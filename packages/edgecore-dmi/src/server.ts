// SPDX-License-Identifier: Apache-2.0
// EdgecoreDmi: the edgecore side of DMI as a small real server. DeviceManagerService on a unix
// socket, the inventory from YAML files and the API, delivery to mappers by protocol, reports
// stored in SQLite, the emulated edgecore limiter, and an HTTP API with a live dashboard.
import { EventEmitter } from 'node:events';
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type sendUnaryData, type ServerUnaryCall, status } from '@grpc/grpc-js';
import { MapperError } from '@mapperkit/framework';
import {
  DeviceManagerServiceService,
  type MapperRegisterRequest,
  type MapperRegisterResponse,
  type ReportDeviceStatesRequest,
  type ReportDeviceStatusRequest,
  UnixGrpcServer,
} from '@mapperkit/framework/dmi';
import { pino, type Logger } from 'pino';
import { DEFAULT_HTTP, DEFAULT_SOCKET, defaultDbPath } from './defaults.js';
import { type CallRecord, type ChannelView, MapperChannel, registerResponse } from './dispatcher.js';
import { startHttpApi, type HttpApi } from './http.js';
import { addReflection } from '@mapperkit/framework/reflection';
import {
  buildSnapshot,
  definedDesired,
  type DeviceEntry,
  deviceProperties,
  EMPTY_SNAPSHOT,
  type Kind,
  type ModelEntry,
  modelProperty,
  parseSource,
  type Problem,
  type RawObject,
  rawFromApplied,
  type Snapshot,
} from './inventory.js';
import { TokenBucket } from './limiter.js';
import { FileSources } from './sources.js';
import { type StoredMapper, Store } from './store.js';
import { desiredValueProblem, protoJson, twinValueProblem } from './views.js';

export { DEFAULT_HTTP, DEFAULT_SOCKET, defaultDbPath };
export const DEVICE_STATES = ['online', 'offline', 'ok', 'unknown', 'unhealthy'] as const;

export interface EdgecoreDmiOptions {
  /** DeviceManagerService socket (default /etc/kubeedge/dmi.sock). A stale file is removed; mode 0660. */
  readonly socketPath?: string;
  /** Files and directories with Device/DeviceModel YAML (watched). */
  readonly devices?: string | readonly string[];
  /** SQLite file (default {@link defaultDbPath}); ':memory:' keeps nothing across restarts. */
  readonly dbPath?: string;
  /** HTTP API and dashboard, `host:port` (port 0 picks a free one); `false` for none. Default 127.0.0.1:7780. */
  readonly http?: string | false;
  /** Emulate edgecore's limiter (default: 1 request/s, burst 100); `false` disables it. */
  readonly limiter?: false | { readonly rate: number; readonly burst: number };
  /** Reported values kept per property (default 500). */
  readonly historyLimit?: number;
  /** Watch the device paths (default true). */
  readonly watch?: boolean;
  /** Safety-net rescan of the device paths, ms (default 2000; 0 disables). */
  readonly pollMs?: number;
  /** Deadline of one call to a mapper, ms (edgecore: 10 s). */
  readonly callTimeoutMs?: number;
  /** Retry backoff for unreachable mappers, ms (default 500 → 10000). */
  readonly retryInitialMs?: number;
  readonly retryMaxMs?: number;
  readonly logger?: Logger;
  /** pino level when no logger is given (default info). */
  readonly logLevel?: pino.LevelWithSilent;
  /** gRPC server reflection on the socket, as edgecore registers it (default true). */
  readonly reflection?: boolean;
}

/** A stored problem that happened at run time (reports, deliveries), with a repeat count. */
export interface RuntimeProblem extends Problem {
  readonly count: number;
  readonly firstAt: number;
  readonly lastAt: number;
}

export interface LimiterStats {
  readonly enabled: boolean;
  readonly rate: number;
  readonly burst: number;
  readonly available: number;
  /** Calls refused by the limiter, total and per RPC. */
  readonly throttled: number;
  readonly throttledByMethod: Readonly<Record<string, number>>;
  /** Calls refused per mapper (reports attributed through the device's protocol). */
  readonly throttledByMapper: Readonly<Record<string, number>>;
}

export interface ServerStats {
  readonly startedAt: number;
  /** Accepted DeviceManagerService calls per RPC. */
  readonly requests: Readonly<Record<string, number>>;
  readonly limiter: LimiterStats;
  readonly calls: { readonly ok: number; readonly failed: number };
}

/** A live event (also sent to dashboard clients over SSE). */
export type ServerEvent =
  | { type: 'twin'; data: { deviceId: string; property: string; reported: string; observedDesired: string; at: number } }
  | { type: 'state'; data: { deviceId: string; state: string; at: number } }
  | { type: 'mapper'; data: { name: string; protocol: string } }
  | { type: 'inventory'; data: { devices: number; models: number; problems: number } }
  | { type: 'problem'; data: Problem }
  | { type: 'call'; data: CallRecord }
  | { type: 'delivery'; data: { protocol: string } }
  | { type: 'throttled'; data: { method: string; total: number } };

export interface TwinView {
  readonly property: string;
  readonly type: string;
  readonly accessMode: string;
  readonly reported: string | undefined;
  readonly reportedAt: number | undefined;
  /** What the mapper reported as applied (observedDesired). */
  readonly observedDesired: string | undefined;
  /** The desired value in service (definition or override). */
  readonly desired: string;
  readonly desiredOverride: boolean;
}

export interface DeviceView {
  readonly id: string;
  readonly name: string;
  readonly namespace: string;
  readonly protocol: string;
  readonly model: string;
  readonly source: string;
  readonly valid: boolean;
  readonly stale: boolean;
  readonly delivery: { readonly status: 'delivered' | 'pending' | 'rejected' | 'no-mapper' | 'not-sent'; readonly detail?: string };
  readonly mapper: string | undefined;
  readonly state: string | undefined;
  readonly stateAt: number | undefined;
  readonly lastOnline: number | undefined;
  readonly twins: readonly TwinView[];
  readonly errors: readonly string[];
}

export interface ModelView {
  readonly id: string;
  readonly name: string;
  readonly namespace: string;
  readonly protocol: string;
  readonly source: string;
  readonly valid: boolean;
  readonly stale: boolean;
  readonly properties: readonly { name: string; type: string; accessMode: string; unit: string; minimum: string; maximum: string }[];
  readonly errors: readonly string[];
}

export interface MapperView extends StoredMapper {
  /** Whether this mapper currently receives the calls for its protocol (the last one registered with data). */
  readonly active: boolean;
  readonly sync: ChannelView | undefined;
  readonly devices: number;
}

/** Result of apply/delete through the API. */
export interface ApplyResult {
  readonly changed: readonly { kind: Kind; id: string; action: 'created' | 'configured' | 'unchanged' | 'deleted' }[];
  readonly errors: readonly Problem[];
}

const CALL_LOG_LIMIT = 500;
const RUNTIME_PROBLEM_LIMIT = 300;

function location(e: { origin: { source: string; line: number } }): string {
  return e.origin.line > 0 ? `${e.origin.source}:${e.origin.line}` : e.origin.source;
}

function splitDeviceId(ref: string): string {
  return ref.includes('/') ? ref : `default/${ref}`;
}

export class EdgecoreDmi {
  readonly socketPath: string;
  readonly store: Store;
  readonly log: Logger;
  readonly events = new EventEmitter();
  private readonly opts: EdgecoreDmiOptions;
  private readonly limiter: TokenBucket | undefined;
  private readonly sources: FileSources;
  private grpc: UnixGrpcServer | undefined;
  private httpApi: HttpApi | undefined;
  private current: Snapshot = EMPTY_SNAPSHOT;
  private signature = '';
  private readonly channels = new Map<string, MapperChannel>();
  private readonly runtimeProblems = new Map<string, RuntimeProblem>();
  private readonly callLog: CallRecord[] = [];
  private readonly requests: Record<string, number> = {};
  private readonly throttledByMethod: Record<string, number> = {};
  private readonly throttledByMapper: Record<string, number> = {};
  private throttled = 0;
  private callsOk = 0;
  private callsFailed = 0;
  private readonly startedAt = Date.now();
  private closed = false;

  private constructor(opts: EdgecoreDmiOptions) {
    this.opts = opts;
    // edgecore >= v1.23 takes a directory and listens on <dir>/dmi.sock; accept both forms.
    const sock = resolve(opts.socketPath ?? DEFAULT_SOCKET);
    this.socketPath = existsSync(sock) && statSync(sock).isDirectory() ? join(sock, 'dmi.sock') : sock;
    this.log = opts.logger ?? pino({ level: opts.logLevel ?? 'info', base: { component: 'edgecore-dmi' }, timestamp: pino.stdTimeFunctions.isoTime });
    this.store = new Store(opts.dbPath ?? defaultDbPath(), { historyLimit: opts.historyLimit });
    const lim = opts.limiter === undefined ? { rate: 1, burst: 100 } : opts.limiter;
    this.limiter = lim ? new TokenBucket(lim.rate, lim.burst) : undefined;
    const paths = opts.devices === undefined ? [] : typeof opts.devices === 'string' ? [opts.devices] : [...opts.devices];
    this.sources = new FileSources(paths, this.log);
    this.events.setMaxListeners(0);
  }

  /** Starts the server: loads the inventory, restores known mappers, listens on the socket and HTTP. */
  static async start(opts: EdgecoreDmiOptions = {}): Promise<EdgecoreDmi> {
    const s = new EdgecoreDmi(opts);
    try {
      await s.init();
    } catch (err) {
      await s.close().catch(() => undefined);
      throw err;
    }
    return s;
  }

  private async init(): Promise<void> {
    this.reload();
    // Mappers known from a previous run get their channel back (edgecore v1.23 does the same).
    for (const m of this.store.mappers()) if (m.withData && !this.channels.has(m.protocol)) this.channelFor(m.protocol, m.name, m.address).schedule(0);
    const grpc = new UnixGrpcServer(this.socketPath);
    grpc.server.addService(DeviceManagerServiceService, {
      mapperRegister: (call: ServerUnaryCall<MapperRegisterRequest, MapperRegisterResponse>, cb: sendUnaryData<MapperRegisterResponse>) =>
        this.handle('MapperRegister', call, cb, (req) => this.onRegister(req)),
      reportDeviceStatus: (call: ServerUnaryCall<ReportDeviceStatusRequest, object>, cb: sendUnaryData<object>) =>
        this.handle('ReportDeviceStatus', call, cb, (req) => this.onReportStatus(req)),
      reportDeviceStates: (call: ServerUnaryCall<ReportDeviceStatesRequest, object>, cb: sendUnaryData<object>) =>
        this.handle('ReportDeviceStates', call, cb, (req) => this.onReportStates(req)),
    });
    if (this.opts.reflection ?? true) addReflection(grpc.server, ['v1beta1.DeviceManagerService']);
    await grpc.listen();
    this.grpc = grpc;
    this.log.info({ socket: this.socketPath, db: this.store.path, limiter: this.limiter ? { rate: this.limiter.rate, burst: this.limiter.burst } : false }, 'DeviceManagerService listening');
    if (this.opts.watch ?? true) this.sources.watch(() => this.reload(), { debounceMs: 100, pollMs: this.opts.pollMs ?? 2000 });
    const http = this.opts.http === undefined ? DEFAULT_HTTP : this.opts.http;
    if (http !== false) {
      this.httpApi = await startHttpApi(this, http);
      this.log.info({ url: this.httpApi.url }, 'HTTP API and dashboard listening');
    }
  }

  /** Base URL of the HTTP API and dashboard (undefined without HTTP). */
  get url(): string | undefined {
    return this.httpApi?.url;
  }

  private emit(ev: ServerEvent): void {
    this.events.emit('event', ev);
  }

  // ---- inventory ----

  /** Re-reads the files, rebuilds the inventory and starts delivery of what changed. */
  reload(force = false): Snapshot {
    if (this.closed) return this.current;
    const scan = this.sources.scan();
    const applied = this.store.applied().map((a) => rawFromApplied(a.kind, a.object, a.source));
    const overrides = this.store.desired();
    const signature = `${scan.signature}|${applied.map((a) => `${a.kind}/${a.id}@${JSON.stringify(a.object)}`).join(',')}|${overrides.map((o) => `${o.deviceId}/${o.property}=${o.value}`).join(',')}`;
    if (!force && signature === this.signature) return this.current;
    this.signature = signature;
    this.rebuild([...scan.objects, ...applied], scan.problems);
    return this.current;
  }

  private rebuild(objects: RawObject[], parseProblems: Problem[]): void {
    // Overrides whose device is gone, or whose definition changed its desired value, expire.
    const byId = new Map(objects.filter((o) => o.kind === 'Device').map((o) => [o.id, o]));
    const overrides = new Map<string, Map<string, string>>();
    for (const o of this.store.desired()) {
      const dev = byId.get(o.deviceId);
      if (!dev || !deviceProperties(dev.object).includes(o.property) || definedDesired(dev.object, o.property) !== o.base) {
        this.store.clearDesired(o.deviceId, o.property);
        this.log.info({ device: o.deviceId, property: o.property }, 'desired-value override dropped (device or its desired value changed)');
        continue;
      }
      let m = overrides.get(o.deviceId);
      if (!m) overrides.set(o.deviceId, (m = new Map()));
      m.set(o.property, o.value);
    }
    const previous = this.current;
    const next = buildSnapshot({ objects, parseProblems, overrides, previous });
    const before = new Set(previous.problems.map((p) => p.message));
    for (const p of next.problems) {
      if (before.has(p.message)) continue;
      this.log[p.severity === 'error' ? 'error' : 'warn']({ source: p.source, line: p.line, kind: p.kind, id: p.id, field: p.field }, p.message);
      this.emit({ type: 'problem', data: p });
    }
    this.current = next;
    this.log.info({ devices: next.devices.size, models: next.models.size, problems: next.problems.length }, 'inventory loaded');
    this.emit({ type: 'inventory', data: { devices: next.devices.size, models: next.models.size, problems: next.problems.length } });
    for (const ch of this.channels.values()) ch.schedule(0);
    for (const d of next.devices.values()) {
      if (d.proto && !this.channels.has(d.protocol) && !previous.devices.get(d.id)?.proto) {
        this.log.info({ device: d.id, protocol: d.protocol }, 'no mapper registered for this protocol yet; the device is sent when one registers');
      }
    }
  }

  /** The current inventory. */
  snapshot(): Snapshot {
    return this.current;
  }

  private channelFor(protocol: string, mapper: string, address: string): MapperChannel {
    let ch = this.channels.get(protocol);
    if (!ch) {
      ch = new MapperChannel(
        protocol,
        mapper,
        address,
        this.store,
        {
          snapshot: () => this.current,
          call: (r) => this.recordCall(r),
          problem: (key, p) => this.setRuntimeProblem(key, p),
          changed: () => this.emit({ type: 'delivery', data: { protocol } }),
        },
        { callTimeoutMs: this.opts.callTimeoutMs ?? 10_000, retryInitialMs: this.opts.retryInitialMs ?? 500, retryMaxMs: this.opts.retryMaxMs ?? 10_000 },
        this.log,
      );
      this.channels.set(protocol, ch);
    }
    return ch;
  }

  private recordCall(r: CallRecord): void {
    this.callLog.push(r);
    if (this.callLog.length > CALL_LOG_LIMIT) this.callLog.splice(0, this.callLog.length - CALL_LOG_LIMIT);
    if (r.ok) this.callsOk++;
    else this.callsFailed++;
    this.log[r.ok ? 'info' : 'warn']({ mapper: r.mapper, method: r.method, target: r.target, code: r.code, err: r.error, ms: r.durationMs }, `DMI ${r.method} ${r.target}`);
    this.emit({ type: 'call', data: r });
  }

  private setRuntimeProblem(key: string, p: Problem | undefined): void {
    if (!p) {
      this.runtimeProblems.delete(key);
      return;
    }
    const now = Date.now();
    const prev = this.runtimeProblems.get(key);
    this.runtimeProblems.delete(key);
    this.runtimeProblems.set(key, { ...p, count: (prev?.count ?? 0) + 1, firstAt: prev?.firstAt ?? now, lastAt: now });
    if (this.runtimeProblems.size > RUNTIME_PROBLEM_LIMIT) this.runtimeProblems.delete(this.runtimeProblems.keys().next().value!);
    if (!prev || prev.message !== p.message) {
      this.log[p.severity === 'error' ? 'error' : 'warn']({ kind: p.kind, id: p.id, field: p.field }, p.message);
      this.emit({ type: 'problem', data: p });
    }
  }

  // ---- DeviceManagerService ----

  private handle<Req, Res>(method: string, call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>, fn: (req: Req) => Res): void {
    if (this.limiter && !this.limiter.tryTake()) {
      this.throttled++;
      this.throttledByMethod[method] = (this.throttledByMethod[method] ?? 0) + 1;
      const mapper = this.mapperOfRequest(method, call.request);
      if (mapper) this.throttledByMapper[mapper] = (this.throttledByMapper[mapper] ?? 0) + 1;
      if (this.throttled === 1 || this.throttled % 100 === 0) {
        this.log.warn({ method, mapper, throttled: this.throttled }, 'request refused by the emulated edgecore limiter (1 request/s, burst 100 upstream): this mapper is too chatty for a real node');
      }
      this.emit({ type: 'throttled', data: { method, total: this.throttled } });
      // edgecore's wording and status (a plain error, code UNKNOWN).
      cb({ code: status.UNKNOWN, details: `fail to ${method} because of too many request: ${method}` });
      return;
    }
    this.requests[method] = (this.requests[method] ?? 0) + 1;
    let res: Res;
    try {
      res = fn(call.request);
    } catch (err) {
      // edgecore's DMI server returns plain Go errors, which gRPC sends as UNKNOWN.
      cb({ code: status.UNKNOWN, details: (err as Error).message });
      return;
    }
    cb(null, res);
  }

  private mapperOfRequest(method: string, req: unknown): string | undefined {
    if (method === 'MapperRegister') return (req as MapperRegisterRequest).mapper?.name || undefined;
    const r = req as { deviceName?: string; deviceNamespace?: string };
    const dev = this.current.devices.get(`${r.deviceNamespace || 'default'}/${r.deviceName ?? ''}`);
    return dev ? this.channels.get(dev.protocol)?.mapper : undefined;
  }

  private onRegister(req: MapperRegisterRequest): MapperRegisterResponse {
    const m = req.mapper;
    if (!m?.protocol) throw new MapperError('InvalidConfig', 'fail to register mapper because the protocol is nil (MapperInfo.protocol is required)', { key: 'mapper.protocol' });
    const address = Buffer.from(m.address).toString('utf8');
    const stored = this.store.upsertMapper({
      name: m.name,
      version: m.version,
      apiVersion: m.apiVersion,
      protocol: m.protocol,
      address,
      state: m.state,
      withData: req.withData,
      registeredAt: Date.now(),
    });
    this.emit({ type: 'mapper', data: { name: m.name, protocol: m.protocol } });
    if (!req.withData) {
      this.log.info({ mapper: m.name, protocol: m.protocol }, 'mapper registered without data: no calls will be made to it (as edgecore)');
      return { modelList: [], deviceList: [] };
    }
    if (!address) throw new MapperError('InvalidConfig', `mapper ${m.name}: MapperInfo.address (its socket path) is required with withData=true`, { key: 'mapper.address' });
    const existing = this.channels.get(m.protocol);
    if (existing && existing.mapper !== m.name) {
      this.setRuntimeProblem(`mapper-replaced:${m.protocol}`, {
        severity: 'warning',
        source: 'dmi',
        message: `mapper ${m.name} replaced mapper ${existing.mapper} for protocol ${m.protocol} (edgecore keeps one mapper per protocol per node)`,
      });
    }
    const { response, delivered } = registerResponse(this.current, m.protocol);
    this.channelFor(m.protocol, m.name, address).registered(m.name, address, delivered);
    this.log.info({ mapper: m.name, protocol: m.protocol, address, devices: response.deviceList.length, registrations: stored.registrations }, 'mapper registered');
    return response;
  }

  private onReportStatus(req: ReportDeviceStatusRequest): object {
    const twins = req.reportedDevice?.twins ?? [];
    if (twins.length === 0) throw new MapperError('InvalidConfig', 'ReportDeviceStatusRequest does not have twin data', { key: 'reportedDevice.twins' });
    const id = `${req.deviceNamespace || 'default'}/${req.deviceName}`;
    const dev = this.current.devices.get(id);
    if (!dev) {
      this.setRuntimeProblem(`report:${id}`, { severity: 'warning', source: 'dmi', kind: 'Device', id, message: `ReportDeviceStatus for unknown device ${id}: dropped (edgecore has no such device)` });
      return {};
    }
    const model = this.current.models.get(dev.modelId);
    const at = Date.now();
    const accepted: { property: string; reported: string; reportedMetadata: Record<string, string>; observedDesired: string }[] = [];
    for (const t of twins) {
      const value = t.reported?.value ?? '';
      const type = modelProperty(model, t.propertyName)?.type ?? '';
      const bad = type ? twinValueProblem(type, value) : undefined;
      const key = `twin:${id}:${t.propertyName}`;
      if (bad) {
        this.setRuntimeProblem(key, {
          severity: 'error',
          source: 'dmi',
          kind: 'Device',
          id,
          field: `twins.${t.propertyName}`,
          message: `ReportDeviceStatus ${id} twin ${t.propertyName}: ${bad}; edgecore's DeviceTwin drops such a value`,
        });
        continue;
      }
      if (this.runtimeProblems.has(key)) this.setRuntimeProblem(key, undefined);
      accepted.push({ property: t.propertyName, reported: value, reportedMetadata: { ...(t.reported?.metadata ?? {}) }, observedDesired: t.observedDesired?.value ?? '' });
    }
    if (accepted.length > 0) this.store.putTwins(id, accepted, at);
    for (const t of accepted) this.emit({ type: 'twin', data: { deviceId: id, property: t.property, reported: t.reported, observedDesired: t.observedDesired, at } });
    return {};
  }

  private onReportStates(req: ReportDeviceStatesRequest): object {
    if (!req.deviceName) throw new MapperError('InvalidConfig', 'ReportDeviceStatesRequest: deviceName is required', { key: 'deviceName' });
    if (!req.state) throw new MapperError('InvalidConfig', 'ReportDeviceStatesRequest: state is required', { key: 'state' });
    const id = `${req.deviceNamespace || 'default'}/${req.deviceName}`;
    const state = req.state.toLowerCase();
    if (!(DEVICE_STATES as readonly string[]).includes(state)) {
      this.setRuntimeProblem(`state:${id}`, {
        severity: 'error',
        source: 'dmi',
        kind: 'Device',
        id,
        field: 'state',
        message: `ReportDeviceStates ${id}: state "${req.state}" is not accepted by edgecore (one of ${DEVICE_STATES.join(', ')}); dropped`,
      });
      return {};
    }
    if (!this.current.devices.has(id)) {
      this.setRuntimeProblem(`report:${id}`, { severity: 'warning', source: 'dmi', kind: 'Device', id, message: `ReportDeviceStates for unknown device ${id}: dropped (edgecore has no such device)` });
      return {};
    }
    if (this.runtimeProblems.has(`state:${id}`)) this.setRuntimeProblem(`state:${id}`, undefined);
    const stored = this.store.putState(id, state, Date.now());
    this.emit({ type: 'state', data: { deviceId: id, state, at: stored.at } });
    return {};
  }

  // ---- API operations ----

  /** Applies Device/DeviceModel YAML through the API (persisted; objects defined in files are refused). */
  apply(text: string, source = 'stdin'): ApplyResult {
    const { objects, problems } = parseSource(`api:${source}`, text);
    const errors: Problem[] = [...problems];
    const changed: { kind: Kind; id: string; action: 'created' | 'configured' | 'unchanged' }[] = [];
    const stored = new Map(this.store.applied().map((a) => [`${a.kind}/${a.id}`, a]));
    for (const o of objects) {
      const inService = (o.kind === 'Device' ? this.current.devices : this.current.models).get(o.id);
      if (inService && !inService.origin.source.startsWith('api:')) {
        errors.push({
          severity: 'error',
          source: o.origin.source,
          document: o.origin.document,
          kind: o.kind,
          id: o.id,
          field: 'metadata.name',
          message: `${o.origin.source} (document ${o.origin.document}): ${o.kind} ${o.id}: metadata.name: already defined in file ${location(inService)}; edit that file instead`,
        });
        continue;
      }
      const prev = stored.get(`${o.kind}/${o.id}`);
      const same = prev !== undefined && JSON.stringify(prev.object) === JSON.stringify(o.object);
      if (!same) this.store.putApplied({ kind: o.kind, id: o.id, object: o.object, source, appliedAt: Date.now() });
      changed.push({ kind: o.kind, id: o.id, action: prev === undefined ? 'created' : same ? 'unchanged' : 'configured' });
    }
    this.reload();
    for (const c of changed) {
      const e = (c.kind === 'Device' ? this.current.devices : this.current.models).get(c.id);
      errors.push(...(e?.errors ?? []));
    }
    return { changed, errors };
  }

  /** Deletes the objects named in YAML (only objects applied through the API). */
  delete(text: string, source = 'stdin'): ApplyResult {
    const { objects, problems } = parseSource(`api:${source}`, text);
    const errors: Problem[] = [...problems];
    const changed: { kind: Kind; id: string; action: 'deleted' }[] = [];
    for (const o of objects) {
      const inService = (o.kind === 'Device' ? this.current.devices : this.current.models).get(o.id);
      if (inService && !inService.origin.source.startsWith('api:')) {
        errors.push({
          severity: 'error',
          source: o.origin.source,
          kind: o.kind,
          id: o.id,
          message: `${o.kind} ${o.id} is defined in file ${location(inService)}; remove it from that file instead`,
        });
        continue;
      }
      if (this.store.removeApplied(o.kind, o.id)) changed.push({ kind: o.kind, id: o.id, action: 'deleted' });
      else errors.push({ severity: 'error', source: o.origin.source, kind: o.kind, id: o.id, message: `${o.kind} ${o.id} not found` });
    }
    this.reload();
    return { changed, errors };
  }

  /** Sets the desired value of a device property (laid over its definition) and sends UpdateDevice. */
  setDesired(deviceRef: string, property: string, value: string): DeviceView {
    const id = splitDeviceId(deviceRef);
    const dev = this.current.devices.get(id);
    if (!dev) throw new MapperError('DeviceNotFound', `device ${id} not found`, { device: id });
    const props = deviceProperties(dev.object);
    if (!props.includes(property)) {
      throw new MapperError('PropertyNotFound', `device ${id} has no property "${property}" (its properties: ${props.join(', ') || 'none'})`, { device: id, property });
    }
    const mp = modelProperty(this.current.models.get(dev.modelId), property);
    if (mp?.accessMode === 'ReadOnly') throw new MapperError('WriteRejected', `property "${property}" of device ${id} is ReadOnly in DeviceModel ${dev.modelId}`, { device: id, property });
    const bad = mp ? desiredValueProblem(mp.type, value) : undefined;
    if (bad) throw new MapperError('InvalidConfig', `device ${id} property ${property}: ${bad} (type ${mp?.type})`, { device: id, property });
    this.store.setDesired({ deviceId: id, property, value, base: definedDesired(dev.object, property), at: Date.now() });
    this.reload();
    return this.deviceView(id)!;
  }

  // ---- views ----

  private deliveryOf(d: DeviceEntry): DeviceView['delivery'] {
    if (!d.proto) return { status: 'not-sent', detail: d.errors.find((e) => e.severity === 'error')?.message };
    const ch = this.channels.get(d.protocol);
    if (!ch) return { status: 'no-mapper', detail: `no mapper with protocol "${d.protocol}" has registered` };
    return ch.deliveryOf('Device', d.id, d.fingerprint);
  }

  deviceView(ref: string): DeviceView | undefined {
    const d = this.current.devices.get(splitDeviceId(ref));
    if (!d) return undefined;
    const model = this.current.models.get(d.modelId);
    const stored = new Map(this.store.twins(d.id).map((t) => [t.property, t]));
    const overrides = new Set(this.store.desired().filter((o) => o.deviceId === d.id).map((o) => o.property));
    const desiredOf = new Map((d.proto?.spec?.properties ?? []).map((p) => [p.name, p.desired?.value ?? '']));
    const twins: TwinView[] = deviceProperties(d.object).map((property) => {
      const t = stored.get(property);
      const mp = modelProperty(model, property);
      return {
        property,
        type: mp?.type ?? '',
        accessMode: mp?.accessMode ?? '',
        reported: t?.reported,
        reportedAt: t?.reportedAt,
        observedDesired: t?.observedDesired,
        desired: desiredOf.get(property) ?? definedDesired(d.object, property),
        desiredOverride: overrides.has(property),
      };
    });
    const st = this.store.state(d.id);
    return {
      id: d.id,
      name: d.name,
      namespace: d.namespace,
      protocol: d.protocol,
      model: d.modelId,
      source: location(d),
      valid: d.valid,
      stale: d.stale,
      delivery: this.deliveryOf(d),
      mapper: this.channels.get(d.protocol)?.mapper,
      state: st?.state,
      stateAt: st?.at,
      lastOnline: st?.lastOnline || undefined,
      twins,
      errors: [...d.errors.map((e) => e.message), ...[...this.runtimeProblems.values()].filter((p) => p.id === d.id && p.kind === 'Device').map((p) => p.message)],
    };
  }

  devices(): DeviceView[] {
    return [...this.current.devices.keys()].sort().map((id) => this.deviceView(id)!);
  }

  /** Full detail of one device: the view plus the proto the mapper receives (Any values decoded). */
  deviceDetail(ref: string): (DeviceView & { proto: unknown; definition: unknown }) | undefined {
    const v = this.deviceView(ref);
    if (!v) return undefined;
    const d = this.current.devices.get(v.id)!;
    return { ...v, proto: d.proto ? protoJson(d.proto) : null, definition: d.object };
  }

  models(): ModelView[] {
    return [...this.current.models.values()]
      .sort((a, b) => a.id.localeCompare(b.id))
      .map((m: ModelEntry) => ({
        id: m.id,
        name: m.name,
        namespace: m.namespace,
        protocol: m.protocol,
        source: location(m),
        valid: m.valid,
        stale: m.stale,
        properties: (m.proto?.spec?.properties ?? []).map((p) => ({ name: p.name, type: p.type, accessMode: p.accessMode, unit: p.unit, minimum: p.minimum, maximum: p.maximum })),
        errors: m.errors.map((e) => e.message),
      }));
  }

  mappers(): MapperView[] {
    return this.store.mappers().map((m) => {
      const ch = this.channels.get(m.protocol);
      const active = ch?.mapper === m.name;
      return {
        ...m,
        active,
        sync: active ? ch.view() : undefined,
        devices: [...this.current.devices.values()].filter((d) => d.protocol === m.protocol && d.proto).length,
      };
    });
  }

  /** Load problems of the current inventory plus run-time problems (reports, deliveries), newest last. */
  problems(): (Problem & { count?: number; lastAt?: number })[] {
    return [...this.current.problems, ...this.runtimeProblems.values()];
  }

  calls(limit = 100): CallRecord[] {
    return this.callLog.slice(-limit);
  }

  history(ref: string, property: string, limit?: number): { value: string; at: number }[] {
    return this.store.history(splitDeviceId(ref), property, limit);
  }

  stats(): ServerStats {
    return {
      startedAt: this.startedAt,
      requests: { ...this.requests },
      limiter: {
        enabled: this.limiter !== undefined,
        rate: this.limiter?.rate ?? 0,
        burst: this.limiter?.burst ?? 0,
        available: this.limiter ? Math.floor(this.limiter.available()) : 0,
        throttled: this.throttled,
        throttledByMethod: { ...this.throttledByMethod },
        throttledByMapper: { ...this.throttledByMapper },
      },
      calls: { ok: this.callsOk, failed: this.callsFailed },
    };
  }

  /** Resolves when `predicate` holds (checked on every event and every 50 ms). */
  waitFor(predicate: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((res, rej) => {
      const check = (): void => {
        if (!predicate()) return;
        cleanup();
        res();
      };
      const poll = setInterval(check, 50);
      const timer = setTimeout(() => {
        cleanup();
        rej(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearInterval(poll);
        clearTimeout(timer);
        this.events.off('event', check);
      };
      this.events.on('event', check);
    });
  }

  /** Stops HTTP, the socket (removed), watchers and channels; closes the store. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sources.close();
    for (const ch of this.channels.values()) ch.close();
    await this.httpApi?.close();
    await this.grpc?.close(500);
    this.store.close();
    this.events.removeAllListeners();
  }
}

/** Starts edgecore-dmi; see {@link EdgecoreDmiOptions}. */
export function startEdgecoreDmi(options: EdgecoreDmiOptions = {}): Promise<EdgecoreDmi> {
  return EdgecoreDmi.start(options);
}
