// SPDX-License-Identifier: Apache-2.0
// Protocol and visitor configData of the camera-usb protocol. Upstream usbcamera-dmi keys
// (`serialPort`, `width`, `height`, `format` as a FourCC integer, `featureName`, `dataType`)
// and upstream stream keys (`format`, `outputDir`, `frameCount`, `frameInterval`, `videoNum`)
// are accepted as they are; everything else is optional with defaults.
import { z } from '@mapperkit/framework';

/** Accepts true/false/1/0 (booleans, numbers or text) — `z.coerce.boolean()` would take "false" for true. */
const flag = z.union([z.boolean(), z.number(), z.string()]).transform((v, ctx) => {
  const s = String(v).trim().toLowerCase();
  if (s === 'true' || s === '1') return true;
  if (s === 'false' || s === '0') return false;
  ctx.addIssue({ code: 'custom', message: `"${String(v)}" is not a boolean (true/false/1/0)` });
  return z.NEVER;
});

const ms = (def: number) => z.coerce.number().int().positive().default(def);

/**
 * V4L2 FourCC codes upstream sends as integers (`format: 0x56595559`), and their ffmpeg
 * `-input_format` names. Edgecore may round integers to float32 on the wire, so matching
 * also accepts the float32-rounded code.
 */
export const FOURCC_FORMATS: Readonly<Record<string, string>> = {
  YUYV: 'yuyv422',
  MJPG: 'mjpeg',
  JPEG: 'mjpeg',
  H264: 'h264',
  UYVY: 'uyvy422',
  NV12: 'nv12',
  YU12: 'yuv420p',
  RGB3: 'rgb24',
  BGR3: 'bgr24',
  GREY: 'gray',
};

/** FourCC text of a little-endian V4L2 code, e.g. 0x56595559 → "YUYV". */
export function fourccText(code: number): string {
  return String.fromCharCode(code & 0xff, (code >>> 8) & 0xff, (code >>> 16) & 0xff, (code >>> 24) & 0xff);
}

function fourccCode(text: string): number {
  return (text.charCodeAt(0) | (text.charCodeAt(1) << 8) | (text.charCodeAt(2) << 16) | (text.charCodeAt(3) << 24)) >>> 0;
}

/** ffmpeg input format name for an upstream `format` value, or an error text. */
export function pixelFormatName(raw: string | number): { name: string } | { error: string } {
  if (typeof raw === 'number' || /^\d+$/.test(String(raw).trim())) {
    const n = Number(raw);
    for (const [cc, name] of Object.entries(FOURCC_FORMATS)) {
      const code = fourccCode(cc);
      if (n === code || Math.fround(n) === Math.fround(code)) return { name };
    }
    return { error: `FourCC code ${n} (${JSON.stringify(fourccText(n))}) is not one of ${Object.keys(FOURCC_FORMATS).join(', ')}` };
  }
  const s = String(raw).trim();
  const cc = FOURCC_FORMATS[s.toUpperCase()];
  if (s.length === 4 && cc) return { name: cc };
  if (/^[a-z0-9_]+$/i.test(s)) return { name: s.toLowerCase() };
  return { error: `"${s}" is neither a FourCC (${Object.keys(FOURCC_FORMATS).join(', ')}) nor an ffmpeg format name` };
}

/** Splits `inputOptions` given as one string ("-rtsp_transport tcp -timeout 5000000"). */
function splitOptions(v: string | readonly string[] | undefined): string[] {
  if (v === undefined) return [];
  if (typeof v !== 'string') return [...v];
  return v.trim() === '' ? [] : v.trim().split(/\s+/);
}

