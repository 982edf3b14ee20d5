// SPDX-License-Identifier: Apache-2.0
// Register contents <-> values, without a device: every data type and byte order against
// hand-computed bytes, scale/offset, model-type conversion, and writes as the exact inverse.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isMapperError } from '@mapperkit/framework';
import { decodeBits, decodeRegisters, encodeWrite, toModelValue, reorder, visitorConfig } from '../src/index.ts';

const v = (raw: Record<string, unknown>) => visitorConfig.parse({ register: 'HoldingRegister', ...raw });
const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s/g, ''), 'hex'));
const noBounds = { minimum: undefined, maximum: undefined };

describe('byte and word order', () => {
  // 0x11223344 as int32 / the float32 1.5 (0x3FC00000) in the four orders.
  const orders = [
    { name: 'ABCD', raw: { byteOrder: 'ABCD' }, int32: '11223344', f32: '3fc00000' },
    { name: 'CDAB (isRegisterSwap)', raw: { isRegisterSwap: true }, int32: '33441122', f32: '00003fc0' },
    { name: 'BADC (isSwap)', raw: { isSwap: true }, int32: '22114433', f32: 'c03f0000' },
    { name: 'DCBA (isSwap + isRegisterSwap)', raw: { isSwap: true, isRegisterSwap: true }, int32: '44332211', f32: '0000c03f' },
    { name: 'DCBA (byteOrder)', raw: { byteOrder: 'dcba' }, int32: '44332211', f32: '0000c03f' },
  ];
  for (const o of orders) {
    it(`decodes int32 and float32 in ${o.name}`, () => {
      assert.equal(decodeRegisters(hex(o.int32), v({ dataType: 'int32', ...o.raw })), 0x11223344);
      assert.equal(decodeRegisters(hex(o.f32), v({ dataType: 'float32', ...o.raw })), 1.5);
    });
    it(`encodes int32 and float32 in ${o.name} (inverse)`, () => {
      const w = encodeWrite(0x11223344, v({ dataType: 'int32', ...o.raw }), noBounds);
      assert.deepEqual(w, { kind: 'words', words: [parseInt(o.int32.slice(0, 4), 16), parseInt(o.int32.slice(4), 16)] });
      const f = encodeWrite(1.5, v({ dataType: 'float32', ...o.raw }), noBounds);
      assert.deepEqual(f, { kind: 'words', words: [parseInt(o.f32.slice(0, 4), 16), parseInt(o.f32.slice(4), 16)] });
    });
  }

  it('reverses all four words of 64-bit values for isRegisterSwap', () => {
    const abcd = hex('0001 0203 0405 0607');
    assert.equal(decodeRegisters(abcd, v({ dataType: 'uint64' })), 0x0001020304050607);
    assert.equal(decodeRegisters(hex('0607 0405 0203 0001'), v({ dataType: 'uint64', isRegisterSwap: true })), 0x0001020304050607);
    assert.equal(decodeRegisters(hex('0100 0302 0504 0706'), v({ dataType: 'uint64', isSwap: true })), 0x0001020304050607);
  });

  it('reorder is an involution', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 2, maxLength: 16 }).filter((a) => a.length % 2 === 0), fc.boolean(), fc.boolean(), (bytes, w, b) => {
        assert.deepEqual(reorder(reorder(bytes, w, b), w, b), bytes);
      }),
    );
  });

  it('decodes a property inside a larger answer exactly like the property alone', () => {
    const kinds = ['int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float32', 'float64', 'string', 'bytes'] as const;
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 24, maxLength: 24 }), fc.integer({ min: 0, max: 4 }), fc.constantFrom(...kinds), fc.constantFrom('ABCD', 'CDAB', 'BADC', 'DCBA'), (bytes, reg, kind, order) => {
        const vis = v({ dataType: kind, byteOrder: order, ...(kind === 'string' || kind === 'bytes' ? { limit: 3 } : {}) });
        const alone = decodeRegisters(bytes.slice(reg * 2, reg * 2 + vis.count * 2), vis);
        const inside = decodeRegisters(bytes, vis, reg * 2, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength));
        if (typeof alone === 'number' && Number.isNaN(alone)) assert.ok(Number.isNaN(inside));
        else assert.deepEqual(inside, alone);
      }),
    );
  });

  it('swaps the bytes of a single register with isSwap', () => {
    assert.equal(decodeRegisters(hex('3412'), v({ dataType: 'uint16', isSwap: true })), 0x1234);
    assert.equal(decodeRegisters(hex('3412'), v({ dataType: 'uint16', isRegisterSwap: true })), 0x3412, 'word swap does nothing to one word');
  });
});

