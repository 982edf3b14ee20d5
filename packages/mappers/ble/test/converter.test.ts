// SPDX-License-Identifier: Apache-2.0
// The data converter (upstream's, kept exactly), typed decodes/encodes, operations, data-write
// byte strings, and the visitor/protocol schemas, including configData that crossed DMI.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isMapperError, type PropertyValue } from '@mapperkit/framework';
import { decodeCustomizedValue, encodeCustomizedValue } from '@mapperkit/framework/dmi';
import { type BleVisitor, protocolConfigSchema, visitorConfigSchema } from '../src/config.js';
import {
  applyOperations,
  decodeTyped,
  encodeTyped,
  formatGoFloat,
  invertOperations,
  type Operation,
  parseByteString,
  parseOperationsText,
  upstreamConvert,
  upstreamRaw,
} from '../src/converter.js';
import { canonicalMac, canonicalUuid } from '../src/uuid.js';
import { decodeValue, encodeValue } from '../src/values.js';

const conv = (startIndex: number, endIndex: number, shiftLeft = 0, shiftRight = 0) => ({ startIndex, endIndex, shiftLeft, shiftRight });
const bytes = (...b: number[]) => new Uint8Array(b);

function visitor(raw: Record<string, unknown>): BleVisitor {
  const r = visitorConfigSchema.safeParse(raw);
  if (!r.success) throw new Error(r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  return r.data;
}

function visitorError(raw: Record<string, unknown>): { path: string; message: string } {
  const r = visitorConfigSchema.safeParse(raw);
  assert.ok(!r.success, `expected ${JSON.stringify(raw)} to be rejected`);
  const issue = r.error.issues[0]!;
  return { path: issue.path.join('.'), message: issue.message };
}

describe('upstream data converter (mappers-go ConvertReadData semantics)', () => {
  it("upstream's Xiaomi sample: startIndex 2, endIndex 2, Divide 100", () => {
    // configmap_test.json of mappers-go/mappers/ble: humidity from byte 2.
    const data = bytes(0x5c, 0x08, 45);
    assert.equal(upstreamRaw(data, conv(2, 2)), 45n);
    const v = upstreamConvert(data, conv(2, 2), [{ type: 'Divide', value: 100 }]);
    assert.equal(v, 0.45);
    assert.equal(formatGoFloat(v), '0.450000');
  });

  it("upstream's CC2650 sample: startIndex 1, endIndex 0 (descending), shiftRight 2, Multiply 0.03125", () => {
    // Bytes [0x9c, 0x0c] walked from index 1 down to 0: decimal text "12" + "156" = 12156.
    const data = bytes(0x9c, 0x0c);
    assert.equal(upstreamRaw(data, conv(1, 0)), 12156n);
    assert.equal(upstreamRaw(data, conv(1, 0, 0, 2)), 3039n);
    assert.equal(upstreamConvert(data, conv(1, 0, 0, 2), [{ type: 'Multiply', value: 0.03125 }]), 94.96875);
  });

  it('concatenates the decimal text of each byte, it does not combine bytes as binary', () => {
    assert.equal(upstreamRaw(bytes(1, 44), conv(0, 1)), 144n); // not 0x012c = 300
    assert.equal(upstreamRaw(bytes(1, 44), conv(1, 0)), 441n);
    assert.equal(upstreamRaw(bytes(0, 7), conv(0, 1)), 7n); // "07"
    assert.equal(upstreamRaw(bytes(255, 0, 255), conv(0, 2)), 2550255n);
  });

  it('shiftLeft wins over shiftRight; shifts wrap at 64 bits like Go uint64', () => {
    assert.equal(upstreamRaw(bytes(3), conv(0, 0, 2, 1)), 12n);
    assert.equal(upstreamRaw(bytes(200), conv(0, 0, 0, 3)), 25n);
    assert.equal(upstreamRaw(bytes(255), conv(0, 0, 60)), 15n << 60n);
    assert.equal(upstreamRaw(bytes(255), conv(0, 0, 64)), 0n);
    assert.equal(upstreamRaw(bytes(255), conv(0, 0, 0, 70)), 0n);
  });

  it('clamps text beyond uint64 to 2^64-1 as Go ParseUint does, then converts to float64', () => {
    const eight = bytes(255, 255, 255, 255, 255, 255, 255, 255);
    assert.equal(upstreamRaw(eight, conv(0, 7)), (1n << 64n) - 1n);
    assert.equal(upstreamConvert(eight, conv(0, 7), []), 18446744073709551616);
  });

  it('applies the operations in list order, names case-insensitively', () => {
    const add2mul3: Operation[] = [
      { type: 'Add', value: 2 },
      { type: 'Multiply', value: 3 },
    ];
    assert.equal(upstreamConvert(bytes(10), conv(0, 0), add2mul3), 36);
    assert.equal(upstreamConvert(bytes(10), conv(0, 0), [...add2mul3].reverse()), 32);
    assert.equal(applyOperations(100, parseOperationsText('[{"operationType":"sUbTrAcT","operationValue":40},{"operationType":"DIVIDE","operationValue":4}]')), 15);
  });

  it('rejects an index outside the value instead of panicking as upstream did', () => {
    assert.throws(
      () => upstreamRaw(bytes(1, 2), conv(0, 2)),
      (e: unknown) => isMapperError(e) && e.kind === 'DeviceError' && /index 2 is outside the 2-byte value/.test(e.message),
    );
    assert.throws(() => upstreamRaw(bytes(), conv(0, 0)), /noble reports a failed GATT read as an empty value/);
  });

  it("formats like Go's %f", () => {
    assert.equal(formatGoFloat(0), '0.000000');
    assert.equal(formatGoFloat(-0), '-0.000000');
    assert.equal(formatGoFloat(94.96875), '94.968750');
    assert.equal(formatGoFloat(-40.5), '-40.500000');
    assert.equal(formatGoFloat(1e21), '1000000000000000000000.000000');
    assert.equal(formatGoFloat(18446744073709551616), '18446744073709551616.000000');
    assert.equal(formatGoFloat(Infinity), '+Inf');
    assert.equal(formatGoFloat(Number.NaN), 'NaN');
  });
});

describe('typed decodes and encodes', () => {
  it('decodes integers of every width and both byte orders', () => {
    assert.equal(decodeTyped(bytes(0x66, 0x08), 'int16', 0, 'little'), 2150);
    assert.equal(decodeTyped(bytes(0x08, 0x66), 'int16', 0, 'big'), 2150);
    assert.equal(decodeTyped(bytes(0xff, 0xff), 'int16', 0, 'little'), -1);
    assert.equal(decodeTyped(bytes(0xff, 0xff), 'uint16', 0, 'little'), 65535);
    assert.equal(decodeTyped(bytes(0x80), 'int8', 0, 'little'), -128);
    assert.equal(decodeTyped(bytes(9, 0x01, 0x00, 0x00, 0x80), 'uint32', 1, 'little'), 0x80000001);
    assert.equal(decodeTyped(bytes(9, 0x01, 0x00, 0x00, 0x80), 'int32', 1, 'little'), -2147483647);
    assert.equal(decodeTyped(bytes(1, 0, 0, 0, 0, 0, 0, 0), 'int64', 0, 'little'), 1);
    assert.equal(decodeTyped(new Uint8Array(8).fill(0xff), 'uint64', 0, 'little'), (1n << 64n) - 1n);
    assert.equal(decodeTyped(new Uint8Array(8).fill(0xff), 'int64', 0, 'big'), -1);
  });

  it('decodes floats, UTF-8 (trailing NULs dropped) and hex', () => {
    const f = Buffer.alloc(4);
    f.writeFloatLE(21.5);
    assert.equal(decodeTyped(f, 'float32', 0, 'little'), 21.5);
    const d = Buffer.alloc(8);
    d.writeDoubleBE(-0.125);
    assert.equal(decodeTyped(d, 'float64', 0, 'big'), -0.125);
    assert.equal(decodeTyped(Buffer.from('Env-Sensor\0\0'), 'utf8', 0, 'little'), 'Env-Sensor');
    assert.equal(decodeTyped(Buffer.from('xxABC'), 'utf8', 2, 'little'), 'ABC');
    assert.equal(decodeTyped(bytes(0xde, 0xad, 0xbe, 0xef), 'hex', 1, 'little'), 'adbeef');
  });

  it('names the shortfall when the value is too short', () => {
    assert.throws(
      () => decodeTyped(bytes(1), 'int16', 0, 'little'),
      (e: unknown) => isMapperError(e) && e.kind === 'DeviceError' && /int16 at offset 0 needs 2 bytes, the value has 1/.test(e.message),
    );
    assert.throws(() => decodeTyped(bytes(1, 2, 3, 4), 'uint32', 2, 'big'), /needs 6 bytes/);
  });

  it('encodes what it decodes (property test over every integer format and both orders)', () => {
    const formats = [
      ['int8', -128, 127],
      ['uint8', 0, 255],
      ['int16', -32768, 32767],
      ['uint16', 0, 65535],
      ['int32', -2147483648, 2147483647],
      ['uint32', 0, 4294967295],
    ] as const;
    for (const [format, min, max] of formats) {
      fc.assert(
        fc.property(fc.integer({ min, max }), fc.constantFrom('little' as const, 'big' as const), (n, order) => {
          assert.equal(decodeTyped(encodeTyped(n, format, order), format, 0, order), n);
        }),
        { numRuns: 200 },
      );
    }
    fc.assert(
      fc.property(fc.float({ noNaN: true, noDefaultInfinity: true }), (x) => {
        assert.equal(decodeTyped(encodeTyped(x, 'float32', 'little'), 'float32', 0, 'little'), Math.fround(x));
      }),
    );
    fc.assert(
      fc.property(fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }), (n) => {
        const back = decodeTyped(encodeTyped(n, 'int64', 'big'), 'int64', 0, 'big');
        assert.equal(BigInt(back as number | bigint), n);
      }),
    );
  });

  it('refuses values outside the format with WriteRejected naming the range', () => {
    assert.throws(() => encodeTyped(70000, 'uint16', 'little'), (e: unknown) => isMapperError(e) && e.kind === 'WriteRejected' && /does not fit uint16 \(0\.\.65535\)/.test(e.message));
    assert.throws(() => encodeTyped(-1, 'uint8', 'little'), /does not fit uint8/);
    assert.throws(() => encodeTyped('zz', 'hex', 'little'), /not a hex byte string/);
  });

  it('inverts the operations for writes (property test)', () => {
    const ops: Operation[] = [
      { type: 'Multiply', value: 0.01 },
      { type: 'Add', value: -40 },
      { type: 'Divide', value: 2 },
      { type: 'Subtract', value: 3 },
    ];
    fc.assert(
      fc.property(fc.integer({ min: -1_000_000, max: 1_000_000 }), (raw) => {
        assert.ok(Math.abs(invertOperations(applyOperations(raw, ops), ops) - raw) < 1e-6);
      }),
    );
    assert.throws(() => invertOperations(5, [{ type: 'Multiply', value: 0 }]), /multiplies by 0/);
  });
});

