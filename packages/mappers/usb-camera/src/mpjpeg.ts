// SPDX-License-Identifier: Apache-2.0
// Splits ffmpeg's `-f mpjpeg` output (multipart/x-mixed-replace: a boundary line, headers with
// Content-length, the JPEG bytes) into frames. Framing comes from Content-length, so a JPEG
// whose data happens to contain FF D9 is still cut in the right place. Memory is bounded: at
// most one frame (≤ maxFrameBytes) plus one header block is ever buffered.

const HEADER_END = Buffer.from('\r\n\r\n');
const MAX_HEADER_BYTES = 4096;

/** Thrown when the byte stream is not what ffmpeg's mpjpeg muxer writes. */
export class MpjpegError extends Error {
  override name = 'MpjpegError';
}

export class MpjpegParser {
  private readonly maxFrameBytes: number;
  private readonly onFrame: (jpeg: Buffer) => void;
  /** Bytes not yet consumed while looking for a header block. */
  private head: Buffer = Buffer.alloc(0);
  /** Body chunks of the frame being assembled, once its length is known. */
  private body: Buffer[] = [];
  private bodyBytes = 0;
  private expected = -1;

  constructor(opts: { maxFrameBytes: number; onFrame: (jpeg: Buffer) => void }) {
    this.maxFrameBytes = opts.maxFrameBytes;
    this.onFrame = opts.onFrame;
  }

  /** Bytes currently held (for tests of the memory bound). */
  get bufferedBytes(): number {
    return this.head.length + this.bodyBytes;
  }

  /** Feeds a chunk of ffmpeg stdout. Throws MpjpegError on malformed or oversized input. */
  push(chunk: Buffer): void {
    let data = chunk;
    while (data.length > 0) {
      if (this.expected < 0) {
        this.head = this.head.length === 0 ? data : Buffer.concat([this.head, data]);
        data = Buffer.alloc(0);
        const end = this.head.indexOf(HEADER_END);
        if (end < 0) {
          if (this.head.length > MAX_HEADER_BYTES) throw new MpjpegError(`no multipart header end within ${MAX_HEADER_BYTES} bytes`);
          return;
        }
        const headerText = this.head.subarray(0, end).toString('latin1');
        const m = /content-length:\s*(\d+)/i.exec(headerText);
        if (!m) throw new MpjpegError(`multipart part without Content-length: ${JSON.stringify(headerText.slice(0, 200))}`);
        const len = Number(m[1]);
        if (len > this.maxFrameBytes) throw new MpjpegError(`frame of ${len} bytes exceeds maxFrameBytes ${this.maxFrameBytes}`);
        this.expected = len;
        data = this.head.subarray(end + HEADER_END.length);
        this.head = Buffer.alloc(0);
        this.body = [];
        this.bodyBytes = 0;
        continue;
      }
      const need = this.expected - this.bodyBytes;
      const take = data.subarray(0, need);
      this.body.push(take);
      this.bodyBytes += take.length;
      data = data.subarray(take.length);
      if (this.bodyBytes === this.expected) {
        const frame = this.body.length === 1 ? Buffer.from(this.body[0]!) : Buffer.concat(this.body, this.bodyBytes);
        this.body = [];
        this.bodyBytes = 0;
        this.expected = -1;
        this.onFrame(frame);
      }
    }
  }

  /** Drops any partial frame (after the producing process was restarted). */
  reset(): void {
    this.head = Buffer.alloc(0);
    this.body = [];
    this.bodyBytes = 0;
    this.expected = -1;
  }
}
