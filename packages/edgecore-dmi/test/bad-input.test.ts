// SPDX-License-Identifier: Apache-2.0
// Every kind of bad input gives an error naming file, line and field, in the log/API, and the
// server keeps serving every other device to a real mapper.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { createLogger, type MapperHandle } from '@mapperkit/framework';
import type { EdgecoreDmi, Problem } from '../src/index.js';
import { deviceYaml, eventually, MODEL_YAML, startServer, startVirtualMapper, TempDir } from './helpers.ts';

describe('bad input', () => {
  const dir = new TempDir();
  const devices = dir.join('devices');
  let server: EdgecoreDmi;
  let mapper: MapperHandle | undefined;
  const f = (name: string): string => dir.join('devices', name);
  const find = (pred: (p: Problem) => boolean): Problem | undefined => server.problems().find(pred);
  // The server's own log (JSON lines), to check that every problem is logged as well as served.
  const logLines: Record<string, unknown>[] = [];
  const logger = createLogger({ level: 'info', destination: { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>) } });

  before(async () => {
    mkdirSync(devices);
    dir.file('devices/good.yaml', `${MODEL_YAML}---\n${deviceYaml('good')}`);
    dir.file('devices/broken.yaml', 'apiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: { name: x\nspec: [unclosed\n');
    dir.file(
      'devices/kinds.yaml',
      `apiVersion: v1
kind: ConfigMap
metadata: { name: cm }
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Devise
metadata: { name: typo }
---
apiVersion: devices.kubeedge.io/v1alpha2
kind: Device
metadata: { name: old }
---
${deviceYaml('also-good', { seed: 2 })}`,
    );
    dir.file('devices/nomodel.yaml', deviceYaml('orphan', { model: 'ghost-model' }));
    dir.file(
      'devices/nested.yaml',
      `apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: { name: nested }
spec:
  deviceModelRef: { name: thermo }
  protocol:
    protocolName: virtual
    configData:
      seed: 1
      tcp:
        ip: 10.0.0.1
        port: 502
  properties:
    - name: temperature
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: { name: listy }
spec:
  deviceModelRef: { name: thermo }
  protocol: { protocolName: virtual }
  properties:
    - name: temperature
      visitors:
        protocolName: virtual
        configData:
          registers: [1, 2]
`,
    );
    dir.file('devices/zz-dup.yaml', deviceYaml('good', { seed: 99 }));
    dir.file(
      'devices/badmodel.yaml',
      `apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata: { name: typo-model }
spec:
  protocol: virtual
  properties:
    - name: temperature
      type: FLAOT
      accessMode: ReadOnly
---
${deviceYaml('uses-typo', { model: 'typo-model' })}`,
    );
    server = await startServer(dir, { devices, limiter: false, http: '127.0.0.1:0', logger });
    mapper = await startVirtualMapper(dir, server.socketPath);
    await mapper.whenRegistered();
  });

  after(async () => {
    await mapper?.stop();
    await server?.close();
    dir.remove();
  });

  it('the good devices are served and report, whatever else is broken', async () => {
    assert.deepEqual(
      mapper!
        .devices()
        .map((d) => d.id)
        .sort(),
      ['default/also-good', 'default/good'],
    );
    assert.equal(mapper!.device('default/good')!.spec.protocol['seed'], 1, 'the first definition wins over the duplicate');
    await eventually(() => server.deviceView('good')!.twins[0]!.reported !== undefined, 10_000, 'good reports');
    await eventually(() => server.deviceView('also-good')!.twins[0]!.reported !== undefined, 10_000, 'also-good reports');
  });

  it('invalid YAML: file, line and the parser message', () => {
    const p = find((x) => x.source === f('broken.yaml'))!;
    assert.ok(p, JSON.stringify(server.problems(), null, 1));
    assert.equal(p.severity, 'error');
    assert.ok(p.line && p.line >= 3, `line ${p.line}`);
    assert.match(p.message, new RegExp(`^${f('broken.yaml')}:\\d+ \\(document 1\\): invalid YAML: `));
  });

  it('unknown apiVersion or kind: file, line, document and field', () => {
    const cm = find((x) => x.source === f('kinds.yaml') && x.document === 1)!;
    assert.equal(cm.field, 'apiVersion');
    assert.equal(cm.line, 1);
    assert.match(cm.message, /kinds\.yaml:1 \(document 1\): apiVersion: unsupported apiVersion "v1" \(expected devices\.kubeedge\.io\/v1beta1\)/);
    const typo = find((x) => x.source === f('kinds.yaml') && x.document === 2)!;
    assert.equal(typo.field, 'kind');
    assert.equal(typo.line, 6);
    assert.match(typo.message, /kinds\.yaml:6 \(document 2\): kind: unknown kind "Devise" \(expected Device or DeviceModel\)/);
    const old = find((x) => x.source === f('kinds.yaml') && x.document === 3)!;
    assert.match(old.message, /kinds\.yaml:9 \(document 3\): apiVersion: unsupported apiVersion "devices\.kubeedge\.io\/v1alpha2"/);
  });

  it('a device whose model is missing: names the device and spec.deviceModelRef.name; not sent', () => {
    const p = find((x) => x.id === 'default/orphan')!;
    assert.equal(p.field, 'spec.deviceModelRef.name');
    assert.equal(p.line, 7);
    assert.match(p.message, /nomodel\.yaml:7: Device default\/orphan: spec\.deviceModelRef\.name: DeviceModel default\/ghost-model not found/);
    assert.equal(server.deviceView('orphan')!.delivery.status, 'not-sent');
    assert.equal(mapper!.device('default/orphan'), undefined);
  });

  it('nested configData (which edgecore cannot encode): names the exact key', () => {
    const nested = find((x) => x.id === 'default/nested')!;
    assert.equal(nested.field, 'spec.protocol.configData.tcp');
    assert.equal(nested.line, 10);
    assert.match(nested.message, /nested\.yaml:10: Device default\/nested: spec\.protocol\.configData\.tcp: a nested map cannot be sent over DMI/);
    const listy = find((x) => x.id === 'default/listy')!;
    assert.equal(listy.field, 'spec.properties[0].visitors.configData.registers');
    assert.match(listy.message, /nested\.yaml:\d+: Device default\/listy: spec\.properties\[0\]\.visitors\.configData\.registers: a list cannot be sent over DMI/);
  });

  it('duplicate names: the second definition is refused, naming both places', () => {
    const p = find((x) => x.source === f('zz-dup.yaml'))!;
    assert.equal(p.field, 'metadata.name');
    assert.match(p.message, new RegExp(`zz-dup\\.yaml:\\d+: Device default/good: metadata\\.name: duplicate Device name: default/good is already defined at ${f('good.yaml')}:\\d+; this definition is ignored`));
    assert.equal(server.deviceView('good')!.source.startsWith(f('good.yaml')), true);
  });

  it('an invalid model: names its field; devices using it are held back with a pointer to the model', () => {
    const m = find((x) => x.id === 'default/typo-model')!;
    assert.equal(m.field, 'spec.properties[0].type');
    assert.match(m.message, /badmodel\.yaml:8: DeviceModel default\/typo-model: spec\.properties\[0\]\.type: "FLAOT" is not a valid type/);
    const d = find((x) => x.id === 'default/uses-typo')!;
    assert.match(d.message, /DeviceModel default\/typo-model is invalid \(.*badmodel\.yaml:1\)/);
  });

  it('the same problems are served by the HTTP API', async () => {
    const res = await fetch(`${server.url}/api/v1/problems`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as Problem[];
    assert.deepEqual(
      body.map((p) => p.message),
      server.problems().map((p) => p.message),
    );
    assert.ok(body.length >= 9);
  });

  it('every load problem is also in the log: its message (file, line, field) at its severity, with source and field as keys', () => {
    const loadProblems = server.problems().filter((p) => p.source !== 'dmi');
    assert.ok(loadProblems.length >= 9, `${loadProblems.length} problems`);
    for (const p of loadProblems) {
      const line = logLines.find((l) => l['msg'] === p.message);
      assert.ok(line, `not logged: ${p.message}`);
      assert.equal(line['level'], p.severity === 'error' ? 'error' : 'warn', p.message);
      assert.equal(line['source'], p.source);
      assert.equal(line['field'], p.field);
    }
    assert.ok(logLines.some((l) => typeof l['msg'] === 'string' && (l['msg'] as string).startsWith(`${f('broken.yaml')}:`) && l['level'] === 'error'), 'the invalid YAML file is named in an error line');
  });

  it('a bad edit of a running device keeps its last good version in service (and reports why)', async () => {
    const calls = server.calls(500).length;
    dir.file('devices/good.yaml', `${MODEL_YAML}---\n${deviceYaml('good', { extra: '  methods: oops-not-a-list\n' })}`);
    await eventually(() => find((x) => x.id === 'default/good' && x.field === 'spec.methods'), 10_000, 'the methods error');
    const v = server.deviceView('good')!;
    assert.equal(v.valid, false);
    assert.equal(v.stale, true);
    assert.equal(v.delivery.status, 'delivered', 'the last good version is what the mapper has');
    assert.ok(v.errors.some((e) => /last valid version of this Device stays in service/.test(e)));
    assert.equal(server.calls(500).length, calls, 'nothing sent to the mapper');
    assert.ok(mapper!.device('default/good'));
    // Fixing it back to the running definition sends nothing either.
    dir.file('devices/good.yaml', `${MODEL_YAML}---\n${deviceYaml('good')}`);
    await eventually(() => server.deviceView('good')!.valid, 10_000, 'good valid again');
    assert.equal(server.calls(500).length, calls);
  });

  it('apply through the API: bad documents are refused with their errors, good ones applied', async () => {
    const r = server.apply(`${deviceYaml('api-dev', { seed: 4 })}---\napiVersion: v1\nkind: Pod\nmetadata: { name: p }\n---\n${deviceYaml('good')}`, 'mixed.yaml');
    assert.deepEqual(r.changed, [{ kind: 'Device', id: 'default/api-dev', action: 'created' }]);
    assert.ok(r.errors.some((e) => /api:mixed\.yaml:\d+ \(document 2\): apiVersion: unsupported apiVersion "v1"/.test(e.message)));
    assert.ok(r.errors.some((e) => /Device default\/good: metadata\.name: already defined in file .*good\.yaml/.test(e.message)));
    await eventually(() => mapper!.device('default/api-dev'), 10_000, 'api-dev on the mapper');
    const del = server.delete(deviceYaml('good'), 'x.yaml');
    assert.match(del.errors[0]!.message, /Device default\/good is defined in file .*good\.yaml.*remove it from that file instead/);
  });
});
