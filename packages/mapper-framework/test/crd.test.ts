// SPDX-License-Identifier: Apache-2.0
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MapperError } from '@mapperkit/framework';
import { decodeCustomizedValue, deviceFromProto, deviceModelToProto, deviceToProto, modelFromProto, parseCrdYaml } from '@mapperkit/framework/dmi';

const MODEL = `
apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata: { name: thermo-model, namespace: plant }
spec:
  protocol: modbus
  protocolConfigData: { communicateMode: TCP, port: 502, timeout: 1000 }
  properties:
    - name: temp
      type: FLOAT
      accessMode: ReadOnly
      minimum: "-40"
      maximum: "125"
      unit: degC
      visitors:
        protocolName: modbus
        configData: { register: HoldingRegister, offset: 0, limit: 1, scale: 0.1 }
    - name: fan
      type: BOOLEAN
      accessMode: ReadWrite
`;

const DEVICE = `
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: { name: thermo-1, namespace: plant }
spec:
  deviceModelRef: { name: thermo-model }
  protocol:
    protocolName: modbus
    configData: { ip: 10.0.0.5, port: 5502 }
  stateReport: { reportToCloud: true, reportCycle: 5000 }
  methods:
    - name: switch
      description: fan on/off
      propertyNames: [fan]
  properties:
    - name: temp
      collectCycle: 2000
      reportCycle: 4000
      reportToCloud: true
      visitors:
        protocolName: modbus
        configData: { offset: 7 }
      pushMethod:
        mqtt: { address: "tcp://127.0.0.1:1883", topic: temp, qos: 1, retained: true }
        dbMethod:
          redis:
            redisClientConfig: { addr: "127.0.0.1:6379", db: 1, poolsize: 10, minIdleConns: 2 }
          TDEngine:
            TDEngineClientConfig: { addr: "127.0.0.1:6041", dbName: plant }
    - name: fan
      desired: { value: "true" }
      visitors:
        protocolName: modbus
        configData: { register: CoilRegister, offset: 3 }
      pushMethod:
        http: { hostName: "http://127.0.0.1", port: 8080, requestPath: /data, timeout: 500 }
`;

