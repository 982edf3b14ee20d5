// SPDX-License-Identifier: Apache-2.0
// doctor and schema against a generated project built here (node_modules linked to the
// workspace, so the project loads this repository's framework), with the framework's
// TestEdgecore as the edgecore whose socket must be reachable.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestEdgecore } from '@mapperkit/framework/testing';
import { doctor, formatReport, main, type Problem, scaffold, writeSchemas } from '../src/index.js';
import { run } from './helpers/exec.js';

const repo = new URL('../../../', import.meta.url).pathname;
let tmp: string;
let dir: string;
let edgecore: TestEdgecore;
let goodConfig: string;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'create-mapper-doctor-'));
  dir = (await scaffold({ targetDir: join(tmp, 'acme-mapper'), protocol: 'acme' })).dir;
  symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'));
  await run(join(repo, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], { cwd: dir });
  edgecore = await TestEdgecore.start({ socketPath: join(tmp, 'dmi.sock') });
  goodConfig = join(tmp, 'config.yaml');
  writeFileSync(goodConfig, readFileSync(join(dir, 'config.yaml'), 'utf8').replace(/edgecore_sock: .*/, `edgecore_sock: ${join(tmp, 'dmi.sock')}`));
});

after(async () => {
  await edgecore?.close();
  rmSync(tmp, { recursive: true, force: true });
});

function find(problems: readonly Problem[], file: string, path: RegExp, message: RegExp): Problem {
  const p = problems.find((x) => x.file === file && path.test(x.path) && message.test(x.message));
  assert.ok(p, `expected a problem in ${file} at ${path} matching ${message}; got:\n${problems.map((x) => `${x.file}: ${x.path}: ${x.message}`).join('\n')}`);
  return p;
}

const BROKEN = `apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata: { name: m1 }
spec:
  protocol: other
  properties:
    - { name: temp, type: FLOAT, accessMode: ReadOnly }
    - { name: sp, type: INT, accessMode: ReadWrite, minimum: "0", maximum: "10" }
    - { name: bad, type: COMPLEX }
    - { name: cam, type: STREAM, accessMode: ReadOnly }
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: { name: nested }
spec:
  deviceModelRef: { name: m1 }
  protocol:
    protocolName: acme
    configData: { host: h, nested: { deep: 1 } }
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: { name: d1 }
spec:
  deviceModelRef: { name: m1 }
  protocol:
    protocolName: acme
    configData: { port: 70000 }
  stateReport: { reportToCloud: true, reportCycle: 0 }
  properties:
    - name: temp
      collectCycle: -5
      desired: { value: "3" }
      visitors: { protocolName: acme, configData: { address: "has spaces" } }
    - name: sp
      desired: { value: "42" }
      visitors: { protocolName: acme, configData: { address: sp } }
    - name: ghost
      visitors: { protocolName: acme, configData: { address: ghost } }
    - name: cam
      visitors: { protocolName: acme, configData: { address: cam } }
  methods:
    - { name: setAll, propertyNames: [sp, nope, temp] }
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: { name: orphan }
spec:
  deviceModelRef: { name: missing-model }
  protocol: { protocolName: modbus, configData: { host: h } }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: stray }
`;

