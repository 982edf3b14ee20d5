// SPDX-License-Identifier: Apache-2.0
// The REST API of a running mapper: upstream routes byte for byte, JSON writes, errors, auth,
// health. Values come from the last-value cache (the device is not read per request).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CounterState, crdYaml, type MapperRig, startMapper, tempDir, until } from './sinks-helpers.ts';

const RFC3339 = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(?:Z|[+-]\\d\\d:\\d\\d)';
const BASE = `"apiVersion":"v1","statusCode":200,"timeStamp":"${RFC3339}"`;

const YAML = crdYaml(
  'boiler',
  [
    { name: 'temp', collectCycle: 60_000, reportCycle: 60_000 },
    { name: 'setpoint', access: 'ReadWrite', collectCycle: 60_000, reportCycle: 60_000 },
    { name: 'mode', type: 'STRING', access: 'ReadWrite', fixed: 'auto', collectCycle: 60_000, reportCycle: 60_000 },
  ],
  { methods: [{ name: 'setTemp', propertyNames: ['setpoint'] }] },
);

async function get(rig: MapperRig, path: string, init: RequestInit = {}): Promise<{ status: number; type: string | null; text: string; json: Record<string, unknown>; headers: Headers }> {
  const a = rig.mapper.restAddress()!;
  const res = await fetch(`http://${a.host}:${a.port}${path}`, init);
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON (e.g. /metrics)
  }
  return { status: res.status, type: res.headers.get('content-type'), text, json, headers: res.headers };
}

describe('REST API (upstream routes)', () => {
  let rig: MapperRig;
  const state: CounterState = { reads: 0, failing: false, writes: [] };
  before(async () => {
    rig = await startMapper(YAML, { driverState: state });
    await until(() => rig.mapper.device('default/boiler')?.values.get('temp')?.sample !== undefined, 5000, 'first read');
  });
  after(() => rig?.stop());

  it('listens on 127.0.0.1 by default', () => {
    assert.equal(rig.mapper.restAddress()?.host, '127.0.0.1');
  });

  it('GET /api/v1/ping: upstream bytes, application/json, X-Correlation-ID echoed', async () => {
    const r = await get(rig, '/api/v1/ping', { headers: { 'X-Correlation-ID': 'abc-1' } });
    assert.equal(r.status, 200);
    assert.equal(r.type, 'application/json');
    assert.equal(r.headers.get('x-correlation-id'), 'abc-1');
    assert.match(r.text, new RegExp(`^\\{${BASE},"Message":"This is v1 API, the server is running normally\\."\\}$`));
  });

  it('GET /api/v1/device/{ns}/{name}/{property}: the cached value as upstream DataModel, without reading the device', async () => {
    const readsBefore = state.reads;
    const sample = rig.mapper.device('default/boiler')!.values.get('temp')!.sample!;
    for (let i = 0; i < 5; i++) {
      const r = await get(rig, '/api/v1/device/default/boiler/temp');
      assert.equal(r.status, 200);
      assert.match(
        r.text,
        new RegExp(`^\\{${BASE},"Data":\\{"DeviceName":"boiler","PropertyName":"temp","Namespace":"default","Value":"${sample.text}","Type":"int","TimeStamp":${sample.timestamp}\\}\\}$`),
      );
    }
    assert.equal(state.reads, readsBefore, 'no device read per request');
  });

  it('GET /api/v1/devicemethod/{ns}/{name}: methods with the upstream Path template', async () => {
    const r = await get(rig, '/api/v1/devicemethod/default/boiler');
    assert.equal(r.status, 200);
    assert.match(
      r.text,
      new RegExp(`^\\{${BASE},"Data":\\{"Methods":\\[\\{"Name":"setTemp","Path":"/api/v1/devicemethod/default/boiler/setTemp/\\{propertyName\\}/\\{data\\}","Parameters":\\[\\{"PropertyName":"setpoint","ValueType":"int"\\}\\]\\}\\]\\}\\}$`),
    );
  });

  it('GET /api/v1/devicemethod/{ns}/{name}/{method}/{property}/{data}: writes through the driver (upstream GET write)', async () => {
    const r = await get(rig, '/api/v1/devicemethod/default/boiler/setTemp/setpoint/42');
    assert.equal(r.status, 200);
    assert.match(r.text, new RegExp(`^\\{${BASE},"Message":"Write data 42 to device default/boiler successfully\\."\\}$`));
    assert.deepEqual(state.writes!.at(-1), { device: 'default/boiler', property: 'setpoint', value: 42 });
  });

  it('GET /api/v1/meta/model/{ns}/{name}: the flattened model', async () => {
    const r = await get(rig, '/api/v1/meta/model/default/boiler');
    assert.equal(r.status, 200);
    const p = (name: string, type: string, access: string): string => `\\{"name":"${name}","dataType":"${type}","accessMode":"${access}","minimum":"0","maximum":"1000000","unit":"u"\\}`;
    assert.match(
      r.text,
      new RegExp(`^\\{${BASE},"id":"default/boiler-model","name":"boiler-model","namespace":"default","properties":\\[${p('temp', 'INT', 'ReadOnly')},${p('setpoint', 'INT', 'ReadWrite')},${p('mode', 'STRING', 'ReadWrite')}\\]\\}$`),
    );
  });

  it('GET /api/v1/database/{ns}/{name}: 503 as upstream, but JSON', async () => {
    const r = await get(rig, '/api/v1/database/default/boiler');
    assert.equal(r.status, 503);
    assert.equal(r.json['Message'], 'The database is not enabled. Please configure mapper and try again');
  });
});

