// SPDX-License-Identifier: Apache-2.0
// The driver against an independent Modbus TCP server (Debian's pymodbus 3.0, its own
// process): every data type and byte order against known register contents, coalescing,
// exception responses and re-planning around a refused register, writes checked in the
// server's own data store, serialisation, and the circuit breaker of a silent slave.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type DeviceClient, isMapperError, type PropertyRequest, type ReadResult } from '@mapperkit/framework';
import { createModbusDriver, type ModbusDriver, type ModbusVisitor } from '../src/index.ts';
import { connectContext, freePort, protocol, PymodbusPeer, request, wordsOf } from './helpers.ts';

type Req = PropertyRequest<ModbusVisitor>;

const INT64 = -9007199254740993n;
const UINT64 = 1234567890123;

function swapWords(words: number[]): number[] {
  return [...words].reverse();
}
function swapBytes(words: number[]): number[] {
  return words.map((w) => ((w & 0xff) << 8) | (w >> 8));
}
const str = (s: string, regs: number): number[] => {
  const b = Buffer.alloc(regs * 2);
  b.write(s, 'utf8');
  return Array.from({ length: regs }, (_, i) => b.readUInt16BE(2 * i));
};

// Known contents of slave 1. Holding 30..39 and 45 do not exist (exception 2).
const HR: Record<number, number[]> = {
  0: [0xfb2e], // int16 -1234
  1: [54321], // uint16
  2: wordsOf((b) => b.writeInt32BE(-123456789), 4), // int32 ABCD
  4: swapWords(wordsOf((b) => b.writeUInt32BE(4_000_000_000), 4)), // uint32 CDAB
  6: swapBytes(wordsOf((b) => b.writeFloatBE(23.7), 4)), // float32 BADC
  8: swapBytes(swapWords(wordsOf((b) => b.writeFloatBE(-0.5), 4))), // float32 DCBA
  10: wordsOf((b) => b.writeBigInt64BE(INT64), 8), // int64 ABCD
  14: swapWords(wordsOf((b) => b.writeBigUInt64BE(BigInt(UINT64)), 8)), // uint64 CDAB (isRegisterSwap)
  18: wordsOf((b) => b.writeDoubleBE(Math.PI), 8), // float64 ABCD
  22: [0b100101], // bits 0, 2, 5
  23: str('Hello!', 4), // string
  27: [235], // upstream "float, limit 1, scale 0.1" → 23.5
  28: [0xffce], // int16 -50 → × 0.1 + 20 = 15
  29: [7],
  40: [40, 41, 42, 43, 44],
  46: [46, 47, 48, 49],
  200: new Array<number>(16).fill(0),
};

// [name, model type, visitor, expected]
const KNOWN: [string, Req['type'], Record<string, unknown>, unknown][] = [
  ['i16', 'int', { register: 'HoldingRegister', offset: 0, dataType: 'int16' }, -1234],
  ['u16', 'int', { register: 'HoldingRegister', offset: 1, dataType: 'uint16' }, 54321],
  ['i32', 'int', { register: 'HoldingRegister', offset: 2, dataType: 'int32', byteOrder: 'ABCD' }, -123456789],
  ['u32', 'int', { register: 'HoldingRegister', offset: 4, dataType: 'uint32', isRegisterSwap: true }, 4_000_000_000],
  ['f32badc', 'float', { register: 'HoldingRegister', offset: 6, dataType: 'float32', isSwap: true }, 23.7],
  ['f32dcba', 'double', { register: 'HoldingRegister', offset: 8, dataType: 'float32', byteOrder: 'DCBA' }, -0.5],
  ['i64', 'int', { register: 'HoldingRegister', offset: 10, dataType: 'int64' }, INT64],
  ['u64', 'int', { register: 'HoldingRegister', offset: 14, dataType: 'uint64', byteOrder: 'CDAB' }, UINT64],
  ['f64', 'double', { register: 'HoldingRegister', offset: 18, dataType: 'float64' }, Math.PI],
  ['bit0', 'boolean', { register: 'HoldingRegister', offset: 22, dataType: 'bit', bitIndex: 0 }, true],
  ['bit1', 'boolean', { register: 'HoldingRegister', offset: 22, dataType: 'bit', bitIndex: 1 }, false],
  ['bit5', 'boolean', { register: 'HoldingRegister', offset: 22, dataType: 'boolean', bitIndex: 5 }, true],
  ['text', 'string', { register: 'HoldingRegister', offset: 23, dataType: 'string', limit: 4 }, 'Hello!'],
  ['upstream', 'float', { register: 'HoldingRegister', offset: 27, dataType: 'float', limit: 1, scale: 0.1, isSwap: false, isRegisterSwap: false }, 23.5],
  ['scaled', 'float', { register: 'HoldingRegister', offset: 28, dataType: 'int16', scale: 0.1, valueOffset: 20 }, 15],
  ['ir', 'int', { register: 'InputRegister', offset: 1, dataType: 'int32' }, (101 << 16) + 102],
  ['coil0', 'boolean', { register: 'CoilRegister', offset: 0 }, true],
  ['coil1', 'boolean', { register: 'CoilRegister', offset: 1 }, false],
  ['coils', 'int', { register: 'CoilRegister', offset: 0, dataType: 'int', limit: 4 }, 0b1101],
  ['di1', 'boolean', { register: 'DiscreteInputRegister', offset: 1 }, true],
  ['di-bytes', 'bytes', { register: 'DiscreteInputRegister', offset: 0, dataType: 'bytes', limit: 4 }, new Uint8Array([0b1010])],
];

