// SPDX-License-Identifier: Apache-2.0
// The replay path of store-and-forward: the disk-buffer line format (upstream DataModel JSON,
// earlier format still read), reading across segments with batches in flight, the byte cap
// while a write is in flight, torn lines, and the channel's pipelined replay (order, failures,
// at-least-once, counters).
import assert from 'node:assert/strict';
import { appendFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createLogger } from '@mapperkit/framework';
import { DiskQueue, type LineCodec } from '../src/sinks/disk-queue.ts';
import { SinkChannel } from '../src/sinks/channel.ts';
import { dataModelJson } from '../src/sinks/data-model.ts';
import { decodeRecordLine, decodeRecordLineLazy, encodeRecordLine } from '../src/sinks/record-line.ts';
import { SinkError, type SinkRecord, type SinkWriter } from '../src/sinks/types.ts';
import { tempDir, until } from './sinks-helpers.ts';

const log = createLogger({ level: 'silent' });
const codec: LineCodec<SinkRecord> = { encode: encodeRecordLine, decode: decodeRecordLine };
const rec = (i: number, ts = Date.now()): SinkRecord => ({ ns: 'default', dev: 'd', prop: 'p', type: 'int', val: String(i), ts });
const vals = (rs: readonly SinkRecord[]): number[] => rs.map((r) => Number(r.val));
const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);

describe('disk buffer line format', () => {
  const tmp = tempDir('mkrl-');
  after(() => tmp.cleanup());

  const samples: SinkRecord[] = [
    { ns: 'default', dev: 'boiler', prop: 'temp', type: 'float', val: '21.5', ts: 1_700_000_000_123 },
    { ns: 'ns-2', dev: 'd"q', prop: 'p\\x', type: 'string', val: 'a "quoted" <value> & more\nline\ttab \u2028 é 😀', ts: 1_700_000_000_124 },
    { ns: 'default', dev: 'm', prop: 'v', type: 'int', val: '7', ts: 1_700_000_000_125, route: { topic: 'a/b', qos: 1, retained: true } },
    { ns: 'default', dev: 'i', prop: 'v', type: 'int', val: '8', ts: 1_700_000_000_126, route: { measurement: 'm', tags: { site: 'x,y' }, fieldKey: 'f' } },
  ];

  it('is the upstream DataModel JSON (plus the route); decoding gives the record back, with the line as its DataModel', () => {
    for (const r of samples) {
      const line = encodeRecordLine(r);
      assert.ok(!line.includes('\n'), 'one line');
      assert.ok(line.startsWith(dataModelJson(r).slice(0, -1)), `starts with the DataModel bytes: ${line}`);
      const back = decodeRecordLine(line);
      assert.ok(back);
      const { json, ...fields } = back;
      assert.deepEqual(fields, r);
      if (r.route === undefined) {
        assert.equal(line, dataModelJson(r), 'without a route the line is exactly the DataModel JSON');
        assert.equal(json, line, 'and comes back as the record\'s json, so nothing encodes it again');
        assert.equal(dataModelJson(back), line);
      } else {
        assert.equal(json, undefined);
        assert.equal(dataModelJson(back), dataModelJson(r));
      }
    }
  });

  it('the Redis decoder cuts dev, time and JSON from the line\'s frame and parses the rest on use; escapes and routes take the full parse', () => {
    const plain = samples[0]!;
    const line = encodeRecordLine(plain);
    const lazy = decodeRecordLineLazy(line)!;
    assert.equal(lazy.json, line);
    assert.equal(lazy.dev, 'boiler');
    assert.equal(lazy.ts, 1_700_000_000_123);
    assert.deepEqual({ ns: lazy.ns, dev: lazy.dev, prop: lazy.prop, type: lazy.type, val: lazy.val, ts: lazy.ts, route: lazy.route }, { ...plain, route: undefined });
    for (const r of [...samples, { ...plain, dev: 'a\\' }, { ...plain, dev: 'x"y' }, { ...plain, ts: 1 }]) {
      const back = decodeRecordLineLazy(encodeRecordLine(r))!;
      assert.deepEqual({ ns: back.ns, dev: back.dev, prop: back.prop, type: back.type, val: back.val, ts: back.ts, route: back.route }, { ...r, route: r.route });
      assert.equal(dataModelJson(back), dataModelJson(r));
    }
    // Broken frames are refused like the full decoder refuses them.
    for (const bad of ['{"DeviceName":"d"}', '{"DeviceName":"d","TimeStamp":}', 'x{"DeviceName":"d","TimeStamp":1}', `${line.slice(0, -1)}`]) {
      assert.equal(decodeRecordLineLazy(bad), undefined, bad);
    }
  });

  it('refuses lines that are not records', () => {
    for (const bad of ['', '{', 'null', '[]', '42', '{"DeviceName":"d"}', '{"DeviceName":"d","PropertyName":"p","Namespace":"n","Value":"v","Type":"int","TimeStamp":"1"}', '{"ns":"n","dev":"d"}', '{"DeviceName":"d","PropertyName":"p","Namespace":"n","Value":"v","Type":"int","TimeStamp":1,"route":5}']) {
      assert.equal(decodeRecordLine(bad), undefined, bad);
    }
  });

  it('reads a buffer written in the earlier format (SinkRecord JSON lines), e.g. left by the previous version', async () => {
    const dir = join(tmp.dir, 'old');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, '000001000001.seg'), samples.map((r) => `${JSON.stringify(r)}\n`).join(''));
    const q = await DiskQueue.open<SinkRecord>({ dir, maxBytes: 1e6, maxAgeMs: 1e12, fsync: false }, codec);
    const got = await q.peek(10);
    assert.deepEqual(got, samples);
    await q.ack(got.length);
    assert.equal(q.size, 0);
  });
});

