// SPDX-License-Identifier: Apache-2.0
// One connected BLE device: reads, writes, notifications and state over a GATT table that was
// discovered once when the connection was made.
import {
  type DeviceClient,
  type DeviceState,
  type Logger,
  MapperError,
  type PropertyRequest,
  type PropertyValue,
  type ReadResult,
  type Reading,
  type Subscribable,
  toMapperError,
} from '@mapperkit/framework';
import { type BleCentral, type Claim, raceSignal } from './central.js';
import type { BleVisitor } from './config.js';
import { canNotify, type CharEntry, describeDisconnect, disconnectPeripheral, type GattTable, waitEvent } from './gatt.js';
import type { NoblePeripheral } from './noble.js';
import { displayUuid } from './uuid.js';
import { decodeValue, encodeValue } from './values.js';

export interface BleClientArgs {
  readonly peripheral: NoblePeripheral;
  readonly gatt: GattTable;
  readonly central: BleCentral;
  /** This client's hold on the peripheral, given up on close. */
  readonly claim: Claim;
  /** How the device was identified, for messages. */
  readonly target: string;
  readonly log: Logger;
  /** Deadline of GATT steps that have no caller deadline (enabling notifications). */
  readonly gattTimeoutMs: number;
}

function propertyList(entry: CharEntry): string {
  return [...entry.properties].join(', ') || 'none';
}

export class BleClient implements DeviceClient<BleVisitor>, Subscribable<BleVisitor> {
  private readonly peripheral: NoblePeripheral;
  private readonly gatt: GattTable;
  private readonly central: BleCentral;
  private readonly claim: Claim;
  private readonly target: string;
  private readonly log: Logger;
  private readonly gattTimeoutMs: number;
  private closed = false;
  private lost: string | undefined;
  private readonly resolved = new WeakMap<BleVisitor, CharEntry | MapperError>();
  /** Reads in flight per characteristic: callers share one GATT read, so every answer matches one request. */
  private readonly pendingReads = new Map<CharEntry, Promise<Buffer>>();
  /** Last notified value per characteristic (serves reads of notify-only characteristics). */
  private readonly lastNotified = new Map<CharEntry, { data: Buffer; at: number }>();
  private readonly warned = new Set<string>();
  private readonly onDisconnect = (reason: unknown): void => {
    this.lost = describeDisconnect(reason);
    if (!this.closed) this.log.warn({ reason: this.lost }, 'BLE peripheral disconnected');
  };

  constructor(args: BleClientArgs) {
    this.peripheral = args.peripheral;
    this.gatt = args.gatt;
    this.central = args.central;
    this.claim = args.claim;
    this.target = args.target;
    this.log = args.log;
    this.gattTimeoutMs = args.gattTimeoutMs;
    this.peripheral.on('disconnect', this.onDisconnect);
  }

  private get connected(): boolean {
    return !this.closed && this.lost === undefined && this.peripheral.state === 'connected';
  }

  private unreachable(): MapperError {
    if (this.closed) return new MapperError('Unreachable', `BLE client for ${this.target} is closed`);
    return new MapperError('Unreachable', `BLE device ${this.target} is not connected${this.lost ? ` (disconnected: ${this.lost})` : ''}`);
  }

  /** The characteristic a visitor names, from the cached GATT table. */
  private resolve(v: BleVisitor): CharEntry | MapperError {
    const cached = this.resolved.get(v);
    if (cached) return cached;
    let result: CharEntry | MapperError;
    if (v.service !== undefined) {
      const chars = this.gatt.services.get(v.service);
      if (!chars) {
        result = new MapperError('InvalidConfig', `service ${displayUuid(v.service)} not found on ${this.target} (it has ${[...this.gatt.services.keys()].map(displayUuid).join(', ') || 'no services'})`, {
          key: 'serviceUUID',
        });
      } else {
        result =
          chars.get(v.characteristic) ??
          new MapperError('InvalidConfig', `characteristic ${displayUuid(v.characteristic)} not found in service ${displayUuid(v.service)} of ${this.target}`, { key: 'characteristicUUID' });
      }
    } else {
      const list = this.gatt.byUuid.get(v.characteristic) ?? [];
      if (list.length === 0) {
        result = new MapperError('InvalidConfig', `characteristic ${displayUuid(v.characteristic)} not found on ${this.target} (services: ${[...this.gatt.services.keys()].map(displayUuid).join(', ') || 'none'})`, {
          key: 'characteristicUUID',
        });
      } else {
        if (list.length > 1) {
          this.log.warn(
            { characteristic: v.label, services: list.map((e) => displayUuid(e.service)) },
            'characteristic exists in several services; using the first (set serviceUUID to choose)',
          );
        }
        result = list[0]!;
      }
    }
    this.resolved.set(v, result);
    return result;
  }

