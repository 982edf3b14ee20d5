// SPDX-License-Identifier: Apache-2.0
// Protocol and visitor configData of BLE devices. DMI v1beta1 carries configData as a flat map
// of scalars (edgecore refuses nested objects and lists), so upstream's nested `dataConverter`
// and `dataWrite` are accepted flattened (`startIndex`, `orderOfOperations`, …) or as JSON text,
// and as real objects when a config does not travel over DMI.
import { z } from '@mapperkit/framework';
import {
  type ByteOrder,
  DATA_FORMATS,
  type DataFormat,
  type Operation,
  parseByteString,
  parseOperationList,
  parseOperationsText,
  type UpstreamConverter,
} from './converter.js';
import { canonicalMac, canonicalUuid, displayUuid } from './uuid.js';

/** How a property gets its values. */
export type VisitorMode = 'auto' | 'read' | 'notify';

/** A parsed and validated visitor. */
export interface BleVisitor {
  /** Canonical characteristic UUID (see canonicalUuid). */
  readonly characteristic: string;
  /** Canonical service UUID, when the visitor names one. */
  readonly service: string | undefined;
  /**
   * `auto` (upstream's behaviour): notifications when the characteristic supports notify or
   * indicate and has a CCCD, else polling by GATT read. `read`: always poll. `notify`: always
   * by notification (an error when the characteristic cannot notify).
   */
  readonly mode: VisitorMode;
  /** Upstream's index/shift converter, when any of its keys is given. */
  readonly converter: UpstreamConverter | undefined;
  /** Upstream's `orderOfOperations`, applied after the converter or the typed decode. */
  readonly operations: readonly Operation[];
  /** Typed decode/encode, when given. */
  readonly format: DataFormat | undefined;
  readonly byteOrder: ByteOrder;
  /** Byte offset of a typed decode. */
  readonly offset: number;
  /** Upstream's `dataWrite`: value text → bytes to write. */
  readonly dataWrite: ReadonlyMap<string, Uint8Array> | undefined;
  /** Force write-without-response (true) or write-with-response (false); default: what the characteristic supports, with response preferred. */
  readonly writeWithoutResponse: boolean | undefined;
  /** For messages: the UUID as the user wrote it, normalised. */
  readonly label: string;
}

/** A parsed and validated protocol config. */
export interface BleProtocol {
  /** Canonical MAC address (`aa:bb:cc:dd:ee:ff`), when given. */
  readonly macAddress: string | undefined;
  /** Advertised local name, when given. A device must match every criterion given. */
  readonly localName: string | undefined;
  /** How long connect() scans for the device before giving up with Unreachable. */
  readonly scanTimeoutMs: number;
}

const boolLike = z.union([z.boolean(), z.enum(['true', 'false', 'True', 'False', 'TRUE', 'FALSE', '1', '0'])]).transform((v) => v === true || (typeof v === 'string' && ['true', 'True', 'TRUE', '1'].includes(v)));
const index = z.coerce.number().int().nonnegative();
const lowerEnum = <const T extends readonly [string, ...string[]]>(values: T) => z.preprocess((v) => (typeof v === 'string' ? v.trim().toLowerCase() : v), z.enum(values));

const CONVERTER_KEYS = ['startIndex', 'endIndex', 'shiftLeft', 'shiftRight'] as const;

const nestedConverter = z
  .object({
    startIndex: index.optional(),
    endIndex: index.optional(),
    shiftLeft: index.optional(),
    shiftRight: index.optional(),
    orderOfOperations: z.unknown().optional(),
  })
  .strict();

