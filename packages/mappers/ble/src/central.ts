// SPDX-License-Identifier: Apache-2.0
// One BLE central (one noble, one adapter) shared by every device of a driver: lazy loading,
// adapter readiness, scanning on behalf of whoever is looking for a device, and a queue so
// only one connection is being established at a time.
import { type Logger, MapperError } from '@mapperkit/framework';
import type { BleProtocol } from './config.js';
import { describeTarget } from './config.js';
import { defaultBindings, type Noble, type NobleBindings, type NoblePeripheral, nobleWithBindings } from './noble.js';

/** A device's hold on a peripheral (see BleCentral.claim). */
export interface Claim {
  readonly deviceId: string;
}

/** What the central remembers of an advertising peripheral. */
export interface SeenPeripheral {
  readonly peripheral: NoblePeripheral;
  lastSeen: number;
}

/** Turns an aborted signal into the MapperError a driver call should fail with. */
export function abortError(signal: AbortSignal, what: string): MapperError {
  const reason: unknown = signal.reason;
  if (reason instanceof MapperError) return reason;
  if (reason instanceof Error && reason.name === 'TimeoutError') return new MapperError('Timeout', `${what}: ${reason.message}`, { cause: reason });
  return new MapperError('Cancelled', `${what}: cancelled`, { cause: reason });
}

/** Rejects with {@link abortError} when `signal` aborts before `promise` settles. */
export function raceSignal<T>(promise: Promise<T>, signal: AbortSignal, what: string): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(abortError(signal, what));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal, what));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

const STATES_THAT_FAIL = new Set(['unsupported', 'unauthorized']);

export interface BleCentralOptions {
  /** Bindings factory; default: noble's platform bindings (the HCI socket on Linux). */
  readonly bindings?: (() => NobleBindings) | undefined;
  /** Where central-level events are logged (adapter missing, noble warnings). */
  readonly log: () => Logger;
}

export class BleCentral {
  private noble: Noble | undefined;
  private state = 'unknown';
  private initError: string | undefined;
  private unavailableLogged = false;
  private readonly seen = new Map<string, SeenPeripheral>();
  private readonly discoverWaiters = new Set<(p: NoblePeripheral) => void>();
  private readonly stateWaiters = new Set<() => void>();
  private scanners = 0;
  private scanning = false;
  private readonly claims = new Map<string, Claim>();
  private connectTail: Promise<void> = Promise.resolve();
  private readonly options: BleCentralOptions;

  constructor(options: BleCentralOptions) {
    this.options = options;
  }

  /** Whether noble has been loaded (it is loaded on the first connect or discover). */
  get loaded(): boolean {
    return this.noble !== undefined;
  }

  /** Adapter state as noble last reported it. */
  get adapterState(): string {
    return this.state;
  }

  /**
   * Creates the bindings and noble on first use. Throws MapperError('Unreachable') when the
   * bindings cannot be created (no adapter); the next call tries again, so an adapter that
   * appears later is picked up.
   */
  private load(): Noble {
    if (this.noble) return this.noble;
    const log = this.options.log();
    let bindings: NobleBindings;
    try {
      bindings = (this.options.bindings ?? defaultBindings)();
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const detail = e.code ? `${e.code}: ${e.message}` : String(e.message ?? err);
      if (!this.unavailableLogged) {
        this.unavailableLogged = true;
        log.error(
          { err: detail },
          'Bluetooth unavailable: no HCI adapter could be opened, so every BLE device stays offline; the mapper keeps running and retries with backoff',
        );
      } else log.debug({ err: detail }, 'Bluetooth still unavailable');
      throw new MapperError('Unreachable', `Bluetooth unavailable on this machine (${detail}): no HCI adapter could be opened`, { cause: err });
    }
    const noble = nobleWithBindings(bindings);
    noble.on('warning', (message: string) => {
      if (/^Initialization of/i.test(message)) {
        this.initError = message;
        this.wakeState();
      }
      log.warn({ warning: message }, 'noble warning');
    });
    noble.on('stateChange', (state: string) => {
      if (state !== this.state) log.info({ state }, 'Bluetooth adapter state');
      this.state = state;
      if (state !== 'poweredOn') this.scanning = false;
      this.wakeState();
    });
    noble.on('discover', (p: NoblePeripheral) => this.onDiscover(p));
    // Registering the stateChange listener made noble schedule bindings.init() on nextTick.
    // The HCI bindings then install a SIGINT handler that calls process.exit(1) whenever it is
    // the last SIGINT listener, which would cut the mapper's graceful shutdown short: remove it.
    setImmediate(() => {
      const handler = (bindings as unknown as { onSigIntBinded?: unknown }).onSigIntBinded;
      if (typeof handler === 'function') process.removeListener('SIGINT', handler as () => void);
    });
    this.noble = noble;
    return noble;
  }

  private wakeState(): void {
    for (const w of [...this.stateWaiters]) w();
  }