function values(results: readonly ReadResult[]): unknown[] {
  return results.map((r) => (r.ok ? r.value : `ERR ${r.error.kind}: ${r.error.message}`));
}

describe('driver against pymodbus TCP', () => {
  let peer: PymodbusPeer;
  let port: number;
  let driver: ModbusDriver;
  let client: DeviceClient<ModbusVisitor>;
  const base = () => ({ communicateMode: 'TCP', ip: '127.0.0.1', port, slaveID: 1, timeout: 500 });
  const connect = async (raw: Record<string, unknown> = {}, id = 'default/dev') =>
    driver.connect({ ...connectContext(id), config: protocol({ ...base(), ...raw }) }, AbortSignal.timeout(5000));
  const stats = () => driver.linkStats().find((l) => l.key === `tcp://127.0.0.1:${port}`)!;

  before(async () => {
    port = await freePort();
    peer = await PymodbusPeer.start({
      mode: 'tcp',
      port,
      slaves: {
        1: { hr: HR, ir: { 0: [100, 101, 102, 103] }, co: { 0: [1, 0, 1, 1, 0, 0, 0, 1, 0, 1] }, di: { 0: [0, 1, 0, 1] } },
      },
    });
    driver = createModbusDriver();
    client = await connect();
  });

  after(async () => {
    await client?.close();
    await peer?.stop();
  });

  it('reads every data type and byte order from known register contents', async () => {
    const reqs = KNOWN.map(([n, t, v]) => request(n, t, v));
    const res = await client.read(reqs, AbortSignal.timeout(5000));
    assert.deepEqual(values(res), KNOWN.map(([, , , e]) => e));
  });

  it('does not leave finished transactions in modbus-serial\'s table (it would keep 256 per connection for minutes)', async () => {
    const reqs = [request('t', 'int', { register: 'HoldingRegister', offset: 0, dataType: 'int16' })];
    for (let i = 0; i < 300; i++) assert.ok((await client.read(reqs, AbortSignal.timeout(5000)))[0]!.ok);
    // Internals of the library (what link.ts cleans up): transaction id -> { next: callback, … }.
    const lib = (client as unknown as { link: { client: { _transactions: Record<string, unknown> } } }).link.client;
    assert.ok(Object.keys(lib._transactions).length <= 1, `${Object.keys(lib._transactions).length} transactions kept after 300 reads`);
  });

  it('coalesces the batch: one request per register table', async () => {
    const reqs = KNOWN.map(([n, t, v]) => request(n, t, v));
    const before = stats().requests;
    const res = await client.read(reqs, AbortSignal.timeout(5000));
    assert.ok(res.every((r) => r.ok));
    assert.equal(stats().requests - before, 4, 'holding 0..28, input 1..2, coils 0..3, discrete 0..3');
  });

  it('sends one request per property with coalesce: false (upstream behaviour), with the same values', async () => {
    const c = await connect({ coalesce: false }, 'default/nocoalesce');
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const reqs = KNOWN.map(([n, t, v]) => request(n, t, v));
      const before = stats().requests;
      const res = await c.read(reqs, AbortSignal.timeout(5000));
      assert.equal(stats().requests - before, reqs.length);
      assert.deepEqual(values(res), KNOWN.map(([, , , e]) => e));
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(warnings, [], 'one abort listener per read, not one per request');
    } finally {
      process.off('warning', onWarning);
      await c.close();
    }
  });

  it('drops queued requests of an aborted read without sending them', async () => {
    const dead = await connect({ slaveID: 9, timeout: 300, breakerThreshold: 100 }, 'default/slow');
    const c = await connect({ coalesce: false }, 'default/aborted');
    try {
      const before = stats().requests;
      // Slave 9 never answers: its request holds the link for 300 ms.
      const blocking = dead.read([request('x', 'int', { register: 'HoldingRegister', offset: 0 })], AbortSignal.timeout(5000));
      const ctl = new AbortController();
      const queued = c.read(KNOWN.map(([n, t, v]) => request(n, t, v)), ctl.signal);
      setTimeout(() => ctl.abort(new Error('cancelled by test')), 50);
      const t0 = Date.now();
      await assert.rejects(queued, /cancelled by test/);
      assert.ok(Date.now() - t0 < 150, 'the aborted read returns at once');
      const res = await blocking;
      assert.ok(!res[0]!.ok && res[0]!.error.kind === 'Timeout');
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(stats().requests - before, 1, 'only the request already on the wire was sent');
    } finally {
      await c.close();
      await dead.close();
    }
  });

  it('returns a Modbus exception as the error of that property only', async () => {
    const reqs = [request('good', 'int', { register: 'HoldingRegister', offset: 29 }), request('missing', 'int', { register: 'HoldingRegister', offset: 35 })];
    const res = await client.read(reqs, AbortSignal.timeout(5000));
    assert.equal(res[0]!.ok && res[0]!.value, 7);
    const bad = res[1]!;
    assert.ok(!bad.ok);
    assert.equal(bad.error.kind, 'DeviceError');
    assert.equal(bad.error.property, 'missing');
    assert.match(bad.error.message, /^device default\/dev property missing \(holding register 35\): slave 1 answered read holding registers 35 \(FC3\) with Modbus exception 2 \(illegal data address\)/);
  });

  it('re-plans around a refused register inside a merged read, then keeps the better plan', async () => {
    // Holding 40..49 with 45 missing: one merged read fails with exception 2.
    const reqs = Array.from({ length: 10 }, (_, i) => request(`r${40 + i}`, 'int', { register: 'HoldingRegister', offset: 40 + i }));
    const s0 = stats();
    const first = await client.read(reqs, AbortSignal.timeout(5000));
    const s1 = stats();
    assert.deepEqual(values(first).map((v, i) => (i === 5 ? typeof v : v)), [40, 41, 42, 43, 44, 'string', 46, 47, 48, 49]);
    assert.ok(!first[5]!.ok && /Modbus exception 2/.test(first[5]!.error.message));
    assert.ok(s1.exceptions - s0.exceptions >= 2, 'the merged read and the lone refused register');
    const second = await client.read(reqs, AbortSignal.timeout(5000));
    const s2 = stats();
    assert.deepEqual(values(second), values(first));
    assert.equal(s2.requests - s1.requests, 3, 'learned plan: 40..44, 45 alone, 46..49');
    assert.equal(s2.exceptions - s1.exceptions, 1, 'only the lone refused register still answers with an exception');
    await client.read(reqs, AbortSignal.timeout(5000));
    assert.equal(stats().requests - s2.requests, 3, 'the plan stays stable');
  });

  it('a hole of missing registers between two properties is bridged once, then read as two requests', async () => {
    const c = await connect({ maxGap: 16 }, 'default/gap');
    try {
      const reqs = [request('a', 'int', { register: 'HoldingRegister', offset: 29 }), request('b', 'int', { register: 'HoldingRegister', offset: 40 })];
      const s0 = stats();
      assert.deepEqual(values(await c.read(reqs, AbortSignal.timeout(5000))), [7, 40]);
      const s1 = stats();
      assert.equal(s1.requests - s0.requests, 3, 'merged 29..40 refused, then 29 and 40 alone');
      assert.deepEqual(values(await c.read(reqs, AbortSignal.timeout(5000))), [7, 40]);
      assert.equal(stats().requests - s1.requests, 2);
      assert.equal(stats().exceptions, s1.exceptions);
    } finally {
      await c.close();
    }
  });

  describe('writes, checked in the server data store', () => {
    const w = (name: string, type: Req['type'], visitor: Record<string, unknown>, extra: Partial<Req> = {}) => request(name, type, visitor, extra);

    it('writes every type with the inverse conversion and byte order', async () => {
      const sig = () => AbortSignal.timeout(5000);
      await client.write(w('sp', 'float', { register: 'HoldingRegister', offset: 200, dataType: 'int16', scale: 0.1 }), 22.5, sig());
      await client.write(w('i32', 'int', { register: 'HoldingRegister', offset: 201, dataType: 'int32', isRegisterSwap: true }), -2, sig());
      await client.write(w('f32', 'float', { register: 'HoldingRegister', offset: 203, dataType: 'float32', byteOrder: 'DCBA' }), 1.5, sig());
      await client.write(w('u64', 'int', { register: 'HoldingRegister', offset: 205, dataType: 'uint64' }), 2n ** 60n, sig());
      await client.write(w('s', 'string', { register: 'HoldingRegister', offset: 209, dataType: 'string', limit: 3 }), 'abc', sig());
      await client.write(w('fc16', 'int', { register: 'HoldingRegister', offset: 212, dataType: 'uint16', writeMultiple: true }), 4242, sig());
      assert.deepEqual(await peer.get(1, 'hr', 200, 13), [225, 0xfffe, 0xffff, 0x0000, 0xc03f, 0x1000, 0, 0, 0, 0x6162, 0x6300, 0, 4242]);
    });

    it('sets and clears one bit of a holding register (read-modify-write)', async () => {
      await peer.set(1, 'hr', 213, [0x0101]);
      await client.write(w('b4', 'boolean', { register: 'HoldingRegister', offset: 213, dataType: 'bit', bitIndex: 4 }), true, AbortSignal.timeout(5000));
      assert.deepEqual(await peer.get(1, 'hr', 213, 1), [0x0111]);
      await client.write(w('b0', 'boolean', { register: 'HoldingRegister', offset: 213, dataType: 'bit', bitIndex: 0 }), false, AbortSignal.timeout(5000));
      assert.deepEqual(await peer.get(1, 'hr', 213, 1), [0x0110]);
    });

    it('writes one coil (FC5) and several coils (FC15)', async () => {
      await client.write(w('c5', 'boolean', { register: 'CoilRegister', offset: 5 }), true, AbortSignal.timeout(5000));
      await client.write(w('c0', 'int', { register: 'CoilRegister', offset: 0, dataType: 'int', limit: 3 }), 0b010, AbortSignal.timeout(5000));
      assert.deepEqual(await peer.get(1, 'co', 0, 6), [0, 1, 0, 1, 0, 1]);
    });

    it('reads written values back through the driver', async () => {
      const reqs = [
        w('sp', 'float', { register: 'HoldingRegister', offset: 200, dataType: 'int16', scale: 0.1 }),
        w('i32', 'int', { register: 'HoldingRegister', offset: 201, dataType: 'int32', isRegisterSwap: true }),
        w('f32', 'float', { register: 'HoldingRegister', offset: 203, dataType: 'float32', byteOrder: 'DCBA' }),
        w('u64', 'int', { register: 'HoldingRegister', offset: 205, dataType: 'uint64' }),
        w('s', 'string', { register: 'HoldingRegister', offset: 209, dataType: 'string', limit: 3 }),
      ];
      assert.deepEqual(values(await client.read(reqs, AbortSignal.timeout(5000))), [22.5, -2, 1.5, 2n ** 60n, 'abc']);
    });

    it('refuses out-of-range values before sending anything, naming device and property', async () => {
      const before = stats().requests;
      await assert.rejects(
        client.write(w('sp', 'float', { register: 'HoldingRegister', offset: 200, dataType: 'int16', scale: 0.1 }), 4000, AbortSignal.timeout(5000)),
        (e: unknown) => isMapperError(e) && e.kind === 'WriteRejected' && e.device === 'default/dev' && e.property === 'sp' && /^device default\/dev property sp \(holding register 200\): value 4000 \(raw 40000/.test(e.message),
      );
      await assert.rejects(
        client.write(w('sp', 'float', { register: 'HoldingRegister', offset: 200, dataType: 'int16', scale: 0.1 }, { minimum: 5, maximum: 35 }), 36, AbortSignal.timeout(5000)),
        /above the property maximum 35/,
      );
      await assert.rejects(client.write(w('ro', 'int', { register: 'InputRegister', offset: 0 }), 1, AbortSignal.timeout(5000)), /read-only/);
      assert.equal(stats().requests, before, 'nothing was sent');
      assert.deepEqual(await peer.get(1, 'hr', 200, 1), [225], 'server unchanged');
    });

    it('turns an exception response to a write into WriteRejected', async () => {
      await assert.rejects(
        client.write(w('nowhere', 'int', { register: 'HoldingRegister', offset: 35 }), 1, AbortSignal.timeout(5000)),
        (e: unknown) => isMapperError(e) && e.kind === 'WriteRejected' && /property nowhere .*Modbus exception 2 \(illegal data address\)/.test(e.message),
      );
    });
  });

  it('serialises requests of several devices sharing one connection', async () => {
    const other = await connect({}, 'default/other');
    try {
      const a = KNOWN.map(([n, t, v]) => request(n, t, v));
      const b = [request('x', 'int', { register: 'HoldingRegister', offset: 1 })];
      const expected = values(await client.read(a, AbortSignal.timeout(5000)));
      const calls: Promise<readonly ReadResult[]>[] = [];
      for (let i = 0; i < 20; i++) {
        calls.push(client.read(a, AbortSignal.timeout(10_000)));
        calls.push(other.read(b, AbortSignal.timeout(10_000)));
      }
      const all = await Promise.all(calls);
      for (let i = 0; i < all.length; i += 2) {
        assert.deepEqual(values(all[i]!), expected);
        assert.deepEqual(values(all[i + 1]!), [54321]);
      }
      const s = stats();
      assert.equal(s.devices, 2, 'one link for both devices');
      assert.equal(s.maxInFlight, 1, 'never more than one transaction on the wire');
    } finally {
      await other.close();
    }
  });

  it('puts a silent slave behind its circuit breaker without stalling the others', async () => {
    // Slave 9 does not exist: pymodbus does not answer at all (like a dead node behind a gateway).
    const dead = await connect({ slaveID: 9, timeout: 200, breakerThreshold: 2, breakerCooldown: 60_000 }, 'default/dead');
    try {
      const reqs = [request('a', 'int', { register: 'HoldingRegister', offset: 0 }), request('b', 'int', { register: 'InputRegister', offset: 0 })];
      // Two requests time out (threshold 2): the breaker opens and the read rejects as Unreachable.
      await assert.rejects(dead.read(reqs, AbortSignal.timeout(5000)), (e: unknown) => isMapperError(e) && e.kind === 'Unreachable' && /circuit open/.test(e.message));
      assert.equal(await dead.state(AbortSignal.timeout(1000)), 'offline');
      const before = stats();
      const t0 = Date.now();
      await assert.rejects(dead.read(reqs, AbortSignal.timeout(5000)), /circuit open/);
      assert.ok(Date.now() - t0 < 100, 'refused at once');
      assert.equal(stats().requests, before.requests, 'nothing sent to the dead slave');
      assert.equal(stats().breakers[9]?.state, 'open');
      // Slave 1 on the same connection is unaffected.
      const t1 = Date.now();
      const res = await client.read([request('u16', 'int', { register: 'HoldingRegister', offset: 1, dataType: 'uint16' })], AbortSignal.timeout(5000));
      assert.deepEqual(values(res), [54321]);
      assert.ok(Date.now() - t1 < 150);
      // connect() also refuses while the breaker is open (the framework then backs off).
      await assert.rejects(connect({ slaveID: 9 }, 'default/dead2'), /circuit open/);
    } finally {
      await dead.close();
    }
  });
});
