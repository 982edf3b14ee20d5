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

/** Races a promise against a timeout and an abort signal; rejects with a TimeoutError / the abort reason. */
export function withTimeout<T>(work: (signal: AbortSignal) => Promise<T>, ms: number, parent: AbortSignal, what: string): Promise<T> {
  const ctl = new AbortController();
  const onParent = (): void => ctl.abort(parent.reason);
  if (parent.aborted) ctl.abort(parent.reason);
  else parent.addEventListener('abort', onParent, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new Error(`${what} timed out after ${ms} ms`);
      err.name = 'TimeoutError';
      ctl.abort(err);
      reject(err);
    }, ms);
  });
  const aborted = new Promise<never>((_, reject) => {
    if (ctl.signal.aborted) reject(ctl.signal.reason);
    else ctl.signal.addEventListener('abort', () => reject(ctl.signal.reason), { once: true });
  });
  let p: Promise<T>;
  try {
    p = work(ctl.signal);
  } catch (err) {
    p = Promise.reject(err);
  }
  return Promise.race([p, timeout, aborted]).finally(() => {
    clearTimeout(timer);
    parent.removeEventListener('abort', onParent);
    // Swallow late rejections of the losers.
    p.catch(() => undefined);
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
