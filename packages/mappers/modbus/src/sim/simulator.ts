// SPDX-License-Identifier: Apache-2.0
// A simulated Modbus TCP thermostat (modbus-serial's ServerTCP), for the demo, tests and
// benchmarks. Run it as its own process with the `modbus-sim` bin.
//
// Register map (PDU addresses, 0-based):
//   holding 0      temperature × 10, int16, read-only (writes: exception 2)
//   holding 1      setpoint × 10, int16, writable, 50..350 (5.0-35.0 °C; else exception 3)
//   holding 2      status bits: 0 heater on, 1 alarm (temperature ≥ 30 °C), 2 heating enabled
//   holding 3      scratch register, writable, any value
//   holding 4-5    temperature, float32, byte order ABCD
//   holding 6-7    temperature, float32, byte order CDAB
//   holding 8-9    uptime in seconds, uint32 ABCD
//   holding 10-13  model name "MKSIM-01", ASCII, 2 characters per register
//   holding 14     humidity × 10, uint16
//   holding 15     scratch register, writable, any value
//   holding 100..  a block of `block` registers whose value is (address - 100), writable (benchmarks)
//   input 0        temperature × 10, int16;  input 1  humidity × 10, uint16
//   coil 0         heating enabled (writable);  coil 1  fan (writable)
//   discrete 0     heater on;  discrete 1  alarm
// Any other address answers exception 2 (illegal data address).
// The temperature moves toward the setpoint while heating is enabled and the heater is on,
// and drifts toward 15 °C otherwise, by about 0.1-0.3 °C per period, with a little noise.
import { ServerTCP } from 'modbus-serial';

export interface SimulatorOptions {
  readonly host?: string;
  readonly port: number;
  /** Unit id to answer (255 = any). */
  readonly unitId?: number;
  /** Simulation step, ms. */
  readonly periodMs?: number;
  /** Registers in the benchmark block at holding 100. */
  readonly block?: number;
  readonly initialTemperature?: number;
  readonly setpoint?: number;
}

const BLOCK_START = 100;
const MODEL_NAME = 'MKSIM-01';

class ModbusException extends Error {
  readonly modbusErrorCode: number;
  constructor(code: number, message: string) {
    super(message);
    this.modbusErrorCode = code;
  }
}

const illegalAddress = (table: string, addr: number): ModbusException => new ModbusException(2, `no ${table} at ${addr}`);

/** One simulated thermostat on one TCP port. */
export class ThermostatSimulator {
  readonly host: string;
  readonly port: number;
  temperature: number;
  setpoint: number;
  humidity = 45;
  heatingEnabled = true;
  fan = false;
  readonly scratch = [0, 0];
  readonly block: Uint16Array;
  private readonly started = Date.now();
  private server: ServerTCP | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly opts: SimulatorOptions;

  constructor(opts: SimulatorOptions) {
    this.opts = opts;
    this.host = opts.host ?? '127.0.0.1';
    this.port = opts.port;
    this.temperature = opts.initialTemperature ?? 20;
    this.setpoint = opts.setpoint ?? 21;
    this.block = new Uint16Array(opts.block ?? 1000);
    for (let i = 0; i < this.block.length; i++) this.block[i] = i & 0xffff;
  }

  get heaterOn(): boolean {
    return this.heatingEnabled && this.temperature < this.setpoint;
  }

  get alarm(): boolean {
    return this.temperature >= 30;
  }

  /** One simulation step. */
  step(): void {
    const noise = (Math.random() - 0.5) * 0.1;
    if (this.heaterOn) this.temperature += 0.2 + noise;
    else this.temperature += (15 - this.temperature) * 0.02 + noise;
    this.temperature = Math.min(60, Math.max(-20, this.temperature));
    this.humidity = Math.min(90, Math.max(20, this.humidity + (Math.random() - 0.5) * 0.4));
  }

  private tenths(n: number): number {
    return Math.round(n * 10) & 0xffff;
  }

