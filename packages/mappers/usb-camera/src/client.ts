// SPDX-License-Identifier: Apache-2.0
// One connected camera: what a read or write of each kind of property means.
//
// | feature (visitor featureName, else the property name) | read                                   | write            |
// |--------------------------------------------------------|----------------------------------------|------------------|
// | frame / ImageTrigger (BYTES or STRING)                 | latest JPEG (timestamp = capture time) | —                |
// | frameWidth, frameHeight, frameSize, frameTimestamp     | of the same frame                      | —                |
// | captureRestarts                                        | ffmpeg restarts since connect          | —                |
// | Framerate                                              | frames per second delivered            | restarts capture |
// | Input, BusInfo                                         | v4l2-ctl --get-input / --info          | —                |
// | saveFrame, saveVideo (STREAM)                          | saves files, returns their paths       | —                |
// | anything else: a V4L2 control (Brightness, …)          | v4l2-ctl --get-ctrl                    | --set-ctrl       |
import type { ChildProcess } from 'node:child_process';
import { type DeviceClient, type DeviceState, type Logger, MapperError, type PropertyRequest, type PropertyType, type PropertyValue, type ReadResult } from '@mapperkit/framework';
import type { CaptureSupervisor, Frame } from './capture.js';
import type { CameraConfig, CameraVisitor } from './config.js';
import { captureArgs } from './ffmpeg.js';
import { stopChild } from './proc.js';
import { saveFrames, saveVideos } from './stream.js';
import { V4l2Ctl } from './v4l2.js';

/** What a property is, decided once per property from its visitor, name and model type. */
export type Feature =
  | { readonly kind: 'frame'; readonly encoding: CameraVisitor['encoding'] }
  | { readonly kind: 'meta'; readonly which: 'width' | 'height' | 'size' | 'timestamp' }
  | { readonly kind: 'restarts' }
  | { readonly kind: 'frameRate' }
  | { readonly kind: 'input' }
  | { readonly kind: 'busInfo' }
  | { readonly kind: 'control'; readonly name: string }
  | { readonly kind: 'saveFrame' }
  | { readonly kind: 'saveVideo' }
  | { readonly kind: 'invalid'; readonly error: MapperError };

const FRAME_NAMES = new Set(['frame', 'imagetrigger', 'image', 'snapshot', 'jpeg']);
const META: Readonly<Record<string, 'width' | 'height' | 'size' | 'timestamp'>> = {
  framewidth: 'width',
  frameheight: 'height',
  framesize: 'size',
  frametimestamp: 'timestamp',
};

/** Decides what a property is (see the table at the top of this file). */
export function classify(req: PropertyRequest<CameraVisitor>): Feature {
  const feature = req.visitor.featureName ?? req.name;
  const key = feature.toLowerCase().replace(/[^a-z0-9]/g, '');
  const bad = (msg: string): Feature => ({ kind: 'invalid', error: new MapperError('InvalidConfig', `property ${req.name}: ${msg}`, { property: req.name }) });
  const isSave = key === 'saveframe' || key === 'savevideo';
  if (req.type === 'stream') {
    if (!isSave) return bad(`a STREAM property must be saveFrame or saveVideo (property name or visitor featureName), not "${feature}"`);
    return { kind: key === 'saveframe' ? 'saveFrame' : 'saveVideo' };
  }
  if (isSave) return bad(`${feature} must have model type STREAM, not ${req.type.toUpperCase()}`);
  if (FRAME_NAMES.has(key)) {
    if (req.type !== 'bytes' && req.type !== 'string') return bad(`a frame property must have model type BYTES or STRING, not ${req.type.toUpperCase()}`);
    return { kind: 'frame', encoding: req.visitor.encoding };
  }
  const meta = META[key];
  if (meta) return { kind: 'meta', which: meta };
  if (key === 'capturerestarts') return { kind: 'restarts' };
  if (key === 'framerate') return { kind: 'frameRate' };
  if (key === 'input') return { kind: 'input' };
  if (key === 'businfo') return { kind: 'busInfo' };
  if (req.type === 'bytes') return bad(`camera control "${feature}" cannot have model type BYTES`);
  return { kind: 'control', name: feature };
}

