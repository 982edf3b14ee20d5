// SPDX-License-Identifier: Apache-2.0
// gRPC server reflection on the mapper's socket (the upstream mapper registers it: upstream-kubeedge.md
// §2.1), read by an independent client: Debian's Python grpcio with stubs compiled from the reflection
// API proto, decoding the descriptors with protobuf's own descriptor_pb2. Expected field numbers and types
// are upstream's v1beta1 table, not read from our proto. Reflection is loaded on the first request only.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type ClientDuplexStream, credentials, makeGenericClientConstructor, type ServiceError, status } from '@grpc/grpc-js';
import { createLogger, createMapper, type MapperHandle } from '@mapperkit/framework';
import { TestEdgecore } from '@mapperkit/framework/testing';
import { fakeDriver, mapperConfigYaml, newWorld, tempDir } from './helpers.ts';
import { assertPythonGrpc, type ReflectionAnswer as Json, reflect } from './python-reflection.ts';

const require = createRequire(import.meta.url);
// descriptor.proto FieldDescriptorProto.Type values.
const TYPE_STRING = 9;
const TYPE_MESSAGE = 11;

const reflectionLoaded = (): boolean => Object.keys(require.cache).some((k) => k.includes('/@grpc/reflection/'));

describe("gRPC server reflection on the mapper's socket, read by Python grpcio", () => {
  const { dir, cleanup } = tempDir('mk-refl-');
  let ec: TestEdgecore;
  let mapper: MapperHandle;
  const socket = join(dir, 'mapper.sock');

  before(async () => {
    assertPythonGrpc();
    ec = await TestEdgecore.start({ socketPath: join(dir, 'dmi.sock'), devices: [], models: [] });
    mapper = await createMapper({ driver: fakeDriver(newWorld()), config: mapperConfigYaml(dir), logger: createLogger({ level: 'silent' }) });
    await mapper.whenRegistered();
  });

  after(async () => {
    await mapper?.stop();
    await ec?.close();
    cleanup();
  });

  it('is loaded on the first request, not at start; streams opened while it loads are answered', async () => {
    assert.equal(reflectionLoaded(), false, '@grpc/reflection loaded before any reflection request');
    const [a, b] = await Promise.all([reflect(socket), reflect(socket, 'v1beta1.DeviceMapperService')]);
    assert.equal(reflectionLoaded(), true);
    for (const r of [a, b]) assert.deepEqual(r['services'], ['v1beta1.DeviceMapperService']);
    assert.ok(b['symbols']['v1beta1.DeviceMapperService']['files']?.length, JSON.stringify(b));
  });

  it("describes DeviceMapperService's seven methods and upstream's field numbers and types", async () => {
    const r = await reflect(socket, 'v1beta1.DeviceMapperService');
    const files = r['symbols']['v1beta1.DeviceMapperService']['files'] as Json[];
    const api = files.find((f) => f['package'] === 'v1beta1')!;
    assert.ok(api, JSON.stringify(files.map((f) => f['name'])));
    const rpc = (name: string): Json => ({ name, input: `.v1beta1.${name}Request`, output: `.v1beta1.${name}Response` });
    assert.deepEqual(api['services']['DeviceMapperService'], ['RegisterDevice', 'RemoveDevice', 'UpdateDevice', 'CreateDeviceModel', 'RemoveDeviceModel', 'UpdateDeviceModel', 'GetDevice'].map(rpc));
    const fields = (msg: string): [string, number, number][] => (api['messages'][msg] as Json[]).map((f) => [f['name'], f['number'], f['type']]);
    assert.deepEqual(fields('RegisterDeviceRequest'), [['device', 1, TYPE_MESSAGE]]);
    assert.deepEqual(fields('RegisterDeviceResponse'), [
      ['deviceName', 1, TYPE_STRING],
      ['deviceNamespace', 2, TYPE_STRING],
    ]);
    assert.deepEqual(fields('RemoveDeviceRequest'), [
      ['deviceName', 1, TYPE_STRING],
      ['deviceNamespace', 2, TYPE_STRING],
    ]);
    // The files link (as grpcurl needs them): google.protobuf.Any resolves.
    assert.equal(r['pool']?.['error'], undefined, JSON.stringify(r['pool']));
    assert.equal(r['pool']['CustomizedValue.DataEntry.value'], 'google.protobuf.Any');
  });

  it('answers NOT_FOUND for a symbol it does not serve', async () => {
    const r = await reflect(socket, 'v1beta1.NoSuchService');
    assert.equal(r['symbols']['v1beta1.NoSuchService']['error']['code'], 5, JSON.stringify(r));
  });

  it('answers a malformed reflection request INVALID_ARGUMENT, and the mapper keeps serving', async () => {
    const Raw = makeGenericClientConstructor(
      { info: { path: '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo', requestStream: true, responseStream: true, requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b } },
      'Raw',
    );
    const raw = new Raw(`unix:${socket}`, credentials.createInsecure()) as unknown as { info(): ClientDuplexStream<Buffer, Buffer>; close(): void };
    const stream = raw.info();
    const failure = new Promise<ServiceError>((resolve, reject) => {
      stream.on('error', resolve);
      stream.on('status', (st: { code: number }) => st.code === status.OK && reject(new Error('the malformed request was answered OK')));
      setTimeout(() => reject(new Error('no answer within 10 s')), 10_000).unref();
    });
    stream.on('data', () => undefined);
    // Tag 0x0f: field 1 with wire type 7, which does not exist.
    stream.write(Buffer.from([0x0f]));
    stream.end();
    const err = await failure;
    raw.close();
    assert.equal(err.code, status.INVALID_ARGUMENT);
    assert.match(err.details, /malformed reflection request/);
    const r = await reflect(socket);
    assert.deepEqual(r['services'], ['v1beta1.DeviceMapperService']);
  });
});
