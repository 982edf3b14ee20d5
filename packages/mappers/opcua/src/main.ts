// SPDX-License-Identifier: Apache-2.0
// `mapper-opcua [--config-file config.yaml] [--v N]` runs the mapper.
// `mapper-opcua create-certificate [--pki-dir DIR] [--application-uri URI] [--application-name NAME]`
// creates the client application certificate ahead of time (to hand to the server's
// administrator, or to store in a Secret) and prints where it is.
// Modules load lazily: node-opcua alone takes seconds to load.
if (process.argv[2] === 'create-certificate') {
  const { createCertificateCommand } = await import('./cli.js');
  process.exit(await createCertificateCommand(process.argv.slice(3)));
} else {
  const [{ runMapper }, { default: driver }] = await Promise.all([import('@mapperkit/framework'), import('./driver.js')]);
  await runMapper({ driver });
}
