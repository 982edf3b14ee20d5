// SPDX-License-Identifier: Apache-2.0
// The framework's driver conformance suite, three times: against pymodbus over TCP, pymodbus
// over RTU (socat pty pair) and this package's simulator (modbus-serial ServerTCP), each in
// its own process.
import { describeDriverConformance } from '@mapperkit/framework/testing';
import { createModbusDriver } from '../src/index.ts';
import { freePort, PtyPair, PymodbusPeer, SimulatorProcess, tempDir, wordsOf } from './helpers.ts';

const SLAVE = {
  hr: { 0: [215, 200], 2: wordsOf((b) => b.writeUInt32BE(70000), 4), 10: [0x4142, 0], 12: [0] },
  co: { 0: [0, 1] },
  ir: { 0: [455] },
};

const PROPERTIES = [
  { name: 'temperature', type: 'float', visitor: { register: 'HoldingRegister', offset: 0, dataType: 'int16', scale: 0.1 }, expect: 21.5 },
  { name: 'setpoint', type: 'float', visitor: { register: 'HoldingRegister', offset: 1, dataType: 'int16', scale: 0.1 }, expect: 20, write: 22.5, minimum: 5, maximum: 35 },
  { name: 'counter', type: 'int', visitor: { register: 'HoldingRegister', offset: 2, dataType: 'uint32' }, expect: 70000, write: 123456 },
  { name: 'label', type: 'string', visitor: { register: 'HoldingRegister', offset: 10, dataType: 'string', limit: 2 }, expect: 'AB', write: 'xyz' },
  { name: 'flag', type: 'boolean', visitor: { register: 'HoldingRegister', offset: 12, dataType: 'bit', bitIndex: 3 }, expect: false, write: true },
  { name: 'pump', type: 'boolean', visitor: { register: 'CoilRegister', offset: 1 }, expect: true, write: false },
  { name: 'humidity', type: 'float', visitor: { register: 'InputRegister', offset: 0, dataType: 'uint16', scale: 0.1 }, expect: 45.5 },
] as const;

describeDriverConformance('modbus over TCP (pymodbus)', {
  driver: createModbusDriver(),
  properties: PROPERTIES,
  invalidProtocolConfig: { communicateMode: 'TCP', port: 502 },
  invalidVisitor: { register: 'HoldingRegister', dataType: 'int32', limit: 3 },
  async setup() {
    const port = await freePort();
    const peer = await PymodbusPeer.start({ mode: 'tcp', port, slaves: { 1: SLAVE } });
    return { protocolConfig: { communicateMode: 'TCP', ip: '127.0.0.1', port: String(port), slaveID: 1, timeout: 1000 }, teardown: () => peer.stop() };
  },
  unreachableProtocolConfig: { communicateMode: 'TCP', ip: '127.0.0.1', port: 1, slaveID: 1, timeout: 500 },
});

describeDriverConformance('modbus over RTU (pymodbus on a pty pair)', {
  driver: createModbusDriver(),
  properties: PROPERTIES,
  invalidProtocolConfig: { communicateMode: 'RTU', baudRate: 9600 },
  async setup() {
    const tmp = tempDir();
    const pty = await PtyPair.start(tmp.dir);
    const peer = await PymodbusPeer.start({ mode: 'rtu', device: pty.b, baudrate: 9600, slaves: { 7: SLAVE } });
    return {
      protocolConfig: { communicateMode: 'RTU', serialName: pty.a, baudRate: 9600, dataBits: 8, stopBits: 1, parity: 'none', slaveID: 7, timeout: 1000 },
      teardown: async () => {
        await peer.stop();
        await pty.stop();
        tmp.cleanup();
      },
    };
  },
  unreachableProtocolConfig: { communicateMode: 'RTU', serialName: '/tmp/mapperkit-no-such-tty', baudRate: 9600, slaveID: 1 },
});

describeDriverConformance('modbus over TCP (simulator: modbus-serial ServerTCP)', {
  driver: createModbusDriver(),
  properties: [
    { name: 'temperature', type: 'float', visitor: { register: 'HoldingRegister', offset: 0, dataType: 'int16', scale: 0.1 }, expect: (v) => typeof v === 'number' && v > -20 && v < 60 },
    { name: 'setpoint', type: 'float', visitor: { register: 'HoldingRegister', offset: 1, dataType: 'int16', scale: 0.1 }, expect: 21, write: 22.5, minimum: 5, maximum: 35 },
    { name: 'temperature-cdab', type: 'double', visitor: { register: 'HoldingRegister', offset: 6, dataType: 'float32', byteOrder: 'CDAB' }, expect: (v) => typeof v === 'number' && v > -20 && v < 60 },
    { name: 'scratch', type: 'int', visitor: { register: 'HoldingRegister', offset: 3, dataType: 'uint16' }, expect: 0, write: 4242 },
    { name: 'model-name', type: 'string', visitor: { register: 'HoldingRegister', offset: 10, dataType: 'string', limit: 4 }, expect: 'MKSIM-01' },
    { name: 'heating', type: 'boolean', visitor: { register: 'CoilRegister', offset: 0 }, expect: true, write: false },
    { name: 'humidity', type: 'float', visitor: { register: 'InputRegister', offset: 1, dataType: 'uint16', scale: 0.1 }, expect: (v) => typeof v === 'number' && v >= 20 && v <= 90 },
  ],
  async setup() {
    const sim = await SimulatorProcess.start(['--port', String(await freePort()), '--period-ms', '200']);
    return { protocolConfig: { communicateMode: 'TCP', ip: '127.0.0.1', port: sim.port, slaveID: 1 }, teardown: () => sim.stop() };
  },
  unreachableProtocolConfig: { communicateMode: 'TCP', ip: '127.0.0.1', port: 1, slaveID: 1 },
});