  /** Loads noble if needed and waits until the adapter is powered on. */
  async ready(signal: AbortSignal): Promise<Noble> {
    const noble = this.load();
    // Reading `state` initialises the bindings if the listener above has not yet.
    this.state = noble.state;
    const check = (): Noble | undefined => {
      if (this.initError) throw new MapperError('Unreachable', `Bluetooth adapter could not be initialised: ${this.initError}`);
      if (STATES_THAT_FAIL.has(this.state)) throw new MapperError('Unreachable', `Bluetooth adapter state is ${this.state}`);
      return this.state === 'poweredOn' ? noble : undefined;
    };
    const now = check();
    if (now) return now;
    return new Promise<Noble>((resolve, reject) => {
      const waiter = (): void => {
        try {
          const n = check();
          if (!n) return;
          done();
          resolve(n);
        } catch (err) {
          done();
          reject(err);
        }
      };
      const onAbort = (): void => {
        done();
        const e = abortError(signal, 'waiting for the Bluetooth adapter');
        reject(e.kind === 'Cancelled' ? e : new MapperError('Unreachable', `Bluetooth adapter not ready (state ${this.state})`, { cause: e }));
      };
      const done = (): void => {
        this.stateWaiters.delete(waiter);
        signal.removeEventListener('abort', onAbort);
      };
      this.stateWaiters.add(waiter);
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private onDiscover(p: NoblePeripheral): void {
    const s = this.seen.get(p.id);
    if (s) s.lastSeen = Date.now();
    else this.seen.set(p.id, { peripheral: p, lastSeen: Date.now() });
    for (const w of [...this.discoverWaiters]) w(p);
  }

  private startScan(): void {
    this.scanners++;
    if (this.scanning || !this.noble) return;
    this.scanning = true;
    // Duplicates on: every advertisement refreshes lastSeen and reaches late joiners.
    this.noble.startScanning([], true, (err) => {
      if (err) {
        this.scanning = false;
        this.options.log().warn({ err: err.message }, 'BLE scan could not start');
      }
    });
  }

  private stopScan(): void {
    this.scanners = Math.max(0, this.scanners - 1);
    if (this.scanners > 0 || !this.scanning || !this.noble) return;
    this.scanning = false;
    this.noble.stopScanning();
  }

  /**
   * Finds the peripheral a device's protocol config names: from what was already seen, else by
   * scanning for up to `scanTimeoutMs`. Throws MapperError('Unreachable') naming the device.
   */
  async find(target: BleProtocol, signal: AbortSignal): Promise<NoblePeripheral> {
    const matches = (p: NoblePeripheral): boolean =>
      (target.macAddress === undefined || p.address.toLowerCase() === target.macAddress) &&
      (target.localName === undefined || p.advertisement.localName === target.localName);
    let best: SeenPeripheral | undefined;
    for (const s of this.seen.values()) if (matches(s.peripheral) && (!best || s.lastSeen > best.lastSeen)) best = s;
    if (best) return best.peripheral;
    signal.throwIfAborted();
    return new Promise<NoblePeripheral>((resolve, reject) => {
      const started = Date.now();
      const waiter = (p: NoblePeripheral): void => {
        if (!matches(p)) return;
        done();
        resolve(p);
      };
      const timer = setTimeout(() => {
        done();
        reject(new MapperError('Unreachable', `BLE device ${describeTarget(target)} not found: no advertisement seen in ${Date.now() - started} ms of scanning`));
      }, target.scanTimeoutMs);
      const onAbort = (): void => {
        done();
        reject(abortError(signal, `scanning for BLE device ${describeTarget(target)}`));
      };
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.discoverWaiters.delete(waiter);
        this.stopScan();
      };
      this.discoverWaiters.add(waiter);
      signal.addEventListener('abort', onAbort, { once: true });
      this.startScan();
    });
  }

  /** Forgets a peripheral, so the next {@link find} scans for it again (its address may have changed). */
  forget(p: NoblePeripheral): void {
    this.seen.delete(p.id);
  }

  /** Scans for `durationMs` (or until `signal` aborts) and returns every peripheral seen meanwhile. */
  async scan(durationMs: number, signal: AbortSignal): Promise<SeenPeripheral[]> {
    signal.throwIfAborted();
    const since = Date.now();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(finish, durationMs);
      function finish(): void {
        clearTimeout(timer);
        signal.removeEventListener('abort', finish);
        resolve();
      }
      signal.addEventListener('abort', finish, { once: true });
      this.startScan();
    });
    this.stopScan();
    return [...this.seen.values()].filter((s) => s.lastSeen >= since);
  }

  /**
   * Marks a peripheral as used by `deviceId` and returns the claim; throws when another device
   * uses it. A new claim by the same device replaces its old one (a reconnect).
   */
  claim(p: NoblePeripheral, deviceId: string): Claim {
    const owner = this.claims.get(p.id);
    if (owner !== undefined && owner.deviceId !== deviceId) {
      throw new MapperError('Unreachable', `BLE peripheral ${p.address || p.id} is already connected for device ${owner.deviceId}`);
    }
    const claim: Claim = { deviceId };
    this.claims.set(p.id, claim);
    return claim;
  }

  /** Gives a claim up, unless a newer claim replaced it. */
  release(p: NoblePeripheral, claim: Claim): void {
    if (this.claims.get(p.id) === claim) this.claims.delete(p.id);
  }

  /**
   * Runs `fn` when no other connection is being established (an LE Create Connection is one
   * at a time, and cancelling a queued one in noble's HCI bindings cancels the wrong one).
   */
  async exclusive<T>(signal: AbortSignal, what: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.connectTail;
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    this.connectTail = prev.then(() => mine);
    try {
      await raceSignal(prev, signal, what);
      return await fn();
    } finally {
      // If we gave up waiting, the queue still waits for `prev` before letting the next one in.
      prev.then(release, release);
    }
  }
}
