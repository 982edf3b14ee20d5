// SPDX-License-Identifier: Apache-2.0
// The BLE data converter: the visitor schema on arbitrary maps (flattened converter keys,
// dataConverter / orderOfOperations / dataWrite as JSON or compact text), then decodeValue on
// random characteristic values and encodeValue on random values, for every model type; the
// text parsers on their own. Only MapperError (or the plain Error the text parsers document,
// which the schema turns into an issue) may come out.
import fc from 'fast-check';
import type { PropertyType, PropertyValue } from '@mapperkit/framework';
import { type BleVisitor, decodeValue, encodeValue, parseByteString, parseOperationsText, upstreamConvert, visitorConfigSchema } from '@mapperkit/mapper-ble';
import { configMap } from '../arbs.js';
import { type FuzzTarget, fuzzProperty, refuseCleanly, share } from '../harness.js';

const TYPES: readonly PropertyType[] = ['int', 'float', 'double', 'string', 'boolean', 'bytes', 'stream'];
const plainError = (e: Error): boolean => e.constructor === Error;

const opsText = fc.oneof(
  fc.array(fc.tuple(fc.constantFrom('Add', 'Subtract', 'Multiply', 'Divide', 'add', 'Mod', ''), fc.oneof(fc.double(), fc.constantFrom(0, -40, 100, 0.01))), { maxLength: 4 }).map((ops) => ops.map(([t, v]) => `${t}:${v}`).join(', ')),
  fc
    .array(fc.record({ operationType: fc.constantFrom('Add', 'Divide', 'Multiply', 'x', 1), operationValue: fc.oneof(fc.double(), fc.constant('3'), fc.constant(null)) }), { maxLength: 3 })
    .map((l) => JSON.stringify(l)),
  fc.string({ maxLength: 30 }),
);
const byteText = fc.oneof(
  fc.array(fc.integer({ min: -2, max: 300 }), { maxLength: 6 }).map((b) => JSON.stringify(b)),
  fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b).toString('base64')),
  fc.uint8Array({ maxLength: 8 }).map((b) => `0x${Buffer.from(b).toString('hex')}`),
  fc.string({ maxLength: 12 }),
);
const dataWrite = fc.oneof(
  fc.dictionary(fc.constantFrom('ON', 'OFF', 'on', '1', '0', 'x', ''), byteText.map((t) => { try { return JSON.parse(t) as unknown; } catch { return t; } }), { maxKeys: 3 }).map((m) => JSON.stringify(m)),
  fc.string({ maxLength: 20 }),
);

/** Mostly valid, sometimes not: `ok` with weight 6, `bad` with weight 1. */
const mostly = <T>(ok: fc.Arbitrary<T>, bad: fc.Arbitrary<unknown>): fc.Arbitrary<T | unknown> => fc.oneof({ weight: 6, arbitrary: ok }, { weight: 1, arbitrary: bad });
const uuid = mostly(fc.constantFrom('2a19', '0x2A19', '00002a19-0000-1000-8000-00805f9b34fb', 'ebe0ccc1-7a0a-4b0c-8a1a-6ff2997da3a6', 'FFE1'), fc.constantFrom('zz', '', 'g000', 42));
const idx = mostly(fc.integer({ min: 0, max: 12 }), fc.constantFrom(-1, 1.5, '1', 100_000));
const shift = mostly(fc.integer({ min: 0, max: 70 }), fc.constantFrom(-1, '2'));
const ops = mostly(opsText, fc.constantFrom('Mod:2', '[{', 'Divide:0', 7));
const base = { characteristicUUID: uuid, serviceUUID: fc.option(mostly(fc.constantFrom('180f', '181a'), fc.constant('x')), { nil: undefined }), mode: fc.option(mostly(fc.constantFrom('auto', 'read', 'notify', 'READ'), fc.constant('push')), { nil: undefined }) };
const drop = (o: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

const visitorMap: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  // A typed decode: dataFormat, byteOrder, offset, maybe operations.
  fc.record({
    ...base,
    dataFormat: mostly(fc.constantFrom('int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float32', 'float64', 'utf8', 'hex', 'UINT16'), fc.constantFrom('int24', '')),
    byteOrder: fc.option(mostly(fc.constantFrom('little', 'big', 'BIG'), fc.constant('LE')), { nil: undefined }),
    offset: fc.option(idx, { nil: undefined }),
    orderOfOperations: fc.option(ops, { nil: undefined }),
    writeWithoutResponse: fc.option(mostly(fc.boolean(), fc.constant('maybe')), { nil: undefined }),
  }).map(drop),
  // Upstream's converter, flattened.
  fc.record({ ...base, startIndex: fc.option(idx, { nil: undefined }), endIndex: fc.option(idx, { nil: undefined }), shiftLeft: fc.option(shift, { nil: undefined }), shiftRight: fc.option(shift, { nil: undefined }), orderOfOperations: fc.option(ops, { nil: undefined }) }).map(drop),
  // Upstream's converter as JSON text (copied from an old CRD).
  fc
    .record({ ...base, conv: fc.record({ startIndex: idx, endIndex: idx, shiftLeft: fc.option(shift, { nil: undefined }), shiftRight: fc.option(shift, { nil: undefined }), orderOfOperations: fc.option(fc.constant([{ operationType: 'Divide', operationValue: 100 }]), { nil: undefined }) }) })
    .map(({ conv, ...rest }) => drop({ ...rest, dataConverter: JSON.stringify(drop(conv)) })),
  // A switch: dataWrite, maybe with a typed format.
  fc.record({ ...base, dataWrite: mostly(dataWrite, fc.constant('{"ON":[256]}')), dataFormat: fc.option(fc.constantFrom('uint8', 'utf8'), { nil: undefined }) }).map(drop),
  // Anything.
  configMap(['characteristicUUID', 'serviceUUID', 'mode', 'startIndex', 'endIndex', 'shiftLeft', 'shiftRight', 'orderOfOperations', 'dataConverter', 'dataFormat', 'byteOrder', 'offset', 'dataWrite', 'writeWithoutResponse']),
);