  /** Value of a holding register (throws exception 2 for unmapped addresses). */
  holding(addr: number): number {
    if (addr >= BLOCK_START && addr < BLOCK_START + this.block.length) return this.block[addr - BLOCK_START]!;
    const f = Buffer.alloc(4);
    switch (addr) {
      case 0:
        return this.tenths(this.temperature);
      case 1:
        return this.tenths(this.setpoint);
      case 2:
        return (this.heaterOn ? 1 : 0) | (this.alarm ? 2 : 0) | (this.heatingEnabled ? 4 : 0);
      case 3:
        return this.scratch[0]!;
      case 4:
      case 5:
        f.writeFloatBE(this.temperature);
        return f.readUInt16BE(addr === 4 ? 0 : 2);
      case 6:
      case 7:
        f.writeFloatBE(this.temperature);
        return f.readUInt16BE(addr === 6 ? 2 : 0);
      case 8:
      case 9: {
        const up = Math.floor((Date.now() - this.started) / 1000) >>> 0;
        return addr === 8 ? up >>> 16 : up & 0xffff;
      }
      case 10:
      case 11:
      case 12:
      case 13: {
        const i = (addr - 10) * 2;
        return ((MODEL_NAME.charCodeAt(i) || 0) << 8) | (MODEL_NAME.charCodeAt(i + 1) || 0);
      }
      case 14:
        return this.tenths(this.humidity);
      case 15:
        return this.scratch[1]!;
      default:
        throw illegalAddress('holding register', addr);
    }
  }

  setHolding(addr: number, value: number): void {
    if (addr >= BLOCK_START && addr < BLOCK_START + this.block.length) {
      this.block[addr - BLOCK_START] = value;
      return;
    }
    switch (addr) {
      case 1: {
        const signed = value >= 0x8000 ? value - 0x10000 : value;
        if (signed < 50 || signed > 350) throw new ModbusException(3, `setpoint ${signed / 10} outside 5.0..35.0`);
        this.setpoint = signed / 10;
        return;
      }
      case 3:
        this.scratch[0] = value;
        return;
      case 15:
        this.scratch[1] = value;
        return;
      default:
        // Read-only or unmapped.
        throw illegalAddress('writable holding register', addr);
    }
  }

  input(addr: number): number {
    if (addr === 0) return this.tenths(this.temperature);
    if (addr === 1) return this.tenths(this.humidity);
    throw illegalAddress('input register', addr);
  }

  coil(addr: number): boolean {
    if (addr === 0) return this.heatingEnabled;
    if (addr === 1) return this.fan;
    throw illegalAddress('coil', addr);
  }

  setCoil(addr: number, on: boolean): void {
    if (addr === 0) this.heatingEnabled = on;
    else if (addr === 1) this.fan = on;
    else throw illegalAddress('coil', addr);
  }

  discrete(addr: number): boolean {
    if (addr === 0) return this.heaterOn;
    if (addr === 1) return this.alarm;
    throw illegalAddress('discrete input', addr);
  }

  /** Starts listening; resolves when the port accepts connections. */
  start(): Promise<void> {
    const range = <T>(addr: number, length: number, get: (a: number) => T): T[] => {
      const out: T[] = [];
      for (let i = 0; i < length; i++) out.push(get(addr + i));
      return out;
    };
    const vector = {
      getHoldingRegister: (addr: number) => this.holding(addr),
      getMultipleHoldingRegisters: (addr: number, length: number) => range(addr, length, (a) => this.holding(a)),
      getInputRegister: (addr: number) => this.input(addr),
      getMultipleInputRegisters: (addr: number, length: number) => range(addr, length, (a) => this.input(a)),
      getCoil: (addr: number) => this.coil(addr),
      getDiscreteInput: (addr: number) => this.discrete(addr),
      setRegister: (addr: number, value: number) => this.setHolding(addr, value),
      setCoil: (addr: number, value: boolean) => this.setCoil(addr, value),
    };
    return new Promise<void>((resolve, reject) => {
      const server = new ServerTCP(vector, { host: this.host, port: this.port, unitID: this.opts.unitId ?? 255 });
      this.server = server;
      server.on('serverError', (err: Error | null) => reject(err ?? new Error('server error')));
      server.on('error', () => undefined);
      server.on('socketError', () => undefined);
      server.on('initialized', () => {
        const period = this.opts.periodMs ?? 1000;
        this.timer = setInterval(() => this.step(), period);
        this.timer.unref();
        resolve();
      });
    });
  }

  /** Stops listening and drops client connections. */
  stop(): Promise<void> {
    clearInterval(this.timer);
    const server = this.server;
    this.server = undefined;
    if (!server) return Promise.resolve();
    for (const sock of server.socks.keys()) sock.destroy();
    return new Promise((resolve) => server.close(() => resolve()));
  }
}
