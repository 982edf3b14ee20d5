import { runMapper } from '@mapperkit/framework';
import driver from './driver.js';
await runMapper({ driver });
