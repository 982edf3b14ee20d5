// SPDX-License-Identifier: Apache-2.0
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkRange, formatValue, MapperError, parseValue } from '@mapperkit/framework';
import { formatNumber, shortestFloat32 } from '@mapperkit/framework/dmi';

describe('number formatting as Go prints it', () => {
  it('shortest float32 decimal', () => {
    assert.equal(shortestFloat32(Math.fround(0.1)), 0.1);
    assert.equal(shortestFloat32(Math.fround(1.2345678)), 1.2345678);
    assert.equal(shortestFloat32(Math.fround(1e-7)), 1e-7);
    assert.equal(shortestFloat32(0), 0);
  });
  it('no exponent notation (strconv.FormatFloat f, -1)', () => {
    assert.equal(formatNumber(1e21), '1000000000000000000000');
    assert.equal(formatNumber(1.5e-7), '0.00000015');
    assert.equal(formatNumber(-2.5e22), '-25000000000000000000000');
    assert.equal(formatNumber(123.456), '123.456');
    assert.equal(formatNumber(-0), '0');
  });
});

describe('property values', () => {
  it('parses desired text per model type (upstream Convert)', () => {
    assert.equal(parseValue('42', 'int'), 42);
    assert.equal(parseValue('-9223372036854775808', 'int'), -9223372036854775808n);
    assert.equal(parseValue('21.5', 'float'), 21.5);
    assert.equal(parseValue('0.1', 'float'), Math.fround(0.1));
    assert.equal(parseValue('0.1', 'double'), 0.1);
    for (const t of ['1', 't', 'T', 'TRUE', 'true', 'True']) assert.equal(parseValue(t, 'boolean'), true);
    for (const f of ['0', 'f', 'F', 'FALSE', 'false', 'False']) assert.equal(parseValue(f, 'boolean'), false);
    assert.equal(parseValue(' spaced ', 'string'), ' spaced ');
    assert.deepEqual(parseValue('AQI=', 'bytes'), new Uint8Array([1, 2]));
  });
  it('rejects bad text with WriteRejected, quoting it', () => {
    assert.throws(() => parseValue('4.2', 'int'), (e: unknown) => e instanceof MapperError && e.kind === 'WriteRejected' && /"4.2" is not an integer/.test(e.message));
    assert.throws(() => parseValue('warm', 'float'), /"warm" is not a number/);
    assert.throws(() => parseValue('yes', 'boolean'), /"yes" is not a boolean/);
    assert.throws(() => parseValue('x', 'stream'), (e: unknown) => e instanceof MapperError && e.kind === 'Unsupported');
  });
  it('formats values for twins (upstream ConvertToString)', () => {
    assert.equal(formatValue(21.5), '21.5');
    assert.equal(formatValue(1e21), '1000000000000000000000');
    assert.equal(formatValue(12n), '12');
    assert.equal(formatValue(false), 'false');
    assert.equal(formatValue(new Uint8Array([1, 2])), 'AQI=');
  });
  it('checks model minimum/maximum', () => {
    checkRange(10, { minimum: 5, maximum: 30 });
    assert.throws(() => checkRange(31, { minimum: 5, maximum: 30 }), /above the maximum 30/);
    assert.throws(() => checkRange(4n, { minimum: 5, maximum: undefined }), /below the minimum 5/);
    checkRange('text', { minimum: 5, maximum: 30 });
  });
});

describe('boolish() config schema', () => {
  it('reads booleans, 1/0 and text, with "false" as false', async () => {
    const { boolish } = await import('@mapperkit/framework');
    const s = boolish() as unknown as { parse(v: unknown): boolean; safeParse(v: unknown): { success: true } | { success: false; error: { issues: { message: string }[] } } };
    for (const [input, out] of [[true, true], [false, false], [1, true], [0, false], ['false', false], ['TRUE', true], ['0', false], ['yes', true], ['off', false]] as const) {
      assert.equal(s.parse(input), out, `boolish(${JSON.stringify(input)})`);
    }
    const bad = s.safeParse('maybe');
    assert.ok(!bad.success && bad.error.issues[0]?.message === '"maybe" is not a boolean (true/false, 1/0)');
    assert.equal(s.safeParse(2).success, false);
  });
});
