// SPDX-License-Identifier: Apache-2.0
// Latest sample (or failure) per device property: what GetDevice and the REST API serve.
import type { MapperError } from '../errors.js';
import type { ReadFailure, Sample, SampleConsumer } from '../sample.js';

/** The last thing known about one property. */
export interface LastValue {
  readonly sample: Sample | undefined;
  readonly error: { readonly error: MapperError; readonly timestamp: number } | undefined;
}

export class LastValueCache implements SampleConsumer {
  readonly name = 'last-value-cache';
  private readonly byDevice = new Map<string, Map<string, LastValue>>();

  accept(samples: readonly Sample[]): void {
    for (const s of samples) {
      let m = this.byDevice.get(s.deviceId);
      if (!m) this.byDevice.set(s.deviceId, (m = new Map()));
      m.set(s.property, { sample: s, error: undefined });
    }
  }

  readFailed(f: ReadFailure): void {
    let m = this.byDevice.get(f.deviceId);
    if (!m) this.byDevice.set(f.deviceId, (m = new Map()));
    const prev = m.get(f.property);
    m.set(f.property, { sample: prev?.sample, error: { error: f.error, timestamp: f.timestamp } });
  }

  deviceRemoved(deviceId: string): void {
    this.byDevice.delete(deviceId);
  }

  get(deviceId: string, property: string): LastValue | undefined {
    return this.byDevice.get(deviceId)?.get(property);
  }

  device(deviceId: string): ReadonlyMap<string, LastValue> {
    return this.byDevice.get(deviceId) ?? new Map();
  }
}