const value: fc.Arbitrary<PropertyValue> = fc.oneof(fc.double(), fc.integer(), fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }), fc.boolean(), fc.string({ maxLength: 12 }), fc.constantFrom('ON', 'off', '1e400', ''), fc.uint8Array({ maxLength: 10 }));

function parse(map: Record<string, unknown>): BleVisitor | undefined {
  const r = visitorConfigSchema.safeParse(map);
  return r.success ? r.data : undefined;
}

export const bleConverterTarget: FuzzTarget = {
  name: 'ble-converter',
  description: "BLE visitor schema on arbitrary maps (upstream's flattened and JSON dataConverter, orderOfOperations, dataWrite); decodeValue on random characteristic values and encodeValue on random values for every model type; parseOperationsText, parseByteString, upstreamConvert",
  async run(ctx) {
    const n = 4;
    return [
      await fuzzProperty(
        'visitor + characteristic value → property value',
        fc.tuple(visitorMap, fc.uint8Array({ maxLength: 24 }), fc.constantFrom(...TYPES)),
        ([map, data, type]) => {
          const v = parse(map);
          if (!v) {
            ctx.stats['visitor refused'] = (ctx.stats['visitor refused'] ?? 0) + 1;
            return;
          }
          ctx.stats['visitor accepted'] = (ctx.stats['visitor accepted'] ?? 0) + 1;
          try {
            decodeValue(data, v, type);
            ctx.stats['decoded'] = (ctx.stats['decoded'] ?? 0) + 1;
          } catch (err) {
            refuseCleanly(err, ctx.stats);
          }
        },
        { ...ctx, runs: share(ctx.runs, n, 0) },
      ),
      await fuzzProperty(
        'visitor + value → bytes to write',
        fc.tuple(visitorMap, value, fc.constantFrom(...TYPES)),
        ([map, val, type]) => {
          const v = parse(map);
          if (!v) return;
          try {
            const out = encodeValue(val, v, type);
            if (!(out instanceof Uint8Array)) throw new Error('encodeValue did not return bytes');
            ctx.stats['encoded'] = (ctx.stats['encoded'] ?? 0) + 1;
          } catch (err) {
            refuseCleanly(err, ctx.stats);
          }
        },
        { ...ctx, runs: share(ctx.runs, n, 1) },
      ),
      await fuzzProperty(
        'parseOperationsText / parseByteString on any text',
        fc.tuple(fc.oneof(opsText, fc.string({ unit: 'binary', maxLength: 40 })), fc.oneof(byteText, fc.anything())),
        ([ops, bytes]) => {
          try {
            parseOperationsText(ops);
          } catch (err) {
            refuseCleanly(err, ctx.stats, plainError);
          }
          try {
            parseByteString(bytes);
          } catch (err) {
            refuseCleanly(err, ctx.stats, plainError);
          }
        },
        { ...ctx, runs: share(ctx.runs, n, 2) },
      ),
      await fuzzProperty(
        "upstream converter (startIndex..endIndex, shifts, operations) on any bytes",
        fc.tuple(
          fc.uint8Array({ maxLength: 16 }),
          fc.record({ startIndex: fc.nat(20), endIndex: fc.nat(20), shiftLeft: fc.nat(80), shiftRight: fc.nat(80) }),
          fc.array(fc.record({ type: fc.constantFrom('Add' as const, 'Subtract' as const, 'Multiply' as const, 'Divide' as const), value: fc.double() }), { maxLength: 3 }),
        ),
        ([data, conv, ops]) => {
          try {
            const r = upstreamConvert(data, conv, ops);
            if (typeof r !== 'number') throw new Error(`upstreamConvert returned ${typeof r}`);
          } catch (err) {
            refuseCleanly(err, ctx.stats);
          }
        },
        { ...ctx, runs: share(ctx.runs, n, 3) },
      ),
    ];
  },
};
