// SPDX-License-Identifier: Apache-2.0
// One sink connection with its queue: a bounded in-memory queue written in batches while the
// sink keeps up, and a disk buffer (store-and-forward) when it fails or falls behind. Records
// leave in the order they arrived; every record is delivered at least once unless dropped by
// the buffer's cap or age limit (counted and logged). The loop never ends on an error.
import type { Logger } from 'pino';
import { type DiskQueue, type DropReason } from './disk-queue.js';
import { type ChannelSpec, SinkError, type SinkKind, type SinkRecord, type SinkWriter } from './types.js';

/** `up`: writing from memory; `buffering`: the sink failed or fell behind, records go through the disk buffer; `dropping`: the buffer hit its cap (or memory-only overflow) in the last 30 s. */
export type SinkState = 'up' | 'buffering' | 'dropping';

/** Counters and gauges of one channel (metrics, status endpoints, tests). */
export interface SinkStatus {
  readonly kind: SinkKind;
  /** `kind:endpoint` with credentials removed: the `sink` label in metrics and logs. */
  readonly sink: string;
  readonly state: SinkState;
  /** Records in the in-memory queue, including a batch being written. */
  readonly queued: number;
  /** Records and bytes in the disk buffer. */
  readonly bufferedRecords: number;
  readonly bufferedBytes: number;
  /** Records written and acknowledged by the sink. */
  readonly delivered: number;
  /** Records that entered the channel. */
  readonly accepted: number;
  /** Records dropped, by reason: `cap` (buffer full), `age` (too old to replay), `rejected` (refused by the server), `overflow` (memory-only mode), `corrupt` (unreadable buffer line). */
  readonly dropped: Readonly<Record<DropReason | 'rejected' | 'overflow', number>>;
  /** Failed write attempts. */
  readonly writeErrors: number;
  readonly lastError: string | undefined;
  readonly lastErrorAt: number | undefined;
  /** Delivery latency (sample time → acknowledged), ms, over the last 10,000 records. */
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
}

export interface ChannelOptions {
  readonly queueCapacity: number;
  readonly batchSize: number;
  readonly writeTimeoutMs: number;
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
  /** Opens the disk buffer (lazily, on first need). Rejecting means memory-only mode. */
  readonly openBuffer: () => Promise<DiskQueue<SinkRecord>>;
  /** Whether a disk buffer already holds records (restored at startup). */
  readonly hasBacklog: boolean;
}

export interface ChannelHooks {
  /** A write attempt finished. */
  onWrite?(sink: string, kind: SinkKind, durationMs: number, ok: boolean): void;
}

const LATENCY_SAMPLES = 10_000;
const DROPPING_WINDOW_MS = 30_000;

export class SinkChannel {
  readonly spec: ChannelSpec;
  readonly sink: string;
  private readonly writer: SinkWriter;
  private readonly opts: ChannelOptions;
  private readonly log: Logger;
  private readonly hooks: ChannelHooks;
  // Queue order, oldest first: `head` (a failed batch taken from memory) → disk buffer → `memory`.
  private head: SinkRecord[] = [];
  /** Records of a memory batch being written (counted as queued). */
  private inFlight = 0;
  private memory: SinkRecord[] = [];
  private disk: DiskQueue<SinkRecord> | undefined;
  private diskOpening: Promise<DiskQueue<SinkRecord> | undefined> | undefined;
  /** Records spilled while the disk buffer is still opening (they follow whatever is on disk). */
  private spillHeld: SinkRecord[] = [];
  private diskFailed = false;
  private wakeUp: (() => void) | undefined;
  private readonly ctl = new AbortController();
  private loop: Promise<void> | undefined;
  private retryDelay: number;
  /** Writes in flight at once while the disk backlog is replayed. */
  private readonly pipeline: number;
  /** Records per write while a backlog is drained. */
  private readonly bulkBatch: number;
  private lastDropAt = 0;
  private lastDropLog = 0;
  private outageStart = 0;
  private spilledSinceLog = false;
  private readonly latency = new Float64Array(LATENCY_SAMPLES);
  private latencyN = 0;
  private latencyI = 0;
  private readonly counters = {
    accepted: 0,
    delivered: 0,
    writeErrors: 0,
    dropped: { cap: 0, age: 0, rejected: 0, overflow: 0, corrupt: 0 },
    lastError: undefined as string | undefined,
    lastErrorAt: undefined as number | undefined,
  };

