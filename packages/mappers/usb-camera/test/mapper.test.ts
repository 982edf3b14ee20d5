// SPDX-License-Identifier: Apache-2.0
// End to end through DMI with the framework's TestEdgecore: Device/DeviceModel YAML in, twins
// and states out, saveFrame files on disk, a missing camera offline while the other works,
// ffmpeg killed and restarted, device removal and shutdown leaving no ffmpeg behind. Then the
// bin as a process: SIGTERM stops it and its ffmpeg; SIGKILL of the mapper does not leave an
// orphaned ffmpeg either.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { createMapper, type MapperHandle } from '@mapperkit/framework';
import { deviceFromProto } from '@mapperkit/framework/dmi';
import { TestEdgecore } from '@mapperkit/framework/testing';
import { isCompleteJpeg, jpegDimensions, protocolConfigSchema, usbCameraDriver, visitorConfigSchema } from '../src/index.ts';
import { childProcesses, ffprobe, pidExists, silentLog, STREAM_FILE, tempDir, waitUntil } from './helpers.ts';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = join(here, '..');
const BIN = join(pkg, 'bin', 'mapper-usb-camera.js');

function inventory(frames: string): string {
  return `
apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata: { name: cam-model, namespace: default }
spec:
  protocol: camera-usb
  properties:
    - { name: frame, type: BYTES, accessMode: ReadOnly }
    - { name: frameWidth, type: INT, accessMode: ReadOnly }
    - { name: frameSize, type: INT, accessMode: ReadOnly }
    - { name: frameTimestamp, type: STRING, accessMode: ReadOnly }
    - { name: captureRestarts, type: INT, accessMode: ReadOnly }
    - { name: Framerate, type: FLOAT, accessMode: ReadWrite, minimum: "1", maximum: "30" }
    - { name: saveFrame, type: STREAM, accessMode: ReadOnly }
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: { name: cam-ok, namespace: default }
spec:
  deviceModelRef: { name: cam-model }
  nodeName: edge-1
  protocol:
    protocolName: camera-usb
    configData: { url: "testsrc=size=320x240:rate=10", inputFormat: lavfi, width: 320, height: 240, frameRate: 10, restartInitialMs: 100 }
  stateReport: { reportToCloud: true, reportCycle: 300 }
  properties:
    - { name: frame, collectCycle: 300, reportCycle: 300, reportToCloud: false }
    - { name: frameWidth, collectCycle: 300, reportCycle: 300, reportToCloud: true }
    - { name: frameSize, collectCycle: 300, reportCycle: 300, reportToCloud: true }
    - { name: frameTimestamp, collectCycle: 300, reportCycle: 300, reportToCloud: true }
    - { name: captureRestarts, collectCycle: 300, reportCycle: 300, reportToCloud: true }
    - name: Framerate
      desired: { value: "8" }
      collectCycle: 300
      reportCycle: 300
      reportToCloud: true
    - name: saveFrame
      collectCycle: 400
      reportCycle: 400
      reportToCloud: true
      visitors:
        protocolName: camera-usb
        configData: { outputDir: "${frames}", format: jpg }
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: { name: cam-missing, namespace: default }
spec:
  deviceModelRef: { name: cam-model }
  nodeName: edge-1
  protocol:
    protocolName: camera-usb
    configData: { devicePath: /dev/video-not-plugged-in }
  stateReport: { reportToCloud: true, reportCycle: 300 }
  properties:
    - { name: frameWidth, collectCycle: 300, reportCycle: 300, reportToCloud: true }
`;
}

function configYaml(dir: string): string {
  return `grpc_server:\n  socket_path: ${dir}/camera.sock\ncommon:\n  name: usb-camera-mapper\n  protocol: camera-usb\n  edgecore_sock: ${dir}/dmi.sock\n  http_port: "0"\nruntime:\n  state_check_ms: 300\n  backoff_initial_ms: 200\n  backoff_max_ms: 1000\n`;
}

const ffmpegChildren = (): number[] => childProcesses().filter((c) => c.comm === 'ffmpeg').map((c) => c.pid);

/** ffmpeg processes whose parent is `pid`. */
function ffmpegChildrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      if (ppid === pid && comm === 'ffmpeg') out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Whether `pid` is a live (not exited) process. */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}

