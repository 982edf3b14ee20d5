// SPDX-License-Identifier: Apache-2.0
// Discovery. For real: libusb (usb@2) and /dev, /sys of this machine — on a build machine with
// no USB bus and no V4L2 that is an empty list, cleanly. One layer down: a fake /dev and /sys
// tree laid out as Linux lays them out for a UVC camera, plus a fake USB list, to check how
// nodes, sysfs, by-id links and USB devices are joined.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { discoverCameras, libusbEnumerator, type UsbDeviceInfo, usbCameraDriver } from '../src/index.ts';
import { silentLog, tempDir } from './helpers.ts';

const noCamerasHere = !existsSync('/sys/bus/usb') && !readdirSync('/dev').some((n) => /^video\d+$/.test(n));

describe('discovery on this machine (real libusb, /dev, /sys)', () => {
  it('libusb enumeration works and returns a list', async () => {
    const list = await libusbEnumerator().list();
    assert.ok(Array.isArray(list));
    for (const d of list) {
      assert.equal(typeof d.vendorId, 'number');
      assert.equal(typeof d.busNumber, 'number');
    }
    if (noCamerasHere) assert.deepEqual(list, [], 'no USB bus on this machine');
  });

  it('the driver\'s discover() resolves a list (empty here), without throwing', async () => {
    assert.ok(usbCameraDriver.discover, 'the driver is Discoverable');
    const found = await usbCameraDriver.discover(AbortSignal.timeout(10_000));
    assert.ok(Array.isArray(found));
    for (const d of found) assert.equal(typeof d.id, 'string');
    if (noCamerasHere) assert.deepEqual(found, []);
  });
});

