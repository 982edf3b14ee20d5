// SPDX-License-Identifier: Apache-2.0
// The Any decoder (google.protobuf wrappers packed in Any, as edgecore sends configData) and
// what the mapper does with a whole Device off the wire: protobuf decode → deviceFromProto /
// modelFromProto. A bad value must be a MapperError (a skipped key), never anything else.
import fc from 'fast-check';
import { type Any, decodeAny, decodeCustomizedValue, Device, DeviceModel, deviceFromProto, encodeAnyAs, modelFromProto, type WrapperKind } from '@mapperkit/framework/dmi';
import { mutateBytes } from '../arbs.js';
import { type FuzzTarget, fuzzProperty, refuseCleanly, share } from '../harness.js';

const KINDS: readonly WrapperKind[] = ['String', 'Bool', 'Int32', 'Int64', 'UInt32', 'UInt64', 'Float', 'Double'];
const PREFIX = 'type.googleapis.com/google.protobuf.';

const validAny: fc.Arbitrary<Any> = fc.oneof(
  fc.string().map((s) => encodeAnyAs('String', s)),
  fc.boolean().map((b) => encodeAnyAs('Bool', b)),
  fc.integer().map((n) => encodeAnyAs('Int32', n)),
  fc.nat().map((n) => encodeAnyAs('UInt32', n)),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((n) => encodeAnyAs('Int64', n)),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((n) => encodeAnyAs('UInt64', n)),
  fc.float().map((n) => encodeAnyAs('Float', n)),
  fc.double().map((n) => encodeAnyAs('Double', n)),
);

const typeUrl = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...KINDS.map((k) => `${PREFIX}${k}Value`)) },
  { weight: 1, arbitrary: fc.constantFrom('', '/', 'google.protobuf.StringValue', `${PREFIX}Any`, `${PREFIX}BytesValue`, `${PREFIX}Struct`, 'x/y/z/google.protobuf.BoolValue') },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
);

/** Any with a random type URL and random or mutated-valid payload. */
const fuzzAny: fc.Arbitrary<Any> = fc.oneof(
  fc.record({ typeUrl, value: fc.uint8Array({ maxLength: 48 }).map((b) => Buffer.from(b)) }),
  fc.tuple(typeUrl, mutateBytes(validAny.map((a) => a.value))).map(([u, v]) => ({ typeUrl: u, value: Buffer.from(v) })),
  mutateBytes(validAny.map((a) => a.value)).chain((v) => validAny.map((a) => ({ typeUrl: a.typeUrl, value: Buffer.from(v) }))),
);

const customized = fc.dictionary(fc.string({ maxLength: 10 }), fc.oneof(validAny, fuzzAny), { maxKeys: 6 }).map((data) => ({ data }));

const property = fc.record(
  {
    name: fc.oneof(fc.constantFrom('temperature', 'setpoint', ''), fc.string({ maxLength: 8 })),
    desired: fc.option(fc.record({ value: fc.string({ maxLength: 8 }), metadata: fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 }), { maxKeys: 2 }) }), { nil: undefined }),
    visitors: fc.option(fc.record({ protocolName: fc.constantFrom('modbus', '', 'x'), configData: fc.option(customized, { nil: undefined }) }), { nil: undefined }),
    reportCycle: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
    collectCycle: fc.oneof(fc.constantFrom(0n, 1000n, 1_000_000_000n, 10n ** 15n), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })),
    reportToCloud: fc.boolean(),
  },
  { requiredKeys: ['name', 'reportCycle', 'collectCycle', 'reportToCloud'] },
);

const device: fc.Arbitrary<Device> = fc.record({
  name: fc.oneof(fc.constantFrom('dev-1', ''), fc.string({ maxLength: 10 })),
  namespace: fc.oneof(fc.constantFrom('default', ''), fc.string({ maxLength: 6 })),
  spec: fc.option(
    fc.record({
      deviceModelReference: fc.string({ maxLength: 8 }),
      protocol: fc.option(fc.record({ protocolName: fc.constantFrom('modbus', ''), configData: fc.option(customized, { nil: undefined }) }), { nil: undefined }),
      properties: fc.array(property, { maxLength: 4 }),
      methods: fc.array(fc.record({ name: fc.string({ maxLength: 5 }), description: fc.string({ maxLength: 5 }), propertyNames: fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }) }), { maxLength: 2 }),
    }),
    { nil: undefined },
  ),
  status: fc.option(fc.record({ twins: fc.constant([]), reportToCloud: fc.boolean(), reportCycle: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }) }), { nil: undefined }),
}).map((d) => Device.fromPartial(d as never));

const model: fc.Arbitrary<DeviceModel> = fc.record({
  name: fc.string({ maxLength: 8 }),
  namespace: fc.string({ maxLength: 6 }),
  spec: fc.option(
    fc.record({
      properties: fc.array(
        fc.record({
          name: fc.string({ maxLength: 6 }),
          description: fc.string({ maxLength: 6 }),
          type: fc.oneof(fc.constantFrom('INT', 'FLOAT', 'DOUBLE', 'STRING', 'BOOLEAN', 'BYTES', 'STREAM', 'integer', 'bool', ' int '), fc.string({ maxLength: 6 })),
          accessMode: fc.oneof(fc.constantFrom('ReadWrite', 'ReadOnly', 'readwrite', ''), fc.string({ maxLength: 6 })),
          minimum: fc.oneof(fc.constantFrom('', '5', '-1e400', 'NaN', ' '), fc.string({ maxLength: 6 })),
          maximum: fc.oneof(fc.constantFrom('', '35', 'Infinity'), fc.string({ maxLength: 6 })),
          unit: fc.string({ maxLength: 4 }),
        }),
        { maxLength: 4 },
      ),
    }),
    { nil: undefined },
  ),
}).map((m) => DeviceModel.fromPartial(m as never));

