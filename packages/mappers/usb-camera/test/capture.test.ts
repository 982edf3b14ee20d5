// SPDX-License-Identifier: Apache-2.0
// The supervised ffmpeg capture, with ffmpeg's lavfi testsrc as the camera: real JPEG frames,
// restart after ffmpeg is killed, backoff when the input keeps failing, and no child (or
// zombie) left after stop.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createLogger, type Logger } from '@mapperkit/framework';
import { CaptureSupervisor, captureArgs, isCompleteJpeg, jpegDimensions } from '../src/index.ts';
import { childProcesses, ffprobeJpeg, parseProtocol, pidExists, silentLog, testsrcConfig, waitUntil } from './helpers.ts';

async function supervisor(over: Record<string, unknown> = {}, log: Logger = silentLog): Promise<CaptureSupervisor> {
  const c = await parseProtocol(testsrcConfig(over));
  return new CaptureSupervisor({
    ffmpegPath: c.ffmpegPath,
    args: captureArgs(c),
    frameRate: c.frameRate,
    label: c.input,
    maxFrameBytes: c.maxFrameBytes,
    restartInitialMs: c.restartInitialMs,
    restartMaxMs: c.restartMaxMs,
    log,
    killGraceMs: 1000,
  });
}

describe('capture supervisor', () => {
  const started: CaptureSupervisor[] = [];
  after(async () => {
    await Promise.all(started.map((s) => s.stop()));
  });

  it('delivers real JPEG frames of the configured size, in order, keeping only the latest', async () => {
    const s = await supervisor({ width: 256, height: 144 });
    started.push(s);
    s.start();
    const first = await s.nextFrame(0, 8000, AbortSignal.timeout(10_000));
    const third = await s.nextFrame(first.seq + 1, 3000, AbortSignal.timeout(10_000));
    assert.equal(third.seq, first.seq + 2);
    assert.ok(third.timestamp >= first.timestamp);
    assert.ok(third.timestampNs > first.timestampNs);
    for (const f of [first, third]) {
      assert.ok(isCompleteJpeg(f.jpeg), 'SOI at the start, EOI at the end');
      assert.deepEqual(jpegDimensions(f.jpeg), { width: 256, height: 144 });
      assert.equal(f.width, 256);
      assert.equal(f.height, 144);
    }
    const probe = ffprobeJpeg(third.jpeg).streams[0]!;
    assert.equal(probe.codec_name, 'mjpeg');
    assert.equal(probe.width, 256);
    assert.equal(probe.height, 144);
    assert.equal(s.latest?.seq, Math.max(third.seq, s.latest?.seq ?? 0), 'latest is the newest frame');
    await s.stop();
  });

  it('restarts ffmpeg after it is killed, and frames resume', async () => {
    const s = await supervisor();
    started.push(s);
    s.start();
    await s.nextFrame(0, 8000, AbortSignal.timeout(10_000));
    const pid = s.pid!;
    assert.ok(pid > 0);
    const before = s.latest!.seq;
    process.kill(pid, 'SIGKILL');
    await waitUntil(() => s.pid !== undefined && s.pid !== pid, 5000, 'a new ffmpeg');
    assert.equal(s.restarts, 1);
    assert.match(s.exitReason ?? '', /killed by SIGKILL/);
    const next = await s.nextFrame(before, 8000, AbortSignal.timeout(10_000));
    assert.ok(next.seq > before);
    assert.equal(pidExists(pid), false, 'the killed ffmpeg was reaped, not left a zombie');
    await s.stop();
  });

  it('keeps restarting with backoff when the input fails, reporting ffmpeg\'s error', async () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'debug', destination: { write: (l: string) => void lines.push(l) } });
    const s = await supervisor({ url: 'nosuchfilter=size=320x240', restartInitialMs: 50, restartMaxMs: 200 }, log);
    started.push(s);
    s.start();
    // A waiter that fails on exit sees ffmpeg's own message.
    await assert.rejects(s.nextFrame(0, 5000, AbortSignal.timeout(10_000), true), (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.equal((e as { kind?: string }).kind, 'Unreachable');
      assert.match(e.message, /capture of nosuchfilter.* failed: ffmpeg exited with code \d+: .*nosuchfilter/i);
      return true;
    });
    await waitUntil(() => s.starts >= 5, 10_000, 'five attempts');
    assert.equal(s.latest, undefined);
    // The delays double from restartInitialMs up to restartMaxMs, jittered within [base/2, base].
    const delays = lines.map((l) => JSON.parse(l) as { msg?: string; retryInMs?: number }).filter((e) => e.msg === 'ffmpeg capture stopped; restarting').map((e) => e.retryInMs!);
    assert.ok(delays.length >= 4, `restart delays logged: ${delays.join(', ')}`);
    const bases = [50, 100, 200, 200];
    bases.forEach((base, i) => assert.ok(delays[i]! >= base / 2 && delays[i]! <= base, `delay ${i + 1} is ${delays[i]} ms, expected ${base / 2}-${base} (backoff)`));
    // A plain waiter times out and says why.
    await assert.rejects(s.nextFrame(0, 300, AbortSignal.timeout(5000)), /no frame from nosuchfilter.* within 300 ms/);
    await s.stop();
    const starts = s.starts;
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(s.starts, starts, 'no restart after stop');
  });

  it('leaves no child process and no zombie after stop, and rejects waiters', async () => {
    const s = await supervisor();
    s.start();
    await s.nextFrame(0, 8000, AbortSignal.timeout(10_000));
    const pid = s.pid!;
    assert.ok(childProcesses().some((c) => c.pid === pid && c.comm === 'ffmpeg'), 'ffmpeg is our child while running');
    const waiting = s.nextFrame(Number.MAX_SAFE_INTEGER, 10_000, AbortSignal.timeout(20_000));
    const rejected = assert.rejects(waiting, /stopped/);
    await s.stop();
    await rejected;
    assert.equal(s.pid, undefined);
    assert.equal(pidExists(pid), false, 'ffmpeg is gone (not even a zombie)');
    assert.deepEqual(
      childProcesses().filter((c) => c.comm === 'ffmpeg'),
      [],
    );
    await s.stop(); // idempotent
  });

  it('memory is bounded: a frame above maxFrameBytes is refused and the capture restarted', async () => {
    const s = await supervisor({ maxFrameBytes: 1000, restartInitialMs: 50, restartMaxMs: 100 });
    started.push(s);
    s.start();
    await waitUntil(() => s.starts >= 3, 5000, 'restarts after oversized frames');
    assert.ok(s.parseErrors >= 2);
    assert.equal(s.latest, undefined, 'no oversized frame was kept');
    assert.match(s.exitReason ?? '', /killed by SIGKILL/);
    await s.stop();
  });

  it('aborting a waiter settles at once', async () => {
    const s = await supervisor();
    started.push(s);
    s.start();
    const ctl = new AbortController();
    const p = s.nextFrame(Number.MAX_SAFE_INTEGER, 10_000, ctl.signal);
    ctl.abort(new Error('enough'));
    await assert.rejects(p, /enough/);
    await s.stop();
  });
});
