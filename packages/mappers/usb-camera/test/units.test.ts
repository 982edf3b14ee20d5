// SPDX-License-Identifier: Apache-2.0
// Pure parts: JPEG markers and size, mpjpeg framing, config schemas (upstream keys), ffmpeg
// command lines, file names. JPEG and mpjpeg inputs are produced by the real ffmpeg.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import {
  captureArgs,
  fourccText,
  isCompleteJpeg,
  jpegDimensions,
  MpjpegError,
  MpjpegParser,
  pixelFormatName,
  protocolConfigSchema,
  rfc3339Nano,
  streamFileName,
  visitorConfigSchema,
} from '../src/index.ts';
import { ffprobeJpeg, parseProtocol, STREAM_FILE } from './helpers.ts';

/** Real ffmpeg output: `n` frames of testsrc at `size`, as mpjpeg. */
function mpjpeg(n: number, size = '160x120'): Buffer {
  return execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-f', 'lavfi', '-i', `testsrc=size=${size}:rate=10`, '-frames:v', String(n), '-c:v', 'mjpeg', '-f', 'mpjpeg', 'pipe:1'], {
    maxBuffer: 64 * 1024 * 1024,
  });
}

function jpeg(size: string): Buffer {
  return execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-f', 'lavfi', '-i', `testsrc=size=${size}`, '-frames:v', '1', '-c:v', 'mjpeg', '-f', 'image2pipe', 'pipe:1']);
}

describe('jpeg', () => {
  it('reads the size from the SOF segment of a real JPEG and checks SOI/EOI', () => {
    const img = jpeg('352x288');
    assert.ok(isCompleteJpeg(img));
    assert.deepEqual(jpegDimensions(img), { width: 352, height: 288 });
    const probe = ffprobeJpeg(img).streams[0]!;
    assert.equal(probe.width, 352);
    assert.equal(probe.height, 288);
  });

  it('rejects truncated and non-JPEG data', () => {
    const img = jpeg('64x48');
    assert.equal(isCompleteJpeg(img.subarray(0, img.length - 1)), false);
    assert.equal(isCompleteJpeg(Buffer.from('not a jpeg at all')), false);
    assert.equal(jpegDimensions(Buffer.from('GIF89a....')), undefined);
    // SOI then straight to start-of-scan: no size.
    assert.equal(jpegDimensions(Buffer.from([0xff, 0xd8, 0xff, 0xda, 0x00, 0x08, 0, 0, 0, 0, 0, 0])), undefined);
  });
});

describe('mpjpeg parser', () => {
  it('splits real ffmpeg output into whole JPEGs, whatever the chunking', () => {
    const stream = mpjpeg(5);
    for (const chunk of [1, 7, 64, 4096, stream.length]) {
      const frames: Buffer[] = [];
      const p = new MpjpegParser({ maxFrameBytes: 1 << 20, onFrame: (f) => frames.push(f) });
      let held = 0;
      for (let i = 0; i < stream.length; i += chunk) {
        p.push(stream.subarray(i, i + chunk));
        held = Math.max(held, p.bufferedBytes);
      }
      const biggest = Math.max(...frames.map((f) => f.length));
      assert.ok(held <= biggest + Math.min(chunk, 4096), `chunk size ${chunk}: held ${held} bytes, at most one frame plus one header`);
      assert.equal(frames.length, 5, `chunk size ${chunk}`);
      for (const f of frames) {
        assert.ok(isCompleteJpeg(f), `chunk size ${chunk}: SOI/EOI`);
        assert.deepEqual(jpegDimensions(f), { width: 160, height: 120 });
      }
      assert.ok(p.bufferedBytes < 64, `only the closing boundary is left over (${p.bufferedBytes} bytes)`);
    }
  });

  it('holds at most one frame: refuses a frame above maxFrameBytes and garbage without headers', () => {
    const stream = mpjpeg(1, '640x480');
    const len = Number(/Content-length: (\d+)/.exec(stream.subarray(0, 200).toString('latin1'))![1]);
    const p = new MpjpegParser({ maxFrameBytes: len - 1, onFrame: () => assert.fail('no frame expected') });
    assert.throws(() => p.push(stream), (e: unknown) => e instanceof MpjpegError && /exceeds maxFrameBytes/.test(e.message));
    const q = new MpjpegParser({ maxFrameBytes: 1 << 20, onFrame: () => assert.fail('no frame expected') });
    assert.throws(() => q.push(Buffer.alloc(5000, 0x41)), (e: unknown) => e instanceof MpjpegError && /no multipart header/.test(e.message));
    const r = new MpjpegParser({ maxFrameBytes: 1 << 20, onFrame: () => undefined });
    assert.throws(() => r.push(Buffer.from('--ffmpeg\r\nContent-type: image/jpeg\r\n\r\n')), /without Content-length/);
  });
});

