// SPDX-License-Identifier: Apache-2.0
// The Modbus data converters: visitor/protocol configData schemas on any map, then the register
// and bit decoders, the model-type conversion and the write encoder on random registers and
// values. Only MapperError may come out; integers written back from what was read are the
// same registers.
import fc from 'fast-check';
import type { PropertyType, PropertyValue } from '@mapperkit/framework';
import { decodeBits, decodeRegisters, encodeWrite, type ModbusVisitor, protocolConfig, toModelValue, visitorConfig } from '@mapperkit/mapper-modbus';
import { configMap } from '../arbs.js';
import { type FuzzTarget, fuzzProperty, refuseCleanly, share } from '../harness.js';

const TYPES: readonly PropertyType[] = ['int', 'float', 'double', 'string', 'boolean', 'bytes', 'stream'];

const visitorMap = fc.oneof(
  // Mostly-valid visitors: a real register table and a data type, plus noise keys.
  fc
    .record(
      {
        register: fc.constantFrom('HoldingRegister', 'InputRegister', 'CoilRegister', 'DiscreteInputRegister', 'holding', 'coil', 'input_register', 'Holding-Register'),
        dataType: fc.constantFrom('int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float32', 'float64', 'int', 'float', 'double', 'boolean', 'bool', 'bit', 'string', 'bytes', 'INT16', ''),
        offset: fc.oneof(fc.nat(70_000), fc.constantFrom('0', 65535, 65534, -1)),
        limit: fc.oneof(fc.integer({ min: 0, max: 130 }), fc.constantFrom(1, 2, 4, 53, 54, 2000, 2001)),
        scale: fc.oneof(fc.double({ noNaN: true }), fc.constantFrom(0, 1, 0.1, -1, 1e-300, 1e300)),
        valueOffset: fc.oneof(fc.double({ noNaN: true }), fc.constantFrom(0, -40)),
        isSwap: fc.oneof(fc.boolean(), fc.constantFrom('yes', 'off', 2)),
        isRegisterSwap: fc.oneof(fc.boolean(), fc.constantFrom('true', 0)),
        byteOrder: fc.constantFrom('ABCD', 'CDAB', 'BADC', 'DCBA', 'little', 'x'),
        bitIndex: fc.oneof(fc.integer({ min: -1, max: 16 }), fc.constant('3')),
        min: fc.double(),
        max: fc.double(),
        writeMultiple: fc.boolean(),
      },
      { requiredKeys: ['register'] },
    )
    .map((r) => r as Record<string, unknown>),
  configMap(['register', 'registerType', 'dataType', 'type', 'offset', 'address', 'limit', 'scale', 'valueOffset', 'isSwap', 'isRegisterSwap', 'byteOrder', 'order', 'bitIndex', 'bit', 'min', 'max', 'writeMultiple']),
);

const protocolMap = configMap([
  'communicateMode', 'slaveID', 'slaveId', 'unitID', 'ip', 'host', 'port', 'timeout', 'connectTimeout', 'serialName', 'serialPort', 'baudRate', 'dataBits', 'stopBits', 'parity',
  'rs485Enabled', 'interFrameDelay', 'coalesce', 'maxGap', 'maxGapBits', 'maxRegistersPerRequest', 'maxBitsPerRequest', 'breakerThreshold', 'breakerCooldown',
], 10);

const writeValue: fc.Arbitrary<PropertyValue> = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
  fc.boolean(),
  fc.string({ maxLength: 20 }),
  fc.constantFrom('21.5', '1e400', '-0', ' 7 ', '0x10', '', 'true'),
  fc.uint8Array({ maxLength: 20 }),
);

function parseVisitor(map: Record<string, unknown>): ModbusVisitor | undefined {
  const r = visitorConfig.safeParse(map);
  return r.success ? r.data : undefined;
}

