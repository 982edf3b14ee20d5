// SPDX-License-Identifier: Apache-2.0
// Modbus exception responses and transport failures as MapperErrors.
import { MapperError, type MapperErrorKind } from '@mapperkit/framework';

/** Exception codes of the Modbus application protocol (spec v1.1b3 §7). */
export const EXCEPTION_NAMES: Readonly<Record<number, string>> = {
  1: 'illegal function',
  2: 'illegal data address',
  3: 'illegal data value',
  4: 'server device failure',
  5: 'acknowledge',
  6: 'server device busy',
  8: 'memory parity error',
  10: 'gateway path unavailable',
  11: 'gateway target device failed to respond',
};

/** An exception response from a slave: it is alive, but refused this request. */
export class ModbusExceptionError extends MapperError {
  readonly exceptionCode: number;

  constructor(kind: MapperErrorKind, code: number, message: string, options: { device?: string; property?: string } = {}) {
    super(kind, message, options);
    this.exceptionCode = code;
  }
}

/** Error kind of an exception response. Writes refused for the address or value are not retried (WriteRejected). */
export function exceptionKind(code: number, write: boolean): MapperErrorKind {
  if (code === 6 || code === 5) return 'Busy';
  if (code === 10) return 'Unreachable';
  if (code === 11) return 'Timeout';
  if (write && (code === 1 || code === 2 || code === 3)) return 'WriteRejected';
  return 'DeviceError';
}

/** Exceptions after which a merged read is split to find the refused register. */
export function isAddressException(code: number): boolean {
  return code === 2 || code === 3 || code === 4;
}

/** Gateway exceptions mean the slave behind it did not answer: they count against its circuit breaker. */
export function isGatewayFailure(code: number): boolean {
  return code === 10 || code === 11;
}

export function exceptionText(code: number): string {
  return `Modbus exception ${code} (${EXCEPTION_NAMES[code] ?? 'unknown'})`;
}
