// SPDX-License-Identifier: Apache-2.0
// Circuit breaker of one slave: after `threshold` consecutive failures (no answer, garbled
// answer) requests to that slave fail at once, without touching the bus, for a cooldown
// (jittered, doubling while the slave stays silent, capped). Then one probe is let through:
// an answer closes the breaker, another failure re-opens it. Exception responses count as
// answers: the slave is alive.

export type BreakerState = 'closed' | 'open' | 'half-open';

export class CircuitBreaker {
  threshold: number;
  private baseCooldownMs: number;
  private maxCooldownMs: number;
  private cooldownMs: number;
  private failures = 0;
  private openUntil = 0;
  private probing = false;
  private state_: BreakerState = 'closed';
  /** Times the breaker opened. */
  trips = 0;
  /** Requests refused while open. */
  refused = 0;

  constructor(threshold: number, cooldownMs: number, maxCooldownMs = 60_000) {
    this.threshold = threshold;
    this.baseCooldownMs = cooldownMs;
    this.cooldownMs = cooldownMs;
    this.maxCooldownMs = Math.max(cooldownMs, maxCooldownMs);
  }

  /** New settings (a device was updated); the current state is kept. */
  configure(threshold: number, cooldownMs: number, maxCooldownMs = 60_000): void {
    this.threshold = threshold;
    if (cooldownMs !== this.baseCooldownMs) {
      this.baseCooldownMs = cooldownMs;
      this.cooldownMs = cooldownMs;
    }
    this.maxCooldownMs = Math.max(cooldownMs, maxCooldownMs);
  }

  get state(): BreakerState {
    return this.state_;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  /** Whether a request may be sent now; in half-open state only one probe at a time is allowed. */
  allow(now = Date.now()): boolean {
    if (this.state_ === 'closed') return true;
    if (this.state_ === 'open') {
      if (now < this.openUntil) {
        this.refused++;
        return false;
      }
      this.state_ = 'half-open';
      this.probing = false;
    }
    if (this.probing) {
      this.refused++;
      return false;
    }
    this.probing = true;
    return true;
  }

  /** Whether the slave is currently shut off (open and cooling down). */
  isOpen(now = Date.now()): boolean {
    return this.state_ === 'open' && now < this.openUntil;
  }

  /** Milliseconds until a probe is allowed (0 when not open). */
  retryInMs(now = Date.now()): number {
    return this.state_ === 'open' ? Math.max(0, this.openUntil - now) : 0;
  }

  /** The slave answered (a value or an exception response). */
  success(): void {
    this.failures = 0;
    this.probing = false;
    this.cooldownMs = this.baseCooldownMs;
    this.state_ = 'closed';
  }

  /** The slave did not answer properly. */
  failure(now = Date.now()): void {
    this.failures++;
    if (this.state_ === 'half-open') {
      this.cooldownMs = Math.min(this.maxCooldownMs, this.cooldownMs * 2);
      this.trip(now);
    } else if (this.state_ === 'closed' && this.failures >= this.threshold) this.trip(now);
  }

  /** A sent request ended without telling anything about the slave (link lost, cancelled). */
  release(): void {
    this.probing = false;
  }

  private trip(now: number): void {
    this.state_ = 'open';
    this.probing = false;
    this.trips++;
    // Jitter in [cooldown/2, cooldown] so slaves on one bus do not all probe at once.
    this.openUntil = now + Math.round(this.cooldownMs / 2 + Math.random() * (this.cooldownMs / 2));
  }
}
