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

/** Bounded reservoir of tick lateness samples (ms) for percentiles. */
export class LagRecorder {
  private readonly buf: Float64Array;
  private n = 0;
  private seen = 0;
  /** Sorted copy of the reservoir, until the next record (stats() asks for several percentiles at once). */
  private sorted: Float64Array | undefined;

  constructor(capacity = 200_000) {
    this.buf = new Float64Array(capacity);
  }

  record(ms: number): void {
    this.seen++;
    this.sorted = undefined;
    if (this.n < this.buf.length) this.buf[this.n++] = ms;
    else {
      // Reservoir sampling keeps a uniform sample once full.
      const j = Math.floor(Math.random() * this.seen);
      if (j < this.buf.length) this.buf[j] = ms;
    }
  }

  reset(): void {
    this.n = 0;
    this.seen = 0;
    this.sorted = undefined;
  }

  get count(): number {
    return this.seen;
  }

  /** p-th percentile (0-100) of recorded lateness, or 0 with no samples. */
  percentile(p: number): number {
    if (this.n === 0) return 0;
    const sorted = (this.sorted ??= this.buf.slice(0, this.n).sort());
    const idx = Math.min(this.n - 1, Math.max(0, Math.ceil((p / 100) * this.n) - 1));
    return sorted[idx]!;
  }
}
