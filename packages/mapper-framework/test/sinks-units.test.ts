// SPDX-License-Identifier: Apache-2.0
// Data-plane building blocks: the disk buffer, the channel's failure handling, push-method
// parsing, credentials, and the upstream byte formats.
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createLogger, parseMapperConfig } from '@mapperkit/framework';
import { DiskQueue } from '../src/sinks/disk-queue.ts';
import { SinkChannel } from '../src/sinks/channel.ts';
import { SinkError, type SinkRecord, type SinkWriter } from '../src/sinks/types.ts';
import { parsePushMethod } from '../src/sinks/targets.ts';
import { lookupCredential } from '../src/sinks/credentials.ts';
import { dataModelJson, goJson, goLocalTime, goRfc3339 } from '../src/sinks/data-model.ts';
import { influxLine } from '../src/sinks/influxdb2.ts';
import { tdIdentifier, tdString } from '../src/sinks/tdengine.ts';
import { mysqlTable } from '../src/sinks/mysql.ts';
import { httpPushUrl } from '../src/sinks/http.ts';
import { CaptureServer, crdYaml, freePort, sleep, startMapper, tempDir, until } from './sinks-helpers.ts';

const log = createLogger({ level: 'silent' });
const rec = (i: number, ts = Date.now()): SinkRecord => ({ ns: 'default', dev: 'd', prop: 'p', type: 'int', val: String(i), ts });

describe('disk buffer', () => {
  const tmp = tempDir('mkdq-');
  after(() => tmp.cleanup());

  it('replays in order across segments, acknowledges, and resumes after a restart at the cursor', async () => {
    const dir = join(tmp.dir, 'a');
    const q = await DiskQueue.open<SinkRecord>({ dir, maxBytes: 200_000, maxAgeMs: 60_000, fsync: false });
    for (let i = 0; i < 1000; i++) q.append([rec(i)]);
    await q.flush();
    assert.ok(readdirSync(dir).filter((f) => f.endsWith('.seg')).length > 1, 'several segments');
    assert.equal(q.size, 1000);
    const first = await q.peek(300);
    assert.deepEqual(first.map((r) => r.val), Array.from({ length: 300 }, (_, i) => String(i)));
    await q.ack(250);
    await q.close();
    // A new process: continues after the last acknowledged record.
    const q2 = await DiskQueue.open<SinkRecord>({ dir, maxBytes: 200_000, maxAgeMs: 60_000, fsync: false });
    const out: string[] = [];
    for (;;) {
      const b = await q2.peek(97);
      if (b.length === 0) break;
      out.push(...b.map((r) => r.val));
      await q2.ack(b.length);
    }
    assert.deepEqual(out, Array.from({ length: 750 }, (_, i) => String(i + 250)));
    assert.equal(q2.size, 0);
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.seg')), [], 'segments deleted once delivered');
  });

  it('drops the oldest segments at the byte cap and reports how many records went', async () => {
    const drops: [string, number][] = [];
    const q = await DiskQueue.open<SinkRecord>({ dir: join(tmp.dir, 'b'), maxBytes: 40_000, maxAgeMs: 60_000, fsync: false, onDrop: (r, n) => drops.push([r, n]) });
    for (let i = 0; i < 2000; i++) {
      q.append([rec(i)]);
      if (i % 100 === 0) await q.flush();
    }
    await q.flush();
    assert.ok(q.bytes <= 40_000, `under the cap: ${q.bytes}`);
    const dropped = drops.filter(([r]) => r === 'cap').reduce((a, [, n]) => a + n, 0);
    const b = await q.peek(5000);
    const left: SinkRecord[] = [...b];
    await q.ack(b.length);
    for (;;) {
      const more = await q.peek(5000);
      if (more.length === 0) break;
      left.push(...more);
      await q.ack(more.length);
    }
    assert.equal(dropped + left.length, 2000, `dropped ${dropped} + kept ${left.length}`);
    assert.equal(left.at(-1)!.val, '1999', 'the newest records are kept');
    assert.deepEqual(left.map((r) => Number(r.val)), left.map((_, i) => Number(left[0]!.val) + i), 'kept records are contiguous');
  });

  for (const maxBytes of [256 * 1024 * 1024, 400_000]) {
    it(`loses nothing while appends and replay run concurrently (segment rotation and deletion races, cap ${maxBytes})`, async () => {
      const q = await DiskQueue.open<SinkRecord>({ dir: join(tmp.dir, `race-${maxBytes}`), maxBytes, maxAgeMs: 1e9, fsync: false });
      let n = 0;
      const producer = setInterval(() => {
        q.append(Array.from({ length: 8 }, () => rec(n++)));
      }, 2);
      const out: number[] = [];
      const end = Date.now() + 2000;
      let produced = -1;
      for (;;) {
        if (produced < 0 && Date.now() > end) {
          clearInterval(producer);
          produced = n;
        }
        const b = await q.peek(500);
        if (b.length === 0) {
          if (produced >= 0 && q.size === 0) break;
          await sleep(1);
          continue;
        }
        await sleep(Math.random() * 3);
        out.push(...b.map((r) => Number(r.val)));
        await q.ack(b.length);
      }
      assert.ok(produced > 1000);
      assert.deepEqual(out, Array.from({ length: produced }, (_, i) => i));
    });
  }

  it('skips records older than the maximum age and a torn last line', async () => {
    const dir = join(tmp.dir, 'c');
    const drops: [string, number][] = [];
    const q = await DiskQueue.open<SinkRecord>({ dir, maxBytes: 1_000_000, maxAgeMs: 1000, fsync: false, onDrop: (r, n) => drops.push([r, n]) });
    q.append([rec(1, Date.now() - 5000), rec(2, Date.now() - 4000), rec(3), rec(4)]);
    await q.close();
    const seg = readdirSync(dir).find((f) => f.endsWith('.seg'))!;
    appendFileSync(join(dir, seg), '{"ns":"default","dev":"d","pro'); // crash in the middle of a write
    const q2 = await DiskQueue.open<SinkRecord>({ dir, maxBytes: 1_000_000, maxAgeMs: 1000, fsync: false, onDrop: (r, n) => drops.push([r, n]) });
    const b = await q2.peek(10);
    assert.deepEqual(b.map((r) => r.val), ['3', '4']);
    assert.deepEqual(drops, [['corrupt', 1], ['age', 2]]);
  });
});

