// SPDX-License-Identifier: Apache-2.0
// Discovery: USB Video Class devices (class 0x0E) enumerated with libusb (the `usb` package),
// joined with the V4L2 nodes (/dev/video*) the kernel made for them, through sysfs, and the
// stable udev links (/dev/v4l/by-id). The result tells a user which device path belongs to
// which camera and proposes the by-id path, which survives reboots and re-plugging.
import { readdir, readFile, readlink, realpath } from 'node:fs/promises';
import { basename, join, resolve as resolvePath } from 'node:path';
import type { DiscoveredDevice, Logger } from '@mapperkit/framework';

/** USB class code of video devices (UVC). */
export const USB_CLASS_VIDEO = 0x0e;

/** One USB device as enumeration reports it. */
export interface UsbDeviceInfo {
  readonly busNumber: number;
  readonly deviceAddress: number;
  /** Port path from the root hub, e.g. [1, 4] for bus 1 port 1.4. */
  readonly portNumbers: readonly number[];
  readonly vendorId: number;
  readonly productId: number;
  readonly deviceClass: number;
  /** Classes of every interface of the active configuration. */
  readonly interfaceClasses: readonly number[];
}

/** Lists USB devices. The default uses libusb through the `usb` package. */
export interface UsbEnumerator {
  list(): Promise<readonly UsbDeviceInfo[]>;
}

interface UsbModule {
  getDeviceList(): {
    busNumber: number;
    deviceAddress: number;
    portNumbers: number[];
    deviceDescriptor: { idVendor: number; idProduct: number; bDeviceClass: number };
    configDescriptor?: { interfaces: { bInterfaceClass: number }[][] } | undefined;
  }[];
}

/** libusb enumeration via `usb` (loaded on first use, so a missing native binding only disables USB discovery). */
export function libusbEnumerator(): UsbEnumerator {
  return {
    async list() {
      const mod = (await import('usb')) as unknown as UsbModule & { default?: UsbModule };
      const usb = typeof mod.getDeviceList === 'function' ? mod : mod.default;
      if (!usb) throw new Error('the usb module has no getDeviceList()');
      return usb.getDeviceList().map((d) => {
        let interfaceClasses: number[] = [];
        try {
          interfaceClasses = (d.configDescriptor?.interfaces ?? []).flatMap((alts) => alts.map((a) => a.bInterfaceClass));
        } catch {
          // Reading the active configuration can fail for devices we may not access; the device class is still known.
        }
        return {
          busNumber: d.busNumber,
          deviceAddress: d.deviceAddress,
          portNumbers: [...(d.portNumbers ?? [])],
          vendorId: d.deviceDescriptor.idVendor,
          productId: d.deviceDescriptor.idProduct,
          deviceClass: d.deviceDescriptor.bDeviceClass,
          interfaceClasses,
        };
      });
    },
  };
}

export interface DiscoveryOptions {
  /** Where device nodes live (default /dev). */
  readonly devRoot?: string;
  /** Where sysfs is mounted (default /sys). */
  readonly sysRoot?: string;
  /** USB enumeration (default: libusb through `usb`). */
  readonly usb?: UsbEnumerator;
  readonly log?: Logger;
}

/** sysfs name of a USB device: "<bus>-<port>.<port>…" (e.g. 1-1.4). */
export function usbSysName(d: Pick<UsbDeviceInfo, 'busNumber' | 'portNumbers'>): string {
  return `${d.busNumber}-${d.portNumbers.join('.')}`;
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, '0');
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

interface VideoNode {
  readonly node: string;
  readonly name: string;
  readonly card: string | undefined;
  readonly index: number | undefined;
  /** sysfs name of the USB device it belongs to, when it is a USB device. */
  readonly usb: string | undefined;
  readonly byId: string[];
  readonly byPath: string[];
}

/** Stable udev links in `dir` (by-id, by-path) → the node they point to. */
async function links(dir: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return out;
  }
  for (const n of names.sort()) {
    const link = join(dir, n);
    try {
      const target = resolvePath(dir, await readlink(link));
      const node = basename(target);
      out.set(node, [...(out.get(node) ?? []), link]);
    } catch {
      // not a link
    }
  }
  return out;
}

