// SPDX-License-Identifier: Apache-2.0
// One Modbus connection (a TCP connection to host:port, or one serial port) shared by every
// device that uses it. Requests on a link are strictly serialised (one transaction on the
// wire at a time: serial buses and most TCP devices and gateways cannot interleave); writes
// go ahead of queued reads; serial links keep an inter-frame silence; every slave has a
// circuit breaker; opening after a failure is rate-limited with jittered exponential backoff.
import { performance } from 'node:perf_hooks';
import { type Logger, MapperError } from '@mapperkit/framework';
import modbusSerial from 'modbus-serial';
import { CircuitBreaker } from './breaker.js';
import type { ModbusProtocol } from './config.js';
import { exceptionKind, exceptionText, isGatewayFailure, ModbusExceptionError } from './errors.js';

// modbus-serial is CommonJS: its module object is the client class (also exposed as `.default`).
const ModbusSerial = modbusSerial.default;
type ModbusClientLib = InstanceType<typeof ModbusSerial>;
type NodeCallback = (err: unknown, data: unknown) => void;

/** One Modbus transaction. */
export type ModbusRequest =
  | { readonly fc: 1 | 2 | 3 | 4; readonly address: number; readonly count: number }
  | { readonly fc: 5; readonly address: number; readonly value: boolean }
  | { readonly fc: 6; readonly address: number; readonly value: number }
  | { readonly fc: 15; readonly address: number; readonly values: boolean[] }
  | { readonly fc: 16; readonly address: number; readonly values: number[] };

/** Answer of a read: bits (FC1/2) or the raw register bytes in wire order (FC3/4). */
export interface ModbusResponse {
  readonly bits?: readonly boolean[];
  readonly bytes?: Buffer;
}

/** Why a transaction failed without an exception response. */
export type FailureReason = 'timeout' | 'closed' | 'protocol' | 'circuit';

/** A transaction that got no usable answer. */
export class LinkError extends MapperError {
  readonly reason: FailureReason;
  constructor(reason: FailureReason, message: string, cause?: unknown) {
    super(reason === 'timeout' ? 'Timeout' : reason === 'protocol' ? 'DeviceError' : 'Unreachable', message, cause === undefined ? {} : { cause });
    this.reason = reason;
  }
}

/** Performs one transaction inside a job (jobs with several, e.g. read-modify-write, call it more than once). */
export type Transact = (req: ModbusRequest) => Promise<ModbusResponse>;

/** Completion callback of one job: an error, or the answer. */
export type Done = (err: unknown, res: ModbusResponse | undefined) => void;

interface Job {
  readonly slave: number;
  readonly timeoutMs: number;
  readonly priority: boolean;
  readonly signal: AbortSignal | undefined;
  /** A single transaction (reads, plain writes)… */
  readonly req: ModbusRequest | undefined;
  /** …or several that belong together (read-modify-write). */
  readonly run: ((tx: Transact) => Promise<unknown>) | undefined;
  readonly done: (err: unknown, value: unknown) => void;
  settled: boolean;
}

/** Counters of one link. */
export interface LinkStats {
  readonly key: string;
  readonly open: boolean;
  readonly devices: number;
  /** Transactions sent. */
  requests: number;
  /** Exception responses received. */
  exceptions: number;
  timeouts: number;
  /** Garbled or unexpected answers (CRC, length, address mismatch). */
  protocolErrors: number;
  /** Requests refused by an open circuit breaker (not sent). */
  refused: number;
  /** Successful opens of the connection / port. */
  opens: number;
  /** Most transactions ever on the wire at once (1: strictly serialised). */
  maxInFlight: number;
  /** Connections lost while open. */
  lost: number;
  readonly breakers: Readonly<Record<number, { state: string; trips: number; consecutiveFailures: number }>>;
}

/** Settings that must agree between the devices sharing a serial port. */
function serialSettings(p: ModbusProtocol): string {
  return `${p.baudRate} baud, ${p.dataBits} data bits, parity ${p.parity}, ${p.stopBits} stop bit${p.stopBits > 1 ? 's' : ''}`;
}

