// SPDX-License-Identifier: Apache-2.0
//
// The driver contract: the one thing a protocol author implements.
//
// A driver speaks one protocol. The framework owns everything else: DMI registration
// with edgecore, the device registry, collect/report scheduling, desired-value writes,
// twin and state reports, retries and reconnects, sinks, REST. A driver never sees DMI
// wire types and never starts timers of its own for polling.
import type { Logger } from 'pino';
import type { AccessMode, PropertyType } from './dmi/model.js';
import type { MapperError } from './errors.js';
import type { StandardSchemaV1 } from './schema.js';
import type { PropertyValue } from './values.js';

export type { Logger } from 'pino';

/**
 * Device states edgecore accepts (`ReportDeviceStates`); anything else is dropped by
 * edgecore, so the framework never sends anything else.
 * - `ok` / `online`: connected and answering (both stamp `lastOnlineTime` in the cloud);
 * - `offline`: cannot be reached;
 * - `unhealthy`: reachable but failing (bad config, errors from the device);
 * - `unknown`: not yet known (before the first connect attempt finished).
 */
export type DeviceState = 'ok' | 'online' | 'offline' | 'unknown' | 'unhealthy';
export const DEVICE_STATES: readonly DeviceState[] = ['ok', 'online', 'offline', 'unknown', 'unhealthy'];

/** Identity of the device a client is for. */
export interface DeviceInfo {
  /** `namespace/name`. */
  readonly id: string;
  readonly name: string;
  readonly namespace: string;
  /** DeviceModel name (same namespace). */
  readonly model: string;
}

/**
 * One property to read or write, with its parsed visitor config. The framework builds these
 * once per device (re)start and passes the same objects on every call, so a driver may use
 * them as keys in a `WeakMap` (e.g. to cache a request plan).
 */
export interface PropertyRequest<TVisitor> {
  /** Property name, unique within the device. */
  readonly name: string;
  /** Model type of the property. */
  readonly type: PropertyType;
  readonly accessMode: AccessMode;
  /** Parsed and validated visitor `configData` (the driver's `visitorConfig` schema output). */
  readonly visitor: TVisitor;
  /** Model `minimum`, if numeric. */
  readonly minimum: number | undefined;
  /** Model `maximum`, if numeric. */
  readonly maximum: number | undefined;
  readonly unit: string;
}

/** Outcome of reading one property. */
export type ReadResult =
  /** `timestamp` (ms since epoch) defaults to the time `read()` resolved. */
  | { readonly ok: true; readonly value: PropertyValue; readonly timestamp?: number }
  | { readonly ok: false; readonly error: MapperError };

/**
 * What a subscription pushes: a value, or a failure of one property (a notification that
 * could not be decoded, a monitored item that went bad). Failures reach the last-value cache,
 * metrics and logs like failed reads; they do not end the subscription.
 */
export type Reading =
  | {
      /** Property name. */
      readonly property: string;
      readonly value: PropertyValue;
      /** Source timestamp in ms since epoch; defaults to arrival time. */
      readonly timestamp?: number;
    }
  | {
      readonly property: string;
      readonly error: MapperError;
      readonly timestamp?: number;
    };

/** What `connect()` receives. */
export interface ConnectContext<TProtocol> {
  readonly device: DeviceInfo;
  /** Parsed and validated protocol `configData` (the driver's `protocolConfig` schema output). */
  readonly config: TProtocol;
  /** Logger bound to this device. Never log credentials. */
  readonly log: Logger;
}

/**
 * A connected device. Created by {@link DriverDefinition.connect}; one per device.
 *
 * Calls on one client are never concurrent with each other, with two exceptions: `close()`
 * may arrive while a call is in flight (its signal is aborted first), and a read of a STREAM
 * property (frame capture, recording) runs in its own lane, alongside the device's other calls,
 * with a timeout of at least its collectCycle. A client that shares a bus or connection with
 * other clients (one RTU port, one TCP gateway) must serialise access itself.
 */
