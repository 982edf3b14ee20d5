// SPDX-License-Identifier: Apache-2.0
// Protocol and visitor configData of the Modbus driver.
//
// Key names are those of the upstream KubeEdge Modbus mapper (kubeedge/examples
// temperature-sensor-demo, v1beta1), so a Device written for it works unchanged:
//   protocol: communicateMode, slaveID, ip, port, timeout, serialName, baudRate, dataBits,
//             stopBits, parity, rs485Enabled
//   visitor:  dataType, register, offset, limit, scale, isSwap, isRegisterSwap, max, min
// Mapperkit adds optional keys (all flat scalars, as edgecore only carries flat maps):
//   protocol: connectTimeout, interFrameDelay, coalesce, maxGap, maxGapBits,
//             maxRegistersPerRequest, maxBitsPerRequest, breakerThreshold, breakerCooldown
//   visitor:  byteOrder, bitIndex, valueOffset, writeMultiple
// Values arrive as edgecore encodes them: numbers may be float32-rounded floats and some
// upstream samples send numbers and booleans as strings, so every scalar is coerced.
import { z } from '@mapperkit/framework';

/** The four Modbus data tables. */
export type Table = 'coil' | 'discrete' | 'holding' | 'input';

/** What a property's registers hold. */
export type Kind = 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64' | 'float32' | 'float64' | 'boolean' | 'bit' | 'string' | 'bytes';

/** Byte order of multi-byte values: A is the most significant byte. */
export type ByteOrder = 'ABCD' | 'CDAB' | 'BADC' | 'DCBA';

/** Registers (16-bit words) a fixed-width kind occupies. */
export const KIND_WORDS: Readonly<Partial<Record<Kind, number>>> = {
  int16: 1,
  uint16: 1,
  int32: 2,
  uint32: 2,
  float32: 2,
  int64: 4,
  uint64: 4,
  float64: 4,
};

/** Parsed visitor configData: where a property lives and how its registers map to a value. */
export interface ModbusVisitor {
  readonly table: Table;
  /** Register table name as written (for messages). */
  readonly register: string;
  /** PDU address of the first register/bit (upstream `offset`). */
  readonly address: number;
  /** Registers (register tables) or bits (coil/discrete) read for this property. */
  readonly count: number;
  readonly kind: Kind;
  /** Bit of a register (0 = least significant) for `bit` kinds on holding/input registers. */
  readonly bitIndex: number | undefined;
  /** value = raw × scale + valueOffset. */
  readonly scale: number;
  readonly valueOffset: number;
  /** Reverse the order of 16-bit words (upstream `isRegisterSwap`; CDAB, DCBA). */
  readonly wordSwap: boolean;
  /** Swap the two bytes of every word (upstream `isSwap`; BADC, DCBA). */
  readonly byteSwap: boolean;
  /** Limits of written values in engineering units (upstream visitor `min`/`max`). */
  readonly min: number | undefined;
  readonly max: number | undefined;
  /** Write one register with FC16 instead of FC6 (devices that only implement FC16). */
  readonly writeMultiple: boolean;
}

/** Parsed protocol configData of one device. */
export interface ModbusProtocol {
  readonly mode: 'TCP' | 'RTU';
  readonly slaveId: number;
  readonly host: string;
  readonly port: number;
  readonly serialName: string;
  readonly baudRate: number;
  readonly dataBits: 5 | 6 | 7 | 8;
  readonly stopBits: 1 | 2;
  readonly parity: 'none' | 'even' | 'odd';
  readonly rs485Enabled: boolean;
  /** Response timeout of one request, ms. */
  readonly timeoutMs: number;
  /** Timeout of opening the TCP connection / serial port, ms. */
  readonly connectTimeoutMs: number;
  /** Silence between two frames on a serial bus, ms. */
  readonly interFrameDelayMs: number;
  readonly coalesce: boolean;
  /** Largest hole (registers) bridged when merging two reads. */
  readonly maxGap: number;
  /** Largest hole (bits) bridged when merging two coil/discrete reads. */
  readonly maxGapBits: number;
  readonly maxRegisters: number;
  readonly maxBits: number;
  /** Consecutive failures (timeouts, garbled answers) that open a slave's circuit breaker. */
  readonly breakerThreshold: number;
  /** First open period of a slave's circuit breaker, ms (doubles while the slave stays silent, up to 60 s). */
  readonly breakerCooldownMs: number;
}

