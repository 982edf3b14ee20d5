// SPDX-License-Identifier: Apache-2.0
// Camera settings through v4l2-ctl (v4l-utils): list controls with their ranges, read and
// write them by name, read the bus info and the current input. Control names are matched
// the way v4l2-ctl derives them from the driver's names ("White Balance Temperature, Auto"
// → white_balance_temperature_auto), and names that Linux renamed in 5.x are tried both ways.
import { MapperError } from '@mapperkit/framework';
import { CommandNotFoundError, runCommand } from './proc.js';

/** One control as `v4l2-ctl --list-ctrls` prints it. */
export interface V4l2Control {
  /** v4l2-ctl's name for it (lower case, underscores). */
  readonly name: string;
  readonly id: number;
  /** int, int64, bool, menu, intmenu, button, bitmask, str, u8, u16, u32. */
  readonly type: string;
  readonly min: number | undefined;
  readonly max: number | undefined;
  readonly step: number | undefined;
  readonly default: number | undefined;
  /** Current value as printed (numbers as text; strings without quotes). */
  readonly value: string | undefined;
  /** inactive, read-only, write-only, volatile, … */
  readonly flags: readonly string[];
}

/**
 * v4l2-ctl's name for a control name: alphanumerics lower-cased, every run of other characters
 * between them turned into one underscore ("Exposure (Absolute)" → exposure_absolute).
 */
export function controlVarName(name: string): string {
  let out = '';
  let gap = false;
  for (const ch of name) {
    if (/[A-Za-z0-9]/.test(ch)) {
      if (gap) out += '_';
      gap = false;
      out += ch.toLowerCase();
    } else if (out.length > 0) gap = true;
  }
  return out;
}

/** Controls Linux renamed (old names are what upstream's usbcamera-dmi model uses). */
const RENAMED: readonly (readonly string[])[] = [
  ['white_balance_temperature_auto', 'white_balance_automatic'],
  ['exposure_auto', 'auto_exposure'],
  ['exposure_absolute', 'exposure_time_absolute'],
  ['exposure_auto_priority', 'exposure_dynamic_framerate'],
  ['focus_auto', 'focus_automatic_continuous'],
];

/** The name under which `feature` exists among `controls`, trying renamed variants; undefined if none. */
export function resolveControl(feature: string, controls: ReadonlyMap<string, V4l2Control>): V4l2Control | undefined {
  const name = controlVarName(feature);
  const direct = controls.get(name);
  if (direct) return direct;
  for (const group of RENAMED) {
    if (!group.includes(name)) continue;
    for (const alt of group) {
      const c = controls.get(alt);
      if (c) return c;
    }
  }
  return undefined;
}

const CONTROL_LINE = /^\s*([a-z0-9_]+)\s+0x([0-9a-f]+)\s+\(([a-z0-9]+)\)\s*:(.*)$/i;

/** Parses `v4l2-ctl --list-ctrls` (or `--list-ctrls-menus`) output. */
export function parseControlList(text: string): V4l2Control[] {
  const out: V4l2Control[] = [];
  for (const line of text.split('\n')) {
    const m = CONTROL_LINE.exec(line);
    if (!m) continue;
    const fields = new Map<string, string>();
    for (const f of m[4]!.matchAll(/(\w+)=('(?:[^'\\]|\\.)*'|\S+)/g)) fields.set(f[1]!, f[2]!);
    const num = (k: string): number | undefined => {
      const v = fields.get(k);
      if (v === undefined) return undefined;
      const n = Number(v);
      return Number.isFinite(n) ? n : undefined;
    };
    const raw = fields.get('value');
    out.push({
      name: m[1]!,
      id: Number.parseInt(m[2]!, 16),
      type: m[3]!.toLowerCase(),
      min: num('min'),
      max: num('max'),
      step: num('step'),
      default: num('default'),
      value: raw?.startsWith("'") ? raw.slice(1, -1) : raw,
      flags: fields.get('flags')?.split(',').filter(Boolean) ?? [],
    });
  }
  return out;
}

/** Parses `--get-ctrl` output ("brightness: 128" per line). */
export function parseGetCtrl(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([a-z0-9_]+):\s?(.*)$/i.exec(line.trim());
    if (!m) continue;
    const v = m[2]!.trim();
    out.set(m[1]!, v.startsWith("'") && v.endsWith("'") ? v.slice(1, -1) : v);
  }
  return out;
}

/** Parses `--info` output into its "Key : value" fields (Driver name, Card type, Bus info…). */
export function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z][A-Za-z ]*?)\s*:\s*(.+)$/.exec(line);
    if (m && !out.has(m[1]!)) out.set(m[1]!, m[2]!.trim());
  }
  return out;
}