/** Schema of a property's visitor configData. */
export const visitorConfigSchema = z
  .object({
    characteristicUUID: z.string().min(1, 'characteristicUUID is required'),
    serviceUUID: z.string().optional(),
    mode: lowerEnum(['auto', 'read', 'notify']).optional(),
    dataConverter: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
    startIndex: index.optional(),
    endIndex: index.optional(),
    shiftLeft: index.optional(),
    shiftRight: index.optional(),
    orderOfOperations: z.union([z.string(), z.array(z.unknown())]).optional(),
    dataWrite: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
    dataFormat: lowerEnum(DATA_FORMATS).optional(),
    byteOrder: lowerEnum(['little', 'big']).optional(),
    offset: index.optional(),
    writeWithoutResponse: boolLike.optional(),
  })
  .transform((v, ctx): BleVisitor => {
    const fail = (path: string, message: string): never => {
      ctx.addIssue({ code: 'custom', path: [path], message });
      return z.NEVER as never;
    };
    const characteristic = canonicalUuid(v.characteristicUUID) ?? fail('characteristicUUID', `"${v.characteristicUUID}" is not a UUID (expected e.g. 2a19 or 0000ffe1-0000-1000-8000-00805f9b34fb)`);
    let service: string | undefined;
    if (v.serviceUUID !== undefined && v.serviceUUID.trim() !== '') {
      service = canonicalUuid(v.serviceUUID) ?? fail('serviceUUID', `"${v.serviceUUID}" is not a UUID`);
    }

    // Upstream's nested dataConverter, as an object or JSON text; flat keys may not repeat it.
    const conv: Record<string, number | undefined> = { startIndex: v.startIndex, endIndex: v.endIndex, shiftLeft: v.shiftLeft, shiftRight: v.shiftRight };
    let opsSource: unknown = v.orderOfOperations;
    let opsKey = 'orderOfOperations';
    if (v.dataConverter !== undefined) {
      let raw: unknown = v.dataConverter;
      if (typeof raw === 'string') {
        try {
          raw = JSON.parse(raw);
        } catch (err) {
          return fail('dataConverter', `not valid JSON: ${(err as Error).message}`);
        }
      }
      const nested = nestedConverter.safeParse(raw);
      if (!nested.success) {
        const issue = nested.error.issues[0];
        return fail('dataConverter', `${issue?.path.join('.') || 'value'}: ${issue?.message ?? 'invalid'}`);
      }
      for (const k of CONVERTER_KEYS) {
        const n = nested.data[k];
        if (n === undefined) continue;
        if (conv[k] !== undefined) return fail(k, `given both as ${k} and inside dataConverter; use one`);
        conv[k] = n;
      }
      if (nested.data.orderOfOperations !== undefined) {
        if (opsSource !== undefined) return fail('orderOfOperations', 'given both as orderOfOperations and inside dataConverter; use one');
        opsSource = nested.data.orderOfOperations;
        opsKey = 'dataConverter';
      }
    }

    let operations: Operation[] = [];
    if (opsSource !== undefined) {
      try {
        operations = typeof opsSource === 'string' ? parseOperationsText(opsSource) : parseOperationList(opsSource);
      } catch (err) {
        return fail(opsKey, `orderOfOperations ${(err as Error).message}`);
      }
    }

    const converterGiven = CONVERTER_KEYS.some((k) => conv[k] !== undefined);
    const format = v.dataFormat;
    if (format !== undefined && converterGiven) {
      const keys = CONVERTER_KEYS.filter((k) => conv[k] !== undefined).join(', ');
      return fail('dataFormat', `dataFormat ${format} cannot be combined with upstream's ${keys}; a typed decode uses offset and byteOrder`);
    }
    if (format === undefined && v.offset !== undefined) return fail('offset', 'offset applies to a typed decode; set dataFormat too');
    if (format === undefined && v.byteOrder !== undefined) return fail('byteOrder', 'byteOrder applies to a typed decode; set dataFormat too (upstream orders bytes by startIndex > endIndex)');

    let dataWrite: Map<string, Uint8Array> | undefined;
    if (v.dataWrite !== undefined) {
      let raw: unknown = v.dataWrite;
      if (typeof raw === 'string') {
        try {
          raw = JSON.parse(raw);
        } catch (err) {
          return fail('dataWrite', `not valid JSON: ${(err as Error).message} (expected e.g. {"ON":[1],"OFF":[0]})`);
        }
      }
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail('dataWrite', 'expected a map from value to bytes, e.g. {"ON":[1],"OFF":[0]}');
      dataWrite = new Map();
      for (const [name, bytes] of Object.entries(raw)) {
        try {
          dataWrite.set(name, parseByteString(bytes));
        } catch (err) {
          return fail('dataWrite', `entry "${name}": ${(err as Error).message}`);
        }
      }
    }

    return {
      characteristic,
      service,
      mode: v.mode ?? 'auto',
      converter: converterGiven
        ? { startIndex: conv['startIndex'] ?? 0, endIndex: conv['endIndex'] ?? 0, shiftLeft: conv['shiftLeft'] ?? 0, shiftRight: conv['shiftRight'] ?? 0 }
        : undefined,
      operations,
      format,
      byteOrder: v.byteOrder ?? 'little',
      offset: v.offset ?? 0,
      dataWrite,
      writeWithoutResponse: v.writeWithoutResponse,
      label: service ? `${displayUuid(service)}/${displayUuid(characteristic)}` : displayUuid(characteristic),
    };
  });

/** Schema of a device's protocol configData. */
export const protocolConfigSchema = z
  .object({
    /** Upstream's key. `AA:BB:CC:DD:EE:FF`, `aa-bb-…` or 12 hex digits. */
    macAddress: z.string().optional(),
    localName: z.string().optional(),
    scanTimeoutMs: z.coerce.number().int().positive().default(5000),
  })
  .transform((v, ctx): BleProtocol => {
    let macAddress: string | undefined;
    if (v.macAddress !== undefined && v.macAddress.trim() !== '') {
      macAddress = canonicalMac(v.macAddress);
      if (!macAddress) {
        ctx.addIssue({ code: 'custom', path: ['macAddress'], message: `"${v.macAddress}" is not a MAC address (expected AA:BB:CC:DD:EE:FF)` });
        return z.NEVER as never;
      }
    }
    const localName = v.localName !== undefined && v.localName !== '' ? v.localName : undefined;
    if (!macAddress && !localName) {
      ctx.addIssue({ code: 'custom', path: ['macAddress'], message: 'a BLE device needs macAddress or localName' });
      return z.NEVER as never;
    }
    return { macAddress, localName, scanTimeoutMs: v.scanTimeoutMs };
  });

/** How a device is identified, for messages. */
export function describeTarget(p: BleProtocol): string {
  if (p.macAddress && p.localName) return `${p.macAddress} ("${p.localName}")`;
  return p.macAddress ?? `"${p.localName ?? ''}"`;
}