/** Accepts true/false, "true"/"false" (any case), 1/0, "1"/"0", "yes"/"no", "on"/"off". */
const flag = z.union([z.boolean(), z.number(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    if (v === 0 || v === 1) return v === 1;
  } else {
    const t = v.trim().toLowerCase();
    if (['true', 't', '1', 'yes', 'on'].includes(t)) return true;
    if (['false', 'f', '0', 'no', 'off', ''].includes(t)) return false;
  }
  ctx.addIssue({ code: 'custom', message: `"${String(v)}" is not a boolean (true/false)` });
  return z.NEVER;
});

const num = z
  .union([z.number(), z.string().trim().min(1, 'must be a number').transform(Number)])
  .pipe(z.number().refine(Number.isFinite, 'must be a finite number'));
const int = (min: number, max: number) => num.pipe(z.number().int('must be an integer').min(min).max(max));

/** Copies alias keys onto their canonical key (first alias present wins) so the schema sees one name. */
function withAliases(aliases: Readonly<Record<string, readonly string[]>>) {
  return (raw: unknown): unknown => {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
    const out: Record<string, unknown> = { ...(raw as Record<string, unknown>) };
    for (const [canonical, names] of Object.entries(aliases)) {
      if (out[canonical] !== undefined) continue;
      for (const n of names) {
        if (out[n] !== undefined) {
          out[canonical] = out[n];
          break;
        }
      }
    }
    return out;
  };
}

const TABLES: Readonly<Record<string, Table>> = {
  coil: 'coil',
  coils: 'coil',
  coilregister: 'coil',
  discrete: 'discrete',
  discreteinput: 'discrete',
  discreteinputs: 'discrete',
  discreteinputregister: 'discrete',
  holding: 'holding',
  holdingregister: 'holding',
  holdingregisters: 'holding',
  input: 'input',
  inputregister: 'input',
  inputregisters: 'input',
};

const BYTE_ORDERS: Readonly<Record<string, { wordSwap: boolean; byteSwap: boolean }>> = {
  ABCD: { wordSwap: false, byteSwap: false },
  CDAB: { wordSwap: true, byteSwap: false },
  BADC: { wordSwap: false, byteSwap: true },
  DCBA: { wordSwap: true, byteSwap: true },
  // Common spellings of the same four orders.
  AB: { wordSwap: false, byteSwap: false },
  BA: { wordSwap: false, byteSwap: true },
  BIG: { wordSwap: false, byteSwap: false },
  LITTLE: { wordSwap: true, byteSwap: true },
};

const visitorRaw = z.object({
  register: z.string({ error: 'required: CoilRegister, DiscreteInputRegister, HoldingRegister or InputRegister' }),
  dataType: z.string().optional(),
  offset: int(0, 65535).default(0),
  limit: int(1, 2000).optional(),
  scale: num.optional(),
  valueOffset: num.default(0),
  isSwap: flag.default(false),
  isRegisterSwap: flag.default(false),
  byteOrder: z.string().optional(),
  bitIndex: int(0, 15).optional(),
  max: num.optional(),
  min: num.optional(),
  writeMultiple: flag.default(false),
});

type VisitorRaw = z.infer<typeof visitorRaw>;

