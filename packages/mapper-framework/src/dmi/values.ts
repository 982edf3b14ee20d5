// SPDX-License-Identifier: Apache-2.0
// Number and value formatting that matches what Go mappers see and print.

/**
 * The number whose shortest decimal text round-trips through float32 to `f32`, which is
 * how Go prints a float32 (`strconv.FormatFloat(v, 'f', -1, 32)`): FloatValue 0.1 → 0.1,
 * 5502 → 5502, not 0.10000000149011612.
 */
export function shortestFloat32(f32: number): number {
  if (!Number.isFinite(f32) || f32 === 0) return f32;
  const target = Math.fround(f32);
  for (let digits = 1; digits <= 9; digits++) {
    const candidate = Number(target.toPrecision(digits));
    if (Math.fround(candidate) === target) return candidate;
  }
  return target;
}

/** Decimal text of a number without exponent, shortest round-trip digits (Go's `FormatFloat(v,'f',-1,64)`). */
export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return n > 0 ? '+Inf' : n < 0 ? '-Inf' : 'NaN';
  if (Object.is(n, -0)) return '0';
  const s = String(n);
  const e = s.indexOf('e');
  if (e < 0) return s;
  // Expand exponent notation: mantissa digits shifted by the exponent.
  const neg = s.startsWith('-');
  const mantissa = s.slice(neg ? 1 : 0, e);
  const exp = Number(s.slice(e + 1));
  const [intPart = '', fracPart = ''] = mantissa.split('.');
  const digits = intPart + fracPart;
  const point = intPart.length + exp;
  let out: string;
  if (point <= 0) out = `0.${'0'.repeat(-point)}${digits}`;
  else if (point >= digits.length) out = digits + '0'.repeat(point - digits.length);
  else out = `${digits.slice(0, point)}.${digits.slice(point)}`;
  return neg ? `-${out}` : out;
}
