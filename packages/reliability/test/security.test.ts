// SPDX-License-Identifier: Apache-2.0
// Security defaults, checked on real processes: edgecore-dmi (bin), mapper-modbus (bin, under
// umask 000, REST token from a file, Redis password from credentials_dir, MQTT user/password in
// the broker URL) on a modbus-sim device, mapper-opcua (bin, REST token from env, username and
// password file) on a node-opcua server that refuses anonymous sessions, redis-server with
// requirepass and mosquitto with a password file. Checked: socket modes, REST bind address,
// the write token, size limits, and that no credential appears in any log line, REST answer,
// edgecore-dmi API answer or dashboard, or file the mappers wrote.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger, createMapper, defineDriver, type MapperHandle, z } from '@mapperkit/framework';
import { Redis } from 'ioredis';
import mqtt from 'mqtt';
import { binPath, REPO_ROOT } from '../src/bins.ts';
import { fleetYaml } from '../src/fleet.ts';
import { httpRequest } from '../src/http-client.ts';
import { freePort, ManagedProcess, portOpen, until, waitForPort } from '../src/procs.ts';

const REDIS_PASSWORD = `rp-${randomBytes(12).toString('hex')}`;
const MQTT_PASSWORD = `mp-${randomBytes(12).toString('hex')}`;
const OPCUA_PASSWORD = `op-${randomBytes(12).toString('hex')}`;
const MODBUS_TOKEN = `mt-${randomBytes(16).toString('hex')}`;
const OPCUA_TOKEN = `ot-${randomBytes(16).toString('hex')}`;
const SECRETS = { REDIS_PASSWORD, MQTT_PASSWORD, OPCUA_PASSWORD, MODBUS_TOKEN, OPCUA_TOKEN };

/** Every way a secret could show up in text: as is, base64, URL-encoded, JSON-escaped. */
function findSecrets(text: string): string[] {
  const hits: string[] = [];
  for (const [name, s] of Object.entries(SECRETS)) {
    for (const form of [s, Buffer.from(s).toString('base64'), encodeURIComponent(s), s.slice(3)]) if (text.includes(form)) hits.push(name);
  }
  return [...new Set(hits)];
}

const API = 'devices.kubeedge.io/v1beta1';

