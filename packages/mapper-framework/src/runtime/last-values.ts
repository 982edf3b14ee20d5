// SPDX-License-Identifier: Apache-2.0
// Latest sample (or failure) per device property: what GetDevice and the REST API serve.
//
// One slot per property, updated in place: keeping each new Sample object for a cycle would
// hand every sample (10-15k/s in a large mapper) to V8's old generation, where it becomes
// garbage one cycle later; the heap then grows far beyond what is live. The Sample a reader
// gets is built on demand (reads are rare: REST, GetDevice).
import type { PropertyType } from '../dmi/model.js';
import type { MapperError } from '../errors.js';
import { type ReadFailure, RuntimeSample, type Sample, type SampleConsumer, type SampleSource } from '../sample.js';
import { ValueCell } from './value-cell.js';

/** The last thing known about one property. */
export interface LastValue {
  readonly sample: Sample | undefined;
  readonly error: { readonly error: MapperError; readonly timestamp: number } | undefined;
}

/** One property's latest value, updated in place (see ValueCell). */
class Slot extends ValueCell implements LastValue {
  private source: SampleSource | undefined = undefined;
  private time = 0.5;
  error: { readonly error: MapperError; readonly timestamp: number } | undefined = undefined;

  set(s: Sample): void {
    this.source = s instanceof RuntimeSample ? s.source : sourceOf(s);
    this.storeValue(s.value);
    this.time = s.timestamp;
    this.error = undefined;
  }

  get sample(): Sample | undefined {
    if (!this.source) return undefined;
    return new RuntimeSample(this.source, this.storedValue, this.time);
  }
}

/** The shared part of a sample that did not come from the runtime (consumers fed by hand, tests). */
function sourceOf(s: Sample): SampleSource {
  return {
    deviceId: s.deviceId,
    deviceName: s.deviceName,
    namespace: s.namespace,
    property: s.property,
    type: s.type as PropertyType,
    collectCycle: s.collectCycle,
    reportCycle: s.reportCycle,
    pushMethod: s.pushMethod,
  };
}

export class LastValueCache implements SampleConsumer {
  readonly name = 'last-value-cache';
  private readonly byDevice = new Map<string, Map<string, Slot>>();
  /** The device of the previous sample: samples come in batches of one device. */
  private lastId: string | undefined;
  private lastMap: Map<string, Slot> | undefined;

  private slots(deviceId: string): Map<string, Slot> {
    if (deviceId === this.lastId && this.lastMap) return this.lastMap;
    let m = this.byDevice.get(deviceId);
    if (!m) this.byDevice.set(deviceId, (m = new Map()));
    this.lastId = deviceId;
    this.lastMap = m;
    return m;
  }

  accept(samples: readonly Sample[]): void {
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i]!;
      const m = this.slots(s.deviceId);
      let slot = m.get(s.property);
      if (!slot) m.set(s.property, (slot = new Slot()));
      slot.set(s);
    }
  }

  readFailed(f: ReadFailure): void {
    const m = this.slots(f.deviceId);
    let slot = m.get(f.property);
    if (!slot) m.set(f.property, (slot = new Slot()));
    slot.error = { error: f.error, timestamp: f.timestamp };
  }

  deviceRemoved(deviceId: string): void {
    this.byDevice.delete(deviceId);
    if (this.lastId === deviceId) {
      this.lastId = undefined;
      this.lastMap = undefined;
    }
  }

  get(deviceId: string, property: string): LastValue | undefined {
    return this.byDevice.get(deviceId)?.get(property);
  }

  device(deviceId: string): ReadonlyMap<string, LastValue> {
    return this.byDevice.get(deviceId) ?? new Map();
  }
}
