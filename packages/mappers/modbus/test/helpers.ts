// SPDX-License-Identifier: Apache-2.0
// Real Modbus peers for the tests, each in its own process: Debian's pymodbus 3.0 (TCP and
// RTU), socat pty pairs (a serial line), and this package's simulator (modbus-serial ServerTCP).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createLogger, type Logger, type PropertyRequest, type PropertyType } from '@mapperkit/framework';
import { type ModbusProtocol, type ModbusVisitor, protocolConfig, visitorConfig } from '../src/index.ts';

export const PKG_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
export const PYTHON = '/usr/bin/python3';
const PYMODBUS_SCRIPT = join(PKG_DIR, 'test', 'fixtures', 'pymodbus_server.py');

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function tempDir(prefix = 'mkmb-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A TCP port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Polls until `fn` returns true; rejects after `timeoutMs` naming `what`. */
export async function until(fn: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

export const silentLog: Logger = createLogger({ level: process.env['MK_TEST_LOG'] ? 'debug' : 'silent' });

function waitForLine(proc: ChildProcess, match: (line: string) => boolean, timeoutMs: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    proc.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
    });
    const rl = createInterface({ input: proc.stdout! });
    const timer = setTimeout(() => {
      rl.close();
      reject(new Error(`${what} not ready after ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with code ${code}; stderr: ${stderr}`));
    });
    rl.on('line', (line) => {
      if (match(line)) {
        clearTimeout(timer);
        rl.close();
        resolve(line);
      }
    });
  });
}

async function killProc(proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill(signal);
  const t = setTimeout(() => proc.kill('SIGKILL'), 2000);
  await exited;
  clearTimeout(t);
}

export type PyTable = 'hr' | 'ir' | 'co' | 'di';

/** Register contents of one slave: table → start address → values. */
export type SlaveSpec = Partial<Record<PyTable, Record<number, number[]>>>;

export interface PymodbusSpec {
  readonly mode: 'tcp' | 'rtu';
  readonly port?: number;
  readonly device?: string;
  readonly baudrate?: number;
  readonly slaves: Record<number, SlaveSpec>;
}

/** A pymodbus server process with a control channel to read/write its data store directly. */
export class PymodbusPeer {
  readonly spec: PymodbusSpec;
  private proc: ChildProcess | undefined;
  private pending: ((line: string) => void)[] = [];

  private constructor(spec: PymodbusSpec) {
    this.spec = spec;
  }

