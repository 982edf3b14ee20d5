// SPDX-License-Identifier: Apache-2.0
// Child processes of a soak or test run: spawned with their output in a log file, killed and
// restarted by the fault schedule, and accounted for at the end (nothing may be left behind).
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync, readlinkSync, type WriteStream } from 'node:fs';
import { connect as netConnect, createServer } from 'node:net';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` every `everyMs` until it returns true; rejects after `timeoutMs` naming `what`. */
export async function until(fn: () => boolean | Promise<boolean>, timeoutMs: number, what: string, everyMs = 50): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** A free TCP port on 127.0.0.1 (bound, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** `count` consecutive free ports (for `modbus-sim --count`), checked by binding each. */
export async function freePortRange(count: number, from = 20_000 + Math.floor(Math.random() * 30_000)): Promise<number> {
  for (let base = from; base + count < 65_000; base += count + 7) {
    let ok = true;
    for (let p = base; p < base + count && ok; p++) ok = await canBind(p);
    if (ok) return base;
  }
  throw new Error(`no range of ${count} free ports`);
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function portOpen(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = netConnect(port, '127.0.0.1');
    const t = setTimeout(() => {
      sock.destroy();
      resolve(false);
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(t);
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => {
      clearTimeout(t);
      sock.destroy();
      resolve(false);
    });
  });
}

export async function waitForPort(port: number, timeoutMs = 15_000): Promise<void> {
  await until(() => portOpen(port, 500), timeoutMs, `port ${port} to accept connections`, 50);
}

export interface ProcSpec {
  /** Short name used in logs and reports. */
  readonly name: string;
  readonly cmd: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** File that receives stdout and stderr (appended across restarts). */
  readonly logFile: string;
}

/** A process that can be started, killed and started again with the same arguments. */
export class ManagedProcess {
  readonly spec: ProcSpec;
  private child: ChildProcess | undefined;
  private log: WriteStream;
  private tail = '';
  private waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  /** Every pid this process ever had (for the leftover check). */
  readonly pids: number[] = [];
  starts = 0;
  unexpectedExits: { at: number; code: number | null; signal: string | null }[] = [];
  private expectExit = false;

  constructor(spec: ProcSpec) {
    this.spec = spec;
    this.log = createWriteStream(spec.logFile, { flags: 'a' });
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): void {
    if (this.running) throw new Error(`${this.spec.name} already running`);
    this.expectExit = false;
    this.tail = '';
    const child = spawn(this.spec.cmd, [...this.spec.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: this.spec.env ?? process.env,
      ...(this.spec.cwd ? { cwd: this.spec.cwd } : {}),
    });
    this.child = child;
    this.starts++;
    if (child.pid !== undefined) this.pids.push(child.pid);
    const onData = (d: Buffer): void => {
      this.log.write(d);
      this.tail = (this.tail + d.toString()).slice(-64 * 1024);
      for (const w of [...this.waiters]) {
        const m = this.tail.match(w.re);
        if (m) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code, signal) => {
      this.log.write(`\n[reliability] ${this.spec.name} exited code=${code} signal=${signal}\n`);
      if (!this.expectExit) this.unexpectedExits.push({ at: Date.now(), code, signal });
    });
    child.once('error', (err) => this.log.write(`\n[reliability] ${this.spec.name} spawn error: ${err.message}\n`));
  }

  /** Resolves with the first match of `re` in the output since the last start. */
  waitForOutput(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const m = this.tail.match(re);
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const w = { re, resolve: (x: RegExpMatchArray) => (clearTimeout(t), resolve(x)) };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`${this.spec.name}: no output matching ${re} within ${timeoutMs} ms; last output: ${this.tail.slice(-1500)}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** Output since the last start (last 64 KiB). */
  output(): string {
    return this.tail;
  }

  /** Sends `signal` and waits for the exit (SIGKILL after `graceMs`). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<{ code: number | null; signal: string | null }> {
    const child = this.child;
    if (!child || !this.running) return { code: child?.exitCode ?? null, signal: child?.signalCode ?? null };
    this.expectExit = true;
    const exited = new Promise<{ code: number | null; signal: string | null }>((r) => child.once('exit', (code, sig) => r({ code, signal: sig })));
    child.kill(signal);
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    const res = await exited;
    clearTimeout(t);
    return res;
  }

  async close(): Promise<void> {
    await this.stop('SIGTERM', 5000);
    await new Promise<void>((r) => this.log.end(r));
  }
}

/* ── /proc helpers (Linux) ── */