  isSubscribed(request: PropertyRequest<BleVisitor>): boolean {
    if (request.visitor.mode === 'read') return false;
    const entry = this.resolve(request.visitor);
    return !(entry instanceof MapperError) && canNotify(entry);
  }

  /** One GATT read; concurrent callers for the same characteristic share it. */
  private readRaw(entry: CharEntry, signal: AbortSignal): Promise<Buffer> {
    let p = this.pendingReads.get(entry);
    if (!p) {
      const what = `reading characteristic ${displayUuid(entry.uuid)} of ${this.target}`;
      // Own deadline only as a backstop: a read whose caller gave up still holds the slot until answered.
      p = waitEvent<[Buffer, boolean]>(
        entry.characteristic,
        'read',
        { signal: AbortSignal.timeout(Math.max(this.gattTimeoutMs, 1000) * 6), what, peripheral: this.peripheral, accept: (_data, isNotification) => !isNotification },
        () => entry.characteristic.read(),
      ).then(([data]) => data);
      const mine = p;
      const clear = (): void => {
        if (this.pendingReads.get(entry) === mine) this.pendingReads.delete(entry);
      };
      mine.then(clear, clear);
      this.pendingReads.set(entry, mine);
    }
    return raceSignal(p, signal, `reading characteristic ${displayUuid(entry.uuid)} of ${this.target}`);
  }

  async read(requests: readonly PropertyRequest<BleVisitor>[], signal: AbortSignal): Promise<readonly ReadResult[]> {
    if (!this.connected) throw this.unreachable();
    const out: ReadResult[] = [];
    for (const req of requests) {
      signal.throwIfAborted();
      const entry = this.resolve(req.visitor);
      if (entry instanceof MapperError) {
        out.push({ ok: false, error: entry });
        continue;
      }
      if (req.visitor.mode === 'notify' && !canNotify(entry)) {
        out.push({
          ok: false,
          error: new MapperError('InvalidConfig', `characteristic ${req.visitor.label} cannot notify (properties: ${propertyList(entry)}${entry.hasCccd ? '' : ', no CCCD'}) but the visitor's mode is notify`, {
            key: 'mode',
          }),
        });
        continue;
      }
      let data: Buffer;
      let timestamp: number | undefined;
      if (entry.properties.has('read')) {
        // A failed link rejects the whole batch: the framework then reconnects.
        data = await this.readRaw(entry, signal);
      } else {
        const last = this.lastNotified.get(entry);
        if (!last) {
          out.push({
            ok: false,
            error: new MapperError('DeviceError', `characteristic ${req.visitor.label} is not readable (properties: ${propertyList(entry)}) and has not notified a value yet`),
          });
          continue;
        }
        data = last.data;
        timestamp = last.at;
      }
      try {
        const value = decodeValue(data, req.visitor, req.type);
        out.push(timestamp === undefined ? { ok: true, value } : { ok: true, value, timestamp });
      } catch (err) {
        out.push({ ok: false, error: toMapperError(err, 'DeviceError') });
      }
    }
    return out;
  }

  async write(request: PropertyRequest<BleVisitor>, value: PropertyValue, signal: AbortSignal): Promise<void> {
    if (!this.connected) throw this.unreachable();
    const v = request.visitor;
    const entry = this.resolve(v);
    if (entry instanceof MapperError) throw entry;
    const canWrite = entry.properties.has('write');
    const canWriteNoResponse = entry.properties.has('writeWithoutResponse');
    if (!canWrite && !canWriteNoResponse) {
      throw new MapperError('WriteRejected', `characteristic ${v.label} is not writable (properties: ${propertyList(entry)})`);
    }
    const withoutResponse = v.writeWithoutResponse ?? !canWrite;
    const bytes = encodeValue(value, v, request.type);
    await waitEvent(
      entry.characteristic,
      'write',
      {
        signal,
        what: `writing ${bytes.length} bytes to characteristic ${v.label} of ${this.target}`,
        peripheral: this.peripheral,
        timeoutHint: 'noble does not report GATT write errors, so the peripheral may have refused the write',
      },
      () => entry.characteristic.write(Buffer.from(bytes), withoutResponse),
    );
    this.log.debug({ property: request.name, bytes: Buffer.from(bytes).toString('hex'), withoutResponse }, 'characteristic written');
  }