const rawProtocol = z.object({
  /** A V4L2 capture node: /dev/video0, or better a stable /dev/v4l/by-id/… link. */
  devicePath: z.string().trim().min(1).optional(),
  /** Upstream usbcamera-dmi's name for devicePath. */
  serialPort: z.string().trim().min(1).optional(),
  /** Any ffmpeg input instead of a device: rtsp://…, http://…, a file, or a lavfi graph with inputFormat "lavfi". */
  url: z.string().trim().min(1).optional(),
  /** ffmpeg demuxer (-f): v4l2 for devices by default; "lavfi" for test sources; auto-detected for URLs. */
  inputFormat: z
    .string()
    .trim()
    .regex(/^[a-z0-9_]+$/, 'must be an ffmpeg format name such as v4l2, lavfi, rtsp')
    .optional(),
  /** Camera pixel format: upstream's FourCC integer (0x56595559 = YUYV), FourCC text (MJPG) or an ffmpeg name (mjpeg, yuyv422). */
  format: z.union([z.number(), z.string()]).optional(),
  width: z.coerce.number().int().positive().max(16384).default(640),
  height: z.coerce.number().int().positive().max(16384).default(480),
  /** Frames per second requested from the camera and delivered as JPEG. */
  frameRate: z.coerce.number().positive().max(240).default(15),
  /** JPEG quality as ffmpeg's -q:v: 2 (best) … 31 (smallest). */
  quality: z.coerce.number().int().min(2).max(31).default(5),
  /** Extra ffmpeg input options, e.g. "-rtsp_transport tcp". */
  inputOptions: z.union([z.string(), z.array(z.string())]).optional(),
  /** Read the input at its native rate (ffmpeg -re). Default: on for lavfi and files, off for devices and network streams. */
  realtime: flag.optional(),
  ffmpegPath: z.string().trim().min(1).default('ffmpeg'),
  v4l2CtlPath: z.string().trim().min(1).default('v4l2-ctl'),
  /** How long connect waits for the first frame. */
  startTimeoutMs: ms(8000),
  /** First delay before restarting a dead ffmpeg; doubles (with jitter) up to restartMaxMs. */
  restartInitialMs: ms(500),
  restartMaxMs: ms(30000),
  /** A frame older than this is not served; default max(2000 ms, 5 frame intervals). */
  staleAfterMs: z.coerce.number().int().positive().optional(),
  /** With no frame for this long the device is reported offline (and reconnected). */
  offlineAfterMs: ms(15000),
  /** Largest JPEG accepted from ffmpeg; bigger ones restart the capture. */
  maxFrameBytes: z.coerce.number().int().positive().max(256 * 1024 * 1024).default(16 * 1024 * 1024),
  /** Timeout of one v4l2-ctl call. */
  controlTimeoutMs: ms(3000),
  /** Upstream keys with no meaning here (accepted so upstream Device YAML validates). */
  deviceID: z.unknown().optional(),
  protocolID: z.unknown().optional(),
});

/** The normalised protocol config a client works with. */
export interface CameraConfig {
  /** `device` for a V4L2 node (camera controls available), `url` for any other ffmpeg input. */
  readonly kind: 'device' | 'url';
  /** Device path or URL. */
  readonly input: string;
  readonly inputFormat: string | undefined;
  /** ffmpeg -input_format for V4L2 devices. */
  readonly pixelFormat: string | undefined;
  readonly width: number;
  readonly height: number;
  readonly frameRate: number;
  readonly quality: number;
  readonly inputOptions: readonly string[];
  readonly realtime: boolean;
  readonly ffmpegPath: string;
  readonly v4l2CtlPath: string;
  readonly startTimeoutMs: number;
  readonly restartInitialMs: number;
  readonly restartMaxMs: number;
  readonly staleAfterMs: number;
  readonly offlineAfterMs: number;
  readonly maxFrameBytes: number;
  readonly controlTimeoutMs: number;
}

function defaultRealtime(kind: 'device' | 'url', input: string, inputFormat: string | undefined): boolean {
  if (kind === 'device') return false;
  if (inputFormat === 'lavfi') return true;
  // A URL with a scheme other than file: is a live source (rtsp, http, udp, srt…).
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(input)?.[1]?.toLowerCase();
  return scheme === undefined || scheme === 'file';
}

