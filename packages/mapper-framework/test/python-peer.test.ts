// SPDX-License-Identifier: Apache-2.0
// Wire compatibility beyond grpc-js talking to itself: Debian's Python grpcio, with stubs
// compiled from our proto file by grpc_tools.protoc, plays edgecore against a real mapper.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { createLogger, createMapper, type MapperHandle } from '@mapperkit/framework';
import { fakeDriver, mapperConfigYaml, newWorld, tempDir } from './helpers.ts';

const here = dirname(fileURLToPath(import.meta.url));
const PY = '/usr/bin/python3';

describe('independent gRPC peer: Python grpcio as edgecore', () => {
  const { dir, cleanup } = tempDir('mk-py-');
  let mapper: MapperHandle | undefined;
  after(async () => {
    await mapper?.stop();
    cleanup();
  });

  it('compiles the proto with grpc_tools and drives a mapper through every RPC', async () => {
    const probe = spawnSync(PY, ['-c', 'import grpc, grpc_tools'], { encoding: 'utf8' });
    assert.equal(probe.status, 0, `Debian python3-grpcio and python3-grpc-tools are required (scripts/setup-peers.sh installs them): ${probe.stderr}`);
    const gen = join(dir, 'pygen');
    const protoDir = join(here, '..', 'proto', 'v1beta1');
    const include = existsSync('/usr/include/google/protobuf/any.proto') ? ['-I', '/usr/include'] : [];
    spawnSync('mkdir', ['-p', gen]);
    const c = spawnSync(PY, ['-m', 'grpc_tools.protoc', '-I', protoDir, ...include, `--python_out=${gen}`, `--grpc_python_out=${gen}`, join(protoDir, 'api.proto')], { encoding: 'utf8' });
    assert.equal(c.status, 0, c.stderr);

    const sock = join(dir, 'dmi.sock');
    const child = spawn(PY, [join(here, 'fixtures', 'python_edgecore.py'), gen, sock], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // Start order does not matter: the mapper retries until the Python server is up.
    mapper = await createMapper({ driver: fakeDriver(newWorld()), config: mapperConfigYaml(dir).replace(join(dir, 'dmi.sock'), sock), logger: createLogger({ level: 'silent' }) });
    const code = await new Promise<number | null>((res) => child.on('exit', res));
    assert.equal(code, 0, `python peer failed: ${stderr}`);
    const out = JSON.parse(stdout) as Record<string, any>;
    assert.equal(out['error'], undefined);

    // MapperRegister as Python decoded it (api_version is snake_case on the wire, address is bytes).
    assert.deepEqual(out['mapper'], { name: 'fake-mapper', protocol: 'fake', api_version: 'v1.0.0', version: 'v1.0.0', address: join(dir, 'mapper.sock'), state: 'ok' });
    // Devices from the register response, with Python-packed FloatValue/Int64Value Anys, ran and reported.
    assert.equal(out['twins_from_register'], true, JSON.stringify(out['twins']));
    assert.deepEqual(out['twins']['py-dev-1'], { temp: { reported: '40', observedDesired: '' }, level: { reported: '12.5', observedDesired: '12.5' } });
    assert.equal(out['states']['py-dev-1'], 'ok');
    // RegisterDevice / GetDevice / RemoveDevice over Python's client.
    assert.deepEqual(out['register_response'], { deviceName: 'py-dev-2', deviceNamespace: 'default' });
    assert.equal(out['twins_from_rpc'], true);
    assert.equal(out['get_device']['name'], 'py-dev-2');
    assert.equal(out['get_device']['model'], 'py-model');
    assert.equal(out['get_device']['twins']['temp']['reported'], '70');
    assert.equal(out['get_device']['twins']['level']['observedDesired'], '12.5');
    assert.equal(out['bad_config']['code'], 'INVALID_ARGUMENT');
    assert.match(out['bad_config']['details'], /device default\/py-bad: protocol configData\.port/);
    assert.equal(out['after_remove'], 'NOT_FOUND');
  });
});
