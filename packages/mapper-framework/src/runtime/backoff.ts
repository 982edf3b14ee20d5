// SPDX-License-Identifier: Apache-2.0
import { performance } from 'node:perf_hooks';

/** Exponential backoff with full jitter in [delay/2, delay]. */
export class Backoff {
  private attempt = 0;
  private readonly initial: number;
  private readonly max: number;

  constructor(initialMs: number, maxMs: number) {
    this.initial = initialMs;
    this.max = Math.max(initialMs, maxMs);
  }

  /** Delay before the next attempt; grows each call. */
  next(): number {
    const base = Math.min(this.max, this.initial * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.round(base / 2 + Math.random() * (base / 2));
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Runs `work` with a signal that aborts after `ms` or when `parent` aborts; rejects with a
 * TimeoutError / the parent's reason, whichever comes first, even if `work` ignores its signal.
 * (One controller, one timer, one promise per call: this runs for every device read.)
 */
export function withTimeout<T>(work: (signal: AbortSignal) => Promise<T>, ms: number, parent: AbortSignal, what: string): Promise<T> {
  if (parent.aborted) return Promise.reject(parent.reason);
  const ctl = new AbortController();
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const finish = (): boolean => {
      if (done) return false;
      done = true;
      clearTimeout(timer);
      parent.removeEventListener('abort', onParent);
      return true;
    };
    const onParent = (): void => {
      if (!finish()) return;
      ctl.abort(parent.reason);
      reject(parent.reason);
    };
    const timer = setTimeout(() => {
      if (!finish()) return;
      const err = new Error(`${what} timed out after ${ms} ms`);
      err.name = 'TimeoutError';
      ctl.abort(err);
      reject(err);
    }, ms);
    parent.addEventListener('abort', onParent, { once: true });
    let p: Promise<T>;
    try {
      p = work(ctl.signal);
    } catch (err) {
      if (finish()) reject(err);
      return;
    }
    p.then(
      (v) => {
        if (finish()) resolve(v);
      },
      (err: unknown) => {
        if (finish()) reject(err);
      },
    );
  });
}

/** Calls one signal serves before it is replaced (bounds what a driver that never removes its listeners can pile up on it). */
const SIGNAL_REUSE = 64;

interface InFlight<T> {
  readonly resolve: (v: T) => void;
  readonly reject: (e: unknown) => void;
  readonly started: number;
  readonly ms: number;
}

/**
 * {@link withTimeout} for calls that never overlap and run again and again (every device read,
 * every state check): same outcome (rejects with a TimeoutError after `ms`, or with the
 * parent's reason when it aborts, even if the work ignores its signal; the signal given to the
 * work aborts then too), but the signal and the timer are reused from call to call. Node
 * creates each AbortSignal in a way that makes V8 promote it to the old generation, so a new
 * signal per read would turn every read into old-generation garbage. A signal is replaced once
 * it has aborted, and after {@link SIGNAL_REUSE} calls.
 */
export class RepeatedCall<A, T> {
  private readonly fn: (arg: A, signal: AbortSignal) => Promise<T>;
  private readonly parent: AbortSignal;
  private readonly what: string;
  private ctl: AbortController | undefined;
  private uses = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerMs = 0;
  private inFlight: InFlight<T> | undefined;
  private readonly onParentAbort = (): void => {
    const c = this.inFlight;
    this.inFlight = undefined;
    this.ctl?.abort(this.parent.reason);
    clearTimeout(this.timer);
    if (c) c.reject(this.parent.reason);
  };
  private readonly onTimer = (): void => {
    const c = this.inFlight;
    if (!c) return;
    // The timer is re-armed when each call starts, so it belongs to this call; libuv counts whole
    // milliseconds, so it may fire a little early.
    const left = c.started + c.ms - performance.now();
    if (left > 1) {
      this.timer = setTimeout(this.onTimer, left).unref();
      this.timerMs = -1; // not the call timeout: the next call makes a new timer
      return;
    }
    this.inFlight = undefined;
    const err = new Error(`${this.what} timed out after ${c.ms} ms`);
    err.name = 'TimeoutError';
    this.ctl?.abort(err);
    c.reject(err);
  };

  constructor(fn: (arg: A, signal: AbortSignal) => Promise<T>, parent: AbortSignal, what: string) {
    this.fn = fn;
    this.parent = parent;
    this.what = what;
    if (!parent.aborted) parent.addEventListener('abort', this.onParentAbort, { once: true });
  }

  /** Runs `fn(arg, signal)`; calls must not overlap (the previous one has settled). */
  call(arg: A, ms: number): Promise<T> {
    if (this.parent.aborted) return Promise.reject(this.parent.reason);
    if (this.inFlight) return Promise.reject(new Error(`${this.what}: previous call still running`));
    let ctl = this.ctl;
    if (!ctl || ctl.signal.aborted || this.uses >= SIGNAL_REUSE) {
      ctl = this.ctl = new AbortController();
      this.uses = 0;
    }
    this.uses++;
    if (this.timer && this.timerMs === ms) this.timer.refresh();
    else {
      clearTimeout(this.timer);
      // Unref'd: an idle device must not keep the process alive (the scheduler's timer does while devices run).
      this.timer = setTimeout(this.onTimer, ms).unref();
      this.timerMs = ms;
    }
    const signal = ctl.signal;
    return new Promise<T>((resolve, reject) => {
      const c: InFlight<T> = { resolve, reject, started: performance.now(), ms };
      this.inFlight = c;
      let p: Promise<T>;
      try {
        p = this.fn(arg, signal);
      } catch (err) {
        this.settle(c, err, undefined, true);
        return;
      }
      p.then(
        (v) => this.settle(c, undefined, v, false),
        (err: unknown) => this.settle(c, err, undefined, true),
      );
    });
  }

  private settle(c: InFlight<T>, err: unknown, value: T | undefined, failed: boolean): void {
    if (this.inFlight !== c) return;
    this.inFlight = undefined;
    if (failed) c.reject(err);
    else c.resolve(value as T);
  }

  /** Stops the timer and forgets the parent (the session is over). */
  dispose(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.parent.removeEventListener('abort', this.onParentAbort);
  }
}

/** Waits for `p` at most `ms`; resolves undefined on timeout. The timer never outlives the wait. */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