/** A writer whose behaviour the test sets per call. */
function fakeWriter(plan: (records: readonly SinkRecord[]) => void | Promise<void>): SinkWriter & { got: string[] } {
  const got: string[] = [];
  return {
    got,
    async write(records) {
      await plan(records);
      got.push(...records.map((r) => r.val));
    },
    async close() {},
  };
}

function channel(writer: SinkWriter, openBuffer: () => Promise<DiskQueue<SinkRecord>>, queueCapacity = 100): SinkChannel {
  return new SinkChannel({
    spec: { kind: 'http', url: 'http://x', timeoutMs: 100 },
    sink: 'http:http://x',
    writer,
    log,
    options: { queueCapacity, batchSize: 50, writeTimeoutMs: 500, retryInitialMs: 10, retryMaxMs: 50, openBuffer, hasBacklog: false },
  });
}

describe('sink channel', () => {
  const tmp = tempDir('mkch-');
  after(() => tmp.cleanup());

  it('isolates and drops the one record a server refuses inside a batch; the others are delivered in order', async () => {
    const w = fakeWriter((records) => {
      const bad = records.findIndex((r) => r.val === '7');
      if (bad >= 0) throw new SinkError('HTTP 422', { permanent: true, delivered: 0 });
    });
    const ch = channel(w, () => DiskQueue.open({ dir: join(tmp.dir, 'x'), maxBytes: 1e6, maxAgeMs: 1e6, fsync: false }));
    ch.start();
    for (let i = 0; i < 20; i++) ch.push(rec(i));
    await until(() => ch.status().delivered === 19, 5000, 'delivery');
    assert.deepEqual(w.got, Array.from({ length: 20 }, (_, i) => String(i)).filter((v) => v !== '7'));
    assert.equal(ch.status().dropped.rejected, 1);
    await ch.close();
  });

  it('falls back to a bounded memory buffer when the disk buffer cannot be opened, and says so', async () => {
    let down = true;
    const w = fakeWriter(() => {
      if (down) throw new SinkError('connection refused');
    });
    // A path below a regular file cannot be created, even by root.
    const file = join(tmp.dir, 'not-a-dir');
    writeFileSync(file, '');
    const ch = channel(w, () => DiskQueue.open({ dir: join(file, 'buffer'), maxBytes: 1e6, maxAgeMs: 1e6, fsync: false }), 50);
    ch.start();
    for (let i = 0; i < 120; i++) ch.push(rec(i));
    await until(() => ch.status().dropped.overflow > 0, 5000, 'overflow');
    assert.equal(ch.status().state, 'dropping');
    down = false;
    await until(() => ch.status().queued === 0 && w.got.length > 0, 5000, 'recovered');
    const got = w.got.map(Number);
    assert.equal(got.at(-1), 119, 'the newest samples are kept');
    assert.ok(got.length <= 51 && got.length >= 49, `about queue_capacity kept: ${got.length}`);
    assert.deepEqual(got, got.map((_, i) => got[0]! + i), 'in order');
    await ch.close();
  });
});

