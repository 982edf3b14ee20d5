// SPDX-License-Identifier: Apache-2.0
// Prometheus metrics (prom-client) of a mapper: a RuntimeObserver for reads, writes, connects,
// states, DMI calls and registration; a SampleConsumer for per-property freshness; sink
// gauges read from the data plane at scrape time. One Registry per mapper (no global state).
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { DEVICE_STATES, type DeviceState } from '../driver.js';
import type { MapperError } from '../errors.js';
import type { RuntimeObserver } from '../observer.js';
import type { ReadFailure, Sample, SampleConsumer } from '../sample.js';
import type { SinkStatus } from '../sinks/channel.js';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const SINK_STATES = ['up', 'buffering', 'dropping'] as const;

export interface MapperMetricsOptions {
  /** Sink channel status, read at scrape time. */
  readonly sinks?: () => readonly SinkStatus[];
  /** Include Node process metrics (CPU, memory, event-loop lag). Default true. */
  readonly processMetrics?: boolean;
}

/** The metrics of one mapper. Pass it as an observer and as a consumer; serve {@link MapperMetrics.render}. */
export class MapperMetrics implements RuntimeObserver {
  readonly registry = new Registry();
  private sinks: () => readonly SinkStatus[];
  private readonly lastSuccess = new Map<string, Map<string, number>>();
  private readonly samples = new Map<string, number>();
  private readonly states = new Map<string, DeviceState>();
  private registered = false;
  private readonly readDuration: Histogram<'device'>;
  private readonly readErrors: Counter<'device' | 'property' | 'kind'>;
  private readonly writes: Counter<'device' | 'property' | 'result'>;
  private readonly writeDuration: Histogram<'device'>;
  private readonly connects: Counter<'device' | 'result'>;
  private readonly reconnects: Counter<'device'>;
  private readonly dmiDuration: Histogram<'method' | 'code'>;
  private readonly sinkWriteDuration: Histogram<'sink' | 'kind' | 'result'>;

