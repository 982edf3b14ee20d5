// SPDX-License-Identifier: Apache-2.0
// The reference mappers have the shape of a generated project (issue 5). This checks the shape
// on generated projects (it must pass, and must catch a broken one) and, strictly, on each of
// packages/mappers/*: any difference fails, except the few listed in PENDING with their reason.
// It also checks what checkProjectShape cannot see without running the driver: each reference
// mapper's schema/ is what its driver produces, and its devices/ YAML validates against it.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { buildSchemas, type DriverDefinition } from '@mapperkit/framework';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parseAllDocuments } from 'yaml';
import { checkProjectShape, scaffold, SHAPE_FILES } from '../src/index.js';

const repo = new URL('../../../', import.meta.url).pathname;
const mappers = join(repo, 'packages/mappers');
const tmp = mkdtempSync(join(tmpdir(), 'create-mapper-shape-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * Differences a reference mapper may keep for now: mapper → file → reason. Any other difference
 * fails the test; a listed one is shown as a TODO (and reported when it is gone, so the entry can
 * be removed).
 */
const PENDING: Readonly<Record<string, Readonly<Record<string, string>>>> = {};

describe('project shape', () => {
  it('generated projects have it (default and --stream)', async () => {
    for (const stream of [false, true]) {
      const r = await scaffold({ targetDir: join(tmp, `p-${stream}`), protocol: 'acme', stream });
      assert.deepEqual(checkProjectShape(r.dir), []);
      for (const { file } of SHAPE_FILES) assert.ok(r.files.has(file), `SHAPE_FILES lists ${file}, which a generated project does not have`);
    }
  });

  it('catches a project that differs', async () => {
    const dir = join(tmp, 'broken');
    cpSync(join(tmp, 'p-false'), dir, { recursive: true });
    writeFileSync(join(dir, 'src/main.ts'), "import { runMapper } from '@mapperkit/framework';\nimport { acme } from './index.js';\nawait runMapper({ driver: acme });\n");
    rmSync(join(dir, 'test/driver.test.ts'));
    rmSync(join(dir, 'resource'), { recursive: true });
    const files = checkProjectShape(dir).map((p) => p.file).sort();
    assert.deepEqual(files, ['resource/configmap.yaml', 'resource/deployment.yaml', 'src/main.ts', 'test/driver.test.ts']);
  });

  it('catches files that disagree: ConfigMap vs config.yaml, protocols, scripts, the Deployment', async () => {
    const dir = join(tmp, 'drift');
    cpSync(join(tmp, 'p-false'), dir, { recursive: true });
    const edit = (f: string, from: string | RegExp, to: string): void => {
      const text = readFileSync(join(dir, f), 'utf8');
      const next = text.replace(from, to);
      assert.notEqual(next, text, `${f}: ${String(from)} not found`);
      writeFileSync(join(dir, f), next);
    };
    edit('config.yaml', 'http_port: "7777"', 'http_port: "7778"');
    edit('deploy/values.yaml', 'protocol: acme', 'protocol: other');
    edit('devices/device-instance.yaml', 'protocolName: acme\n    configData', 'protocolName: other\n    configData');
    edit('resource/deployment.yaml', /  strategy:\n    type: Recreate\n/, '');
    edit('resource/deployment.yaml', 'path: config.yaml', 'path: mapper.yaml');
    edit('test/driver.test.ts', /describeDriverConformance\(/g, 'describe(');
    edit('package.json', '"dev":', '"develop":');
    const problems = checkProjectShape(dir).map((p) => `${p.file}: ${p.message}`);
    const expect = [
      /^package\.json: no "dev" script$/,
      /^test\/driver\.test\.ts: must run/,
      /^resource\/configmap\.yaml: data\.configData differs from config\.yaml/,
      /^resource\/deployment\.yaml: needs strategy\.type Recreate/,
      /^resource\/deployment\.yaml: must mount the ConfigMap's key configData as config\.yaml/,
      /^deploy\/values\.yaml: config\.common\.protocol is "other"/,
      /^devices\/device-instance\.yaml: Device acme-device-1: protocol "other"/,
    ];
    for (const re of expect) assert.ok(problems.some((p) => re.test(p)), `expected a problem matching ${re}; got:\n${problems.join('\n')}`);
    assert.equal(problems.length, expect.length, problems.join('\n'));
  });

  for (const name of existsSync(mappers) ? readdirSync(mappers).sort() : []) {
    const dir = join(mappers, name);
    const pending = PENDING[name] ?? {};

    it(`reference mapper ${name} has the shape of a generated project`, async (t) => {
      const problems = checkProjectShape(dir);
      const unexpected = problems.filter((p) => !(p.file in pending));
      assert.deepEqual(unexpected.map((p) => `${p.file}: ${p.message}`), [], `packages/mappers/${name} differs from a generated project`);
      for (const [file, reason] of Object.entries(pending)) {
        if (problems.some((p) => p.file === file)) await t.test(`pending: ${file}`, { todo: reason }, () => {});
        else t.diagnostic(`PENDING.${name}['${file}'] is no longer needed: ${file} conforms now (remove the entry)`);
      }
    });

    it(`reference mapper ${name}: schema/ is what its driver produces, and devices/ validates against it`, async () => {
      const entry = existsSync(join(dir, 'src/driver.ts')) && !('src/driver.ts' in pending) ? 'src/driver.ts' : 'src/index.ts';
      const driver = ((await import(join(dir, entry))) as { default: DriverDefinition<unknown, unknown> }).default;
      assert.ok(driver?.protocol, `${entry} has a default export with the driver`);
      const fresh = buildSchemas(driver);
      for (const f of ['devices.schema.json', 'protocol-config.schema.json', 'visitor-config.schema.json']) {
        assert.equal(readFileSync(join(dir, 'schema', f), 'utf8'), `${JSON.stringify(fresh[f], null, 2)}\n`, `packages/mappers/${name}/schema/${f} is stale: run \`mapper-${name} schema\` there (then drop config.schema.json)`);
      }
      const validate = new Ajv2020({ allErrors: true, strict: false }).compile(fresh['devices.schema.json']!);
      let checked = 0;
      for (const f of readdirSync(join(dir, 'devices')).filter((x) => /\.ya?ml$/.test(x))) {
        const text = readFileSync(join(dir, 'devices', f), 'utf8');
        assert.match(text, /^# yaml-language-server: \$schema=\.\.\/schema\/devices\.schema\.json$/m, `devices/${f} points editors at the schema`);
        for (const doc of parseAllDocuments(text)) {
          const v: unknown = doc.toJS();
          if (v === null) continue;
          assert.ok(validate(v), `devices/${f}: ${JSON.stringify(validate.errors)}`);
          checked++;
        }
      }
      assert.ok(checked >= 2, 'at least a DeviceModel and a Device');
      assert.ok(!validate({ apiVersion: 'devices.kubeedge.io/v1beta1', kind: 'Device', metadata: {}, spec: { deviceModelRef: { name: 'm' }, protocol: { protocolName: 'not-this-one' } } }), 'the schema check can fail');
    });
  }
});
