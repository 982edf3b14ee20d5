// SPDX-License-Identifier: Apache-2.0
// Twin and state reports to edgecore: one ReportDeviceStatus per device carrying all its twins
// (latest value wins), state reports on change and as heartbeat, all through one node-wide
// token bucket matching edgecore's server limiter. Nothing queues without bound: a device has
// at most one pending twin report and one pending state report.
import type { Logger } from 'pino';
import type { DeviceSpec, PropertyType } from '../dmi/model.js';
import type { DeviceState } from '../driver.js';
import { errorMessage } from '../errors.js';
import type { ReportDeviceStatesRequest, ReportDeviceStatusRequest, Twin } from '../generated/v1beta1/api.js';
import type { Sample, SampleConsumer } from '../sample.js';
import { formatValue, type PropertyValue } from '../values.js';
import { TokenBucket } from '../dmi/limiter.js';
import type { RuntimeStats } from './stats.js';
import { ValueCell } from './value-cell.js';

/** Transport the reporter sends through (the edgecore link). */
export interface ReportTransport {
  reportDeviceStatus(req: ReportDeviceStatusRequest): Promise<void>;
  reportDeviceStates(req: ReportDeviceStatesRequest): Promise<void>;
}

/**
 * Latest reported value of one property, updated in place by every sample (a new object per
 * sample would be retained for a report cycle and promoted to V8's old generation as garbage).
 * The text is made only when a report is sent: edgecore's limiter lets few reports through.
 */
class TwinValue extends ValueCell {
  timestamp = 0.5;
  has = false;
  readonly type: PropertyType;

  constructor(type: PropertyType) {
    super();
    this.type = type;
  }

  set(value: PropertyValue, timestamp: number): void {
    this.storeValue(value);
    this.timestamp = timestamp;
    this.has = true;
  }

  copy(from: TwinValue): void {
    if (!from.has) return;
    this.set(from.storedValue, from.timestamp);
  }

  get text(): string {
    return formatValue(this.storedValue);
  }
}

interface Entry {
  readonly id: string;
  readonly name: string;
  readonly namespace: string;
  readonly reportProps: ReadonlySet<string>;
  readonly types: ReadonlyMap<string, PropertyType>;
  /** One slot per reported property (reportToCloud), in reportProps order. */
  readonly reported: ReadonlyMap<string, TwinValue>;
  readonly desired: Map<string, { value: string; timestamp: number }>;
  /** New twin data since the last successful report. */
  fresh: boolean;
  state: DeviceState | undefined;
  stateDirty: boolean;
  readonly stateHeartbeat: boolean;
  busy: boolean;
  timers: NodeJS.Timeout[];
}

export interface ReporterOptions {
  readonly rate: number;
  readonly burst: number;
  /** Requests in flight at once. */
  readonly concurrency?: number;
}

/** While twin reports wait, at most this many state reports go before one twin report. */
const STATES_PER_TWIN = 3;

export class Reporter implements SampleConsumer {
  readonly name = 'twin-reporter';
  private readonly entries = new Map<string, Entry>();
  private readonly twinQueue = new Set<string>();
  private readonly stateQueue = new Set<string>();
  private readonly bucket: TokenBucket;
  private readonly concurrency: number;
  private inFlight = 0;
  /** State reports sent in a row since the last twin report (see next()). */
  private statesInARow = 0;
  private pumpTimer: NodeJS.Timeout | undefined;
  private online = false;
  private closed = false;
  private readonly transport: ReportTransport;
  private readonly log: Logger;
  private readonly stats: RuntimeStats;
  /** Called when a report fails in a way that suggests edgecore is gone. */
  onTransportFailure: (err: unknown) => void = () => undefined;

  constructor(transport: ReportTransport, options: ReporterOptions, log: Logger, stats: RuntimeStats) {
    this.transport = transport;
    this.bucket = new TokenBucket(options.rate, options.burst);
    this.concurrency = options.concurrency ?? 4;
    this.log = log;
    this.stats = stats;
  }