  constructor(opts: MapperMetricsOptions = {}) {
    this.sinks = opts.sinks ?? (() => []);
    const registers = [this.registry];
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.readDuration = new Histogram({
      name: 'mapper_read_duration_seconds',
      help: 'Duration of driver read() calls (one call reads all properties due in a collect tick)',
      labelNames: ['device'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.readErrors = new Counter({ name: 'mapper_read_errors_total', help: 'Failed property reads by error kind', labelNames: ['device', 'property', 'kind'], registers });
    this.writes = new Counter({ name: 'mapper_writes_total', help: 'Property writes (desired values, REST, device methods)', labelNames: ['device', 'property', 'result'], registers });
    this.writeDuration = new Histogram({ name: 'mapper_write_duration_seconds', help: 'Duration of driver write() calls', labelNames: ['device'], buckets: LATENCY_BUCKETS, registers });
    this.connects = new Counter({ name: 'mapper_connects_total', help: 'Driver connect() attempts', labelNames: ['device', 'result'], registers });
    this.reconnects = new Counter({ name: 'mapper_reconnects_total', help: 'Successful reconnections after a lost connection', labelNames: ['device'], registers });
    this.dmiDuration = new Histogram({
      name: 'mapper_dmi_call_duration_seconds',
      help: 'Duration of DMI calls to edgecore by method and gRPC status code',
      labelNames: ['method', 'code'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.sinkWriteDuration = new Histogram({
      name: 'mapper_sink_write_duration_seconds',
      help: 'Duration of sink write attempts (one batch)',
      labelNames: ['sink', 'kind', 'result'],
      buckets: LATENCY_BUCKETS,
      registers,
    });

    const self = this;
    new Gauge({
      name: 'mapper_property_last_success_timestamp_seconds',
      help: 'Time of the last successful read of a property (sample time)',
      labelNames: ['device', 'property'],
      registers,
      collect() {
        this.reset();
        for (const [device, props] of self.lastSuccess) for (const [property, ts] of props) this.set({ device, property }, ts / 1000);
      },
    });
    new Counter({
      name: 'mapper_samples_total',
      help: 'Samples produced (polled or subscribed) per device',
      labelNames: ['device'],
      registers,
      collect() {
        this.reset();
        for (const [device, n] of self.samples) this.inc({ device }, n);
      },
    });
    new Gauge({
      name: 'mapper_device_state',
      help: 'Current device state (1 for the state the device is in)',
      labelNames: ['device', 'state'],
      registers,
      collect() {
        this.reset();
        for (const [device, st] of self.states) for (const state of DEVICE_STATES) this.set({ device, state }, st === state ? 1 : 0);
      },
    });
    new Gauge({
      name: 'mapper_registered',
      help: '1 while registered with edgecore',
      registers,
      collect() {
        this.set(self.registered ? 1 : 0);
      },
    });
    const sinkGauge = (name: string, help: string, value: (s: SinkStatus) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['sink', 'kind'],
        registers,
        collect() {
          this.reset();
          for (const s of self.sinks()) this.set({ sink: s.sink, kind: s.kind }, value(s));
        },
      });
    };
    sinkGauge('mapper_sink_queue_depth', 'Samples in the in-memory queue of a sink', (s) => s.queued);
    sinkGauge('mapper_sink_buffered_records', 'Samples in the disk buffer (store-and-forward) of a sink', (s) => s.bufferedRecords);
    sinkGauge('mapper_sink_buffered_bytes', 'Bytes in the disk buffer of a sink', (s) => s.bufferedBytes);
    new Gauge({
      name: 'mapper_sink_state',
      help: 'Sink state (1 for the current one): up, buffering (failing or behind; samples go to the disk buffer), dropping (buffer cap hit)',
      labelNames: ['sink', 'kind', 'state'],
      registers,
      collect() {
        this.reset();
        for (const s of self.sinks()) for (const state of SINK_STATES) this.set({ sink: s.sink, kind: s.kind, state }, s.state === state ? 1 : 0);
      },
    });
    new Gauge({
      name: 'mapper_sink_delivery_latency_seconds',
      help: 'Sample time to sink acknowledgement over the last 10,000 samples (quantile 0.5 and 0.99)',
      labelNames: ['sink', 'kind', 'quantile'],
      registers,
      collect() {
        this.reset();
        for (const s of self.sinks()) {
          this.set({ sink: s.sink, kind: s.kind, quantile: '0.5' }, s.latencyP50Ms / 1000);
          this.set({ sink: s.sink, kind: s.kind, quantile: '0.99' }, s.latencyP99Ms / 1000);
        }
      },
    });
    const sinkCounter = (name: string, help: string, value: (s: SinkStatus) => number): void => {
      new Counter({
        name,
        help,
        labelNames: ['sink', 'kind'],
        registers,
        collect() {
          this.reset();
          for (const s of self.sinks()) this.inc({ sink: s.sink, kind: s.kind }, value(s));
        },
      });
    };
    sinkCounter('mapper_sink_accepted_total', 'Samples routed to a sink', (s) => s.accepted);
    sinkCounter('mapper_sink_delivered_total', 'Samples acknowledged by a sink', (s) => s.delivered);
    sinkCounter('mapper_sink_write_errors_total', 'Failed sink write attempts', (s) => s.writeErrors);
    new Counter({
      name: 'mapper_sink_dropped_total',
      help: 'Samples a sink dropped: cap (buffer full), age (too old to replay), rejected (refused by the server), overflow (memory-only mode), corrupt',
      labelNames: ['sink', 'kind', 'reason'],
      registers,
      collect() {
        this.reset();
        for (const s of self.sinks()) for (const [reason, n] of Object.entries(s.dropped)) this.inc({ sink: s.sink, kind: s.kind, reason }, n);
      },
    });
  }

  /** Late binding of the data plane. */
  setSinkSource(fn: () => readonly SinkStatus[]): void {
    this.sinks = fn;
  }

  /** Text exposition format. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  // ---- RuntimeObserver ----

  onRead(e: { deviceId: string; properties: readonly string[]; failed: ReadonlyMap<string, MapperError>; durationMs: number }): void {
    this.readDuration.observe({ device: e.deviceId }, e.durationMs / 1000);
    for (const [property, err] of e.failed) this.readErrors.inc({ device: e.deviceId, property, kind: err.kind });
  }

  onWrite(e: { deviceId: string; property: string; durationMs: number; error: MapperError | undefined }): void {
    this.writes.inc({ device: e.deviceId, property: e.property, result: e.error ? 'error' : 'ok' });
    this.writeDuration.observe({ device: e.deviceId }, e.durationMs / 1000);
  }

  onConnect(e: { deviceId: string; durationMs: number; error: MapperError | undefined; reconnect: boolean }): void {
    this.connects.inc({ device: e.deviceId, result: e.error ? 'error' : 'ok' });
    if (!e.error && e.reconnect) this.reconnects.inc({ device: e.deviceId });
  }

  onState(e: { deviceId: string; state: DeviceState }): void {
    this.states.set(e.deviceId, e.state);
  }

  onDmiCall(e: { method: string; durationMs: number; code: number }): void {
    this.dmiDuration.observe({ method: e.method, code: String(e.code) }, e.durationMs / 1000);
  }

  onRegistration(e: { registered: boolean }): void {
    this.registered = e.registered;
  }

  /** Sink write hook (see ChannelHooks). */
  onSinkWrite(sink: string, kind: string, durationMs: number, ok: boolean): void {
    this.sinkWriteDuration.observe({ sink, kind, result: ok ? 'ok' : 'error' }, durationMs / 1000);
  }

  /** A consumer recording per-property freshness and sample counts. */
  readonly consumer: SampleConsumer = {
    name: 'metrics',
    accept: (samples: readonly Sample[]): void => {
      for (const s of samples) {
        let m = this.lastSuccess.get(s.deviceId);
        if (!m) this.lastSuccess.set(s.deviceId, (m = new Map()));
        m.set(s.property, s.timestamp);
        this.samples.set(s.deviceId, (this.samples.get(s.deviceId) ?? 0) + 1);
      }
    },
    readFailed: (_f: ReadFailure): void => {
      // Counted by onRead (with the error kind).
    },
    deviceRemoved: (deviceId: string): void => {
      this.lastSuccess.delete(deviceId);
      this.samples.delete(deviceId);
      this.states.delete(deviceId);
    },
  };
}