/** Parses `--get-input` output ("Video input : 0 (Camera 1: ok)"). */
export function parseInput(text: string): number | undefined {
  const m = /input\s*:\s*(\d+)/i.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** v4l2-ctl bound to one device node. */
export class V4l2Ctl {
  readonly binary: string;
  readonly device: string;
  private readonly timeoutMs: number;
  private cache: Promise<Map<string, V4l2Control>> | undefined;

  constructor(binary: string, device: string, timeoutMs: number) {
    this.binary = binary;
    this.device = device;
    this.timeoutMs = timeoutMs;
  }

  private async run(args: string[], signal: AbortSignal): Promise<{ stdout: string; stderr: string }> {
    let r;
    try {
      r = await runCommand(this.binary, ['-d', this.device, ...args], { timeoutMs: this.timeoutMs, signal });
    } catch (err) {
      if (err instanceof CommandNotFoundError) {
        throw new MapperError('Unsupported', `camera settings need v4l2-ctl (package v4l-utils), which cannot be run: ${err.message}`, { cause: err });
      }
      if (err instanceof Error && err.name === 'TimeoutError') throw new MapperError('Timeout', `v4l2-ctl -d ${this.device} ${args.join(' ')}: ${err.message}`, { cause: err });
      throw err;
    }
    if (r.code !== 0) {
      const msg = (r.stderr.trim() || r.stdout.trim()).split('\n')[0] ?? `exit ${String(r.code ?? r.signal)}`;
      let kind: MapperError['kind'] = 'DeviceError';
      if (/cannot open device/i.test(msg)) kind = 'Unreachable';
      else if (/unable to detect what device|unknown control|not a v4l2 device|inappropriate ioctl/i.test(msg)) kind = 'Unsupported';
      throw new MapperError(kind, `v4l2-ctl -d ${this.device}: ${msg}`);
    }
    return r;
  }

  /** The device's controls by v4l2-ctl name (queried once, then cached). */
  controls(signal: AbortSignal): Promise<Map<string, V4l2Control>> {
    if (!this.cache) {
      this.cache = this.run(['--list-ctrls'], signal).then((r) => new Map(parseControlList(r.stdout).map((c) => [c.name, c])));
      this.cache.catch(() => {
        this.cache = undefined;
      });
    }
    return this.cache;
  }

  /** Forgets the cached control list (after a reconnect). */
  invalidate(): void {
    this.cache = undefined;
  }

  /** The control for a feature name, or a clear Unsupported error listing what the device has. */
  async control(feature: string, signal: AbortSignal): Promise<V4l2Control> {
    const controls = await this.controls(signal);
    const c = resolveControl(feature, controls);
    if (!c) {
      const names = [...controls.keys()];
      throw new MapperError(
        'Unsupported',
        `${this.device} has no camera control "${feature}" (v4l2 name ${controlVarName(feature) || '(empty)'}); it has: ${names.length > 0 ? names.join(', ') : 'no controls'}`,
      );
    }
    return c;
  }

  /** Current values of controls (by v4l2-ctl name), in one v4l2-ctl call. */
  async get(names: readonly string[], signal: AbortSignal): Promise<Map<string, string>> {
    if (names.length === 0) return new Map();
    const r = await this.run([`--get-ctrl=${names.join(',')}`], signal);
    return parseGetCtrl(r.stdout);
  }

  /** Sets a control after checking it is writable and `value` is within its range. */
  async set(feature: string, value: number, signal: AbortSignal): Promise<void> {
    const c = await this.control(feature, signal);
    if (c.flags.includes('read-only')) throw new MapperError('WriteRejected', `camera control ${c.name} is read-only`);
    if (c.flags.includes('inactive')) {
      throw new MapperError('WriteRejected', `camera control ${c.name} is inactive (usually because its automatic mode is on); not written`);
    }
    if (!Number.isInteger(value)) throw new MapperError('WriteRejected', `camera control ${c.name} takes integers; got ${value}`);
    const min = c.type === 'bool' ? 0 : c.min;
    const max = c.type === 'bool' ? 1 : c.max;
    if (min !== undefined && value < min) throw new MapperError('WriteRejected', `value ${value} is below the minimum ${min} of camera control ${c.name}`);
    if (max !== undefined && value > max) throw new MapperError('WriteRejected', `value ${value} is above the maximum ${max} of camera control ${c.name}`);
    if (c.step !== undefined && c.step > 1 && c.min !== undefined && (value - c.min) % c.step !== 0) {
      throw new MapperError('WriteRejected', `value ${value} of camera control ${c.name} is not min ${c.min} plus a multiple of step ${c.step}`);
    }
    // v4l2-ctl reports a failed VIDIOC_S_CTRL on stderr and may still exit 0.
    const r = await this.run([`--set-ctrl=${c.name}=${value}`], signal);
    const err = r.stderr.trim();
    if (err) throw new MapperError('DeviceError', `setting camera control ${c.name}=${value} on ${this.device} failed: ${err.split('\n')[0]}`);
  }

  /** `--info` fields. */
  async info(signal: AbortSignal): Promise<Map<string, string>> {
    return parseInfo((await this.run(['--info'], signal)).stdout);
  }

  /** The current video input index. */
  async input(signal: AbortSignal): Promise<number> {
    const out = (await this.run(['--get-input'], signal)).stdout;
    const n = parseInput(out);
    if (n === undefined) throw new MapperError('DeviceError', `v4l2-ctl -d ${this.device} --get-input: unexpected output ${JSON.stringify(out.slice(0, 100))}`);
    return n;
  }
}
