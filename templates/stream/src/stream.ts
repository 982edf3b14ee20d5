// Camera stream capture for STREAM properties (added by `create-mapper --stream`).
//
// As upstream KubeEdge does: the device tells where its stream is (an RTSP/HTTP URL, or a
// file), and the property name chooses what to do with it: `saveFrame` writes `frameCount`
// images, `saveVideo` writes `videoNum` clips of `frameCount` frames each, into `outputDir`.
// Capture runs ffmpeg (it must be on PATH; the Dockerfile installs it). The read's value is
// the list of files written, comma-separated. Captures can take longer than the default read
// timeout: raise `runtime.read_timeout_ms` in config.yaml and give STREAM properties a long
// collectCycle.
import { spawn } from 'node:child_process';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { MapperError, z } from '@mapperkit/framework';

/** Visitor keys of STREAM properties (upstream names and units). */
export const streamVisitorFields = {
  format: z
    .string()
    .regex(/^[a-z0-9]+$/, 'a file extension such as jpg, png, mp4, mkv')
    .optional()
    .describe('File format: image format for saveFrame (default jpg), container for saveVideo (default mkv)'),
  outputDir: z.string().min(1).default('/tmp/{{mapperName}}').describe('Directory the captured files are written to'),
  frameCount: z.coerce.number().int().positive().default(1).describe('saveFrame: images to save; saveVideo: frames per clip'),
  frameInterval: z.coerce
    .number()
    .int()
    .nonnegative()
    .default(1_000_000_000)
    .describe('saveFrame: nanoseconds between saved images (upstream unit); 0 = consecutive frames'),
  videoNum: z.coerce.number().int().positive().default(1).describe('saveVideo: number of clips'),
};

export interface StreamVisitor {
  readonly format?: string | undefined;
  readonly outputDir: string;
  readonly frameCount: number;
  readonly frameInterval: number;
  readonly videoNum: number;
}

/** Captures from `input` as the property name says; resolves with the files written, comma-separated. */
export async function captureStream(property: string, input: string, v: StreamVisitor, signal: AbortSignal): Promise<string> {
  await mkdir(v.outputDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const source = input.startsWith('rtsp://') ? ['-rtsp_transport', 'tcp', '-i', input] : ['-i', input];
  if (property === 'saveFrame') {
    const prefix = `f${stamp}-`;
    const fps = v.frameInterval > 0 ? ['-vf', `fps=${1e9 / v.frameInterval}`] : [];
    await ffmpeg([...source, ...fps, '-frames:v', String(v.frameCount), join(v.outputDir, `${prefix}%03d.${v.format ?? 'jpg'}`)], signal);
    return written(v.outputDir, prefix);
  }
  if (property === 'saveVideo') {
    const prefix = `v${stamp}-`;
    for (let i = 0; i < v.videoNum; i++) {
      await ffmpeg([...source, '-c', 'copy', '-frames:v', String(v.frameCount), join(v.outputDir, `${prefix}${String(i).padStart(3, '0')}.${v.format ?? 'mkv'}`)], signal);
    }
    return written(v.outputDir, prefix);
  }
  throw new MapperError('Unsupported', `${property}: a STREAM property must be named saveFrame or saveVideo`, { property });
}

async function written(dir: string, prefix: string): Promise<string> {
  const files = (await readdir(dir)).filter((f) => f.startsWith(prefix)).sort();
  if (files.length === 0) throw new MapperError('DeviceError', 'ffmpeg wrote no file');
  return files.map((f) => join(dir, f)).join(',');
}

function ffmpeg(args: readonly string[], signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new MapperError('Cancelled', 'capture aborted'));
    const child = spawn('ffmpeg', ['-nostdin', '-hide_banner', '-loglevel', 'error', '-y', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-2000)));
    const onAbort = (): void => {
      child.kill('SIGKILL');
    };
    signal.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      reject(new MapperError('Unsupported', `cannot run ffmpeg (is it installed and on PATH?): ${err.message}`, { cause: err }));
    });
    child.on('close', (code) => {
      signal.removeEventListener('abort', onAbort);
      if (signal.aborted) reject(new MapperError('Cancelled', 'capture aborted'));
      else if (code === 0) resolve();
      else reject(new MapperError('DeviceError', `ffmpeg exited with ${code}: ${stderr.trim().split('\n').pop() ?? ''}`));
    });
  });
}
