// SPDX-License-Identifier: Apache-2.0
// Camera settings through v4l2-ctl. This machine has no V4L2, so: the real v4l2-ctl (Debian's
// v4l-utils) is run for the error paths it can show here (no such device, not a V4L2 device);
// name matching and output parsing are checked on text in v4l2-ctl's formats; and reads and
// writes go through test/fixtures/fake-v4l2-ctl.mjs, a stand-in that prints v4l2-ctl's output
// for an imaginary UVC camera — one layer down from a real camera.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { isMapperError } from '@mapperkit/framework';
import { CaptureSupervisor, captureArgs, controlVarName, parseControlList, parseGetCtrl, parseInfo, parseInput, resolveControl, UsbCameraClient, V4l2Ctl } from '../src/index.ts';
import { parseProtocol, request, silentLog, tempDir, testsrcConfig } from './helpers.ts';

const FAKE = new URL('./fixtures/fake-v4l2-ctl.mjs', import.meta.url).pathname;
const hasV4l2Ctl = spawnSync('v4l2-ctl', ['--version']).status === 0;

const LIST_CTRLS = `
User Controls

                     brightness 0x00980900 (int)    : min=0 max=255 step=1 default=128 value=140
                       contrast 0x00980901 (int)    : min=0 max=255 step=1 default=128 value=128
        white_balance_automatic 0x0098090c (bool)   : default=1 value=1
           power_line_frequency 0x00980918 (menu)   : min=0 max=2 default=2 value=2
				0: Disabled
				1: 50 Hz
				2: 60 Hz
      white_balance_temperature 0x0098091a (int)    : min=2000 max=6500 step=1 default=4000 value=4000 flags=inactive

Camera Controls

                  auto_exposure 0x009a0901 (menu)   : min=0 max=3 default=3 value=3
         exposure_time_absolute 0x009a0902 (int)    : min=3 max=2047 step=1 default=250 value=250 flags=inactive
`;

describe('v4l2-ctl output and control names', () => {
  it('parses --list-ctrls(-menus) lines with ranges, values and flags; skips headers and menu items', () => {
    const list = parseControlList(LIST_CTRLS);
    assert.deepEqual(
      list.map((c) => c.name),
      ['brightness', 'contrast', 'white_balance_automatic', 'power_line_frequency', 'white_balance_temperature', 'auto_exposure', 'exposure_time_absolute'],
    );
    assert.deepEqual(list[0], { name: 'brightness', id: 0x00980900, type: 'int', min: 0, max: 255, step: 1, default: 128, value: '140', flags: [] });
    assert.equal(list[2]!.type, 'bool');
    assert.equal(list[2]!.min, undefined);
    assert.deepEqual(list[4]!.flags, ['inactive']);
    assert.equal(list[5]!.max, 3);
  });

  it('parses --get-ctrl, --info and --get-input', () => {
    assert.deepEqual([...parseGetCtrl('brightness: 140\ncontrast: 128\n')], [
      ['brightness', '140'],
      ['contrast', '128'],
    ]);
    const info = parseInfo('Driver Info:\n\tDriver name      : uvcvideo\n\tCard type        : HD Pro Webcam C920\n\tBus info         : usb-0000:00:14.0-4\n');
    assert.equal(info.get('Bus info'), 'usb-0000:00:14.0-4');
    assert.equal(info.get('Card type'), 'HD Pro Webcam C920');
    assert.equal(parseInput('Video input : 1 (Camera 1: ok)\n'), 1);
    assert.equal(parseInput('nothing'), undefined);
  });

  it('derives v4l2-ctl names from upstream feature names, and finds controls Linux renamed', () => {
    assert.equal(controlVarName('White Balance Temperature, Auto'), 'white_balance_temperature_auto');
    assert.equal(controlVarName('Exposure (Absolute)'), 'exposure_absolute');
    assert.equal(controlVarName('Power Line Frequency'), 'power_line_frequency');
    assert.equal(controlVarName('brightness'), 'brightness');
    const controls = new Map(parseControlList(LIST_CTRLS).map((c) => [c.name, c]));
    assert.equal(resolveControl('White Balance Temperature, Auto', controls)?.name, 'white_balance_automatic');
    assert.equal(resolveControl('Exposure, Auto', controls)?.name, 'auto_exposure');
    assert.equal(resolveControl('Exposure (Absolute)', controls)?.name, 'exposure_time_absolute');
    assert.equal(resolveControl('Gain', controls), undefined);
  });
});