export const protocolConfigSchema = rawProtocol.transform((c, ctx): CameraConfig => {
  const device = c.devicePath ?? c.serialPort;
  if (c.devicePath && c.serialPort && c.devicePath !== c.serialPort) {
    ctx.addIssue({ code: 'custom', path: ['serialPort'], message: `differs from devicePath "${c.devicePath}"; set only one of them` });
  }
  if (device && c.url) ctx.addIssue({ code: 'custom', path: ['url'], message: 'set either devicePath (a V4L2 device) or url (any ffmpeg input), not both' });
  if (!device && !c.url) {
    ctx.addIssue({ code: 'custom', path: ['devicePath'], message: 'required: a V4L2 device such as /dev/video0 (or url: any ffmpeg input)' });
  }
  let pixelFormat: string | undefined;
  if (c.format !== undefined && c.format !== '') {
    const r = pixelFormatName(c.format);
    if ('error' in r) ctx.addIssue({ code: 'custom', path: ['format'], message: r.error });
    else pixelFormat = r.name;
  }
  if (c.restartMaxMs < c.restartInitialMs) ctx.addIssue({ code: 'custom', path: ['restartMaxMs'], message: 'must not be below restartInitialMs' });
  const kind = device ? 'device' : 'url';
  const input = device ?? c.url ?? '';
  const inputOptions = splitOptions(c.inputOptions);
  if (kind === 'url' && /^rtsp:/i.test(input) && !inputOptions.includes('-rtsp_transport')) inputOptions.unshift('-rtsp_transport', 'tcp');
  return {
    kind,
    input,
    inputFormat: c.inputFormat ?? (kind === 'device' ? 'v4l2' : undefined),
    pixelFormat,
    width: c.width,
    height: c.height,
    frameRate: c.frameRate,
    quality: c.quality,
    inputOptions,
    realtime: c.realtime ?? defaultRealtime(kind, input, c.inputFormat),
    ffmpegPath: c.ffmpegPath,
    v4l2CtlPath: c.v4l2CtlPath,
    startTimeoutMs: c.startTimeoutMs,
    restartInitialMs: c.restartInitialMs,
    restartMaxMs: c.restartMaxMs,
    staleAfterMs: c.staleAfterMs ?? Math.max(2000, Math.ceil((5 * 1000) / c.frameRate)),
    offlineAfterMs: c.offlineAfterMs,
    maxFrameBytes: c.maxFrameBytes,
    controlTimeoutMs: c.controlTimeoutMs,
  };
});

export const visitorConfigSchema = z.object({
  /**
   * What the property is. Default: the property name. `frame` (alias upstream `ImageTrigger`),
   * `frameWidth`, `frameHeight`, `frameSize`, `frameTimestamp`, `captureRestarts`, `Framerate`,
   * `Input`, `BusInfo`, `saveFrame`, `saveVideo`, or a V4L2 control name (`Brightness`,
   * `White Balance Temperature, Auto`, `brightness`…).
   */
  featureName: z.string().trim().min(1).optional(),
  /** Upstream key; the model type decides the value type here. */
  dataType: z.string().optional(),
  /** How a STRING frame property carries the JPEG: base64 (upstream ImageTrigger), a data: URL, or JSON with size and timestamp. */
  encoding: z.enum(['base64', 'dataUrl', 'json']).default('base64'),
  /** saveFrame/saveVideo: file extension and container (jpg, png, mp4, mkv, avi…). */
  format: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9]{1,8}$/, 'must be a file extension such as jpg, png, mp4, mkv')
    .optional(),
  /** saveFrame/saveVideo: directory the files are written to (created if missing). */
  outputDir: z.string().trim().min(1).optional(),
  /** saveFrame: images per read (default 1). saveVideo: frames per video (default 2 s worth). */
  frameCount: z.coerce.number().int().positive().max(1_000_000).optional(),
  /** saveFrame: nanoseconds between saved images (upstream unit). */
  frameInterval: z.coerce.number().nonnegative().default(0),
  /** saveVideo: consecutive videos per read. */
  videoNum: z.coerce.number().int().positive().max(1000).default(1),
  /** saveVideo: seconds per video, instead of frameCount. */
  duration: z.coerce.number().positive().max(86_400).optional(),
  /** saveVideo: `copy` remuxes the camera's JPEG frames (no re-encode, like upstream); `h264` encodes with libx264. */
  videoCodec: z.enum(['copy', 'h264']).default('copy'),
  /** Save only on the first read after (re)connecting, as upstream does once per device start; later reads return the same paths. */
  once: flag.default(false),
});

export type CameraVisitor = z.infer<typeof visitorConfigSchema>;
