// SPDX-License-Identifier: Apache-2.0
// `mapper-opcua [--config-file config.yaml] [--v N]` runs the mapper.
// `mapper-opcua create-certificate [--pki-dir DIR] [--application-uri URI] [--application-name NAME]`
// creates the client application certificate ahead of time (to hand to the server's
// administrator, or to store in a Secret) and prints where it is.
import { runMapper } from '@mapperkit/framework';
import { createCertificateCommand } from './cli.js';
import driver from './driver.js';

if (process.argv[2] === 'create-certificate') process.exit(await createCertificateCommand(process.argv.slice(3)));
else await runMapper({ driver });