  private setNotify(entry: CharEntry, enable: boolean, signal: AbortSignal): Promise<unknown> {
    return waitEvent(
      entry.characteristic,
      'notify',
      {
        signal,
        what: `${enable ? 'enabling' : 'disabling'} notifications of characteristic ${displayUuid(entry.uuid)} on ${this.target}`,
        peripheral: this.peripheral,
        timeoutMs: this.gattTimeoutMs,
        timeoutHint: 'noble does not report a refused CCCD write',
      },
      () => entry.characteristic.notify(enable),
    );
  }

  private warnOnce(property: string, err: unknown): void {
    const e = toMapperError(err, 'DeviceError');
    if (this.warned.has(property)) this.log.debug({ property, err: e.message }, 'notification not decoded');
    else {
      this.warned.add(property);
      this.log.warn({ property, err: e.message }, 'notification not decoded (further failures of this property are logged at debug)');
    }
  }

  async *subscribe(requests: readonly PropertyRequest<BleVisitor>[], signal: AbortSignal): AsyncGenerator<Reading> {
    const queue: Reading[] = [];
    let wake: (() => void) | undefined;
    const poke = (): void => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    let lost: MapperError | undefined;
    const byEntry = new Map<CharEntry, PropertyRequest<BleVisitor>[]>();
    for (const r of requests) {
      const entry = this.resolve(r.visitor);
      if (entry instanceof MapperError) {
        this.log.error({ property: r.name, err: entry.message }, 'cannot subscribe');
        continue;
      }
      const list = byEntry.get(entry);
      if (list) list.push(r);
      else byEntry.set(entry, [r]);
    }
    const cleanups: (() => void)[] = [];
    for (const [entry, reqs] of byEntry) {
      const onData = (data: Buffer, isNotification: boolean): void => {
        if (!isNotification) return;
        const at = Date.now();
        this.lastNotified.set(entry, { data, at });
        for (const r of reqs) {
          try {
            queue.push({ property: r.name, value: decodeValue(data, r.visitor, r.type), timestamp: at });
          } catch (err) {
            this.warnOnce(r.name, err);
          }
        }
        poke();
      };
      entry.characteristic.on('data', onData);
      cleanups.push(() => entry.characteristic.removeListener('data', onData));
    }
    const onDisconnect = (reason: unknown): void => {
      lost = new MapperError('Unreachable', `BLE device ${this.target} disconnected (${describeDisconnect(reason)})`);
      poke();
    };
    this.peripheral.on('disconnect', onDisconnect);
    signal.addEventListener('abort', poke);
    try {
      if (!this.connected) throw this.unreachable();
      const enabled: CharEntry[] = [];
      for (const [entry, reqs] of byEntry) {
        try {
          await this.setNotify(entry, true, signal);
          enabled.push(entry);
          this.log.debug({ characteristic: displayUuid(entry.uuid), properties: reqs.map((r) => r.name) }, 'notifications enabled');
        } catch (err) {
          if (signal.aborted) return;
          if (lost) throw lost;
          // The link is up but this characteristic refused: its properties stay silent, the others go on.
          this.log.error({ properties: reqs.map((r) => r.name), err: toMapperError(err).message }, 'enabling notifications failed; these properties get no values until the device reconnects');
        }
      }
      // A device may notify only on change: read readable characteristics once, so every
      // subscribed property has a value from the start (and again after each reconnect).
      for (const entry of enabled) {
        if (!entry.properties.has('read')) continue;
        try {
          const data = await this.readRaw(entry, signal);
          const at = Date.now();
          for (const r of byEntry.get(entry) ?? []) {
            try {
              queue.push({ property: r.name, value: decodeValue(data, r.visitor, r.type), timestamp: at });
            } catch (err) {
              this.warnOnce(r.name, err);
            }
          }
        } catch (err) {
          if (signal.aborted) return;
          if (lost) throw lost;
          this.log.warn({ characteristic: displayUuid(entry.uuid), err: toMapperError(err).message }, 'initial read of a notifying characteristic failed');
        }
      }
      for (;;) {
        if (signal.aborted) return;
        const next = queue.shift();
        if (next) {
          yield next;
          continue;
        }
        if (lost) throw lost;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      for (const c of cleanups) c();
      this.peripheral.removeListener('disconnect', onDisconnect);
      signal.removeEventListener('abort', poke);
      if (this.connected) {
        // Best effort; the answer is not awaited.
        for (const entry of byEntry.keys()) {
          try {
            entry.characteristic.notify(false);
          } catch {
            /* the link is going away */
          }
        }
      }
    }
  }

  async state(): Promise<DeviceState> {
    return this.connected ? 'ok' : 'offline';
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.peripheral.removeListener('disconnect', this.onDisconnect);
    try {
      await disconnectPeripheral(this.peripheral, 2000);
    } finally {
      this.central.release(this.peripheral, this.claim);
    }
  }
}