describe('buffers survive a restart', () => {
  it('a new mapper replays what the previous one buffered, even with no device naming the sink', async () => {
    const port = await freePort();
    const { dir: bufferDir, cleanup } = tempDir('mkbuf-');
    const yaml = crdYaml('gone', [{ name: 'v', collectCycle: 50, reportCycle: 50, pushMethod: `http:\n  hostName: http://127.0.0.1\n  port: ${port}\n  requestPath: /later` }]);
    const first = await startMapper(yaml, { bufferDir, configExtra: 'data_plane:\n  retry_initial_ms: 50\n  retry_max_ms: 100\n  queue_capacity: 6\n' });
    await until(() => (first.mapper.sinks()[0]?.bufferedRecords ?? 0) >= 10, 10_000, 'buffered while nothing listens');
    await first.ec.removeDevice('default', 'gone');
    const sent = first.mapper.sinks()[0]!.accepted;
    await first.stop();
    const dirs = readdirSync(bufferDir);
    assert.equal(dirs.length, 1);
    assert.ok(existsSync(join(bufferDir, dirs[0]!, 'channel.json')));
    assert.ok(!readFileSync(join(bufferDir, dirs[0]!, 'channel.json'), 'utf8').includes('password'));
    const server = await new CaptureServer().start(port);
    const second = await startMapper(crdYaml('other', [{ name: 'x' }]), { bufferDir });
    try {
      await until(() => server.requests.length >= sent, 10_000, `${sent} replayed requests`);
      const values = server.requests.map((r) => Number(new URLSearchParams(r.body).get('v')));
      assert.deepEqual(values, values.map((_, i) => i + 1), 'every buffered sample, in order');
      await sleep(200);
      assert.equal(server.requests.length, sent, 'nothing twice');
    } finally {
      await second.stop();
      await server.close();
      cleanup();
    }
  });
});

