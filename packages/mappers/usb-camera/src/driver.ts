// SPDX-License-Identifier: Apache-2.0
// The camera-usb driver: a V4L2 camera (or any ffmpeg input) captured by a supervised ffmpeg
// child, camera settings through v4l2-ctl, and discovery of UVC cameras.
import { stat } from 'node:fs/promises';
import { defineDriver, type DriverDefinition, MapperError } from '@mapperkit/framework';
import { CaptureSupervisor } from './capture.js';
import { UsbCameraClient } from './client.js';
import { type CameraConfig, type CameraVisitor, protocolConfigSchema, visitorConfigSchema } from './config.js';
import { type DiscoveryOptions, discoverCameras } from './discovery.js';
import { captureArgs } from './ffmpeg.js';

/** Protocol name, as upstream's usbcamera-dmi mapper registers it. */
export const PROTOCOL = 'camera-usb';

export interface UsbCameraDriverOptions {
  /** Where discovery looks (defaults: /dev, /sys, libusb). */
  readonly discovery?: DiscoveryOptions;
  /** Grace period between SIGTERM and SIGKILL when stopping ffmpeg (default 2000 ms). */
  readonly killGraceMs?: number;
}

/** Fails fast, with a clear message, for a device node that is missing or is not a device. */
async function checkDeviceNode(path: string): Promise<void> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new MapperError('Unreachable', `${path} does not exist: no camera at this path (unplugged, renumbered, or /dev not mounted into the pod?)`, { cause: err });
    }
    throw new MapperError('Unreachable', `${path} cannot be accessed: ${(err as Error).message}`, { cause: err });
  }
  if (!st.isCharacterDevice()) {
    throw new MapperError('InvalidConfig', `${path} is not a character device, so not a V4L2 camera; use url for files and streams`, { key: 'devicePath' });
  }
}

/** Creates the driver; the default export uses the defaults. */
export function createUsbCameraDriver(options: UsbCameraDriverOptions = {}): DriverDefinition<CameraConfig, CameraVisitor> {
  return defineDriver({
    protocol: PROTOCOL,
    protocolConfig: protocolConfigSchema,
    visitorConfig: visitorConfigSchema,
    async connect({ config, device, log }, signal) {
      if (config.kind === 'device') await checkDeviceNode(config.input);
      signal.throwIfAborted();
      const capture = new CaptureSupervisor({
        ffmpegPath: config.ffmpegPath,
        args: captureArgs(config),
        frameRate: config.frameRate,
        label: config.input,
        maxFrameBytes: config.maxFrameBytes,
        restartInitialMs: config.restartInitialMs,
        restartMaxMs: config.restartMaxMs,
        log,
        ...(options.killGraceMs !== undefined ? { killGraceMs: options.killGraceMs } : {}),
      });
      capture.start();
      try {
        // The first frame proves the input works; an ffmpeg that exits before it fails the connect.
        await capture.nextFrame(0, config.startTimeoutMs, signal, true);
      } catch (err) {
        await capture.stop();
        throw signal.aborted ? signal.reason : err;
      }
      log.info({ input: config.input, ffmpegPid: capture.pid, width: config.width, height: config.height, frameRate: config.frameRate }, 'camera capture running');
      return new UsbCameraClient({ deviceId: device.id, config, capture, log });
    },
    discover: (signal) => discoverCameras(options.discovery, signal),
  });
}

const usbCameraDriver: DriverDefinition<CameraConfig, CameraVisitor> = createUsbCameraDriver();
export default usbCameraDriver;