function resolveVisitor(v: VisitorRaw, ctx: z.RefinementCtx): ModbusVisitor {
  const fail = (key: string, message: string): never => {
    ctx.addIssue({ code: 'custom', path: [key], message });
    return z.NEVER as never;
  };
  const table = TABLES[v.register.replace(/[\s_-]/g, '').toLowerCase()];
  if (!table) return fail('register', `"${v.register}" is not a register type (CoilRegister, DiscreteInputRegister, HoldingRegister, InputRegister)`);
  const bitTable = table === 'coil' || table === 'discrete';
  const dt = (v.dataType ?? '').trim().toLowerCase();
  let kind: Kind;
  let count: number;
  const limit = v.limit;

  if (bitTable) {
    // Coils and discrete inputs: one bit per address.
    switch (dt) {
      case '':
      case 'bool':
      case 'boolean':
      case 'bit':
        if (limit !== undefined && limit !== 1) fail('limit', `a ${dt || 'boolean'} ${v.register} reads 1 bit; limit is ${limit}`);
        kind = 'boolean';
        count = 1;
        break;
      case 'bytes':
        kind = 'bytes';
        count = limit ?? 8;
        break;
      case 'int':
      case 'integer':
      case 'float':
      case 'double':
      case 'int16':
      case 'uint16':
      case 'int32':
      case 'uint32':
      case 'int64':
      case 'uint64':
        // The bits, least significant first, as an unsigned integer.
        kind = 'uint64';
        count = limit ?? 1;
        if (count > 53) fail('limit', `at most 53 bits can be read as a number; limit is ${count}`);
        break;
      default:
        return fail('dataType', `"${v.dataType}" is not usable on ${v.register} (boolean, int, bytes)`);
    }
    if (v.bitIndex !== undefined) fail('bitIndex', `bitIndex applies to holding and input registers, not ${v.register}`);
    if (count > 2000) fail('limit', `at most 2000 bits fit in one request; limit is ${count}`);
  } else {
    const sized = (widths: Readonly<Record<number, Kind>>, def: number, name: string): void => {
      const n = limit ?? def;
      const k = widths[n];
      if (!k) {
        fail('limit', `dataType ${name} reads ${Object.keys(widths).join(', ')} registers; limit is ${n}`);
        kind = 'uint16';
        count = 1;
        return;
      }
      kind = k;
      count = n;
    };
    kind = 'uint16';
    count = 1;
    switch (dt) {
      // Upstream names: the width comes from `limit`, integers are unsigned (as upstream reads
      // them), and a float in one register is a scaled integer (upstream v1beta1 semantics).
      case '':
      case 'int':
      case 'integer':
        sized({ 1: 'uint16', 2: 'uint32', 4: 'uint64' }, 1, dt || 'int');
        break;
      case 'float':
        sized({ 1: 'uint16', 2: 'float32', 4: 'float64' }, 2, 'float');
        break;
      case 'double':
        sized({ 1: 'uint16', 2: 'float32', 4: 'float64' }, 4, 'double');
        break;
      case 'bool':
      case 'boolean':
      case 'bit':
        if (limit !== undefined && limit !== 1) fail('limit', `a ${dt} on ${v.register} reads 1 register; limit is ${limit}`);
        if (dt === 'bit' && v.bitIndex === undefined) fail('bitIndex', 'required for dataType bit on a register (0-15, 0 = least significant)');
        kind = v.bitIndex === undefined ? 'boolean' : 'bit';
        count = 1;
        break;
      case 'string':
      case 'bytes':
        kind = dt;
        count = limit ?? 1;
        if (count > 125) fail('limit', `at most 125 registers fit in one request; limit is ${count}`);
        break;
      case 'int16':
      case 'uint16':
      case 'int32':
      case 'uint32':
      case 'int64':
      case 'uint64':
      case 'float32':
      case 'float64': {
        kind = dt;
        count = KIND_WORDS[dt]!;
        if (limit !== undefined && limit !== count) fail('limit', `dataType ${dt} occupies ${count} register${count > 1 ? 's' : ''}; limit is ${limit}`);
        break;
      }
      default:
        return fail(
          'dataType',
          `"${v.dataType}" is not a data type (int16, uint16, int32, uint32, int64, uint64, float32, float64, boolean, bit, string, bytes, or upstream int, float, double, bool)`,
        );
    }
    if (v.bitIndex !== undefined && kind !== 'bit') fail('bitIndex', `bitIndex only applies to dataType bit or boolean; dataType is ${v.dataType}`);
  }
  if (v.offset + count > 65536) fail('limit', `registers ${v.offset}..${v.offset + count - 1} run past address 65535`);

  let wordSwap = v.isRegisterSwap;
  let byteSwap = v.isSwap;
  if (v.byteOrder !== undefined) {
    const order = BYTE_ORDERS[v.byteOrder.trim().toUpperCase()];
    if (!order) fail('byteOrder', `"${v.byteOrder}" is not a byte order (ABCD, CDAB, BADC, DCBA)`);
    else {
      if ((v.isSwap && !order.byteSwap) || (v.isRegisterSwap && !order.wordSwap))
        fail('byteOrder', `byteOrder ${v.byteOrder} contradicts isSwap/isRegisterSwap; set one or the other`);
      wordSwap = order.wordSwap;
      byteSwap = order.byteSwap;
    }
  }
  // Upstream treats scale 0 (the Go zero value) as "no scaling".
  const scale = v.scale === undefined || v.scale === 0 ? 1 : v.scale;
  if (v.min !== undefined && v.max !== undefined && v.min > v.max) fail('min', `min ${v.min} is above max ${v.max}`);
  return {
    table,
    register: v.register,
    address: v.offset,
    count,
    kind,
    bitIndex: v.bitIndex,
    scale,
    valueOffset: v.valueOffset,
    wordSwap,
    byteSwap,
    min: v.min,
    max: v.max,
    writeMultiple: v.writeMultiple,
  };
}

/** Schema of a property's visitor configData. */
export const visitorConfig = z.preprocess(
  withAliases({ register: ['registerType'], dataType: ['type'], offset: ['address'], bitIndex: ['bit'], byteOrder: ['order', 'endianness'] }),
  visitorRaw.transform(resolveVisitor),
);

