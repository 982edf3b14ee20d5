// SPDX-License-Identifier: Apache-2.0
// Wire encodings checked by an independent gRPC implementation: Debian's Python grpcio, with
// stubs compiled from the framework's proto by grpc_tools.protoc, acts as the mapper against
// edgecore-dmi and decodes everything with protobuf's own json_format.
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { EdgecoreDmi } from '../src/index.js';
import { eventually, startServer, TempDir } from './helpers.ts';

const here = dirname(fileURLToPath(import.meta.url));
const PY = '/usr/bin/python3';
const protoDir = join(dirname(createRequire(import.meta.url).resolve('@mapperkit/framework/package.json')), 'proto', 'v1beta1');

const INVENTORY = `apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata: { name: meter }
spec:
  protocol: pyproto
  protocolConfigData: { port: 5502, host: model-host, scale: 0.1 }
  properties:
    - name: volts
      type: INT
      accessMode: ReadOnly
      visitors:
        protocolName: pyproto
        configData: { register: 7, swap: false }
    - name: limit
      type: FLOAT
      accessMode: ReadWrite
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: { name: meter-a }
spec:
  deviceModelRef: { name: meter }
  protocol:
    protocolName: pyproto
    configData: { host: 10.0.0.5, enabled: true }
  stateReport: { reportToCloud: true, reportCycle: 3000 }
  properties:
    - name: volts
      collectCycle: 1000
      reportCycle: 2000
      reportToCloud: true
      visitors: { protocolName: pyproto, configData: { register: 9 } }
    - name: limit
      desired: { value: "12.5" }
      visitors: { protocolName: pyproto, configData: { register: 10 } }
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: { name: meter-b }
spec:
  deviceModelRef: { name: meter }
  protocol: { protocolName: pyproto }
  properties:
    - name: volts
---
apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata: { name: other }
spec:
  protocol: virtual
  properties: [{ name: x, type: INT, accessMode: ReadOnly }]
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: { name: not-mine }
spec:
  deviceModelRef: { name: other }
  protocol: { protocolName: virtual }
  properties: [{ name: x }]
`;

type Json = Record<string, any>;