describe('operations, data-write bytes, UUIDs and MACs', () => {
  it('parses orderOfOperations as upstream JSON or compact text', () => {
    assert.deepEqual(parseOperationsText('[{"operationType":"Multiply","operationValue":0.03125}]'), [{ type: 'Multiply', value: 0.03125 }]);
    assert.deepEqual(parseOperationsText('Divide:100, add:-40; MULTIPLY 2'), [
      { type: 'Divide', value: 100 },
      { type: 'Add', value: -40 },
      { type: 'Multiply', value: 2 },
    ]);
    assert.deepEqual(parseOperationsText('  '), []);
    assert.throws(() => parseOperationsText('Modulo:3'), /operationType "Modulo" is not one of Add, Subtract, Multiply, Divide/);
    assert.throws(() => parseOperationsText('Add:x'), /operationValue "x" is not a number/);
    assert.throws(() => parseOperationsText('Divide:0'), /Divide by 0/);
    assert.throws(() => parseOperationsText('[{"operationType":"Add"'), /not valid JSON/);
  });

  it("parses dataWrite values like Go's []byte JSON (list or base64) plus 0x hex", () => {
    assert.deepEqual(parseByteString([1, 0]), bytes(1, 0));
    assert.deepEqual(parseByteString('AQA='), bytes(1, 0));
    assert.deepEqual(parseByteString('0x01ff'), bytes(1, 0xff));
    assert.deepEqual(parseByteString(7), bytes(7));
    assert.throws(() => parseByteString([1, 256]), /byte 2 \(256\) is not an integer 0-255/);
    assert.throws(() => parseByteString('ON!'), /neither a list of bytes, base64 nor 0x-prefixed hex/);
  });

  it('canonicalises UUIDs in every spelling, including noble\'s unpadded 16-bit form', () => {
    for (const s of ['2A19', '0x2a19', '00002a19-0000-1000-8000-00805f9b34fb', '00002A1900001000800000805F9B34FB', '00002a19']) assert.equal(canonicalUuid(s), '2a19');
    assert.equal(canonicalUuid('a01'), '0a01');
    assert.equal(canonicalUuid('f000aa01-0451-4000-b000-000000000000'), 'f000aa0104514000b000000000000000');
    assert.equal(canonicalUuid('xyz'), undefined);
    assert.equal(canonicalUuid('12345'), undefined);
    assert.equal(canonicalMac('A4:C1:38:1A:49:90'), 'a4:c1:38:1a:49:90');
    assert.equal(canonicalMac('a4-c1-38-1a-49-90'), 'a4:c1:38:1a:49:90');
    assert.equal(canonicalMac('a4c1381a4990'), 'a4:c1:38:1a:49:90');
    assert.equal(canonicalMac('a4:c1:38'), undefined);
  });
});

