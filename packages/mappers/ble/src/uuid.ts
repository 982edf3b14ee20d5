// SPDX-License-Identifier: Apache-2.0
// GATT UUIDs in every spelling users and noble produce, reduced to one canonical form.

/** The Bluetooth base UUID after the first 8 hex digits (`xxxxxxxx-0000-1000-8000-00805f9b34fb`). */
const BASE_SUFFIX = '00001000800000805f9b34fb';

/**
 * Canonical form of a GATT UUID, for comparison: 4 lower-case hex digits for a UUID in the
 * 16-bit range of the Bluetooth base UUID, 32 lower-case hex digits (no dashes) otherwise.
 *
 * Accepts `2A19`, `0x2a19`, `2a19`, `00002a19-0000-1000-8000-00805f9b34fb`, 32-bit `0000180f`,
 * and noble's own spellings: noble's HCI bindings print 16-bit UUIDs with `toString(16)`, so
 * 0x0a01 arrives as `a01`. Returns `undefined` for anything that is not a UUID.
 */
export function canonicalUuid(input: string): string | undefined {
  let s = input.trim().toLowerCase();
  if (s.startsWith('0x')) s = s.slice(2);
  s = s.replace(/-/g, '');
  if (s.length === 0 || !/^[0-9a-f]+$/.test(s)) return undefined;
  if (s.length <= 4) return s.padStart(4, '0');
  if (s.length === 8) s = s + BASE_SUFFIX;
  if (s.length !== 32) return undefined;
  if (s.startsWith('0000') && s.endsWith(BASE_SUFFIX)) return s.slice(4, 8);
  return s;
}

/** Dashed, human-readable spelling of a canonical UUID (16-bit ones stay 4 digits). */
export function displayUuid(canonical: string): string {
  if (canonical.length !== 32) return canonical;
  return `${canonical.slice(0, 8)}-${canonical.slice(8, 12)}-${canonical.slice(12, 16)}-${canonical.slice(16, 20)}-${canonical.slice(20)}`;
}

/** Canonical MAC address (`aa:bb:cc:dd:ee:ff`), accepting `:` or `-` separators or none; `undefined` if invalid. */
export function canonicalMac(input: string): string | undefined {
  const s = input.trim().toLowerCase().replace(/[:-]/g, '');
  if (!/^[0-9a-f]{12}$/.test(s)) return undefined;
  return s.match(/../g)!.join(':');
}
