// SPDX-License-Identifier: Apache-2.0
// Instrumentation hooks of the runtime (metrics, tracing, tests). All optional, all synchronous:
// an observer must return quickly and never throw (a throwing observer is ignored).
import type { DeviceState } from './driver.js';
import type { MapperError } from './errors.js';

/** Events the runtime reports to an observer (e.g. the Prometheus metrics of the REST server). */
export interface RuntimeObserver {
  /** A driver read() call finished: `properties` requested, `failed` of them failed, in `durationMs`. */
  onRead?(event: { deviceId: string; properties: readonly string[]; failed: ReadonlyMap<string, MapperError>; durationMs: number }): void;
  /** A driver write() call finished. */
  onWrite?(event: { deviceId: string; property: string; durationMs: number; error: MapperError | undefined }): void;
  /** A driver connect() attempt finished (`reconnect` = not the first connection of this device instance). */
  onConnect?(event: { deviceId: string; durationMs: number; error: MapperError | undefined; reconnect: boolean }): void;
  /** A device's state changed. */
  onState?(event: { deviceId: string; state: DeviceState; reason: string | undefined }): void;
  /** A call to edgecore (MapperRegister, ReportDeviceStatus, ReportDeviceStates) finished; `code` is the gRPC status (0 = OK). */
  onDmiCall?(event: { method: string; durationMs: number; code: number; error?: string }): void;
  /** Registration with edgecore changed (registered = true after MapperRegister succeeded). */
  onRegistration?(event: { registered: boolean }): void;
}

/** Calls an observer hook, swallowing anything it throws. */
export function notify<K extends keyof RuntimeObserver>(observers: readonly RuntimeObserver[], hook: K, event: Parameters<NonNullable<RuntimeObserver[K]>>[0]): void {
  for (const o of observers) {
    const fn = o[hook] as ((e: typeof event) => void) | undefined;
    if (!fn) continue;
    try {
      fn.call(o, event);
    } catch {
      // Observers must not affect the data path.
    }
  }
}
