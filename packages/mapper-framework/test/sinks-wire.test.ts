// SPDX-License-Identifier: Apache-2.0
// TDengine, InfluxDB 2 and OTLP have no server on this machine: their sinks are tested one
// layer down, end to end through the mapper against a local HTTP server that checks the exact
// REST / line-protocol / OTLP requests they send.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CaptureServer, crdYaml, recorder, startMapper, tempDir, until } from './sinks-helpers.ts';

describe('TDengine sink (REST requests checked by a local server)', () => {
  let server: CaptureServer;
  const secrets = tempDir('mksec-');
  before(async () => {
    server = await new CaptureServer().start();
    writeFileSync(join(secrets.dir, 'username'), 'tduser\n');
    writeFileSync(join(secrets.dir, 'password'), "p@ss:'word\n");
  });
  after(async () => {
    await server?.close();
    secrets.cleanup();
  });

  it('creates a valid super table per device and inserts escaped literals in one multi-table INSERT', async () => {
    let failOnce = true;
    server.respond = (r) => {
      if (r.body.startsWith('INSERT') && failOnce) {
        failOnce = false;
        // TDengine answers SQL errors with HTTP 200 and a non-zero code.
        return { status: 200, body: JSON.stringify({ code: 0x0b, desc: 'Unable to establish connection' }) };
      }
      // What taosAdapter answers to DDL and INSERT.
      return { status: 200, body: JSON.stringify({ code: 0, column_meta: [['affected_rows', 'INT', 4]], data: [[1]], rows: 1 }) };
    };
    const rec = recorder();
    const pm = `dbMethod:\n  TDEngine:\n    TDEngineClientConfig:\n      addr: 127.0.0.1:${server.port}\n      dbName: plant_db`;
    const rig = await startMapper(
      crdYaml(
        'line-7',
        [
          { name: 'temp', pushMethod: pm },
          { name: 'Motor.Status', type: 'STRING', fixed: "it's \\ok", pushMethod: pm },
        ],
        { namespace: 'factory-a' },
      ),
      { consumers: [rec], configExtra: `data_plane:\n  credentials_dir: ${secrets.dir}\n` },
    );
    try {
      await until(() => server.requests.filter((r) => r.body.startsWith('INSERT')).length >= 3, 10_000, 'inserts');
      const first = server.requests[0]!;
      assert.equal(first.method, 'POST');
      assert.equal(first.url, '/rest/sql');
      assert.equal(first.headers['authorization'], `Basic ${Buffer.from("tduser:p@ss:'word").toString('base64')}`);
      assert.equal(
        first.body,
        'CREATE STABLE IF NOT EXISTS plant_db.factory_a__line_7 (ts TIMESTAMP, deviceid VARCHAR(1024), propertyname VARCHAR(1024), data VARCHAR(1024), type VARCHAR(64)) TAGS (location VARCHAR(1024))',
      );
      assert.equal(server.requests.filter((r) => r.body.startsWith('CREATE')).length, 1, 'the super table is created once');
      const inserts = server.requests.filter((r) => r.body.startsWith('INSERT'));
      for (const ins of inserts) {
        // Every row of the batch, grouped per sub table; no raw text outside quotes.
        assert.match(ins.body, /^INSERT INTO( plant_db\.[a-z0-9_]+ USING plant_db\.factory_a__line_7 TAGS \('[^']*'\) VALUES( \(\d+, '[^']*', '[^']*', '(?:[^'\\]|\\.)*', '[a-z]+'\))+)+$/);
      }
      // One multi-table INSERT per batch: the two properties read in one tick go in the same statement.
      assert.ok(inserts.some((r) => r.body.includes('__temp USING') && r.body.includes('__motor_status_')), 'rows of several sub tables in one INSERT');
      const all = inserts.map((r) => r.body).join('\n');
      assert.ok(all.includes(" plant_db.factory_a__line_7__temp USING plant_db.factory_a__line_7 TAGS ('temp') VALUES ("));
      // Upper case in "Motor.Status" is folded, so a hash keeps the name unique.
      assert.match(all, / plant_db\.factory_a__line_7__motor_status_[0-9a-f]{8} USING plant_db\.factory_a__line_7 TAGS \('Motor\.Status'\) VALUES \(\d+, 'factory-a\/line-7', 'Motor\.Status', 'it\\'s \\\\ok', 'string'\)/);
      const s = rec.samples.find((x) => x.property === 'temp')!;
      assert.ok(all.includes(`(${s.timestamp}, 'factory-a/line-7', 'temp', '${s.text}', 'int')`), 'the first temp sample, with its timestamp in ms');
      assert.equal(rig.mapper.sinks()[0]!.writeErrors, 1, 'the refused INSERT was retried');
    } finally {
      server.respond = () => ({ status: 204 });
      await rig.stop();
    }
  });
});

describe('InfluxDB2 sink (line protocol checked by a local server)', () => {
  let server: CaptureServer;
  before(async () => {
    server = await new CaptureServer().start();
  });
  after(() => server?.close());

  it('writes line-protocol batches with org, bucket, ms precision and the TOKEN', async () => {
    const tokenFile = join(tempDir('mktok-').dir, 'token');
    writeFileSync(tokenFile, 'tok-123\n');
    process.env['TOKEN_FILE'] = tokenFile;
    const pm = (field: string): string =>
      `dbMethod:\n  influxdb2:\n    influxdb2ClientConfig:\n      url: http://127.0.0.1:${server.port}\n      org: acme\n      bucket: plant\n    influxdb2DataConfig:\n      measurement: boiler room\n      tag:\n        site: north,1\n        line: "a=b"\n      fieldKey: ${field}`;
    const rig = await startMapper(
      crdYaml('boiler', [
        { name: 'temp', pushMethod: pm('temperature') },
        { name: 'state', type: 'STRING', fixed: 'say "hi"', pushMethod: pm('state') },
        { name: 'ratio', type: 'DOUBLE', fixed: '0.25', pushMethod: pm('ratio') },
      ]),
    );
    try {
      await until(() => server.requests.length >= 2, 10_000, 'writes');
      const r = server.requests[0]!;
      const url = new URL(r.url, server.url);
      assert.equal(url.pathname, '/api/v2/write');
      assert.deepEqual(Object.fromEntries(url.searchParams), { org: 'acme', bucket: 'plant', precision: 'ms' });
      assert.equal(r.headers['authorization'], 'Token tok-123');
      assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
      const lines = server.requests.flatMap((x) => x.body.split('\n'));
      // Batches: the three properties read in one tick go out in one write.
      assert.ok(server.requests.some((x) => x.body.split('\n').length >= 3), 'several lines per request');
      const temp = lines.find((l) => l.includes(' temperature='))!;
      assert.match(temp, /^boiler\\ room,line=a\\=b,site=north\\,1 temperature=\d+i \d{13}$/);
      assert.ok(lines.some((l) => /^boiler\\ room,line=a\\=b,site=north\\,1 state="say \\"hi\\"" \d{13}$/.test(l)), lines.join('\n'));
      assert.ok(lines.some((l) => /^boiler\\ room,line=a\\=b,site=north\\,1 ratio=0\.25 \d{13}$/.test(l)));
    } finally {
      delete process.env['TOKEN_FILE'];
      await rig.stop();
    }
  });

  it('writes every value as a string field with data_plane.influxdb2.field_type: string (upstream)', async () => {
    const pm = `dbMethod:\n  influxdb2:\n    influxdb2ClientConfig:\n      url: http://127.0.0.1:${server.port}/\n      org: o\n      bucket: b2\n    influxdb2DataConfig:\n      measurement: m\n      fieldKey: v`;
    const rig = await startMapper(crdYaml('strdev', [{ name: 'temp', pushMethod: pm }]), { configExtra: 'data_plane:\n  influxdb2:\n    field_type: string\n' });
    try {
      await until(() => server.requests.some((r) => r.url.includes('bucket=b2')), 10_000, 'write');
      const body = server.requests.find((r) => r.url.includes('bucket=b2'))!.body;
      assert.match(body.split('\n')[0]!, /^m v="\d+" \d{13}$/);
    } finally {
      await rig.stop();
    }
  });
});

describe('OTel sink (OTLP/HTTP JSON checked by a local server)', () => {
  let server: CaptureServer;
  before(async () => {
    server = await new CaptureServer().start();
    server.respond = () => ({ status: 200, body: '{}' });
  });
  after(() => server?.close());

  it('exports one gauge per property with resource device.id=<ns>/<name> and the samples own timestamps', async () => {
    const rec = recorder();
    const rig = await startMapper(
      crdYaml(
        'pump',
        [
          { name: 'flow', pushMethod: `otel:\n  endpointURL: http://127.0.0.1:${server.port}` },
          { name: 'running', type: 'BOOLEAN', pushMethod: `otel:\n  endpointURL: http://127.0.0.1:${server.port}` },
        ],
        { namespace: 'water' },
      ),
      { consumers: [rec] },
    );
    try {
      await until(() => server.requests.length >= 3, 10_000, 'exports');
      const r = server.requests[0]!;
      assert.equal(r.method, 'POST');
      assert.equal(r.url, '/v1/metrics', 'OTLP default path when the endpoint has none');
      assert.equal(r.headers['content-type'], 'application/json');
      type Req = { resourceMetrics: { resource: { attributes: { key: string; value: { stringValue: string } }[] }; scopeMetrics: { metrics: { name: string; gauge: { dataPoints: { timeUnixNano: string; asDouble: number }[] } }[] }[] }[] };
      const points: { name: string; t: string; v: number }[] = [];
      for (const req of server.requests) {
        const body = JSON.parse(req.body) as Req;
        for (const rm of body.resourceMetrics) {
          const attrs = Object.fromEntries(rm.resource.attributes.map((a) => [a.key, a.value.stringValue]));
          assert.deepEqual(attrs, { 'service.name': 'dp-mapper', 'device.id': 'water/pump' });
          for (const m of rm.scopeMetrics[0]!.metrics) for (const dp of m.gauge.dataPoints) points.push({ name: m.name, t: dp.timeUnixNano, v: dp.asDouble });
        }
      }
      const flow = points.filter((p) => p.name === 'flow');
      assert.ok(flow.length >= 2);
      const s = rec.samples.find((x) => x.property === 'flow' && x.text === String(flow[0]!.v))!;
      assert.equal(flow[0]!.t, `${s.timestamp}000000`);
      const running = points.filter((p) => p.name === 'running');
      assert.ok(running.length > 0 && running.every((p) => p.v === 0 || p.v === 1), 'booleans as 0/1');
    } finally {
      await rig.stop();
    }
  });
});

