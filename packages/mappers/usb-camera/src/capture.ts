// SPDX-License-Identifier: Apache-2.0
// The capture child: one ffmpeg process per device writing JPEG frames (mpjpeg) to a pipe,
// supervised — restarted with jittered exponential backoff when it dies, stopped (SIGTERM,
// then SIGKILL) and reaped on close. Only the latest frame is kept; waiters and listeners
// are the only other holders of frames, so memory does not grow with time or frame rate.
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { type Logger, MapperError } from '@mapperkit/framework';
import { jpegDimensions } from './jpeg.js';
import { MpjpegParser } from './mpjpeg.js';
import { LineTail, nowNs, stopChild, whenExited } from './proc.js';

/** One JPEG frame from the camera. */
export interface Frame {
  readonly jpeg: Buffer;
  /** Arrival time, ms since the epoch. */
  readonly timestamp: number;
  /** Arrival time, ns since the epoch (for file names). */
  readonly timestampNs: bigint;
  /** 1, 2, 3… over the supervisor's life (across restarts). */
  readonly seq: number;
  readonly width: number;
  readonly height: number;
}

/** Where frames come from (the supervisor; a fake in unit tests of consumers). */
export interface FrameSource {
  /** Latest frame, if any. */
  readonly latest: Frame | undefined;
  /** Frames per second the source delivers. */
  readonly frameRate: number;
  /** Resolves with the first frame whose seq is greater than `afterSeq`. */
  nextFrame(afterSeq: number, timeoutMs: number, signal: AbortSignal): Promise<Frame>;
  /** Calls `listener` for every new frame until the returned function is called. */
  onFrame(listener: (frame: Frame) => void): () => void;
}

export interface CaptureOptions {
  readonly ffmpegPath: string;
  /** ffmpeg arguments; must write mpjpeg to stdout. */
  readonly args: readonly string[];
  readonly frameRate: number;
  /** For messages: what is being captured, e.g. "/dev/video0". */
  readonly label: string;
  readonly maxFrameBytes: number;
  readonly restartInitialMs: number;
  readonly restartMaxMs: number;
  readonly log: Logger;
  /** Grace period between SIGTERM and SIGKILL. */
  readonly killGraceMs?: number;
}

interface Waiter {
  readonly afterSeq: number;
  readonly failOnExit: boolean;
  resolve(frame: Frame): void;
  reject(err: unknown): void;
}

export class CaptureSupervisor implements FrameSource {
  private opts: CaptureOptions;
  private child: ChildProcessByStdio<null, Readable, Readable> | undefined;
  private readonly stderr = new LineTail(8);
  private readonly listeners = new Set<(frame: Frame) => void>();
  private readonly waiters = new Set<Waiter>();
  private restartTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private stopped = false;
  private seq = 0;
  private latest_: Frame | undefined;
  private exitReason_: string | undefined;
  private childFrames = 0;
  /** When the current run of failures started (no frame since), ms since the epoch. */
  private noFrameSince = Date.now();
  /** Child processes started so far (the first start included). */
  starts = 0;
  /** Frames dropped because the parser rejected the stream. */
  parseErrors = 0;

  constructor(opts: CaptureOptions) {
    this.opts = opts;
  }

  get latest(): Frame | undefined {
    return this.latest_;
  }

  get frameRate(): number {
    return this.opts.frameRate;
  }

  /** PID of the running ffmpeg, if one is running. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Restarts after the first start (deaths and argument changes). */
  get restarts(): number {
    return Math.max(0, this.starts - 1);
  }

  /** Why the last ffmpeg exited (exit code/signal and its last stderr line). */
  get exitReason(): string | undefined {
    return this.exitReason_;
  }