  /** Starts tracking a device (replacing any previous entry for the same id). */
  addDevice(spec: DeviceSpec, types: ReadonlyMap<string, PropertyType>, state: DeviceState, observedDesired: ReadonlyMap<string, string>): void {
    const previous = this.entries.get(spec.id);
    this.removeDevice(spec.id);
    const reportProps = new Set(spec.properties.filter((p) => p.reportToCloud && types.has(p.name) && types.get(p.name) !== 'stream').map((p) => p.name));
    const reported = new Map<string, TwinValue>();
    for (const p of reportProps) reported.set(p, new TwinValue(types.get(p)!));
    const entry: Entry = {
      id: spec.id,
      name: spec.name,
      namespace: spec.namespace,
      reportProps,
      types,
      reported,
      desired: new Map(),
      fresh: false,
      state,
      // 'unknown' (not connected yet) is not worth a report; the first real state follows quickly.
      stateDirty: state !== 'unknown' && previous?.state !== state,
      stateHeartbeat: spec.stateReport.reportToCloud,
      busy: false,
      timers: [],
    };
    // Keep what is still meaningful across a restart of the device.
    for (const [k, v] of previous?.reported ?? []) reported.get(k)?.copy(v);
    for (const [k, v] of observedDesired) entry.desired.set(k, { value: v, timestamp: Date.now() });
    this.entries.set(spec.id, entry);
    if (reportProps.size > 0) {
      const cycle = Math.min(...spec.properties.filter((p) => reportProps.has(p.name)).map((p) => p.reportCycle));
      entry.timers.push(
        setInterval(() => {
          if (entry.fresh) this.enqueue(this.twinQueue, entry.id);
        }, cycle),
      );
    }
    if (entry.stateHeartbeat) {
      entry.timers.push(
        setInterval(() => {
          entry.stateDirty = true;
          this.enqueue(this.stateQueue, entry.id);
        }, spec.stateReport.reportCycle),
      );
    }
    if (entry.stateDirty) this.enqueue(this.stateQueue, entry.id);
  }

  removeDevice(id: string): void {
    const e = this.entries.get(id);
    if (!e) return;
    for (const t of e.timers) clearTimeout(t);
    this.entries.delete(id);
    this.twinQueue.delete(id);
    this.stateQueue.delete(id);
  }