export interface DeviceClient<TVisitor> {
  /**
   * Reads several properties in one round trip where the protocol allows (Modbus register
   * ranges, one OPC UA Read). Called once per collect tick with every property due in that
   * tick. Must resolve to exactly one result per request, **in request order**; a failure
   * of one property is a `{ ok: false }` entry, not a rejection.
   *
   * Reject only when the whole device is unusable (connection lost): the framework then
   * reports the device `offline`, closes this client and reconnects with backoff.
   * `signal` aborts on timeout, device removal/update and shutdown. The framework reuses one
   * signal for consecutive `read()` (and `state()`) calls of a client until it aborts, so a
   * driver must remove every listener it adds to it when its call settles. `requests` is
   * frozen and reused across ticks: copy it before sorting or changing it.
   */
  read(requests: readonly PropertyRequest<TVisitor>[], signal: AbortSignal): Promise<readonly ReadResult[]>;

  /**
   * Writes one property: a desired value from the Device CRD, or a device-method write from
   * the REST API. `value` is already converted to the model type and checked against the
   * model's minimum/maximum; check protocol ranges (e.g. int16) here and throw
   * MapperError('WriteRejected') naming the limit.
   */
  write(request: PropertyRequest<TVisitor>, value: PropertyValue, signal: AbortSignal): Promise<void>;

  /**
   * Health of the connected device, polled every `runtime.state_check_ms` and reported to
   * edgecore when it changes. Return `ok` when in doubt. Returning `offline`, or throwing
   * MapperError('Unreachable' | 'Timeout') (whose message becomes the state detail), means
   * the link is gone: the client is closed and reconnected. Any other error counts as
   * `unhealthy`.
   */
  state(signal: AbortSignal): Promise<DeviceState>;

  /**
   * Releases sockets, ports and handles. Called on device removal/update, after a lost
   * connection and at shutdown. Must be idempotent and must not throw for an already
   * broken connection.
   */
  close(): Promise<void>;
}

/**
 * Optional capability of a {@link DeviceClient}: properties whose values the device pushes
 * (OPC UA monitored items, BLE notifications, MQTT topics) instead of being polled.
 */
export interface Subscribable<TVisitor> {
  /** Whether this property is delivered by {@link subscribe} rather than polled by `read`. */
  isSubscribed(request: PropertyRequest<TVisitor>): boolean;
  /**
   * Starts delivering values for `requests` (all of which passed {@link isSubscribed}).
   * The framework consumes the iterable until `signal` aborts. If it ends or throws while
   * the device is still registered, the framework treats the connection as lost: it closes
   * the client, reconnects with backoff and subscribes again.
   */
  subscribe(requests: readonly PropertyRequest<TVisitor>[], signal: AbortSignal): AsyncIterable<Reading>;
}

/** A device found by {@link Discoverable.discover}. */
export interface DiscoveredDevice {
  /** Stable identifier (MAC address, serial number, device path…). */
  readonly id: string;
  /** Human-readable name, if the device has one. */
  readonly name?: string;
  /** Protocol `configData` that would connect to this device. */
  readonly protocolConfig: Readonly<Record<string, string | number | boolean>>;
  /** Anything else worth showing (vendor, product, RSSI…). */
  readonly details?: Readonly<Record<string, string>>;
}

/** Optional capability of a {@link DriverDefinition}: finding devices (BLE scan, USB enumeration). */
export interface Discoverable {
  /** Lists devices currently visible. Resolve an empty list, not an error, when none are. */
  discover(signal: AbortSignal): Promise<readonly DiscoveredDevice[]>;
}