describe('independent gRPC peer: Python grpcio as the mapper', () => {
  const dir = new TempDir();
  let server: EdgecoreDmi;
  let child: ChildProcessWithoutNullStreams | undefined;
  const events: Json[] = [];
  let stderr = '';

  before(async () => {
    const probe = spawnSync(PY, ['-c', 'import grpc, grpc_tools'], { encoding: 'utf8' });
    assert.equal(probe.status, 0, `Debian python3-grpcio and python3-grpc-tools are required (scripts/setup-peers.sh installs them): ${probe.stderr}`);
    const gen = dir.join('pygen');
    mkdirSync(gen);
    const include = existsSync('/usr/include/google/protobuf/any.proto') ? ['-I', '/usr/include'] : [];
    const c = spawnSync(PY, ['-m', 'grpc_tools.protoc', '-I', protoDir, ...include, `--python_out=${gen}`, `--grpc_python_out=${gen}`, join(protoDir, 'api.proto')], { encoding: 'utf8' });
    assert.equal(c.status, 0, c.stderr);
    mkdirSync(dir.join('devices'));
    dir.file('devices/inventory.yaml', INVENTORY);
    server = await startServer(dir, { devices: dir.join('devices') });
    child = spawn(PY, [join(here, 'fixtures', 'python_mapper.py'), gen, server.socketPath, dir.join('py.sock'), 'pyproto'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        events.push(JSON.parse(buf.slice(0, i)) as Json);
        buf = buf.slice(i + 1);
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    await eventually(() => events.some((e) => e['event'] === 'reported' || e['event'] === 'error'), 15_000, `python mapper to register and report (stderr: ${stderr})`);
    assert.equal(events.find((e) => e['event'] === 'error'), undefined, JSON.stringify(events));
  });

  after(async () => {
    child?.stdin.end();
    if (child && child.exitCode === null) await new Promise((r) => child!.once('exit', r));
    await server?.close();
    dir.remove();
  });

  it('MapperRegister: only devices of the mapper protocol, modelList[i] is the model of deviceList[i]', () => {
    const reg = events.find((e) => e['event'] === 'register')!;
    const resp = reg['response'] as Json;
    assert.deepEqual(
      resp['deviceList'].map((d: Json) => d['name']),
      ['meter-a', 'meter-b'],
    );
    assert.equal(resp['modelList'].length, 2, 'one model entry per device (models repeat)');
    resp['deviceList'].forEach((d: Json, i: number) => assert.equal(resp['modelList'][i]['name'], d['spec']['deviceModelReference']));
    assert.equal(resp['deviceList'][0]['namespace'], 'default', 'namespace defaults to "default"');
    assert.deepEqual(
      resp['modelList'][0]['spec']['properties'].map((p: Json) => [p['name'], p['type'], p['accessMode']]),
      [
        ['volts', 'INT', 'ReadOnly'],
        ['limit', 'FLOAT', 'ReadWrite'],
      ],
    );
    // The mapper's registration is recorded as it came over the wire.
    const m = server.mappers().find((x) => x.name === 'py-mapper')!;
    assert.equal(m.protocol, 'pyproto');
    assert.equal(m.apiVersion, 'v1.0.0');
    assert.equal(m.version, 'v9.9.9');
    assert.equal(m.address, dir.join('py.sock'));
  });

  it('encodes configData as edgecore does: numbers FloatValue, strings StringValue, booleans BoolValue; model defaults merged, device wins', () => {
    const dev = (events.find((e) => e['event'] === 'register')!['response'] as Json)['deviceList'][0] as Json;
    const data = dev['spec']['protocol']['configData']['data'] as Json;
    const W = 'type.googleapis.com/google.protobuf.';
    assert.deepEqual(data['port'], { '@type': `${W}FloatValue`, value: 5502 }, 'model default, JSON number → FloatValue');
    assert.deepEqual(data['host'], { '@type': `${W}StringValue`, value: '10.0.0.5' }, 'device value wins over the model default');
    assert.deepEqual(data['enabled'], { '@type': `${W}BoolValue`, value: true });
    assert.equal(data['scale']['@type'], `${W}FloatValue`);
    assert.ok(Math.abs(data['scale']['value'] - 0.1) < 1e-6, 'decimal sent as a 32-bit float');
    const volts = dev['spec']['properties'][0] as Json;
    assert.equal(volts['visitors']['protocolName'], 'pyproto');
    assert.deepEqual(volts['visitors']['configData']['data'], {
      register: { '@type': `${W}FloatValue`, value: 9 },
      swap: { '@type': `${W}BoolValue`, value: false },
    });
    // int64 fields (protobuf JSON renders them as strings) and stateReport → status.
    assert.equal(volts['collectCycle'], '1000');
    assert.equal(volts['reportCycle'], '2000');
    assert.equal(volts['reportToCloud'], true);
    assert.deepEqual(dev['status'], { reportToCloud: true, reportCycle: '3000' });
    assert.deepEqual(dev['spec']['properties'][1]['desired'], { value: '12.5' });
  });

  it('stores the twins and states Python reported; refuses an empty twin list and flags a state edgecore rejects', () => {
    const a = server.deviceView('meter-a')!;
    assert.equal(a.twins.find((t) => t.property === 'volts')?.reported, '40');
    assert.equal(a.twins.find((t) => t.property === 'limit')?.reported, '41');
    assert.equal(a.twins.find((t) => t.property === 'limit')?.observedDesired, '12.5');
    assert.equal(a.state, 'online', 'the later "disconnected" is dropped, as edgecore drops it');
    assert.equal(server.deviceView('meter-b')!.twins[0]?.reported, '40');
    const empty = events.find((e) => e['event'] === 'empty_twins')!;
    assert.equal(empty['code'], 'UNKNOWN');
    assert.match(empty['details'], /does not have twin data/);
    assert.ok(server.problems().some((p) => /state "disconnected" is not accepted by edgecore/.test(p.message) && p.id === 'default/meter-a'));
  });

  it('a new file reaches the Python mapper as CreateDeviceModel + RegisterDevice, a deleted one as RemoveDevice + RemoveDeviceModel', async () => {
    dir.file(
      'devices/later.yaml',
      `apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata: { name: meter2, namespace: plant }
spec:
  protocol: pyproto
  properties: [{ name: amps, type: DOUBLE, accessMode: ReadOnly }]
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: { name: meter-c, namespace: plant }
spec:
  deviceModelRef: { name: meter2 }
  protocol: { protocolName: pyproto, configData: { unit: 3 } }
  properties: [{ name: amps, visitors: { protocolName: pyproto, configData: { offset: -1.5 } } }]
`,
    );
    const calls = (): Json[] => events.filter((e) => e['event'] === 'call');
    await eventually(() => calls().some((c) => c['method'] === 'RegisterDevice'), 10_000, 'RegisterDevice at the python mapper');
    const create = calls().find((c) => c['method'] === 'CreateDeviceModel')!;
    assert.equal(create['request']['model']['name'], 'meter2');
    assert.equal(create['request']['model']['namespace'], 'plant');
    const reg = calls().find((c) => c['method'] === 'RegisterDevice')!['request']['device'] as Json;
    assert.equal(reg['name'], 'meter-c');
    assert.equal(reg['namespace'], 'plant');
    assert.deepEqual(reg['spec']['protocol']['configData']['data']['unit'], { '@type': 'type.googleapis.com/google.protobuf.FloatValue', value: 3 });
    assert.equal(reg['spec']['properties'][0]['visitors']['configData']['data']['offset']['value'], -1.5);
    assert.ok(
      calls().findIndex((c) => c['method'] === 'CreateDeviceModel') < calls().findIndex((c) => c['method'] === 'RegisterDevice'),
      'the model is sent before the device',
    );

    rmSync(dir.join('devices', 'later.yaml'));
    await eventually(() => calls().some((c) => c['method'] === 'RemoveDeviceModel'), 10_000, 'RemoveDeviceModel at the python mapper');
    const rm = calls().find((c) => c['method'] === 'RemoveDevice')!;
    assert.deepEqual(rm['request'], { deviceName: 'meter-c', deviceNamespace: 'plant' });
    assert.deepEqual(calls().find((c) => c['method'] === 'RemoveDeviceModel')!['request'], { modelName: 'meter2', modelNamespace: 'plant' });
    assert.ok(calls().findIndex((c) => c['method'] === 'RemoveDevice') < calls().findIndex((c) => c['method'] === 'RemoveDeviceModel'));
    assert.ok(!calls().some((c) => JSON.stringify(c).includes('not-mine')), 'nothing of another protocol reached this mapper');
  });
});
