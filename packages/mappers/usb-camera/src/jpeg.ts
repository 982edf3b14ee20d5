// SPDX-License-Identifier: Apache-2.0
// Just enough JPEG to check a frame is whole and learn its size: the SOI/EOI markers and the
// dimensions in the start-of-frame (SOFn) segment. Pixels are never decoded here.

/** Start-of-frame markers that carry the image size (SOF0-3, 5-7, 9-11, 13-15). */
const SOF_MARKERS = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

/** Whether `buf` starts with SOI (FF D8) and ends with EOI (FF D9). */
export function isCompleteJpeg(buf: Uint8Array): boolean {
  const n = buf.length;
  return n >= 4 && buf[0] === 0xff && buf[1] === 0xd8 && buf[n - 2] === 0xff && buf[n - 1] === 0xd9;
}

/** Width and height from the first SOFn segment, or undefined when there is none before the scan data. */
export function jpegDimensions(buf: Uint8Array): { width: number; height: number } | undefined {
  if (buf.length < 4 || buf[0] !== 0xff || buf[1] !== 0xd8) return undefined;
  let i = 2;
  while (i + 3 < buf.length) {
    if (buf[i] !== 0xff) return undefined;
    // Any number of 0xFF fill bytes may precede a marker.
    while (buf[i] === 0xff && i < buf.length) i++;
    const marker = buf[i];
    i++;
    if (marker === undefined) return undefined;
    // Markers without a length field.
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue;
    if (marker === 0xd9 || marker === 0xda) return undefined; // EOI or start of scan: no SOF seen
    if (i + 1 >= buf.length) return undefined;
    const length = (buf[i]! << 8) | buf[i + 1]!;
    if (length < 2) return undefined;
    if (SOF_MARKERS.has(marker)) {
      if (i + 6 >= buf.length) return undefined;
      const height = (buf[i + 3]! << 8) | buf[i + 4]!;
      const width = (buf[i + 5]! << 8) | buf[i + 6]!;
      return { width, height };
    }
    i += length;
  }
  return undefined;
}
