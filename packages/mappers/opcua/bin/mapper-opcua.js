#!/usr/bin/env node
// `mapper-opcua [--config-file config.yaml] [--v N]` runs the mapper (dist/main.js, the generated-project entry point).
// `mapper-opcua create-certificate [--pki-dir DIR] [--application-uri URI] [--application-name NAME]` creates the client
// application certificate ahead of time (to hand to the server's administrator, or to store in a Secret) and prints
// where it is; it loads neither the framework nor the mapper.
if (process.argv[2] === 'create-certificate') {
  const { createCertificateCommand } = await import('../dist/cli.js');
  process.exit(await createCertificateCommand(process.argv.slice(3)));
} else {
  await import('../dist/main.js');
}
