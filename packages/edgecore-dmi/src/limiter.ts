// SPDX-License-Identifier: Apache-2.0
// edgecore's DMI server limiter: one token bucket shared by every DeviceManagerService call
// (golang.org/x/time/rate with rate.Every(1s), burst 100 upstream).

/** Token bucket: `rate` tokens per second, at most `burst` saved, starting full. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  readonly rate: number;
  readonly burst: number;

  constructor(rate: number, burst: number, now: number = performance.now()) {
    if (!(rate > 0) || !(burst >= 1)) throw new RangeError(`limiter needs rate > 0 and burst >= 1 (got rate ${rate}, burst ${burst})`);
    this.rate = rate;
    this.burst = burst;
    this.tokens = burst;
    this.last = now;
  }

  /** Takes one token if available. */
  tryTake(now: number = performance.now()): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Tokens currently available (fractional). */
  available(now: number = performance.now()): number {
    return Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
  }
}