  constructor(args: { spec: ChannelSpec; sink: string; writer: SinkWriter; options: ChannelOptions; log: Logger; hooks?: ChannelHooks }) {
    this.spec = args.spec;
    this.sink = args.sink;
    this.writer = args.writer;
    this.opts = args.options;
    this.log = args.log;
    this.hooks = args.hooks ?? {};
    this.retryDelay = args.options.retryInitialMs;
    this.pipeline = Math.max(1, Math.floor(args.writer.pipeline ?? 1));
    this.bulkBatch = Math.max(args.options.batchSize, Math.floor(args.writer.bulkBatchSize ?? 0));
    if (args.options.hasBacklog) this.openDisk();
  }

  /** Starts the delivery loop. */
  start(): void {
    this.loop ??= this.run();
  }

  /** Queues one record (never blocks). */
  push(r: SinkRecord): void {
    if (this.ctl.signal.aborted) return;
    this.counters.accepted++;
    this.memory.push(r);
    if (this.memory.length > this.opts.queueCapacity) this.overflow();
    this.wake();
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }

  /**
   * The memory queue is full (the sink is down or slower than its input): move its older half
   * to the end of the disk buffer. Everything on disk is older than everything in memory, so
   * order is kept; samples touch the disk only when memory cannot hold them.
   */
  private overflow(): void {
    if (this.diskFailed) {
      const n = this.memory.length - this.opts.queueCapacity;
      this.memory.splice(0, n);
      this.dropped('overflow', n);
      return;
    }
    const keep = Math.floor(this.opts.queueCapacity / 2);
    const spill = this.memory.splice(0, this.memory.length - keep);
    if (!this.spilledSinceLog) {
      this.spilledSinceLog = true;
      this.log.warn({ queued: this.opts.queueCapacity }, this.outageStart ? 'sink down; buffering to disk' : 'sink is slower than its input; buffering to disk');
    }
    if (this.disk) this.disk.append(spill);
    else {
      this.spillHeld.push(...spill);
      this.openDisk();
    }
  }

  private openDisk(): void {
    this.diskOpening ??= this.opts.openBuffer().then(
      (q) => {
        this.disk = q;
        q.append(this.spillHeld);
        this.spillHeld = [];
        this.wake();
        return q;
      },
      (err: unknown) => {
        this.diskFailed = true;
        this.log.error({ err: (err as Error).message }, 'disk buffer unavailable; buffering in memory only (bounded by data_plane.queue_capacity)');
        // What was meant for the disk is older than memory: put it back in front, then trim.
        this.memory = this.spillHeld.concat(this.memory);
        this.spillHeld = [];
        if (this.memory.length > this.opts.queueCapacity) this.overflow();
        this.wake();
        return undefined;
      },
    );
  }

  /** Records waiting on disk (or on their way there). */
  private diskBacklog(): number {
    return (this.disk?.size ?? 0) + this.spillHeld.length;
  }

  private dropped(reason: DropReason | 'rejected' | 'overflow', n: number): void {
    if (n <= 0) return;
    this.counters.dropped[reason] += n;
    if (reason === 'cap' || reason === 'overflow') this.lastDropAt = Date.now();
    const now = Date.now();
    if (reason === 'rejected' || now - this.lastDropLog > 10_000) {
      this.lastDropLog = now;
      this.log.error({ reason, count: n, totals: { ...this.counters.dropped } }, reason === 'rejected' ? 'sink refused a sample; dropped' : 'sink buffer dropping samples');
    }
  }

