// SPDX-License-Identifier: Apache-2.0
// @mapperkit/framework/dmi — the DMI wire layer, for edgecore-side tools (edgecore-dmi, tests):
// generated v1beta1 messages and service definitions, the Any codec, CRD → proto conversion.
export * from '../generated/v1beta1/api.js';
export { Any } from '../generated/google/protobuf/any.js';
export {
  decodeAny,
  decodeCustomizedValue,
  encodeAnyAs,
  encodeAnyLikeEdgecore,
  encodeCustomizedValue,
  type ConfigMap,
  type ConfigValue,
  type WrapperKind,
} from './any-codec.js';
export { shortestFloat32, formatNumber } from './values.js';
export {
  deviceFromProto,
  modelFromProto,
  resourceId,
  parsePropertyType,
  DEFAULT_NAMESPACE,
  DEFAULT_CYCLE_MS,
  type Decoded,
  type DeviceSpec,
  type DeviceModelSpec,
  type DevicePropertySpec,
  type ModelPropertySpec,
  type PropertyType,
} from './model.js';
export {
  deviceToProto,
  deviceModelToProto,
  deviceProtocol,
  deviceModelProtocol,
  deviceModelRef,
  parseCrdYaml,
  CRD_API_VERSION,
  type CrdObject,
  type CrdDocuments,
} from './crd.js';
export { unixTarget, UnixGrpcServer, prepareSocketPath } from './transport.js';
export { TokenBucket } from './limiter.js';
export { parseYamlSafely, parseYamlDocumentSafely, yamlNestingDepth, MAX_YAML_DEPTH, type SafeYaml } from './yaml-guard.js';