describe('security defaults (real processes, real peers)', () => {
  let dir: string;
  const procs: ManagedProcess[] = [];
  let redisPort: number;
  let mqttPort: number;
  let simPort: number;
  let opcuaPort: number;
  let edgeHttp: number;
  let modbusRest: number;
  let opcuaRest: number;
  let edge: ManagedProcess;
  let modbus: ManagedProcess;
  let opcua: ManagedProcess;
  let opcuaServer: ManagedProcess;
  const mqttSeen: string[] = [];
  let sub: mqtt.MqttClient | undefined;
  const answers: { what: string; body: string }[] = [];

  const start = (name: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): ManagedProcess => {
    const p = new ManagedProcess({ name, cmd, args, logFile: join(dir, 'logs', `${name}.log`), ...(env ? { env } : {}) });
    procs.push(p);
    p.start();
    return p;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mk-sec-'));
    for (const d of ['logs', 'secrets', 'devices', 'redis', 'mqtt', 'pki-server', 'pki-client', 'buffer-modbus', 'buffer-opcua']) mkdirSync(join(dir, d));
    writeFileSync(join(dir, 'secrets', 'password'), `${REDIS_PASSWORD}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'secrets', 'rest-token'), `${MODBUS_TOKEN}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'secrets', 'opcua-password'), `${OPCUA_PASSWORD}\n`, { mode: 0o600 });
    const ports = new Set<number>();
    while (ports.size < 7) ports.add(await freePort());
    [redisPort, mqttPort, simPort, opcuaPort, edgeHttp, modbusRest, opcuaRest] = [...ports] as [number, number, number, number, number, number, number];

    // Peers with credentials.
    writeFileSync(join(dir, 'redis', 'redis.conf'), `requirepass ${REDIS_PASSWORD}\n`, { mode: 0o600 });
    start('redis-server', 'redis-server', [join(dir, 'redis', 'redis.conf'), '--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', join(dir, 'redis')]);
    execFileSync('mosquitto_passwd', ['-b', '-c', join(dir, 'mqtt', 'passwd'), 'sensor', MQTT_PASSWORD]);
    // As root, mosquitto would switch to user "mosquitto", which cannot read the password file in our 0700 temp dir.
    writeFileSync(join(dir, 'mqtt', 'mosquitto.conf'), [...(process.getuid?.() === 0 ? ['user root'] : []), `listener ${mqttPort} 127.0.0.1`, 'allow_anonymous false', `password_file ${join(dir, 'mqtt', 'passwd')}`, ''].join('\n'));
    start('mosquitto', 'mosquitto', ['-c', join(dir, 'mqtt', 'mosquitto.conf')]);
    start('modbus-sim', process.execPath, [binPath('modbus-sim'), '--port', String(simPort)]);
    opcuaServer = start('opcua-server', process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'packages/reliability/test/fixtures/opcua-user-server.ts'), String(opcuaPort), join(dir, 'pki-server'), 'operator', join(dir, 'secrets', 'opcua-password')]);
    await Promise.all([waitForPort(redisPort), waitForPort(mqttPort), waitForPort(simPort), opcuaServer.waitForOutput(/"ready":true/, 90_000)]);

    // MQTT subscriber with the same credentials: proves the mapper's publishes were authenticated.
    sub = mqtt.connect(`mqtt://127.0.0.1:${mqttPort}`, { username: 'sensor', password: MQTT_PASSWORD, reconnectPeriod: 200 });
    sub.on('message', (_t, m) => mqttSeen.push(m.toString()));
    await new Promise<void>((res, rej) => sub!.once('connect', () => sub!.subscribe('soak/#', { qos: 1 }, (e) => (e ? rej(e) : res()))));

    // Devices: a Modbus thermostat pushing to Redis and to MQTT (user:password in the broker URL), an OPC UA device with a user.
    writeFileSync(
      join(dir, 'devices', 'modbus.yaml'),
      fleetYaml({ ports: [simPort], cycleMs: 500, mqttPort, redisPort, namePrefix: 'sec' }).replace(`tcp://127.0.0.1:${mqttPort}`, `tcp://sensor:${MQTT_PASSWORD}@127.0.0.1:${mqttPort}`),
    );
    writeFileSync(
      join(dir, 'devices', 'opcua.yaml'),
      [
        `apiVersion: ${API}`,
        'kind: DeviceModel',
        'metadata: {name: boiler, namespace: default}',
        'spec: {protocol: opcua, properties: [{name: temperature, type: DOUBLE, accessMode: ReadOnly}]}',
        '---',
        `apiVersion: ${API}`,
        'kind: Device',
        'metadata: {name: boiler-1, namespace: default}',
        'spec:',
        '  deviceModelRef: {name: boiler}',
        '  protocol:',
        '    protocolName: opcua',
        '    configData:',
        `      url: opc.tcp://127.0.0.1:${opcuaPort}`,
        '      securityPolicy: None',
        '      securityMode: None',
        '      userName: operator',
        `      passwordFile: ${join(dir, 'secrets', 'opcua-password')}`,
        `      pkiDir: ${join(dir, 'pki-client')}`,
        '  properties:',
        '    - {name: temperature, collectCycle: 500, reportCycle: 500, reportToCloud: true, visitors: {protocolName: opcua, configData: {nodeID: "ns=1;s=Temperature"}}}',
        '',
      ].join('\n'),
    );
    edge = start('edgecore-dmi', process.execPath, [binPath('edgecore-dmi'), 'serve', '--socket', join(dir, 'dmi.sock'), '--devices', join(dir, 'devices'), '--http', `127.0.0.1:${edgeHttp}`, '--db', join(dir, 'edge.db'), '--log-level', 'debug', '--no-limiter']);
    await until(() => portOpen(edgeHttp), 60_000, 'edgecore-dmi HTTP');

    const config = (name: string, protocol: string, port: number, buffer: string, extra: string[]): string =>
      [
        'grpc_server:',
        `  socket_path: ${join(dir, `${name}.sock`)}`,
        'common:',
        `  name: ${name}`,
        `  protocol: ${protocol}`,
        `  edgecore_sock: ${join(dir, 'dmi.sock')}`,
        `  http_port: ${port}`,
        'data_plane:',
        `  buffer_dir: ${join(dir, buffer)}`,
        `  credentials_dir: ${join(dir, 'secrets')}`,
        '  mqtt:',
        '    payload: json',
        ...extra,
        '',
      ].join('\n');
    writeFileSync(join(dir, 'modbus.yaml'), config('mapper-modbus', 'modbus', modbusRest, 'buffer-modbus', ['rest:', `  write_token_file: ${join(dir, 'secrets', 'rest-token')}`]));
    writeFileSync(join(dir, 'opcua.yaml'), config('mapper-opcua', 'opcua', opcuaRest, 'buffer-opcua', ['rest:', '  bind_address: 0.0.0.0']));
    // umask 000: the sockets must still come out 0660.
    modbus = start('mapper-modbus', '/bin/sh', ['-c', `umask 000; exec "$0" "$@"`, process.execPath, binPath('mapper-modbus'), '--config-file', join(dir, 'modbus.yaml'), '--v', '4']);
    opcua = start('mapper-opcua', '/bin/sh', ['-c', `umask 000; exec "$0" "$@"`, process.execPath, binPath('mapper-opcua'), '--config-file', join(dir, 'opcua.yaml'), '--v', '4'], { ...process.env, REST_TOKEN: OPCUA_TOKEN });
    await Promise.all([waitForPort(modbusRest, 60_000), waitForPort(opcuaRest, 60_000)]);
  });

  after(async () => {
    await sub?.endAsync(true).catch(() => undefined);
    for (const p of [...procs].reverse()) await p.close();
    if (process.env['RELIABILITY_KEEP']) process.stderr.write(`kept ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  });

  it('creates every unix socket with mode 0660, even under umask 000', async () => {
    await until(() => ['dmi.sock', 'mapper-modbus.sock', 'mapper-opcua.sock'].every((s) => readdirSync(dir).includes(s)), 30_000, 'the three sockets');
    for (const s of ['dmi.sock', 'mapper-modbus.sock', 'mapper-opcua.sock']) {
      const st = statSync(join(dir, s));
      assert.ok(st.isSocket(), `${s} is a socket`);
      assert.equal((st.mode & 0o777).toString(8), '660', `${s} mode`);
    }
  });

  it('binds REST to 127.0.0.1 by default and to the configured address otherwise', () => {
    const listening = (port: number): string[] =>
      ['/proc/net/tcp', '/proc/net/tcp6'].flatMap((f) =>
        readFileSync(f, 'utf8')
          .split('\n')
          .slice(1)
          .map((l) => l.trim().split(/\s+/))
          .filter((c) => c[3] === '0A' && parseInt(c[1]!.split(':')[1]!, 16) === port)
          .map((c) => c[1]!.split(':')[0]!),
      );
    assert.deepEqual(listening(modbusRest), ['0100007F'], 'mapper-modbus REST (no rest.bind_address) listens on 127.0.0.1 only');
    assert.deepEqual(listening(opcuaRest), ['00000000'], 'mapper-opcua REST (rest.bind_address: 0.0.0.0) listens on all interfaces');
    assert.deepEqual(listening(edgeHttp), ['0100007F'], 'edgecore-dmi HTTP API on 127.0.0.1');
  });

  it('is not reachable on a non-loopback address unless configured', async (t) => {
    const ip = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
    if (!ip) {
      t.skip('this machine has no non-loopback IPv4 address');
      return;
    }
    const reach = (port: number): Promise<number> => httpRequest(`http://${ip}:${port}/healthz`, { timeoutMs: 2000 }).then((r) => r.status, () => 0);
    assert.equal(await reach(modbusRest), 0, `mapper-modbus REST answered on ${ip}`);
    assert.equal(await reach(opcuaRest), 200, `mapper-opcua REST (0.0.0.0) did not answer on ${ip}`);
  });

  it('refuses every write route without the right token (401) and accepts it with the token', async () => {
    const base = `http://127.0.0.1:${modbusRest}/api/v1`;
    const put = (path: string, headers: Record<string, string>, body = '{"value": 25}') => httpRequest(`${base}${path}`, { method: 'PUT', body, headers: { 'content-type': 'application/json', ...headers } });
    const wrong: Record<string, string>[] = [{}, { authorization: `Bearer ${MODBUS_TOKEN}x` }, { authorization: `Basic ${Buffer.from(`admin:${MODBUS_TOKEN}`).toString('base64')}` }, { authorization: MODBUS_TOKEN }, { authorization: 'Bearer ' }];
    for (const h of wrong) {
      for (const r of [
        await put('/device/default/sec-000/setpoint', h),
        await put('/devicemethod/default/sec-000/set-temperature/setpoint', h),
        await httpRequest(`${base}/device/default/sec-000/setpoint`, { method: 'POST', body: '{"value":25}', headers: h }),
        await httpRequest(`${base}/devicemethod/default/sec-000/set-temperature/setpoint/25`, { headers: h }),
      ]) {
        assert.equal(r.status, 401, `write without the token (${JSON.stringify(h).slice(0, 40)}) answered ${r.status}: ${r.body.slice(0, 200)}`);
        assert.match(r.headers['www-authenticate'] as string, /^Bearer/);
        answers.push({ what: 'modbus 401', body: r.body });
      }
    }
    // The OPC UA mapper's token comes from env REST_TOKEN.
    const o = await httpRequest(`http://127.0.0.1:${opcuaRest}/api/v1/device/default/boiler-1/temperature`, { method: 'PUT', body: '{"value":1}' });
    assert.equal(o.status, 401, 'mapper-opcua (token from env) refused a write without it');
    // Reads stay open; the right token writes.
    assert.equal((await httpRequest(`${base}/device`)).status, 200);
    await until(async () => (await httpRequest(`${base}/device/default/sec-000/setpoint`)).status === 200, 30_000, 'a first setpoint sample');
    const ok = await put('/device/default/sec-000/setpoint', { authorization: `Bearer ${MODBUS_TOKEN}` });
    assert.equal(ok.status, 200, ok.body);
    answers.push({ what: 'modbus write', body: ok.body });
    await until(async () => JSON.parse((await httpRequest(`${base}/device/default/sec-000/setpoint`)).body).Data?.Value === '25', 15_000, 'setpoint 25 read back from the device');
  });

  it('limits request bodies (64 KiB) and request heads (path segments) and keeps serving', async () => {
    const base = `http://127.0.0.1:${modbusRest}`;
    const big = await httpRequest(`${base}/api/v1/device/default/sec-000/setpoint`, { method: 'PUT', body: `{"value":"${'9'.repeat(70 * 1024)}"}`, headers: { authorization: `Bearer ${MODBUS_TOKEN}` } }).catch((e: Error) => ({ status: -1, body: e.message, headers: {} }));
    assert.ok(big.status === 413 || big.status === -1, `70 KiB body answered ${big.status}`);
    const longSeg = await httpRequest(`${base}/api/v1/device/default/${'x'.repeat(20 * 1024)}/setpoint`).catch((e: Error) => ({ status: -1, body: e.message, headers: {} }));
    assert.ok(longSeg.status === 431 || longSeg.status === 414, `20 KiB path segment answered ${longSeg.status}`);
    const edgeBig = await httpRequest(`http://127.0.0.1:${edgeHttp}/api/v1/apply`, { method: 'POST', body: `# ${'x'.repeat(12 * 1024 * 1024)}` }).catch((e: Error) => ({ status: -1, body: e.message, headers: {} }));
    assert.ok(edgeBig.status === 400 || edgeBig.status === 413 || edgeBig.status === -1, `12 MiB apply body answered ${edgeBig.status}`);
    assert.equal((await httpRequest(`${base}/healthz`)).status, 200, 'mapper still serving');
    assert.equal((await httpRequest(`http://127.0.0.1:${edgeHttp}/healthz`)).status, 200, 'edgecore-dmi still serving');
  });

  it('used every credential (so the scan below means something)', async () => {
    const rc = new Redis({ host: '127.0.0.1', port: redisPort, password: REDIS_PASSWORD, lazyConnect: true });
    await rc.connect();
    await until(async () => (await rc.zcard('sec-000')) > 0, 30_000, 'samples in Redis (password from credentials_dir)');
    rc.disconnect();
    await until(() => mqttSeen.length > 0, 30_000, 'samples on MQTT (user:password in the broker URL)');
    await until(() => /"session":"operator"/.test(opcuaServer.output()), 60_000, 'an OPC UA session as user operator');
    await until(async () => {
      const d = JSON.parse((await httpRequest(`http://127.0.0.1:${opcuaRest}/api/v1/device/default/boiler-1/temperature`)).body) as { Data?: { Value?: string } };
      return d.Data?.Value !== undefined;
    }, 60_000, 'an OPC UA value read through the authenticated session');
    // A Redis restart makes the sink log its reconnect (a classic place for a URL with a password).
    const redis = procs.find((p) => p.spec.name === 'redis-server')!;
    await redis.stop('SIGKILL');
    await new Promise((r) => setTimeout(r, 1500));
    redis.start();
    await waitForPort(redisPort);
  });

  /** Where each secret was found, by kind of place: `api` = edgecore-dmi's API and dashboard. */
  const leaks: { where: 'api' | 'mapper' | 'edgecore-log' | 'file' | 'cmdline'; text: string }[] = [];

  it('never shows a credential in a mapper log line (--v 4), REST answer, written file or command line, nor in edgecore-dmi\'s log', async () => {
    const modbusApi = `http://127.0.0.1:${modbusRest}`;
    const opcuaApi = `http://127.0.0.1:${opcuaRest}`;
    const edgeApi = `http://127.0.0.1:${edgeHttp}`;
    const mapperUrls = [
      ...[modbusApi, opcuaApi].flatMap((b) => ['/api/v1/device', '/metrics', '/healthz', '/readyz', '/api/v1/ping'].map((p) => `${b}${p}`)),
      `${modbusApi}/api/v1/device/default/sec-000`,
      `${modbusApi}/api/v1/device/default/sec-000/temperature`,
      `${modbusApi}/api/v1/devicemethod/default/sec-000`,
      `${modbusApi}/api/v1/meta/model/default/sec-000`,
      `${opcuaApi}/api/v1/device/default/boiler-1`,
      `${opcuaApi}/api/v1/meta/model/default/boiler-1`,
    ];
    const edgeUrls = ['/', '/api/v1/overview', '/api/v1/devices', '/api/v1/devices/default/sec-000', '/api/v1/devices/default/boiler-1', '/api/v1/mappers', '/api/v1/problems', '/api/v1/calls?limit=500', '/api/v1/models', '/api/v1/stats'].map((p) => `${edgeApi}${p}`);
    for (const u of mapperUrls) answers.push({ what: u, body: (await httpRequest(u)).body });
    for (const u of edgeUrls) for (const s of findSecrets((await httpRequest(u)).body)) leaks.push({ where: 'api', text: `${s} in the answer of ${u.replace(edgeApi, 'edgecore-dmi ')}` });
    await new Promise((r) => setTimeout(r, 1500)); // let the Redis reconnect be logged
    for (const a of answers) for (const s of findSecrets(a.body)) leaks.push({ where: 'mapper', text: `${s} in the answer of ${a.what}` });
    for (const p of procs) {
      if (p.spec.name === 'mosquitto' || p.spec.name === 'redis-server' || p.spec.name === 'opcua-server') continue; // the peers themselves
      const log = readFileSync(p.spec.logFile, 'utf8');
      for (const s of findSecrets(log)) leaks.push({ where: p.spec.name === 'edgecore-dmi' ? 'edgecore-log' : 'mapper', text: `${s} in the output of ${p.spec.name}` });
    }
    // Files the mappers wrote (disk buffers, channel.json, PKI) and their command lines.
    const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));
    for (const f of [...walk(join(dir, 'buffer-modbus')), ...walk(join(dir, 'buffer-opcua')), ...walk(join(dir, 'pki-client'))]) {
      for (const s of findSecrets(readFileSync(f, 'latin1'))) leaks.push({ where: 'file', text: `${s} in ${f.slice(dir.length + 1)}` });
    }
    for (const p of [modbus, opcua, edge]) {
      if (p.pid) for (const s of findSecrets(readFileSync(`/proc/${p.pid}/cmdline`, 'latin1'))) leaks.push({ where: 'cmdline', text: `${s} on the command line of ${p.spec.name}` });
    }
    const modbusLog = readFileSync(modbus.spec.logFile, 'utf8');
    assert.match(modbusLog, /"level":"(debug|trace)"/, 'the mapper logged at debug/trace level (--v 4)');
    assert.match(modbusLog, /credential/i, 'the mapper logged where the Redis password came from');
    assert.deepEqual(
      leaks.filter((l) => l.where !== 'api').map((l) => l.text),
      [],
    );
  });

  // The Device's pushMethod carries the MQTT broker URL with its user:password; edgecore-dmi used to
  // show it verbatim (fixed in 44f2ae9; src/fuzz/known.ts FIXED_BUGS edgecore-dmi-shows-url-credentials).
  it("edgecore-dmi's API and dashboard do not show credentials carried in a Device (broker URL userinfo)", () => {
    assert.deepEqual(
      leaks.filter((l) => l.where === 'api').map((l) => l.text),
      [],
    );
  });
});

describe('REST bind address in-process (createMapper)', () => {
  let mapper: MapperHandle;
  let dir: string;
  after(async () => {
    await mapper?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  it('rest.bind_address defaults to 127.0.0.1 in the parsed config and the server', async () => {
    dir = mkdtempSync(join(tmpdir(), 'mk-sec-bind-'));
    const driver = defineDriver({
      protocol: 'none',
      protocolConfig: z.object({}).passthrough(),
      visitorConfig: z.object({}).passthrough(),
      async connect() {
        throw new Error('no devices here');
      },
    });
    mapper = await createMapper({
      driver,
      logger: createLogger({ level: 'silent' }),
      config: { grpc_server: { socket_path: join(dir, 'm.sock') }, common: { name: 'bind', protocol: 'none', edgecore_sock: join(dir, 'nobody.sock'), http_port: await freePort() } } as never,
    });
    assert.equal(mapper.config.rest.bind_address, '127.0.0.1');
    await until(() => mapper.restAddress() !== undefined, 10_000, 'REST up');
    assert.equal(mapper.restAddress()!.host, '127.0.0.1');
  });
});