const protocolRaw = z.object({
  communicateMode: z.string().optional(),
  slaveID: int(0, 255).default(1),
  ip: z.string().trim().optional(),
  port: int(1, 65535).default(502),
  timeout: int(1, 600_000).default(1000),
  connectTimeout: int(1, 600_000).default(5000),
  serialName: z.string().trim().optional(),
  baudRate: int(50, 4_000_000).default(19200),
  dataBits: int(5, 8).default(8),
  stopBits: int(1, 2).default(1),
  parity: z.string().default('none'),
  rs485Enabled: flag.default(false),
  interFrameDelay: int(0, 10_000).optional(),
  coalesce: flag.default(true),
  maxGap: int(0, 124).default(8),
  maxGapBits: int(0, 1999).default(64),
  maxRegistersPerRequest: int(1, 125).default(125),
  maxBitsPerRequest: int(1, 2000).default(2000),
  breakerThreshold: int(1, 1000).default(3),
  breakerCooldown: int(1, 600_000).default(5000),
});

const PARITY: Readonly<Record<string, ModbusProtocol['parity']>> = { none: 'none', n: 'none', even: 'even', e: 'even', odd: 'odd', o: 'odd' };

/** Default silence between RTU frames: 3.5 character times (11 bits each), 1.75 ms above 19200 baud, as the Modbus serial spec says; at least 2 ms. */
export function defaultInterFrameDelay(baudRate: number): number {
  const t35 = baudRate > 19200 ? 1.75 : (3.5 * 11 * 1000) / baudRate;
  return Math.max(2, Math.ceil(t35));
}

/** Schema of a device's protocol configData. */
export const protocolConfig = z.preprocess(
  withAliases({
    slaveID: ['slaveId', 'slaveid', 'unitID', 'unitId', 'slave'],
    ip: ['host', 'address'],
    serialName: ['serialPort', 'serial', 'device'],
    baudRate: ['baudrate'],
    dataBits: ['databits'],
    stopBits: ['stopbits'],
  }),
  protocolRaw.transform((p, ctx): ModbusProtocol => {
    const fail = (key: string, message: string): void => ctx.addIssue({ code: 'custom', path: [key], message });
    let mode: 'TCP' | 'RTU';
    const m = (p.communicateMode ?? '').trim().toUpperCase();
    if (m === 'TCP' || m === 'RTU') mode = m;
    else if (m === '') mode = p.serialName && !p.ip ? 'RTU' : 'TCP';
    else {
      fail('communicateMode', `"${p.communicateMode}" is not TCP or RTU`);
      mode = 'TCP';
    }
    if (mode === 'TCP' && !p.ip) fail('ip', 'required for communicateMode TCP (the device\'s IP address or host name)');
    if (mode === 'RTU' && !p.serialName) fail('serialName', 'required for communicateMode RTU (e.g. /dev/ttyUSB0)');
    if (mode === 'RTU' && (p.slaveID < 1 || p.slaveID > 247)) fail('slaveID', `${p.slaveID} is not a serial slave address (1-247)`);
    const parity = PARITY[p.parity.trim().toLowerCase()];
    if (!parity) fail('parity', `"${p.parity}" is not none, even or odd`);
    return {
      mode,
      slaveId: p.slaveID,
      host: p.ip ?? '',
      port: p.port,
      serialName: p.serialName ?? '',
      baudRate: p.baudRate,
      dataBits: p.dataBits as 5 | 6 | 7 | 8,
      stopBits: p.stopBits as 1 | 2,
      parity: parity ?? 'none',
      rs485Enabled: p.rs485Enabled,
      timeoutMs: p.timeout,
      connectTimeoutMs: p.connectTimeout,
      interFrameDelayMs: p.interFrameDelay ?? (mode === 'RTU' ? defaultInterFrameDelay(p.baudRate) : 0),
      coalesce: p.coalesce,
      maxGap: p.maxGap,
      maxGapBits: p.maxGapBits,
      maxRegisters: p.maxRegistersPerRequest,
      maxBits: p.maxBitsPerRequest,
      breakerThreshold: p.breakerThreshold,
      breakerCooldownMs: p.breakerCooldown,
    };
  }),
);

/** Human-readable name of a table for messages. */
export function tableName(t: Table): string {
  switch (t) {
    case 'coil':
      return 'coil';
    case 'discrete':
      return 'discrete input';
    case 'holding':
      return 'holding register';
    case 'input':
      return 'input register';
  }
}
