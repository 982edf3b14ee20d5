// SPDX-License-Identifier: Apache-2.0
// Delivery of the inventory to mappers. One channel per protocol (as edgecore keys its DMI
// clients by protocol name). Each channel compares what its mapper has been sent (persisted
// fingerprints) with the inventory and makes the DMI calls that close the gap, in order:
// Create/UpdateDeviceModel, Register/UpdateDevice, RemoveDevice, RemoveDeviceModel. A mapper
// that cannot be reached is retried with backoff, and its MapperRegister resets the baseline
// (the response carries everything). A call the mapper rejects is reported, not retried until
// the object changes or the mapper registers again. Nothing is dropped silently.
import { type ChannelOptions, credentials, Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { type Device, type DeviceModel, DeviceMapperServiceClient, type MapperRegisterResponse, unixTarget } from '@mapperkit/framework/dmi';
import type { Logger } from 'pino';
import type { Kind, Problem, Snapshot } from './inventory.js';
import type { Delivered, Store } from './store.js';

export type DmiMethod = 'CreateDeviceModel' | 'UpdateDeviceModel' | 'RemoveDeviceModel' | 'RegisterDevice' | 'UpdateDevice' | 'RemoveDevice';

/** One call edgecore-dmi made to a mapper. */
export interface CallRecord {
  readonly at: number;
  readonly protocol: string;
  readonly mapper: string;
  readonly method: DmiMethod;
  /** `namespace/name` of the device or model. */
  readonly target: string;
  readonly ok: boolean;
  /** gRPC status code (0 = OK). */
  readonly code: number;
  readonly error?: string;
  readonly durationMs: number;
}

export type ChannelStatus = 'in-sync' | 'syncing' | 'retrying';

export interface ChannelView {
  readonly protocol: string;
  readonly mapper: string;
  readonly address: string;
  readonly status: ChannelStatus;
  /** Calls still to make (as of the last plan). */
  readonly pending: number;
  readonly lastError: string | undefined;
  readonly nextRetryAt: number | undefined;
}

interface Op {
  readonly method: DmiMethod;
  readonly kind: Kind;
  readonly id: string;
  readonly fingerprint: string | undefined;
  readonly device?: Device;
  readonly model?: DeviceModel;
}

export interface ChannelHooks {
  readonly snapshot: () => Snapshot;
  readonly call: (record: CallRecord) => void;
  /** Sets (problem) or clears (undefined) the delivery problem of one object on this channel. */
  readonly problem: (key: string, problem: Problem | undefined) => void;
  readonly changed: () => void;
}

export interface ChannelOptions_ {
  readonly callTimeoutMs: number;
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
}

const GRPC_OPTIONS: ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1000,
};

const TRANSPORT_CODES = new Set<number>([status.UNAVAILABLE, status.DEADLINE_EXCEEDED, status.CANCELLED]);

function splitId(id: string): { namespace: string; name: string } {
  const i = id.indexOf('/');
  return { namespace: id.slice(0, i), name: id.slice(i + 1) };
}

/** What the mapper of `protocol` should have, from the inventory. */
export function desiredFor(snapshot: Snapshot, protocol: string): { models: Map<string, DeviceModel & { fp: string }>; devices: Map<string, Device & { fp: string }> } {
  const devices = new Map<string, Device & { fp: string }>();
  const models = new Map<string, DeviceModel & { fp: string }>();
  for (const d of snapshot.devices.values()) {
    if (d.protocol !== protocol || !d.proto || !d.fingerprint) continue;
    const m = snapshot.models.get(d.modelId);
    if (!m?.proto || !m.fingerprint) continue;
    devices.set(d.id, { ...d.proto, fp: d.fingerprint });
    models.set(m.id, { ...m.proto, fp: m.fingerprint });
  }
  for (const m of snapshot.models.values()) if (m.protocol === protocol && m.proto && m.fingerprint) models.set(m.id, { ...m.proto, fp: m.fingerprint });
  return { models, devices };
}

/**
 * The MapperRegister(withData) answer: the devices of `protocol` whose model exists, with
 * `modelList[i]` the model of `deviceList[i]` (models repeat), as edgecore builds it.
 */
export function registerResponse(snapshot: Snapshot, protocol: string): { response: MapperRegisterResponse; delivered: Delivered } {
  const response: MapperRegisterResponse = { deviceList: [], modelList: [] };
  const delivered: Delivered = { models: new Map(), devices: new Map() };
  const ids = [...snapshot.devices.keys()].sort();
  for (const id of ids) {
    const d = snapshot.devices.get(id)!;
    if (d.protocol !== protocol || !d.proto || !d.fingerprint) continue;
    const m = snapshot.models.get(d.modelId);
    if (!m?.proto || !m.fingerprint) continue;
    response.deviceList.push(d.proto);
    response.modelList.push(m.proto);
    delivered.devices.set(d.id, d.fingerprint);
    delivered.models.set(m.id, m.fingerprint);
  }
  return { response, delivered };
}