describe('the real v4l2-ctl on a machine without V4L2', { skip: hasV4l2Ctl ? false : 'v4l2-ctl is not installed (apt-get install v4l-utils)' }, () => {
  it('a missing device node: Unreachable with v4l2-ctl\'s message', async () => {
    const ctl = new V4l2Ctl('v4l2-ctl', '/dev/video-not-here', 3000);
    await assert.rejects(ctl.controls(AbortSignal.timeout(5000)), (e: unknown) => {
      assert.ok(isMapperError(e));
      assert.equal(e.kind, 'Unreachable');
      assert.match(e.message, /v4l2-ctl -d \/dev\/video-not-here: Cannot open device \/dev\/video-not-here/);
      return true;
    });
  });

  it('a node that is not a V4L2 device: Unsupported', async () => {
    const ctl = new V4l2Ctl('v4l2-ctl', '/dev/null', 3000);
    await assert.rejects(ctl.get(['brightness'], AbortSignal.timeout(5000)), (e: unknown) => isMapperError(e) && e.kind === 'Unsupported' && /\/dev\/null/.test(e.message));
  });
});

describe('v4l2-ctl missing', () => {
  it('says which package to install', async () => {
    const ctl = new V4l2Ctl('/nonexistent/v4l2-ctl', '/dev/video0', 3000);
    await assert.rejects(ctl.controls(AbortSignal.timeout(5000)), (e: unknown) => {
      assert.ok(isMapperError(e));
      assert.equal(e.kind, 'Unsupported');
      assert.match(e.message, /camera settings need v4l2-ctl \(package v4l-utils\), which cannot be run: cannot run \/nonexistent\/v4l2-ctl: not found/);
      return true;
    });
  });
});

