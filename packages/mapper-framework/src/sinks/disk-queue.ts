// SPDX-License-Identifier: Apache-2.0
// Durable FIFO of records for store-and-forward: append-only segment files of lines (JSON by
// default; the data plane's records use record-line.ts) in one directory per sink channel, a
// cursor file for the read position, a byte cap (oldest segments dropped first) and a maximum
// age (expired records skipped at replay).
//
// Reading: segments are loaded in order (their lines split, each line parsed only when a batch
// needs it) and read across segment boundaries; `peek(max, skip)` lets a caller hand out the
// next batch while earlier ones are still being written (acknowledged in order with `ack`).
//
// Crash behaviour: appends are written in batches (fsync optional); a torn last line (no
// newline) is skipped on restart; the cursor is written after each acknowledgement, so what is
// replayed twice after a crash is at most what was in flight (at-least-once).
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

/** How records become lines (no newline inside) and back; `decode` answers undefined for a line that is not a record. */
export interface LineCodec<T> {
  encode(record: T): string;
  decode(line: string): T | undefined;
}

function jsonCodec<T extends { readonly ts: number }>(): LineCodec<T> {
  return {
    encode: (r) => JSON.stringify(r),
    decode: (line) => {
      try {
        const v = JSON.parse(line) as T;
        return typeof v === 'object' && v !== null && typeof v.ts === 'number' ? v : undefined;
      } catch {
        return undefined;
      }
    },
  };
}

interface Segment {
  readonly id: number;
  bytes: number;
  /** Lines in the segment (records, including any unparsable one). */
  lines: number;
}

/**
 * A segment being read. Lines are split when the segment is loaded and parsed only when a
 * batch needs them, so loading a segment never parses thousands of records in one go.
 */
interface Reader<T> {
  readonly id: number;
  /** Complete lines of the segment (a torn last line is left out). */
  readonly lines: string[];
  /** First line not consumed (acknowledged, or dropped as expired or corrupt). */
  consumed: number;
  /** Next line to parse. */
  scan: number;
  /** Records parsed from lines [consumed, scan) that are not consumed yet, with their line numbers. */
  recs: T[];
  lineOf: number[];
  /** Index in `recs` of the first record not consumed. */
  head: number;
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
  /** Loaded segments, a prefix of `segments`, oldest first. */
  private readers: Reader<T>[] = [];
  /** Records handed out by {@link peek} and not acknowledged yet (a prefix of the unconsumed records in `readers`). */
  private handedOut = 0;
  /** Records handed out and not acknowledged yet whose segment the cap dropped (older than those of `handedOut`). */
  private debt = 0;
  private writer: { id: number; fh: FileHandle } | undefined;
  private pending: string[] = [];
  /** New segments count up from here; ids below are left for {@link prepend}. */
  private lastId = 1_000_000;
  private pendingBytes = 0;
  private flushing: Promise<void> | undefined;
  private flushScheduled = false;
  private lastError: Error | undefined;
  private closed = false;

  private readonly codec: LineCodec<T>;

  private constructor(opts: DiskQueueOptions, codec: LineCodec<T> | undefined) {
    this.opts = opts;
    this.codec = codec ?? jsonCodec<T>();
    this.dir = opts.dir;
    // Segments are read whole: keep them small enough that parsing one does not stall the event loop.
    this.segmentBytes = Math.max(16 * 1024, Math.min(2 * 1024 * 1024, Math.floor(opts.maxBytes / 8)));
  }

  /** Opens (creating) the directory and indexes existing segments. */
  static async open<T extends { readonly ts: number }>(opts: DiskQueueOptions, codec?: LineCodec<T>): Promise<DiskQueue<T>> {
    const q = new DiskQueue<T>(opts, codec);
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
    for (const r of this.readers) n -= r.consumed;
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
    const text = records.map((r) => `${this.codec.encode(r)}\n`).join('');
    await writeFile(join(this.dir, segName(id)), text);
    this.unload();
    const bytes = Buffer.byteLength(text);
    this.segments.unshift({ id, bytes, lines: records.length });
    this.segmentsBytesHint += bytes;
  }

