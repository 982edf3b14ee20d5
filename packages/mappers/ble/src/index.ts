// SPDX-License-Identifier: Apache-2.0
// @mapperkit/mapper-ble — public API.
export { default as bleDriver, createBleDriver, type BleDriver, type BleDriverOptions } from './driver.js';
export { protocolConfigSchema, visitorConfigSchema, type BleProtocol, type BleVisitor, type VisitorMode } from './config.js';
export {
  upstreamRaw,
  upstreamConvert,
  applyOperations,
  invertOperations,
  formatGoFloat,
  decodeTyped,
  encodeTyped,
  parseOperationsText,
  parseByteString,
  DATA_FORMATS,
  OPERATION_TYPES,
  type DataFormat,
  type ByteOrder,
  type Operation,
  type OperationType,
  type UpstreamConverter,
} from './converter.js';
export { decodeValue, encodeValue } from './values.js';
export { canonicalUuid, canonicalMac } from './uuid.js';
export type { NobleBindings, NobleAdvertisement } from './noble.js';
