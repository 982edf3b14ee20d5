// SPDX-License-Identifier: Apache-2.0
// A bounded push → async-iterator queue for monitored-item notifications. The framework
// consumes readings synchronously, so the queue normally holds at most one publish worth of
// values; if the consumer ever falls behind, the oldest readings are dropped (and counted)
// rather than letting memory grow.

export class PushQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private head = 0;
  private waiting: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | undefined;
  private ended = false;
  private error: unknown;
  private readonly limit: number;
  /** Readings dropped because the queue was full. */
  dropped = 0;
  /** Largest number of queued items seen. */
  highWater = 0;

  constructor(limit: number) {
    this.limit = Math.max(1, limit);
  }

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    if (this.ended) return;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w.resolve({ value: item, done: false });
      return;
    }
    if (this.size >= this.limit) {
      this.head++;
      this.dropped++;
    }
    this.items.push(item);
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items.splice(0, this.head);
      this.head = 0;
    }
    this.highWater = Math.max(this.highWater, this.size);
  }

  /** Ends the iteration after the queued items. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.settle();
  }

  /** Ends the iteration with an error (after the queued items). */
  fail(err: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.error = err;
    this.settle();
  }

  private settle(): void {
    const w = this.waiting;
    if (!w || this.size > 0) return;
    this.waiting = undefined;
    if (this.error !== undefined) w.reject(this.error);
    else w.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.size > 0) {
          const value = this.items[this.head]!;
          this.items[this.head] = undefined as T;
          this.head++;
          return Promise.resolve({ value, done: false });
        }
        if (this.ended) return this.error !== undefined ? Promise.reject(this.error) : Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => {
          this.waiting = { resolve, reject };
        });
      },
      return: () => {
        this.end();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