  /** Queues records for writing (in order); written on the next flush (scheduled automatically). */
  append(records: readonly T[]): void {
    if (this.closed || records.length === 0) return;
    for (const r of records) {
      const line = `${this.codec.encode(r)}\n`;
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

  /**
   * Drops the oldest data while over the byte cap: whole segments, oldest first (the one being
   * appended to excepted). Records of a dropped segment that were handed out for a write in
   * flight become a debt: `ack` consumes it first (so it stays exact), and if that write fails
   * they are counted as dropped when the reader starts over.
   */
  private enforceCap(): void {
    while (this.bytes > this.opts.maxBytes) {
      const victim = this.segments.findIndex((seg) => !(this.writer && seg.id === this.writer.id));
      if (victim < 0) {
        // Only the active segment (or nothing) is on disk: drop the oldest queued lines.
        const line = this.pending.shift();
        if (line === undefined) return;
        this.pendingBytes -= Buffer.byteLength(line);
        this.opts.onDrop?.('cap', 1);
        continue;
      }
      const seg = this.segments[victim]!;
      this.segments.splice(victim, 1);
      let dropped = seg.lines;
      const ri = this.readers.findIndex((r) => r.id === seg.id);
      if (ri >= 0) {
        const r = this.readers[ri]!;
        dropped -= r.consumed;
        if (ri === 0 && this.handedOut > 0) {
          // Handed-out records are the first unconsumed ones, from readers[0] on.
          const inFlight = Math.min(this.handedOut, r.recs.length - r.head);
          this.handedOut -= inFlight;
          this.debt += inFlight;
          dropped -= inFlight;
        }
        this.readers.splice(ri, 1);
      } else if (this.skipOnLoad?.id === seg.id) {
        dropped -= this.skipOnLoad.line;
        this.skipOnLoad = undefined;
      }
      void rm(join(this.dir, segName(seg.id)), { force: true });
      // The cursor names the head segment; once that is gone it would point at nothing.
      if (victim === 0) void rm(join(this.dir, CURSOR), { force: true });
      this.opts.onDrop?.('cap', Math.max(0, dropped));
    }
  }

  /**
   * Up to `max` records, oldest first, after the first `skip` unacknowledged ones (records
   * already handed out for a write in flight), without removing them; across segment
   * boundaries. Expired records at the head are dropped on the way (when `skip` is 0).
   * Resolves `[]` when nothing is left beyond `skip`.
   */
  async peek(max: number, skip = 0): Promise<T[]> {
    if (skip === 0 && this.debt > 0) {
      // Starting over: records handed out, dropped by the cap meanwhile and never acknowledged are lost.
      this.opts.onDrop?.('cap', this.debt);
      this.debt = 0;
    }
    const out: T[] = [];
    // The first `skip` handed-out records, less those the cap dropped, are in the readers.
    const base = Math.max(0, skip - this.debt);
    let toSkip = base;
    let ri = 0;
    this.handedOut = base;
    while (out.length < max) {
      const r = this.readers[ri] ?? (await this.loadNext(ri));
      if (!r) break;
      if (ri === 0 && toSkip === 0 && out.length === 0) {
        this.dropExpired(r);
        if (this.finishedReader(r)) {
          await this.finishSegment(r.id);
          continue;
        }
      }
      // Parse as far as this call needs.
      this.parse(r, r.head + toSkip + (max - out.length));
      const avail = r.recs.length - r.head;
      if (toSkip >= avail) {
        toSkip -= avail;
        ri++;
        continue;
      }
      const from = r.head + toSkip;
      const to = Math.min(r.recs.length, from + (max - out.length));
      for (let i = from; i < to; i++) out.push(r.recs[i]!);
      // Counted at once, before any await: the cap must see them as handed out.
      this.handedOut = base + out.length;
      toSkip = 0;
      ri++;
    }
    return out;
  }

  /** Loads the segment after the `ri` loaded ones; undefined when there is none (yet). */
  private async loadNext(ri: number): Promise<Reader<T> | undefined> {
    for (;;) {
      if (ri < this.readers.length) return this.readers[ri];
      const seg = this.segments[ri];
      if (!seg) {
        // Records not written yet: write them so they can be read (only worth it at the head).
        if (ri > 0 || this.pending.length === 0) return undefined;
        await this.flush();
        continue;
      }
      if (this.writer?.id === seg.id) {
        // Never read the segment being appended to: let any write in flight finish, then seal it.
        await this.flush();
        if (this.writer?.id === seg.id) await this.rotate();
        continue;
      }
      await this.load(seg);
    }
  }

  /** Parses lines of `r` until `recs` holds `upTo` entries or the lines run out. */
  private parse(r: Reader<T>, upTo: number): void {
    let corrupt = 0;
    while (r.recs.length < upTo && r.scan < r.lines.length) {
      const i = r.scan++;
      const v = this.codec.decode(r.lines[i]!);
      if (v !== undefined) {
        r.recs.push(v);
        r.lineOf.push(i);
      } else {
        corrupt++;
        // A corrupt line at the head is consumed right away.
        if (r.head === r.recs.length) r.consumed = r.scan;
      }
    }
    if (corrupt > 0) this.opts.onDrop?.('corrupt', corrupt);
  }

  private finishedReader(r: Reader<T>): boolean {
    if (r.head < r.recs.length) return false;
    this.parse(r, r.head + 1);
    return r.head >= r.recs.length && r.scan >= r.lines.length;
  }

  /** Drops expired records at the head of `r` (nothing of it is handed out). */
  private dropExpired(r: Reader<T>): void {
    const limit = Date.now() - this.opts.maxAgeMs;
    let n = 0;
    for (;;) {
      if (r.head >= r.recs.length) this.parse(r, r.head + 64);
      if (r.head >= r.recs.length || r.recs[r.head]!.ts >= limit) break;
      r.head++;
      n++;
    }
    if (n > 0) {
      r.consumed = r.head < r.recs.length ? r.lineOf[r.head]! : r.scan;
      this.compact(r);
      this.opts.onDrop?.('age', n);
    }
  }

  /** Forgets consumed records once they are a good part of the arrays. */
  private compact(r: Reader<T>): void {
    if (r.head < 4096 || r.head * 2 < r.recs.length) return;
    r.recs = r.recs.slice(r.head);
    r.lineOf = r.lineOf.slice(r.head);
    r.head = 0;
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
    // Dropped (cap, sweep) while it was being read.
    if (!this.segments.includes(seg)) return;
    const skip = this.skipOnLoad?.id === seg.id ? this.skipOnLoad.line : 0;
    if (skip > 0) this.skipOnLoad = undefined;
    const lines = text.split('\n');
    // Every complete line ends with a newline: what follows the last one is a torn write.
    const torn = lines.pop();
    if (torn) this.opts.onDrop?.('corrupt', 1);
    seg.lines = lines.length;
    const start = Math.min(skip, lines.length);
    this.readers.push({ id: seg.id, lines, consumed: start, scan: start, recs: [], lineOf: [], head: 0 });
  }

  /**
   * Acknowledges the first `n` records handed out by {@link peek} (delivered): they leave the
   * queue, fully read segments are deleted and the cursor is saved.
   */
  async ack(n: number): Promise<void> {
    // The oldest handed-out records may have been dropped by the cap meanwhile.
    const gone = Math.min(n, this.debt);
    this.debt -= gone;
    let left = Math.min(n - gone, this.handedOut);
    if (left <= 0) return;
    this.handedOut -= left;
    while (left > 0) {
      const r = this.readers[0];
      if (!r) break;
      const k = Math.min(left, r.recs.length - r.head);
      r.head += k;
      left -= k;
      r.consumed = r.head < r.recs.length ? r.lineOf[r.head]! : r.scan;
      if (this.finishedReader(r)) {
        await this.finishSegment(r.id);
        continue;
      }
      if (k === 0) break;
    }
    const r = this.readers[0];
    if (!r) return;
    this.compact(r);
    const tmp = join(this.dir, `${CURSOR}.tmp`);
    await writeFile(tmp, JSON.stringify({ segment: r.id, line: r.consumed }));
    await rename(tmp, join(this.dir, CURSOR));
  }

  private async finishSegment(id: number): Promise<void> {
    this.readers = this.readers.filter((r) => r.id !== id);
    this.segments = this.segments.filter((s) => s.id !== id);
    await rm(join(this.dir, segName(id)), { force: true });
    await rm(join(this.dir, CURSOR), { force: true });
  }

  /** Forgets loaded segments (they are read again, from the cursor, on the next peek). */
  private unload(): void {
    const r = this.readers[0];
    if (r && r.consumed > 0) this.skipOnLoad = { id: r.id, line: r.consumed };
    this.readers = [];
    this.handedOut = 0;
    this.debt = 0;
  }

  /** Deletes whole segments whose last write is older than the maximum age. */
  async sweep(): Promise<void> {
    const limit = Date.now() - this.opts.maxAgeMs;
    for (const seg of [...this.segments]) {
      if (this.writer?.id === seg.id || this.readers.some((r) => r.id === seg.id)) continue;
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
