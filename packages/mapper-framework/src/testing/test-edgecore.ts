// SPDX-License-Identifier: Apache-2.0
// An in-process edgecore for tests: DeviceManagerService on a unix socket (same proto as the
// real one, edgecore's register semantics and optional rate limiter), plus a client for the
// mapper's DeviceMapperService. Not a product: see @mapperkit/edgecore-dmi for that.
import { credentials, Metadata, type sendUnaryData, type ServerUnaryCall, status } from '@grpc/grpc-js';
import { deviceModelRef, deviceModelToProto, deviceToProto, parseCrdYaml } from '../dmi/crd.js';
import { resourceId } from '../dmi/model.js';
import { UnixGrpcServer, unixTarget } from '../dmi/transport.js';
import {
  type Device,
  DeviceManagerServiceService,
  DeviceMapperServiceClient,
  type DeviceModel,
  type GetDeviceResponse,
  type MapperInfo,
  type MapperRegisterRequest,
  type MapperRegisterResponse,
  type ReportDeviceStatesRequest,
  type ReportDeviceStatusRequest,
} from '../generated/v1beta1/api.js';
import { TokenBucket } from '../dmi/limiter.js';

export interface TestEdgecoreOptions {
  /** Where to listen. */
  readonly socketPath: string;
  readonly devices?: readonly Device[];
  readonly models?: readonly DeviceModel[];
  /** Emulate edgecore's server limiter (1 request/s, burst 100 by default); `false` to disable. */
  readonly limiter?: false | { readonly rate: number; readonly burst: number };
  /** Most reports kept in `statusReports`/`stateReports` (oldest dropped first). Default 100,000. */
  readonly maxHistory?: number;
}

/** A reported twin as the test edgecore stores it. */
export interface StoredTwin {
  readonly reported: string;
  readonly observedDesired: string;
  readonly reportedAt: number;
}

type Waiter = () => boolean;

/** A fake DeviceManagerService (edgecore side of DMI). */
export class TestEdgecore {
  readonly socketPath: string;
  /** Every MapperRegister request, with its arrival time (ms since epoch). */
  readonly registrations: { request: MapperRegisterRequest; at: number }[] = [];
  /** Every accepted ReportDeviceStatus request. */
  readonly statusReports: { request: ReportDeviceStatusRequest; at: number }[] = [];
  /** Every accepted ReportDeviceStates request. */
  readonly stateReports: { request: ReportDeviceStatesRequest; at: number }[] = [];
  /** Requests refused by the emulated limiter. */
  rateLimited = 0;
  private devices: Device[];
  private models: DeviceModel[];
  private readonly twins = new Map<string, Map<string, StoredTwin>>();
  private readonly states = new Map<string, string>();
  private readonly limiter: TokenBucket | undefined;
  private server: UnixGrpcServer | undefined;
  private readonly waiters = new Set<Waiter>();
  private mapperClient: DeviceMapperServiceClient | undefined;
  private mapperAddress = '';
  private readonly maxHistory: number;

  private constructor(opts: TestEdgecoreOptions) {
    this.socketPath = opts.socketPath;
    this.devices = [...(opts.devices ?? [])];
    this.models = [...(opts.models ?? [])];
    const lim = opts.limiter === undefined ? { rate: 1, burst: 100 } : opts.limiter;
    this.limiter = lim ? new TokenBucket(lim.rate, lim.burst) : undefined;
    this.maxHistory = opts.maxHistory ?? 100_000;
  }

  private keep<T>(list: T[], item: T): void {
    list.push(item);
    if (list.length > this.maxHistory) list.splice(0, list.length - this.maxHistory);
  }

  /** Starts a test edgecore listening on `socketPath`. */
  static async start(opts: TestEdgecoreOptions): Promise<TestEdgecore> {
    const ec = new TestEdgecore(opts);
    await ec.listen();
    return ec;
  }

  /** Devices and models from devices.kubeedge.io/v1beta1 YAML, converted as edgecore converts them. */
  static fromCrdYaml(yamlText: string): { devices: Device[]; models: DeviceModel[] } {
    const docs = parseCrdYaml(yamlText);
    if (docs.problems.length > 0) throw docs.problems[0];
    const modelsById = new Map(docs.models.map((m) => [resourceId((m['metadata'] as { namespace?: string })?.namespace, String((m['metadata'] as { name?: string })?.name)), m]));
    return {
      models: docs.models.map(deviceModelToProto),
      devices: docs.devices.map((d) => deviceToProto(d, modelsById.get(deviceModelRef(d)))),
    };
  }

  /** (Re)starts listening, e.g. after {@link stop} to simulate an edgecore restart. */
  async listen(): Promise<void> {
    const server = new UnixGrpcServer(this.socketPath);
    server.server.addService(DeviceManagerServiceService, {
      mapperRegister: (call: ServerUnaryCall<MapperRegisterRequest, MapperRegisterResponse>, cb: sendUnaryData<MapperRegisterResponse>) =>
        this.handle(call, cb, 'MapperRegister', (req) => this.onRegister(req)),
      reportDeviceStatus: (call: ServerUnaryCall<ReportDeviceStatusRequest, object>, cb: sendUnaryData<object>) =>
        this.handle(call, cb, 'ReportDeviceStatus', (req) => this.onStatus(req)),
      reportDeviceStates: (call: ServerUnaryCall<ReportDeviceStatesRequest, object>, cb: sendUnaryData<object>) =>
        this.handle(call, cb, 'ReportDeviceStates', (req) => this.onStates(req)),
    });
    await server.listen();
    this.server = server;
  }

