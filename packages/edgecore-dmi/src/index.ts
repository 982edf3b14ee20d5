// SPDX-License-Identifier: Apache-2.0
// @mapperkit/edgecore-dmi — the edgecore side of DMI as a small real server (programmatic API).
export {
  startEdgecoreDmi,
  EdgecoreDmi,
  defaultDbPath,
  DEFAULT_SOCKET,
  DEFAULT_HTTP,
  DEVICE_STATES,
  type EdgecoreDmiOptions,
  type ServerEvent,
  type ServerStats,
  type LimiterStats,
  type DeviceView,
  type TwinView,
  type ModelView,
  type MapperView,
  type ApplyResult,
  type RuntimeProblem,
} from './server.js';
export type { Problem, Origin, Kind, Snapshot, DeviceEntry, ModelEntry } from './inventory.js';
export type { CallRecord, ChannelView, DmiMethod } from './dispatcher.js';
export type { StoredMapper, StoredTwin, StoredState, HistoryPoint } from './store.js';
export { ApiClient, ApiError } from './client.js';
