// SPDX-License-Identifier: Apache-2.0

/** Counters the runtime keeps; read through `MapperHandle.stats()`. */
export interface RuntimeStats {
  /** driver read() calls. */
  readCalls: number;
  /** Properties requested across all read() calls. */
  propertyReads: number;
  /** Properties whose read failed. */
  readErrors: number;
  /** Samples (successful values) fanned out, polled or subscribed. */
  samples: number;
  /** Collect ticks skipped because the previous read of that device was still running. */
  overruns: number;
  /** ReportDeviceStatus calls that succeeded / failed. */
  twinReports: number;
  twinReportFailures: number;
  /** ReportDeviceStates calls that succeeded / failed. */
  stateReports: number;
  stateReportFailures: number;
  /** driver connect() attempts that failed. */
  connectFailures: number;
  /** Successful MapperRegister calls (1 + re-registrations). */
  registrations: number;
  /** Consumers that threw while accepting samples. */
  consumerErrors: number;
}

export function newStats(): RuntimeStats {
  return {
    readCalls: 0,
    propertyReads: 0,
    readErrors: 0,
    samples: 0,
    overruns: 0,
    twinReports: 0,
    twinReportFailures: 0,
    stateReports: 0,
    stateReportFailures: 0,
    connectFailures: 0,
    registrations: 0,
    consumerErrors: 0,
  };
}

/**
 * Tick lateness (ms) as a log-bucketed histogram: percentiles within 1 % of the true value over
 * every tick since the last reset, in 18 KB whatever the tick rate (a reservoir of samples
 * large enough for 1,000 devices cost 1.6 MB, plus a sorted copy per stats call). Lateness below
 * 1 µs counts as 0; the maximum is kept exactly.
 */
export class LagRecorder {
  private static readonly MIN_MS = 0.001;
  private static readonly GROWTH = 1.01;
  private static readonly LN_GROWTH = Math.log(LagRecorder.GROWTH);
  /** Buckets up to one hour; later ticks land in the last one (the maximum stays exact). */
  private static readonly BUCKETS = Math.ceil(Math.log(3_600_000 / LagRecorder.MIN_MS) / LagRecorder.LN_GROWTH) + 1;
  private readonly counts = new Float64Array(LagRecorder.BUCKETS);
  private seen = 0;
  private max = 0;

  record(ms: number): void {
    this.seen++;
    if (ms > this.max) this.max = ms;
    const i = ms < LagRecorder.MIN_MS ? 0 : Math.min(LagRecorder.BUCKETS - 1, 1 + Math.floor(Math.log(ms / LagRecorder.MIN_MS) / LagRecorder.LN_GROWTH));
    this.counts[i]!++;
  }

  reset(): void {
    this.counts.fill(0);
    this.seen = 0;
    this.max = 0;
  }

  get count(): number {
    return this.seen;
  }

  /** p-th percentile (0-100) of recorded lateness (the upper edge of its bucket, at most the maximum), or 0 with no samples. */
  percentile(p: number): number {
    if (this.seen === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.seen));
    let cumulative = 0;
    for (let i = 0; i < this.counts.length; i++) {
      cumulative += this.counts[i]!;
      if (cumulative < rank) continue;
      if (i === 0) return 0;
      return i === this.counts.length - 1 ? this.max : Math.min(this.max, LagRecorder.MIN_MS * LagRecorder.GROWTH ** i);
    }
    return this.max;
  }
}
