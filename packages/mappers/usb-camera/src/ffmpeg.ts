// SPDX-License-Identifier: Apache-2.0
// ffmpeg command lines: the long-running capture (camera → JPEG frames on stdout) and the
// short-lived encoders used by saveFrame (JPEG → other image formats) and saveVideo
// (JPEG frames → a video file).
import type { CameraConfig } from './config.js';

const QUIET = ['-hide_banner', '-nostats', '-loglevel', 'error'];

/** Capture arguments: input per config, the first video stream at `frameRate`, scaled, as mpjpeg on stdout. */
export function captureArgs(c: CameraConfig, frameRate: number = c.frameRate): string[] {
  const args = [...QUIET, '-nostdin'];
  if (c.kind === 'device') {
    args.push('-f', c.inputFormat ?? 'v4l2');
    if (c.pixelFormat) args.push('-input_format', c.pixelFormat);
    args.push('-video_size', `${c.width}x${c.height}`, '-framerate', String(frameRate));
    args.push(...c.inputOptions);
  } else {
    args.push(...c.inputOptions);
    if (c.realtime) args.push('-re');
    if (c.inputFormat) args.push('-f', c.inputFormat);
  }
  args.push('-i', c.input);
  args.push('-map', '0:v:0', '-an', '-sn', '-dn');
  args.push('-vf', `fps=${frameRate},scale=${c.width}:${c.height}`);
  args.push('-c:v', 'mjpeg', '-q:v', String(c.quality), '-f', 'mpjpeg', 'pipe:1');
  return args;
}

/** Formats a saved JPEG frame is written as-is in. */
export const JPEG_EXTENSIONS: ReadonlySet<string> = new Set(['jpg', 'jpeg', 'jpe', 'jfif', 'mjpeg']);

/** Converts one JPEG on stdin to the image format implied by `path`'s extension. */
export function convertImageArgs(path: string): string[] {
  return [...QUIET, '-f', 'image2pipe', '-c:v', 'mjpeg', '-i', 'pipe:0', '-frames:v', '1', '-update', '1', '-y', `file:${path}`];
}

/** Containers where faststart (moov atom first) applies. */
const MOV_LIKE = new Set(['mp4', 'mov', 'm4v']);

/** Records JPEG frames from stdin at `frameRate` into `path` (container from its extension). */
export function recordVideoArgs(path: string, frameRate: number, codec: 'copy' | 'h264', extension: string): string[] {
  const args = [...QUIET, '-f', 'image2pipe', '-framerate', String(frameRate), '-c:v', 'mjpeg', '-i', 'pipe:0'];
  if (codec === 'copy') args.push('-c:v', 'copy');
  else args.push('-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p');
  if (MOV_LIKE.has(extension)) args.push('-movflags', '+faststart');
  args.push('-y', `file:${path}`);
  return args;
}
