// SPDX-License-Identifier: Apache-2.0
// CRD YAML → objects → proto (as edgecore converts them) → wire → the mapper's model:
// parseCrdYaml must report problems, never throw; the converters may refuse with a
// MapperError only; whatever converts must survive a protobuf round trip and deviceFromProto.
import fc from 'fast-check';
import { Device, DeviceModel, deviceFromProto, deviceModelToProto, deviceToProto, modelFromProto, parseCrdYaml, type CrdObject } from '@mapperkit/framework/dmi';
import { aliasExpansion, anyValue, configMap, deepNesting, mutateText, nesting, toYaml, yamlTokenSoup } from '../arbs.js';
import { deviceYaml, modelYaml } from '../../fleet.js';
import { type FuzzTarget, fuzzProperty, refuseCleanly, share, type TargetContext } from '../harness.js';

const API = 'devices.kubeedge.io/v1beta1';

const maybe = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | unknown> => fc.oneof({ weight: 4, arbitrary: a }, { weight: 1, arbitrary: anyValue });

const visitorData = configMap(['register', 'offset', 'limit', 'dataType', 'scale', 'isSwap', 'isRegisterSwap', 'byteOrder', 'bitIndex', 'characteristicUUID', 'dataConverter']);
const pushMethod = fc.record(
  {
    mqtt: maybe(fc.record({ address: maybe(fc.constantFrom('tcp://127.0.0.1:1883', '127.0.0.1:1883', '')), topic: maybe(fc.string({ maxLength: 8 })), qos: maybe(fc.integer({ min: -1, max: 3 })), retained: maybe(fc.boolean()) })),
    http: maybe(fc.record({ hostName: maybe(fc.constantFrom('http://127.0.0.1', '', 'x')), port: maybe(fc.integer({ min: -1, max: 70_000 })), requestPath: maybe(fc.string({ maxLength: 6 })), timeout: maybe(fc.integer()) })),
    dbMethod: maybe(fc.record({ redis: maybe(fc.record({ redisClientConfig: maybe(fc.record({ addr: maybe(fc.string({ maxLength: 12 })), db: maybe(fc.integer({ min: -2, max: 20 })), poolsize: maybe(fc.nat(50)) })) })) })),
  },
  { requiredKeys: [] },
);
const deviceProperty = fc.record(
  {
    name: maybe(fc.constantFrom('temperature', 'setpoint', 'humidity', '')),
    collectCycle: maybe(fc.oneof(fc.nat(100_000), fc.constantFrom(1e9, 1e15, 3e15, -1, '1000', 1.5))),
    reportCycle: maybe(fc.oneof(fc.nat(100_000), fc.constantFrom(1e9, 3e15, -5))),
    reportToCloud: maybe(fc.boolean()),
    desired: maybe(fc.record({ value: maybe(fc.string({ maxLength: 6 })) })),
    visitors: maybe(fc.record({ protocolName: maybe(fc.constantFrom('modbus', 'x')), configData: maybe(visitorData) })),
    pushMethod: maybe(pushMethod),
  },
  { requiredKeys: [] },
);
const deviceObj = fc.record({
  apiVersion: fc.constant(API),
  kind: fc.constant('Device'),
  metadata: maybe(fc.record({ name: maybe(fc.constantFrom('dev-1', 'dev-2', '')), namespace: maybe(fc.constantFrom('default', 'ns', '')) }, { requiredKeys: [] })),
  spec: maybe(
    fc.record(
      {
        deviceModelRef: maybe(fc.record({ name: maybe(fc.constantFrom('model-1', 'missing')) })),
        protocol: maybe(fc.record({ protocolName: maybe(fc.constantFrom('modbus', '')), configData: maybe(configMap(['ip', 'port', 'slaveID', 'timeout', 'communicateMode', 'macAddress'])) }, { requiredKeys: [] })),
        properties: maybe(fc.array(deviceProperty, { maxLength: 3 })),
        methods: maybe(fc.array(fc.record({ name: maybe(fc.string({ maxLength: 5 })), propertyNames: maybe(fc.array(fc.string({ maxLength: 5 }), { maxLength: 2 })) }), { maxLength: 2 })),
        stateReport: maybe(fc.record({ reportToCloud: maybe(fc.boolean()), reportCycle: maybe(fc.integer()) }, { requiredKeys: [] })),
      },
      { requiredKeys: [] },
    ),
  ),
});
const modelObj = fc.record({
  apiVersion: fc.constant(API),
  kind: fc.constant('DeviceModel'),
  metadata: maybe(fc.record({ name: maybe(fc.constantFrom('model-1', '')), namespace: maybe(fc.constantFrom('default', '')) }, { requiredKeys: [] })),
  spec: maybe(
    fc.record(
      {
        protocol: maybe(fc.constantFrom('modbus', '')),
        protocolConfigData: maybe(configMap(['port', 'timeout'])),
        properties: maybe(
          fc.array(
            fc.record(
              {
                name: maybe(fc.constantFrom('temperature', 'setpoint', 'humidity')),
                type: maybe(fc.constantFrom('INT', 'FLOAT', 'DOUBLE', 'STRING', 'BOOLEAN', 'BYTES', 'STREAM', 'int', 'nonsense')),
                accessMode: maybe(fc.constantFrom('ReadWrite', 'ReadOnly', 'x')),
                minimum: maybe(fc.constantFrom('5', '-1', 'abc', 3)),
                maximum: maybe(fc.constantFrom('35', '1e400')),
                visitors: maybe(fc.record({ protocolName: maybe(fc.constant('modbus')), configData: maybe(visitorData) })),
              },
              { requiredKeys: [] },
            ),
            { maxLength: 3 },
          ),
        ),
      },
      { requiredKeys: [] },
    ),
  ),
});