describe('data types', () => {
  it('decodes signed and unsigned integers of 16, 32 and 64 bits', () => {
    assert.equal(decodeRegisters(hex('ffff'), v({ dataType: 'int16' })), -1);
    assert.equal(decodeRegisters(hex('ffff'), v({ dataType: 'uint16' })), 65535);
    assert.equal(decodeRegisters(hex('fffffffe'), v({ dataType: 'int32' })), -2);
    assert.equal(decodeRegisters(hex('fffffffe'), v({ dataType: 'uint32' })), 4294967294);
    assert.equal(decodeRegisters(hex('ffffffffffffffff'), v({ dataType: 'int64' })), -1);
    assert.equal(decodeRegisters(hex('ffffffffffffffff'), v({ dataType: 'uint64' })), 18446744073709551615n, 'beyond 2^53 as bigint');
    assert.equal(decodeRegisters(hex('0020000000000001'), v({ dataType: 'int64' })), 9007199254740993n);
  });

  it('decodes floats with the shortest text that is the float32', () => {
    const b = Buffer.alloc(4);
    b.writeFloatBE(23.7);
    assert.equal(decodeRegisters(new Uint8Array(b), v({ dataType: 'float32' })), 23.7);
    const d = Buffer.alloc(8);
    d.writeDoubleBE(-1234.5678);
    assert.equal(decodeRegisters(new Uint8Array(d), v({ dataType: 'float64' })), -1234.5678);
  });

  it('decodes booleans, bits of a register and strings', () => {
    assert.equal(decodeRegisters(hex('0000'), v({ dataType: 'boolean' })), false);
    assert.equal(decodeRegisters(hex('0100'), v({ dataType: 'boolean' })), true);
    assert.equal(decodeRegisters(hex('0004'), v({ dataType: 'bit', bitIndex: 2 })), true);
    assert.equal(decodeRegisters(hex('0004'), v({ dataType: 'bit', bitIndex: 3 })), false);
    assert.equal(decodeRegisters(hex('8000'), v({ dataType: 'boolean', bitIndex: 15 })), true);
    assert.equal(decodeRegisters(hex(Buffer.from('MKSIM-01').toString('hex')), v({ dataType: 'string', limit: 4 })), 'MKSIM-01');
    assert.equal(decodeRegisters(hex('4142 4300 0000'), v({ dataType: 'string', limit: 3 })), 'ABC', 'trailing NULs stripped');
    assert.equal(decodeRegisters(hex('4241 0043'), v({ dataType: 'string', limit: 2, isSwap: true })), 'ABC');
    assert.deepEqual(decodeRegisters(hex('0102 0304'), v({ dataType: 'bytes', limit: 2 })), new Uint8Array([1, 2, 3, 4]));
  });

  it('reads upstream dataType names with the width given by limit', () => {
    assert.equal(v({ dataType: 'int' }).kind, 'uint16');
    assert.equal(v({ dataType: 'int', limit: 2 }).kind, 'uint32');
    assert.equal(v({ dataType: 'int', limit: 4 }).kind, 'uint64');
    assert.equal(v({ dataType: 'float', limit: 1 }).kind, 'uint16', 'upstream v1beta1: a float in one register is a scaled integer');
    assert.equal(v({ dataType: 'float' }).kind, 'float32');
    assert.equal(v({ dataType: 'double' }).kind, 'float64');
    assert.equal(v({ dataType: 'double', limit: 2 }).kind, 'float32');
    assert.equal(v({ dataType: 'bool' }).kind, 'boolean');
    assert.equal(v({ register: 'CoilRegister', dataType: 'int' }).kind, 'uint64');
  });

  it('decodes coils and discrete inputs', () => {
    const coil = (raw: Record<string, unknown>) => visitorConfig.parse({ register: 'CoilRegister', ...raw });
    assert.equal(decodeBits([true], coil({})), true);
    assert.equal(decodeBits([false, true, true], coil({ dataType: 'int', limit: 3 })), 6, 'first coil is the least significant bit');
    assert.deepEqual(decodeBits([true, false, false, false, false, false, false, false, true], coil({ dataType: 'bytes', limit: 9 })), new Uint8Array([1, 1]));
  });
});