const isConfigValue = (v: unknown): boolean => typeof v === 'string' || typeof v === 'boolean' || typeof v === 'number';

export const anyDecoderTarget: FuzzTarget = {
  name: 'any-decoder',
  description: 'decodeAny / decodeCustomizedValue on random and mutated Any payloads; Device and DeviceModel protobuf bytes (random, mutated) → deviceFromProto / modelFromProto; wrapper round trips',
  async run(ctx) {
    const n = 5;
    const results = [];
    results.push(
      await fuzzProperty(
        'decodeAny(random/mutated Any)',
        fuzzAny,
        (a) => {
          try {
            const v = decodeAny(a);
            if (!isConfigValue(v)) throw new Error(`decodeAny returned ${typeof v}`);
            ctx.stats['decoded'] = (ctx.stats['decoded'] ?? 0) + 1;
          } catch (err) {
            refuseCleanly(err, ctx.stats);
          }
        },
        { ...ctx, runs: share(ctx.runs, n, 0) },
      ),
    );
    results.push(
      await fuzzProperty(
        'wrapper round trip (encodeAnyAs → decodeAny)',
        fc.oneof(
          fc.string().map((v) => ['String', v] as const),
          fc.boolean().map((v) => ['Bool', v] as const),
          fc.integer().map((v) => ['Int32', v] as const),
          fc.nat().map((v) => ['UInt32', v] as const),
          fc.maxSafeInteger().map((v) => ['Int64', v] as const),
          fc.maxSafeNat().map((v) => ['UInt64', v] as const),
          fc.double({ noNaN: true }).map((v) => ['Double', v] as const),
          fc.float({ noNaN: true, noDefaultInfinity: true }).map((v) => ['Float', v] as const),
        ),
        ([kind, v]) => {
          const back = decodeAny(encodeAnyAs(kind as WrapperKind, v));
          if (kind === 'Float') return Math.fround(back as number) === Math.fround(v as number);
          return Object.is(back, v) || back === v;
        },
        { ...ctx, runs: share(ctx.runs, n, 1) },
      ),
    );
    results.push(
      await fuzzProperty(
        'decodeCustomizedValue(map of Any)',
        customized,
        (cv) => {
          const skipped: string[] = [];
          const out = decodeCustomizedValue(cv, (key, err) => {
            if (err.kind !== 'InvalidConfig') throw new Error(`skip of ${key} with kind ${err.kind}`);
            skipped.push(key);
          });
          // Every key is either decoded or reported skipped, never lost.
          for (const k of Object.keys(cv.data)) {
            if (!Object.hasOwn(out, k) && !skipped.includes(k)) throw new Error(`configData key ${JSON.stringify(k)} neither decoded nor reported skipped`);
          }
        },
        { ...ctx, runs: share(ctx.runs, n, 2) },
      ),
    );
    results.push(
      await fuzzProperty(
        'Device bytes (random / mutated) → deviceFromProto',
        fc.oneof(fc.uint8Array({ maxLength: 200 }), mutateBytes(device.map((d) => Device.encode(d).finish()))),
        (bytes) => {
          let d: Device;
          try {
            d = Device.decode(bytes);
          } catch {
            // Undecodable bytes never reach the runtime: grpc-js answers INTERNAL (seen in the soak).
            ctx.stats['undecodable'] = (ctx.stats['undecodable'] ?? 0) + 1;
            return;
          }
          try {
            const r = deviceFromProto(d);
            for (const p of r.problems) if (p.kind !== 'InvalidConfig') throw new Error(`problem of kind ${p.kind}`);
            for (const p of r.value.properties) {
              if (!(p.collectCycle > 0 && p.reportCycle > 0)) throw new Error(`property ${p.name}: cycles ${p.collectCycle}/${p.reportCycle} not positive`);
            }
          } catch (err) {
            refuseCleanly(err, ctx.stats);
          }
        },
        { ...ctx, runs: share(ctx.runs, n, 3) },
      ),
    );
    results.push(
      await fuzzProperty(
        'DeviceModel bytes (random / mutated) → modelFromProto',
        fc.oneof(fc.uint8Array({ maxLength: 200 }), mutateBytes(model.map((m) => DeviceModel.encode(m).finish()))),
        (bytes) => {
          let m: DeviceModel;
          try {
            m = DeviceModel.decode(bytes);
          } catch {
            ctx.stats['undecodable'] = (ctx.stats['undecodable'] ?? 0) + 1;
            return;
          }
          try {
            modelFromProto(m);
          } catch (err) {
            refuseCleanly(err, ctx.stats);
          }
        },
        { ...ctx, runs: share(ctx.runs, n, 4) },
      ),
    );
    return results;
  },
};