export const modbusCodecTarget: FuzzTarget = {
  name: 'modbus-codec',
  description: 'visitor and protocol configData schemas on arbitrary maps; decodeRegisters / decodeBits on random registers, toModelValue for every model type, encodeWrite with random values; integer round trip',
  async run(ctx) {
    const n = 4;
    return [
      await fuzzProperty(
        'protocol configData → parsed or issues',
        protocolMap,
        (m) => {
          const r = protocolConfig.safeParse(m);
          ctx.stats[r.success ? 'protocol accepted' : 'protocol refused'] = (ctx.stats[r.success ? 'protocol accepted' : 'protocol refused'] ?? 0) + 1;
          if (r.success && (r.data.port < 1 || r.data.port > 65535 || !(r.data.timeoutMs > 0))) throw new Error(`accepted port ${r.data.port} / timeout ${r.data.timeoutMs}`);
        },
        { ...ctx, runs: share(ctx.runs, n, 0) },
      ),
      await fuzzProperty(
        'visitor + registers → value (every model type)',
        fc.tuple(visitorMap, fc.uint8Array({ minLength: 2 * 125, maxLength: 2 * 125 }), fc.array(fc.boolean(), { minLength: 2000, maxLength: 2000 }), fc.constantFrom(...TYPES)),
        ([map, regs, bits, type]) => {
          const v = parseVisitor(map);
          if (!v) {
            ctx.stats['visitor refused'] = (ctx.stats['visitor refused'] ?? 0) + 1;
            return;
          }
          ctx.stats['visitor accepted'] = (ctx.stats['visitor accepted'] ?? 0) + 1;
          try {
            const raw = v.table === 'coil' || v.table === 'discrete' ? decodeBits(bits.slice(0, v.count), v) : decodeRegisters(regs.subarray(0, v.count * 2), v);
            const value = toModelValue(raw, v, type);
            if (value === undefined || value === null) throw new Error('decoded to nothing');
            ctx.stats['decoded'] = (ctx.stats['decoded'] ?? 0) + 1;
          } catch (err) {
            refuseCleanly(err, ctx.stats);
          }
        },
        { ...ctx, runs: share(ctx.runs, n, 1) },
      ),
      await fuzzProperty(
        'visitor + value → write encoding',
        fc.tuple(visitorMap, writeValue, fc.option(fc.double(), { nil: undefined }), fc.option(fc.double(), { nil: undefined })),
        ([map, value, minimum, maximum]) => {
          const v = parseVisitor(map);
          if (!v) return;
          try {
            const e = encodeWrite(value, v, { minimum, maximum });
            if (e.kind === 'words') {
              if (e.words.length !== v.count && !(v.kind === 'boolean' && e.words.length === 1)) throw new Error(`${e.words.length} words for a ${v.count}-register ${v.kind}`);
              for (const w of e.words) if (!Number.isInteger(w) || w < 0 || w > 0xffff) throw new Error(`word ${w} is not 16 bits`);
            }
            ctx.stats['encoded'] = (ctx.stats['encoded'] ?? 0) + 1;
          } catch (err) {
            refuseCleanly(err, ctx.stats);
          }
        },
        { ...ctx, runs: share(ctx.runs, n, 2) },
      ),
      await fuzzProperty(
        'integer registers: encodeWrite(decode(r)) = r',
        fc.tuple(
          fc.constantFrom('int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64'),
          fc.constantFrom('ABCD', 'CDAB', 'BADC', 'DCBA'),
          fc.uint8Array({ minLength: 8, maxLength: 8 }),
        ),
        ([dataType, byteOrder, regs]) => {
          const v = parseVisitor({ register: 'HoldingRegister', dataType, byteOrder, offset: 10 })!;
          const wire = regs.subarray(0, v.count * 2);
          const value = toModelValue(decodeRegisters(wire, v), v, 'int');
          const e = encodeWrite(value, v, { minimum: undefined, maximum: undefined });
          if (e.kind !== 'words') return false;
          const back = Buffer.alloc(e.words.length * 2);
          e.words.forEach((w, i) => back.writeUInt16BE(w, i * 2));
          return Buffer.compare(back, Buffer.from(wire)) === 0;
        },
        { ...ctx, runs: share(ctx.runs, n, 3) },
      ),
    ];
  },
};