/** Resident set size of a process in bytes (VmRSS), undefined when it is gone. */
export function rssOf(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Open file descriptors of a process, by kind (socket, pipe, file, anon…). */
export function fdsOf(pid: number): { total: number; byKind: Record<string, number> } | undefined {
  let names: string[];
  try {
    names = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return undefined;
  }
  const byKind: Record<string, number> = {};
  for (const n of names) {
    let target = '';
    try {
      target = readlinkSync(`/proc/${pid}/fd/${n}`);
    } catch {
      continue;
    }
    const kind = target.startsWith('socket:') ? 'socket' : target.startsWith('pipe:') ? 'pipe' : target.startsWith('anon_inode:') ? target.slice(11).replace(/[[\]]/g, '') : 'file';
    byKind[kind] = (byKind[kind] ?? 0) + 1;
  }
  return { total: names.length, byKind };
}

/** Whether a pid exists and is not a zombie. */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Live processes whose parent is `ppid` (pid, command). */
export function childrenOf(ppid: number): { pid: number; comm: string }[] {
  const out: { pid: number; comm: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const fields = stat.slice(close + 2).split(' ');
      if (Number(fields[1]) === ppid && fields[0] !== 'Z') out.push({ pid: Number(name), comm: stat.slice(stat.indexOf('(') + 1, close) });
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

/** TCP ports in LISTEN state on this machine (IPv4 and IPv6). */
export function listeningPorts(): Set<number> {
  const ports = new Set<number>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === '0A') ports.add(parseInt(cols[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}

/** Sockets of a process, described from /proc/net (tcp: `local -> remote STATE`, unix: path). */
export function socketsOf(pid: number): string[] {
  const inodes = new Set<string>();
  try {
    for (const n of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${n}`));
        if (m) inodes.add(m[1]!);
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    return [];
  }
  const out: string[] = [];
  const found = new Set<string>();
  const TCP_STATES: Record<string, string> = { '01': 'ESTABLISHED', '02': 'SYN_SENT', '06': 'TIME_WAIT', '07': 'CLOSE', '08': 'CLOSE_WAIT', '0A': 'LISTEN', '0B': 'CLOSING', '04': 'FIN_WAIT1', '05': 'FIN_WAIT2', '09': 'LAST_ACK' };
  const port = (hexAddr: string): string => String(parseInt(hexAddr.split(':')[1] ?? '0', 16));
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(`/proc/${pid}/net/${f.slice(10)}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const c = line.trim().split(/\s+/);
      if (c.length < 10 || !inodes.has(c[9]!)) continue;
      found.add(c[9]!);
      out.push(`tcp :${port(c[1]!)} -> :${port(c[2]!)} ${TCP_STATES[c[3]!] ?? c[3]}`);
    }
  }
  try {
    for (const line of readFileSync(`/proc/${pid}/net/unix`, 'utf8').split('\n').slice(1)) {
      const c = line.trim().split(/\s+/);
      if (c.length < 7 || !inodes.has(c[6]!)) continue;
      found.add(c[6]!);
      out.push(`unix ${c[7] ?? '(unnamed)'}`);
    }
  } catch {
    // no unix table
  }
  for (const i of inodes) if (!found.has(i)) out.push(`other socket inode ${i}`);
  return out.sort();
}
