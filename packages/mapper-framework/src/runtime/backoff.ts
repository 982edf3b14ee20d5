// SPDX-License-Identifier: Apache-2.0

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

/** Waits for `p` at most `ms`; resolves undefined on timeout. The timer never outlives the wait. */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