  static async start(spec: PymodbusSpec): Promise<PymodbusPeer> {
    const p = new PymodbusPeer(spec);
    await p.launch();
    return p;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** (Re)starts the server process with the spec's initial contents. */
  async launch(): Promise<void> {
    const proc = spawn(PYTHON, [PYMODBUS_SCRIPT, JSON.stringify(this.spec)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc = proc;
    const ready = await waitForLine(proc, (l) => l.startsWith('{"ready"'), 10_000, 'pymodbus server');
    if (!ready.includes('true')) throw new Error(`pymodbus server failed to listen: ${ready}`);
    const rl = createInterface({ input: proc.stdout! });
    rl.on('line', (line) => this.pending.shift()?.(line));
  }

  private command(cmd: Record<string, unknown>): Promise<unknown> {
    const proc = this.proc;
    if (!proc?.stdin) return Promise.reject(new Error('pymodbus server is not running'));
    return new Promise((resolve, reject) => {
      this.pending.push((line) => {
        const out = JSON.parse(line) as { error?: string };
        if (out.error) reject(new Error(`pymodbus control: ${out.error}`));
        else resolve(out);
      });
      proc.stdin!.write(`${JSON.stringify(cmd)}\n`);
    });
  }

  /** The server's stored values (not read over Modbus). Coils/discretes come back as 0/1. */
  async get(slave: number, table: PyTable, address: number, count: number): Promise<number[]> {
    const out = (await this.command({ op: 'get', slave, table, address, count })) as { values: number[] };
    return out.values;
  }

  async set(slave: number, table: PyTable, address: number, values: number[]): Promise<void> {
    await this.command({ op: 'set', slave, table, address, values });
  }

  /** Kills the server process (SIGKILL: connections drop without a Modbus goodbye). */
  async kill(): Promise<void> {
    const proc = this.proc;
    this.proc = undefined;
    this.pending = [];
    if (proc) await killProc(proc, 'SIGKILL');
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    this.proc = undefined;
    if (proc) await killProc(proc);
  }
}

/** A socat pty pair: a virtual serial line between `a` and `b`. */
export class PtyPair {
  readonly a: string;
  readonly b: string;
  private readonly proc: ChildProcess;

  private constructor(proc: ChildProcess, a: string, b: string) {
    this.proc = proc;
    this.a = a;
    this.b = b;
  }

  static async start(dir: string): Promise<PtyPair> {
    const a = join(dir, 'ttyA');
    const b = join(dir, 'ttyB');
    const proc = spawn('socat', [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    await until(() => existsSync(a) && existsSync(b), 5000, 'socat pty pair');
    return new PtyPair(proc, a, b);
  }

  async stop(): Promise<void> {
    await killProc(this.proc);
  }
}

/** This package's simulator CLI (modbus-serial ServerTCP) in its own process, run from source. */
export class SimulatorProcess {
  readonly ports: number[];
  private readonly proc: ChildProcess;

  private constructor(proc: ChildProcess, ports: number[]) {
    this.proc = proc;
    this.ports = ports;
  }

  get port(): number {
    return this.ports[0]!;
  }

  static async start(args: string[]): Promise<SimulatorProcess> {
    const proc = spawn(process.execPath, ['--import', 'tsx', join(PKG_DIR, 'src', 'sim', 'cli.ts'), ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: PKG_DIR });
    const line = await waitForLine(proc, (l) => l.startsWith('{"ready"'), 15_000, 'modbus-sim');
    const out = JSON.parse(line) as { ports: number[] };
    return new SimulatorProcess(proc, out.ports);
  }

  async stop(): Promise<void> {
    await killProc(this.proc);
  }
}

/** Reads holding registers with mbpoll (libmodbus-independent C client), for read-back checks. */
export function mbpollRead(port: number, address: number, count: number, slave = 1): number[] {
  // mbpoll addresses are 1-based.
  const r = spawnSync('mbpoll', ['-m', 'tcp', '-a', String(slave), '-r', String(address + 1), '-c', String(count), '-t', '4', '-p', String(port), '-1', '-q', '127.0.0.1'], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  if (r.status !== 0) throw new Error(`mbpoll failed (${r.status}): ${r.stderr}`);
  const values: number[] = [];
  for (const m of r.stdout.matchAll(/^\[(\d+)\]:\s+(-?\d+)/gm)) values.push(Number(m[2]));
  return values;
}

/** Protocol configData → parsed config (throws on invalid). */
export function protocol(raw: Record<string, unknown>): ModbusProtocol {
  return protocolConfig.parse(raw);
}

/** A PropertyRequest as the framework builds it, from raw visitor configData. */
export function request(name: string, type: PropertyType, visitor: Record<string, unknown>, extra: Partial<PropertyRequest<ModbusVisitor>> = {}): PropertyRequest<ModbusVisitor> {
  return {
    name,
    type,
    accessMode: 'ReadWrite',
    visitor: visitorConfig.parse(visitor),
    minimum: undefined,
    maximum: undefined,
    unit: '',
    ...extra,
  };
}

/** Words of a float32 / float64 / int32 etc. in big-endian register order, for seeding servers. */
export function wordsOf(write: (b: Buffer) => void, bytes: number): number[] {
  const b = Buffer.alloc(bytes);
  write(b);
  const out: number[] = [];
  for (let i = 0; i < bytes; i += 2) out.push(b.readUInt16BE(i));
  return out;
}

export function connectContext(id = 'default/dev') {
  const [namespace = 'default', name = 'dev'] = id.split('/');
  return { device: { id, name, namespace, model: 'm' }, log: silentLog };
}