describe('camera-usb mapper through DMI (TestEdgecore)', () => {
  const dir = tempDir('usbcam-e2e-');
  const frames = join(dir.path, 'frames');
  let ec: TestEdgecore;
  let mapper: MapperHandle | undefined;

  after(async () => {
    await mapper?.stop();
    await ec?.close();
    dir.remove();
  });

  it('reports twins and states, saves frames, and keeps a missing camera offline without disturbing the other', async () => {
    ec = await TestEdgecore.start({ socketPath: join(dir.path, 'dmi.sock'), ...TestEdgecore.fromCrdYaml(inventory(frames)), limiter: false });
    mapper = await createMapper({ driver: usbCameraDriver, config: configYaml(dir.path), logger: silentLog });
    await mapper.whenRegistered();
    await ec.waitFor(() => ec.twinsOf('default/cam-ok').get('frameWidth')?.reported === '320', 15_000, 'frameWidth twin of cam-ok');
    await ec.waitFor(() => ec.stateOf('default/cam-missing') === 'offline', 10_000, 'cam-missing offline');
    await ec.waitFor(() => ec.twinsOf('default/cam-ok').get('Framerate')?.observedDesired === '8', 10_000, 'desired Framerate written');
    await ec.waitFor(() => ec.twinsOf('default/cam-ok').get('Framerate')?.reported === '8', 10_000, 'Framerate read back');
    assert.equal(ec.stateOf('default/cam-ok'), 'ok');
    const twins = ec.twinsOf('default/cam-ok');
    assert.ok(Number(twins.get('frameSize')?.reported) > 1000, 'frameSize twin is a JPEG size');
    assert.ok(!Number.isNaN(Date.parse(twins.get('frameTimestamp')?.reported ?? '')), 'frameTimestamp twin is a time');
    assert.equal(twins.has('saveFrame'), false, 'STREAM properties are never twins');
    assert.equal(twins.has('frame'), false, 'reportToCloud: false');

    const missing = mapper.device('default/cam-missing');
    assert.equal(missing?.state, 'offline');
    assert.match(missing?.stateDetail ?? '', /\/dev\/video-not-plugged-in does not exist/);
    assert.equal(ec.twinsOf('default/cam-missing').size, 0);

    const frame = mapper.device('default/cam-ok')?.values.get('frame')?.sample?.value;
    assert.ok(frame instanceof Uint8Array && isCompleteJpeg(frame));
    assert.deepEqual(jpegDimensions(frame), { width: 320, height: 240 });

    // Files are written under a hidden name and renamed when whole; only final names count.
    const saved = (): string[] => (existsSync(frames) ? readdirSync(frames).filter((n) => !n.startsWith('.')) : []);
    await waitUntil(() => saved().length >= 2, 10_000, 'saved frames');
    for (const f of saved().slice(0, 2)) {
      assert.match(f, STREAM_FILE);
      assert.equal(ffprobe(join(frames, f)).streams[0]!.width, 320);
    }
    const value = mapper.device('default/cam-ok')?.values.get('saveFrame')?.sample?.text ?? '[]';
    const paths = JSON.parse(value) as string[];
    assert.equal(paths.length, 1, 'a saveFrame read yields the saved path');
    assert.ok(existsSync(paths[0]!), 'which exists under its final name');
    assert.equal(ffmpegChildren().length, 1, 'one ffmpeg: the camera that exists');
  });

  it('restarts a killed ffmpeg; the restart shows in the captureRestarts twin', async () => {
    const [pid] = ffmpegChildren();
    assert.ok(pid);
    process.kill(pid, 'SIGKILL');
    await ec.waitFor(() => Number(ec.twinsOf('default/cam-ok').get('captureRestarts')?.reported) >= 1, 10_000, 'captureRestarts ≥ 1');
    await waitUntil(() => ffmpegChildren().length === 1 && ffmpegChildren()[0] !== pid, 5000, 'a new ffmpeg');
    assert.equal(pidExists(pid), false, 'the killed one was reaped');
    const since = Date.now();
    await ec.waitFor(() => (ec.twinsOf('default/cam-ok').get('frameWidth')?.reportedAt ?? 0) > since, 5000, 'twins flowing again');
    assert.equal(ec.stateOf('default/cam-ok'), 'ok');
  });

  it('discovery through the mapper handle resolves cleanly (an empty list on a machine without USB)', async () => {
    const found = await mapper!.discover(AbortSignal.timeout(10_000));
    assert.ok(Array.isArray(found));
    if (!existsSync('/sys/bus/usb')) assert.deepEqual(found, []);
  });

  it('removing the device stops its ffmpeg; stopping the mapper leaves no child process', async () => {
    const [pid] = ffmpegChildren();
    await ec.removeDevice('default', 'cam-ok');
    await waitUntil(() => ffmpegChildren().length === 0, 5000, 'ffmpeg of the removed device gone');
    assert.equal(pidExists(pid!), false);
    await mapper!.stop();
    mapper = undefined;
    // tsx's esbuild service is a child of this test process too; no ffmpeg may be, and nothing may be a zombie.
    assert.deepEqual(ffmpegChildren(), []);
    assert.deepEqual(
      childProcesses().filter((c) => c.state === 'Z'),
      [],
    );
  });
});