  /** Milliseconds since the last frame (or since start when there was none). */
  get silentForMs(): number {
    return Date.now() - (this.latest_?.timestamp ?? this.noFrameSince);
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  start(): void {
    if (this.stopped || this.child || this.restartTimer) return;
    this.spawnChild();
  }

  /** Replaces the ffmpeg arguments (e.g. a new frame rate) and restarts the child now. */
  async reconfigure(args: readonly string[], frameRate: number): Promise<void> {
    this.opts = { ...this.opts, args, frameRate };
    if (this.stopped) return;
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const child = this.child;
    this.child = undefined;
    if (child) {
      child.removeAllListeners('exit');
      await stopChild(child, this.opts.killGraceMs);
    }
    this.attempt = 0;
    if (!this.stopped) this.spawnChild();
  }

  private spawnChild(): void {
    const { ffmpegPath, args, label, log } = this.opts;
    this.starts++;
    this.childFrames = 0;
    this.stderr.clear();
    const parser = new MpjpegParser({ maxFrameBytes: this.opts.maxFrameBytes, onFrame: (jpeg) => this.deliver(jpeg) });
    let child: ChildProcessByStdio<null, Readable, Readable>;
    try {
      child = spawn(ffmpegPath, [...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      this.onExit(`cannot start ${ffmpegPath}: ${(err as Error).message}`);
      return;
    }
    this.child = child;
    log.debug({ ffmpegPid: child.pid, input: label, args: args.join(' ') }, 'ffmpeg capture started');
    child.stdout.on('data', (chunk: Buffer) => {
      try {
        parser.push(chunk);
      } catch (err) {
        this.parseErrors++;
        log.warn({ input: label, err: (err as Error).message }, 'bad ffmpeg output; restarting capture');
        parser.reset();
        child.kill('SIGKILL');
      }
    });
    child.stderr.on('data', (chunk: Buffer) => this.stderr.push(chunk));
    let spawnError: NodeJS.ErrnoException | undefined;
    child.on('error', (err: NodeJS.ErrnoException) => {
      spawnError = err;
      if (child.pid === undefined) this.childGone(child, `cannot start ${ffmpegPath}: ${err.code === 'ENOENT' ? 'not found (install ffmpeg)' : err.message}`);
    });
    child.on('exit', (code, signal) => {
      const how = signal ? `killed by ${signal}` : `exited with code ${String(code)}`;
      const detail = this.stderr.last();
      this.childGone(child, spawnError ? `cannot start ${ffmpegPath}: ${spawnError.message}` : `ffmpeg ${how}${detail ? `: ${detail}` : ''}`);
    });
  }

  private childGone(child: ChildProcessByStdio<null, Readable, Readable>, reason: string): void {
    if (this.child !== child) return;
    this.child = undefined;
    this.onExit(reason);
  }

  private onExit(reason: string): void {
    this.exitReason_ = reason;
    const err = new MapperError('Unreachable', `capture of ${this.opts.label} failed: ${reason}`);
    for (const w of [...this.waiters]) {
      if (w.failOnExit) {
        this.waiters.delete(w);
        w.reject(err);
      }
    }
    if (this.stopped) return;
    if (this.childFrames > 0) this.attempt = 0;
    const base = Math.min(this.opts.restartMaxMs, this.opts.restartInitialMs * 2 ** Math.min(this.attempt, 20));
    this.attempt++;
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    const level = this.attempt <= 1 || this.attempt % 10 === 0 ? 'warn' : 'debug';
    this.opts.log[level]({ input: this.opts.label, reason, retryInMs: delay, restarts: this.restarts }, 'ffmpeg capture stopped; restarting');
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.stopped) this.spawnChild();
    }, delay);
  }

  private deliver(jpeg: Buffer): void {
    const dims = jpegDimensions(jpeg);
    if (!dims) {
      this.parseErrors++;
      return;
    }
    this.childFrames++;
    const frame: Frame = { jpeg, timestamp: Date.now(), timestampNs: nowNs(), seq: ++this.seq, width: dims.width, height: dims.height };
    this.latest_ = frame;
    this.noFrameSince = frame.timestamp;
    for (const w of [...this.waiters]) {
      if (frame.seq > w.afterSeq) {
        this.waiters.delete(w);
        w.resolve(frame);
      }
    }
    for (const l of [...this.listeners]) {
      try {
        l(frame);
      } catch (err) {
        this.opts.log.warn({ err: (err as Error).message }, 'frame listener failed');
      }
    }
  }

  nextFrame(afterSeq: number, timeoutMs: number, signal: AbortSignal, failOnExit = false): Promise<Frame> {
    const latest = this.latest_;
    if (latest && latest.seq > afterSeq) return Promise.resolve(latest);
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.stopped) return Promise.reject(new MapperError('Unreachable', `capture of ${this.opts.label} is stopped`));
    return new Promise<Frame>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.waiters.delete(waiter);
      };
      const waiter: Waiter = {
        afterSeq,
        failOnExit,
        resolve: (f) => {
          done();
          resolve(f);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        const why = this.exitReason_ && !this.child ? `; last ffmpeg exit: ${this.exitReason_}` : '';
        waiter.reject(new MapperError('Timeout', `no frame from ${this.opts.label} within ${timeoutMs} ms${why}`));
      }, timeoutMs);
      const onAbort = (): void => waiter.reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(waiter);
    });
  }

  onFrame(listener: (frame: Frame) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops supervising, kills and reaps ffmpeg; pending waiters fail. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const child = this.child;
    this.child = undefined;
    const err = new MapperError('Cancelled', `capture of ${this.opts.label} stopped`);
    for (const w of [...this.waiters]) w.reject(err);
    this.listeners.clear();
    if (child) {
      await stopChild(child, this.opts.killGraceMs);
      await whenExited(child);
    }
  }
}