export class MapperChannel {
  readonly protocol: string;
  mapper: string;
  address: string;
  private client: DeviceMapperServiceClient;
  private delivered: Delivered;
  /** `Kind/id` → fingerprint the mapper rejected (or 'removed' for a rejected removal). */
  private readonly rejected = new Map<string, string>();
  private status: ChannelStatus = 'in-sync';
  private pending = 0;
  private lastError: string | undefined;
  private nextRetryAt: number | undefined;
  private running = false;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private closed = false;
  private readonly store: Store;
  private readonly hooks: ChannelHooks;
  private readonly opts: ChannelOptions_;
  private readonly log: Logger;

  constructor(protocol: string, mapper: string, address: string, store: Store, hooks: ChannelHooks, opts: ChannelOptions_, log: Logger) {
    this.protocol = protocol;
    this.mapper = mapper;
    this.address = address;
    this.store = store;
    this.hooks = hooks;
    this.opts = opts;
    this.log = log.child({ protocol });
    this.client = new DeviceMapperServiceClient(unixTarget(address), credentials.createInsecure(), GRPC_OPTIONS);
    this.delivered = store.delivered(protocol);
  }

  view(): ChannelView {
    return { protocol: this.protocol, mapper: this.mapper, address: this.address, status: this.status, pending: this.pending, lastError: this.lastError, nextRetryAt: this.nextRetryAt };
  }

  /** Delivery status of one object on this channel. */
  deliveryOf(kind: Kind, id: string, fp: string | undefined): { status: 'delivered' | 'pending' | 'rejected'; detail?: string } {
    const have = (kind === 'Device' ? this.delivered.devices : this.delivered.models).get(id);
    if (fp !== undefined && have === fp) return { status: 'delivered' };
    if (fp !== undefined && this.rejected.get(`${kind}/${id}`) === fp) return { status: 'rejected', detail: `mapper ${this.mapper} rejected it` };
    return { status: 'pending', detail: this.lastError ? `mapper ${this.mapper} unreachable: ${this.lastError}` : `queued for mapper ${this.mapper}` };
  }

  /** A (re-)registration with withData=true: new address, and the mapper now has exactly `delivered`. */
  registered(mapper: string, address: string, delivered: Delivered): void {
    if (address !== this.address) {
      this.client.close();
      this.client = new DeviceMapperServiceClient(unixTarget(address), credentials.createInsecure(), GRPC_OPTIONS);
      this.address = address;
    }
    this.mapper = mapper;
    this.delivered = { models: new Map(delivered.models), devices: new Map(delivered.devices) };
    this.store.resetDelivered(this.protocol, delivered);
    for (const key of this.rejected.keys()) this.hooks.problem(this.problemKey(key), undefined);
    this.rejected.clear();
    this.failures = 0;
    this.lastError = undefined;
    this.schedule(0);
  }