describe('visitor and protocol configData', () => {
  it("takes upstream's converter flattened, as DMI must carry it", () => {
    const v = visitor({ characteristicUUID: 'ebe0ccc1-7a0a-4b0c-8a1a-6ff2997da3a6', startIndex: 2, endIndex: 2, orderOfOperations: 'Divide:100' });
    assert.deepEqual(v.converter, conv(2, 2));
    assert.deepEqual(v.operations, [{ type: 'Divide', value: 100 }]);
    assert.equal(v.characteristic, 'ebe0ccc17a0a4b0c8a1a6ff2997da3a6');
    assert.equal(v.mode, 'auto');
  });

  it("takes upstream's nested dataConverter and dataWrite as JSON text (the CC2650 sample)", () => {
    const v = visitor({
      characteristicUUID: 'f000aa0104514000b000000000000000',
      dataConverter: '{"startIndex":1,"endIndex":0,"shiftRight":2,"orderOfOperations":[{"operationType":"Multiply","operationValue":0.03125}]}',
    });
    assert.deepEqual(v.converter, conv(1, 0, 0, 2));
    assert.deepEqual(v.operations, [{ type: 'Multiply', value: 0.03125 }]);
    const w = visitor({ characteristicUUID: 'f000aa0204514000b000000000000000', dataWrite: '{"ON":[1],"OFF":[0]}' });
    assert.deepEqual([...w.dataWrite!.entries()], [
      ['ON', bytes(1)],
      ['OFF', bytes(0)],
    ]);
  });

  it('takes nested objects when the config does not cross DMI', () => {
    const v = visitor({ characteristicUUID: '2a6e', dataConverter: { startIndex: 1, endIndex: 0, orderOfOperations: [{ operationType: 'Add', operationValue: 1 }] }, dataWrite: { ON: [1] } });
    assert.deepEqual(v.converter, conv(1, 0));
    assert.deepEqual(v.operations, [{ type: 'Add', value: 1 }]);
    assert.deepEqual(v.dataWrite?.get('ON'), bytes(1));
  });

  it('survives the DMI wire: flat keys through edgecore-style Any encoding (numbers as float32)', () => {
    const raw = { characteristicUUID: '2A6E', serviceUUID: '181A', dataFormat: 'INT16', byteOrder: 'little', orderOfOperations: 'Multiply:0.01', mode: 'Notify', writeWithoutResponse: 'false', offset: 0 };
    const wire = decodeCustomizedValue(encodeCustomizedValue(raw), () => assert.fail('no key may be dropped'));
    const v = visitor(wire);
    assert.equal(v.characteristic, '2a6e');
    assert.equal(v.service, '181a');
    assert.equal(v.format, 'int16');
    assert.equal(v.mode, 'notify');
    assert.equal(v.writeWithoutResponse, false);
    assert.deepEqual(v.operations, [{ type: 'Multiply', value: 0.01 }]);
    assert.throws(() => encodeCustomizedValue({ dataConverter: { startIndex: 1 } }), /cannot be sent over DMI/, 'a nested dataConverter cannot cross DMI, hence the flat keys');
  });

  it('rejects bad visitors naming the key', () => {
    assert.deepEqual(visitorError({ characteristicUUID: 'temp' }).path, 'characteristicUUID');
    assert.match(visitorError({ characteristicUUID: 'temp' }).message, /"temp" is not a UUID/);
    assert.equal(visitorError({ characteristicUUID: '2a6e', startIndex: 1, dataConverter: '{"startIndex":2}' }).path, 'startIndex');
    assert.match(visitorError({ characteristicUUID: '2a6e', dataFormat: 'int16', startIndex: 0 }).message, /dataFormat int16 cannot be combined with upstream's startIndex/);
    assert.equal(visitorError({ characteristicUUID: '2a6e', offset: 1 }).path, 'offset');
    assert.equal(visitorError({ characteristicUUID: '2a6e', byteOrder: 'big' }).path, 'byteOrder');
    assert.match(visitorError({ characteristicUUID: '2a6e', orderOfOperations: 'Pow:2' }).message, /operationType "Pow"/);
    assert.match(visitorError({ characteristicUUID: '2a6e', dataWrite: '{"ON":[300]}' }).message, /entry "ON": byte 1 \(300\)/);
    assert.equal(visitorError({ characteristicUUID: '2a6e', dataFormat: 'int24' }).path, 'dataFormat');
    assert.equal(visitorError({ characteristicUUID: '2a6e', mode: 'poll' }).path, 'mode');
  });

  it('identifies a device by MAC address, local name or both', () => {
    assert.deepEqual(protocolConfigSchema.parse({ macAddress: 'A4:C1:38:1A:49:90' }), { macAddress: 'a4:c1:38:1a:49:90', localName: undefined, scanTimeoutMs: 5000 });
    assert.deepEqual(protocolConfigSchema.parse({ localName: 'LYWSD03MMC', scanTimeoutMs: 800 }), { macAddress: undefined, localName: 'LYWSD03MMC', scanTimeoutMs: 800 });
    const none = protocolConfigSchema.safeParse({ macAddress: '' });
    assert.ok(!none.success && /needs macAddress or localName/.test(none.error.issues[0]!.message));
    const bad = protocolConfigSchema.safeParse({ macAddress: 'A4:C1:38' });
    assert.ok(!bad.success && bad.error.issues[0]!.path[0] === 'macAddress');
  });
});

describe('property values from and to bytes', () => {
  const dec = (data: Uint8Array, raw: Record<string, unknown>, type: Parameters<typeof decodeValue>[2]): PropertyValue => decodeValue(data, visitor({ characteristicUUID: '2a6e', ...raw }), type);

  it('typed decode then operations, in the model type', () => {
    assert.equal(dec(bytes(0x66, 0x08), { dataFormat: 'int16', orderOfOperations: 'Multiply:0.01' }, 'float'), 21.5);
    assert.equal(dec(bytes(0x66, 0x08), { dataFormat: 'int16', orderOfOperations: 'Multiply:0.01' }, 'int'), 21);
    assert.equal(dec(bytes(0x66, 0x08), { dataFormat: 'int16', orderOfOperations: 'Multiply:0.01' }, 'string'), '21.5');
    assert.equal(dec(bytes(0x00), { dataFormat: 'uint8' }, 'boolean'), false);
    assert.equal(dec(Buffer.from('42'), { dataFormat: 'utf8' }, 'int'), 42);
    assert.throws(() => dec(Buffer.from('4x'), { dataFormat: 'utf8' }, 'int'), /the device sent "4x", which is not a int/);
  });

  it('removes float64 noise after arithmetic; FLOAT is float32 like KubeEdge, DOUBLE keeps float64', () => {
    // 1999 × 0.01 is 19.990000000000002 in float64.
    assert.equal(dec(bytes(0xcf, 0x07), { dataFormat: 'int16', orderOfOperations: 'Multiply:0.01' }, 'double'), 19.99);
    assert.equal(dec(bytes(0xcf, 0x07), { dataFormat: 'int16', orderOfOperations: 'Multiply:0.01' }, 'float'), 19.99);
    assert.equal(dec(bytes(0xcf, 0x07), { startIndex: 0, endIndex: 0, orderOfOperations: 'Multiply:0.1' }, 'double'), 20.7);
    const f = Buffer.alloc(8);
    f.writeDoubleLE(0.1 + 0.2);
    assert.equal(dec(f, { dataFormat: 'float64' }, 'double'), 0.30000000000000004, 'a decoded float64 is not rounded');
    assert.equal(dec(f, { dataFormat: 'float64' }, 'float'), 0.3, 'a FLOAT property is a float32');
  });

  it("upstream's converter gives upstream's %f text in STRING properties", () => {
    assert.equal(dec(bytes(0x5c, 0x08, 45), { startIndex: 2, endIndex: 2, orderOfOperations: 'Divide:100' }, 'string'), '0.450000');
    assert.equal(dec(bytes(0x5c, 0x08, 45), { startIndex: 2, endIndex: 2 }, 'int'), 45);
    // Only orderOfOperations: upstream's zero-valued indices read byte 0.
    assert.equal(dec(bytes(7, 9), { orderOfOperations: 'Add:1' }, 'double'), 8);
  });

  it('reads a dataWrite switch back by name, strings as UTF-8, bytes raw', () => {
    assert.equal(dec(bytes(1), { dataWrite: '{"ON":[1],"OFF":[0]}' }, 'string'), 'ON');
    assert.equal(dec(bytes(1), { dataWrite: '{"true":[1],"false":[0]}' }, 'boolean'), true);
    assert.equal(dec(Buffer.from('Env\0'), {}, 'string'), 'Env');
    assert.deepEqual(dec(bytes(1, 2), { dataFormat: 'int16' }, 'bytes'), bytes(1, 2));
    assert.equal(dec(bytes(0, 4), {}, 'boolean'), true);
  });

  it('asks for a decode instead of guessing one for numeric properties (unlike upstream, kubeedge/kubeedge#734)', () => {
    assert.throws(() => dec(bytes(1, 2), {}, 'int'), (e: unknown) => isMapperError(e) && e.kind === 'InvalidConfig' && /needs dataFormat/.test(e.message));
  });

  it('encodes writes through dataWrite first, then the typed format with operations undone', () => {
    const sw = visitor({ characteristicUUID: 'fff1', dataWrite: '{"ON":[1],"OFF":[0]}' });
    assert.deepEqual(encodeValue('ON', sw, 'string'), bytes(1));
    assert.deepEqual(encodeValue('off', sw, 'string'), bytes(0));
    assert.throws(() => encodeValue(5, sw, 'int'), (e: unknown) => isMapperError(e) && e.kind === 'WriteRejected' && /no dataWrite entry for "5" \(dataWrite has "ON", "OFF"\)/.test(e.message));
    assert.throws(() => encodeValue('HALF', sw, 'string'), /no dataWrite entry for "HALF"/, 'a dataWrite map is the list of values the device understands');
    const swAndFormat = visitor({ characteristicUUID: 'fff1', dataWrite: '{"ON":[1],"OFF":[0]}', dataFormat: 'uint8' });
    assert.deepEqual(encodeValue('7', swAndFormat, 'string'), bytes(7), 'with dataFormat too, other values are encoded');
    assert.throws(() => encodeValue(5, visitor({ characteristicUUID: 'fff1' }), 'int'), /a int value needs dataWrite or dataFormat/);
    const sp = visitor({ characteristicUUID: 'fff5', dataFormat: 'int16', orderOfOperations: 'Multiply:0.1' });
    assert.deepEqual(encodeValue(21.5, sp, 'float'), bytes(215, 0));
    assert.deepEqual(encodeValue(-0.3, sp, 'double'), bytes(0xfd, 0xff));
    assert.deepEqual(encodeValue(true, visitor({ characteristicUUID: 'fff1', dataFormat: 'uint8' }), 'boolean'), bytes(1));
    assert.deepEqual(encodeValue('hi', visitor({ characteristicUUID: 'fff1' }), 'string'), new Uint8Array(Buffer.from('hi')));
    assert.deepEqual(encodeValue(false, visitor({ characteristicUUID: 'fff1' }), 'boolean'), bytes(0));
  });
});