  accept(samples: readonly Sample[]): void {
    // Samples come in batches of one device: look the device up once per change of device.
    let id: string | undefined;
    let e: Entry | undefined;
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i]!;
      if (s.deviceId !== id) {
        id = s.deviceId;
        e = this.entries.get(id);
      }
      const slot = e?.reported.get(s.property);
      if (!slot) continue;
      slot.set(s.value, s.timestamp);
      e!.fresh = true;
    }
  }

  observedDesired(deviceId: string, property: string, value: string): void {
    const e = this.entries.get(deviceId);
    if (!e) return;
    e.desired.set(property, { value, timestamp: Date.now() });
    if (e.reportProps.has(property)) e.fresh = true;
  }

  stateChanged(deviceId: string, state: DeviceState): void {
    const e = this.entries.get(deviceId);
    if (!e || e.state === state) return;
    e.state = state;
    e.stateDirty = true;
    this.enqueue(this.stateQueue, deviceId);
  }

  /** Sending resumes when edgecore is registered, pauses while it is not. */
  setOnline(online: boolean): void {
    this.online = online;
    if (online) this.pump();
  }

  /** Pending reports (for tests and metrics). */
  get pending(): { twins: number; states: number } {
    return { twins: this.twinQueue.size, states: this.stateQueue.size };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.pumpTimer);
    for (const id of [...this.entries.keys()]) this.removeDevice(id);
  }

  private enqueue(queue: Set<string>, id: string): void {
    queue.add(id);
    this.pump();
  }

  private next(): { entry: Entry; kind: 'state' | 'twins' } | undefined {
    // State changes first: they are rarer and matter more than one more twin refresh. Not
    // exclusively: within edgecore's 1 request/s, 1,000 devices coming online are 1,000 s of
    // state reports, and every twin would wait that long. While twins wait, every
    // (STATES_PER_TWIN + 1)-th report is a twin report.
    const order =
      this.statesInARow >= STATES_PER_TWIN
        ? ([
            [this.twinQueue, 'twins'],
            [this.stateQueue, 'state'],
          ] as const)
        : ([
            [this.stateQueue, 'state'],
            [this.twinQueue, 'twins'],
          ] as const);
    for (const [queue, kind] of order) {
      for (const id of queue) {
        const entry = this.entries.get(id);
        if (!entry) {
          queue.delete(id);
          continue;
        }
        if (entry.busy) continue;
        queue.delete(id);
        this.statesInARow = kind === 'state' ? this.statesInARow + 1 : 0;
        return { entry, kind };
      }
    }
    return undefined;
  }

  private pump(): void {
    if (!this.online || this.closed) return;
    while (this.inFlight < this.concurrency && (this.stateQueue.size > 0 || this.twinQueue.size > 0)) {
      const wait = this.bucket.waitTime();
      if (wait > 0) {
        if (!this.pumpTimer) {
          this.pumpTimer = setTimeout(() => {
            this.pumpTimer = undefined;
            this.pump();
          }, wait);
        }
        return;
      }
      const job = this.next();
      if (!job) return;
      this.bucket.tryTake();
      void this.send(job.entry, job.kind);
    }
  }

  private twinsOf(e: Entry): Twin[] {
    const twins: Twin[] = [];
    for (const [prop, r] of e.reported) {
      if (!r.has) continue;
      const d = e.desired.get(prop);
      twins.push({
        propertyName: prop,
        reported: { value: r.text, metadata: { timestamp: String(r.timestamp), type: r.type } },
        observedDesired: { value: d?.value ?? '', metadata: d ? { timestamp: String(d.timestamp), type: r.type } : { type: r.type } },
      });
    }
    return twins;
  }

  private async send(e: Entry, kind: 'state' | 'twins'): Promise<void> {
    e.busy = true;
    this.inFlight++;
    try {
      if (kind === 'state') {
        if (!e.stateDirty || e.state === undefined) return;
        const state = e.state;
        e.stateDirty = false;
        try {
          await this.transport.reportDeviceStates({ deviceName: e.name, deviceNamespace: e.namespace, state });
          this.stats.stateReports++;
        } catch (err) {
          this.stats.stateReportFailures++;
          if (e.state === state) e.stateDirty = true;
          this.failed(err, e, this.stateQueue);
        }
      } else {
        const twins = this.twinsOf(e);
        if (twins.length === 0) return;
        e.fresh = false;
        try {
          await this.transport.reportDeviceStatus({
            deviceName: e.name,
            deviceNamespace: e.namespace,
            reportedDevice: { twins, reportToCloud: false, reportCycle: 0n },
          });
          this.stats.twinReports++;
        } catch (err) {
          this.stats.twinReportFailures++;
          e.fresh = true;
          this.failed(err, e, this.twinQueue);
        }
      }
    } finally {
      e.busy = false;
      this.inFlight--;
      this.pump();
    }
  }

  private failed(err: unknown, e: Entry, queue: Set<string>): void {
    const msg = errorMessage(err);
    if (/too many request/i.test(msg)) {
      // edgecore's limiter and ours drifted apart; wait for tokens again.
      this.bucket.drain();
      this.log.debug({ device: e.id }, 'edgecore rate limit hit; report kept pending');
    } else {
      this.log.warn({ device: e.id, err: msg }, 'report to edgecore failed; kept pending');
      this.onTransportFailure(err);
    }
    // Twins are re-queued by the device's report timer (they are still fresh); a state report
    // has no timer unless heartbeats are on, so retry it after a pause.
    if (queue === this.stateQueue) {
      const t = setTimeout(() => {
        e.timers.splice(e.timers.indexOf(t), 1);
        if (this.entries.get(e.id) === e && e.stateDirty) this.enqueue(this.stateQueue, e.id);
      }, 1000);
      e.timers.push(t);
    }
  }
}
