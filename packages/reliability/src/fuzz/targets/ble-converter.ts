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

const visitorMap = fc.oneof(
  fc
    .record(
      {
        characteristicUUID: fc.constantFrom('2a19', '0x2A19', '00002a19-0000-1000-8000-00805f9b34fb', 'ebe0ccc1-7a0a-4b0c-8a1a-6ff2997da3a6', 'zz', ''),
        serviceUUID: fc.constantFrom('180f', 'x'),
        mode: fc.constantFrom('auto', 'read', 'notify', 'push'),
        startIndex: fc.oneof(fc.integer({ min: -2, max: 12 }), fc.constant('1')),
        endIndex: fc.oneof(fc.integer({ min: -2, max: 12 }), fc.constant(1.5)),
        shiftLeft: fc.oneof(fc.integer({ min: -1, max: 70 }), fc.constant(64)),
        shiftRight: fc.integer({ min: -1, max: 70 }),
        orderOfOperations: opsText,
        dataConverter: fc.oneof(
          fc.record({ startIndex: fc.integer({ min: -1, max: 10 }), endIndex: fc.integer({ min: -1, max: 10 }), shiftRight: fc.nat(70), orderOfOperations: fc.constant([{ operationType: 'Divide', operationValue: 100 }]) }).map((o) => JSON.stringify(o)),
          fc.string({ maxLength: 20 }),
        ),
        dataFormat: fc.constantFrom('int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float32', 'float64', 'utf8', 'hex', 'int24', ''),
        byteOrder: fc.constantFrom('little', 'big', 'LE', 'x'),
        offset: fc.oneof(fc.integer({ min: -1, max: 20 }), fc.constant('2')),
        dataWrite,
        writeWithoutResponse: fc.oneof(fc.boolean(), fc.constant('yes')),
      },
      { requiredKeys: ['characteristicUUID'] },
    )
    .map((r) => r as Record<string, unknown>),
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
