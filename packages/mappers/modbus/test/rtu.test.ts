// SPDX-License-Identifier: Apache-2.0
// Modbus RTU over a serial line: a socat pty pair with Debian's pymodbus RTU server on one end
// (slaves 1 and 2; slave 3 absent, like a dead RS-485 node) and the driver on the other.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type DeviceClient, isMapperError, type ReadResult } from '@mapperkit/framework';
import { createModbusDriver, type ModbusDriver, type ModbusVisitor } from '../src/index.ts';
import { connectContext, protocol, PtyPair, PymodbusPeer, request, tempDir } from './helpers.ts';

const values = (rs: readonly ReadResult[]): unknown[] => rs.map((r) => (r.ok ? r.value : `ERR ${r.error.kind}`));

describe('driver against pymodbus RTU over a pty pair', () => {
  let tmp: ReturnType<typeof tempDir>;
  let pty: PtyPair;
  let peer: PymodbusPeer;
  let driver: ModbusDriver;
  const clients: DeviceClient<ModbusVisitor>[] = [];
  const rtu = (raw: Record<string, unknown>) => ({ communicateMode: 'RTU', serialName: pty.a, baudRate: 9600, parity: 'none', timeout: 500, ...raw });
  const connect = async (raw: Record<string, unknown>, id: string) => {
    const c = await driver.connect({ ...connectContext(id), config: protocol(rtu(raw)) }, AbortSignal.timeout(5000));
    clients.push(c);
    return c;
  };
  const stats = () => driver.linkStats().find((l) => l.key === `rtu://${pty.a}`)!;
  const temp = request('temp', 'float', { register: 'HoldingRegister', offset: 0, dataType: 'int16', scale: 0.1 });
  const hum = request('hum', 'float', { register: 'InputRegister', offset: 0, dataType: 'uint16', scale: 0.1 });
  const pump = request('pump', 'boolean', { register: 'CoilRegister', offset: 0 });
  const level = request('level', 'int', { register: 'HoldingRegister', offset: 10, dataType: 'uint32', byteOrder: 'CDAB' });

  before(async () => {
    tmp = tempDir();
    pty = await PtyPair.start(tmp.dir);
    peer = await PymodbusPeer.start({
      mode: 'rtu',
      device: pty.b,
      baudrate: 9600,
      slaves: {
        1: { hr: { 0: [215, 0], 10: [0x5678, 0x1234] }, ir: { 0: [455] }, co: { 0: [1, 0] } },
        2: { hr: { 0: [0xffce, 0], 10: [1, 0] }, ir: { 0: [300] }, co: { 0: [0, 1] } },
      },
    });
    driver = createModbusDriver();
  });

  after(async () => {
    for (const c of clients) await c.close();
    await peer?.stop();
    await pty?.stop();
    tmp?.cleanup();
  });

  it('reads two slaves sharing one serial port', async () => {
    const s1 = await connect({ slaveID: 1 }, 'default/s1');
    const s2 = await connect({ slaveID: 2 }, 'default/s2');
    const [r1, r2] = await Promise.all([s1.read([temp, hum, pump, level], AbortSignal.timeout(5000)), s2.read([temp, hum, pump, level], AbortSignal.timeout(5000))]);
    assert.deepEqual(values(r1), [21.5, 45.5, true, 0x12345678]);
    assert.deepEqual(values(r2), [-5, 30, false, 1]);
    const s = stats();
    assert.equal(s.devices, 2, 'one link for the serial port');
    assert.equal(s.maxInFlight, 1);
    assert.equal(s.protocolErrors, 0, 'no garbled frames');
  });

  it('writes through the bus, checked in the server data store', async () => {
    const [s1, s2] = clients;
    await s1!.write(temp, 19.5, AbortSignal.timeout(5000));
    await s2!.write(pump, true, AbortSignal.timeout(5000));
    await s2!.write(level, 0x00020001, AbortSignal.timeout(5000));
    assert.deepEqual(await peer.get(1, 'hr', 0, 1), [195]);
    assert.deepEqual(await peer.get(2, 'co', 0, 1), [1]);
    assert.deepEqual(await peer.get(2, 'hr', 10, 2), [0x0001, 0x0002], 'CDAB: low word first');
    assert.deepEqual(values(await s1!.read([temp], AbortSignal.timeout(5000))), [19.5]);
  });

  it('keeps the bus usable when a slave is dead: its breaker opens, the others keep their pace', async () => {
    const [s1] = clients;
    const dead = await connect({ slaveID: 3, timeout: 150, breakerThreshold: 2, breakerCooldown: 60_000 }, 'default/s3');
    const deadRead = dead.read([temp, hum], AbortSignal.timeout(5000)).then(
      () => 'resolved',
      (e: unknown) => (isMapperError(e) ? `${e.kind}: ${e.message}` : String(e)),
    );
    // While the dead slave's requests time out, slave 1's request waits at most one timeout.
    const t0 = Date.now();
    assert.deepEqual(values(await s1!.read([temp], AbortSignal.timeout(5000))), [19.5]);
    assert.ok(Date.now() - t0 < 600, `slave 1 answered after ${Date.now() - t0} ms`);
    assert.match(await deadRead, /^Unreachable: .*slave 3 .* circuit open/);
    assert.equal(stats().breakers[3]?.state, 'open');
    // With the breaker open nothing more goes to slave 3, and slave 1 polls at full speed.
    const sent = stats().requests;
    await assert.rejects(dead.read([temp], AbortSignal.timeout(5000)), /circuit open/);
    assert.equal(stats().requests, sent);
    const t1 = Date.now();
    for (let i = 0; i < 5; i++) assert.deepEqual(values(await s1!.read([temp], AbortSignal.timeout(5000))), [19.5]);
    assert.ok(Date.now() - t1 < 1000, `5 reads took ${Date.now() - t1} ms`);
    assert.equal(stats().timeouts, 2, 'exactly the threshold of timeouts was spent on the dead slave');
  });

  it('keeps the configured silence between frames', async () => {
    const slow = await connect({ slaveID: 1, interFrameDelay: 40 }, 'default/slow');
    const reqs = [temp, pump];
    const t0 = Date.now();
    for (let i = 0; i < 5; i++) await slow.read(reqs, AbortSignal.timeout(5000));
    // 10 frames (2 tables × 5 reads) with ≥ 40 ms of silence before each but the first.
    assert.ok(Date.now() - t0 >= 9 * 40, `10 frames took only ${Date.now() - t0} ms`);
  });

  it('refuses a device that asks for different serial settings on an open port', async () => {
    await assert.rejects(
      connect({ slaveID: 1, baudRate: 19200 }, 'default/other-baud'),
      (e: unknown) => isMapperError(e) && e.kind === 'InvalidConfig' && /already open with 9600 baud.*asks for 19200 baud.*\(protocol configData\.baudRate\)$/.test(e.message),
    );
  });

  it('fails to connect to a serial port that does not exist, as Unreachable', async () => {
    await assert.rejects(
      driver.connect({ ...connectContext('default/nope'), config: protocol(rtu({ serialName: `${tmp.dir}/nope` })) }, AbortSignal.timeout(5000)),
      (e: unknown) => isMapperError(e) && e.kind === 'Unreachable' && e.message.includes(`rtu://${tmp.dir}/nope`),
    );
  });
});
