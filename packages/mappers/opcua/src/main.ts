// SPDX-License-Identifier: Apache-2.0
// `mapper-opcua [--config-file config.yaml] [--v N]` runs the mapper; `doctor` and `schema` are
// the framework's subcommands. `create-certificate` is dispatched by bin/mapper-opcua.js.
import { runMapper } from '@mapperkit/framework';
import driver from './driver.js';
await runMapper({ driver });
