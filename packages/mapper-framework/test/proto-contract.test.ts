// SPDX-License-Identifier: Apache-2.0
// The DMI proto is the wire contract with edgecore: these tests pin every field against the
// upstream v1beta1 table (upstream-kubeedge.md §2.4) and fail when src/generated is stale.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { FileDescriptorSet, FieldDescriptorProto_Label, FieldDescriptorProto_Type } from 'ts-proto-descriptors';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(pkg, 'package.json'));

// message → "name:number:type" (type = scalar name, message name, or map<k,v>; "repeated " prefix).
const UPSTREAM: Record<string, string[]> = {
  MapperRegisterRequest: ['withData:1:bool', 'mapper:2:MapperInfo'],
  MapperRegisterResponse: ['modelList:1:repeated DeviceModel', 'deviceList:2:repeated Device'],
  DeviceModel: ['name:1:string', 'spec:2:DeviceModelSpec', 'namespace:3:string'],
  DeviceModelSpec: ['properties:1:repeated ModelProperty', 'commands:2:repeated DeviceCommand'],
  ModelProperty: ['name:1:string', 'description:2:string', 'type:3:string', 'accessMode:4:string', 'minimum:5:string', 'maximum:6:string', 'unit:7:string'],
  DeviceCommand: ['name:1:string', 'url:2:string', 'method:3:string', 'status_code:4:repeated string', 'parameters:5:repeated string', 'response:6:bytes'],
  Device: ['name:1:string', 'spec:2:DeviceSpec', 'status:3:DeviceStatus', 'namespace:4:string'],
  DeviceSpec: ['deviceModelReference:1:string', 'protocol:2:ProtocolConfig', 'properties:3:repeated DeviceProperty', 'methods:4:repeated DeviceMethod'],
  DeviceMethod: ['name:1:string', 'description:2:string', 'propertyNames:3:repeated string'],
  DeviceProperty: ['name:1:string', 'desired:2:TwinProperty', 'visitors:3:VisitorConfig', 'reportCycle:4:int64', 'collectCycle:5:int64', 'reportToCloud:6:bool', 'pushMethod:7:PushMethod'],
  ProtocolConfig: ['protocolName:1:string', 'configData:2:CustomizedValue'],
  VisitorConfig: ['protocolName:1:string', 'configData:2:CustomizedValue'],
  CustomizedValue: ['data:1:map<string,google.protobuf.Any>'],
  PushMethod: ['http:1:PushMethodHTTP', 'mqtt:2:PushMethodMQTT', 'otel:4:PushMethodOTEL', 'dbMethod:3:DBMethod', 'anomalyDetection:5:AnomalyDetection'],
  PushMethodHTTP: ['hostname:1:string', 'port:2:int64', 'requestpath:3:string', 'timeout:4:int64'],
  PushMethodMQTT: ['address:1:string', 'topic:2:string', 'qos:3:int32', 'retained:4:bool'],
  PushMethodOTEL: ['endpointURL:1:string'],
  DBMethod: ['influxdb2:1:DBMethodInfluxdb2', 'redis:2:DBMethodRedis', 'tdengine:3:DBMethodTDEngine', 'mysql:4:DBMethodMySQL'],
  DBMethodInfluxdb2: ['influxdb2ClientConfig:1:Influxdb2ClientConfig', 'influxdb2DataConfig:2:Influxdb2DataConfig'],
  Influxdb2DataConfig: ['measurement:1:string', 'tag:2:map<string,string>', 'fieldKey:3:string'],
  Influxdb2ClientConfig: ['url:1:string', 'org:2:string', 'bucket:3:string'],
  DBMethodRedis: ['redisClientConfig:1:RedisClientConfig'],
  RedisClientConfig: ['addr:1:string', 'db:2:int32', 'poolsize:3:int32', 'minIdleConns:4:int32'],
  DBMethodTDEngine: ['tdEngineClientConfig:1:TDEngineClientConfig'],
  TDEngineClientConfig: ['addr:1:string', 'dbname:2:string'],
  DBMethodMySQL: ['mysqlClientConfig:1:MySQLClientConfig'],
  MySQLClientConfig: ['addr:1:string', 'database:2:string', 'userName:3:string'],
  DBMethodOTEL: ['otelExporterConfig:1:OTELExporterConfig'],
  OTELExporterConfig: ['endpointURL:1:string'],
  AnomalyDetection: ['data:1:map<string,google.protobuf.Any>'],
  MapperInfo: ['name:1:string', 'version:2:string', 'api_version:3:string', 'protocol:4:string', 'address:5:bytes', 'state:6:string'],
  ReportDeviceStatusRequest: ['deviceName:1:string', 'reportedDevice:2:DeviceStatus', 'deviceNamespace:3:string'],
  ReportDeviceStatesRequest: ['deviceName:1:string', 'deviceNamespace:2:string', 'state:3:string'],
  DeviceStatus: ['twins:1:repeated Twin', 'reportToCloud:2:bool', 'reportCycle:3:int64'],
  Twin: ['propertyName:1:string', 'observedDesired:2:TwinProperty', 'reported:3:TwinProperty'],
  TwinProperty: ['value:1:string', 'metadata:2:map<string,string>'],
  ReportDeviceStatusResponse: [],
  ReportDeviceStatesResponse: [],
  RegisterDeviceRequest: ['device:1:Device'],
  RegisterDeviceResponse: ['deviceName:1:string', 'deviceNamespace:2:string'],
  CreateDeviceModelRequest: ['model:1:DeviceModel'],
  CreateDeviceModelResponse: ['deviceModelName:1:string', 'deviceModelNamespace:2:string'],
  RemoveDeviceRequest: ['deviceName:1:string', 'deviceNamespace:2:string'],
  RemoveDeviceResponse: [],
  RemoveDeviceModelRequest: ['modelName:1:string', 'modelNamespace:2:string'],
  RemoveDeviceModelResponse: [],
  UpdateDeviceRequest: ['device:1:Device'],
  UpdateDeviceResponse: [],
  UpdateDeviceModelRequest: ['model:1:DeviceModel'],
  UpdateDeviceModelResponse: [],
  GetDeviceRequest: ['deviceName:1:string', 'deviceNamespace:2:string'],
  GetDeviceResponse: ['device:1:Device'],
};

