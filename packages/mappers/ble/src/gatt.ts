// SPDX-License-Identifier: Apache-2.0
// GATT operations on noble objects, each bounded by a signal and failing fast when the link
// drops. noble itself never times out and never reports a failed write or subscription (its
// HCI bindings swallow ATT errors), so every wait here has a way out.
import type { EventEmitter } from 'node:events';
import { type Logger, MapperError } from '@mapperkit/framework';
import { abortError } from './central.js';
import type { NobleCharacteristic, NoblePeripheral, NobleService } from './noble.js';
import { canonicalUuid } from './uuid.js';

/** HCI disconnect reasons worth a name in logs. */
const HCI_REASONS: Readonly<Record<number, string>> = {
  0x05: 'authentication failure',
  0x08: 'connection timeout',
  0x13: 'remote user terminated connection',
  0x14: 'remote device terminated connection (low resources)',
  0x15: 'remote device terminated connection (power off)',
  0x16: 'connection terminated by local host',
  0x22: 'LL response timeout',
  0x3b: 'unacceptable connection parameters',
  0x3d: 'MIC failure',
  0x3e: 'connection failed to be established',
};

/** `reason 0x08 (connection timeout)` */
export function describeDisconnect(reason: unknown): string {
  if (typeof reason !== 'number') return reason === undefined ? 'no reason given' : `reason ${String(reason)}`;
  const name = HCI_REASONS[reason];
  return `reason 0x${reason.toString(16).padStart(2, '0')}${name ? ` (${name})` : ''}`;
}

export interface WaitOptions<A extends unknown[]> {
  readonly signal: AbortSignal;
  /** What is being done, for error messages. */
  readonly what: string;
  /** Fail with Unreachable when this peripheral disconnects meanwhile. */
  readonly peripheral?: NoblePeripheral | undefined;
  /** Own deadline (besides `signal`). */
  readonly timeoutMs?: number | undefined;
  /** Hint appended to a timeout message. */
  readonly timeoutHint?: string | undefined;
  /** Only events whose arguments pass count. */
  readonly accept?: ((...args: A) => boolean) | undefined;
}

/**
 * Listens for `event` on `emitter`, then calls `start` (which asks noble for something), and
 * resolves with the event's arguments. Rejects on disconnect (Unreachable), own timeout
 * (Timeout), abort (the signal's reason), or when `start` throws (noble throws TypeErrors
 * for characteristics it has not discovered on this connection).
 */
export function waitEvent<A extends unknown[]>(emitter: EventEmitter, event: string, opts: WaitOptions<A>, start: () => void): Promise<A> {
  return new Promise<A>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const cleanup = (): void => {
      emitter.removeListener(event, onEvent);
      opts.peripheral?.removeListener('disconnect', onDisconnect);
      opts.signal.removeEventListener('abort', onAbort);
      if (timer) clearTimeout(timer);
    };
    const onEvent = (...args: unknown[]): void => {
      if (opts.accept && !opts.accept(...(args as A))) return;
      cleanup();
      resolve(args as A);
    };
    const onDisconnect = (reason: unknown): void => {
      cleanup();
      reject(new MapperError('Unreachable', `${opts.what}: the peripheral disconnected (${describeDisconnect(reason)})`));
    };
    const onAbort = (): void => {
      cleanup();
      const e = abortError(opts.signal, opts.what);
      reject(e.kind === 'Timeout' && opts.timeoutHint ? new MapperError('Timeout', `${e.message}; ${opts.timeoutHint}`, { cause: e }) : e);
    };
    if (opts.signal.aborted) {
      onAbort();
      return;
    }
    emitter.on(event, onEvent);
    opts.peripheral?.on('disconnect', onDisconnect);
    opts.signal.addEventListener('abort', onAbort, { once: true });
    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        cleanup();
        reject(new MapperError('Timeout', `${opts.what}: no answer in ${opts.timeoutMs} ms${opts.timeoutHint ? `; ${opts.timeoutHint}` : ''}`));
      }, opts.timeoutMs);
    }
    try {
      start();
    } catch (err) {
      cleanup();
      reject(new MapperError('DeviceError', `${opts.what}: ${(err as Error).message}`, { cause: err }));
    }
  });
}

