// SPDX-License-Identifier: Apache-2.0
// Property values: text on the wire (twins, desired values, REST) <-> typed values drivers see.
import { formatNumber } from './dmi/values.js';
import type { PropertyType } from './dmi/model.js';
import { MapperError } from './errors.js';

/** A property value as drivers read and write it. `bytes` properties use Uint8Array. */
export type PropertyValue = string | number | bigint | boolean | Uint8Array;

const TRUE_TEXT = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE_TEXT = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/**
 * Parses desired/REST text into a typed value for a model type, as upstream's
 * `Convert` does: `int` → integer (bigint beyond 2^53), `float` → float32-rounded number,
 * `double` → number, `boolean` → Go ParseBool spellings, `string` as is, `bytes` → base64.
 * Throws MapperError('WriteRejected') with the offending text.
 */
export function parseValue(text: string, type: PropertyType): PropertyValue {
  const t = text.trim();
  switch (type) {
    case 'int': {
      if (!/^[+-]?\d+$/.test(t)) throw new MapperError('WriteRejected', `"${text}" is not an integer`);
      const big = BigInt(t);
      return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
    }
    case 'float':
    case 'double': {
      const n = t === '' ? Number.NaN : Number(t);
      if (!Number.isFinite(n)) throw new MapperError('WriteRejected', `"${text}" is not a number`);
      return type === 'float' ? Math.fround(n) : n;
    }
    case 'boolean':
      if (TRUE_TEXT.has(t)) return true;
      if (FALSE_TEXT.has(t)) return false;
      throw new MapperError('WriteRejected', `"${text}" is not a boolean (true/false/1/0)`);
    case 'string':
      return text;
    case 'bytes':
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t)) throw new MapperError('WriteRejected', `"${text}" is not base64`);
      return new Uint8Array(Buffer.from(t, 'base64'));
    case 'stream':
      throw new MapperError('Unsupported', 'stream properties cannot be written');
  }
}

/**
 * Text of a value for twins, sinks and REST, as upstream's `ConvertToString`: numbers in
 * shortest round-trip decimal without exponent, booleans `true`/`false`, bytes as base64.
 */
export function formatValue(value: PropertyValue): string {
  switch (typeof value) {
    case 'number':
      return formatNumber(value);
    case 'bigint':
      return value.toString();
    case 'boolean':
      return value ? 'true' : 'false';
    case 'string':
      return value;
    default:
      return Buffer.from(value).toString('base64');
  }
}

/** Throws MapperError('WriteRejected') if a numeric value is outside [minimum, maximum]. */
export function checkRange(value: PropertyValue, bounds: { minimum: number | undefined; maximum: number | undefined }): void {
  if (typeof value !== 'number' && typeof value !== 'bigint') return;
  const n = Number(value);
  if (bounds.minimum !== undefined && n < bounds.minimum)
    throw new MapperError('WriteRejected', `value ${formatValue(value)} is below the minimum ${bounds.minimum}`);
  if (bounds.maximum !== undefined && n > bounds.maximum)
    throw new MapperError('WriteRejected', `value ${formatValue(value)} is above the maximum ${bounds.maximum}`);
}