  private handle<Req, Res>(call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>, name: string, fn: (req: Req) => Res): void {
    if (this.limiter && !this.limiter.tryTake()) {
      this.rateLimited++;
      // edgecore answers with a plain error (code UNKNOWN) and this text.
      cb({ code: status.UNKNOWN, details: `fail to ${name} because of too many request: ${name}` });
      return;
    }
    try {
      const res = fn(call.request);
      cb(null, res);
    } catch (err) {
      cb({ code: status.UNKNOWN, details: (err as Error).message });
    }
    this.notify();
  }

  private onRegister(req: MapperRegisterRequest): MapperRegisterResponse {
    if (!req.mapper?.protocol) throw new Error('fail to register mapper because the protocol is nil');
    this.registrations.push({ request: req, at: Date.now() });
    const address = Buffer.from(req.mapper.address).toString('utf8');
    if (req.withData && address !== this.mapperAddress) {
      this.mapperClient?.close();
      this.mapperClient = new DeviceMapperServiceClient(unixTarget(address), credentials.createInsecure());
      this.mapperAddress = address;
    }
    if (!req.withData) return { modelList: [], deviceList: [] };
    const deviceList: Device[] = [];
    const modelList: DeviceModel[] = [];
    for (const d of this.devices) {
      if (d.spec?.protocol?.protocolName !== req.mapper.protocol) continue;
      const m = this.models.find((x) => (x.namespace || 'default') === (d.namespace || 'default') && x.name === d.spec?.deviceModelReference);
      if (!m) continue; // edgecore skips devices whose model it does not have
      deviceList.push(d);
      modelList.push(m);
    }
    return { modelList, deviceList };
  }

  private onStatus(req: ReportDeviceStatusRequest): object {
    if (!req.reportedDevice) throw new Error('ReportDeviceStatusRequest does not have twin data');
    const id = resourceId(req.deviceNamespace, req.deviceName);
    this.keep(this.statusReports, { request: req, at: Date.now() });
    let m = this.twins.get(id);
    if (!m) this.twins.set(id, (m = new Map()));
    for (const t of req.reportedDevice.twins) {
      m.set(t.propertyName, { reported: t.reported?.value ?? '', observedDesired: t.observedDesired?.value ?? '', reportedAt: Date.now() });
    }
    return {};
  }

  private onStates(req: ReportDeviceStatesRequest): object {
    if (!req.state || !req.deviceName) throw new Error('ReportDeviceStatesRequest requires state and deviceName');
    const allowed = ['online', 'offline', 'ok', 'unknown', 'unhealthy'];
    if (!allowed.includes(req.state.toLowerCase())) throw new Error(`unsupported device state ${req.state}`);
    this.keep(this.stateReports, { request: req, at: Date.now() });
    this.states.set(resourceId(req.deviceNamespace, req.deviceName), req.state);
    return {};
  }

  /** Latest twins reported for `namespace/name`. */
  twinsOf(deviceId: string): ReadonlyMap<string, StoredTwin> {
    return this.twins.get(deviceId) ?? new Map();
  }

  /** Latest state reported for `namespace/name`. */
  stateOf(deviceId: string): string | undefined {
    return this.states.get(deviceId);
  }

  /** The last registered mapper. */
  get mapper(): MapperInfo | undefined {
    return this.registrations.at(-1)?.request.mapper;
  }

  /** Replaces the devices/models returned by the next MapperRegister. */
  setInventory(devices: readonly Device[], models: readonly DeviceModel[]): void {
    this.devices = [...devices];
    this.models = [...models];
  }

  /** Resolves when `predicate` holds (checked after every request and every 50 ms); rejects after `timeoutMs`. */
  waitFor(predicate: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check: Waiter = () => {
        if (!predicate()) return false;
        cleanup();
        resolve();
        return true;
      };
      const poll = setInterval(check, 50);
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearInterval(poll);
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
    });
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  private client(): DeviceMapperServiceClient {
    if (!this.mapperClient) throw new Error('no mapper has registered with withData=true yet');
    return this.mapperClient;
  }

  private call<Req, Res>(method: string, req: Req): Promise<Res> {
    const c = this.client() as unknown as Record<string, (r: Req, m: Metadata, o: object, cb: (e: Error | null, r: Res) => void) => void>;
    return new Promise((resolve, reject) => {
      c[method]!.call(this.mapperClient, req, new Metadata(), { deadline: Date.now() + 10_000 }, (err, res) => (err ? reject(err) : resolve(res)));
    });
  }

  /** Calls the mapper's RegisterDevice. */
  registerDevice(device: Device): Promise<{ deviceName: string; deviceNamespace: string }> {
    return this.call('registerDevice', { device });
  }
  updateDevice(device: Device): Promise<object> {
    return this.call('updateDevice', { device });
  }
  removeDevice(namespace: string, name: string): Promise<object> {
    return this.call('removeDevice', { deviceName: name, deviceNamespace: namespace });
  }
  createDeviceModel(model: DeviceModel): Promise<{ deviceModelName: string; deviceModelNamespace: string }> {
    return this.call('createDeviceModel', { model });
  }
  updateDeviceModel(model: DeviceModel): Promise<object> {
    return this.call('updateDeviceModel', { model });
  }
  removeDeviceModel(namespace: string, name: string): Promise<object> {
    return this.call('removeDeviceModel', { modelName: name, modelNamespace: namespace });
  }
  getDevice(namespace: string, name: string): Promise<GetDeviceResponse> {
    return this.call('getDevice', { deviceName: name, deviceNamespace: namespace });
  }

  /** Stops listening (removes the socket); {@link listen} starts again. */
  async stop(): Promise<void> {
    await this.server?.close(200);
    this.server = undefined;
  }

  /** Stops listening and closes the mapper client. */
  async close(): Promise<void> {
    await this.stop();
    this.mapperClient?.close();
    this.mapperClient = undefined;
    this.mapperAddress = '';
    this.waiters.clear();
  }
}