/** Connects, cancelling the pending LE connection when `signal` aborts. */
export async function connectPeripheral(p: NoblePeripheral, signal: AbortSignal, what: string, log: Logger): Promise<void> {
  if (p.state === 'connected' || p.state === 'disconnecting') {
    // Left over from an earlier client that could not close it: start from a clean link.
    log.debug({ state: p.state }, 'peripheral still connected; disconnecting first');
    await waitEvent(p, 'disconnect', { signal, what: `${what}: dropping the old connection`, timeoutMs: 2000 }, () => p.disconnect()).catch(() => undefined);
  }
  signal.throwIfAborted();
  await new Promise<void>((resolve, reject) => {
    const cleanup = (): void => {
      p.removeListener('connect', onConnect);
      signal.removeEventListener('abort', onAbort);
    };
    const onConnect = (error: unknown): void => {
      cleanup();
      if (error) reject(new MapperError('Unreachable', `${what} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error }));
      else resolve();
    };
    const onAbort = (): void => {
      cleanup();
      if (p.state === 'connecting') p.cancelConnect();
      reject(abortError(signal, what));
    };
    p.on('connect', onConnect);
    signal.addEventListener('abort', onAbort, { once: true });
    p.connect();
  });
}

/** Disconnects and waits (at most `timeoutMs`) for the link to be down. Never throws. */
export async function disconnectPeripheral(p: NoblePeripheral, timeoutMs: number): Promise<void> {
  if (p.state === 'connecting') {
    p.cancelConnect();
    return;
  }
  if (p.state !== 'connected') return;
  await waitEvent(p, 'disconnect', { signal: AbortSignal.timeout(timeoutMs), what: 'disconnect' }, () => p.disconnect()).catch(() => undefined);
}

/** One discovered characteristic. */
export interface CharEntry {
  readonly characteristic: NobleCharacteristic;
  /** Canonical UUIDs. */
  readonly service: string;
  readonly uuid: string;
  readonly properties: ReadonlySet<string>;
  /** Whether it has a Client Characteristic Configuration Descriptor (0x2902), which notifications need. */
  readonly hasCccd: boolean;
}

/** The GATT table of one connection: discovered once, right after connecting. */
export interface GattTable {
  /** service → characteristic → entry (canonical UUIDs). */
  readonly services: ReadonlyMap<string, ReadonlyMap<string, CharEntry>>;
  /** characteristic → entries in discovery order (a UUID may repeat across services). */
  readonly byUuid: ReadonlyMap<string, readonly CharEntry[]>;
}

export function canNotify(e: CharEntry): boolean {
  return (e.properties.has('notify') || e.properties.has('indicate')) && e.hasCccd;
}

/**
 * Discovers every service, every characteristic and, for characteristics that can notify or
 * indicate, their descriptors (to know whether a CCCD exists, as upstream checked).
 */
export async function discoverGatt(p: NoblePeripheral, signal: AbortSignal, timeoutMs: number): Promise<GattTable> {
  const base = { signal, peripheral: p, timeoutMs };
  const [services] = await waitEvent<[NobleService[]]>(p, 'servicesDiscover', { ...base, what: 'discovering services' }, () => p.discoverServices([]));
  const table = new Map<string, Map<string, CharEntry>>();
  const byUuid = new Map<string, CharEntry[]>();
  for (const s of services) {
    const su = canonicalUuid(s.uuid) ?? s.uuid;
    const [chars] = await waitEvent<[NobleCharacteristic[]]>(s, 'characteristicsDiscover', { ...base, what: `discovering characteristics of service ${su}` }, () =>
      s.discoverCharacteristics([]),
    );
    const entries = new Map<string, CharEntry>();
    for (const c of chars) {
      const cu = canonicalUuid(c.uuid) ?? c.uuid;
      const properties = new Set(c.properties);
      let hasCccd = false;
      if (properties.has('notify') || properties.has('indicate')) {
        const [descriptors] = await waitEvent<[{ uuid: string }[]]>(c, 'descriptorsDiscover', { ...base, what: `discovering descriptors of characteristic ${cu}` }, () =>
          c.discoverDescriptors(),
        );
        hasCccd = descriptors.some((d) => canonicalUuid(d.uuid) === '2902');
      }
      const entry: CharEntry = { characteristic: c, service: su, uuid: cu, properties, hasCccd };
      if (!entries.has(cu)) entries.set(cu, entry);
      const list = byUuid.get(cu);
      if (list) list.push(entry);
      else byUuid.set(cu, [entry]);
    }
    table.set(su, entries);
  }
  return { services: table, byUuid };
}