/**
 * A driver: one protocol, two config schemas and a `connect` function.
 *
 * @example
 * import { defineDriver, z } from '@mapperkit/framework';
 * export default defineDriver({
 *   protocol: 'acme',
 *   protocolConfig: z.object({ host: z.string(), port: z.coerce.number().int().default(9000) }),
 *   visitorConfig: z.object({ register: z.coerce.number().int().nonnegative() }),
 *   async connect({ config }) {
 *     const conn = await AcmeConnection.open(config.host, config.port);
 *     return {
 *       read: async (reqs) => Promise.all(reqs.map(async (r) => ({ ok: true, value: await conn.get(r.visitor.register) }))),
 *       write: (req, value) => conn.set(req.visitor.register, Number(value)),
 *       state: async () => (conn.alive ? 'ok' : 'offline'),
 *       close: async () => conn.close(),
 *     };
 *   },
 * });
 */
export interface DriverDefinition<TProtocol = unknown, TVisitor = unknown> {
  /**
   * Protocol name this driver serves. Must equal `common.protocol` in config.yaml and the
   * `spec.protocol.protocolName` of its Devices; edgecore routes by it.
   */
  readonly protocol: string;
  /**
   * Schema of the device's protocol `configData`. Validated when a device arrives; a failure
   * rejects RegisterDevice/UpdateDevice with INVALID_ARGUMENT naming the key, and marks a
   * device received at registration `unhealthy` without stopping the others. Values arrive as
   * edgecore encodes them (numbers may be float32-rounded, some upstream samples send numbers
   * as strings), so prefer `z.coerce.number()` for numeric keys.
   */
  readonly protocolConfig: StandardSchemaV1<unknown, TProtocol>;
  /** Schema of one property's visitor `configData`. A failing property is disabled, with the key named. */
  readonly visitorConfig: StandardSchemaV1<unknown, TVisitor>;
  /**
   * Optional cross-check of a property once its visitor is parsed, when the rule depends on the
   * property's name, model type or access mode (e.g. "a STREAM property needs `outputDir`",
   * "a 32-bit type needs two registers"). Throw MapperError('InvalidConfig') naming the key:
   * RegisterDevice/UpdateDevice are rejected, a device from MapperRegister runs without it.
   */
  checkProperty?(request: PropertyRequest<TVisitor>): void;
  /**
   * Opens a client for one device. Called when the device is registered, after an update
   * that changes its protocol or visitors, and to reconnect after a failure (with jittered
   * exponential backoff; the device is reported `offline` meanwhile). Throw
   * MapperError('Unreachable' | 'Timeout' | 'InvalidConfig' …); `signal` aborts on removal,
   * update, shutdown and connect timeout.
   */
  connect(ctx: ConnectContext<TProtocol>, signal: AbortSignal): Promise<DeviceClient<TVisitor>>;
  /** Optional discovery capability; see {@link Discoverable}. */
  readonly discover?: Discoverable['discover'];
  /**
   * Optional, called once when the mapper starts, before any device connects, with a logger
   * that is not bound to a device (for adapter-wide or bus-wide messages). An error is logged
   * and does not stop the mapper: devices then fail in `connect()` and are retried.
   */
  init?(ctx: DriverContext, signal: AbortSignal): Promise<void>;
  /** Optional, called once at shutdown after every device client is closed. */
  dispose?(): Promise<void>;
}

/** What {@link DriverDefinition.init} receives. */
export interface DriverContext {
  /** Logger of the mapper, with `driver: <protocol>`. */
  readonly log: Logger;
}

/** Identity helper that infers the driver's config types from its schemas. */
export function defineDriver<TProtocol, TVisitor>(driver: DriverDefinition<TProtocol, TVisitor>): DriverDefinition<TProtocol, TVisitor> {
  return driver;
}

/** Whether a client implements {@link Subscribable}. */
export function isSubscribable<V>(client: DeviceClient<V>): client is DeviceClient<V> & Subscribable<V> {
  const c = client as Partial<Subscribable<V>>;
  return typeof c.subscribe === 'function' && typeof c.isSubscribed === 'function';
}

/** Whether a driver implements {@link Discoverable}. */
export function isDiscoverable(driver: DriverDefinition<unknown, unknown>): driver is DriverDefinition<unknown, unknown> & Discoverable {
  return typeof driver.discover === 'function';
}
