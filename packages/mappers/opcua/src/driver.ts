// SPDX-License-Identifier: Apache-2.0
// The OPC UA driver: protocol `opcua`, configData as in ./config.ts, one secure channel and
// session per device (./client.ts).
import { defineDriver, MapperError } from '@mapperkit/framework';
import { connectOpcua } from './client.js';
import { protocolConfig, visitorConfig } from './config.js';
import { routeNodeOpcuaLogs } from './opcua-log.js';

export default defineDriver({
  protocol: 'opcua',
  protocolConfig,
  visitorConfig,
  async init({ log }) {
    // node-opcua logs with console.log; send its warnings into the mapper's JSON log instead.
    routeNodeOpcuaLogs(log.child({ component: 'node-opcua' }));
  },
  checkProperty(r) {
    if (r.type === 'stream') throw new MapperError('InvalidConfig', `property ${r.name}: STREAM properties are not supported by the OPC UA driver`, { key: 'type' });
    const v = r.visitor;
    if (v.deadbandType !== 'None' && r.type !== 'int' && r.type !== 'float' && r.type !== 'double')
      throw new MapperError('InvalidConfig', `property ${r.name}: a ${v.deadbandType} deadband needs a numeric property (INT, FLOAT, DOUBLE), not ${r.type.toUpperCase()}`, {
        key: 'visitors.configData.deadbandType',
      });
  },
  connect: (ctx, signal) => connectOpcua(ctx, signal),
});
