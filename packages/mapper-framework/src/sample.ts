// SPDX-License-Identifier: Apache-2.0
// Samples: what one read produces, fanned out to every consumer (twin reporter, sinks,
// last-value cache). Consumers never read the device themselves.
import type { PropertyType } from './dmi/model.js';
import type { MapperError } from './errors.js';
import type { PushMethod } from './generated/v1beta1/api.js';
import { formatValue, type PropertyValue } from './values.js';

/** One value of one property, read once and shared by every consumer. */
export interface Sample {
  /** `namespace/name` of the device. */
  readonly deviceId: string;
  readonly deviceName: string;
  readonly namespace: string;
  readonly property: string;
  /** Model type of the property. */
  readonly type: PropertyType;
  readonly value: PropertyValue;
  /** The value as text, formatted as upstream mappers do (see `formatValue`). */
  readonly text: string;
  /** Source or read time, ms since epoch. */
  readonly timestamp: number;
  /** The property's `collectCycle` in ms (how often it is read). */
  readonly collectCycle: number;
  /** The property's `reportCycle` in ms (push cadence for sinks that batch by cycle). */
  readonly reportCycle: number;
  /** The property's push/database configuration, when the Device declares one. */
  readonly pushMethod: PushMethod | undefined;
}

/**
 * What every sample of one property shares: built once per device session, referenced (not
 * copied) by each sample. Internal to the runtime.
 */
export interface SampleSource {
  readonly deviceId: string;
  readonly deviceName: string;
  readonly namespace: string;
  readonly property: string;
  readonly type: PropertyType;
  readonly collectCycle: number;
  readonly reportCycle: number;
  readonly pushMethod: PushMethod | undefined;
}

/**
 * The runtime's Sample: three fields per value (its property's shared {@link SampleSource},
 * the value, the time) instead of eleven, and the text formatted only when a consumer asks for
 * it (most samples are never turned into text: twin reports are rate-limited, sinks are
 * optional). At 10-15k samples/s this is most of what the data path allocates. Serialises
 * (JSON) exactly like a plain Sample object.
 */
export class RuntimeSample implements Sample {
  readonly source: SampleSource;
  readonly value: PropertyValue;
  readonly timestamp: number;
  private text_: string | undefined;

  constructor(source: SampleSource, value: PropertyValue, timestamp: number) {
    this.source = source;
    this.value = value;
    // The field first holds a non-number so that V8 keeps it as a plain reference, not as a
    // per-object double box: the samples of one read then share one heap number, and a consumer
    // that stores the timestamp (a Map of last-seen times) stores that number instead of a new
    // one per sample.
    this.timestamp = null as unknown as number;
    this.timestamp = timestamp;
    this.text_ = undefined;
  }

  get deviceId(): string {
    return this.source.deviceId;
  }
  get deviceName(): string {
    return this.source.deviceName;
  }
  get namespace(): string {
    return this.source.namespace;
  }
  get property(): string {
    return this.source.property;
  }
  get type(): PropertyType {
    return this.source.type;
  }
  get collectCycle(): number {
    return this.source.collectCycle;
  }
  get reportCycle(): number {
    return this.source.reportCycle;
  }
  get pushMethod(): PushMethod | undefined {
    return this.source.pushMethod;
  }
  get text(): string {
    return (this.text_ ??= formatValue(this.value));
  }

  toJSON(): Sample {
    const s = this.source;
    return {
      deviceId: s.deviceId,
      deviceName: s.deviceName,
      namespace: s.namespace,
      property: s.property,
      type: s.type,
      value: this.value,
      text: this.text,
      timestamp: this.timestamp,
      collectCycle: s.collectCycle,
      reportCycle: s.reportCycle,
      pushMethod: s.pushMethod,
    };
  }
}

/** A read that failed, for consumers that track data quality. */
export interface ReadFailure {
  readonly deviceId: string;
  readonly property: string;
  readonly error: MapperError;
  readonly timestamp: number;
}

/**
 * Receives every sample the runtime produces. `accept` is called synchronously on the
 * scheduler's path: queue the work and return; never block or await. A consumer that throws
 * is logged and counted, and never affects other consumers or the device.
 */
export interface SampleConsumer {
  /** Name used in logs and metrics. */
  readonly name: string;
  /** New samples, in read order. */
  accept(samples: readonly Sample[]): void;
  /** A read failed (optional). */
  readFailed?(failure: ReadFailure): void;
  /** A device was removed; drop its state (optional). */
  deviceRemoved?(deviceId: string): void;
  /** Flush and release resources at shutdown (optional). */
  close?(): Promise<void>;
}
