// SPDX-License-Identifier: Apache-2.0
// The OPC UA driver: protocol `opcua`, configData as in ./config.ts, one secure channel and
// session per device (./client.ts).
import { defineDriver } from '@mapperkit/framework';
import { connectOpcua } from './client.js';
import { protocolConfig, visitorConfig } from './config.js';

export default defineDriver({
  protocol: 'opcua',
  protocolConfig,
  visitorConfig,
  connect: (ctx, signal) => connectOpcua(ctx, signal),
});