/** Identity of the connection a device's protocol config uses. */
export function linkKey(p: ModbusProtocol): string {
  return p.mode === 'TCP' ? `tcp://${p.host.includes(':') ? `[${p.host}]` : p.host}:${p.port}` : `rtu://${p.serialName}`;
}

/** Reconnect pacing of one endpoint, kept across link lifetimes. */
interface Pace {
  attempt: number;
  retryAt: number;
  lastError: string;
}

const BACKOFF_INITIAL_MS = 200;
const BACKOFF_MAX_MS = 10_000;

export class ModbusLink {
  readonly key: string;
  readonly protocol: ModbusProtocol;
  private readonly log: Logger;
  private readonly pace: Pace;
  private client: ModbusClientLib | undefined;
  private opening: Promise<void> | undefined;
  private queue: Job[] = [];
  private head = 0;
  private busy = false;
  private lastFrameEnd = 0;
  private quietUntil = 0;
  private interFrameDelayMs: number;
  private inflight: ((err: unknown, data: unknown) => void) | undefined;
  private readonly breakers = new Map<number, CircuitBreaker>();
  refs = 0;
  closed = false;
  readonly counters = { requests: 0, exceptions: 0, timeouts: 0, protocolErrors: 0, refused: 0, opens: 0, lost: 0, maxInFlight: 0 };
  private inFlight = 0;

  constructor(protocol: ModbusProtocol, log: Logger, pace: Pace) {
    this.key = linkKey(protocol);
    this.protocol = protocol;
    this.log = log.child({ link: this.key });
    this.pace = pace;
    this.interFrameDelayMs = protocol.mode === 'RTU' ? protocol.interFrameDelayMs : 0;
  }

  get isOpen(): boolean {
    return this.client !== undefined && this.client.isOpen;
  }

  /** Adds a device's settings; throws InvalidConfig when a serial port's settings disagree. */
  join(p: ModbusProtocol): void {
    if (p.mode === 'RTU' && serialSettings(p) !== serialSettings(this.protocol)) {
      const key = p.baudRate !== this.protocol.baudRate ? 'baudRate' : p.dataBits !== this.protocol.dataBits ? 'dataBits' : p.parity !== this.protocol.parity ? 'parity' : 'stopBits';
      throw new MapperError(
        'InvalidConfig',
        `serial port ${p.serialName} is already open with ${serialSettings(this.protocol)}; this device asks for ${serialSettings(p)} (protocol configData.${key})`,
        { key: `protocol configData.${key}` },
      );
    }
    if (p.mode === 'RTU') this.interFrameDelayMs = Math.max(this.interFrameDelayMs, p.interFrameDelayMs);
  }

  /** The breaker of one slave, with the settings of the device that connected last. */
  breaker(slave: number, threshold: number, cooldownMs: number): CircuitBreaker {
    let b = this.breakers.get(slave);
    if (!b) this.breakers.set(slave, (b = new CircuitBreaker(threshold, cooldownMs)));
    else b.configure(threshold, cooldownMs);
    return b;
  }

  /** Error for requests made while the link is down. */
  downError(): LinkError {
    return new LinkError('closed', `${this.key} is not connected${this.pace.lastError ? ` (${this.pace.lastError})` : ''}`);
  }

