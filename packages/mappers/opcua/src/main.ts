// SPDX-License-Identifier: Apache-2.0
import { runMapper } from '@mapperkit/framework';
import driver from './driver.js';

await runMapper({ driver });
