// SPDX-License-Identifier: Apache-2.0
// saveFrame and saveVideo with upstream's semantics (KubeEdge mapper-framework stream handler):
// files named `<outputDir>/f<RFC3339Nano>.<format>`; saveFrame writes `frameCount` images
// `frameInterval` ns apart and gives up after 5×frameCount failures; saveVideo writes
// `videoNum` consecutive videos of `frameCount` frames each, remuxing the camera's JPEG
// frames without re-encoding (or encoding H.264 when asked). Frames come from the capture
// child, so the camera is opened once no matter how many properties use it.
import { type ChildProcess, type ChildProcessByStdio, spawn } from 'node:child_process';
import { mkdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { MapperError } from '@mapperkit/framework';
import type { Frame, FrameSource } from './capture.js';
import { convertImageArgs, JPEG_EXTENSIONS, recordVideoArgs } from './ffmpeg.js';
import { LineTail, rfc3339Nano, runCommand, stopChild } from './proc.js';

/** Image formats saveFrame writes (JPEG as captured; the rest converted by ffmpeg). */
export const IMAGE_FORMATS: readonly string[] = [...JPEG_EXTENSIONS, 'png', 'bmp', 'tif', 'tiff', 'webp', 'ppm', 'pgm', 'gif'];
/** Containers saveVideo writes, per codec (MJPEG can only be remuxed into some). */
export const VIDEO_FORMATS: Readonly<Record<'copy' | 'h264', readonly string[]>> = {
  copy: ['mp4', 'mov', 'm4v', 'mkv', 'avi'],
  h264: ['mp4', 'mov', 'm4v', 'mkv', 'avi', 'flv', 'ts'],
};

/** Live child processes started for saving, so the client can kill them on close. */
export type ChildSet = Set<ChildProcess>;

export interface SaveContext {
  readonly source: FrameSource;
  readonly ffmpegPath: string;
  readonly signal: AbortSignal;
  /** How long to wait for one frame before counting a failure. */
  readonly frameTimeoutMs: number;
  readonly children: ChildSet;
}

/** Upstream's file name for a frame or video started at `ns`. */
export function streamFileName(ns: bigint, format: string): string {
  return `f${rfc3339Nano(ns)}.${format}`;
}

/**
 * Where a file is written before it is complete: a hidden name in the same directory (same
 * extension, so ffmpeg picks the same muxer). Renamed into place once whole, so anything
 * watching outputDir never sees a partial file under the final name.
 */
function partialPath(path: string): string {
  return join(dirname(path), `.${basename(path)}`);
}

async function ensureDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw new MapperError('InvalidConfig', `outputDir ${dir} cannot be created: ${(err as Error).message}`, { key: 'outputDir', cause: err });
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** saveFrame: writes `frameCount` new frames; resolves with their paths. */
export async function saveFrames(ctx: SaveContext, o: { outputDir: string; format: string; frameCount: number; frameIntervalNs: number }): Promise<string[]> {
  const ext = o.format.toLowerCase();
  if (!IMAGE_FORMATS.includes(ext)) {
    throw new MapperError('InvalidConfig', `saveFrame format "${o.format}" is not supported (one of ${IMAGE_FORMATS.join(', ')})`, { key: 'format' });
  }
  await ensureDir(o.outputDir);
  const paths: string[] = [];
  const latest = ctx.source.latest;
  // A frame that arrived within the last frame interval counts as "now".
  let afterSeq = latest && Date.now() - latest.timestamp <= 1000 / ctx.source.frameRate ? latest.seq - 1 : (latest?.seq ?? 0);
  let failures = 0;
  let lastError: unknown;
  while (paths.length < o.frameCount) {
    ctx.signal.throwIfAborted();
    try {
      const frame = await ctx.source.nextFrame(afterSeq, ctx.frameTimeoutMs, ctx.signal);
      afterSeq = frame.seq;
      const path = join(o.outputDir, streamFileName(frame.timestampNs, ext));
      const part = partialPath(path);
      try {
        if (JPEG_EXTENSIONS.has(ext)) await writeFile(part, frame.jpeg);
        else await convertFrame(ctx, frame, part);
        await rename(part, path);
      } catch (err) {
        await unlink(part).catch(() => undefined);
        throw err;
      }
      paths.push(path);
    } catch (err) {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      if (err instanceof MapperError && err.kind === 'InvalidConfig') throw err;
      failures++;
      lastError = err;
      if (failures >= 5 * o.frameCount) {
        throw new MapperError('DeviceError', `saveFrame gave up after ${failures} failures (${paths.length} of ${o.frameCount} saved): ${(err as Error).message}`, { cause: err });
      }
      continue;
    }
    if (paths.length < o.frameCount && o.frameIntervalNs > 0) await sleep(o.frameIntervalNs / 1e6, ctx.signal);
  }
  if (lastError !== undefined && paths.length === 0) throw lastError;
  return paths;
}

async function convertFrame(ctx: SaveContext, frame: Frame, path: string): Promise<void> {
  const r = await runCommand(ctx.ffmpegPath, convertImageArgs(path), { timeoutMs: 10_000, signal: ctx.signal, input: frame.jpeg, maxOutput: 64 * 1024 });
  if (r.code !== 0) {
    await unlink(path).catch(() => undefined);
    const why = r.stderr.trim().split('\n').at(-1) ?? '';
    throw new MapperError('DeviceError', `converting a frame to ${path} failed (ffmpeg exit ${String(r.code ?? r.signal)}): ${why}`);
  }
}

/** Bytes of frames queued for one encoder before further frames are dropped. */
const MAX_QUEUED_BYTES = 32 * 1024 * 1024;

class Recorder {
  readonly path: string;
  private readonly child: ChildProcessByStdio<Writable, null, Readable>;
  private readonly stderr = new LineTail(6);
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>;
  private readonly children: ChildSet;
  dropped = 0;
  frames = 0;

  private readonly part: string;

  /** `makeArgs` gets the path ffmpeg writes to (a hidden partial name, renamed to `path` when done). */
  constructor(ffmpegPath: string, makeArgs: (out: string) => string[], path: string, children: ChildSet) {
    this.path = path;
    this.part = partialPath(path);
    const args = makeArgs(this.part);
    this.children = children;
    this.child = spawn(ffmpegPath, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    children.add(this.child);
    this.child.stderr.on('data', (b: Buffer) => this.stderr.push(b));
    this.child.stdin.on('error', () => undefined); // EPIPE if ffmpeg died; reported through its exit
    this.exited = new Promise((resolve) => {
      let error: Error | undefined;
      this.child.on('error', (e) => {
        error = e;
        if (this.child.pid === undefined) resolve({ code: null, signal: null, error: e });
      });
      this.child.on('exit', (code, signal) => resolve({ code, signal, error }));
    }).finally(() => children.delete(this.child)) as Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>;
  }

  write(jpeg: Buffer): void {
    if (this.child.stdin.writableLength > MAX_QUEUED_BYTES) {
      this.dropped++;
      return;
    }
    this.frames++;
    this.child.stdin.write(jpeg);
  }

  /** Ends the input and waits for ffmpeg to finish the file. */
  async finish(): Promise<string> {
    this.child.stdin.end();
    const r = await this.exited;
    if (r.error || r.code !== 0) {
      await unlink(this.part).catch(() => undefined);
      const why = r.error ? r.error.message : `exit ${String(r.code ?? r.signal)}: ${this.stderr.last()}`;
      throw new MapperError('DeviceError', `recording ${this.path} failed (ffmpeg ${why})`);
    }
    const st = await stat(this.part).catch(() => undefined);
    if (!st || st.size === 0) {
      await unlink(this.part).catch(() => undefined);
      throw new MapperError('DeviceError', `recording ${this.path} produced no file`);
    }
    await rename(this.part, this.path);
    return this.path;
  }

  /** Kills ffmpeg and removes the partial file. */
  async abort(): Promise<void> {
    await stopChild(this.child, 500);
    await this.exited;
    await unlink(this.part).catch(() => undefined);
  }
}

/** saveVideo: records `videoNum` consecutive videos of `framesPerVideo` frames; resolves with their paths. */
export async function saveVideos(
  ctx: SaveContext,
  o: { outputDir: string; format: string; framesPerVideo: number; videoNum: number; codec: 'copy' | 'h264' },
): Promise<string[]> {
  const ext = o.format.toLowerCase();
  const allowed = VIDEO_FORMATS[o.codec];
  if (!allowed.includes(ext)) {
    throw new MapperError('InvalidConfig', `saveVideo format "${o.format}" is not supported with videoCodec ${o.codec} (one of ${allowed.join(', ')})`, { key: 'format' });
  }
  await ensureDir(o.outputDir);
  ctx.signal.throwIfAborted();
  const frameRate = ctx.source.frameRate;
  const recorders: Recorder[] = [];
  const finished: Promise<string>[] = [];
  let current: Recorder | undefined;
  let videos = 0;

  return new Promise<string[]>((resolve, reject) => {
    let settled = false;
    let watchdog: NodeJS.Timeout | undefined;
    const cleanup = (): void => {
      unsubscribe();
      clearTimeout(watchdog);
      ctx.signal.removeEventListener('abort', onAbort);
    };
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      cleanup();
      void Promise.all(recorders.map((r) => r.abort())).finally(() => reject(err));
    };
    const arm = (): void => {
      clearTimeout(watchdog);
      watchdog = setTimeout(
        () => fail(new MapperError('Timeout', `saveVideo: no frame for ${ctx.frameTimeoutMs} ms (video ${videos + 1} of ${o.videoNum}, ${current?.frames ?? 0} frames in)`)),
        ctx.frameTimeoutMs,
      );
    };
    const onAbort = (): void => fail(ctx.signal.reason);
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    const unsubscribe = ctx.source.onFrame((frame) => {
      if (settled) return;
      arm();
      if (!current) {
        const path = join(o.outputDir, streamFileName(frame.timestampNs, ext));
        current = new Recorder(ctx.ffmpegPath, (out) => recordVideoArgs(out, frameRate, o.codec, ext), path, ctx.children);
        recorders.push(current);
      }
      current.write(frame.jpeg);
      if (current.frames + current.dropped < o.framesPerVideo) return;
      const done = current.finish();
      done.catch(() => undefined); // observed by Promise.all below; avoids an unhandled rejection meanwhile
      finished.push(done);
      current = undefined;
      videos++;
      if (videos < o.videoNum) return;
      settled = true;
      cleanup();
      // Every recorder has its input ended; a failed one already removed its file.
      Promise.all(finished).then(resolve, reject);
    });
    arm();
  });
}
