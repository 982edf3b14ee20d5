// SPDX-License-Identifier: Apache-2.0
// The framework's driver conformance suite, with ffmpeg's lavfi testsrc as the camera.
import { readdirSync } from 'node:fs';
import { describeDriverConformance } from '@mapperkit/framework/testing';
import type { PropertyValue } from '@mapperkit/framework';
import { isCompleteJpeg, jpegDimensions, usbCameraDriver } from '../src/index.ts';
import { tempDir, testsrcConfig } from './helpers.ts';

const dir = tempDir('usbcam-conformance-');

const savedOneJpeg = (v: PropertyValue): boolean => {
  const paths = JSON.parse(String(v)) as string[];
  return paths.length === 1 && /\.jpg$/.test(paths[0]!) && readdirSync(dir.path).length > 0;
};

describeDriverConformance('camera-usb (ffmpeg lavfi testsrc)', {
  driver: usbCameraDriver,
  setup: async () => ({ protocolConfig: testsrcConfig(), teardown: async () => dir.remove() }),
  properties: [
    { name: 'frame', type: 'bytes', visitor: {}, expect: (v) => v instanceof Uint8Array && isCompleteJpeg(v) && jpegDimensions(v)?.width === 320 },
    { name: 'frameWidth', type: 'int', visitor: {}, expect: 320 },
    { name: 'frameHeight', type: 'int', visitor: {}, expect: 240 },
    { name: 'Framerate', type: 'float', visitor: {}, write: 5 },
    { name: 'saveFrame', type: 'stream', visitor: { outputDir: dir.path, format: 'jpg' }, expect: savedOneJpeg },
  ],
  invalidProtocolConfig: { url: 'testsrc', width: -5 },
  invalidVisitor: { frameCount: 0 },
  unreachableProtocolConfig: { devicePath: '/dev/video-not-here' },
  timeoutMs: 10_000,
});
