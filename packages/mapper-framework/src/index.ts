// SPDX-License-Identifier: Apache-2.0
// @mapperkit/framework — public API. Everything not exported here is internal.

/* ── Running a mapper ── */
export { runMapper, createMapper, type RunMapperOptions, type MapperHandle } from './run-mapper.js';
export type { DeviceView, StatsSnapshot } from './runtime/mapper.js';
export type { LastValue } from './runtime/last-values.js';
export { loadMapperConfig, parseMapperConfig, mapperConfigSchema, type MapperConfig, type LoadedConfig } from './config.js';
export { createLogger, levelForVerbosity } from './logger.js';

/* ── Tooling: `mapper-<protocol> doctor` / `schema` ── */
export { runDoctor, formatDoctorReport, type DoctorOptions, type DoctorReport, type DoctorProblem } from './tooling/doctor.js';
export { buildSchemas, writeSchemas } from './tooling/schemas.js';

/* ── Writing a driver ── */
export {
  defineDriver,
  isSubscribable,
  isDiscoverable,
  DEVICE_STATES,
  type DriverDefinition,
  type DeviceClient,
  type ConnectContext,
  type DriverContext,
  type DeviceInfo,
  type PropertyRequest,
  type ReadResult,
  type Reading,
  type DeviceState,
  type Subscribable,
  type Discoverable,
  type DiscoveredDevice,
  type Logger,
} from './driver.js';
export { parseValue, formatValue, checkRange, type PropertyValue } from './values.js';
export type { PropertyType, AccessMode, DeviceSpec, DeviceModelSpec, DevicePropertySpec, ModelPropertySpec, DeviceMethodSpec } from './dmi/model.js';
export type { ConfigValue, ConfigMap } from './dmi/any-codec.js';
export { toJsonSchema, boolish, type StandardSchemaV1, type InferOutput } from './schema.js';
export { z } from 'zod';

/* ── Consuming samples (sinks) and instrumentation ── */
export type { Sample, SampleConsumer, ReadFailure } from './sample.js';
export type { RuntimeObserver } from './observer.js';
export type { SinkStatus, SinkState } from './sinks/channel.js';

/* ── Errors ── */
export { MapperError, isMapperError, toMapperError, ERROR_CODES, type MapperErrorKind, type MapperErrorOptions } from './errors.js';
