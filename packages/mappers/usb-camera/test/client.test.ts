// SPDX-License-Identifier: Apache-2.0
// The driver and its client, with ffmpeg's lavfi testsrc as the camera: what each kind of
// property reads, writes, clear errors for what cannot work here, connect failures, state,
// and close leaving no process behind.
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isMapperError, type ReadResult } from '@mapperkit/framework';
import { isCompleteJpeg, jpegDimensions, usbCameraDriver, type UsbCameraClient } from '../src/index.ts';
import { childProcesses, ffprobe, parseProtocol, pidExists, request, silentLog, tempDir, testsrcConfig, waitUntil } from './helpers.ts';

const device = { id: 'default/cam', name: 'cam', namespace: 'default', model: 'usb-camera' };

async function connect(raw: Record<string, unknown>): Promise<UsbCameraClient> {
  const config = await parseProtocol(raw);
  return (await usbCameraDriver.connect({ device, config, log: silentLog }, AbortSignal.timeout(15_000))) as UsbCameraClient;
}

function value(r: ReadResult | undefined): unknown {
  assert.ok(r, 'a result');
  assert.ok(r.ok, `read failed: ${r.ok ? '' : r.error.message}`);
  return r.value;
}

function failure(r: ReadResult | undefined): { kind: string; message: string } {
  assert.ok(r && !r.ok, 'expected a failed read');
  return { kind: r.error.kind, message: r.error.message };
}