/** A number as the model type wants it. */
function typed(type: PropertyType, n: number): PropertyValue {
  switch (type) {
    case 'int':
      return Math.round(n);
    case 'boolean':
      return n !== 0;
    case 'string':
      return String(n);
    default:
      return n;
  }
}

function toNumber(value: PropertyValue, what: string): number {
  if (typeof value === 'boolean') return value ? 1 : 0;
  const n = typeof value === 'bigint' ? Number(value) : typeof value === 'number' ? value : Number(String(value).trim());
  if (typeof value === 'object' || !Number.isFinite(n)) throw new MapperError('WriteRejected', `${what} takes a number; got ${String(value)}`);
  return n;
}

const ok = (value: PropertyValue, timestamp?: number): ReadResult => (timestamp === undefined ? { ok: true, value } : { ok: true, value, timestamp });
const fail = (error: unknown, property: string): ReadResult => ({
  ok: false,
  error: error instanceof MapperError ? error.withContext({ property }) : new MapperError('DeviceError', `property ${property}: ${(error as Error).message}`, { property, cause: error }),
});

export interface CameraClientOptions {
  readonly deviceId: string;
  readonly config: CameraConfig;
  readonly capture: CaptureSupervisor;
  readonly log: Logger;
}

export class UsbCameraClient implements DeviceClient<CameraVisitor> {
  readonly deviceId: string;
  readonly config: CameraConfig;
  /** The supervised ffmpeg capture (exposed for diagnostics and tests). */
  readonly capture: CaptureSupervisor;
  private readonly log: Logger;
  private readonly v4l2: V4l2Ctl | undefined;
  private readonly features = new WeakMap<PropertyRequest<CameraVisitor>, Feature>();
  /** Paths of `once` stream properties, saved on the first read of this connection. */
  private readonly savedOnce = new WeakMap<PropertyRequest<CameraVisitor>, string>();
  private readonly children = new Set<ChildProcess>();
  private readonly ctl = new AbortController();
  private frameRate: number;
  private closing: Promise<void> | undefined;

  constructor(o: CameraClientOptions) {
    this.deviceId = o.deviceId;
    this.config = o.config;
    this.capture = o.capture;
    this.log = o.log;
    this.frameRate = o.config.frameRate;
    this.v4l2 = o.config.kind === 'device' ? new V4l2Ctl(o.config.v4l2CtlPath, o.config.input, o.config.controlTimeoutMs) : undefined;
  }

  /** Child processes started for saveFrame/saveVideo that are still running. */
  get activeChildren(): number {
    return this.children.size;
  }

  private feature(req: PropertyRequest<CameraVisitor>): Feature {
    let f = this.features.get(req);
    if (!f) this.features.set(req, (f = classify(req)));
    return f;
  }

  private controls(feature: string): V4l2Ctl {
    if (!this.v4l2) {
      throw new MapperError('Unsupported', `camera setting "${feature}" needs a V4L2 device (devicePath); this camera's input is ${this.config.input}`);
    }
    return this.v4l2;
  }

  /** The latest frame if fresh, else the next one (waiting at most staleAfterMs). */
  private async frame(signal: AbortSignal): Promise<Frame> {
    if (this.closing) throw new MapperError('Unreachable', 'camera client closed');
    const latest = this.capture.latest;
    if (latest && Date.now() - latest.timestamp <= this.config.staleAfterMs) return latest;
    return this.capture.nextFrame(latest?.seq ?? 0, this.config.staleAfterMs, signal);
  }