describe('disk buffer replay', () => {
  const tmp = tempDir('mkrp-');
  after(() => tmp.cleanup());

  it('hands out batches beyond those in flight (peek with skip), across segment boundaries, and acknowledges them in order', async () => {
    const dir = join(tmp.dir, 'skip');
    // 16 KiB segments (maxBytes/8, at least 16 KiB): ~130 records each.
    const q = await DiskQueue.open<SinkRecord>({ dir, maxBytes: 128 * 1024, maxAgeMs: 60_000, fsync: false }, codec);
    q.append(range(0, 1000).map((i) => rec(i)));
    await q.flush();
    assert.ok(readdirSync(dir).filter((f) => f.endsWith('.seg')).length >= 5, 'several segments');
    const a = await q.peek(300);
    const b = await q.peek(300, 300);
    const c = await q.peek(300, 600);
    assert.deepEqual(vals(a), range(0, 300));
    assert.deepEqual(vals(b), range(300, 300), 'the next batch while the first is in flight, from later segments');
    assert.deepEqual(vals(c), range(600, 300));
    await q.ack(300);
    await q.ack(300);
    assert.equal(q.size, 400);
    // The third batch failed: a fresh peek starts again at the first record not acknowledged.
    assert.deepEqual(vals(await q.peek(150)), range(600, 150));
    await q.ack(150);
    await q.close();
    // A new process resumes at the cursor.
    const q2 = await DiskQueue.open<SinkRecord>({ dir, maxBytes: 128 * 1024, maxAgeMs: 60_000, fsync: false }, codec);
    const rest: number[] = [];
    for (;;) {
      const x = await q2.peek(97);
      if (x.length === 0) break;
      rest.push(...vals(x));
      await q2.ack(x.length);
    }
    assert.deepEqual(rest, range(750, 250));
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.seg')), [], 'every segment deleted once delivered');
  });

  for (const outcome of ['delivered', 'failed'] as const) {
    it(`drops the oldest data at the byte cap even while a batch is in flight; acknowledgements and drop counts stay exact (write ${outcome})`, async () => {
      const drops: [string, number][] = [];
      const dir = join(tmp.dir, `cap-${outcome}`);
      const maxBytes = 40_000; // 16 KiB segments
      const q = await DiskQueue.open<SinkRecord>({ dir, maxBytes, maxAgeMs: 60_000, fsync: false, onDrop: (r, n) => drops.push([r, n]) }, codec);
      const capped = (): number => drops.filter(([r]) => r === 'cap').reduce((s, [, n]) => s + n, 0);
      q.append(range(0, 300).map((i) => rec(i)));
      await q.flush();
      const inFlight = await q.peek(200);
      assert.deepEqual(vals(inFlight), range(0, 200));
      // Much more than the cap arrives while that batch is being written.
      for (let i = 300; i < 2300; i += 50) {
        q.append(range(i, 50).map((j) => rec(j)));
        await q.flush();
        assert.ok(q.bytes <= maxBytes, `under the cap: ${q.bytes}`);
      }
      const cappedWhileInFlight = capped();
      assert.ok(cappedWhileInFlight > 0, 'the cap dropped data');
      let delivered = 0;
      if (outcome === 'delivered') {
        // Acknowledging the batch must not remove anything that was not in it.
        await q.ack(inFlight.length);
        delivered = inFlight.length;
        assert.equal(capped(), cappedWhileInFlight, 'records in flight are not counted as dropped');
      }
      const left: number[] = [];
      for (;;) {
        const x = await q.peek(500);
        if (x.length === 0) break;
        left.push(...vals(x));
        await q.ack(x.length);
      }
      if (outcome === 'failed') assert.ok(capped() > cappedWhileInFlight, 'a failed batch whose records the cap dropped is counted when reading starts over');
      assert.equal(delivered + capped() + left.length, 2300, `delivered ${delivered} + dropped ${capped()} + left ${left.length}`);
      assert.equal(left.at(-1), 2299, 'the newest records are kept');
      assert.deepEqual(left, left.map((_, i) => left[0]! + i), 'what is left is contiguous (the oldest went first)');
      assert.ok(left[0]! >= 200, 'nothing handed out comes back');
    });
  }

  it('skips a last line without its newline (torn write) even when it parses', async () => {
    const drops: [string, number][] = [];
    const dir = join(tmp.dir, 'torn');
    const q = await DiskQueue.open<SinkRecord>({ dir, maxBytes: 1e6, maxAgeMs: 60_000, fsync: false }, codec);
    q.append([rec(1), rec(2)]);
    await q.close();
    const seg = readdirSync(dir).find((f) => f.endsWith('.seg'))!;
    // A complete record whose newline never reached the disk: the write was cut, it may be cut elsewhere too.
    appendFileSync(join(dir, seg), encodeRecordLine(rec(3)));
    const q2 = await DiskQueue.open<SinkRecord>({ dir, maxBytes: 1e6, maxAgeMs: 60_000, fsync: false, onDrop: (r, n) => drops.push([r, n]) }, codec);
    assert.deepEqual(vals(await q2.peek(10)), [1, 2]);
    assert.deepEqual(drops, [['corrupt', 1]]);
  });
});

