// SPDX-License-Identifier: Apache-2.0
// Test helpers: ffmpeg's lavfi testsrc as the camera, ffprobe as the independent judge of
// files, and /proc to see which child processes exist.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, type PropertyRequest, type PropertyType } from '@mapperkit/framework';
import { type CameraConfig, type CameraVisitor, protocolConfigSchema, visitorConfigSchema } from '../src/index.ts';

export const silentLog = createLogger({ level: 'silent' });

/** Raw protocol configData of a test-pattern camera. */
export function testsrcConfig(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { url: 'testsrc=size=320x240:rate=10', inputFormat: 'lavfi', width: 320, height: 240, frameRate: 10, restartInitialMs: 100, restartMaxMs: 400, ...over };
}

export async function parseProtocol(raw: Record<string, unknown>): Promise<CameraConfig> {
  const r = await protocolConfigSchema['~standard'].validate(raw);
  if (r.issues) throw new Error(`bad protocol config: ${r.issues.map((i) => i.message).join('; ')}`);
  return r.value;
}

export async function parseVisitor(raw: Record<string, unknown> = {}): Promise<CameraVisitor> {
  const r = await visitorConfigSchema['~standard'].validate(raw);
  if (r.issues) throw new Error(`bad visitor config: ${r.issues.map((i) => i.message).join('; ')}`);
  return r.value;
}

/** A property request as the framework builds it. */
export async function request(name: string, type: PropertyType, visitor: Record<string, unknown> = {}, writable = false): Promise<PropertyRequest<CameraVisitor>> {
  return { name, type, accessMode: writable ? 'ReadWrite' : 'ReadOnly', visitor: await parseVisitor(visitor), minimum: undefined, maximum: undefined, unit: '' };
}

export function tempDir(prefix = 'usbcam-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface ProbeResult {
  streams: { codec_name: string; width: number; height: number; nb_read_frames?: string; r_frame_rate?: string }[];
  format: { format_name: string; duration?: string };
}

/** ffprobe of a file (counting frames), as parsed JSON. */
export function ffprobe(path: string): ProbeResult {
  const out = execFileSync(
    'ffprobe',
    ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_name,width,height,nb_read_frames,r_frame_rate:format=format_name,duration', '-of', 'json', `file:${path}`],
    { encoding: 'utf8' },
  );
  return JSON.parse(out) as ProbeResult;
}

/** ffprobe of JPEG bytes given on stdin. */
export function ffprobeJpeg(jpeg: Uint8Array): ProbeResult {
  const r = spawnSync('ffprobe', ['-v', 'error', '-f', 'image2pipe', '-show_entries', 'stream=codec_name,width,height:format=format_name', '-of', 'json', '-i', 'pipe:0'], {
    input: jpeg,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`ffprobe failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as ProbeResult;
}

/** Child processes of this process (pid, command name, state letter) from /proc. */
export function childProcesses(): { pid: number; comm: string; state: string }[] {
  const out: { pid: number; comm: string; state: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    // pid (comm) state ppid …; comm may contain spaces and parentheses.
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const [state, ppid] = stat.slice(close + 2).split(' ');
    if (Number(ppid) === process.pid) out.push({ pid: Number(name), comm, state: state ?? '?' });
  }
  return out;
}

/** Whether a pid exists at all (a zombie still exists; a reaped process does not). */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function waitUntil(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Upstream's file name: f<RFC3339Nano UTC>.<ext>. */
export const STREAM_FILE = /^f\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z\.[a-z0-9]+$/;
