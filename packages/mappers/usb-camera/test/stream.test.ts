// SPDX-License-Identifier: Apache-2.0
// saveFrame and saveVideo against a live testsrc capture; every file is checked by ffprobe.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CaptureSupervisor, captureArgs, type SaveContext, saveFrames, saveVideos } from '../src/index.ts';
import { childProcesses, ffprobe, parseProtocol, pidExists, STREAM_FILE, silentLog, tempDir, testsrcConfig } from './helpers.ts';

describe('saveFrame / saveVideo', () => {
  let capture: CaptureSupervisor;
  const dir = tempDir('usbcam-stream-');
  const children = new Set<ChildProcess>();
  const ctx = (signal: AbortSignal = AbortSignal.timeout(20_000)): SaveContext => ({ source: capture, ffmpegPath: 'ffmpeg', signal, frameTimeoutMs: 3000, children });

  before(async () => {
    const c = await parseProtocol(testsrcConfig({ width: 320, height: 240, frameRate: 20 }));
    capture = new CaptureSupervisor({
      ffmpegPath: 'ffmpeg',
      args: captureArgs(c),
      frameRate: c.frameRate,
      label: c.input,
      maxFrameBytes: c.maxFrameBytes,
      restartInitialMs: 100,
      restartMaxMs: 400,
      log: silentLog,
    });
    capture.start();
    await capture.nextFrame(0, 8000, AbortSignal.timeout(10_000));
  });
  after(async () => {
    await capture.stop();
    dir.remove();
  });

  it('saveFrame writes frameCount JPEG files named f<RFC3339Nano>.jpg, frameInterval apart', async () => {
    const out = join(dir.path, 'frames', 'nested');
    const started = Date.now();
    const paths = await saveFrames(ctx(), { outputDir: out, format: 'jpg', frameCount: 3, frameIntervalNs: 150_000_000 });
    const took = Date.now() - started;
    assert.equal(paths.length, 3);
    assert.ok(took >= 300, `two intervals of 150 ms between three frames (took ${took} ms)`);
    assert.deepEqual(readdirSync(out).sort(), paths.map((p) => basename(p)).sort());
    assert.equal(new Set(paths).size, 3, 'distinct names');
    for (const p of paths) {
      assert.match(basename(p), STREAM_FILE);
      const probe = ffprobe(p);
      assert.equal(probe.streams[0]!.codec_name, 'mjpeg');
      assert.equal(probe.streams[0]!.width, 320);
      assert.equal(probe.streams[0]!.height, 240);
    }
  });

  it('saveFrame converts to other image formats (png) with ffmpeg', async () => {
    const out = join(dir.path, 'png');
    const [p] = await saveFrames(ctx(), { outputDir: out, format: 'png', frameCount: 1, frameIntervalNs: 0 });
    assert.ok(p?.endsWith('.png'));
    const probe = ffprobe(p!);
    assert.equal(probe.streams[0]!.codec_name, 'png');
    assert.equal(probe.streams[0]!.width, 320);
  });

  it('saveVideo remuxes frameCount frames per video, videoNum consecutive videos', async () => {
    const out = join(dir.path, 'videos');
    const paths = await saveVideos(ctx(), { outputDir: out, format: 'mp4', framesPerVideo: 10, videoNum: 2, codec: 'copy' });
    assert.equal(paths.length, 2);
    assert.ok(basename(paths[0]!) < basename(paths[1]!), 'the second video starts after the first');
    for (const p of paths) {
      assert.match(basename(p), STREAM_FILE);
      const probe = ffprobe(p);
      const v = probe.streams[0]!;
      assert.match(probe.format.format_name, /mp4/);
      assert.equal(v.codec_name, 'mjpeg', 'remuxed, not re-encoded');
      assert.equal(v.width, 320);
      assert.equal(v.height, 240);
      assert.equal(Number(v.nb_read_frames), 10);
      assert.equal(v.r_frame_rate, '20/1');
      assert.ok(Math.abs(Number(probe.format.duration) - 0.5) < 0.06, `duration ${probe.format.duration} ≈ 10 frames / 20 fps`);
    }
    assert.equal(children.size, 0, 'recorders exited');
  });

  it('saveVideo can encode H.264 into mkv', async () => {
    const out = join(dir.path, 'h264');
    const [p] = await saveVideos(ctx(), { outputDir: out, format: 'mkv', framesPerVideo: 6, videoNum: 1, codec: 'h264' });
    const probe = ffprobe(p!);
    assert.equal(probe.streams[0]!.codec_name, 'h264');
    assert.equal(Number(probe.streams[0]!.nb_read_frames), 6);
    assert.match(probe.format.format_name, /matroska/);
  });

  it('rejects formats it cannot write and outputDirs it cannot create, naming the key', async () => {
    await assert.rejects(saveFrames(ctx(), { outputDir: dir.path, format: 'xyz', frameCount: 1, frameIntervalNs: 0 }), (e: unknown) => {
      assert.equal((e as { kind?: string }).kind, 'InvalidConfig');
      assert.equal((e as { key?: string }).key, 'format');
      assert.match((e as Error).message, /saveFrame format "xyz" is not supported \(one of jpg/);
      return true;
    });
    await assert.rejects(saveVideos(ctx(), { outputDir: dir.path, format: 'webm', framesPerVideo: 5, videoNum: 1, codec: 'copy' }), /saveVideo format "webm" is not supported with videoCodec copy/);
    const file = join(dir.path, 'a-file');
    writeFileSync(file, 'x');
    await assert.rejects(saveFrames(ctx(), { outputDir: join(file, 'sub'), format: 'jpg', frameCount: 1, frameIntervalNs: 0 }), (e: unknown) => {
      assert.equal((e as { key?: string }).key, 'outputDir');
      assert.match((e as Error).message, /outputDir .*a-file\/sub cannot be created/);
      return true;
    });
  });

  it('an aborted saveVideo kills its recorder and removes the partial file', async () => {
    const out = join(dir.path, 'aborted');
    const ctl = new AbortController();
    const p = saveVideos(ctx(ctl.signal), { outputDir: out, format: 'mkv', framesPerVideo: 10_000, videoNum: 1, codec: 'copy' });
    const check = assert.rejects(p, /stop now/);
    // Wait until the recorder is running, then abort.
    const until = Date.now() + 5000;
    while (children.size === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const [recorder] = [...children];
    assert.ok(recorder?.pid, 'a recorder was started');
    ctl.abort(new Error('stop now'));
    await check;
    assert.equal(pidExists(recorder.pid), false, 'recorder killed and reaped');
    assert.equal(children.size, 0);
    assert.deepEqual(readdirSync(out), [], 'partial file removed');
    const ffmpegs = childProcesses().filter((c) => c.comm === 'ffmpeg');
    assert.deepEqual(
      ffmpegs.map((c) => c.pid),
      [capture.pid],
      'only the capture ffmpeg is left',
    );
  });

  it('saveFrame gives up after 5×frameCount failures when no frame comes', async () => {
    const dead = new CaptureSupervisor({ ffmpegPath: 'ffmpeg', args: ['-nonsense'], frameRate: 10, label: 'dead', maxFrameBytes: 1000, restartInitialMs: 50, restartMaxMs: 50, log: silentLog });
    dead.start();
    try {
      const started = Date.now();
      await assert.rejects(
        saveFrames({ ...ctx(), source: dead, frameTimeoutMs: 40 }, { outputDir: join(dir.path, 'none'), format: 'jpg', frameCount: 2, frameIntervalNs: 0 }),
        /saveFrame gave up after 10 failures \(0 of 2 saved\): no frame from dead within 40 ms/,
      );
      assert.ok(Date.now() - started >= 10 * 40 - 20);
    } finally {
      await dead.stop();
    }
    assert.equal(statSync(join(dir.path, 'none')).isDirectory(), true);
  });
});