  /**
   * Opens the connection if it is not open. Concurrent callers share one attempt. After a
   * failed attempt, further attempts before the (jittered, exponential) retry time fail at once.
   */
  async open(signal: AbortSignal): Promise<void> {
    if (this.closed) throw new MapperError('Cancelled', `${this.key} was closed`);
    if (this.isOpen) return;
    if (!this.opening) {
      const wait = this.pace.retryAt - Date.now();
      if (wait > 0) throw new MapperError('Unreachable', `${this.key}: ${this.pace.lastError}; next connection attempt in ${wait} ms`);
      this.opening = this.doOpen().finally(() => {
        this.opening = undefined;
      });
    }
    const opening = this.opening;
    await new Promise<void>((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = (): void => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      opening.then(
        () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  }

  private async doOpen(): Promise<void> {
    const p = this.protocol;
    const client = new ModbusSerial();
    // The library emits 'error' for serial port errors; without a listener they would crash the process.
    client.on('error', (err: unknown) => this.log.debug({ err: String((err as Error)?.message ?? err) }, 'port error'));
    let timer: NodeJS.Timeout | undefined;
    try {
      const connecting = p.mode === 'TCP' ? client.connectTCP(p.host, { port: p.port }) : client.connectRTUBuffered(p.serialName, { baudRate: p.baudRate, dataBits: p.dataBits, stopBits: p.stopBits, parity: p.parity });
      await Promise.race([
        connecting,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new MapperError('Timeout', `${this.key}: connection not established within ${p.connectTimeoutMs} ms`)), p.connectTimeoutMs);
        }),
      ]);
    } catch (err) {
      clearTimeout(timer);
      abandon(client, p.mode);
      const e = err instanceof MapperError ? err : new MapperError('Unreachable', `${this.key}: ${describe(err)}`, { cause: err });
      this.pace.attempt++;
      const base = Math.min(BACKOFF_MAX_MS, BACKOFF_INITIAL_MS * 2 ** Math.min(this.pace.attempt - 1, 20));
      this.pace.retryAt = Date.now() + Math.round(base / 2 + (Math.random() * base) / 2);
      this.pace.lastError = e.message.startsWith(this.key) ? e.message.slice(this.key.length + 2) : e.message;
      if (this.pace.attempt === 1 || this.pace.attempt % 10 === 0) this.log.warn({ err: e.message, attempt: this.pace.attempt }, 'cannot open Modbus link');
      throw e;
    }
    clearTimeout(timer);
    if (this.closed) {
      abandon(client, p.mode);
      throw new MapperError('Cancelled', `${this.key} was closed while connecting`);
    }
    this.pace.attempt = 0;
    this.pace.retryAt = 0;
    this.pace.lastError = '';
    this.client = client;
    this.counters.opens++;
    if (p.mode === 'RTU' && p.rs485Enabled) this.log.info('rs485Enabled: the RS-485 transceiver is expected to switch direction itself (no kernel RS-485 mode is set)');
    client.on('close', () => this.onClosed(client));
    this.log.info('Modbus link open');
  }

  private onClosed(client: ModbusClientLib): void {
    if (this.client !== client) return;
    this.client = undefined;
    this.counters.lost++;
    this.pace.lastError = 'connection closed by the device';
    this.log.warn('Modbus link lost');
    const err = new LinkError('closed', `${this.key}: connection closed by the device`);
    this.inflight?.(err, undefined);
    this.failQueued(err);
  }

  private failQueued(err: unknown): void {
    for (let i = this.head; i < this.queue.length; i++) {
      const job = this.queue[i]!;
      this.settle(job, err, undefined);
    }
    this.queue = [];
    this.head = 0;
  }

  /**
   * Queues one transaction for a slave; `done` is called exactly once with the answer or the
   * error. The queue is strictly FIFO except that `priority` jobs (writes) go ahead of queued
   * ones. A job whose `signal` has aborted by the time it is reached is dropped without being
   * sent (`done` gets the abort reason); one already on the wire keeps the link busy until it is
   * answered or times out, so frames never overlap. Callers that must return at once on abort
   * race their own promise against the signal (one listener per call, not per request).
   */
  submit(slave: number, timeoutMs: number, signal: AbortSignal | undefined, priority: boolean, req: ModbusRequest, done: Done): void {
    this.push({ slave, timeoutMs, priority, signal, req, run: undefined, done: done as Job['done'], settled: false });
  }

  /**
   * Queues a job of several transactions that must not be interleaved with others (a
   * read-modify-write). Same ordering and cancellation rules as {@link submit}.
   */
  enqueue<T>(slave: number, timeoutMs: number, signal: AbortSignal | undefined, priority: boolean, run: (tx: Transact) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.push({
        slave,
        timeoutMs,
        priority,
        signal,
        req: undefined,
        run,
        done: (err, res) => (err === undefined ? resolve(res as T) : reject(err)),
        settled: false,
      });
    });
  }

  private push(job: Job): void {
    if (job.signal?.aborted) {
      this.settle(job, job.signal.reason, undefined);
      return;
    }
    if (!this.isOpen) {
      this.settle(job, this.downError(), undefined);
      return;
    }
    if (job.priority) {
      // After other priority jobs, before queued reads.
      let i = this.head;
      while (i < this.queue.length && this.queue[i]!.priority) i++;
      this.queue.splice(i, 0, job);
    } else this.queue.push(job);
    if (!this.busy) this.pump();
  }

  private settle(job: Job, err: unknown, value: unknown): void {
    if (job.settled) return;
    job.settled = true;
    job.done(err, value);
  }

  private pump(): void {
    while (!this.busy && this.head < this.queue.length) {
      const job = this.queue[this.head++]!;
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      if (job.settled) continue;
      if (job.signal?.aborted) {
        this.settle(job, job.signal.reason, undefined);
        continue;
      }
      this.busy = true;
      if (job.req) {
        let sync = true;
        this.transact(job, job.req, (err, res) => {
          this.settle(job, err, res);
          this.busy = false;
          // An answer in the same tick (e.g. a refused request) must not recurse through the queue.
          if (sync) queueMicrotask(() => this.pump());
          else this.pump();
        });
        sync = false;
      } else {
        const tx: Transact = (req) => new Promise((resolve, reject) => this.transact(job, req, (err, res) => (err === undefined ? resolve(res!) : reject(err))));
        let p: Promise<unknown>;
        try {
          p = job.run!(tx);
        } catch (err) {
          p = Promise.reject(err);
        }
        p.then(
          (v) => this.settle(job, undefined, v),
          (e: unknown) => this.settle(job, e, undefined),
        ).finally(() => {
          this.busy = false;
          this.pump();
        });
      }
    }
    if (this.head >= this.queue.length) {
      this.queue = [];
      this.head = 0;
    }
  }

  /** One transaction on the wire: breaker check, inter-frame silence, send, answer or timeout. */
  private transact(job: Job, req: ModbusRequest, done: Done): void {
    const breaker = this.breakers.get(job.slave);
    if (breaker && !breaker.allow()) {
      this.counters.refused++;
      done(new LinkError('circuit', `slave ${job.slave} on ${this.key} is not answering: circuit open, next probe in ${breaker.retryInMs()} ms`), undefined);
      return;
    }
    // Serial buses need silence between frames; after a timeout wait longer so a late answer
    // cannot be taken for the answer to the next request.
    const quiet = Math.max(this.lastFrameEnd + this.interFrameDelayMs, this.quietUntil) - performance.now();
    if (quiet > 0) {
      setTimeout(() => this.send(job, req, breaker, done), quiet);
      return;
    }
    this.send(job, req, breaker, done);
  }

  private send(job: Job, req: ModbusRequest, breaker: CircuitBreaker | undefined, done: Done): void {
    if (job.signal?.aborted) {
      breaker?.release();
      done(job.signal.reason, undefined);
      return;
    }
    const client = this.client;
    if (!client || !client.isOpen) {
      breaker?.release();
      done(this.downError(), undefined);
      return;
    }
    this.counters.requests++;
    this.inFlight++;
    if (this.inFlight > this.counters.maxInFlight) this.counters.maxInFlight = this.inFlight;
    let finished = false;
    // modbus-serial keeps every TCP transaction (and its callback) in a table of 256 slots that
    // is only ever overwritten, so the callback must not hold on to this request: it is made
    // outside this scope and reaches `finish` through a holder emptied when it is over.
    const holder: Holder = { finish: undefined };
    const finish = (err: unknown, data: unknown): void => {
      if (finished) return;
      finished = true;
      holder.finish = undefined;
      clearTimeout(timer);
      forgetTransaction(client, tid, cb);
      this.inflight = undefined;
      this.inFlight--;
      this.lastFrameEnd = performance.now();
      if (err === undefined || err === null) {
        breaker?.success();
        const d = data as { data?: unknown; buffer?: Buffer } | undefined;
        done(undefined, req.fc === 1 || req.fc === 2 ? { bits: (d?.data as boolean[]) ?? [] } : req.fc === 3 || req.fc === 4 ? { bytes: d?.buffer ?? Buffer.alloc(0) } : {});
        return;
      }
      const e = this.classify(err, job.slave, req);
      if (e instanceof ModbusExceptionError) {
        this.counters.exceptions++;
        if (isGatewayFailure(e.exceptionCode)) breaker?.failure();
        else breaker?.success();
      } else if (e.reason === 'timeout' || e.reason === 'protocol') {
        if (e.reason === 'timeout') {
          this.counters.timeouts++;
          if (this.protocol.mode === 'RTU') this.quietUntil = performance.now() + Math.min(job.timeoutMs, 100);
        } else this.counters.protocolErrors++;
        breaker?.failure();
      } else breaker?.release();
      done(e, undefined);
    };
    holder.finish = finish;
    // modbus-serial files the transaction under the port's next transaction id (TCP: 0-255,
    // RTU: one slot) and only overwrites it 256 requests later: at one request per second that
    // keeps every transaction (and its callback) for minutes, long enough for V8 to promote it.
    // Drop it once it is over (a late answer then finds no transaction and is ignored, as the
    // library does for unknown ids).
    const tid = transactionId(client);
    const timer = setTimeout(() => finish(new LinkError('timeout', `slave ${job.slave} on ${this.key} did not answer ${describeRequest(req)} within ${job.timeoutMs} ms`), undefined), job.timeoutMs);
    this.inflight = finish;
    const cb = relay(holder);
    try {
      switch (req.fc) {
        case 1:
          client.writeFC1(job.slave, req.address, req.count, cb);
          break;
        case 2:
          client.writeFC2(job.slave, req.address, req.count, cb);
          break;
        case 3:
          client.writeFC3(job.slave, req.address, req.count, cb);
          break;
        case 4:
          client.writeFC4(job.slave, req.address, req.count, cb);
          break;
        case 5:
          client.writeFC5(job.slave, req.address, req.value, cb);
          break;
        case 6:
          client.writeFC6(job.slave, req.address, req.value, cb);
          break;
        case 15:
          client.writeFC15(job.slave, req.address, req.values, cb);
          break;
        case 16:
          client.writeFC16(job.slave, req.address, req.values, cb);
          break;
      }
    } catch (err) {
      finish(err, undefined);
    }
  }

  private classify(err: unknown, slave: number, req: ModbusRequest): ModbusExceptionError | LinkError {
    if (err instanceof LinkError) return err;
    const e = err as { modbusCode?: unknown; errno?: unknown; message?: unknown };
    if (typeof e.modbusCode === 'number') {
      const write = req.fc >= 5;
      return new ModbusExceptionError(exceptionKind(e.modbusCode, write), e.modbusCode, `slave ${slave} answered ${describeRequest(req)} with ${exceptionText(e.modbusCode)}`);
    }
    if (e.errno === 'ETIMEDOUT') return new LinkError('timeout', `slave ${slave} on ${this.key} did not answer ${describeRequest(req)}`, err);
    if (e.errno === 'ECONNREFUSED' || !this.isOpen) return new LinkError('closed', `${this.key}: ${describe(err)}`, err);
    return new LinkError('protocol', `slave ${slave} on ${this.key}: bad answer to ${describeRequest(req)}: ${describe(err)}`, err);
  }

  /** Counters and breaker states. */
  stats(): LinkStats {
    const breakers: Record<number, { state: string; trips: number; consecutiveFailures: number }> = {};
    for (const [slave, b] of this.breakers) breakers[slave] = { state: b.state, trips: b.trips, consecutiveFailures: b.consecutiveFailures };
    return { key: this.key, open: this.isOpen, devices: this.refs, ...this.counters, breakers };
  }

  /** Closes the connection and fails queued jobs. */
  async close(): Promise<void> {
    this.closed = true;
    const client = this.client;
    this.client = undefined;
    const err = new MapperError('Cancelled', `${this.key} closed`);
    this.inflight?.(new LinkError('closed', `${this.key} closed`), undefined);
    this.failQueued(err);
    if (client) await closeClient(client);
  }
}