  async read(requests: readonly PropertyRequest<CameraVisitor>[], signal: AbortSignal): Promise<ReadResult[]> {
    if (this.closing) throw new MapperError('Unreachable', `camera ${this.config.input} is closed`);
    signal.throwIfAborted();
    const sig = AbortSignal.any([signal, this.ctl.signal]);
    const results: (ReadResult | undefined)[] = new Array(requests.length).fill(undefined);
    const features = requests.map((r) => this.feature(r));

    // Frames and their metadata: one frame for the whole batch, so they agree.
    if (features.some((f) => f.kind === 'frame' || f.kind === 'meta')) {
      let frame: Frame | undefined;
      let error: unknown;
      try {
        frame = await this.frame(sig);
      } catch (err) {
        if (sig.aborted) throw sig.reason;
        error = err;
      }
      features.forEach((f, i) => {
        const req = requests[i]!;
        if (f.kind !== 'frame' && f.kind !== 'meta') return;
        if (!frame) results[i] = fail(error, req.name);
        else if (f.kind === 'frame') results[i] = ok(encodeFrame(frame, req.type, f.encoding), frame.timestamp);
        else results[i] = ok(metaValue(frame, f.which, req.type), frame.timestamp);
      });
    }

    // Camera controls: one v4l2-ctl call for every control in the batch.
    const controlIdx = features.flatMap((f, i) => (f.kind === 'control' ? [i] : []));
    if (controlIdx.length > 0) await this.readControls(requests, features, controlIdx, results, sig);

    for (const [i, f] of features.entries()) {
      if (results[i]) continue;
      const req = requests[i]!;
      try {
        switch (f.kind) {
          case 'invalid':
            results[i] = fail(f.error, req.name);
            break;
          case 'restarts':
            results[i] = ok(typed(req.type, this.capture.restarts));
            break;
          case 'frameRate':
            results[i] = ok(typed(req.type, this.frameRate));
            break;
          case 'input':
            results[i] = ok(typed(req.type, await this.controls('Input').input(sig)));
            break;
          case 'busInfo': {
            const info = await this.controls('BusInfo').info(sig);
            const bus = info.get('Bus info');
            results[i] = bus === undefined ? fail(new MapperError('DeviceError', `v4l2-ctl --info printed no "Bus info"`), req.name) : ok(bus);
            break;
          }
          case 'saveFrame':
          case 'saveVideo':
            break; // below, after everything quick
          default:
            break;
        }
      } catch (err) {
        if (sig.aborted) throw sig.reason;
        results[i] = fail(err, req.name);
      }
    }

    // Stream actions last: they take frameCount frames (or seconds of video).
    for (const [i, f] of features.entries()) {
      if (f.kind !== 'saveFrame' && f.kind !== 'saveVideo') continue;
      const req = requests[i]!;
      try {
        results[i] = ok(await this.save(req, f.kind, sig));
      } catch (err) {
        if (sig.aborted) throw sig.reason;
        results[i] = fail(err, req.name);
      }
    }
    return results.map((r, i) => r ?? fail(new MapperError('Internal', 'no result'), requests[i]!.name));
  }

  private async readControls(
    requests: readonly PropertyRequest<CameraVisitor>[],
    features: readonly Feature[],
    idx: readonly number[],
    results: (ReadResult | undefined)[],
    signal: AbortSignal,
  ): Promise<void> {
    const wanted = new Map<number, string>();
    for (const i of idx) {
      const f = features[i] as { kind: 'control'; name: string };
      try {
        const c = await this.controls(f.name).control(f.name, signal);
        wanted.set(i, c.name);
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        results[i] = fail(err, requests[i]!.name);
      }
    }
    if (wanted.size === 0) return;
    let values: Map<string, string>;
    try {
      values = await this.v4l2!.get([...new Set(wanted.values())], signal);
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      for (const i of wanted.keys()) results[i] = fail(err, requests[i]!.name);
      return;
    }
    for (const [i, name] of wanted) {
      const req = requests[i]!;
      const text = values.get(name);
      if (text === undefined) {
        results[i] = fail(new MapperError('DeviceError', `v4l2-ctl printed no value for ${name}`), req.name);
        continue;
      }
      const n = Number(text);
      if (req.type === 'string') results[i] = ok(text);
      else if (!Number.isFinite(n)) results[i] = fail(new MapperError('DeviceError', `camera control ${name} value "${text}" is not a number`), req.name);
      else results[i] = ok(typed(req.type, n));
    }
  }