  private async run(): Promise<void> {
    const signal = this.ctl.signal;
    if (this.writer.ready) {
      // Let the first connection come up before the first write (records queue in memory meanwhile).
      await this.writer.ready(AbortSignal.any([signal, AbortSignal.timeout(this.opts.writeTimeoutMs)])).catch(() => undefined);
    }
    while (!signal.aborted) {
      try {
        if (this.head.length > 0) {
          // A batch that failed after it left memory: older than anything on disk.
          const batch = this.head;
          const acked = await this.deliver(batch);
          this.head = batch.slice(acked);
          if (acked < batch.length) await this.backoff();
        } else if (this.diskOpening && !this.disk && !this.diskFailed) {
          await this.diskOpening;
        } else if (this.disk && this.disk.size > 0) {
          // `size` counts lines, corrupt ones too, until they are read: never spin on it.
          if (!(await this.replay(this.disk))) await this.pause(50);
        } else if (this.memory.length > 0) {
          // A backlog in memory (the sink is slower than its input) goes in bulk batches.
          const batch = this.memory.splice(0, this.memory.length > this.opts.batchSize ? this.bulkBatch : this.opts.batchSize);
          this.inFlight = batch.length;
          const acked = await this.deliver(batch).finally(() => (this.inFlight = 0));
          if (acked < batch.length) {
            this.head = batch.slice(acked);
            await this.backoff();
          } else this.recovered();
        } else {
          this.recovered();
          await this.idle();
        }
      } catch (err) {
        // Disk I/O errors and bugs: log, wait, carry on (the loop never dies).
        this.log.error({ err: (err as Error).message }, 'sink loop error; retrying');
        await this.backoff();
      }
    }
  }

  /**
   * Delivers the disk backlog in bulk batches, with up to `writer.pipeline` writes in flight
   * (the next batch is read and encoded while the sink works on the previous one). Batches are
   * acknowledged in order; after a failure the writes still in flight are left to finish, their
   * records stay on disk and are sent again (at least once). Returns when the buffer is empty,
   * after a failure, or when the channel closes; false if there was nothing to send.
   */
  private async replay(disk: DiskQueue<SinkRecord>): Promise<boolean> {
    const signal = this.ctl.signal;
    const window: { batch: SinkRecord[]; result: Promise<unknown> }[] = [];
    let handedOut = 0;
    let sent = false;
    try {
      for (;;) {
        while (window.length < this.pipeline && !signal.aborted) {
          const batch = await disk.peek(this.bulkBatch, handedOut);
          if (batch.length === 0) break;
          handedOut += batch.length;
          const result = this.attempt(batch).then(
            () => undefined,
            (err: unknown) => err ?? new Error('write failed'),
          );
          window.push({ batch, result });
        }
        const first = window.shift();
        if (!first) return handedOut > 0 || sent;
        sent = true;
        const err = await first.result;
        if (err === undefined) {
          this.delivered(first.batch);
          this.retryDelay = this.opts.retryInitialMs;
          await disk.ack(first.batch.length);
          handedOut -= first.batch.length;
          if (signal.aborted) return true;
          continue;
        }
        // Let the later writes finish (their outcome does not matter: their records are sent again).
        await Promise.all(window.map((w) => w.result));
        window.length = 0;
        const acked = await this.deliver(first.batch, err);
        if (acked > 0) await disk.ack(acked);
        if (acked < first.batch.length) await this.backoff();
        return true;
      }
    } finally {
      // Closing (or a disk error): never leave a write running behind the loop's back.
      await Promise.all(window.map((w) => w.result));
    }
  }

  /** Back to normal once nothing waits in front of memory. */
  private recovered(): void {
    if (this.head.length > 0 || this.diskBacklog() > 0) return;
    this.spilledSinceLog = false;
    if (this.outageStart) {
      this.log.info({ outageMs: Date.now() - this.outageStart, delivered: this.counters.delivered }, 'sink caught up');
      this.outageStart = 0;
    }
  }

