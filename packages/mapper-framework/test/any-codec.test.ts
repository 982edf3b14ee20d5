// SPDX-License-Identifier: Apache-2.0
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeAny, decodeCustomizedValue, encodeAnyAs, encodeAnyLikeEdgecore, encodeCustomizedValue, type Any } from '@mapperkit/framework/dmi';
import { MapperError } from '@mapperkit/framework';

const url = (t: string): string => `type.googleapis.com/google.protobuf.${t}`;
const any = (t: string, hex: string): Any => ({ typeUrl: url(t), value: Buffer.from(hex, 'hex') });

describe('Any codec: decoding wrapper payloads (vectors are the protobuf wire bytes Go produces)', () => {
  it('StringValue', () => assert.equal(decodeAny(any('StringValue', '0a0431323737')), '1277'));
  it('BoolValue true, and an empty payload as false', () => {
    assert.equal(decodeAny(any('BoolValue', '0801')), true);
    assert.equal(decodeAny(any('BoolValue', '')), false);
  });
  it('Int32Value, including negatives', () => {
    assert.equal(decodeAny(any('Int32Value', '08be2a')), 5438);
    assert.equal(decodeAny(any('Int32Value', '08ffffffffffffffffff01')), -1);
  });
  it('Int64Value: safe integers as numbers, larger ones as exact decimal text', () => {
    assert.equal(decodeAny(any('Int64Value', '08e807')), 1000);
    // 2^60 + 1
    assert.equal(decodeAny(encodeAnyAs('Int64', 1152921504606846977n)), '1152921504606846977');
  });
  it('FloatValue keeps float32 semantics as Go prints them: 0.1 stays 0.1, 5502 stays 5502', () => {
    assert.equal(decodeAny(any('FloatValue', '0dcdcccc3d')), 0.1); // float32(0.1) = 0x3dcccccd
    assert.equal(decodeAny(any('FloatValue', '0d00f0ab45')), 5502); // float32(5502) = 0x45abf000
    assert.equal(decodeAny(encodeAnyAs('Float', 3.14159)), 3.14159);
    assert.equal(decodeAny(encodeAnyAs('Float', 21.7)), 21.7);
    assert.equal(decodeAny(encodeAnyAs('Float', -0.001)), -0.001);
    // Beyond 2^24 float32 cannot hold every integer: edgecore sends 16777217 as 16777216.
    assert.equal(decodeAny(encodeAnyAs('Float', 16777217)), 16777216);
  });
  it('DoubleValue, UInt32Value and UInt64Value are accepted too (forward compatibility)', () => {
    assert.equal(decodeAny(encodeAnyAs('Double', 0.1)), 0.1);
    assert.equal(decodeAny(encodeAnyAs('UInt32', 4294967295)), 4294967295);
    assert.equal(decodeAny(encodeAnyAs('UInt64', 18446744073709551615n)), '18446744073709551615');
  });
  it('accepts any type URL prefix, as Go anypb resolves by the name after the last slash', () => {
    assert.equal(decodeAny({ typeUrl: 'example.com/x/google.protobuf.StringValue', value: Buffer.from('0a0161', 'hex') }), 'a');
  });
  it('rejects unknown types and undecodable bytes with InvalidConfig', () => {
    assert.throws(() => decodeAny(any('Struct', '')), (e: unknown) => e instanceof MapperError && e.kind === 'InvalidConfig' && /unsupported Any type/.test(e.message));
    assert.throws(() => decodeAny({ typeUrl: '', value: Buffer.alloc(0) }), /unsupported Any type "\(empty\)"/);
    assert.throws(() => decodeAny(any('StringValue', '0a05ff')), (e: unknown) => e instanceof MapperError && e.kind === 'InvalidConfig');
  });
});

describe('Any codec: CustomizedValue maps', () => {
  it('skips an undecodable key, reports it by name, and keeps the rest', () => {
    const skipped: string[] = [];
    const out = decodeCustomizedValue(
      { data: { port: any('FloatValue', '0d00f0ab45'), bad: any('Struct', ''), ip: any('StringValue', '0a093132372e302e302e31') } },
      (key) => skipped.push(key),
    );
    assert.deepEqual(out, { port: 5502, ip: '127.0.0.1' });
    assert.deepEqual(skipped, ['bad']);
  });
  it('an absent map decodes to {}', () => assert.deepEqual(decodeCustomizedValue(undefined, () => assert.fail('no skip expected')), {}));
});

describe('Any codec: encoding like edgecore', () => {
  it('strings, booleans, and every number as FloatValue', () => {
    assert.equal(encodeAnyLikeEdgecore('x', 'k').typeUrl, url('StringValue'));
    assert.equal(encodeAnyLikeEdgecore(true, 'k').typeUrl, url('BoolValue'));
    const n = encodeAnyLikeEdgecore(502, 'k');
    assert.equal(n.typeUrl, url('FloatValue'));
    assert.equal(Buffer.from(n.value).toString('hex'), '0d0000fb43'); // float32(502) = 0x43fb0000
    assert.equal(encodeAnyLikeEdgecore(0.1, 'k').value.toString('hex'), '0dcdcccc3d');
  });
  it('rejects nested objects, arrays and null, naming the key', () => {
    assert.throws(() => encodeAnyLikeEdgecore({ a: 1 }, 'configData.tcp'), (e: unknown) => e instanceof MapperError && e.kind === 'InvalidConfig' && e.key === 'configData.tcp' && /an object cannot be sent/.test(e.message));
    assert.throws(() => encodeAnyLikeEdgecore([1], 'configData.list'), /configData.list: an array/);
    assert.throws(() => encodeAnyLikeEdgecore(null, 'configData.n'), /configData.n: null/);
    assert.throws(() => encodeCustomizedValue({ ok: 1, nested: { x: 1 } }, 'protocol.configData'), /protocol\.configData\.nested/);
  });
  it('round-trips a typical protocol config through the wire form', () => {
    const cv = encodeCustomizedValue({ ip: '10.0.0.5', port: 5502, slaveID: 1, scale: 0.1, enabled: true });
    assert.deepEqual(decodeCustomizedValue(cv, () => assert.fail('nothing skipped')), { ip: '10.0.0.5', port: 5502, slaveID: 1, scale: 0.1, enabled: true });
  });
});