describe('pipelined replay (channel)', () => {
  const tmp = tempDir('mkpr-');
  after(() => tmp.cleanup());

  /** A writer that allows 2 writes in flight, each taking a few ms; fails the writes whose numbers are in `failOn`. */
  function slowWriter(failOn: Set<number>): SinkWriter & { calls: number[][]; got: number[]; maxConcurrent: number } {
    let running = 0;
    let n = 0;
    const w = {
      pipeline: 2,
      bulkBatchSize: 100,
      calls: [] as number[][],
      got: [] as number[],
      maxConcurrent: 0,
      async write(records: readonly SinkRecord[]) {
        const call = n++;
        w.calls.push(vals(records));
        running++;
        w.maxConcurrent = Math.max(w.maxConcurrent, running);
        try {
          await new Promise((r) => setTimeout(r, 5));
          if (failOn.has(call)) throw new SinkError(`write ${call} failed`);
          w.got.push(...vals(records));
        } finally {
          running--;
        }
      },
      async close() {},
    };
    return w;
  }

  async function fill(dir: string, n: number): Promise<void> {
    const q = await DiskQueue.open<SinkRecord>({ dir, maxBytes: 64 * 1024 * 1024, maxAgeMs: 60_000, fsync: false }, codec);
    q.append(range(0, n).map((i) => rec(i)));
    await q.close();
  }

  function channel(writer: SinkWriter, dir: string): SinkChannel {
    return new SinkChannel({
      spec: { kind: 'redis', addr: '127.0.0.1:1', db: 0 },
      sink: 'redis:test',
      writer,
      log,
      options: {
        queueCapacity: 1000,
        batchSize: 10,
        writeTimeoutMs: 5000,
        retryInitialMs: 10,
        retryMaxMs: 20,
        openBuffer: () => DiskQueue.open<SinkRecord>({ dir, maxBytes: 64 * 1024 * 1024, maxAgeMs: 60_000, fsync: false }, codec),
        hasBacklog: true,
      },
    });
  }

  it('replays the backlog in bulk batches with two writes in flight, in order, each record once', async () => {
    const dir = join(tmp.dir, 'ok');
    await fill(dir, 1000);
    const w = slowWriter(new Set());
    const ch = channel(w, dir);
    ch.start();
    await until(() => ch.status().delivered === 1000 && ch.status().bufferedRecords === 0, 10_000, 'replayed');
    assert.equal(w.maxConcurrent, 2, 'the next batch is written while the previous one is in flight');
    assert.ok(w.calls.every((c) => c.length === 100), `bulk batches of bulkBatchSize (${w.calls.map((c) => c.length).join(',')})`);
    assert.deepEqual(w.calls.flat(), range(0, 1000), 'batches start in queue order');
    assert.deepEqual(w.got, range(0, 1000));
    assert.equal(ch.status().state, 'up');
    await ch.close();
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.seg')), []);
  });

  it('closes promptly while replay writes hang, and keeps their records on disk for the next start', async () => {
    const dir = join(tmp.dir, 'close');
    await fill(dir, 1000);
    let started = 0;
    // Writes that never finish unless aborted; a long retry delay that shutdown must not wait out.
    const w: SinkWriter = {
      pipeline: 2,
      bulkBatchSize: 100,
      write: (_records, signal) =>
        new Promise((_, reject) => {
          started++;
          signal.addEventListener('abort', () => reject(new SinkError('aborted')), { once: true });
        }),
      async close() {},
    };
    const ch = new SinkChannel({
      spec: { kind: 'redis', addr: '127.0.0.1:1', db: 0 },
      sink: 'redis:test',
      writer: w,
      log,
      options: {
        queueCapacity: 1000,
        batchSize: 10,
        writeTimeoutMs: 60_000,
        retryInitialMs: 8000,
        retryMaxMs: 8000,
        openBuffer: () => DiskQueue.open<SinkRecord>({ dir, maxBytes: 64 * 1024 * 1024, maxAgeMs: 60_000, fsync: false }, codec),
        hasBacklog: true,
      },
    });
    ch.start();
    await until(() => started === 2, 5000, 'two writes in flight');
    const t0 = Date.now();
    await ch.close(100);
    assert.ok(Date.now() - t0 < 1500, `closed in ${Date.now() - t0} ms`);
    const q = await DiskQueue.open<SinkRecord>({ dir, maxBytes: 64 * 1024 * 1024, maxAgeMs: 60_000, fsync: false }, codec);
    assert.equal(q.size, 1000, 'nothing acknowledged, nothing lost');
    assert.deepEqual(vals(await q.peek(5)), range(0, 5));
    await q.close();
  });

  it('after a failed write, sends that batch and everything after it again: nothing lost, counted once', async () => {
    const dir = join(tmp.dir, 'fail');
    await fill(dir, 1000);
    // Write 3 (records 300-399) fails while write 4 (400-499) is in flight and succeeds.
    const w = slowWriter(new Set([3]));
    const ch = channel(w, dir);
    ch.start();
    await until(() => ch.status().bufferedRecords === 0 && ch.status().delivered >= 1000, 10_000, 'replayed');
    const st = ch.status();
    assert.equal(st.delivered, 1000, 'delivered counts acknowledged records once');
    assert.equal(st.writeErrors, 1);
    assert.deepEqual([...new Set(w.got)].sort((a, b) => a - b), range(0, 1000), 'every record stored');
    // What was stored twice is the batch that was in flight behind the failed one (at least once).
    const twice = w.got.filter((v, i) => w.got.indexOf(v) !== i);
    assert.deepEqual(twice, range(400, 100));
    // After the failure the replay starts again at the failed batch.
    const after3 = w.calls.slice(5).flat();
    assert.deepEqual(after3.slice(0, 200), range(300, 200));
    await ch.close();
  });
});