describe('camera settings through a stand-in v4l2-ctl (test/fixtures/fake-v4l2-ctl.mjs)', () => {
  const dir = tempDir('usbcam-v4l2-');
  const statePath = join(dir.path, 'state.json');
  const logPath = join(dir.path, 'calls.log');
  let client: UsbCameraClient;
  let capture: CaptureSupervisor;

  const resetCamera = (): void => {
    writeFileSync(
      statePath,
      JSON.stringify({
        device: '/dev/video0',
        card: 'HD Pro Webcam C920',
        bus: 'usb-0000:00:14.0-4',
        input: 0,
        controls: [
          { cls: 'User Controls', name: 'brightness', id: 0x00980900, type: 'int', min: 0, max: 255, step: 1, default: 128, value: 128 },
          { cls: 'User Controls', name: 'contrast', id: 0x00980901, type: 'int', min: 0, max: 255, step: 1, default: 128, value: 100 },
          { cls: 'User Controls', name: 'white_balance_automatic', id: 0x0098090c, type: 'bool', default: 1, value: 1 },
          { cls: 'User Controls', name: 'white_balance_temperature', id: 0x0098091a, type: 'int', min: 2000, max: 6500, step: 1, default: 4000, value: 4000, flags: ['inactive'] },
          { cls: 'User Controls', name: 'sharpness', id: 0x0098091b, type: 'int', min: 0, max: 255, step: 1, default: 128, value: 128, failSet: 'Input/output error' },
          { cls: 'Camera Controls', name: 'zoom_absolute', id: 0x009a090d, type: 'int', min: 100, max: 500, step: 10, default: 100, value: 100 },
        ],
      }),
    );
    writeFileSync(logPath, '');
  };
  const calls = (): string[][] =>
    readFileSync(logPath, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as string[]);

  before(async () => {
    resetCamera();
    process.env['FAKE_V4L2_STATE'] = statePath;
    process.env['FAKE_V4L2_LOG'] = logPath;
    // Frames from testsrc, settings from the stand-in for /dev/video0: the client as it runs on a real camera.
    const base = await parseProtocol(testsrcConfig());
    capture = new CaptureSupervisor({ ffmpegPath: 'ffmpeg', args: captureArgs(base), frameRate: base.frameRate, label: base.input, maxFrameBytes: base.maxFrameBytes, restartInitialMs: 100, restartMaxMs: 400, log: silentLog });
    capture.start();
    await capture.nextFrame(0, 8000, AbortSignal.timeout(10_000));
    client = new UsbCameraClient({ deviceId: 'default/cam', config: { ...base, kind: 'device', input: '/dev/video0', v4l2CtlPath: FAKE }, capture, log: silentLog });
  });
  beforeEach(() => resetCamera());
  after(async () => {
    await client.close();
    rmSync(dir.path, { recursive: true, force: true });
  });

  it('reads every control of a batch with one v4l2-ctl call (after listing them once), plus BusInfo and Input', async () => {
    const reqs = await Promise.all([
      request('Brightness', 'int', {}, true),
      request('contrast', 'string'),
      request('awb', 'boolean', { featureName: 'White Balance Temperature, Auto' }),
      request('frameWidth', 'int'),
      request('BusInfo', 'string'),
      request('Input', 'int'),
    ]);
    const res = await client.read(reqs, AbortSignal.timeout(10_000));
    assert.deepEqual(
      res.map((r) => (r.ok ? r.value : r.error.message)),
      [128, '100', true, 320, 'usb-0000:00:14.0-4', 0],
    );
    const getCalls = calls().filter((c) => c.some((a) => a.startsWith('--get-ctrl')));
    assert.deepEqual(getCalls, [['-d', '/dev/video0', '--get-ctrl=brightness,contrast,white_balance_automatic']]);
    await client.read(reqs, AbortSignal.timeout(10_000));
    assert.equal(calls().filter((c) => c.includes('--list-ctrls')).length, 1, 'the control list is cached per connection');
  });

  it('writes a control and reads it back', async () => {
    const b = await request('Brightness', 'int', {}, true);
    await client.write(b, 200, AbortSignal.timeout(5000));
    assert.ok(calls().some((c) => c.includes('--set-ctrl=brightness=200')));
    const [r] = await client.read([b], AbortSignal.timeout(5000));
    assert.ok(r?.ok);
    assert.equal(r.value, 200);
    await client.write(await request('awb', 'boolean', { featureName: 'White Balance Temperature, Auto' }, true), false, AbortSignal.timeout(5000));
    assert.ok(calls().some((c) => c.includes('--set-ctrl=white_balance_automatic=0')));
  });

  it('refuses writes the camera would refuse, before calling v4l2-ctl, naming the limit', async () => {
    const cases: [string, number, RegExp][] = [
      ['Brightness', 300, /value 300 is above the maximum 255 of camera control brightness/],
      ['Brightness', -1, /value -1 is below the minimum 0 of camera control brightness/],
      ['Brightness', 1.5, /takes integers/],
      ['White Balance Temperature', 5000, /camera control white_balance_temperature is inactive/],
      ['Zoom, Absolute', 105, /not min 100 plus a multiple of step 10/],
    ];
    for (const [feature, value, pattern] of cases) {
      await assert.rejects(client.write(await request(feature, 'int', {}, true), value, AbortSignal.timeout(5000)), (e: unknown) => {
        assert.ok(isMapperError(e));
        assert.equal(e.kind, 'WriteRejected', `${feature}=${value}`);
        assert.match(e.message, pattern);
        return true;
      });
    }
    assert.equal(calls().filter((c) => c.some((a) => a.startsWith('--set-ctrl'))).length, 0);
  });

  it('reports a failed set from the device, and an unknown control with the list of those the camera has', async () => {
    await assert.rejects(client.write(await request('Sharpness', 'int', {}, true), 10, AbortSignal.timeout(5000)), (e: unknown) => {
      assert.ok(isMapperError(e));
      assert.equal(e.kind, 'DeviceError');
      assert.match(e.message, /sharpness: Input\/output error/);
      return true;
    });
    const [r] = await client.read([await request('Gain', 'int')], AbortSignal.timeout(5000));
    assert.ok(r && !r.ok);
    assert.equal(r.error.kind, 'Unsupported');
    assert.match(r.error.message, /property Gain: \/dev\/video0 has no camera control "Gain" \(v4l2 name gain\); it has: brightness, contrast, white_balance_automatic/);
  });
});