  private async save(req: PropertyRequest<CameraVisitor>, kind: 'saveFrame' | 'saveVideo', signal: AbortSignal): Promise<string> {
    const v = req.visitor;
    if (v.once) {
      const prev = this.savedOnce.get(req);
      if (prev !== undefined) return prev;
    }
    if (!v.outputDir) throw new MapperError('InvalidConfig', `${kind} needs visitor configData.outputDir (the directory files are written to)`, { key: 'outputDir' });
    const ctx = { source: this.capture, ffmpegPath: this.config.ffmpegPath, signal, frameTimeoutMs: this.config.staleAfterMs, children: this.children };
    let paths: string[];
    if (kind === 'saveFrame') {
      paths = await saveFrames(ctx, { outputDir: v.outputDir, format: v.format ?? 'jpg', frameCount: v.frameCount ?? 1, frameIntervalNs: v.frameInterval });
    } else {
      const framesPerVideo = v.duration !== undefined ? Math.max(1, Math.ceil(v.duration * this.frameRate)) : (v.frameCount ?? Math.ceil(2 * this.frameRate));
      paths = await saveVideos(ctx, { outputDir: v.outputDir, format: v.format ?? 'mp4', framesPerVideo, videoNum: v.videoNum, codec: v.videoCodec });
    }
    this.log.debug({ property: req.name, files: paths }, `${kind} done`);
    const value = JSON.stringify(paths);
    if (v.once) this.savedOnce.set(req, value);
    return value;
  }

  async write(request: PropertyRequest<CameraVisitor>, value: PropertyValue, signal: AbortSignal): Promise<void> {
    if (this.closing) throw new MapperError('Unreachable', `camera ${this.config.input} is closed`);
    const f = this.feature(request);
    switch (f.kind) {
      case 'invalid':
        throw f.error;
      case 'frameRate': {
        const fps = toNumber(value, 'Framerate');
        if (!(fps > 0 && fps <= 240)) throw new MapperError('WriteRejected', `Framerate ${fps} is outside (0, 240]`);
        this.frameRate = fps;
        this.log.info({ frameRate: fps }, 'frame rate changed; restarting capture');
        await this.capture.reconfigure(captureArgs(this.config, fps), fps);
        return;
      }
      case 'control': {
        const n = toNumber(value, `camera control ${f.name}`);
        await this.controls(f.name).set(f.name, n, AbortSignal.any([signal, this.ctl.signal]));
        return;
      }
      default:
        throw new MapperError('WriteRejected', `property ${request.name} (${f.kind}) cannot be written`, { property: request.name });
    }
  }

  async state(_signal?: AbortSignal): Promise<DeviceState> {
    if (this.closing || this.capture.isStopped) return 'offline';
    const silent = this.capture.silentForMs;
    if (silent <= this.config.staleAfterMs) return 'ok';
    return silent >= this.config.offlineAfterMs ? 'offline' : 'unhealthy';
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.ctl.abort(new MapperError('Cancelled', `camera ${this.config.input} closed`));
      await Promise.all([this.capture.stop(), ...[...this.children].map((c) => stopChild(c, 500))]);
    })();
    return this.closing;
  }
}

function encodeFrame(frame: Frame, type: PropertyType, encoding: CameraVisitor['encoding']): PropertyValue {
  if (type === 'bytes') return new Uint8Array(frame.jpeg.buffer, frame.jpeg.byteOffset, frame.jpeg.byteLength);
  const b64 = frame.jpeg.toString('base64');
  if (encoding === 'dataUrl') return `data:image/jpeg;base64,${b64}`;
  if (encoding === 'json') {
    return JSON.stringify({
      format: 'jpeg',
      width: frame.width,
      height: frame.height,
      size: frame.jpeg.length,
      timestamp: new Date(frame.timestamp).toISOString(),
      data: b64,
    });
  }
  return b64;
}

function metaValue(frame: Frame, which: 'width' | 'height' | 'size' | 'timestamp', type: PropertyType): PropertyValue {
  switch (which) {
    case 'width':
      return typed(type, frame.width);
    case 'height':
      return typed(type, frame.height);
    case 'size':
      return typed(type, frame.jpeg.length);
    case 'timestamp':
      return type === 'string' ? new Date(frame.timestamp).toISOString() : typed(type, frame.timestamp);
  }
}