interface Holder {
  finish: ((err: unknown, data: unknown) => void) | undefined;
}

/** What link.ts relies on of modbus-serial's internals (checked at run time; absent = nothing to clean up). */
interface ClientInternals {
  _port?: { _transactionIdWrite?: unknown };
  _transactions?: Record<string, { next?: unknown } | undefined>;
}

/** Id under which the library will file the next transaction. */
function transactionId(client: ModbusClientLib): string | undefined {
  const id = (client as unknown as ClientInternals)._port?._transactionIdWrite;
  return typeof id === 'number' || id === undefined ? String(id) : undefined;
}

/** Removes a finished transaction from the library's table, if it is still ours. */
function forgetTransaction(client: ModbusClientLib, tid: string | undefined, cb: NodeCallback): void {
  if (tid === undefined) return;
  const table = (client as unknown as ClientInternals)._transactions;
  if (table && typeof table === 'object' && table[tid]?.next === cb) delete table[tid];
}

/** A library callback that only references `holder` (not the request's scope). */
function relay(holder: Holder): NodeCallback {
  return (err, data) => holder.finish?.(err ?? undefined, data);
}

function destroy(client: ModbusClientLib): void {
  try {
    client.destroy(() => undefined);
  } catch {
    // already gone
  }
}

/** Drops a client that failed to open: TCP sockets are destroyed, serial ports closed (they have no destroy). */
function abandon(client: ModbusClientLib, mode: 'TCP' | 'RTU'): void {
  if (mode === 'TCP') destroy(client);
  else
    try {
      client.close(() => undefined);
    } catch {
      // not open
    }
}

