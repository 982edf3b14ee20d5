// SPDX-License-Identifier: Apache-2.0
// Child-process helpers: bounded stderr capture, stop-and-reap, run-to-completion with a
// timeout, and wall-clock timestamps with nanosecond resolution for file names.
import { type ChildProcess, spawn } from 'node:child_process';

/** Keeps the last `maxLines` lines (each at most `maxLineChars`) of a stream. */
export class LineTail {
  private readonly lines: string[] = [];
  private partial = '';
  private readonly maxLines: number;
  private readonly maxLineChars: number;

  constructor(maxLines = 10, maxLineChars = 400) {
    this.maxLines = maxLines;
    this.maxLineChars = maxLineChars;
  }

  push(chunk: Buffer | string): void {
    const text = this.partial + chunk.toString();
    const parts = text.split(/\r?\n|\r/);
    this.partial = (parts.pop() ?? '').slice(-this.maxLineChars);
    for (const p of parts) {
      const line = p.trim();
      if (line === '') continue;
      this.lines.push(line.slice(0, this.maxLineChars));
      if (this.lines.length > this.maxLines) this.lines.shift();
    }
  }

  /** Lines so far, including an unterminated last line. */
  all(): string[] {
    const p = this.partial.trim();
    return p ? [...this.lines, p] : [...this.lines];
  }

  /** The last line, or '' when nothing was written. */
  last(): string {
    return this.all().at(-1) ?? '';
  }

  clear(): void {
    this.lines.length = 0;
    this.partial = '';
  }
}

/** Resolves once `child` has exited; Node has reaped it by then (no zombie). Immediate if it already did or never started. */
export function whenExited(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
}

/**
 * Stops a child: SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited (Node reaps
 * it, so no zombie is left). Safe to call on a child that already exited or never started.
 */
export async function stopChild(child: ChildProcess, graceMs = 2000): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const closed = whenExited(child);
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const escalated = await Promise.race([
    closed.then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), graceMs);
    }),
  ]);
  clearTimeout(timer);
  if (escalated) {
    child.kill('SIGKILL');
    await closed;
  }
}

/** Result of {@link runCommand}. */
export interface CommandResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Raised by {@link runCommand} when the executable cannot be started. */
export class CommandNotFoundError extends Error {
  override name = 'CommandNotFoundError';
}

/**
 * Runs `file args` to completion (no shell), with stdin from `input` (or closed), output
 * capped at `maxOutput` bytes per stream, killed on timeout or abort. Rejects with
 * {@link CommandNotFoundError} (ENOENT/EACCES), a TimeoutError or the abort reason.
 */
export function runCommand(
  file: string,
  args: readonly string[],
  opts: { timeoutMs: number; signal?: AbortSignal; input?: Uint8Array; maxOutput?: number },
): Promise<CommandResult> {
  const max = opts.maxOutput ?? 1024 * 1024;
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(opts.signal.reason);
      return;
    }
    const child = spawn(file, [...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    let failure: unknown;
    child.stdout.on('data', (b: Buffer) => {
      if (outBytes < max) out.push(b.subarray(0, max - outBytes));
      outBytes += b.length;
    });
    child.stderr.on('data', (b: Buffer) => {
      if (errBytes < max) err.push(b.subarray(0, max - errBytes));
      errBytes += b.length;
    });
    child.stdin.on('error', () => undefined); // EPIPE when the command does not read its input
    if (opts.input) child.stdin.end(opts.input);
    else child.stdin.end();
    const fail = (e: unknown): void => {
      if (failure !== undefined) return;
      failure = e;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => {
      const e = new Error(`${file} did not finish within ${opts.timeoutMs} ms`);
      e.name = 'TimeoutError';
      fail(e);
    }, opts.timeoutMs);
    const onAbort = (): void => fail(opts.signal?.reason);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'EACCES') failure ??= new CommandNotFoundError(`cannot run ${file}: ${e.code === 'ENOENT' ? 'not found' : 'permission denied'}`);
      else failure ??= e;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (failure !== undefined) reject(failure);
      else resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

const wallOriginNs = BigInt(Date.now()) * 1_000_000n;
const hrOrigin = process.hrtime.bigint();

/** Wall-clock time in nanoseconds since the epoch (millisecond-accurate, nanosecond-resolution: strictly increasing in practice). */
export function nowNs(): bigint {
  return wallOriginNs + (process.hrtime.bigint() - hrOrigin);
}

/** Go's time.RFC3339Nano in UTC: 2006-01-02T15:04:05.999999999Z, trailing zeros of the fraction dropped. */
export function rfc3339Nano(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const base = new Date(ms).toISOString().slice(0, 19);
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${base}${frac ? `.${frac}` : ''}Z`;
}