describe('per-sink buffer limits', () => {
  it('data_plane.<kind>.buffer_max_bytes caps that kind of sink only; the others keep the global cap', async () => {
    const [httpPort, mqttPort] = [await freePort(), await freePort()];
    const yaml = crdYaml('capped', [
      { name: 'h', collectCycle: 5, reportCycle: 5, pushMethod: `http:\n  hostName: http://127.0.0.1\n  port: ${httpPort}\n  requestPath: /nobody` },
      { name: 'm', collectCycle: 5, reportCycle: 5, pushMethod: `mqtt:\n  address: tcp://127.0.0.1:${mqttPort}\n  topic: nobody/m\n  qos: 1` },
    ]);
    const rig = await startMapper(yaml, { configExtra: 'data_plane:\n  queue_capacity: 5\n  retry_initial_ms: 50\n  retry_max_ms: 100\n  http:\n    buffer_max_bytes: 30000\n' });
    try {
      const of = (kind: string) => rig.mapper.sinks().find((x) => x.kind === kind);
      await until(() => (of('http')?.dropped.cap ?? 0) > 0 && (of('mqtt')?.bufferedBytes ?? 0) > 90_000, 30_000, 'http capped while mqtt keeps buffering');
      assert.ok(of('http')!.bufferedBytes <= 30_000, `http buffer under its own cap: ${of('http')!.bufferedBytes}`);
      assert.equal(of('mqtt')!.dropped.cap, 0, 'mqtt keeps the global 256 MB cap');
    } finally {
      await rig.stop();
    }
  });

  it('config: per-kind overrides are optional, validated and named in errors', () => {
    const base = 'grpc_server:\n  socket_path: /tmp/x.sock\ncommon:\n  name: n\n  protocol: p\n';
    const { config: c } = parseMapperConfig(`${base}data_plane:\n  redis:\n    buffer_max_age_ms: 60000\n  tdengine:\n    buffer_max_bytes: 1048576\n`);
    assert.equal(c.data_plane.redis.buffer_max_age_ms, 60_000);
    assert.equal(c.data_plane.tdengine.buffer_max_bytes, 1_048_576);
    assert.equal(c.data_plane.mqtt.buffer_max_bytes, undefined);
    assert.deepEqual(parseMapperConfig(`${base}data_plane:\n  otel:\n    buffer_max_bytes: 5\n`).unknownKeys, [], 'known keys, not warned about');
    assert.throws(() => parseMapperConfig(`${base}data_plane:\n  mysql:\n    buffer_max_bytes: -1\n`), /data_plane\.mysql\.buffer_max_bytes/);
  });
});

describe('buffer directory lock', () => {
  it('never shares a buffer directory with another live process: the second mapper buffers in memory only', async () => {
    const { dir: bufferDir, cleanup } = tempDir('mklock-');
    const other = spawn('sleep', ['30']);
    writeFileSync(join(bufferDir, '.lock'), String(other.pid));
    const port = await freePort();
    const rig = await startMapper(crdYaml('locked', [{ name: 'v', collectCycle: 20, reportCycle: 20, pushMethod: `http:\n  hostName: http://127.0.0.1\n  port: ${port}\n  requestPath: /x` }]), {
      bufferDir,
      configExtra: 'data_plane:\n  queue_capacity: 5\n',
    });
    try {
      await until(() => (rig.mapper.sinks()[0]?.dropped.overflow ?? 0) > 0, 10_000, 'memory-only overflow');
      assert.equal(rig.mapper.sinks()[0]!.state, 'dropping');
      assert.deepEqual(readdirSync(bufferDir), ['.lock'], 'nothing written next to the other process');
      assert.equal(readFileSync(join(bufferDir, '.lock'), 'utf8'), String(other.pid));
    } finally {
      await rig.stop();
      other.kill();
      cleanup();
    }
  });
});

