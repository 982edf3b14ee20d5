// SPDX-License-Identifier: Apache-2.0
// `mapper-opcua create-certificate`: the client application certificate, created the same way
// the driver creates it on first start, but before any device connects.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const USAGE = 'usage: mapper-opcua create-certificate [--pki-dir DIR] [--application-uri URI] [--application-name NAME]';

/** Runs the subcommand; returns the process exit code. */
export async function createCertificateCommand(argv: readonly string[]): Promise<number> {
  let values: { 'pki-dir'?: string; 'application-uri'?: string; 'application-name'?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { 'pki-dir': { type: 'string' }, 'application-uri': { type: 'string' }, 'application-name': { type: 'string' }, help: { type: 'boolean' } },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { certificateApplicationUri, createApplicationCertificate, defaultApplicationUri, pkiDirOf, readCertificateFile } = await import('./security.js');
  const pkiDir = pkiDirOf({ pkiDir: values['pki-dir'] });
  const name = values['application-name'] ?? 'mapperkit-opcua';
  const uri = values['application-uri'] ?? defaultApplicationUri(name);
  const r = await createApplicationCertificate(pkiDir, name, uri);
  const { thumbprint } = readCertificateFile(r.certificateFile, 'certificate');
  const pem = readFileSync(r.certificateFile, 'utf8');
  process.stdout.write(
    `${JSON.stringify({ created: r.created, certificate: r.certificateFile, privateKey: r.privateKeyFile, applicationUri: certificateApplicationUri(r.certificateFile) ?? uri, thumbprint }, null, 2)}\n` +
      (r.created ? '' : 'the certificate already existed and was left as is\n') +
      pem,
  );
  return 0;
}