async function videoNodes(devRoot: string, sysRoot: string): Promise<VideoNode[]> {
  let names: string[];
  try {
    names = (await readdir(devRoot)).filter((n) => /^video\d+$/.test(n));
  } catch {
    return [];
  }
  names.sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)));
  const byId = await links(join(devRoot, 'v4l', 'by-id'));
  const byPath = await links(join(devRoot, 'v4l', 'by-path'));
  const out: VideoNode[] = [];
  for (const name of names) {
    const sys = join(sysRoot, 'class', 'video4linux', name);
    const card = await readText(join(sys, 'name'));
    const idx = await readText(join(sys, 'index'));
    let usb: string | undefined;
    try {
      // …/usb1/1-1/1-1:1.0 for a UVC interface; the USB device is the part before ':'.
      const dev = await realpath(join(sys, 'device'));
      const iface = dev.split('/').reverse().find((p) => /^\d+-[\d.]+:\d+\.\d+$/.test(p));
      usb = iface?.split(':')[0];
    } catch {
      // not in sysfs (container without /sys, or not a USB device)
    }
    out.push({
      node: join(devRoot, name),
      name,
      card,
      index: idx !== undefined && /^\d+$/.test(idx) ? Number(idx) : undefined,
      usb,
      byId: byId.get(name) ?? [],
      byPath: byPath.get(name) ?? [],
    });
  }
  return out;
}

async function usbStrings(sysRoot: string, sysName: string): Promise<Record<string, string>> {
  const dir = join(sysRoot, 'bus', 'usb', 'devices', sysName);
  const out: Record<string, string> = {};
  for (const [key, file] of [
    ['vendorId', 'idVendor'],
    ['productId', 'idProduct'],
    ['manufacturer', 'manufacturer'],
    ['product', 'product'],
    ['serial', 'serial'],
  ] as const) {
    const v = await readText(join(dir, file));
    if (v) out[key] = v;
  }
  return out;
}

function isUvc(d: UsbDeviceInfo): boolean {
  return d.deviceClass === USB_CLASS_VIDEO || d.interfaceClasses.includes(USB_CLASS_VIDEO);
}

/**
 * Lists cameras: one entry per V4L2 node (with its USB camera's vendor, product and serial
 * when it has one), plus one per UVC device that has no node (driver not bound, or /dev not
 * mounted). Resolves `[]` when there is nothing — no USB bus, no /dev/video*, no sysfs.
 */
export async function discoverCameras(opts: DiscoveryOptions = {}, signal?: AbortSignal): Promise<DiscoveredDevice[]> {
  const devRoot = opts.devRoot ?? '/dev';
  const sysRoot = opts.sysRoot ?? '/sys';
  const log = opts.log;
  let usbDevices: readonly UsbDeviceInfo[] = [];
  try {
    usbDevices = await (opts.usb ?? libusbEnumerator()).list();
  } catch (err) {
    log?.warn({ err: (err as Error).message }, 'USB enumeration failed; listing V4L2 nodes only');
  }
  signal?.throwIfAborted();
  const cameras = usbDevices.filter(isUvc);
  const bySys = new Map(cameras.map((d) => [usbSysName(d), d]));
  const nodes = await videoNodes(devRoot, sysRoot);
  signal?.throwIfAborted();

  const found: DiscoveredDevice[] = [];
  const withNode = new Set<string>();
  for (const n of nodes) {
    const details: Record<string, string> = { node: n.node };
    if (n.card) details['card'] = n.card;
    if (n.index !== undefined) details['index'] = String(n.index);
    if (n.byId.length > 0) details['byId'] = n.byId.join(', ');
    if (n.byPath.length > 0) details['byPath'] = n.byPath.join(', ');
    if (n.usb) {
      withNode.add(n.usb);
      details['usb'] = n.usb;
      Object.assign(details, await usbStrings(sysRoot, n.usb));
      const u = bySys.get(n.usb);
      if (u) {
        details['vendorId'] ??= hex4(u.vendorId);
        details['productId'] ??= hex4(u.productId);
        details['usbAddress'] = `${u.busNumber}:${u.deviceAddress}`;
      }
    }
    // UVC drivers create a second node (index 1) for metadata; index 0 is the one to capture from.
    if (n.index !== undefined && n.index > 0) details['note'] = 'metadata or secondary node; capture from the index 0 node of the same camera';
    const stable = n.byId[0];
    const id = stable ? basename(stable) : details['serial'] ? `usb-${details['vendorId']}:${details['productId']}-${details['serial']}-${n.name}` : n.node;
    const name = details['product'] ?? n.card;
    found.push({ id, ...(name ? { name } : {}), protocolConfig: { devicePath: stable ?? n.node }, details });
  }
  for (const u of cameras) {
    const sys = usbSysName(u);
    if (withNode.has(sys)) continue;
    const strings = await usbStrings(sysRoot, sys);
    const details: Record<string, string> = {
      usb: sys,
      usbAddress: `${u.busNumber}:${u.deviceAddress}`,
      vendorId: hex4(u.vendorId),
      productId: hex4(u.productId),
      ...strings,
      note: 'USB video device without a /dev/video node: the uvcvideo driver is not bound, or /dev is not mounted into this container',
    };
    found.push({ id: `usb-${sys}`, ...(strings['product'] ? { name: strings['product'] } : {}), protocolConfig: {}, details });
  }
  return found;
}
