// SPDX-License-Identifier: Apache-2.0
import { runMapper } from '@mapperkit/framework';
import { modbusDriver } from './index.js';

await runMapper({ driver: modbusDriver });