describe('camera-usb client on a test pattern', () => {
  let client: UsbCameraClient;
  const dir = tempDir('usbcam-driver-');

  before(async () => {
    client = await connect(testsrcConfig());
  });
  after(async () => {
    await client.close();
    dir.remove();
  });

  it('reads one frame per batch: JPEG bytes, base64, data URL, JSON, and its size and timestamp', async () => {
    const reqs = await Promise.all([
      request('frame', 'bytes'),
      request('ImageTrigger', 'string'),
      request('snap', 'string', { featureName: 'frame', encoding: 'dataUrl' }),
      request('meta', 'string', { featureName: 'frame', encoding: 'json' }),
      request('frameWidth', 'int'),
      request('frameHeight', 'int'),
      request('frameSize', 'int'),
      request('frameTimestamp', 'string'),
      request('stamp', 'int', { featureName: 'frameTimestamp' }),
    ]);
    const before = Date.now();
    const res = await client.read(reqs, AbortSignal.timeout(5000));
    assert.equal(res.length, reqs.length);
    const jpeg = value(res[0]) as Uint8Array;
    assert.ok(jpeg instanceof Uint8Array);
    assert.ok(isCompleteJpeg(jpeg));
    assert.deepEqual(jpegDimensions(jpeg), { width: 320, height: 240 });
    assert.equal(Buffer.from(value(res[1]) as string, 'base64').compare(Buffer.from(jpeg)), 0, 'same frame as base64 (upstream ImageTrigger)');
    assert.equal(value(res[2]), `data:image/jpeg;base64,${Buffer.from(jpeg).toString('base64')}`);
    const meta = JSON.parse(value(res[3]) as string) as Record<string, unknown>;
    assert.deepEqual({ ...meta, data: undefined }, { format: 'jpeg', width: 320, height: 240, size: jpeg.length, timestamp: value(res[7]), data: undefined });
    assert.equal(value(res[4]), 320);
    assert.equal(value(res[5]), 240);
    assert.equal(value(res[6]), jpeg.length);
    const ts = value(res[8]) as number;
    assert.equal(new Date(ts).toISOString(), value(res[7]));
    assert.ok(ts <= before + 50 && ts > before - 3000, 'capture time of a fresh frame');
    for (const r of res) assert.equal(r.ok && r.timestamp, ts, 'every result carries the frame time');
  });

  it('reads Framerate and captureRestarts; writing Framerate restarts the capture at the new rate', async () => {
    const fps = await request('Framerate', 'float', {}, true);
    const restarts = await request('captureRestarts', 'int');
    assert.deepEqual(
      (await client.read([fps, restarts], AbortSignal.timeout(5000))).map((r) => value(r)),
      [10, 0],
    );
    const oldPid = client.capture.pid!;
    await client.write(fps, 4, AbortSignal.timeout(5000));
    assert.deepEqual(
      (await client.read([fps, restarts], AbortSignal.timeout(5000))).map((r) => value(r)),
      [4, 1],
    );
    assert.notEqual(client.capture.pid, oldPid);
    assert.equal(pidExists(oldPid), false, 'the old ffmpeg was stopped and reaped');
    // Frames now come about 250 ms apart: four intervals take about a second.
    const a = await client.capture.nextFrame(client.capture.latest?.seq ?? 0, 5000, AbortSignal.timeout(6000));
    const b = await client.capture.nextFrame(a.seq + 3, 5000, AbortSignal.timeout(6000));
    assert.ok(b.timestamp - a.timestamp >= 600, `five frames at 4 fps took ${b.timestamp - a.timestamp} ms`);
    await assert.rejects(client.write(fps, 0, AbortSignal.timeout(1000)), /Framerate 0 is outside/);
    await assert.rejects(client.write(fps, 'fast', AbortSignal.timeout(1000)), /Framerate takes a number/);
    await client.write(fps, 10, AbortSignal.timeout(5000));
  });

  it('says plainly that camera settings need a V4L2 device when the input is a URL', async () => {
    const reqs = await Promise.all([request('Brightness', 'int', {}, true), request('BusInfo', 'string'), request('Input', 'int')]);
    const res = await client.read(reqs, AbortSignal.timeout(5000));
    for (const [i, name] of ['Brightness', 'BusInfo', 'Input'].entries()) {
      const f = failure(res[i]);
      assert.equal(f.kind, 'Unsupported');
      assert.match(f.message, new RegExp(`property ${reqs[i]!.name}: camera setting "${name}" needs a V4L2 device \\(devicePath\\); this camera's input is testsrc`));
    }
    await assert.rejects(client.write(reqs[0]!, 100, AbortSignal.timeout(1000)), (e: unknown) => isMapperError(e) && e.kind === 'Unsupported');
  });

  it('rejects properties that cannot mean anything, naming them', async () => {
    const reqs = await Promise.all([
      request('snapshot', 'stream'),
      request('saveFrame', 'string'),
      request('frame', 'int'),
      request('saveFrame', 'stream'),
      request('whatever', 'bytes'),
    ]);
    const res = await client.read(reqs, AbortSignal.timeout(5000));
    assert.match(failure(res[0]).message, /property snapshot: a STREAM property must be saveFrame or saveVideo/);
    assert.match(failure(res[1]).message, /property saveFrame: saveFrame must have model type STREAM, not STRING/);
    assert.match(failure(res[2]).message, /property frame: a frame property must have model type BYTES or STRING, not INT/);
    const noDir = failure(res[3]);
    assert.equal(noDir.kind, 'InvalidConfig');
    assert.match(noDir.message, /saveFrame needs visitor configData.outputDir/);
    assert.match(failure(res[4]).message, /cannot have model type BYTES/);
    await assert.rejects(client.write(await request('frameWidth', 'int', {}, true), 1, AbortSignal.timeout(1000)), (e: unknown) => isMapperError(e) && e.kind === 'WriteRejected');
  });

  it('saveFrame/saveVideo reads save files and return their paths; `once` saves only on the first read', async () => {
    const frames = join(dir.path, 'frames');
    const videos = join(dir.path, 'videos');
    const reqs = await Promise.all([
      request('saveFrame', 'stream', { outputDir: frames, frameCount: 2 }),
      request('clip', 'stream', { featureName: 'saveVideo', outputDir: videos, format: 'mkv', frameCount: 5 }),
      request('frameWidth', 'int'),
    ]);
    const res = await client.read(reqs, AbortSignal.timeout(10_000));
    const framePaths = JSON.parse(value(res[0]) as string) as string[];
    const videoPaths = JSON.parse(value(res[1]) as string) as string[];
    assert.equal(framePaths.length, 2);
    assert.equal(videoPaths.length, 1);
    assert.equal(ffprobe(framePaths[0]!).streams[0]!.codec_name, 'mjpeg');
    const v = ffprobe(videoPaths[0]!).streams[0]!;
    assert.equal(Number(v.nb_read_frames), 5);
    assert.equal(value(res[2]), 320);

    const once = await request('saveFrame', 'stream', { outputDir: join(dir.path, 'once'), once: true });
    const first = value((await client.read([once], AbortSignal.timeout(5000)))[0]);
    const second = value((await client.read([once], AbortSignal.timeout(5000)))[0]);
    assert.equal(second, first);
    assert.equal(readdirSync(join(dir.path, 'once')).length, 1, 'saved once');
  });

  it('state is ok while frames flow; a read with an aborted signal settles at once', async () => {
    assert.equal(await client.state(AbortSignal.timeout(1000)), 'ok');
    const ctl = new AbortController();
    ctl.abort(new Error('gone'));
    await assert.rejects(client.read([await request('frame', 'bytes')], ctl.signal), /gone/);
  });
});