function closeClient(client: ModbusClientLib): Promise<void> {
  return new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      destroy(client);
      resolve();
    }, 1000);
    try {
      client.close(() => {
        clearTimeout(t);
        resolve();
      });
    } catch {
      clearTimeout(t);
      destroy(client);
      resolve();
    }
  });
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  const e = err as { message?: unknown; errno?: unknown; code?: unknown } | undefined;
  if (e && typeof e.message === 'string' && e.message) return e.message;
  if (e && (typeof e.errno === 'string' || typeof e.code === 'string')) return String(e.code ?? e.errno);
  return String(err);
}

const FC_NAMES: Readonly<Record<number, string>> = {
  1: 'read coils',
  2: 'read discrete inputs',
  3: 'read holding registers',
  4: 'read input registers',
  5: 'write coil',
  6: 'write register',
  15: 'write coils',
  16: 'write registers',
};

export function describeRequest(req: ModbusRequest): string {
  const n = 'count' in req ? req.count : 'values' in req ? req.values.length : 1;
  return `${FC_NAMES[req.fc]} ${req.address}${n > 1 ? `..${req.address + n - 1}` : ''} (FC${req.fc})`;
}

/** The links of one driver instance, shared by the devices that use the same endpoint. */
export class LinkRegistry {
  private readonly links = new Map<string, ModbusLink>();
  private readonly paces = new Map<string, Pace>();

  /** The link for a device's protocol config (created on first use). */
  acquire(p: ModbusProtocol, log: Logger): ModbusLink {
    const key = linkKey(p);
    let link = this.links.get(key);
    if (link && !link.closed) link.join(p);
    else {
      let pace = this.paces.get(key);
      if (!pace) this.paces.set(key, (pace = { attempt: 0, retryAt: 0, lastError: '' }));
      link = new ModbusLink(p, log, pace);
      this.links.set(key, link);
    }
    link.refs++;
    return link;
  }

  /** Drops one device's use of a link; the last one closes it. */
  async release(link: ModbusLink): Promise<void> {
    link.refs--;
    if (link.refs > 0) return;
    if (this.links.get(link.key) === link) this.links.delete(link.key);
    const pace = this.paces.get(link.key);
    if (pace && pace.attempt === 0) this.paces.delete(link.key);
    await link.close();
  }

  stats(): LinkStats[] {
    return [...this.links.values()].map((l) => l.stats());
  }
}
