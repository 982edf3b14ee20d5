// SPDX-License-Identifier: Apache-2.0
// gRPC server reflection on edgecore-dmi's socket (edgecore registers it: upstream-kubeedge.md §2.1, §7.4),
// read by an independent client: Debian's Python grpcio with stubs compiled by grpc_tools.protoc from the
// reflection API proto, decoding the descriptors with protobuf's own descriptor_pb2 (the client script is
// the framework's, which implements reflection for both sides). The expected field numbers and types are
// upstream's v1beta1 table, not read from our proto.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
// The framework's runner of the Python reflection client (it implements reflection for both sides).
import { assertPythonGrpc, pythonReflection as client, type ReflectionAnswer as Json, reflect } from '../../mapper-framework/test/python-reflection.ts';
import type { EdgecoreDmi } from '../src/index.js';
import { startServer, TempDir } from './helpers.ts';

// descriptor.proto FieldDescriptorProto.Type values.
const TYPE_STRING = 9;
const TYPE_MESSAGE = 11;
const TYPE_BYTES = 12;
const TYPE_BOOL = 8;

describe('gRPC server reflection, read by Python grpcio', () => {
  const dir = new TempDir();
  let server: EdgecoreDmi;
  let off: EdgecoreDmi;

  before(async () => {
    assertPythonGrpc();
    server = await startServer(dir);
    off = await startServer(dir, { socketPath: dir.join('off.sock'), dbPath: ':memory:', reflection: false });
  });

  after(async () => {
    await server?.close();
    await off?.close();
    dir.remove();
  });

  it('lists DeviceManagerService, not the mapper-side service of the same proto (nor itself, unlike Go)', async () => {
    const r = await reflect(server.socketPath);
    assert.deepEqual(r['services'], ['v1beta1.DeviceManagerService']);
  });

  it("describes DeviceManagerService's methods and the upstream field numbers and types (api_version as written)", async () => {
    const r = await reflect(server.socketPath, 'v1beta1.DeviceManagerService');
    const files = r['symbols']['v1beta1.DeviceManagerService']['files'] as Json[];
    assert.ok(files?.length, JSON.stringify(r));
    const api = files.find((f) => f['package'] === 'v1beta1')!;
    assert.ok(api, JSON.stringify(files.map((f) => f['name'])));
    assert.deepEqual(api['services']['DeviceManagerService'], [
      { name: 'MapperRegister', input: '.v1beta1.MapperRegisterRequest', output: '.v1beta1.MapperRegisterResponse' },
      { name: 'ReportDeviceStatus', input: '.v1beta1.ReportDeviceStatusRequest', output: '.v1beta1.ReportDeviceStatusResponse' },
      { name: 'ReportDeviceStates', input: '.v1beta1.ReportDeviceStatesRequest', output: '.v1beta1.ReportDeviceStatesResponse' },
    ]);
    const fields = (msg: string): [string, number, number][] => (api['messages'][msg] as Json[]).map((f) => [f['name'], f['number'], f['type']]);
    assert.deepEqual(fields('MapperInfo'), [
      ['name', 1, TYPE_STRING],
      ['version', 2, TYPE_STRING],
      ['api_version', 3, TYPE_STRING],
      ['protocol', 4, TYPE_STRING],
      ['address', 5, TYPE_BYTES],
      ['state', 6, TYPE_STRING],
    ]);
    assert.deepEqual(fields('MapperRegisterRequest'), [
      ['withData', 1, TYPE_BOOL],
      ['mapper', 2, TYPE_MESSAGE],
    ]);
    assert.deepEqual(fields('MapperRegisterResponse').map(([n, no]) => [n, no]), [
      ['modelList', 1],
      ['deviceList', 2],
    ]);
  });

  it('the files it returns link in a protobuf DescriptorPool: dependencies declared, google.protobuf.Any resolves, map entries named as protoc names them', async () => {
    const r = await reflect(server.socketPath, 'v1beta1.DeviceManagerService');
    assert.equal(r['pool']?.['error'], undefined, JSON.stringify(r['pool']));
    assert.equal(r['pool']['CustomizedValue.DataEntry.value'], 'google.protobuf.Any');
    const api = (r['symbols']['v1beta1.DeviceManagerService']['files'] as Json[]).find((f) => f['package'] === 'v1beta1')!;
    const any = (r['symbols']['v1beta1.DeviceManagerService']['files'] as Json[]).find((f) => f['package'] === 'google.protobuf')!;
    assert.ok(any, 'the file of google.protobuf.Any is sent along');
    assert.deepEqual(api['dependencies'], [any['name']]);
  });

  it('answers NOT_FOUND for a symbol it does not serve', async () => {
    const r = await reflect(server.socketPath, 'v1beta1.NoSuchService');
    assert.equal(r['symbols']['v1beta1.NoSuchService']['error']['code'], 5, JSON.stringify(r));
  });

  it('reflection: false (serve --no-reflection) leaves it out: the stream fails UNIMPLEMENTED', async () => {
    const r = await client(off.socketPath, []);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /UNIMPLEMENTED/);
  });
});
