// SPDX-License-Identifier: Apache-2.0
// Secured sessions against a server that trusts no client by default: the client certificate
// created on first start, explicit server trust, Basic256Sha256 SignAndEncrypt with username
// and with an X.509 user, the other policies, wrong password (unhealthy, other devices fine),
// and passwords never reaching the logs.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger, isMapperError } from '@mapperkit/framework';
import { connect, crdYaml, type MapperRig, PASSWORD, request, signal, startMapper, TestServer, USER } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'opcua-sec-'));
const pki = join(dir, 'pki');
const passwordFile = join(dir, 'password');
const wrongPasswordFile = join(dir, 'wrong-password');
writeFileSync(passwordFile, `${PASSWORD}\n`);
writeFileSync(wrongPasswordFile, 'not-the-password\n');
const CLIENT_CERT = join(pki, 'own', 'certs', 'client_certificate.pem');
let server: TestServer;

before(async () => {
  server = await TestServer.start({ acceptUnknownClients: false });
});

after(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const secured = (extra: Record<string, unknown> = {}) => ({
  url: server.endpointUrl,
  pkiDir: pki,
  securityPolicy: 'Basic256Sha256',
  securityMode: 'SignAndEncrypt',
  ...extra,
});

async function connectFails(raw: Record<string, unknown>, kind: string, pattern: RegExp): Promise<void> {
  await assert.rejects(connect(raw), (e: unknown) => {
    assert.ok(isMapperError(e), String(e));
    assert.equal(e.kind, kind, e.message);
    assert.match(e.message, pattern);
    return true;
  });
}

describe('PKI and trust', () => {
  it('creates the client certificate in pkiDir on first start and refuses an untrusted server certificate', async () => {
    assert.equal(existsSync(CLIENT_CERT), false);
    await connectFails(secured({ userName: USER, passwordFile }), 'InvalidConfig', /the server certificate is not trusted .*stored in .*rejected/);
    assert.ok(existsSync(CLIENT_CERT), 'client certificate created in <pkiDir>/own/certs');
    assert.ok(existsSync(join(pki, 'own', 'private', 'private_key.pem')), 'private key created in <pkiDir>/own/private');
    assert.equal(readdirSync(join(pki, 'rejected')).length, 1, 'the server certificate was put in rejected/ for an operator to review');
  });

  it('with the server certificate trusted, a server that does not trust the client refuses the channel', async () => {
    await connectFails(secured({ userName: USER, passwordFile, serverCertificate: server.serverCertificateFile }), 'InvalidConfig', /BadSecurityChecksFailed.*does the server trust the client certificate/);
  });

  it('an unusable pkiDir is a config error naming the key', async () => {
    await connectFails({ url: server.endpointUrl, pkiDir: join(passwordFile, 'pki') }, 'InvalidConfig', /^pkiDir: cannot initialise the PKI directory .*ENOTDIR/);
  });

  it('acceptUnknownServerCertificate trusts the server on first sight and keeps it in trusted/', async () => {
    const other = join(dir, 'pki-tofu');
    await connectFails(secured({ pkiDir: other, acceptUnknownServerCertificate: true }), 'InvalidConfig', /BadSecurityChecksFailed/); // the server does not know this client yet
    assert.equal(readdirSync(join(other, 'trusted', 'certs')).length, 1, 'server certificate accepted and stored');
    assert.equal(readdirSync(join(other, 'rejected')).length, 0);
  });
});

describe('secured sessions (server trusts the client)', () => {
  before(async () => {
    await server.trustClient(CLIENT_CERT);
  });

  it('Basic256Sha256 SignAndEncrypt with username/password from a file: reads and writes', async () => {
    const c = await connect(secured({ userName: USER, passwordFile, serverCertificate: server.serverCertificateFile }));
    try {
      const req = await request('float', 'float', { nodeID: 'ns=2;s=Float' });
      await c.write(req, 33.5, signal());
      const [r] = await c.read([req], signal());
      assert.ok(r?.ok && r.value === 33.5);
      assert.equal(await c.state(signal()), 'ok');
    } finally {
      await c.close();
    }
    const a = (await server.activations()).at(-1)!;
    assert.deepEqual({ securityMode: a.securityMode, securityPolicy: a.securityPolicy, identity: a.identity }, {
      securityMode: 'SignAndEncrypt',
      securityPolicy: 'Basic256Sha256',
      identity: `username:${USER}`,
    });
  });

  it('Basic256Sha256 SignAndEncrypt with an X.509 user certificate', async () => {
    await connectFails(secured({ identity: 'x509', serverCertificate: server.serverCertificateFile }), 'InvalidConfig', /rejected the user identity \(x509 .*\): BadIdentityTokenRejected/);
    await server.trustUser(CLIENT_CERT);
    const c = await connect(secured({ identity: 'x509', serverCertificate: server.serverCertificateFile }));
    try {
      const [r] = await c.read([await request('s', 'string', { nodeID: 'ns=2;s=String' })], signal());
      assert.ok(r?.ok);
    } finally {
      await c.close();
    }
    assert.deepEqual((await server.activations()).at(-1)!.identity, 'x509');
  });

  for (const [policy, mode] of [
    ['Aes128_Sha256_RsaOaep', 'SignAndEncrypt'],
    ['Aes256_Sha256_RsaPss', 'Sign'],
    ['Basic256Sha256', 'Sign'],
  ] as const) {
    it(`${policy} ${mode}`, async () => {
      const c = await connect({ url: server.endpointUrl, pkiDir: pki, securityPolicy: policy, securityMode: mode, serverCertificate: server.serverCertificateFile });
      try {
        const [r] = await c.read([await request('d', 'double', { nodeID: 'ns=2;s=Double' })], signal());
        assert.ok(r?.ok);
      } finally {
        await c.close();
      }
      const a = (await server.activations()).at(-1)!;
      assert.equal(a.securityPolicy, policy);
      assert.equal(a.securityMode, mode);
    });
  }

  it('Basic128Rsa15 is refused up front on this Node (RSA PKCS#1 v1.5, CVE-2023-46809)', async () => {
    await connectFails({ url: server.endpointUrl, pkiDir: pki, securityPolicy: 'Basic128Rsa15', securityMode: 'Sign' }, 'InvalidConfig', /CVE-2023-46809/);
  });

  it('the password can come from an environment variable; a missing one is a config error', async () => {
    process.env['OPCUA_TEST_PASSWORD'] = PASSWORD;
    const c = await connect(secured({ userName: USER, passwordEnv: 'OPCUA_TEST_PASSWORD', serverCertificate: server.serverCertificateFile }));
    await c.close();
    await connectFails(secured({ userName: USER, passwordEnv: 'OPCUA_TEST_NO_SUCH_VAR' }), 'InvalidConfig', /passwordEnv: environment variable OPCUA_TEST_NO_SUCH_VAR is not set/);
    await connectFails(secured({ userName: USER, passwordFile: join(dir, 'absent') }), 'InvalidConfig', /passwordFile: cannot read password file .*absent: ENOENT/);
  });

  it('a wrong password is a clear InvalidConfig error; the password never reaches the logs', async () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'trace', destination: { write: (l: string) => void lines.push(l) } });
    await assert.rejects(connect(secured({ userName: USER, passwordFile: wrongPasswordFile, serverCertificate: server.serverCertificateFile }), log), (e: unknown) => {
      assert.ok(isMapperError(e) && e.kind === 'InvalidConfig');
      assert.match(e.message, new RegExp(`the server rejected the user identity \\(username ${USER}\\): BadUserAccessDenied`));
      assert.ok(!e.message.includes('not-the-password'));
      return true;
    });
    const c = await connect(secured({ userName: USER, passwordFile, serverCertificate: server.serverCertificateFile }), log);
    await c.close();
    assert.ok(lines.length > 0, 'the driver logged something at trace level');
    const all = lines.join('\n');
    assert.ok(!all.includes(PASSWORD) && !all.includes('not-the-password'), 'no password in the logs');
  });
});

