// SPDX-License-Identifier: Apache-2.0
// @mapperkit/mapper-opcua — the OPC UA driver, for embedding in a custom mapper
// (`runMapper({ driver: opcuaDriver })`) or for tests.
export { default as opcuaDriver } from './driver.js';
export { protocolConfig, visitorConfig, type ProtocolConfig, type VisitorConfig, SECURITY_POLICIES, BUILTIN_TYPES } from './config.js';
export { parseNodeId, type NodeRef } from './node-id.js';
export { OpcuaDeviceClient } from './client.js';
export { pkiDirOf, DEFAULT_PKI_DIR } from './security.js';