describe('push methods, credentials and formats', () => {
  it('names device, property and key of an unusable push method and keeps the usable ones', () => {
    const { targets, problems } = parsePushMethod(
      {
        http: { hostname: '', port: 80n, requestpath: '/x', timeout: 0n },
        mqtt: { address: 'tcp://b:1883', topic: 'a/#', qos: 1, retained: false },
        dbMethod: { redis: { redisClientConfig: { addr: '127.0.0.1:6379', db: 0, poolsize: 0, minIdleConns: 0 } }, tdengine: { tdEngineClientConfig: { addr: 'h:6041', dbname: 'bad-name' } } },
      },
      { device: 'ns/dev', property: 'temp' },
    );
    assert.deepEqual(targets.map((t) => t.spec.kind), ['redis']);
    assert.deepEqual(problems.map((p) => p.key), ['pushMethod.http.hostName', 'pushMethod.mqtt.topic', 'pushMethod.dbMethod.TDEngine.TDEngineClientConfig.dbName']);
    assert.match(problems[0]!.message, /^device ns\/dev property temp: pushMethod\.http\.hostName: required/);
  });

  it('joins the HTTP URL like upstream (hostName with scheme, port, requestPath)', () => {
    assert.equal(httpPushUrl('http://10.0.0.5', 8080, '/data'), 'http://10.0.0.5:8080/data');
    assert.equal(httpPushUrl('https://h.example', 0, 'in'), 'https://h.example/in');
    assert.equal(httpPushUrl('10.0.0.5', 80, '/'), 'http://10.0.0.5/');
  });

  it('finds credentials in credentials_dir, then <NAME>_FILE, then <NAME>; never returns the source value in the source', () => {
    const t = tempDir('mkcred-');
    writeFileSync(join(t.dir, 'password'), 'from-dir\n');
    writeFileSync(join(t.dir, 'tok'), 'from-file\r\n');
    assert.deepEqual(lookupCredential('PASSWORD', t.dir, { PASSWORD: 'env' }), { value: 'from-dir', source: `file:${join(t.dir, 'password')}` });
    assert.deepEqual(lookupCredential('TOKEN', t.dir, { TOKEN_FILE: join(t.dir, 'tok'), TOKEN: 'env' }), { value: 'from-file', source: `file:${join(t.dir, 'tok')}` });
    assert.deepEqual(lookupCredential('USERNAME', '', { USERNAME: 'root' }), { value: 'root', source: 'env:USERNAME' });
    assert.deepEqual(lookupCredential('USERNAME', '', {}), { value: undefined, source: 'none' });
    t.cleanup();
  });

  it('writes the DataModel and other JSON exactly as Go encoding/json does', () => {
    assert.equal(
      dataModelJson({ dev: 'd', prop: 'p', ns: 'n', val: '<a&b>\u2028"\\\n', type: 'string', ts: 1700000000123 }),
      '{"DeviceName":"d","PropertyName":"p","Namespace":"n","Value":"\\u003ca\\u0026b\\u003e\\u2028\\"\\\\\\n","Type":"string","TimeStamp":1700000000123}',
    );
    assert.equal(goJson({ a: [1, 'x'], b: undefined, c: null, d: true }), '{"a":[1,"x"],"c":null,"d":true}');
    assert.equal(goJson('\ud800x'), '"\ufffdx"', 'invalid UTF-16 becomes U+FFFD like invalid UTF-8 in Go');
    assert.match(goLocalTime(Date.now()), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    assert.match(goRfc3339(Date.now()), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$/);
  });

  it('escapes line protocol, TDengine literals and identifiers, MySQL table names', () => {
    const r: SinkRecord = { ns: 'n', dev: 'd', prop: 'p', type: 'string', val: 'a"b\\c', ts: 5, route: { measurement: 'm,1 x', tags: { 'k y': 'v=1', z: '' }, fieldKey: 'f,k' } };
    assert.equal(influxLine(r, 'typed'), 'm\\,1\\ x,k\\ y=v\\=1 f\\,k="a\\"b\\\\c" 5');
    assert.equal(influxLine({ ...r, type: 'int', val: '12' }, 'typed'), 'm\\,1\\ x,k\\ y=v\\=1 f\\,k=12i 5');
    assert.equal(influxLine({ ...r, type: 'float', val: 'NaN' }, 'typed'), 'm\\,1\\ x,k\\ y=v\\=1 f\\,k="NaN" 5', 'non-finite numbers are not valid floats');
    assert.equal(tdString("it's \\ here"), "'it\\'s \\\\ here'");
    assert.equal(tdIdentifier('default__my-device'), 'default__my_device');
    assert.match(tdIdentifier('9Lives/x y'), /^t_9lives_x_y_[0-9a-f]{8}$/);
    assert.notEqual(tdIdentifier('Temp'), tdIdentifier('temp'));
    assert.ok(tdIdentifier('x'.repeat(300)).length <= 192);
    assert.equal(mysqlTable({ ns: 'default', dev: 'boiler', prop: 'temp' }), 'default/boiler/temp');
    const long = mysqlTable({ ns: 'default', dev: 'b'.repeat(60), prop: 'temperature' });
    assert.equal(long.length, 64);
    assert.notEqual(long, mysqlTable({ ns: 'default', dev: 'b'.repeat(60), prop: 'temperaturf' }));
  });
});
