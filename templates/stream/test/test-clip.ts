// A short test clip made with ffmpeg's test source, standing in for a camera stream.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** Writes a 1 s MJPEG clip into `dir`; resolves with its path. */
export async function makeTestClip(dir: string): Promise<string> {
  const file = join(dir, 'test-clip.avi');
  await promisify(execFile)('ffmpeg', ['-nostdin', '-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=10', '-t', '1', '-c:v', 'mjpeg', file]);
  return file;
}