describe('the sample Device YAML validates against the driver schemas', () => {
  it('every camera-usb device and property in devices/devices.yaml is accepted', async () => {
    const { devices } = TestEdgecore.fromCrdYaml(readFileSync(join(pkg, 'devices', 'devices.yaml'), 'utf8'));
    assert.equal(devices.length, 2);
    for (const d of devices) {
      const spec = deviceFromProto(d).value;
      const p = await protocolConfigSchema['~standard'].validate(spec.protocol);
      assert.ok(!p.issues, `${spec.id}: ${JSON.stringify(p.issues)}`);
      for (const prop of spec.properties) {
        const v = await visitorConfigSchema['~standard'].validate(prop.visitor);
        assert.ok(!v.issues, `${spec.id} ${prop.name}: ${JSON.stringify(v.issues)}`);
      }
    }
  });
});

describe('mapper-usb-camera (the bin, as a process)', () => {
  const dir = tempDir('usbcam-bin-');
  after(() => dir.remove());

  async function start(): Promise<{ ec: TestEdgecore; child: ReturnType<typeof spawn>; ffmpeg: number }> {
    const ec = await TestEdgecore.start({ socketPath: join(dir.path, 'dmi.sock'), ...TestEdgecore.fromCrdYaml(inventory(join(dir.path, 'frames'))), limiter: false });
    writeFileSync(join(dir.path, 'config.yaml'), configYaml(dir.path));
    const child = spawn(process.execPath, [BIN, '--config-file', join(dir.path, 'config.yaml'), '--v', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    await ec.waitFor(() => ec.twinsOf('default/cam-ok').get('frameWidth')?.reported === '320', 15_000, 'twins from the bin');
    await waitUntil(() => ffmpegChildrenOf(child.pid!).length === 1, 5000, 'its ffmpeg');
    return { ec, child, ffmpeg: ffmpegChildrenOf(child.pid!)[0]! };
  }

  it('SIGTERM: exits 0 and its ffmpeg is gone', { skip: existsSync(join(pkg, 'dist', 'main.js')) ? false : 'dist/main.js missing: run npx tsc -b packages/mappers/usb-camera' }, async () => {
    const { ec, child, ffmpeg } = await start();
    try {
      const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.equal(pidExists(ffmpeg), false, 'ffmpeg stopped with the mapper');
    } finally {
      child.kill('SIGKILL');
      await ec.close();
    }
  });

  it('SIGKILL of the mapper: its ffmpeg exits by itself (broken pipe), no orphan keeps the camera', { skip: existsSync(join(pkg, 'dist', 'main.js')) ? false : 'dist/main.js missing' }, async () => {
    const { ec, child, ffmpeg } = await start();
    try {
      const exited = new Promise<void>((res) => child.on('exit', () => res()));
      child.kill('SIGKILL');
      await exited;
      // Once orphaned, reaping it is PID 1's job; what matters is that it stopped running (gone or a zombie).
      await waitUntil(() => !isRunning(ffmpeg), 5000, `orphaned ffmpeg ${ffmpeg} to exit`);
    } finally {
      await ec.close();
    }
  });
});
