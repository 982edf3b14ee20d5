// SPDX-License-Identifier: Apache-2.0
// The entry point of mapper-modbus (bin/mapper-modbus.js). A generated project imports the
// default export of ./driver.js; here the default driver instance comes from ./index.js until
// src/driver.ts gets a default export (packages/generator/test/shape.test.ts tracks it).
import { runMapper } from '@mapperkit/framework';
import driver from './index.js';
await runMapper({ driver });
