// SPDX-License-Identifier: Apache-2.0
// End to end: the `mapper-opcua` bin as a process, the example devices.yaml through a
// TestEdgecore, a node-opcua server (own process) that trusts no client until told to.
// Walks the operator's first-start flow: the client certificate appears in pkiDir, the device
// is unhealthy until the server trusts it, then twins are reported and the desired value is
// written. SIGTERM exits 0; every stdout line is JSON and no password is in it.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { TestEdgecore } from '@mapperkit/framework/testing';
import { connect, PASSWORD, request, signal, TestServer, until } from './helpers.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(root, '..', '..', '..', 'node_modules', '.bin', 'mapper-opcua');
const dir = mkdtempSync(join(tmpdir(), 'opcua-e2e-'));
let server: TestServer;

before(async () => {
  server = await TestServer.start({ acceptUnknownClients: false });
});

after(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('mapper-opcua (the bin) with the example devices.yaml', () => {
  it('first start: certificate created, unhealthy until trusted, then twins and desired values; clean SIGTERM', async () => {
    assert.ok(existsSync(BIN), 'bin mapper-opcua is linked into node_modules/.bin by the workspace');
    const pki = join(dir, 'pki');
    writeFileSync(join(dir, 'password'), `${PASSWORD}\n`);
    const yaml = readFileSync(join(root, 'devices', 'devices.yaml'), 'utf8')
      .replace('opc.tcp://opcua-server:4840', server.endpointUrl)
      .replace('/etc/mapper/opcua/password', join(dir, 'password'))
      .replace('/etc/mapper/opcua/server-certificate.pem', server.serverCertificateFile)
      .replace('/var/lib/mapperkit/pki', pki);
    const ec = await TestEdgecore.start({ socketPath: join(dir, 'dmi.sock'), ...TestEdgecore.fromCrdYaml(yaml), limiter: false });
    writeFileSync(
      join(dir, 'config.yaml'),
      `grpc_server:\n  socket_path: ${dir}/opcua.sock\ncommon:\n  name: opcua-mapper\n  protocol: opcua\n  edgecore_sock: ${dir}/dmi.sock\n  http_port: "0"\n` +
        `runtime:\n  backoff_initial_ms: 200\n  backoff_max_ms: 1000\n  state_check_ms: 500\n  report_rate: 100\nrest:\n  enabled: false\n`,
    );
    const child = spawn(BIN, ['--config-file', join(dir, 'config.yaml'), '--v', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const id = 'default/boiler-1';
    const cert = join(pki, 'own', 'certs', 'client_certificate.pem');
    try {
      await ec.waitFor(() => ec.stateOf(id) === 'unhealthy', 60_000, 'unhealthy: the server does not trust the new client certificate');
      assert.ok(existsSync(cert), 'client certificate created in pkiDir on first start');
      // The log line and the state report race; wait for the line.
      await until(() => /does the server trust the client certificate/.test(out), 10_000, 'the connect failure in the log');
      assert.match(out, /created the OPC UA client application certificate/);

      await server.trustClient(cert);
      await ec.waitFor(() => ec.stateOf(id) === 'ok' && ec.twinsOf(id).size === 6, 30_000, 'ok and six twins after the server trusts the client');
      const twins = ec.twinsOf(id);
      assert.equal(twins.get('label')?.reported, 'Pump 1');
      assert.equal(twins.get('running')?.reported, 'true');
      assert.match(twins.get('temperature')?.reported ?? '', /^-?\d/);
      assert.equal(twins.get('level')?.reported, '50');
      await ec.waitFor(() => ec.twinsOf(id).get('setpoint')?.observedDesired === '65.5', 10_000, 'desired setpoint written');
      await until(async () => (await server.get('Float')).value === 65.5, 5000, 'server-side Float = 65.5');

      const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 0, 'clean exit code on SIGTERM');
      const lines = out.trim().split('\n');
      for (const l of lines) assert.doesNotThrow(() => JSON.parse(l), `stdout line is not JSON: ${l}`);
      assert.ok(!out.includes(PASSWORD) && !err.includes(PASSWORD), 'no password in the output');
      assert.ok(!/NODE-OPCUA-W27/.test(out + err), 'node-opcua start-up notice is not printed');
    } finally {
      child.kill('SIGKILL');
      await ec.close();
    }
  });
});

describe('mapper-opcua create-certificate', () => {
  it('creates the client certificate ahead of time with the given applicationUri; the driver then uses that URI', async () => {
    const pki = join(dir, 'pki-cli');
    const run = () => spawnSync(BIN, ['create-certificate', '--pki-dir', pki, '--application-uri', 'urn:plant-7:opcua-mapper'], { encoding: 'utf8', timeout: 60_000 });
    const first = run();
    assert.equal(first.status, 0, first.stderr);
    const info = JSON.parse(first.stdout.slice(0, first.stdout.indexOf('}') + 1)) as { created: boolean; certificate: string; privateKey: string; applicationUri: string; thumbprint: string };
    assert.equal(info.created, true);
    assert.equal(info.certificate, join(pki, 'own', 'certs', 'client_certificate.pem'));
    assert.ok(existsSync(info.privateKey));
    assert.match(first.stdout, /-----BEGIN CERTIFICATE-----/);
    const x509 = new X509Certificate(readFileSync(info.certificate));
    assert.match(x509.subjectAltName ?? '', /URI:urn:plant-7:opcua-mapper/);
    assert.equal(x509.fingerprint.replace(/:/g, '').toLowerCase(), info.thumbprint);
    const second = run();
    assert.equal(second.status, 0);
    assert.match(second.stdout, /"created": false/);
    assert.equal(new X509Certificate(readFileSync(info.certificate)).fingerprint, x509.fingerprint, 'an existing certificate is kept');

    // No applicationUri in configData: the session uses the certificate's URI, not one built from the host name.
    const c = await connect({ url: server.endpointUrl, pkiDir: pki });
    try {
      assert.ok((await c.read([await request('d', 'double', { nodeID: 'ns=2;s=Double' })], signal()))[0]?.ok);
    } finally {
      await c.close();
    }
    assert.equal((await server.activations()).at(-1)?.applicationUri, 'urn:plant-7:opcua-mapper');

    const bad = spawnSync(BIN, ['create-certificate', '--bogus'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /usage: mapper-opcua create-certificate/);
  });
});