const validFleet = fc.integer({ min: 1, max: 65_535 }).map((port) => `${modelYaml()}---\n${deviceYaml(0, { ports: [port], cycleMs: 1000, mqttPort: 1883, redisPort: 6379 })}`);

/** YAML texts: structured CRDs, mutated valid ones, token soup, aliases, moderate nesting, raw strings. */
export const crdText: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.array(fc.oneof(deviceObj, modelObj), { minLength: 1, maxLength: 3 }).map(structuredDocs) },
  { weight: 3, arbitrary: fc.tuple(deviceObj, modelObj).map(([d, m]) => structuredDocs([m, d])) },
  { weight: 3, arbitrary: mutateText(validFleet) },
  { weight: 2, arbitrary: yamlTokenSoup },
  { weight: 1, arbitrary: aliasExpansion },
  { weight: 1, arbitrary: nesting(120) },
  { weight: 1, arbitrary: deepNesting },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
);

function structuredDocs(objs: readonly unknown[]): string {
  return objs.map(toYaml).join('---\n');
}

/** One CRD text through every conversion step; throws on anything but a clean refusal. */
export function convertCrdText(text: string, stats: Record<string, number>): void {
  const docs = parseCrdYaml(text, 'fuzz.yaml'); // documented never to throw
  for (const p of docs.problems) if (p.kind !== 'InvalidConfig') throw new Error(`parseCrdYaml problem of kind ${p.kind}`);
  stats['documents'] = (stats['documents'] ?? 0) + docs.devices.length + docs.models.length;
  const models = new Map<string, CrdObject>();
  for (const m of docs.models) {
    try {
      const proto = deviceModelToProto(m);
      const back = DeviceModel.decode(DeviceModel.encode(proto).finish());
      modelFromProto(back);
      models.set(proto.name, m);
      stats['models converted'] = (stats['models converted'] ?? 0) + 1;
    } catch (err) {
      refuseCleanly(err, stats);
    }
  }
  for (const d of docs.devices) {
    try {
      const ref = ((d['spec'] as Record<string, unknown> | undefined)?.['deviceModelRef'] as Record<string, unknown> | undefined)?.['name'];
      const proto = deviceToProto(d, typeof ref === 'string' ? models.get(ref) : undefined);
      const bytes = Device.encode(proto).finish();
      const back = Device.decode(bytes);
      if (back.name !== proto.name) throw new Error(`protobuf round trip changed the name ${JSON.stringify(proto.name)} → ${JSON.stringify(back.name)}`);
      deviceFromProto(back);
      stats['devices converted'] = (stats['devices converted'] ?? 0) + 1;
    } catch (err) {
      refuseCleanly(err, stats);
    }
  }
}

export const crdYamlTarget: FuzzTarget = {
  name: 'crd-yaml',
  description: 'parseCrdYaml on structured, mutated, token-soup, alias and nested YAML; deviceModelToProto / deviceToProto (with model-default merge); protobuf round trip; deviceFromProto / modelFromProto',
  async run(ctx: TargetContext) {
    return [await fuzzProperty('CRD YAML → proto → wire → model', crdText, (t) => convertCrdText(t, ctx.stats), { ...ctx, runs: share(ctx.runs, 1, 0) })];
  },
};