describe('camera-usb connect failures', () => {
  it('a device path that does not exist: Unreachable naming the path, and no ffmpeg started', async () => {
    const ffmpegs = (): number => childProcesses().filter((c) => c.comm === 'ffmpeg').length;
    const before = ffmpegs();
    await assert.rejects(connect({ devicePath: '/dev/video-does-not-exist' }), (e: unknown) => {
      assert.ok(isMapperError(e));
      assert.equal(e.kind, 'Unreachable');
      assert.match(e.message, /\/dev\/video-does-not-exist does not exist: no camera at this path/);
      return true;
    });
    assert.equal(ffmpegs(), before);
  });

  it('a path that is not a character device: InvalidConfig (unhealthy, not retried as offline)', async () => {
    const d = tempDir();
    try {
      const f = join(d.path, 'video0');
      writeFileSync(f, '');
      await assert.rejects(connect({ devicePath: f }), (e: unknown) => isMapperError(e) && e.kind === 'InvalidConfig' && /is not a character device/.test(e.message));
    } finally {
      d.remove();
    }
  });

  it('an input ffmpeg cannot open: Unreachable with ffmpeg\'s own message, and the child reaped', async () => {
    await assert.rejects(connect(testsrcConfig({ url: 'nosuchsource=size=10x10' })), (e: unknown) => {
      assert.ok(isMapperError(e));
      assert.equal(e.kind, 'Unreachable');
      assert.match(e.message, /ffmpeg exited with code \d+: .*nosuchsource/i);
      return true;
    });
    await waitUntil(() => childProcesses().every((c) => c.comm !== 'ffmpeg'), 3000, 'no ffmpeg child');
  });

  it('a missing ffmpeg binary: Unreachable saying so', async () => {
    await assert.rejects(connect(testsrcConfig({ ffmpegPath: '/nonexistent/ffmpeg' })), /cannot start \/nonexistent\/ffmpeg: not found \(install ffmpeg\)/);
  });
});

describe('camera-usb state and shutdown', () => {
  it('goes unhealthy, then offline, when frames stop; close kills ffmpeg and leaves no child', async () => {
    const client = await connect(testsrcConfig({ staleAfterMs: 300, offlineAfterMs: 1500, restartInitialMs: 20_000, restartMaxMs: 20_000 }));
    try {
      assert.equal(await client.state(AbortSignal.timeout(1000)), 'ok');
      const pid = client.capture.pid!;
      process.kill(pid, 'SIGKILL'); // next restart only in 10-20 s
      await waitUntil(() => client.capture.pid === undefined, 2000, 'ffmpeg gone');
      const seen: string[] = [];
      await waitUntil(
        () => {
          void client.state(AbortSignal.timeout(1000)).then((s) => {
            if (seen.at(-1) !== s) seen.push(s);
          });
          return seen.at(-1) === 'offline';
        },
        5000,
        'offline',
      );
      assert.deepEqual(seen.filter((s) => s !== 'ok'), ['unhealthy', 'offline']);
      const [r] = await client.read([await request('frame', 'bytes')], AbortSignal.timeout(3000));
      assert.match(failure(r).message, /property frame: no frame from testsrc.* within 300 ms; last ffmpeg exit: ffmpeg killed by SIGKILL/);
    } finally {
      await client.close();
    }
    assert.equal(await client.state(AbortSignal.timeout(1000)), 'offline');
    await assert.rejects(client.read([await request('frame', 'bytes')], AbortSignal.timeout(1000)), (e: unknown) => isMapperError(e) && e.kind === 'Unreachable');
    await client.close(); // idempotent
  });

  it('close() during a saveVideo kills the recorder and the capture', async () => {
    const d = tempDir();
    const client = await connect(testsrcConfig());
    try {
      const req = await request('saveVideo', 'stream', { outputDir: d.path, format: 'mkv', frameCount: 100_000 });
      const reading = client.read([req], AbortSignal.timeout(30_000));
      const settled = assert.rejects(reading, (e: unknown) => isMapperError(e) && e.kind === 'Cancelled');
      await waitUntil(() => client.activeChildren > 0, 5000, 'a recorder');
      assert.equal(childProcesses().filter((c) => c.comm === 'ffmpeg').length, 2, 'capture and recorder');
      await client.close();
      await settled;
      assert.deepEqual(
        childProcesses().filter((c) => c.comm === 'ffmpeg'),
        [],
      );
    } finally {
      await client.close();
      d.remove();
    }
  });
});