  /** Plans and runs the calls that bring the mapper in line with the inventory. */
  schedule(delayMs = 0): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) {
      if (delayMs > 0) return; // a retry is already planned
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.nextRetryAt = undefined;
      void this.run();
    }, delayMs);
    if (delayMs > 0) this.nextRetryAt = Date.now() + delayMs;
  }

  private problemKey(rejectKey: string): string {
    return `delivery:${this.protocol}:${rejectKey}`;
  }

  private plan(): Op[] {
    const want = desiredFor(this.hooks.snapshot(), this.protocol);
    const ops: Op[] = [];
    const skip = (kind: Kind, id: string, fp: string): boolean => this.rejected.get(`${kind}/${id}`) === fp;
    for (const [id, m] of want.models) {
      const have = this.delivered.models.get(id);
      if (have === m.fp || skip('DeviceModel', id, m.fp)) continue;
      const { fp, ...model } = m;
      ops.push({ method: have === undefined ? 'CreateDeviceModel' : 'UpdateDeviceModel', kind: 'DeviceModel', id, fingerprint: fp, model });
    }
    for (const [id, d] of want.devices) {
      const have = this.delivered.devices.get(id);
      if (have === d.fp || skip('Device', id, d.fp)) continue;
      const { fp, ...device } = d;
      ops.push({ method: have === undefined ? 'RegisterDevice' : 'UpdateDevice', kind: 'Device', id, fingerprint: fp, device });
    }
    for (const id of this.delivered.devices.keys()) if (!want.devices.has(id) && !skip('Device', id, 'removed')) ops.push({ method: 'RemoveDevice', kind: 'Device', id, fingerprint: undefined });
    for (const id of this.delivered.models.keys()) if (!want.models.has(id) && !skip('DeviceModel', id, 'removed')) ops.push({ method: 'RemoveDeviceModel', kind: 'DeviceModel', id, fingerprint: undefined });
    return ops;
  }

  private invoke(op: Op): Promise<void> {
    const c = this.client;
    const md = new Metadata();
    const opts = { deadline: Date.now() + this.opts.callTimeoutMs };
    const { namespace, name } = splitId(op.id);
    return new Promise<void>((resolve, reject) => {
      const cb = (err: ServiceError | null): void => (err ? reject(err) : resolve());
      switch (op.method) {
        case 'CreateDeviceModel':
          c.createDeviceModel({ model: op.model }, md, opts, cb);
          break;
        case 'UpdateDeviceModel':
          c.updateDeviceModel({ model: op.model }, md, opts, cb);
          break;
        case 'RemoveDeviceModel':
          c.removeDeviceModel({ modelName: name, modelNamespace: namespace }, md, opts, cb);
          break;
        case 'RegisterDevice':
          c.registerDevice({ device: op.device }, md, opts, cb);
          break;
        case 'UpdateDevice':
          c.updateDevice({ device: op.device }, md, opts, cb);
          break;
        case 'RemoveDevice':
          c.removeDevice({ deviceName: name, deviceNamespace: namespace }, md, opts, cb);
          break;
      }
    });
  }

  private markDelivered(op: Op): void {
    const map = op.kind === 'Device' ? this.delivered.devices : this.delivered.models;
    if (op.fingerprint === undefined) map.delete(op.id);
    else map.set(op.id, op.fingerprint);
    this.store.setDelivered(this.protocol, op.kind, op.id, op.fingerprint);
    const key = `${op.kind}/${op.id}`;
    if (this.rejected.delete(key)) this.hooks.problem(this.problemKey(key), undefined);
  }

  private async run(): Promise<void> {
    if (this.closed || this.running) return;
    this.running = true;
    this.again = false;
    // The retry is planned once the run is over: schedule() defers to the running flag.
    let retryInMs: number | undefined;
    try {
      const ops = this.plan();
      this.pending = ops.length;
      if (ops.length === 0) {
        this.status = 'in-sync';
        return;
      }
      this.status = 'syncing';
      this.hooks.changed();
      for (const op of ops) {
        if (this.closed) return;
        const started = performance.now();
        try {
          await this.invoke(op);
          this.record(op, started, null);
          this.markDelivered(op);
          this.failures = 0;
          this.lastError = undefined;
          this.pending--;
        } catch (err) {
          const e = err as ServiceError;
          this.record(op, started, e);
          const isRemoval = op.method === 'RemoveDevice' || op.method === 'RemoveDeviceModel';
          if (isRemoval && e.code === status.NOT_FOUND) {
            this.markDelivered(op); // already gone
            this.pending--;
            continue;
          }
          if (TRANSPORT_CODES.has(e.code ?? -1)) {
            this.failures++;
            this.lastError = e.details || e.message;
            const delay = Math.min(this.opts.retryMaxMs, this.opts.retryInitialMs * 2 ** Math.min(this.failures - 1, 16));
            const level = this.failures === 1 || this.failures % 10 === 0 ? 'warn' : 'debug';
            this.log[level]({ mapper: this.mapper, socket: this.address, method: op.method, target: op.id, err: this.lastError, retryInMs: delay, pending: this.pending }, 'mapper unreachable; calls kept and retried');
            this.status = 'retrying';
            retryInMs = delay;
            return;
          }
          const key = `${op.kind}/${op.id}`;
          this.rejected.set(key, op.fingerprint ?? 'removed');
          this.pending--;
          const message = `mapper ${this.mapper} (protocol ${this.protocol}) rejected ${op.method} for ${op.kind} ${op.id}: ${e.details || e.message}`;
          this.log.error({ mapper: this.mapper, method: op.method, target: op.id, code: e.code, err: e.details || e.message }, 'DMI call rejected by mapper');
          this.hooks.problem(this.problemKey(key), { severity: 'error', source: 'dmi', kind: op.kind, id: op.id, message });
        }
      }
      this.status = 'in-sync';
    } finally {
      this.running = false;
      if (retryInMs !== undefined) this.schedule(retryInMs);
      else if (this.again) this.schedule(0);
      this.hooks.changed();
    }
  }

  private record(op: Op, started: number, err: ServiceError | null): void {
    this.hooks.call({
      at: Date.now(),
      protocol: this.protocol,
      mapper: this.mapper,
      method: op.method,
      target: op.id,
      ok: err === null,
      code: err ? (err.code ?? status.UNKNOWN) : status.OK,
      error: err ? err.details || err.message : undefined,
      durationMs: Math.round((performance.now() - started) * 10) / 10,
    });
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.client.close();
  }
}