describe('scale, offset and model types', () => {
  it('applies scale then valueOffset without binary noise', () => {
    const t = v({ dataType: 'int16', scale: 0.1 });
    assert.equal(toModelValue(decodeRegisters(hex('00eb'), t), t, 'float'), 23.5);
    assert.equal(toModelValue(3, t, 'double'), 0.3, '3 × 0.1 is 0.3, not 0.30000000000000004');
    const k = v({ dataType: 'uint16', scale: 0.01, valueOffset: -40 });
    assert.equal(toModelValue(6543, k, 'float'), 25.43);
  });

  it('follows the upstream example: float, limit 1, scale 0.1', () => {
    const up = v({ dataType: 'float', limit: 1, scale: 0.1, isSwap: false, isRegisterSwap: false });
    assert.equal(toModelValue(decodeRegisters(hex('00d7'), up), up, 'float'), 21.5);
  });

  it('treats scale 0 as no scaling (the Go zero value upstream)', () => {
    const z = v({ dataType: 'uint16', scale: 0 });
    assert.equal(z.scale, 1);
  });

  it('converts to every model type', () => {
    const i = v({ dataType: 'int16', scale: 0.1 });
    assert.equal(toModelValue(235, i, 'int'), 23, 'int properties truncate like upstream');
    assert.equal(toModelValue(235, i, 'string'), '23.5');
    assert.equal(toModelValue(235, i, 'boolean'), true);
    assert.equal(toModelValue(0, i, 'boolean'), false);
    assert.equal(toModelValue(true, v({ dataType: 'boolean' }), 'int'), 1);
    assert.equal(toModelValue('42.5', v({ dataType: 'string', limit: 2 }), 'double'), 42.5);
    assert.equal(toModelValue(18446744073709551615n, v({ dataType: 'uint64' }), 'int'), 18446744073709551615n);
    assert.throws(
      () => toModelValue('abc', v({ dataType: 'string' }), 'int'),
      (e: unknown) => isMapperError(e) && e.kind === 'DeviceError',
    );
    assert.throws(
      () => toModelValue(Number.NaN, v({ dataType: 'float32' }), 'float'),
      (e: unknown) => isMapperError(e) && /finite/.test(e.message),
    );
  });
});

