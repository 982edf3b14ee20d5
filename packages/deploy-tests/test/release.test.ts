// SPDX-License-Identifier: Apache-2.0
// Release and supply chain: reproducible `npm pack` (byte-identical tarballs from two packs of the same tree, mtimes
// and modes changed in between), `npm run release:prepare` end to end (tarballs, CycloneDX SBOMs, SHA256SUMS checked
// with sha256sum -c, image contexts), the image install step (`npm ci --omit=dev` on an image context, then the
// installed framework serving /healthz), and the release workflow / changesets configuration.
// The install step needs the npm registry (or a warm npm cache), like CI's image build.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { isObj, type Obj, REFERENCE_MAPPERS, repoRoot, run } from './helpers.ts';

interface Workspace {
  name: string;
  version: string;
  location: string;
  private?: boolean;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

const tmp = mkdtempSync(join(tmpdir(), 'mapperkit-release-'));
const sha256 = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');
let workspaces: Workspace[] = [];
let published: Workspace[] = [];

function npm(args: readonly string[], cwd = repoRoot, timeout = 180_000): string {
  const r = run('npm', args, { cwd, timeout });
  assert.equal(r.status, 0, `npm ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** The files npm would pack for a workspace (npm pack --dry-run). */
function packFiles(ws: Workspace): string[] {
  const [info] = JSON.parse(npm(['pack', '--dry-run', '--ignore-scripts', '--json', '-w', ws.name])) as Array<{ files: Array<{ path: string }> }>;
  return info!.files.map((f) => f.path);
}

/** Copies files from one directory to another in the given order, all with the given mtime, keeping file modes. */
function copyFrom(src: string, files: readonly string[], dest: string, mtime: Date): string {
  for (const f of files) {
    const to = join(dest, f);
    mkdirSync(dirname(to), { recursive: true });
    cpSync(join(src, f), to);
    chmodSync(to, statSync(join(src, f)).mode & 0o777);
    utimesSync(to, mtime, mtime);
  }
  return dest;
}

/**
 * A workspace's packed files copied to a fresh directory. File modes are kept: npm writes them into the tarball (a
 * checkout under umask 077 would pack differently; CI checks out with 022).
 */
function copyTo(ws: Workspace, files: readonly string[], dest: string): string {
  return copyFrom(join(repoRoot, ws.location), files, dest, new Date());
}

describe('release: reproducible packs, release:prepare, image install step, workflow', () => {
  before(() => {
    workspaces = JSON.parse(npm(['query', '.workspace'])) as Workspace[];
    published = workspaces.filter((w) => w.private !== true);
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('the published packages are the framework, edgecore-dmi, the generator and the four mappers', () => {
    assert.deepEqual(published.map((w) => w.name).sort(), [
      '@mapperkit/edgecore-dmi', '@mapperkit/framework', '@mapperkit/mapper-ble', '@mapperkit/mapper-modbus',
      '@mapperkit/mapper-opcua', '@mapperkit/mapper-usb-camera', 'create-mapper',
    ]);
  });

  describe('npm run release:prepare', () => {
    const out = join(tmp, 'release');
    let prepared = false;
    before(() => {
      const r = run(process.execPath, [join(repoRoot, 'deploy/release/prepare.mjs'), '--skip-build', '--out', out, '--image', '@mapperkit/framework'], { timeout: 400_000 });
      assert.equal(r.status, 0, r.stderr);
      prepared = true;
    });

    it('is the root package.json script', () => {
      const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
      assert.equal(pkg.scripts['release:prepare'], 'node deploy/release/prepare.mjs');
    });

    it('writes a tarball per published package; packing the same files again gives byte-identical tarballs (sha256), whatever their mtimes and creation order', (t) => {
      assert.ok(prepared);
      const tgzs = readdirSync(join(out, 'packages')).sort();
      assert.equal(tgzs.length, published.length);
      for (const ws of published) {
        const file = `${ws.name.replace(/^@/, '').replace('/', '-')}-${ws.version}.tgz`;
        assert.ok(tgzs.includes(file), `${file} in release/packages`);
        const base = join(tmp, 'repro', ws.name.replace('/', '+'));
        const packDir = (dir: string): string => {
          const dest = `${dir}-out`;
          mkdirSync(dest, { recursive: true });
          const [info] = JSON.parse(npm(['pack', '--ignore-scripts', '--json', '--pack-destination', dest], dir)) as Array<{ filename: string }>;
          return join(dest, info!.filename);
        };
        // a: the released tarball unpacked; b: the same files written in reverse order with other mtimes
        const a = join(base, 'a');
        mkdirSync(a, { recursive: true });
        assert.equal(run('tar', ['-xzf', join(out, 'packages', file), '-C', a, '--strip-components=1']).status, 0);
        const files = readdirSync(a, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(a.length + 1)).sort();
        for (const f of files) utimesSync(join(a, f), new Date('2001-02-03T04:05:06Z'), new Date('2001-02-03T04:05:06Z'));
        copyFrom(a, [...files].reverse(), join(base, 'b'), new Date());
        const released = sha256(join(out, 'packages', file));
        assert.equal(sha256(packDir(a)), released, `${ws.name}: repacking the released files gives another tarball`);
        assert.equal(sha256(packDir(join(base, 'b'))), released, `${ws.name}: a reverse-order, new-mtime copy packs differently`);
        // and the workspace itself packs to the same bytes, unless someone edited it meanwhile (shared working tree)
        const now = packFiles(ws);
        const same = now.length === files.length && now.every((f) => existsSync(join(a, f)) && readFileSync(join(a, f)).equals(readFileSync(join(repoRoot, ws.location, f))));
        if (same) assert.equal(sha256(packDir(copyTo(ws, now, join(base, 'c')))), released, `${ws.name}: a fresh copy of the workspace packs differently`);
        else t.diagnostic(`${ws.name}: workspace files changed since release:prepare ran (concurrent edit); in-place comparison skipped`);
      }
    });

    it('writes a CycloneDX SBOM per package: the package as subject, its production dependencies, no dev tools', () => {
      for (const ws of published) {
        const file = join(out, 'sbom', `${ws.name.replace(/^@/, '').replace('/', '-')}-${ws.version}.cdx.json`);
        assert.ok(existsSync(file), file);
        const bom = JSON.parse(readFileSync(file, 'utf8')) as Obj;
        assert.equal(bom.bomFormat, 'CycloneDX');
        assert.match(String(bom.specVersion), /^1\.\d+$/);
        const subject = (bom.metadata as Obj).component as Obj;
        assert.equal(subject.name, ws.name);
        assert.equal(subject.version, ws.version);
        assert.equal(subject.purl, `pkg:npm/${ws.name.replace('@', '%40')}@${ws.version}`);
        const names = new Set((bom.components as Obj[]).map((c) => (c.group ? `${String(c.group)}/${String(c.name)}` : String(c.name))));
        for (const dep of Object.keys(ws.dependencies ?? {})) assert.ok(names.has(dep), `${ws.name}: dependency ${dep} missing from its SBOM`);
        for (const dev of ['typescript', 'tsx', 'ts-proto', 'playwright-core', '@changesets/cli']) {
          if (Object.keys(ws.dependencies ?? {}).includes(dev)) continue;
          assert.ok(!names.has(dev), `${ws.name}: dev tool ${dev} in its SBOM`);
        }
        for (const c of bom.components as Obj[]) assert.match(String(c.purl), /^pkg:npm\//, `${ws.name}: component without an npm purl`);
      }
    });

    it('writes SHA256SUMS that sha256sum -c accepts, covering every file', () => {
      const r = run('sha256sum', ['-c', 'SHA256SUMS'], { cwd: out });
      assert.equal(r.status, 0, r.stdout + r.stderr);
      const listed = readFileSync(join(out, 'SHA256SUMS'), 'utf8').trim().split('\n').map((l) => l.split('  ')[1]);
      const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name).slice(out.length + 1)]));
      assert.deepEqual(listed.sort(), walk(out).filter((f) => f !== 'SHA256SUMS').sort());
    });

    it('image context: npm ci --omit=dev installs the tarballs with production dependencies only, and the result runs', async () => {
      const ctx = join(out, 'images', 'framework');
      assert.deepEqual(readdirSync(ctx).sort(), ['mapperkit-framework-0.1.0.tgz', 'package-lock.json', 'package.json']);
      const inst = join(tmp, 'image-root');
      cpSync(ctx, inst, { recursive: true });
      // the Dockerfiles' install step
      npm(['ci', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline'], inst, 300_000);
      const nm = join(inst, 'node_modules');
      assert.ok(existsSync(join(nm, '@mapperkit/framework/dist/index.js')), 'the packed framework with its dist');
      for (const dev of ['typescript', 'ts-proto', 'protoc', 'tsx']) assert.ok(!existsSync(join(nm, dev)), `devDependency ${dev} installed`);
      // a mapper built on the installed framework starts and serves its probes
      const port = 20000 + Math.floor(Math.random() * 20000);
      const script = `
        import { createMapper, defineDriver, z } from '@mapperkit/framework';
        const driver = defineDriver({ protocol: 'probe', protocolConfig: z.object({}), visitorConfig: z.object({}), async connect() { throw new Error('no devices'); } });
        const dir = ${JSON.stringify(inst)};
        const m = await createMapper({ driver, config: 'grpc_server:\\n  socket_path: ' + dir + '/probe.sock\\ncommon:\\n  name: probe\\n  protocol: probe\\n  edgecore_sock: ' + dir + '/dmi.sock\\n  http_port: "${port}"\\nrest:\\n  bind_address: 127.0.0.1\\n', logger: undefined });
        const get = async (p) => (await fetch('http://127.0.0.1:${port}' + p)).status;
        console.log('PROBES ' + JSON.stringify({ healthz: await get('/healthz'), readyz: await get('/readyz') }));
        await m.stop();`;
      const r = run(process.execPath, ['--input-type=module', '-e', script], { cwd: inst, timeout: 60_000 });
      assert.equal(r.status, 0, r.stderr);
      const line = r.stdout.split('\n').find((l) => l.startsWith('PROBES '));
      assert.deepEqual(JSON.parse(line!.slice(7)), { healthz: 200, readyz: 503 }, 'alive, not ready (no edgecore)');
    });

    it('image contexts of the reference mappers carry the mapper and framework tarballs (manifest only, not built here)', () => {
      const manifest = JSON.parse(readFileSync(join(out, 'images', 'framework', 'package.json'), 'utf8')) as Obj;
      assert.deepEqual(manifest.dependencies, { '@mapperkit/framework': 'file:mapperkit-framework-0.1.0.tgz' });
      assert.ok(isObj(manifest.allowScripts));
      for (const name of REFERENCE_MAPPERS) {
        const ws = workspaces.find((w) => w.name === `@mapperkit/mapper-${name}`);
        assert.ok(ws, name);
        assert.ok(Object.keys(ws.dependencies ?? {}).includes('@mapperkit/framework'), `${name} depends on the framework (its image context includes that tarball)`);
      }
    });
  });

  describe('.github/workflows/release.yml and changesets', () => {
    const wf = parse(readFileSync(join(repoRoot, '.github/workflows/release.yml'), 'utf8')) as Obj;
    const jobs = wf.jobs as Record<string, Obj>;
    const steps = (job: string): Obj[] => (jobs[job]?.steps as Obj[] | undefined) ?? [];

    it('the release job runs the same release:prepare script, checks reproducibility, publishes with npm provenance', () => {
      const release = steps('release');
      assert.ok(release.some((s) => s.run === 'npm run release:prepare'));
      assert.ok(release.some((s) => typeof s.run === 'string' && s.run.includes('cmp ')), 'repack and compare');
      const cs = release.find((s) => String(s.uses).startsWith('changesets/action@'));
      assert.ok(cs);
      assert.equal(at2(cs, 'env', 'NPM_CONFIG_PROVENANCE'), 'true');
      assert.equal(at2(cs, 'with', 'publish'), 'npm run release:publish');
      assert.equal(at2(cs, 'with', 'version'), 'npm run release:version');
      assert.equal((jobs.release!.permissions as Obj)['id-token'], 'write', 'OIDC for npm provenance');
      const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
      assert.equal(pkg.scripts['release:publish'], 'changeset publish');
      assert.match(pkg.scripts['release:version']!, /^changeset version/);
    });

    it('SLSA provenance for the tarballs and the images, images signed, built from the release context', () => {
      assert.match(String(jobs['tarball-provenance']!.uses), /^slsa-framework\/slsa-github-generator\/\.github\/workflows\/generator_generic_slsa3\.yml@v\d+\.\d+\.\d+$/);
      assert.match(String(jobs['image-provenance']!.uses), /^slsa-framework\/slsa-github-generator\/\.github\/workflows\/generator_container_slsa3\.yml@v\d+\.\d+\.\d+$/);
      const build = steps('images').find((s) => String(s.uses).startsWith('docker/build-push-action@'));
      assert.ok(build);
      assert.equal(at2(build, 'with', 'context'), 'release/images/${{ matrix.mapper }}');
      assert.equal(at2(build, 'with', 'file'), 'packages/mappers/${{ matrix.mapper }}/Dockerfile');
      assert.ok(steps('images').some((s) => typeof s.run === 'string' && s.run.startsWith('cosign sign')));
      assert.deepEqual(((jobs.images!.strategy as Obj).matrix as Obj).mapper, [...REFERENCE_MAPPERS]);
      for (const [name, job] of Object.entries(jobs)) {
        for (const s of (job.steps as Obj[] | undefined) ?? []) if (s.uses) assert.match(String(s.uses), /@v\d+/, `${name}: ${String(s.uses)} without a version`);
      }
    });

    it('changesets: public packages versioned from main, private workspaces never', () => {
      const cfg = JSON.parse(readFileSync(join(repoRoot, '.changeset/config.json'), 'utf8')) as Obj;
      assert.equal(cfg.baseBranch, 'main');
      assert.equal(cfg.access, 'public');
      assert.deepEqual(cfg.privatePackages, { version: false, tag: false });
      assert.ok(existsSync(join(repoRoot, 'node_modules/.bin/changeset')), '@changesets/cli installed');
    });
  });
});

function at2(o: Obj, a: string, b: string): unknown {
  const x = o[a];
  return isObj(x) ? x[b] : undefined;
}