const SERVICES: Record<string, string[]> = {
  DeviceManagerService: ['MapperRegister(MapperRegisterRequest)→MapperRegisterResponse', 'ReportDeviceStatus(ReportDeviceStatusRequest)→ReportDeviceStatusResponse', 'ReportDeviceStates(ReportDeviceStatesRequest)→ReportDeviceStatesResponse'],
  DeviceMapperService: [
    'RegisterDevice(RegisterDeviceRequest)→RegisterDeviceResponse',
    'RemoveDevice(RemoveDeviceRequest)→RemoveDeviceResponse',
    'UpdateDevice(UpdateDeviceRequest)→UpdateDeviceResponse',
    'CreateDeviceModel(CreateDeviceModelRequest)→CreateDeviceModelResponse',
    'RemoveDeviceModel(RemoveDeviceModelRequest)→RemoveDeviceModelResponse',
    'UpdateDeviceModel(UpdateDeviceModelRequest)→UpdateDeviceModelResponse',
    'GetDevice(GetDeviceRequest)→GetDeviceResponse',
  ],
};

function protoc(args: string[]): void {
  const protocDir = dirname(require.resolve('protoc/package.json'));
  const r = spawnSync(process.execPath, [join(protocDir, 'protoc.cjs'), `-I${join(pkg, 'proto')}`, `-I${join(protocDir, 'include')}`, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

const SCALARS: Record<number, string> = {
  [FieldDescriptorProto_Type.TYPE_STRING]: 'string',
  [FieldDescriptorProto_Type.TYPE_BOOL]: 'bool',
  [FieldDescriptorProto_Type.TYPE_INT64]: 'int64',
  [FieldDescriptorProto_Type.TYPE_INT32]: 'int32',
  [FieldDescriptorProto_Type.TYPE_BYTES]: 'bytes',
};

describe('DMI v1beta1 proto contract', () => {
  const dir = mkdtempSync(join(tmpdir(), 'proto-'));
  protoc([`--descriptor_set_out=${join(dir, 'set.pb')}`, 'v1beta1/api.proto']);
  const set = FileDescriptorSet.decode(readFileSync(join(dir, 'set.pb')));
  rmSync(dir, { recursive: true, force: true });
  const file = set.file[0]!;

  it('is package v1beta1, importing only google/protobuf/any.proto', () => {
    assert.equal(file.package, 'v1beta1');
    assert.deepEqual(file.dependency, ['google/protobuf/any.proto']);
    assert.equal(file.syntax, 'proto3');
  });

  it('has every upstream message with identical field names, numbers and types, and nothing else', () => {
    const byName = new Map(file.messageType.map((m) => [m.name, m]));
    assert.deepEqual([...byName.keys()].sort(), Object.keys(UPSTREAM).sort());
    for (const [msgName, expected] of Object.entries(UPSTREAM)) {
      const msg = byName.get(msgName)!;
      const maps = new Map(msg.nestedType.filter((n) => n.options?.mapEntry).map((n) => [n.name, n]));
      const actual = msg.field.map((f) => {
        let type = SCALARS[f.type] ?? f.typeName.replace(/^\.(v1beta1\.)?/, '');
        const entry = maps.get(f.typeName.split('.').at(-1) ?? '');
        if (entry) {
          const [k, v] = entry.field;
          type = `map<${SCALARS[k!.type]},${SCALARS[v!.type] ?? v!.typeName.replace(/^\./, '')}>`;
        } else if (f.label === FieldDescriptorProto_Label.LABEL_REPEATED) type = `repeated ${type}`;
        return `${f.name}:${f.number}:${type}`;
      });
      assert.deepEqual(actual, expected, `message ${msgName}`);
    }
  });

  it('has both services with every RPC, unary', () => {
    assert.deepEqual(Object.fromEntries(file.service.map((s) => [s.name, s.method.map((m) => {
      assert.ok(!m.clientStreaming && !m.serverStreaming, `${s.name}.${m.name} must be unary`);
      return `${m.name}(${m.inputType.replace('.v1beta1.', '')})→${m.outputType.replace('.v1beta1.', '')}`;
    })])), SERVICES);
  });

  it('src/generated is what `npm run proto` produces from it (regenerate and commit when this fails)', () => {
    const out = mkdtempSync(join(tmpdir(), 'gen-'));
    try {
      const r = spawnSync(process.execPath, [join(pkg, 'scripts', 'gen-proto.mjs'), '--out', out], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const list = (root: string): string[] =>
        readdirSync(root).flatMap((n) => (statSync(join(root, n)).isDirectory() ? list(join(root, n)).map((x) => join(n, x)) : [n])).sort();
      const committed = join(pkg, 'src', 'generated');
      assert.deepEqual(list(out), list(committed), 'same generated files');
      for (const f of list(out)) assert.equal(readFileSync(join(committed, f), 'utf8'), readFileSync(join(out, f), 'utf8'), `src/generated/${relative('.', f)} is stale`);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
