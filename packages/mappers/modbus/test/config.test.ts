// SPDX-License-Identifier: Apache-2.0
// Protocol and visitor configData: upstream keys as edgecore delivers them (every number a
// float32 FloatValue, strings where upstream samples use strings), aliases, defaults, and
// errors that name the key.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { decodeCustomizedValue } from '@mapperkit/framework/dmi';
import { TestEdgecore } from '@mapperkit/framework/testing';
import { defaultInterFrameDelay, protocolConfig, visitorConfig } from '../src/index.ts';
import { PKG_DIR } from './helpers.ts';

function fromYaml(file: string) {
  const { devices } = TestEdgecore.fromCrdYaml(readFileSync(join(PKG_DIR, 'devices', file), 'utf8'));
  return devices.map((d) => ({
    name: d.name,
    protocol: decodeCustomizedValue(d.spec?.protocol?.configData, () => undefined),
    visitors: new Map(d.spec!.properties.map((p) => [p.name, decodeCustomizedValue(p.visitors?.configData, () => undefined)])),
  }));
}

function issues(schema: typeof protocolConfig | typeof visitorConfig, raw: unknown): string[] {
  const r = schema.safeParse(raw);
  assert.equal(r.success, false, 'expected a validation failure');
  return r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('upstream Device YAML, as edgecore encodes it', () => {
  it('parses the upstream temperature-sensor format unchanged', () => {
    const [dev] = fromYaml('upstream-temperature.yaml');
    const p = protocolConfig.parse(dev!.protocol);
    assert.equal(p.mode, 'TCP');
    assert.equal(p.host, '127.0.0.1');
    assert.equal(p.port, 5020, 'port given as the string "5020"');
    assert.equal(p.slaveId, 1, 'slaveID arrives as a FloatValue');
    const t = visitorConfig.parse(dev!.visitors.get('temperature'));
    assert.deepEqual([t.table, t.address, t.count, t.kind, t.scale, t.wordSwap, t.byteSwap, t.min, t.max], ['holding', 0, 1, 'uint16', 0.1, false, false, 1, 100]);
    const s = visitorConfig.parse(dev!.visitors.get('temperature-switch'));
    assert.deepEqual([s.table, s.address, s.count], ['coil', 0, 1]);
  });

  it('parses every visitor of the simulator example', () => {
    const [dev] = fromYaml('thermostat.yaml');
    protocolConfig.parse(dev!.protocol);
    for (const [name, raw] of dev!.visitors) assert.ok(visitorConfig.safeParse(raw).success, `visitor of ${name}`);
    const alarm = visitorConfig.parse(dev!.visitors.get('alarm'));
    assert.deepEqual([alarm.kind, alarm.bitIndex], ['bit', 1]);
  });
});

describe('protocol configData', () => {
  it('defaults: TCP port 502, slave 1, 1000 ms timeout, coalescing on', () => {
    const p = protocolConfig.parse({ ip: '10.0.0.5' });
    assert.deepEqual([p.mode, p.port, p.slaveId, p.timeoutMs, p.coalesce, p.maxGap, p.maxRegisters, p.maxBits], ['TCP', 502, 1, 1000, true, 8, 125, 2000]);
  });

  it('reads RTU settings with upstream names and parity spellings', () => {
    const p = protocolConfig.parse({ communicateMode: 'RTU', serialName: '/dev/ttyS1', baudRate: 9600, dataBits: 8, stopBits: 2, parity: 'even', slaveID: 17, rs485Enabled: 'true' });
    assert.deepEqual([p.mode, p.serialName, p.baudRate, p.stopBits, p.parity, p.slaveId, p.rs485Enabled], ['RTU', '/dev/ttyS1', 9600, 2, 'even', 17, true]);
    assert.equal(p.interFrameDelayMs, defaultInterFrameDelay(9600));
    assert.equal(defaultInterFrameDelay(9600), 5, '3.5 characters of 11 bits at 9600 baud = 4.01 ms, rounded up');
    assert.equal(defaultInterFrameDelay(115200), 2, '1.75 ms above 19200 baud, at least 2 ms');
    assert.equal(protocolConfig.parse({ serialName: '/dev/ttyS1', parity: 'O' }).mode, 'RTU', 'mode inferred from serialName');
  });

  it('accepts aliases (host, unitId, serialPort) and Mapperkit options', () => {
    const p = protocolConfig.parse({ host: 'plc', unitId: 3, coalesce: 'false', maxGap: '4', breakerThreshold: 5, breakerCooldown: 2000, interFrameDelay: 10 });
    assert.deepEqual([p.host, p.slaveId, p.coalesce, p.maxGap, p.breakerThreshold, p.breakerCooldownMs], ['plc', 3, false, 4, 5, 2000]);
    assert.equal(protocolConfig.parse({ serialPort: '/dev/x' }).serialName, '/dev/x');
  });

  it('rejects bad config naming the key', () => {
    assert.deepEqual(issues(protocolConfig, { communicateMode: 'TCP' }), ["ip: required for communicateMode TCP (the device's IP address or host name)"]);
    assert.match(issues(protocolConfig, { communicateMode: 'RTU' })[0]!, /^serialName: required/);
    assert.match(issues(protocolConfig, { communicateMode: 'UDP', ip: 'x' })[0]!, /^communicateMode: "UDP" is not TCP or RTU/);
    assert.match(issues(protocolConfig, { ip: 'x', port: 70000 })[0]!, /^port: /);
    assert.match(issues(protocolConfig, { ip: 'x', port: 'abc' })[0]!, /^port: /);
    assert.match(issues(protocolConfig, { serialName: '/dev/x', slaveID: 0 })[0]!, /^slaveID: 0 is not a serial slave address/);
    assert.match(issues(protocolConfig, { serialName: '/dev/x', parity: 'mark' })[0]!, /^parity: /);
    assert.match(issues(protocolConfig, { ip: 'x', maxRegistersPerRequest: 126 })[0]!, /^maxRegistersPerRequest: /);
  });
});

describe('visitor configData', () => {
  it('accepts register names in several spellings', () => {
    for (const [name, table] of [
      ['HoldingRegister', 'holding'],
      ['holding', 'holding'],
      ['InputRegister', 'input'],
      ['input_registers', 'input'],
      ['CoilRegister', 'coil'],
      ['coils', 'coil'],
      ['DiscreteInputRegister', 'discrete'],
      ['discrete-input', 'discrete'],
    ] as const)
      assert.equal(visitorConfig.parse({ register: name }).table, table, name);
  });

  it('rejects bad visitors naming the key', () => {
    assert.match(issues(visitorConfig, {})[0]!, /^register: required/);
    assert.match(issues(visitorConfig, { register: 'Holding2' })[0]!, /^register: "Holding2" is not a register type/);
    assert.match(issues(visitorConfig, { register: 'HoldingRegister', dataType: 'int24' })[0]!, /^dataType: "int24" is not a data type/);
    assert.match(issues(visitorConfig, { register: 'HoldingRegister', dataType: 'int32', limit: 1 })[0]!, /^limit: dataType int32 occupies 2 registers; limit is 1/);
    assert.match(issues(visitorConfig, { register: 'HoldingRegister', dataType: 'int', limit: 3 })[0]!, /^limit: dataType int reads 1, 2, 4 registers; limit is 3/);
    assert.match(issues(visitorConfig, { register: 'HoldingRegister', dataType: 'bit' })[0]!, /^bitIndex: required/);
    assert.match(issues(visitorConfig, { register: 'HoldingRegister', dataType: 'int16', bitIndex: 3 })[0]!, /^bitIndex: /);
    assert.match(issues(visitorConfig, { register: 'CoilRegister', dataType: 'boolean', limit: 2 })[0]!, /^limit: /);
    assert.match(issues(visitorConfig, { register: 'HoldingRegister', dataType: 'string', limit: 126 })[0]!, /^limit: at most 125 registers/);
    assert.match(issues(visitorConfig, { register: 'HoldingRegister', offset: 65535, dataType: 'int32' })[0]!, /^limit: registers 65535\.\.65536 run past/);
    assert.match(issues(visitorConfig, { register: 'HoldingRegister', byteOrder: 'ABDC' })[0]!, /^byteOrder: "ABDC" is not a byte order/);
    assert.match(issues(visitorConfig, { register: 'HoldingRegister', byteOrder: 'ABCD', isSwap: true })[0]!, /^byteOrder: byteOrder ABCD contradicts/);
    assert.match(issues(visitorConfig, { register: 'HoldingRegister', isSwap: 'maybe' })[0]!, /^isSwap: "maybe" is not a boolean/);
  });
});