describe('CRD → DMI proto conversion (as edgecore does it)', () => {
  const docs = parseCrdYaml(`${MODEL}\n---\n${DEVICE}`, 'plant.yaml');
  const model = docs.models[0]!;
  const device = docs.devices[0]!;

  it('splits multi-document YAML by kind', () => {
    assert.equal(docs.models.length, 1);
    assert.equal(docs.devices.length, 1);
    assert.equal(docs.problems.length, 0);
  });

  it('reports other kinds and broken documents without failing the rest', () => {
    const d = parseCrdYaml('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n: : bad\n---\n' + MODEL, 'mixed.yaml');
    assert.equal(d.models.length, 1);
    assert.equal(d.problems.length, 2);
    assert.match(d.problems[0]!.message, /mixed\.yaml document 1: v1\/ConfigMap ignored/);
  });

  it('converts a DeviceModel (protocol, protocolConfigData and visitors are not transmitted)', () => {
    const m = deviceModelToProto(model);
    assert.equal(m.name, 'thermo-model');
    assert.equal(m.namespace, 'plant');
    assert.deepEqual(m.spec?.properties[0], { name: 'temp', description: '', type: 'FLOAT', accessMode: 'ReadOnly', minimum: '-40', maximum: '125', unit: 'degC' });
    const spec = modelFromProto(m);
    assert.equal(spec.problems.length, 0);
    assert.deepEqual(spec.value.properties.map((p) => [p.name, p.type, p.accessMode, p.minimum, p.maximum]), [
      ['temp', 'float', 'ReadOnly', -40, 125],
      ['fan', 'boolean', 'ReadWrite', undefined, undefined],
    ]);
  });

  it('merges model defaults under device values: protocol config and per-property visitors (device keys win)', () => {
    const d = deviceToProto(device, model);
    const skip = () => assert.fail('nothing should be skipped');
    assert.deepEqual(decodeCustomizedValue(d.spec?.protocol?.configData, skip), { communicateMode: 'TCP', port: 5502, timeout: 1000, ip: '10.0.0.5' });
    const temp = d.spec!.properties[0]!;
    assert.deepEqual(decodeCustomizedValue(temp.visitors?.configData, skip), { register: 'HoldingRegister', offset: 7, limit: 1, scale: 0.1 });
    const fan = d.spec!.properties[1]!;
    assert.deepEqual(decodeCustomizedValue(fan.visitors?.configData, skip), { register: 'CoilRegister', offset: 3 });
  });

  it('carries cycles, desired values, methods, stateReport and push methods (case-insensitive keys)', () => {
    const d = deviceToProto(device, model);
    const temp = d.spec!.properties[0]!;
    assert.equal(temp.collectCycle, 2000n);
    assert.equal(temp.reportCycle, 4000n);
    assert.equal(temp.reportToCloud, true);
    assert.deepEqual(temp.pushMethod?.mqtt, { address: 'tcp://127.0.0.1:1883', topic: 'temp', qos: 1, retained: true });
    assert.deepEqual(temp.pushMethod?.dbMethod?.redis?.redisClientConfig, { addr: '127.0.0.1:6379', db: 1, poolsize: 10, minIdleConns: 2 });
    assert.deepEqual(temp.pushMethod?.dbMethod?.tdengine?.tdEngineClientConfig, { addr: '127.0.0.1:6041', dbname: 'plant' });
    const fan = d.spec!.properties[1]!;
    assert.equal(fan.desired?.value, 'true');
    assert.deepEqual(fan.pushMethod?.http, { hostname: 'http://127.0.0.1', port: 8080n, requestpath: '/data', timeout: 500n });
    assert.deepEqual(d.spec?.methods, [{ name: 'switch', description: 'fan on/off', propertyNames: ['fan'] }]);
    assert.equal(d.status?.reportToCloud, true);
    assert.equal(d.status?.reportCycle, 5000n);
    assert.equal(d.spec?.deviceModelReference, 'thermo-model');
  });

  it('decodes the proto into the runtime view with defaults (cycle 0 → 1000 ms, namespace)', () => {
    const { value, problems } = deviceFromProto(deviceToProto(device, model));
    assert.equal(problems.length, 0);
    assert.equal(value.id, 'plant/thermo-1');
    assert.equal(value.modelId, 'plant/thermo-model');
    const fan = value.properties.find((p) => p.name === 'fan')!;
    assert.equal(fan.collectCycle, 1000);
    assert.equal(fan.reportCycle, 1000);
    assert.deepEqual(value.stateReport, { reportToCloud: true, reportCycle: 5000 });
  });

  it('takes pre-v1.17 nanosecond cycles for what they are, with a warning', () => {
    const ns = parseCrdYaml(DEVICE.replace('collectCycle: 2000', 'collectCycle: 10000000000')).devices[0]!;
    const { value, problems } = deviceFromProto(deviceToProto(ns, model));
    assert.equal(value.properties[0]!.collectCycle, 10000);
    assert.match(problems[0]!.message, /collectCycle 10000000000 looks like nanoseconds/);
  });

  it('refuses nested configData (edgecore cannot send it) naming device and key', () => {
    const nested = parseCrdYaml(DEVICE.replace('configData: { ip: 10.0.0.5, port: 5502 }', 'configData: { ip: 10.0.0.5, tcp: { port: 5502 } }')).devices[0]!;
    assert.throws(
      () => deviceToProto(nested, model),
      (e: unknown) => e instanceof MapperError && e.kind === 'InvalidConfig' && /Device plant\/thermo-1: protocol\.configData\.tcp: an object cannot be sent/.test(e.message),
    );
  });

  it('reports wrong field types by path', () => {
    const bad = parseCrdYaml(DEVICE.replace('reportToCloud: true\n      visitors', 'reportToCloud: "yes"\n      visitors')).devices[0]!;
    assert.throws(() => deviceToProto(bad, model), /property temp\.reportToCloud: expected true or false/);
    const noName = parseCrdYaml('apiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {}\nspec: {}').devices[0]!;
    assert.throws(() => deviceToProto(noName), /metadata\.name is required/);
  });

  it('flags unknown model property types without dropping the rest of the model', () => {
    const m = deviceModelToProto(parseCrdYaml(MODEL.replace('type: BOOLEAN', 'type: COMPLEX')).models[0]!);
    const { value, problems } = modelFromProto(m);
    assert.deepEqual(value.properties.map((p) => p.name), ['temp']);
    assert.match(problems[0]!.message, /model plant\/thermo-model property fan: unknown type "COMPLEX"/);
  });
});
