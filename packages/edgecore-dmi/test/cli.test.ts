// SPDX-License-Identifier: Apache-2.0
// The CLI as a user runs it: `serve` in its own process, a real mapper against its socket, and
// the client commands (get, apply, delete, set-desired) against its HTTP API.
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { MapperHandle } from '@mapperkit/framework';
import { deviceYaml, eventually, MODEL_YAML, startVirtualMapper, TempDir } from './helpers.ts';

const PKG = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The built bin when dist is up to date with src (npm test builds first), else the source through tsx. */
function cliCommand(): string[] {
  const built = join(PKG, 'dist', 'cli.js');
  if (existsSync(built)) {
    const builtAt = statSync(built).mtimeMs;
    const stale = readdirSync(join(PKG, 'src')).some((f) => statSync(join(PKG, 'src', f)).mtimeMs > builtAt);
    if (!stale) return [join(PKG, 'bin', 'edgecore-dmi.js')];
  }
  return ['--import', 'tsx', join(PKG, 'src', 'cli.ts')];
}
const CLI = cliCommand();

function cli(server: string, ...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...CLI, '--server', server, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('edgecore-dmi CLI', () => {
  const dir = new TempDir();
  let serve: ChildProcessWithoutNullStreams | undefined;
  let mapper: MapperHandle | undefined;
  let url = '';
  let serveErr = '';
  const sock = dir.join('run', 'dmi.sock');
  let freePort = 0;

  before(async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    freePort = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    mkdirSync(dir.join('devices'));
    dir.file('devices/inv.yaml', `${MODEL_YAML}---\n${deviceYaml('t1', { cycle: 200 })}`);
    serve = spawn(process.execPath, [...CLI, 'serve', '--socket', sock, '--devices', dir.join('devices'), '--http', '127.0.0.1:0', '--db', dir.join('state', 'store.db'), '--log-level', 'warn'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    serve.stdout.resume();
    serve.stderr.on('data', (d: Buffer) => (serveErr += d.toString()));
    url = await eventually(() => /dashboard (http:\/\/127\.0\.0\.1:\d+)\//.exec(serveErr)?.[1], 20_000, 'the serve banner');
    mapper = await startVirtualMapper(dir, sock);
    await mapper.whenRegistered();
    await eventually(() => mapper!.device('default/t1'), 10_000, 't1 on the mapper');
  });

  after(async () => {
    await mapper?.stop();
    if (serve && serve.exitCode === null) {
      serve.kill('SIGKILL');
      await new Promise((r) => serve!.once('exit', r));
    }
    dir.remove();
  });

  it('serve: banner names socket and dashboard; the socket has mode 0660', () => {
    assert.match(serveErr, new RegExp(`DMI socket ${sock}`));
    assert.equal(statSync(sock).mode & 0o777, 0o660);
  });

  it('get devices | device NAME | models | mappers', async () => {
    await eventually(async () => ((await (await fetch(`${url}/api/v1/devices/default/t1`)).json()) as { twins: { reported?: string }[] }).twins[0]?.reported, 10_000, 'a reported temperature');
    const devices = cli(url, 'get', 'devices');
    assert.equal(devices.code, 0, devices.stderr);
    assert.match(devices.stdout, /^NAME\s+PROTOCOL\s+MODEL\s+STATE\s+DELIVERY/m);
    assert.match(devices.stdout, /default\/t1\s+virtual\s+default\/thermo\s+ok\s+delivered\s+virtual-mapper/);
    const one = cli(url, 'get', 'device', 'default/t1');
    assert.equal(one.code, 0);
    assert.match(one.stdout, /Device:\s+default\/t1/);
    assert.match(one.stdout, /Delivery: delivered/);
    assert.match(one.stdout, /^ {2}temperature\s+FLOAT\s+ReadOnly\s+\d+\s+\d+s\s+-/m);
    assert.match(one.stdout, /^ {2}setpoint\s+FLOAT\s+ReadWrite\s+20\s+/m);
    const models = cli(url, 'get', 'models');
    assert.match(models.stdout, /default\/thermo\s+virtual\s+2\s+yes/);
    const mappers = cli(url, 'get', 'mappers');
    assert.match(mappers.stdout, /virtual-mapper\s+virtual\s+v1\.0\.0\s+yes\s+in-sync\s+1/);
    const json = cli(url, '-o', 'json', 'get', 'devices');
    assert.deepEqual(
      (JSON.parse(json.stdout) as { id: string }[]).map((d) => d.id),
      ['default/t1'],
    );
    const missing = cli(url, 'get', 'device', 'nope');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /device default\/nope not found/);
  });

  it('apply -f and delete -f reach the mapper; a bad file exits 1 naming file and field', async () => {
    const file = dir.file('extra.yaml', deviceYaml('t-api', { seed: 5 }));
    const applied = cli(url, 'apply', '-f', file);
    assert.equal(applied.code, 0, applied.stderr);
    assert.equal(applied.stdout.trim(), 'device default/t-api created');
    await eventually(() => mapper!.device('default/t-api'), 10_000, 't-api on the mapper');
    assert.equal(cli(url, 'apply', '-f', file).stdout.trim(), 'device default/t-api unchanged');

    const bad = dir.file('bad.yaml', deviceYaml('t-bad', { extra: '  methods: 3\n' }).replace('seed: 1', 'seed: { nested: 1 }'));
    const r = cli(url, 'apply', '-f', bad);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error: api:.*bad\.yaml: Device default\/t-bad: spec\.protocol\.configData\.seed: a nested map cannot be sent over DMI/);

    const deleted = cli(url, 'delete', '-f', file);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal(deleted.stdout.trim(), 'device default/t-api deleted');
    await eventually(() => !mapper!.device('default/t-api'), 10_000, 't-api removed from the mapper');
    const fromFile = cli(url, 'delete', '-f', dir.join('devices', 'inv.yaml'));
    assert.equal(fromFile.code, 1);
    assert.match(fromFile.stderr, /is defined in file .*inv\.yaml/);
  });

  it('set-desired DEVICE PROPERTY VALUE reaches the device; a read-only property is refused', async () => {
    const r = cli(url, 'set-desired', 't1', 'setpoint', '22.5');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /device default\/t1 property setpoint desired 22\.5/);
    await eventually(() => mapper!.device('default/t1')?.observedDesired.get('setpoint') === '22.5', 10_000, 'the mapper to write 22.5');
    const ro = cli(url, 'set-desired', 't1', 'temperature', '3');
    assert.equal(ro.code, 1);
    assert.match(ro.stderr, /property "temperature" of device default\/t1 is ReadOnly/);
  });

  it('a client without a server says so and exits 1; usage errors exit 2', () => {
    const r = cli(`http://127.0.0.1:${freePort}`, 'get', 'devices');
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`cannot reach edgecore-dmi at http://127\\.0\\.0\\.1:${freePort}: .*ECONNREFUSED`));
    const u = cli(url, 'get', 'everything');
    assert.equal(u.code, 2);
  });

  it('SIGTERM stops serve cleanly (exit 0) and removes the socket', async () => {
    serve!.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => serve!.once('exit', r));
    assert.equal(code, 0, serveErr);
    assert.equal(existsSync(sock), false);
  });
});