describe('protocol config', () => {
  it('accepts upstream usbcamera-dmi configData (serialPort, FourCC integer format)', async () => {
    const c = await parseProtocol({ serialPort: '/dev/video0', deviceID: 'camera-1', width: 1280, height: 720, format: 0x56595559, protocolID: 1 });
    assert.equal(c.kind, 'device');
    assert.equal(c.input, '/dev/video0');
    assert.equal(c.pixelFormat, 'yuyv422');
    assert.equal(c.inputFormat, 'v4l2');
    assert.equal(c.width, 1280);
    assert.equal(c.realtime, false);
  });

  it('maps FourCC codes even after edgecore rounded them to float32, and names', () => {
    assert.equal(fourccText(0x47504a4d), 'MJPG');
    assert.deepEqual(pixelFormatName(Math.fround(0x47504a4d)), { name: 'mjpeg' });
    assert.deepEqual(pixelFormatName('MJPG'), { name: 'mjpeg' });
    assert.deepEqual(pixelFormatName('yuyv422'), { name: 'yuyv422' });
    const bad = pixelFormatName(0x31323334);
    assert.ok('error' in bad && /FourCC code/.test(bad.error));
  });

  it('names the key of every problem', async () => {
    const check = async (raw: Record<string, unknown>, pattern: RegExp): Promise<void> => {
      const r = await protocolConfigSchema['~standard'].validate(raw);
      assert.ok(r.issues, `expected ${JSON.stringify(raw)} to be rejected`);
      const text = r.issues.map((i) => `${(i.path ?? []).map(String).join('.')}: ${i.message}`).join('; ');
      assert.match(text, pattern);
    };
    await check({}, /^devicePath: required/);
    await check({ devicePath: '/dev/video0', url: 'rtsp://x' }, /url: set either devicePath/);
    await check({ devicePath: '/dev/video0', width: -1 }, /^width:/);
    await check({ devicePath: '/dev/video0', format: 'no such!' }, /^format:/);
    await check({ devicePath: '/dev/video0', realtime: 'perhaps' }, /^realtime: "perhaps" is not a boolean/);
    await check({ url: 'x', restartInitialMs: 1000, restartMaxMs: 10 }, /^restartMaxMs:/);
  });

  it('builds ffmpeg arguments for devices, test sources and RTSP', async () => {
    const dev = captureArgs(await parseProtocol({ devicePath: '/dev/video2', format: 'MJPG', width: 640, height: 480, frameRate: 30 }));
    const devText = dev.join(' ');
    assert.match(devText, /-f v4l2 -input_format mjpeg -video_size 640x480 -framerate 30 -i \/dev\/video2/);
    assert.doesNotMatch(devText, /-re /);
    assert.match(devText, /-vf fps=30,scale=640:480 -c:v mjpeg -q:v 5 -f mpjpeg pipe:1$/);
    const lavfi = captureArgs(await parseProtocol({ url: 'testsrc', inputFormat: 'lavfi' }), 5).join(' ');
    assert.match(lavfi, /-re -f lavfi -i testsrc /);
    assert.match(lavfi, /fps=5,/);
    const rtsp = captureArgs(await parseProtocol({ url: 'rtsp://cam/stream' })).join(' ');
    assert.match(rtsp, /-rtsp_transport tcp -i rtsp:\/\/cam\/stream/);
    assert.doesNotMatch(rtsp, /-re /);
    const own = captureArgs(await parseProtocol({ url: 'rtsp://cam/stream', inputOptions: '-rtsp_transport udp -timeout 5000000' })).join(' ');
    assert.match(own, /-rtsp_transport udp -timeout 5000000 -i rtsp/);
  });
});

describe('visitor config', () => {
  it('takes upstream stream keys and rejects bad ones, naming them', async () => {
    const ok = await visitorConfigSchema['~standard'].validate({ format: 'jpg', outputDir: '/tmp/x', frameCount: '3', frameInterval: '1000000', videoNum: 2 });
    assert.ok(!ok.issues);
    assert.equal(ok.value.frameCount, 3);
    assert.equal(ok.value.frameInterval, 1_000_000);
    assert.equal(ok.value.once, false);
    for (const [raw, key] of [
      [{ frameCount: 0 }, 'frameCount'],
      [{ format: '../x' }, 'format'],
      [{ encoding: 'hex' }, 'encoding'],
      [{ once: 'sometimes' }, 'once'],
    ] as const) {
      const r = await visitorConfigSchema['~standard'].validate(raw);
      assert.ok(r.issues, `${JSON.stringify(raw)} should be rejected`);
      assert.equal(String(r.issues[0]!.path?.[0]), key);
    }
  });
});

describe('file names', () => {
  it('uses upstream naming: f<RFC3339Nano>.<format>, UTC, trailing zeros trimmed', () => {
    assert.equal(rfc3339Nano(1_700_000_000_123_456_789n), '2023-11-14T22:13:20.123456789Z');
    assert.equal(rfc3339Nano(1_700_000_000_120_000_000n), '2023-11-14T22:13:20.12Z');
    assert.equal(rfc3339Nano(1_700_000_000_000_000_000n), '2023-11-14T22:13:20Z');
    const name = streamFileName(1_700_000_000_123_456_789n, 'jpg');
    assert.equal(name, 'f2023-11-14T22:13:20.123456789Z.jpg');
    assert.match(name, STREAM_FILE);
  });
});