describe('REST API (errors, JSON writes, all properties, health)', () => {
  let rig: MapperRig;
  const state: CounterState = { reads: 0, failing: false, writes: [] };
  before(async () => {
    rig = await startMapper(YAML, { driverState: state });
    await until(() => rig.mapper.device('default/boiler')?.values.get('mode')?.sample !== undefined, 5000, 'first read');
  });
  after(() => rig?.stop());

  const cases: [string, string, number, string, RegExp][] = [
    ['unknown device', '/api/v1/device/default/nope/temp', 404, 'DeviceNotFound', /^Get device data error: device default\/nope not found$/],
    ['unknown property', '/api/v1/device/default/boiler/nope', 404, 'PropertyNotFound', /^Get device data error: device default\/boiler has no property nope$/],
    ['unknown method', '/api/v1/devicemethod/default/boiler/nope/setpoint/1', 404, 'MethodNotFound', /has no method nope/],
    ['property outside the method', '/api/v1/devicemethod/default/boiler/setTemp/mode/x', 404, 'PropertyNotFound', /does not include property mode/],
    ['not a number', '/api/v1/devicemethod/default/boiler/setTemp/setpoint/abc', 409, 'WriteRejected', /^Write device data error: .*"abc" is not an integer/],
    ['above the maximum', '/api/v1/devicemethod/default/boiler/setTemp/setpoint/2000000', 409, 'WriteRejected', /above the maximum 1000000/],
    ['unknown route', '/api/v2/ping', 404, 'NotFound', /no route GET \/api\/v2\/ping/],
    ['bad percent-encoding', '/api/v1/device/default/boiler/%E0%A4%A', 400, 'BadRequest', /malformed percent-encoding/],
  ];
  for (const [what, path, status, kind, message] of cases) {
    it(`${what} → ${status} with a JSON error`, async () => {
      const r = await get(rig, path);
      assert.equal(r.status, status);
      assert.equal(r.type, 'application/json');
      assert.equal(r.json['statusCode'], status);
      assert.equal((r.json['Error'] as { kind: string }).kind, kind);
      assert.match(String(r.json['Message']), message);
    });
  }

  it('wrong method → 405', async () => {
    const r = await get(rig, '/api/v1/ping', { method: 'DELETE' });
    assert.equal(r.status, 405);
  });

  it('PUT /api/v1/device/{ns}/{name}/{property} writes a JSON value and answers with the written value', async () => {
    const r = await get(rig, '/api/v1/device/default/boiler/mode', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value: 'manual "x"' }) });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json['Message'], 'Write data manual "x" to device default/boiler successfully.');
    assert.deepEqual({ ...(r.json['Data'] as object), TimeStamp: 0 }, { DeviceName: 'boiler', PropertyName: 'mode', Namespace: 'default', Value: 'manual "x"', Type: 'string', TimeStamp: 0 });
    assert.deepEqual(state.writes!.at(-1), { device: 'default/boiler', property: 'mode', value: 'manual "x"' });
  });

  it('POST /api/v1/devicemethod/{ns}/{name}/{method}/{property} writes through a method; numbers and strings accepted', async () => {
    for (const value of [17, '18']) {
      const r = await get(rig, '/api/v1/devicemethod/default/boiler/setTemp/setpoint', { method: 'POST', body: JSON.stringify({ value }) });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(state.writes!.at(-1), { device: 'default/boiler', property: 'setpoint', value: Number(value) });
    }
  });

  it('answers a write whose client half-closes right after sending (FIN after the request, as nc -N does)', async () => {
    const a = rig.mapper.restAddress()!;
    const post = (value: string, halfClose: boolean): Promise<string> =>
      new Promise((resolve) => {
        const body = JSON.stringify({ value });
        const req = `PUT /api/v1/device/default/boiler/mode HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
        const s = connect(a.port, a.host);
        let out = '';
        const t = setTimeout(() => s.destroy(), 5000);
        s.on('connect', () => (halfClose ? s.end(req) : s.write(req)));
        s.on('data', (d: Buffer) => (out += d.toString('utf8')));
        s.on('error', () => undefined);
        s.on('close', () => {
          clearTimeout(t);
          resolve(out);
        });
      });
    // The device write takes a while: the client's FIN arrives before the answer is ready.
    state.writeDelayMs = 50;
    try {
      for (const half of [false, true]) {
        const out = await post(`half-${half}`, half);
        assert.match(out, /^HTTP\/1\.1 200 OK\r\n/, `half-closed ${half}: ${out.slice(0, 200) || '(no answer)'}`);
        assert.match(out, new RegExp(`Write data half-${half} to device default/boiler successfully`));
        assert.deepEqual(state.writes!.at(-1), { device: 'default/boiler', property: 'mode', value: `half-${half}` });
      }
    } finally {
      state.writeDelayMs = 0;
    }
  });

  it('rejects bad write bodies and read-only properties with 4xx', async () => {
    const put = (path: string, body: string, type = 'application/json'): ReturnType<typeof get> => get(rig, path, { method: 'PUT', headers: { 'content-type': type }, body });
    assert.equal((await put('/api/v1/device/default/boiler/setpoint', '{"value":')).status, 400);
    assert.equal((await put('/api/v1/device/default/boiler/setpoint', '{"v":1}')).status, 400);
    assert.equal((await put('/api/v1/device/default/boiler/setpoint', '{"value":[1]}')).status, 400);
    assert.equal((await put('/api/v1/device/default/boiler/setpoint', 'value=1', 'application/x-www-form-urlencoded')).status, 400, 'curl -d without a JSON body');
    assert.equal((await put('/api/v1/device/default/boiler/setpoint', '<value>1</value>', 'application/xml')).status, 415);
    const ro = await put('/api/v1/device/default/boiler/temp', '{"value":1}');
    assert.equal(ro.status, 409);
    assert.match(String(ro.json['Message']), /ReadOnly/);
  });

  it('GET /api/v1/device/{ns}/{name}: every property with value, time and error', async () => {
    const r = await get(rig, '/api/v1/device/default/boiler');
    assert.equal(r.status, 200);
    const data = r.json['Data'] as { DeviceName: string; State: string; Properties: { PropertyName: string; Value: string; Type: string; TimeStamp: number; Error: string }[] };
    assert.equal(data.DeviceName, 'boiler');
    assert.equal(data.State, 'ok');
    assert.deepEqual(data.Properties.map((p) => p.PropertyName), ['temp', 'setpoint', 'mode']);
    const mode = data.Properties.find((p) => p.PropertyName === 'mode')!;
    assert.equal(mode.Value, 'auto');
    assert.equal(mode.Type, 'string');
    assert.ok(mode.TimeStamp > 0);
    assert.equal(mode.Error, '');
    const list = await get(rig, '/api/v1/device');
    assert.deepEqual(list.json['Data'], [{ DeviceName: 'boiler', Namespace: 'default', Model: 'boiler-model', State: 'ok' }]);
  });

  it('/healthz is always 200; /readyz follows the registration with edgecore', async () => {
    assert.deepEqual((await get(rig, '/healthz')).json, { status: 'ok' });
    assert.equal((await get(rig, '/readyz')).status, 200);
    await rig.ec.stop();
    await until(async () => (await get(rig, '/readyz')).status === 503, 10_000, 'not ready while edgecore is gone');
    assert.equal((await get(rig, '/healthz')).status, 200);
    await rig.ec.listen();
    await until(async () => (await get(rig, '/readyz')).status === 200, 15_000, 'ready again after re-registration');
  });
});

describe('REST API write token', () => {
  let rig: MapperRig;
  const t = tempDir('mktoken-');
  before(async () => {
    writeFileSync(join(t.dir, 'token'), 'sekret-token\n');
    rig = await startMapper(YAML, { configExtra: `rest:\n  write_token_file: ${join(t.dir, 'token')}\n` });
  });
  after(async () => {
    await rig?.stop();
    t.cleanup();
  });

  it('guards every write route with the bearer token; reads stay open', async () => {
    const writes: [string, RequestInit][] = [
      ['/api/v1/devicemethod/default/boiler/setTemp/setpoint/5', {}],
      ['/api/v1/device/default/boiler/setpoint', { method: 'PUT', body: '{"value":5}' }],
      ['/api/v1/devicemethod/default/boiler/setTemp/setpoint', { method: 'POST', body: '{"value":5}' }],
    ];
    for (const [path, init] of writes) {
      const denied = await get(rig, path, init);
      assert.equal(denied.status, 401, path);
      assert.equal(denied.headers.get('www-authenticate'), 'Bearer realm="mapper"');
      assert.equal((await get(rig, path, { ...init, headers: { authorization: 'Bearer wrong' } })).status, 401);
      const ok = await get(rig, path, { ...init, headers: { authorization: 'Bearer sekret-token' } });
      assert.equal(ok.status, 200, `${path}: ${ok.text}`);
    }
    assert.equal((await get(rig, '/api/v1/devicemethod/default/boiler')).status, 200);
    assert.equal((await get(rig, '/api/v1/ping')).status, 200);
  });
});
