// SPDX-License-Identifier: Apache-2.0
// Durable FIFO of records for store-and-forward: append-only segment files of JSON lines in one
// directory per sink channel, a cursor file for the read position, a byte cap (oldest segments
// dropped first) and a maximum age (expired records skipped at replay).
//
// Crash behaviour: appends are written in batches (fsync optional); a torn last line is skipped
// on restart; the cursor is written after each acknowledged batch, so at most one batch is
// replayed twice (at-least-once).
import { type FileHandle, mkdir, open, readdir, readFile, rm, stat, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';

/** Why records left the queue without being delivered. */
export type DropReason = 'cap' | 'age' | 'corrupt';

export interface DiskQueueOptions {
  readonly dir: string;
  /** Byte cap of all segments together. */
  readonly maxBytes: number;
  /** Records older than this (by `ts`) are dropped at read time. */
  readonly maxAgeMs: number;
  readonly fsync: boolean;
  /** Dropped records are reported here. */
  readonly onDrop?: (reason: DropReason, count: number) => void;
}

interface Segment {
  readonly id: number;
  bytes: number;
  /** Lines in the segment (records, including any unparsable one). */
  lines: number;
}

interface Reader<T> {
  readonly id: number;
  readonly records: T[];
  pos: number;
  /** Lines of the segment already consumed before `records[0]` plus skipped ones. */
  readonly baseLine: number;
  /** Line number (in the file) of records[i] is lineOf[i]. */
  readonly lineOf: number[];
}

const SEGMENT_RE = /^(\d{12})\.seg$/;
const CURSOR = 'cursor.json';

function segName(id: number): string {
  return `${String(id).padStart(12, '0')}.seg`;
}

function countLines(buf: Buffer): number {
  let n = 0;
  let i = -1;
  while ((i = buf.indexOf(10, i + 1)) !== -1) n++;
  return n;
}

export class DiskQueue<T extends { readonly ts: number }> {
  readonly dir: string;
  private readonly opts: DiskQueueOptions;
  private readonly segmentBytes: number;
  private segments: Segment[] = [];
  private reader: Reader<T> | undefined;
  private writer: { id: number; fh: FileHandle } | undefined;
  private pending: string[] = [];
  /** New segments count up from here; ids below are left for {@link prepend}. */
  private lastId = 1_000_000;
  private pendingBytes = 0;
  private flushing: Promise<void> | undefined;
  private flushScheduled = false;
  private lastError: Error | undefined;
  private closed = false;

  private constructor(opts: DiskQueueOptions) {
    this.opts = opts;
    this.dir = opts.dir;
    // Segments are read whole: keep them small enough that parsing one does not stall the event loop.
    this.segmentBytes = Math.max(16 * 1024, Math.min(2 * 1024 * 1024, Math.floor(opts.maxBytes / 8)));
  }

  /** Opens (creating) the directory and indexes existing segments. */
  static async open<T extends { readonly ts: number }>(opts: DiskQueueOptions): Promise<DiskQueue<T>> {
    const q = new DiskQueue<T>(opts);
    await mkdir(opts.dir, { recursive: true });
    const names = (await readdir(opts.dir)).filter((n) => SEGMENT_RE.test(n)).sort();
    for (const name of names) {
      const id = Number(SEGMENT_RE.exec(name)![1]);
      const buf = await readFile(join(opts.dir, name));
      q.segments.push({ id, bytes: buf.length, lines: countLines(buf) });
      q.lastId = Math.max(q.lastId, id);
      q.segmentsBytesHint += buf.length;
    }
    // Lines already acknowledged in the head segment (cursor written after each ack).
    try {
      const cur = JSON.parse(await readFile(join(opts.dir, CURSOR), 'utf8')) as { segment?: number; line?: number };
      const seg = q.segments.find((x) => x.id === cur.segment);
      if (seg && typeof cur.line === 'number' && cur.line > 0) q.skipOnLoad = { id: seg.id, line: cur.line };
    } catch {
      // No cursor: replay every segment from the start.
    }
    return q;
  }

  private skipOnLoad: { id: number; line: number } | undefined;

  /** Records waiting (approximate for the head segment when a cursor was restored). */
  get size(): number {
    let n = this.pending.length;
    for (const s of this.segments) n += s.lines;
    if (this.reader) n -= this.reader.baseLine + this.reader.pos;
    const skip = this.skipOnLoad;
    if (skip && this.segments.some((x) => x.id === skip.id)) n -= skip.line;
    return Math.max(0, n);
  }

  /** Bytes on disk plus bytes waiting to be written. */
  get bytes(): number {
    let b = this.pendingBytes;
    for (const s of this.segments) b += s.bytes;
    return b;
  }

  /** Cheap upper bound of {@link bytes} for the append path (segments' bytes change only on flush and drop). */
  private overCap(): boolean {
    if (this.pendingBytes + this.segmentsBytesHint <= this.opts.maxBytes) return false;
    this.segmentsBytesHint = this.bytes - this.pendingBytes;
    return this.bytes > this.opts.maxBytes;
  }

  private segmentsBytesHint = 0;

  /** The last write error (disk full, permissions), cleared by the next successful write. */
  get error(): Error | undefined {
    return this.lastError;
  }

  /**
   * Writes records in front of everything queued (a batch that failed after it was taken from
   * memory, at shutdown). Falls back to appending if no id is left below the head.
   */
  async prepend(records: readonly T[]): Promise<void> {
    if (records.length === 0) return;
    const id = (this.segments[0]?.id ?? this.lastId + 1) - 1;
    if (id <= 0) {
      this.append(records);
      return;
    }
    const text = records.map((r) => `${JSON.stringify(r)}\n`).join('');
    await writeFile(join(this.dir, segName(id)), text);
    const bytes = Buffer.byteLength(text);
    this.segments.unshift({ id, bytes, lines: records.length });
    this.segmentsBytesHint += bytes;
  }

  /** Queues records for writing (in order); written on the next flush (scheduled automatically). */
  append(records: readonly T[]): void {
    if (this.closed || records.length === 0) return;
    for (const r of records) {
      const line = `${JSON.stringify(r)}\n`;
      this.pending.push(line);
      this.pendingBytes += Buffer.byteLength(line);
    }
    if (this.overCap()) this.enforceCap();
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush().catch(() => undefined);
      });
    }
  }

  /** Writes queued records to the active segment. Rejects on I/O errors (records stay queued). */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing.then(() => (this.pending.length > 0 ? this.flush() : undefined));
    if (this.pending.length === 0) return Promise.resolve();
    this.flushing = this.doFlush().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async doFlush(): Promise<void> {
    while (this.pending.length > 0) {
      try {
        if (!this.writer) {
          // Ids are never reused: a just-finished segment may still be being deleted.
          const id = ++this.lastId;
          const fh = await open(join(this.dir, segName(id)), 'a');
          this.writer = { id, fh };
          this.segments.push({ id, bytes: 0, lines: 0 });
        }
        const w = this.writer;
        const seg0 = this.segments.find((s) => s.id === w.id);
        // Take (once the file is open, so a failure leaves them queued) as many lines as fit in this segment; at least one.
        const room = this.segmentBytes - (seg0?.bytes ?? 0);
        let take = 0;
        let size = 0;
        while (take < this.pending.length) {
          const b = Buffer.byteLength(this.pending[take]!);
          if (take > 0 && size + b > room) break;
          size += b;
          take++;
        }
        const lines = this.pending.slice(0, take);
        const bytes = size;
        this.pending = this.pending.slice(take);
        this.pendingBytes -= size;
        const buf = Buffer.from(lines.join(''));
        try {
          await w.fh.write(buf);
          if (this.opts.fsync) await w.fh.datasync();
        } catch (err) {
          this.pending = lines.concat(this.pending);
          this.pendingBytes += bytes;
          throw err;
        }
        const seg = this.segments.find((s) => s.id === w.id);
        this.segmentsBytesHint += buf.length;
        if (seg) {
          seg.bytes += buf.length;
          seg.lines += lines.length;
          if (seg.bytes >= this.segmentBytes) await this.rotate();
        }
        this.lastError = undefined;
      } catch (err) {
        this.lastError = err as Error;
        throw err;
      }
    }
  }

  private async rotate(): Promise<void> {
    const w = this.writer;
    this.writer = undefined;
    if (w) await w.fh.close().catch(() => undefined);
  }

  /** Drops the oldest data while over the byte cap. */
  private enforceCap(): void {
    while (this.bytes > this.opts.maxBytes) {
      const head = this.segments[0];
      if (!head || (this.writer && head.id === this.writer.id && this.segments.length === 1)) {
        // Only the active segment (or nothing) is on disk: drop the oldest queued lines.
        const line = this.pending.shift();
        if (line === undefined) return;
        this.pendingBytes -= Buffer.byteLength(line);
        this.opts.onDrop?.('cap', 1);
        continue;
      }
      this.segments.shift();
      let dropped = head.lines;
      if (this.reader?.id === head.id) {
        dropped = this.reader.records.length - this.reader.pos;
        this.reader = undefined;
      } else if (this.skipOnLoad?.id === head.id) {
        dropped -= this.skipOnLoad.line;
        this.skipOnLoad = undefined;
      }
      void rm(join(this.dir, segName(head.id)), { force: true });
      void rm(join(this.dir, CURSOR), { force: true });
      this.opts.onDrop?.('cap', Math.max(0, dropped));
    }
  }

  /**
   * Up to `max` records from the head, oldest first, without removing them. Expired records
   * are dropped on the way. Resolves `[]` when the queue is empty.
   */
  async peek(max: number): Promise<T[]> {
    for (;;) {
      if (this.reader && this.reader.pos < this.reader.records.length) {
        this.dropExpired(this.reader);
        if (this.reader.pos < this.reader.records.length) return this.reader.records.slice(this.reader.pos, this.reader.pos + max);
      }
      if (this.reader) {
        await this.finishSegment(this.reader.id);
        continue;
      }
      const head = this.segments[0];
      if (!head) {
        if (this.pending.length === 0) return [];
        await this.flush();
        continue;
      }
      if (this.writer?.id === head.id) {
        // Never read the segment being appended to: let any write in flight finish, then seal it.
        await this.flush();
        if (this.writer?.id === head.id) await this.rotate();
      }
      await this.load(head);
    }
  }

  private dropExpired(r: Reader<T>): void {
    const limit = Date.now() - this.opts.maxAgeMs;
    let n = 0;
    while (r.pos < r.records.length && r.records[r.pos]!.ts < limit) {
      r.pos++;
      n++;
    }
    if (n > 0) this.opts.onDrop?.('age', n);
  }

  private async load(seg: Segment): Promise<void> {
    let text: string;
    try {
      text = await readFile(join(this.dir, segName(seg.id)), 'utf8');
    } catch {
      // Vanished (removed by hand): skip it.
      this.segments = this.segments.filter((s) => s !== seg);
      return;
    }
    const skip = this.skipOnLoad?.id === seg.id ? this.skipOnLoad.line : 0;
    if (skip > 0) this.skipOnLoad = undefined;
    const lines = text.split('\n');
    if (lines.at(-1) === '') lines.pop();
    const records: T[] = [];
    const lineOf: number[] = [];
    let corrupt = 0;
    for (let i = skip; i < lines.length; i++) {
      try {
        const r = JSON.parse(lines[i]!) as T;
        if (typeof r !== 'object' || r === null || typeof r.ts !== 'number') throw new Error('not a record');
        records.push(r);
        lineOf.push(i);
      } catch {
        corrupt++;
      }
    }
    if (corrupt > 0) this.opts.onDrop?.('corrupt', corrupt);
    seg.lines = lines.length;
    this.reader = { id: seg.id, records, pos: 0, baseLine: skip, lineOf };
  }

  /** Removes the `n` records returned by the last {@link peek} from the head. */
  async ack(n: number): Promise<void> {
    const r = this.reader;
    if (!r || n <= 0) return;
    r.pos = Math.min(r.records.length, r.pos + n);
    if (r.pos >= r.records.length) {
      await this.finishSegment(r.id);
      return;
    }
    const line = r.lineOf[r.pos]!;
    const tmp = join(this.dir, `${CURSOR}.tmp`);
    await writeFile(tmp, JSON.stringify({ segment: r.id, line }));
    await rename(tmp, join(this.dir, CURSOR));
  }

  private async finishSegment(id: number): Promise<void> {
    this.reader = undefined;
    this.segments = this.segments.filter((s) => s.id !== id);
    await rm(join(this.dir, segName(id)), { force: true });
    await rm(join(this.dir, CURSOR), { force: true });
  }

  /** Deletes whole segments whose last write is older than the maximum age. */
  async sweep(): Promise<void> {
    const limit = Date.now() - this.opts.maxAgeMs;
    for (const seg of [...this.segments]) {
      if (this.writer?.id === seg.id || this.reader?.id === seg.id) continue;
      try {
        const st = await stat(join(this.dir, segName(seg.id)));
        if (st.mtimeMs >= limit) break;
      } catch {
        continue;
      }
      this.segments = this.segments.filter((s) => s !== seg);
      const n = seg.lines - (this.skipOnLoad?.id === seg.id ? this.skipOnLoad.line : 0);
      if (this.skipOnLoad?.id === seg.id) this.skipOnLoad = undefined;
      await rm(join(this.dir, segName(seg.id)), { force: true });
      this.opts.onDrop?.('age', Math.max(0, n));
    }
  }

  /** Flushes queued records and closes the active segment. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.flush();
    } finally {
      this.closed = true;
      await this.rotate();
    }
  }
}