  private idle(): Promise<void> {
    return new Promise<void>((resolve) => {
      // Also wake periodically (age sweep of the buffer).
      const t = setTimeout(() => this.wake(), 5000);
      t.unref();
      this.wakeUp = () => {
        clearTimeout(t);
        resolve();
      };
    }).then(async () => {
      if (this.disk && this.disk.size > 0) await this.disk.sweep().catch(() => undefined);
    });
  }

  private backoff(): Promise<void> {
    const delay = Math.round(this.retryDelay / 2 + Math.random() * (this.retryDelay / 2));
    this.retryDelay = Math.min(this.opts.retryMaxMs, this.retryDelay * 2);
    return this.pause(delay);
  }

  /** Waits `delay` ms, less if the channel closes. */
  private pause(delay: number): Promise<void> {
    // Closing already: an 'abort' listener added now would never fire, and shutdown would wait out the delay.
    if (this.ctl.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const onAbort = (): void => {
        clearTimeout(t);
        resolve();
      };
      const t = setTimeout(() => {
        this.ctl.signal.removeEventListener('abort', onAbort);
        resolve();
      }, delay);
      this.ctl.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Writes `batch`; returns how many records at its head are done (delivered, or refused for
   * good and dropped). Less than `batch.length` means the sink is failing.
   */
  private async deliver(batch: readonly SinkRecord[], firstError?: unknown): Promise<number> {
    let done = 0;
    // The outcome of a write of the whole batch made by the caller (pipelined replay).
    let failedAlready = firstError;
    while (done < batch.length) {
      const part = batch.slice(done);
      try {
        if (failedAlready !== undefined) {
          const e = failedAlready;
          failedAlready = undefined;
          throw e;
        }
        await this.attempt(part);
        this.delivered(part);
        done += part.length;
      } catch (err) {
        const e = err instanceof SinkError ? err : new SinkError((err as Error)?.message ?? String(err), { cause: err });
        const ok = Math.min(Math.max(0, e.delivered), part.length);
        if (ok > 0) this.delivered(part.slice(0, ok));
        done += ok;
        if (!e.permanent) {
          this.failed(e);
          return done;
        }
        // The server refused the record at `done` (or some record of a multi-record write):
        // isolate it by writing one record at a time, and drop a refused single record.
        const one = batch.slice(done, done + 1);
        if (one.length === 0) return done;
        try {
          await this.attempt(one);
          this.delivered(one);
        } catch (err2) {
          const e2 = err2 instanceof SinkError ? err2 : new SinkError((err2 as Error)?.message ?? String(err2));
          if (!e2.permanent) {
            this.failed(e2);
            return done;
          }
          this.log.error({ device: `${one[0]!.ns}/${one[0]!.dev}`, property: one[0]!.prop, value: one[0]!.val.slice(0, 200), err: e2.message }, 'sink refused a sample');
          this.dropped('rejected', 1);
        }
        done += 1;
      }
    }
    this.retryDelay = this.opts.retryInitialMs;
    return done;
  }

  private async attempt(records: readonly SinkRecord[]): Promise<void> {
    const started = performance.now();
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(new SinkError(`write timed out after ${this.opts.writeTimeoutMs} ms`)), this.opts.writeTimeoutMs);
    const stop = (): void => ctl.abort(new SinkError('sink closing'));
    this.ctl.signal.addEventListener('abort', stop, { once: true });
    try {
      const aborted = new Promise<never>((_, reject) => ctl.signal.addEventListener('abort', () => reject(ctl.signal.reason as Error), { once: true }));
      const work = this.writer.write(records, ctl.signal);
      work.catch(() => undefined);
      await Promise.race([work, aborted]);
      this.hooks.onWrite?.(this.sink, this.spec.kind, performance.now() - started, true);
    } catch (err) {
      this.hooks.onWrite?.(this.sink, this.spec.kind, performance.now() - started, false);
      throw err;
    } finally {
      clearTimeout(timer);
      this.ctl.signal.removeEventListener('abort', stop);
    }
  }

  private delivered(records: readonly SinkRecord[]): void {
    this.counters.delivered += records.length;
    const now = Date.now();
    for (const r of records) {
      this.latency[this.latencyI] = now - r.ts;
      this.latencyI = (this.latencyI + 1) % LATENCY_SAMPLES;
      if (this.latencyN < LATENCY_SAMPLES) this.latencyN++;
    }
  }

  private failed(e: SinkError): void {
    this.counters.writeErrors++;
    const first = this.counters.lastError === undefined || this.outageStart === 0;
    this.counters.lastError = e.message;
    this.counters.lastErrorAt = Date.now();
    if (this.outageStart === 0) this.outageStart = Date.now();
    if (first) this.log.warn({ err: e.message }, 'sink write failed; buffering and retrying');
    else this.log.debug({ err: e.message }, 'sink write failed again');
  }

  /** Called by the disk buffer. */
  bufferDropped(reason: DropReason, n: number): void {
    this.dropped(reason, n);
  }

  status(): SinkStatus {
    const lat = this.latency.slice(0, this.latencyN).sort();
    const pct = (p: number): number => (lat.length === 0 ? 0 : lat[Math.min(lat.length - 1, Math.max(0, Math.ceil((p / 100) * lat.length) - 1))]!);
    const dropping = Date.now() - this.lastDropAt < DROPPING_WINDOW_MS;
    return {
      kind: this.spec.kind,
      sink: this.sink,
      state: dropping ? 'dropping' : this.outageStart !== 0 || this.head.length > 0 || this.diskBacklog() > 0 ? 'buffering' : 'up',
      queued: this.memory.length + this.head.length + this.inFlight,
      bufferedRecords: this.diskBacklog(),
      bufferedBytes: this.disk?.bytes ?? 0,
      delivered: this.counters.delivered,
      accepted: this.counters.accepted,
      dropped: { ...this.counters.dropped },
      writeErrors: this.counters.writeErrors,
      lastError: this.counters.lastError,
      lastErrorAt: this.counters.lastErrorAt,
      latencyP50Ms: pct(50),
      latencyP99Ms: pct(99),
    };
  }

  /**
   * Stops: tries to deliver what is in memory within `graceMs`, moves the rest to the disk
   * buffer (replayed at the next start), closes the writer.
   */
  async close(graceMs = 3000): Promise<void> {
    if (this.ctl.signal.aborted) return;
    const deadline = Date.now() + graceMs;
    while ((this.memory.length > 0 || this.head.length > 0) && this.outageStart === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    this.ctl.abort();
    this.wake();
    await this.loop?.catch(() => undefined);
    const left = this.head.length + this.spillHeld.length + this.memory.length;
    if (left > 0 && !this.diskFailed) {
      try {
        const q = this.disk ?? (await (this.diskOpening ?? this.opts.openBuffer()));
        if (q) {
          // `head` is older than the disk backlog: it goes in front of it.
          if (this.head.length > 0) await q.prepend(this.head);
          q.append(this.spillHeld);
          q.append(this.memory);
          this.head = [];
          this.spillHeld = [];
          this.memory = [];
        }
      } catch (err) {
        this.log.error({ err: (err as Error).message, lost: left }, 'could not buffer unsent samples at shutdown');
      }
    } else if (left > 0) {
      this.log.error({ lost: left }, 'unsent samples lost at shutdown (no disk buffer)');
    }
    const q = this.disk ?? (await this.diskOpening?.catch(() => undefined));
    await q?.close().catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'disk buffer close failed'));
    await this.writer.close().catch(() => undefined);
  }
}
