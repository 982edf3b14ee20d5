// SPDX-License-Identifier: Apache-2.0
// Data-plane types: the record every sink receives (also the line format of the disk buffer),
// the connection identity of a sink ("channel"), and the writer contract.

/** MQTT-specific part of a record: where and how to publish it. */
export interface MqttRoute {
  readonly topic: string;
  readonly qos: 0 | 1 | 2;
  readonly retained: boolean;
}

/** InfluxDB2-specific part of a record: the point layout from `influxdb2DataConfig`. */
export interface InfluxRoute {
  readonly measurement: string;
  readonly tags: Readonly<Record<string, string>>;
  readonly fieldKey: string;
}

/**
 * One sample on its way to one sink. Self-contained: a buffered record can be replayed after a
 * restart, even if the device is gone (disk line format: `record-line.ts`).
 */
export interface SinkRecord {
  /** Namespace of the device. */
  readonly ns: string;
  /** Device name. */
  readonly dev: string;
  /** Property name. */
  readonly prop: string;
  /** Model type, lower-case (`int`, `float`…). */
  readonly type: string;
  /** Value as text (upstream ConvertToString). */
  readonly val: string;
  /** Sample time, ms since epoch. */
  readonly ts: number;
  /** Sink-specific routing (MQTT topic/qos, InfluxDB point layout). */
  readonly route?: MqttRoute | InfluxRoute;
  /** The record's DataModel JSON when already encoded (read back from the disk buffer): not encoded again. */
  readonly json?: string;
}

/** The connection a sink writes through; records with equal specs share one channel (one connection, one queue, one buffer). */
export type ChannelSpec =
  | { readonly kind: 'http'; readonly url: string; readonly timeoutMs: number }
  | { readonly kind: 'mqtt'; readonly address: string }
  | { readonly kind: 'otel'; readonly endpoint: string }
  | { readonly kind: 'redis'; readonly addr: string; readonly db: number }
  | { readonly kind: 'tdengine'; readonly addr: string; readonly dbname: string }
  | { readonly kind: 'mysql'; readonly addr: string; readonly database: string; readonly userName: string }
  | { readonly kind: 'influxdb2'; readonly url: string; readonly org: string; readonly bucket: string };

export type SinkKind = ChannelSpec['kind'];
export const SINK_KINDS: readonly SinkKind[] = ['http', 'mqtt', 'otel', 'redis', 'tdengine', 'mysql', 'influxdb2'];

/**
 * Thrown by a writer. `delivered` records at the head of the batch were stored (they are
 * acknowledged); `permanent` means the server refused the record at index `delivered` and
 * retrying it cannot help (bad value, field type conflict): that record is isolated and dropped.
 * Anything else (connection refused, timeout, 5xx) is retried, buffering meanwhile.
 */
export class SinkError extends Error {
  override name = 'SinkError';
  readonly delivered: number;
  readonly permanent: boolean;

  constructor(message: string, options: { delivered?: number; permanent?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.delivered = options.delivered ?? 0;
    this.permanent = options.permanent ?? false;
  }
}

/** How a writer likes to be driven when a backlog is drained (optional; defaults: one write at a time, `data_plane.batch_size`). */
export interface WriterHints {
  /**
   * Writes that may be in flight at once while a disk backlog is replayed. A writer that
   * allows more than one must send them in call order over one ordered connection and must
   * tolerate a batch being written again after a later one (at-least-once, e.g. Redis ZADD).
   */
  readonly pipeline?: number;
  /** Records per write while a backlog (disk buffer, or a memory queue longer than `batch_size`) is drained. */
  readonly bulkBatchSize?: number;
}

/**
 * Hints per sink kind, known without loading the sink's module. Redis: a batch is one pipeline
 * of one ZADD per key, so bigger batches cost Redis and the client less per record, and a
 * second pipeline in flight overlaps encoding with Redis' work and its fsync.
 */
export const WRITER_HINTS: Readonly<Partial<Record<SinkKind, WriterHints>>> = {
  redis: { pipeline: 2, bulkBatchSize: 5000 },
};

/** Writes batches to one sink endpoint. One writer per channel; calls are concurrent only up to {@link WriterHints.pipeline}. */
export interface SinkWriter extends WriterHints {
  /** Stores `records` in order, or throws {@link SinkError} (any other error counts as retryable, nothing delivered). */
  write(records: readonly SinkRecord[], signal: AbortSignal): Promise<void>;
  /** Resolves once the first connection is up (optional): the channel waits for it, bounded, before its first write. */
  ready?(signal: AbortSignal): Promise<void>;
  /** Releases connections. Idempotent. */
  close(): Promise<void>;
}

/** What a writer factory receives besides its spec. */
export interface WriterContext {
  /** Credential lookup (`PASSWORD`, `TOKEN`, `USERNAME`): file or environment; never logged. */
  credential(name: CredentialName): string | undefined;
  /** Plain-text settings from config.yaml `data_plane`. */
  readonly options: WriterOptions;
  /** Logger bound to the channel. */
  readonly log: import('pino').Logger;
}

/**
 * Upstream's names (Redis/MySQL `PASSWORD`, InfluxDB `TOKEN`, TDengine `USERNAME`/`PASSWORD`), and the
 * MQTT broker login under names of its own (upstream's MQTT push has none), so that a Redis password
 * is never sent to a broker.
 */
export type CredentialName = 'PASSWORD' | 'TOKEN' | 'USERNAME' | 'MQTT_USERNAME' | 'MQTT_PASSWORD';

export interface WriterOptions {
  readonly httpBody: 'form' | 'json';
  readonly mqttPayload: 'text' | 'json';
  readonly mqttClientId: string;
  readonly redisKeyTemplate: string;
  readonly influxFieldType: 'typed' | 'string';
  /** Name of the mapper (OTel `service.name`). */
  readonly mapperName: string;
}
