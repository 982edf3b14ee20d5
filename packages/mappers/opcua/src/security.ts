// SPDX-License-Identifier: Apache-2.0
// PKI directory, the client application certificate (created on first start), explicit
// server trust, and the user identity (anonymous, username/password read from a Secret
// file or an environment variable, X.509). Passwords are read at each connect (a rotated
// Secret takes effect on the next reconnect) and never logged.
import { constants, createHash, generateKeyPairSync, privateDecrypt, publicEncrypt, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { type Logger, MapperError } from '@mapperkit/framework';
import { OPCUACertificateManager, type UserIdentityInfo, UserTokenType } from 'node-opcua';
import type { ProtocolConfig } from './config.js';
import { registerSecret } from './opcua-log.js';

/** Where the PKI lives when neither `pkiDir` nor $OPCUA_PKI_DIR says. */
export const DEFAULT_PKI_DIR = 'pki';

export interface SecuritySetup {
  readonly pkiDir: string;
  readonly certificateManager: OPCUACertificateManager;
  readonly certificateFile: string;
  readonly privateKeyFile: string;
  readonly applicationUri: string;
  readonly userIdentity: UserIdentityInfo;
  /** For logs: identity kind and user name (never the password). */
  readonly identityLabel: string;
}

export function pkiDirOf(config: Pick<ProtocolConfig, 'pkiDir'>): string {
  return resolve(config.pkiDir ?? process.env['OPCUA_PKI_DIR'] ?? DEFAULT_PKI_DIR);
}

export function defaultApplicationUri(applicationName: string): string {
  return `urn:${hostname()}:${applicationName}`;
}

/** SHA-1 thumbprint (hex) and DER bytes of a PEM or DER certificate file. */
export function readCertificateFile(file: string, key: string): { der: Buffer; thumbprint: string } {
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch (err) {
    throw new MapperError('InvalidConfig', `${key}: cannot read certificate file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { key, cause: err });
  }
  try {
    const der = Buffer.from(new X509Certificate(raw).raw);
    return { der, thumbprint: createHash('sha1').update(der).digest('hex') };
  } catch (err) {
    throw new MapperError('InvalidConfig', `${key}: ${file} is not a PEM or DER X.509 certificate`, { key, cause: err });
  }
}

function readKeyFile(file: string, key: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new MapperError('InvalidConfig', `${key}: cannot read private key file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { key, cause: err });
  }
}

/**
 * Reads the password: the file's content minus one trailing newline (upstream semantics), or
 * the environment variable. Errors name the key and the file/variable, never the content.
 */
export function readPassword(config: Pick<ProtocolConfig, 'password' | 'passwordFile' | 'passwordEnv'>): string {
  if (config.passwordEnv) {
    const v = process.env[config.passwordEnv];
    if (v === undefined || v === '') throw new MapperError('InvalidConfig', `passwordEnv: environment variable ${config.passwordEnv} is not set or empty`, { key: 'passwordEnv' });
    return v;
  }
  const key = config.passwordFile ? 'passwordFile' : 'password';
  const file = config.passwordFile ?? config.password;
  if (!file) throw new MapperError('InvalidConfig', 'identity username needs passwordFile or passwordEnv', { key: 'passwordFile' });
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new MapperError('InvalidConfig', `${key}: cannot read password file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { key });
  }
  const pw = text.replace(/\r?\n$/, '');
  if (pw === '') throw new MapperError('InvalidConfig', `${key}: password file ${file} is empty`, { key });
  return pw;
}

let pkcs1v15: boolean | undefined;
/**
 * Whether this Node can decrypt RSA PKCS#1 v1.5, which Basic128Rsa15 needs. Node ≥ 20.11.1
 * refuses it (CVE-2023-46809) unless started with --security-revert=CVE-2023-46809.
 */
export function rsaPkcs1v15Available(): boolean {
  if (pkcs1v15 === undefined) {
    try {
      const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
      const enc = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.from('probe'));
      pkcs1v15 = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_PADDING }, enc).toString() === 'probe';
    } catch {
      pkcs1v15 = false;
    }
  }
  return pkcs1v15;
}

/** The `URI:` entry of a certificate's subjectAltName (its OPC UA applicationUri), if any. */
export function certificateApplicationUri(file: string): string | undefined {
  try {
    const san = new X509Certificate(readFileSync(file)).subjectAltName ?? '';
    return /(?:^|,\s*)URI:([^,]+)/.exec(san)?.[1]?.trim();
  } catch {
    return undefined;
  }
}

/**
 * Creates the self-signed application certificate (10 years, SAN URI = applicationUri, DNS =
 * this host) in `file` unless it exists. Returns whether it was created.
 */
export async function createApplicationCertificate(pkiDir: string, applicationName: string, applicationUri: string, log?: Logger): Promise<{ certificateFile: string; privateKeyFile: string; created: boolean }> {
  const cm = new OPCUACertificateManager({ rootFolder: pkiDir, disableFileWatchers: true } as ConstructorParameters<typeof OPCUACertificateManager>[0]);
  await cm.initialize();
  try {
    const certificateFile = join(pkiDir, 'own', 'certs', 'client_certificate.pem');
    const existed = existsSync(certificateFile) && statSync(certificateFile).size > 0;
    await ensureApplicationCertificate(cm, certificateFile, applicationName, applicationUri, log);
    return { certificateFile, privateKeyFile: cm.privateKey, created: !existed };
  } finally {
    await cm.dispose().catch(() => undefined);
  }
}

/** One certificate creation at a time per file, within this process. */
const creating = new Map<string, Promise<void>>();

async function ensureApplicationCertificate(cm: OPCUACertificateManager, file: string, applicationName: string, applicationUri: string, log: Logger | undefined): Promise<void> {
  const pending = creating.get(file);
  if (pending) return pending;
  if (existsSync(file) && statSync(file).size > 0) return;
  const job = (async () => {
    const host = hostname();
    await cm.createSelfSignedCertificate({
      applicationUri,
      dns: [host, 'localhost'],
      subject: `/CN=${`${applicationName}@${host}`.slice(0, 63)}/O=Mapperkit`,
      startDate: new Date(),
      validity: 3650,
      outputFile: file,
    });
    const { thumbprint } = readCertificateFile(file, 'certificate');
    log?.warn(
      { certificate: file, thumbprint, applicationUri },
      'created the OPC UA client application certificate; servers with security enabled must trust it (copy it into the server trust list)',
    );
  })();
  creating.set(file, job);
  try {
    await job;
  } finally {
    creating.delete(file);
  }
}

/**
 * Prepares the PKI and identity for one connection. The certificate manager is fresh per
 * connection (file watchers off), so certificates an operator moves into `trusted/` are seen
 * at the next (re)connect.
 */
export async function prepareSecurity(config: ProtocolConfig, log: Logger): Promise<SecuritySetup> {
  if (config.securityPolicy === 'Basic128Rsa15' && !rsaPkcs1v15Available())
    throw new MapperError(
      'InvalidConfig',
      `securityPolicy Basic128Rsa15 needs RSA PKCS#1 v1.5 decryption, which Node ${process.version} refuses (CVE-2023-46809); use Basic256Sha256 or newer, or start node with --security-revert=CVE-2023-46809`,
      { key: 'securityPolicy' },
    );
  const pkiDir = pkiDirOf(config);
  let applicationUri = config.applicationUri ?? defaultApplicationUri(config.applicationName);
  let cm: OPCUACertificateManager;
  try {
    cm = new OPCUACertificateManager({
      rootFolder: pkiDir,
      automaticallyAcceptUnknownCertificate: config.acceptUnknownServerCertificate,
      disableFileWatchers: true,
    } as ConstructorParameters<typeof OPCUACertificateManager>[0]);
    await cm.initialize();
  } catch (err) {
    throw new MapperError('InvalidConfig', `pkiDir: cannot initialise the PKI directory ${pkiDir}: ${(err as Error).message}`, { key: 'pkiDir', cause: err });
  }
  try {
    let certificateFile: string;
    let privateKeyFile: string;
    if (config.certificate && config.privateKey) {
      certificateFile = resolve(config.certificate);
      privateKeyFile = resolve(config.privateKey);
      readCertificateFile(certificateFile, 'certificate');
      readKeyFile(privateKeyFile, 'privateKey');
    } else {
      certificateFile = join(pkiDir, 'own', 'certs', 'client_certificate.pem');
      privateKeyFile = cm.privateKey;
      await ensureApplicationCertificate(cm, certificateFile, config.applicationName, applicationUri, log);
    }
    // The applicationUri must be the certificate's SAN URI (servers check it). Without an explicit
    // applicationUri, take the certificate's: the default contains the host name, which changes
    // with every pod while a persisted certificate does not.
    const certUri = certificateApplicationUri(certificateFile);
    if (certUri && !config.applicationUri) applicationUri = certUri;
    else if (certUri && certUri !== applicationUri)
      log.warn({ applicationUri, certificateUri: certUri, certificate: certificateFile }, 'applicationUri differs from the URI in the client certificate; servers may refuse the session (BadCertificateUriInvalid)');

    if (config.serverCertificate) {
      const { der, thumbprint } = readCertificateFile(resolve(config.serverCertificate), 'serverCertificate');
      await cm.trustCertificate(der);
      log.debug({ serverCertificate: config.serverCertificate, thumbprint }, 'server certificate trusted explicitly (serverCertificate)');
    }
    if (config.acceptUnknownServerCertificate && config.securityMode !== 'None')
      log.warn('acceptUnknownServerCertificate is on: any server certificate is trusted on first sight and stored in trusted/ (do not use in production)');

    let userIdentity: UserIdentityInfo;
    let identityLabel: string;
    switch (config.identity) {
      case 'anonymous':
        userIdentity = { type: UserTokenType.Anonymous };
        identityLabel = 'anonymous';
        break;
      case 'username': {
        const password = readPassword(config);
        registerSecret(password);
        userIdentity = { type: UserTokenType.UserName, userName: config.userName!, password };
        identityLabel = `username ${config.userName!}`;
        if (config.securityMode === 'None')
          log.warn({ userName: config.userName }, 'username identity over securityMode None: the server is not authenticated; prefer SignAndEncrypt');
        break;
      }
      case 'x509': {
        const certFile = config.userCertificate ? resolve(config.userCertificate) : certificateFile;
        const keyFile = config.userPrivateKey ? resolve(config.userPrivateKey) : privateKeyFile;
        const { der } = readCertificateFile(certFile, config.userCertificate ? 'userCertificate' : 'certificate');
        userIdentity = { type: UserTokenType.Certificate, certificateData: der, privateKey: readKeyFile(keyFile, config.userPrivateKey ? 'userPrivateKey' : 'privateKey') };
        identityLabel = `x509 ${certFile}`;
        break;
      }
    }
    return { pkiDir, certificateManager: cm, certificateFile, privateKeyFile, applicationUri, userIdentity, identityLabel };
  } catch (err) {
    await cm.dispose().catch(() => undefined);
    throw err;
  }
}