describe('wrong password through the mapper', () => {
  let rig: MapperRig;
  after(() => rig?.stop());

  it('the device with the wrong password is unhealthy with a clear reason; the other device reports twins', async () => {
    await server.trustClient(CLIENT_CERT);
    const props = [{ name: 'double', type: 'DOUBLE', visitor: { nodeID: 'ns=2;s=Double' } }];
    const base = { url: server.endpointUrl, pkiDir: pki, securityPolicy: 'Basic256Sha256', securityMode: 'SignAndEncrypt', userName: USER, serverCertificate: server.serverCertificateFile };
    rig = await startMapper(
      crdYaml('secure-model', props, [
        { name: 'good', protocol: { ...base, passwordFile } },
        { name: 'bad', protocol: { ...base, passwordFile: wrongPasswordFile } },
      ]),
    );
    await rig.ec.waitFor(() => rig.ec.twinsOf('default/good').size === 1 && rig.ec.stateOf('default/bad') === 'unhealthy', 20_000, 'good twins and bad unhealthy');
    assert.equal(rig.ec.stateOf('default/good'), 'ok');
    const bad = rig.mapper.device('default/bad')!;
    assert.equal(bad.state, 'unhealthy');
    assert.match(bad.stateDetail ?? '', /rejected the user identity \(username operator\): BadUserAccessDenied/);
    assert.equal(rig.ec.twinsOf('default/bad').size, 0);
    assert.ok(!rig.logs.join('').includes(PASSWORD), 'no password in the mapper logs');
  });
});
