// SPDX-License-Identifier: Apache-2.0
// The entry point of mapper-modbus (bin/mapper-modbus.js), as in a generated project.
import { runMapper } from '@mapperkit/framework';
import driver from './driver.js';
await runMapper({ driver });
