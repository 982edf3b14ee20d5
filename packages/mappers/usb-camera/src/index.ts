// SPDX-License-Identifier: Apache-2.0
// @mapperkit/mapper-usb-camera — the camera-usb driver and the pieces it is built from.
export { default as usbCameraDriver, createUsbCameraDriver, PROTOCOL, type UsbCameraDriverOptions } from './driver.js';
export { UsbCameraClient, classify, type Feature } from './client.js';
export { protocolConfigSchema, visitorConfigSchema, pixelFormatName, fourccText, FOURCC_FORMATS, type CameraConfig, type CameraVisitor } from './config.js';
export { CaptureSupervisor, type CaptureOptions, type Frame, type FrameSource } from './capture.js';
export { discoverCameras, libusbEnumerator, usbSysName, USB_CLASS_VIDEO, type DiscoveryOptions, type UsbDeviceInfo, type UsbEnumerator } from './discovery.js';
export { captureArgs, convertImageArgs, recordVideoArgs } from './ffmpeg.js';
export { isCompleteJpeg, jpegDimensions } from './jpeg.js';
export { MpjpegParser, MpjpegError } from './mpjpeg.js';
export { saveFrames, saveVideos, streamFileName, IMAGE_FORMATS, VIDEO_FORMATS, type SaveContext } from './stream.js';
export { V4l2Ctl, controlVarName, resolveControl, parseControlList, parseGetCtrl, parseInfo, parseInput, type V4l2Control } from './v4l2.js';
export { rfc3339Nano } from './proc.js';
