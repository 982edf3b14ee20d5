// SPDX-License-Identifier: Apache-2.0
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseMapperConfig } from '@mapperkit/framework';
import { parseCrdYaml } from '@mapperkit/framework/dmi';
import { Ajv } from 'ajv';
import { Deployment } from 'kubernetes-models/apps/v1';
import { ConfigMap } from 'kubernetes-models/v1';
import { parse, parseAllDocuments } from 'yaml';
import { createRequire } from 'node:module';
import { CreateMapperError, listTemplateFiles, outputPath, ownVersion, renderProject, scaffold, STREAM_OVERLAY, templatesRoot } from '../src/index.js';
import { loadPrecompiled, precompileTemplates } from '../src/precompile.js';

const repo = new URL('../../../', import.meta.url).pathname;
let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'create-mapper-unit-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

function expectedFiles(stream: boolean): string[] {
  const files = new Set(listTemplateFiles(join(templatesRoot(), 'default')).map(outputPath));
  if (stream) for (const f of listTemplateFiles(join(templatesRoot(), STREAM_OVERLAY))) files.add(outputPath(f));
  return [...files].sort();
}

function listTree(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? listTree(join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]))
    .sort();
}

describe('renderProject', () => {
  for (const stream of [false, true]) {
    it(`renders every template file${stream ? ' with --stream' : ''}, no handlebars left, names substituted`, () => {
      const p = renderProject({ targetDir: join(tmp, 'acme-mapper'), protocol: 'acme', stream });
      assert.deepEqual([...p.files.keys()].sort(), expectedFiles(stream));
      for (const [file, text] of p.files) {
        assert.ok(!text.includes('{{'), `${file} contains "{{"`);
        assert.ok(!text.includes('}}'), `${file} contains "}}"`);
        if (file.endsWith('.yaml')) for (const d of parseAllDocuments(text)) assert.deepEqual('errors' in d ? d.errors : [], [], `${file} parses as YAML`);
      }
      assert.ok(p.files.has('.gitignore') && p.files.has('.dockerignore'), 'underscore files renamed');
      const driver = p.files.get('src/driver.ts')!;
      assert.match(driver, /protocol: 'acme'/);
      assert.equal(driver.includes('./stream.js'), stream);
      assert.equal(p.files.get('Dockerfile')!.includes('ffmpeg'), stream);
      assert.equal(p.files.get('devices/device-model.yaml')!.includes('saveFrame'), stream);
      assert.equal(p.files.get('src/main.ts')!.trim().split('\n').length, 3, 'main.ts is three lines');
    });
  }

  it('renders the same with the precompiled templates (what the published package uses) as with compiled ones', () => {
    const file = join(tmp, 'templates.compiled.cjs');
    writeFileSync(file, precompileTemplates(templatesRoot()));
    const pre = loadPrecompiled(templatesRoot(), file);
    assert.ok(pre, 'a fresh precompiled set matches the templates');
    for (const stream of [false, true]) {
      const a = renderProject({ targetDir: join(tmp, 'acme-mapper'), protocol: 'acme', stream, precompiled: false });
      const b = renderProject({ targetDir: join(tmp, 'acme-mapper'), protocol: 'acme', stream, precompiled: pre });
      assert.deepEqual([...b.files], [...a.files]);
    }
    const stale = { ...(createRequire(import.meta.url)(file) as object), hash: 'stale' };
    writeFileSync(join(tmp, 'stale.cjs'), `module.exports = ${JSON.stringify(stale)};`);
    assert.equal(loadPrecompiled(templatesRoot(), join(tmp, 'stale.cjs')), undefined, 'a set that does not match the templates is not used');
  });

  it('matches the committed expected files (volatile version normalised)', () => {
    const p = renderProject({ targetDir: join(tmp, 'acme-mapper'), protocol: 'acme' });
    const norm = (s: string): string => s.replaceAll(`^${ownVersion()}`, '^[version]').replaceAll(`create-mapper@${ownVersion()}`, 'create-mapper@[version]');
    for (const f of ['package.json', 'config.yaml', 'resource/configmap.yaml', 'devices/device-instance.yaml']) {
      const expected = readFileSync(new URL(`./fixtures/expected/${f}`, import.meta.url), 'utf8');
      assert.equal(norm(p.files.get(f)!), expected, `${f} differs from test/fixtures/expected/${f}`);
    }
  });

  it('writes the framework as a caret range of its own release train', () => {
    const p = renderProject({ targetDir: join(tmp, 'x'), protocol: 'acme', name: '@corp/acme' });
    const pkg = JSON.parse(p.files.get('package.json')!) as { name: string; dependencies: Record<string, string> };
    assert.equal(pkg.name, '@corp/acme');
    assert.equal(pkg.dependencies['@mapperkit/framework'], `^${ownVersion()}`);
    const fw = JSON.parse(readFileSync(join(repo, 'packages/mapper-framework/package.json'), 'utf8')) as { version: string };
    assert.equal(ownVersion(), fw.version, 'create-mapper and @mapperkit/framework are released together (same version)');
  });

  it('config.yaml, the ConfigMap and the Helm values agree', () => {
    const p = renderProject({ targetDir: join(tmp, 'x'), protocol: 'acme' });
    const config = p.files.get('config.yaml')!;
    const { config: c, unknownKeys } = parseMapperConfig(config);
    assert.equal(c.common.protocol, 'acme');
    assert.equal(c.grpc_server.socket_path, '/etc/kubeedge/acme.sock');
    assert.deepEqual(unknownKeys, []);
    const cm = parse(p.files.get('resource/configmap.yaml')!) as { kind: string; data: { configData: string } };
    assert.equal(cm.kind, 'ConfigMap');
    assert.equal(cm.data.configData, config);
    const values = parse(p.files.get('deploy/values.yaml')!) as { config: { common: { name: string; protocol: string } } };
    assert.deepEqual(values.config.common, { name: c.common.name, protocol: 'acme', http_port: 7777 });
    const dep = parse(p.files.get('resource/deployment.yaml')!) as { spec: { template: { spec: { volumes: { configMap?: { items: { key: string; path: string }[] } }[] } } } };
    const cmVolume = dep.spec.template.spec.volumes.find((v) => v.configMap);
    assert.deepEqual(cmVolume?.configMap?.items, [{ key: 'configData', path: 'config.yaml' }]);
  });

  it('the Helm values, merged over charts/mapper defaults as helm merges them, satisfy the chart schema', (t) => {
    const chart = join(repo, 'charts/mapper');
    if (!existsSync(join(chart, 'values.schema.json'))) {
      t.skip('charts/mapper is not in this checkout');
      return;
    }
    const merge = (a: unknown, b: unknown): unknown => {
      if (typeof a !== 'object' || a === null || Array.isArray(a) || typeof b !== 'object' || b === null || Array.isArray(b)) return b;
      const out: Record<string, unknown> = { ...(a as Record<string, unknown>) };
      for (const [k, v] of Object.entries(b)) out[k] = merge(out[k], v);
      return out;
    };
    const defaults: unknown = parse(readFileSync(join(chart, 'values.yaml'), 'utf8'));
    const validate = new Ajv({ allErrors: true, strict: false }).compile(JSON.parse(readFileSync(join(chart, 'values.schema.json'), 'utf8')) as object);
    for (const protocol of ['acme', 'onvif-cam']) {
      const values: unknown = parse(renderProject({ targetDir: join(tmp, 'x'), protocol }).files.get('deploy/values.yaml')!);
      assert.ok(validate(merge(defaults, values)), `deploy/values.yaml for ${protocol}: ${JSON.stringify(validate.errors)}`);
    }
    assert.ok(!validate(merge(defaults, { image: { repository: 'Bad Repo!' } })), 'the schema check can fail');
  });

  it('resource/ manifests are valid Kubernetes objects; the Dockerfile is multi-stage, node 20 slim, non-root', () => {
    for (const stream of [false, true]) {
      const p = renderProject({ targetDir: join(tmp, 'x'), protocol: 'acme', stream });
      const dep = new Deployment(parse(p.files.get('resource/deployment.yaml')!) as object);
      dep.validate();
      new ConfigMap(parse(p.files.get('resource/configmap.yaml')!) as object).validate();
      const pod = dep.spec!.template.spec!;
      assert.equal(pod.securityContext?.runAsNonRoot, true);
      assert.equal(pod.containers[0]!.securityContext?.readOnlyRootFilesystem, true);
      const docker = p.files.get('Dockerfile')!;
      const froms = docker.match(/^FROM .*$/gm) ?? [];
      assert.deepEqual(froms, ['FROM node:20-slim AS build', 'FROM node:20-slim']);
      const final = docker.slice(docker.lastIndexOf('FROM '));
      // The chart's image contract: uid/gid 10001, acl for its init container, config at /etc/mapper/config.yaml.
      assert.match(final, /^USER 10001:10001$/m, 'final stage runs as the non-root user 10001');
      assert.match(final, /--no-install-recommends acl\b/);
      assert.match(final, /^CMD \["--config-file", "\/etc\/mapper\/config\.yaml"/m);
      assert.match(final, /COPY --from=build .*\/opt\/mapper\/node_modules/, 'production dependencies from the pruned build stage');
      assert.match(docker, /npm prune --omit=dev/);
      assert.equal(/ffmpeg/.test(final), stream, 'ffmpeg only in the stream image');
      // The memory settings of the reference mapper images (deploy/images/runtime-env.json).
      const env = JSON.parse(readFileSync(join(repo, 'deploy/images/runtime-env.json'), 'utf8')) as Record<string, string>;
      const line = `ENV ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')}`;
      assert.ok(final.split('\n').includes(line), `final stage sets ${line}`);
    }
  });

  it('example Device/DeviceModel YAML converts as edgecore converts it', () => {
    for (const stream of [false, true]) {
      const p = renderProject({ targetDir: join(tmp, 'x'), protocol: 'acme', stream });
      const docs = parseCrdYaml(`${p.files.get('devices/device-model.yaml')!}\n---\n${p.files.get('devices/device-instance.yaml')!}`);
      assert.deepEqual(docs.problems, []);
      assert.equal(docs.models.length, 1);
      assert.equal(docs.devices.length, 1);
    }
  });
});

describe('scaffold: bad input writes nothing', () => {
  const cases: [string, Parameters<typeof scaffold>[0], RegExp][] = [
    ['invalid protocol', { targetDir: 'x', protocol: 'Mod Bus' }, /invalid protocol name "Mod Bus"/],
    ['empty protocol', { targetDir: 'x', protocol: '' }, /protocol name is empty/],
    ['invalid package name', { targetDir: 'Bad Name', protocol: 'acme' }, /invalid package name "Bad Name"/],
    ['invalid --name', { targetDir: 'x', protocol: 'acme', name: 'UPPER' }, /invalid package name "UPPER"/],
    ['unknown template', { targetDir: 'x', protocol: 'acme', template: 'nope' }, /unknown template "nope"/],
  ];
  for (const [what, opts, message] of cases) {
    it(what, async () => {
      const parent = mkdtempSync(join(tmp, 'bad-'));
      await assert.rejects(scaffold({ ...opts, targetDir: join(parent, opts.targetDir) }), (e: unknown) => e instanceof CreateMapperError && message.test(e.message));
      assert.deepEqual(readdirSync(parent), [], 'nothing written');
    });
  }

  it('a non-empty target without --force', async () => {
    const dir = mkdtempSync(join(tmp, 'nonempty-'));
    writeFileSync(join(dir, 'keep.txt'), 'mine');
    await assert.rejects(scaffold({ targetDir: dir, protocol: 'acme', name: 'acme' }), (e: unknown) => e instanceof CreateMapperError && /is not empty/.test(e.message) && /--force/.test(e.hint ?? ''));
    assert.deepEqual(readdirSync(dir), ['keep.txt']);
  });

  it('a target that is a file', async () => {
    const file = join(tmp, 'afile');
    writeFileSync(file, 'x');
    await assert.rejects(scaffold({ targetDir: file, protocol: 'acme' }), /not a directory/);
  });
});

describe('scaffold: writing', () => {
  it('creates a new directory with exactly the rendered files and no temporary leftovers', async () => {
    const parent = mkdtempSync(join(tmp, 'new-'));
    const r = await scaffold({ targetDir: join(parent, 'acme-mapper'), protocol: 'acme' });
    assert.deepEqual(readdirSync(parent), ['acme-mapper']);
    assert.deepEqual(listTree(r.dir), expectedFiles(false));
    for (const [f, text] of r.files) assert.equal(readFileSync(join(r.dir, f), 'utf8'), text);
  });

  it('fills an existing empty directory (a .git folder counts as empty)', async () => {
    const dir = join(mkdtempSync(join(tmp, 'empty-')), 'acme-mapper');
    mkdirSync(join(dir, '.git'), { recursive: true });
    await scaffold({ targetDir: dir, protocol: 'acme' });
    assert.ok(existsSync(join(dir, 'src/driver.ts')) && existsSync(join(dir, '.git')));
  });

  it('--force writes into a non-empty directory, overwriting template files and keeping others', async () => {
    const dir = join(mkdtempSync(join(tmp, 'force-')), 'acme-mapper');
    mkdirSync(join(dir, 'src'), { recursive: true });
    writeFileSync(join(dir, 'src/driver.ts'), 'old');
    writeFileSync(join(dir, 'notes.md'), 'keep me');
    await scaffold({ targetDir: dir, protocol: 'acme', force: true });
    assert.match(readFileSync(join(dir, 'src/driver.ts'), 'utf8'), /defineDriver/);
    assert.equal(readFileSync(join(dir, 'notes.md'), 'utf8'), 'keep me');
  });
});