describe('discovery one layer down (fake /dev and /sys, fake USB list)', () => {
  const root = tempDir('usbcam-discovery-');
  after(() => root.remove());
  const dev = join(root.path, 'dev');
  const sys = join(root.path, 'sys');

  /** A USB device directory in sysfs, with its attributes. */
  function usbDevice(path: string, attrs: Record<string, string>): void {
    const d = join(sys, 'devices', path);
    mkdirSync(d, { recursive: true });
    for (const [k, v] of Object.entries(attrs)) writeFileSync(join(d, k), `${v}\n`);
    mkdirSync(join(sys, 'bus', 'usb', 'devices'), { recursive: true });
    symlinkSync(join('..', '..', '..', 'devices', path), join(sys, 'bus', 'usb', 'devices', path.split('/').at(-1)!));
  }

  /** /dev/videoN and /sys/class/video4linux/videoN pointing at `devicePath` in sysfs. */
  function videoNode(n: number, card: string, index: number, devicePath: string): void {
    writeFileSync(join(dev, `video${n}`), '');
    const cls = join(sys, 'class', 'video4linux', `video${n}`);
    mkdirSync(cls, { recursive: true });
    writeFileSync(join(cls, 'name'), `${card}\n`);
    writeFileSync(join(cls, 'index'), `${index}\n`);
    mkdirSync(join(sys, 'devices', devicePath), { recursive: true });
    symlinkSync(join('..', '..', '..', 'devices', devicePath), join(cls, 'device'));
  }

  mkdirSync(join(dev, 'v4l', 'by-id'), { recursive: true });
  mkdirSync(join(dev, 'v4l', 'by-path'), { recursive: true });
  const c920 = 'pci0000:00/0000:00:14.0/usb1/1-4';
  usbDevice(c920, { idVendor: '046d', idProduct: '082d', manufacturer: 'Logitech', product: 'HD Pro Webcam C920', serial: 'ABC123' });
  videoNode(0, 'HD Pro Webcam C920', 0, `${c920}/1-4:1.0`);
  videoNode(1, 'HD Pro Webcam C920', 1, `${c920}/1-4:1.0`);
  videoNode(7, 'vivid', 0, 'platform/vivid.0');
  symlinkSync('../../video0', join(dev, 'v4l', 'by-id', 'usb-Logitech_HD_Pro_Webcam_C920_ABC123-video-index0'));
  symlinkSync('../../video1', join(dev, 'v4l', 'by-id', 'usb-Logitech_HD_Pro_Webcam_C920_ABC123-video-index1'));
  symlinkSync('../../video0', join(dev, 'v4l', 'by-path', 'pci-0000:00:14.0-usb-0:4:1.0-video-index0'));
  usbDevice('pci0000:00/0000:00:14.0/usb2/2-1.3', { idVendor: '0c45', idProduct: '6366', product: 'USB Camera' });
  writeFileSync(join(dev, 'sda'), '');

  const usbList: UsbDeviceInfo[] = [
    // The C920: composite device (class 0xEF) with video-class interfaces.
    { busNumber: 1, deviceAddress: 5, portNumbers: [4], vendorId: 0x046d, productId: 0x082d, deviceClass: 0xef, interfaceClasses: [0x0e, 0x0e, 0x01, 0x01] },
    // A UVC camera whose driver is not bound: no /dev/video node.
    { busNumber: 2, deviceAddress: 9, portNumbers: [1, 3], vendorId: 0x0c45, productId: 0x6366, deviceClass: 0x0e, interfaceClasses: [] },
    // A USB stick: not a camera.
    { busNumber: 1, deviceAddress: 3, portNumbers: [2], vendorId: 0x0781, productId: 0x5567, deviceClass: 0, interfaceClasses: [0x08] },
  ];

  it('joins V4L2 nodes with their USB camera and proposes the stable by-id path', async () => {
    const found = await discoverCameras({ devRoot: dev, sysRoot: sys, usb: { list: async () => usbList }, log: silentLog });
    assert.deepEqual(
      found.map((d) => d.id),
      ['usb-Logitech_HD_Pro_Webcam_C920_ABC123-video-index0', 'usb-Logitech_HD_Pro_Webcam_C920_ABC123-video-index1', join(dev, 'video7'), 'usb-2-1.3'],
    );
    const [cam, meta, vivid, unbound] = found;
    assert.equal(cam!.name, 'HD Pro Webcam C920');
    assert.deepEqual(cam!.protocolConfig, { devicePath: join(dev, 'v4l', 'by-id', 'usb-Logitech_HD_Pro_Webcam_C920_ABC123-video-index0') });
    assert.equal(cam!.details?.['node'], join(dev, 'video0'));
    assert.equal(cam!.details?.['vendorId'], '046d');
    assert.equal(cam!.details?.['productId'], '082d');
    assert.equal(cam!.details?.['serial'], 'ABC123');
    assert.equal(cam!.details?.['usb'], '1-4');
    assert.equal(cam!.details?.['usbAddress'], '1:5');
    assert.equal(cam!.details?.['index'], '0');
    assert.match(cam!.details?.['byPath'] ?? '', /pci-0000:00:14.0-usb-0:4:1.0-video-index0$/);
    assert.match(meta!.details?.['note'] ?? '', /metadata or secondary node/);
    assert.deepEqual(vivid!.protocolConfig, { devicePath: join(dev, 'video7') });
    assert.equal(vivid!.details?.['usb'], undefined, 'not a USB device');
    assert.equal(unbound!.name, 'USB Camera');
    assert.deepEqual(unbound!.protocolConfig, {});
    assert.match(unbound!.details?.['note'] ?? '', /without a \/dev\/video node/);
    assert.ok(!found.some((d) => d.details?.['vendorId'] === '0781'), 'the USB stick is not listed');
  });

  it('still lists V4L2 nodes when USB enumeration fails, and nothing at all on an empty tree', async () => {
    const found = await discoverCameras({
      devRoot: dev,
      sysRoot: sys,
      usb: {
        list: async () => {
          throw new Error('LIBUSB_ERROR_ACCESS');
        },
      },
      log: silentLog,
    });
    assert.equal(found.length, 3);
    const empty = tempDir();
    try {
      assert.deepEqual(await discoverCameras({ devRoot: join(empty.path, 'dev'), sysRoot: join(empty.path, 'sys'), usb: { list: async () => [] } }), []);
    } finally {
      empty.remove();
    }
  });
});