describe('doctor', () => {
  it('passes the generated project with a reachable edgecore socket', async () => {
    const r = await doctor({ dir, config: goodConfig });
    assert.deepEqual(r.problems, []);
    assert.equal(r.checked.socket, 'reachable');
    assert.equal(r.checked.devices, 1);
    assert.equal(r.checked.models, 1);
  });

  it('reports an unreachable edgecore socket as an error (and can skip the check)', async () => {
    const r = await doctor({ dir });
    const p = find(r.problems, 'config.yaml', /^common\.edgecore_sock$/, /\/etc\/kubeedge\/dmi\.sock is not reachable/);
    assert.equal(p.severity, 'error');
    assert.match(p.hint ?? '', /--skip-socket/);
    assert.equal((await doctor({ dir, checkSocket: false })).errors, 0);
  });

  it('reports every problem with file, path and a fix hint', async () => {
    const bad = join(tmp, 'bad');
    mkdirSync(bad, { recursive: true });
    writeFileSync(join(bad, 'devices.yaml'), BROKEN);
    writeFileSync(join(bad, 'config.yaml'), 'grpc_server:\n  socket_path: /tmp/x.sock\ncommon:\n  name: x\n  protocol: modbus\n  colour: blue\n');
    const r = await doctor({ dir, config: join(bad, 'config.yaml'), devices: [bad], checkSocket: false });
    const f = '../bad/devices.yaml';
    const c = '../bad/config.yaml';
    find(r.problems, c, /^common\.protocol$/, /"modbus" is not the driver's protocol "acme"/);
    assert.equal(find(r.problems, c, /^common\.colour$/, /unknown key/).severity, 'warning');
    find(r.problems, f, /DeviceModel default\/m1: spec\.protocol/, /"other" is not the driver's protocol/);
    find(r.problems, f, /DeviceModel default\/m1: spec\.properties/, /unknown type "COMPLEX"/);
    find(r.problems, f, /^Device default\/nested$/, /^protocol\.configData\.nested: an object cannot be sent/);
    find(r.problems, f, /Device default\/d1: spec\.protocol\.configData\.host/, /./);
    find(r.problems, f, /Device default\/d1: spec\.protocol\.configData\.port/, /./);
    find(r.problems, f, /Device default\/d1: spec\.stateReport\.reportCycle/, /not a positive/);
    const cycle = find(r.problems, f, /Device default\/d1: spec\.properties\[0\]\.collectCycle/, /-5 is not a positive/);
    const lineOf = (needle: string): number => BROKEN.split('\n').findIndex((l) => l.includes(needle)) + 1;
    assert.equal(cycle.line, lineOf('collectCycle: -5'), 'problems carry the line of their path');
    assert.equal(find(r.problems, f, /Device default\/orphan: spec\.deviceModelRef\.name/, /./).line, lineOf('missing-model'));
    assert.equal(find(r.problems, c, /^common\.protocol$/, /./).line, 5);
    find(r.problems, f, /Device default\/d1: spec\.properties\[0\]\.visitors\.configData\.address/, /./);
    assert.equal(find(r.problems, f, /Device default\/d1: spec\.properties\[0\]\.desired/, /ReadOnly/).severity, 'warning');
    find(r.problems, f, /Device default\/d1: spec\.properties\[1\]\.desired\.value/, /above the maximum 10/);
    find(r.problems, f, /Device default\/d1: spec\.properties\[2\]\.name/, /ghost is not defined in model default\/m1/);
    find(r.problems, f, /Device default\/d1: spec\.methods\[0\]\.propertyNames/, /unknown property nope/);
    find(r.problems, f, /^Device default\/d1: spec\.properties\[3\]$/, /cam: STREAM properties need the stream pieces/);
    find(r.problems, f, /Device default\/d1: spec\.methods\[0\]\.propertyNames/, /temp, which is ReadOnly/);
    find(r.problems, f, /Device default\/orphan: spec\.deviceModelRef\.name/, /default\/missing-model is not defined/);
    find(r.problems, f, /Device default\/orphan: spec\.protocol\.protocolName/, /"modbus" is not the driver's protocol/);
    assert.equal(find(r.problems, f, /^$/, /v1\/ConfigMap ignored/).severity, 'warning');
    for (const p of r.problems.filter((x) => x.severity === 'error' && x.file === f)) assert.ok(p.path !== '', `error without a path: ${p.message}`);
    for (const p of r.problems) assert.ok(p.hint, `problem without a fix hint: ${p.path}: ${p.message}`);
    assert.ok(r.errors >= 14, `errors: ${r.errors}`);
    assert.ok(!r.checked.files.some((x) => x.endsWith('config.yaml')), 'the config file is not read as Device YAML');
    assert.match(formatReport(r), /^error: \.\.\/bad\/devices\.yaml:\d+: Device default\/orphan: spec\.deviceModelRef\.name: .*\n {2}fix: add the DeviceModel/m);
  });

  it('the CLI exits non-zero on errors and prints JSON on request', async () => {
    let out = '';
    const io = { out: (s: string) => (out += s), err: (s: string) => (out += s) };
    assert.equal(await main(['doctor', dir, '--config', goodConfig], io), 0);
    assert.match(out, /0 error\(s\), 0 warning\(s\)/);
    out = '';
    assert.equal(await main(['doctor', dir, '--json'], io), 1);
    const report = JSON.parse(out) as { errors: number; problems: Problem[] };
    assert.equal(report.errors, 1);
    assert.equal(report.problems[0]?.path, 'common.edgecore_sock');
  });

  it('says what to do when the project is not built', async () => {
    let err = '';
    const code = await main(['doctor', dir, '--driver', 'dist/missing.js'], { out: () => {}, err: (s) => (err += s) });
    assert.equal(code, 1);
    assert.match(err, /driver .*dist\/missing\.js not found\n {2}build the project first/);
  });
});

describe('schema', () => {
  it('emits JSON Schemas from the driver schemas, with the Device YAML schema typing configData', async () => {
    const files = await writeSchemas({ dir, out: 'schema-fresh' });
    assert.deepEqual(files.sort(), ['schema-fresh/config.schema.json', 'schema-fresh/devices.schema.json', 'schema-fresh/protocol-config.schema.json', 'schema-fresh/visitor-config.schema.json']);
    const protocol = JSON.parse(readFileSync(join(dir, 'schema-fresh/protocol-config.schema.json'), 'utf8')) as { properties: Record<string, { default?: unknown; description?: string }>; required: string[] };
    assert.equal(protocol.properties['port']?.default, 5020);
    assert.equal(protocol.properties['host']?.description, 'Host name or IP address of the device');
    assert.deepEqual(protocol.required, ['host']);
    const devices = JSON.parse(readFileSync(join(dir, 'schema-fresh/devices.schema.json'), 'utf8')) as Record<string, any>;
    assert.deepEqual(devices['$defs'].protocolConfig.properties, protocol.properties);
    assert.equal(devices['else'].properties.spec.properties.protocol.properties.configData.$ref, '#/$defs/protocolConfig');
    assert.equal(devices['else'].properties.spec.properties.properties.items.properties.visitors.properties.configData.$ref, '#/$defs/visitorConfig');
    assert.equal(devices['then'].properties.spec.properties.protocol.const, 'acme');
    const config = JSON.parse(readFileSync(join(dir, 'schema-fresh/config.schema.json'), 'utf8')) as { properties: Record<string, unknown> };
    assert.ok(config.properties['grpc_server'] && config.properties['common'], 'config.yaml schema from the framework');
    // The YAML files point editors at these files.
    assert.match(readFileSync(join(dir, 'devices/device-instance.yaml'), 'utf8'), /^# yaml-language-server: \$schema=\.\.\/schema\/devices\.schema\.json$/m);
  });

  it('the schema files shipped in the template are what `schema` writes for a fresh project (default and --stream)', async () => {
    const stale = 'templates/*/schema are stale: run `npm run update-schemas -w create-mapper`';
    // config.schema.json follows the framework's config schema and is not shipped.
    const shipped = (f: string): boolean => !f.endsWith('/config.schema.json');
    const fresh = (await writeSchemas({ dir, out: 'schema-check' })).filter(shipped);
    assert.equal(fresh.length, 3);
    for (const f of fresh) assert.equal(readFileSync(join(dir, f.replace('schema-check/', 'schema/')), 'utf8'), readFileSync(join(dir, f), 'utf8'), `${f}: ${stale}`);
    const streamDir = (await scaffold({ targetDir: join(tmp, 'cam-mapper'), protocol: 'cam', stream: true })).dir;
    symlinkSync(join(repo, 'node_modules'), join(streamDir, 'node_modules'));
    await run(join(repo, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], { cwd: streamDir });
    for (const f of (await writeSchemas({ dir: streamDir, out: 'schema-check' })).filter(shipped)) {
      assert.equal(readFileSync(join(streamDir, f.replace('schema-check/', 'schema/')), 'utf8'), readFileSync(join(streamDir, f), 'utf8'), `--stream ${f}: ${stale}`);
    }
  });
});