describe('writes: the inverse conversion and range checks', () => {
  it('un-scales and rounds to the register type', () => {
    assert.deepEqual(encodeWrite(22.5, v({ dataType: 'int16', scale: 0.1 }), noBounds), { kind: 'words', words: [225] });
    assert.deepEqual(encodeWrite(-5, v({ dataType: 'int16', scale: 0.1 }), noBounds), { kind: 'words', words: [0xffce] });
    assert.deepEqual(encodeWrite(25.43, v({ dataType: 'uint16', scale: 0.01, valueOffset: -40 }), noBounds), { kind: 'words', words: [6543] });
    assert.deepEqual(encodeWrite(18446744073709551615n, v({ dataType: 'uint64' }), noBounds), { kind: 'words', words: [0xffff, 0xffff, 0xffff, 0xffff] });
  });

  it('refuses values outside the register type, naming the range and the register', () => {
    assert.throws(
      () => encodeWrite(40000, v({ dataType: 'int16', offset: 7 }), noBounds),
      (e: unknown) => isMapperError(e) && e.kind === 'WriteRejected' && /int16 range -32768\.\.32767 of holding register 7/.test(e.message),
    );
    assert.throws(
      () => encodeWrite(7000, v({ dataType: 'int16', scale: 0.1 }), noBounds),
      (e: unknown) => isMapperError(e) && /raw 70000 after scale 0\.1/.test(e.message),
    );
    assert.throws(() => encodeWrite(-1, v({ dataType: 'uint16' }), noBounds), /uint16 range/);
    assert.throws(() => encodeWrite(1e39, v({ dataType: 'float32' }), noBounds), /float32 range/);
    assert.throws(() => encodeWrite(2, visitorConfig.parse({ register: 'CoilRegister' }), noBounds), /coil takes 0 or 1/);
  });

  it('refuses values outside the property minimum/maximum and the visitor min/max', () => {
    assert.throws(
      () => encodeWrite(36, v({ dataType: 'int16', scale: 0.1 }), { minimum: 5, maximum: 35 }),
      (e: unknown) => isMapperError(e) && e.kind === 'WriteRejected' && /above the property maximum 35/.test(e.message),
    );
    assert.throws(() => encodeWrite(0.5, v({ dataType: 'int16', scale: 0.1, min: 1, max: 100 }), noBounds), /below the visitor minimum 1/);
  });

  it('refuses writes to input registers and discrete inputs', () => {
    assert.throws(() => encodeWrite(1, visitorConfig.parse({ register: 'InputRegister' }), noBounds), /read-only/);
    assert.throws(() => encodeWrite(true, visitorConfig.parse({ register: 'DiscreteInputRegister' }), noBounds), /read-only/);
  });

  it('encodes coils, bits of a register, strings and bytes', () => {
    assert.deepEqual(encodeWrite(true, visitorConfig.parse({ register: 'CoilRegister' }), noBounds), { kind: 'bits', bits: [true] });
    assert.deepEqual(encodeWrite(6, visitorConfig.parse({ register: 'CoilRegister', dataType: 'int', limit: 3 }), noBounds), { kind: 'bits', bits: [false, true, true] });
    assert.deepEqual(encodeWrite(true, v({ dataType: 'bit', bitIndex: 3 }), noBounds), { kind: 'bit', bitIndex: 3, on: true });
    assert.deepEqual(encodeWrite('AB', v({ dataType: 'string', limit: 2 }), noBounds), { kind: 'words', words: [0x4142, 0] });
    assert.throws(() => encodeWrite('ABCDE', v({ dataType: 'string', limit: 2 }), noBounds), /5 bytes do not fit in 2 registers/);
  });

  it('read(write(x)) = x for every fixed-width type and byte order', () => {
    const kinds = ['int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float32', 'float64'] as const;
    const ranges: Record<(typeof kinds)[number], fc.Arbitrary<number | bigint>> = {
      int16: fc.integer({ min: -32768, max: 32767 }),
      uint16: fc.integer({ min: 0, max: 65535 }),
      int32: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
      uint32: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      int64: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
      uint64: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      float32: fc.float({ noNaN: true, noDefaultInfinity: true }).map((f) => Math.fround(f)),
      float64: fc.double({ noNaN: true, noDefaultInfinity: true }),
    };
    for (const kind of kinds) {
      fc.assert(
        fc.property(ranges[kind], fc.constantFrom('ABCD', 'CDAB', 'BADC', 'DCBA'), (x, order) => {
          const vis = v({ dataType: kind, byteOrder: order });
          const enc = encodeWrite(x, vis, noBounds);
          assert.equal(enc.kind, 'words');
          const bytes = Buffer.alloc(enc.kind === 'words' ? enc.words.length * 2 : 0);
          if (enc.kind === 'words') enc.words.forEach((w, i) => bytes.writeUInt16BE(w, 2 * i));
          const back = decodeRegisters(new Uint8Array(bytes), vis);
          const norm = (n: unknown): unknown => (typeof n === 'bigint' && n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n);
          if (kind === 'float32') assert.equal(Math.fround(Number(back)), Math.fround(Number(x)));
          else assert.equal(norm(back), norm(x));
        }),
        { numRuns: 200 },
      );
    }
  });
});
