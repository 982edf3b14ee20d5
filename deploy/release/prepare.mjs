#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// `npm run release:prepare`: the release steps that run anywhere, and exactly what CI's release workflow runs.
//   1. builds the workspaces (tsc -b), unless --skip-build;
//   2. `npm pack` of every published (non-private) workspace into <out>/packages/ (reproducible: npm writes fixed
//      mtimes and modes, so the same commit gives byte-identical tarballs);
//   3. a CycloneDX SBOM per package into <out>/sbom/: `npm sbom --sbom-format cyclonedx --omit dev` on the package's
//      own install root (its tarball installed as users install it), so it lists what users really get;
//   4. an image build context per reference mapper in <out>/images/<mapper>/: the tarballs it needs, a package.json
//      that installs the mapper tarball (workspace dependencies overridden to their tarballs) and its package-lock.json,
//      so the Dockerfile's `npm ci --omit=dev` installs exactly locked production dependencies;
//   5. <out>/SHA256SUMS over every file written (sha256sum -c compatible).
// Usage: node deploy/release/prepare.mjs [--out DIR] [--skip-build] [--only NAME ...] [--image WORKSPACE ...] [--offline]
//   --only limits the packed workspaces (npm names); --image adds image contexts (default: the four reference mappers).
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';

const root = resolve(new URL('../..', import.meta.url).pathname);
export const REFERENCE_IMAGES = ['@mapperkit/mapper-modbus', '@mapperkit/mapper-opcua', '@mapperkit/mapper-ble', '@mapperkit/mapper-usb-camera'];

function parseArgs(argv) {
  const opts = { out: join(root, 'release'), build: true, only: [], images: [], offline: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--out') opts.out = resolve(next());
    else if (a === '--skip-build') opts.build = false;
    else if (a === '--only') opts.only.push(next());
    else if (a === '--image') opts.images.push(next());
    else if (a === '--offline') opts.offline = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (opts.images.length === 0) opts.images = [...REFERENCE_IMAGES];
  return opts;
}

const npmAsync = async (args, cwd) => (await promisify(execFile)('npm', args, { cwd, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 })).stdout;
const npm = (args, cwd = root) => execFileSync('npm', args, { cwd, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] });
const sha256File = (p) => createHash('sha256').update(readFileSync(p)).digest('hex');

/** Workspaces as `npm query .workspace` reports them: name, version, location, private, dependencies. */
export function workspaces() {
  return JSON.parse(npm(['query', '.workspace'])).map((w) => ({
    name: w.name,
    version: w.version,
    location: w.location,
    private: w.private === true,
    dependencies: w.dependencies ?? {},
  }));
}

/** npm pack of one workspace; returns the tarball path. --ignore-scripts: packing never runs package code. */
export function pack(ws, dest) {
  mkdirSync(dest, { recursive: true });
  const [info] = JSON.parse(npm(['pack', '--ignore-scripts', '--json', '--pack-destination', dest, '-w', ws.name]));
  return join(dest, info.filename);
}

/**
 * CycloneDX SBOM of a published package, computed from its install root (see installRoot): exactly the production
 * dependency tree a user gets from `npm install <package>` with today's resolution (the image's npm layer for the
 * mappers). `npm sbom -w` inside the monorepo was not usable: it drops some direct dependencies of workspaces
 * (seen: @bufbuild/protobuf of the framework) and names the monorepo root as the subject.
 */
export async function sbom(ws, rootDir) {
  const bom = JSON.parse(await npmAsync(['sbom', '--package-lock-only', '--sbom-format', 'cyclonedx', '--sbom-type', 'library', '--omit', 'dev'], rootDir));
  const purl = `pkg:npm/${ws.name.replace('@', '%40')}@${ws.version}`;
  bom.metadata.component = { 'bom-ref': `${ws.name}@${ws.version}`, type: 'library', name: ws.name, version: ws.version, purl };
  bom.components = bom.components.filter((c) => c.purl !== purl);
  for (const c of bom.components) if (typeof c.purl === 'string') c.purl = c.purl.replace(/\?.*$/, '');
  return bom;
}

function tarballName(ws) {
  return `${ws.name.replace(/^@/, '').replace('/', '-')}-${ws.version}.tgz`;
}

/** Workspace dependencies of a workspace, transitively (production dependencies only). */
function workspaceClosure(ws, all) {
  const byName = new Map(all.map((w) => [w.name, w]));
  const seen = new Map();
  const visit = (w) => {
    for (const dep of Object.keys(w.dependencies)) {
      const d = byName.get(dep);
      if (d && !seen.has(d.name)) {
        seen.set(d.name, d);
        visit(d);
      }
    }
  };
  visit(ws);
  return [...seen.values()];
}

/**
 * Install root of one package: its tarball and its workspace dependencies' tarballs, a package.json installing it
 * (workspace dependencies overridden to the tarballs) and the package-lock.json npm resolves for it. Used for the SBOMs
 * and, for the mappers, as the image build context.
 */
export async function installRoot(ws, all, tarballs, dir, { offline = false } = {}) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const deps = workspaceClosure(ws, all);
  const local = (w) => {
    const src = tarballs.get(w.name) ?? pack(w, join(dir, '.pack'));
    copyFileSync(src, join(dir, tarballName(w)));
    return `file:${tarballName(w)}`;
  };
  const manifest = {
    name: `image-${ws.name.replace(/^@/, '').replace('/', '-')}`,
    version: ws.version,
    private: true,
    description: `Install root of the ${ws.name} container image (generated by npm run release:prepare)`,
    dependencies: { [ws.name]: local(ws) },
    overrides: Object.fromEntries(deps.map((d) => [d.name, local(d)])),
    // The repository's install-script approvals (npm >= 11 runs only approved install scripts; older npm ignores it).
    allowScripts: JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).allowScripts ?? {},
  };
  rmSync(join(dir, '.pack'), { recursive: true, force: true });
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  await npmAsync(['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund', ...(offline ? ['--offline'] : ['--prefer-offline'])], dir);
  return dir;
}

function listFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listFiles(p));
    else out.push(p);
  }
  return out;
}

export async function prepare(opts) {
  const log = (m) => process.stderr.write(`[release:prepare] ${m}\n`);
  if (opts.build) {
    log('building (tsc -b)');
    execFileSync('npx', ['tsc', '-b'], { cwd: root, stdio: 'inherit' });
  }
  const all = workspaces();
  const published = all.filter((w) => !w.private && (opts.only.length === 0 || opts.only.includes(w.name)));
  for (const name of opts.only) if (!published.some((w) => w.name === name)) throw new Error(`--only ${name}: not a published workspace`);
  rmSync(opts.out, { recursive: true, force: true });
  const tarballs = new Map();
  for (const ws of published) {
    const tgz = pack(ws, join(opts.out, 'packages'));
    tarballs.set(ws.name, tgz);
    log(`${ws.name}@${ws.version}: ${relative(opts.out, tgz)} sha256 ${sha256File(tgz)}`);
  }
  // Install roots resolve their locks from the registry (or the npm cache): all at once.
  const scratch = mkdtempSync(join(tmpdir(), 'mapperkit-release-'));
  try {
    mkdirSync(join(opts.out, 'sbom'), { recursive: true });
    const sboms = published.map(async (ws) => {
      const dir = await installRoot(ws, all, tarballs, join(scratch, tarballName(ws)), { offline: opts.offline });
      const bom = await sbom(ws, dir);
      writeFileSync(join(opts.out, 'sbom', `${tarballName(ws).replace(/\.tgz$/, '')}.cdx.json`), `${JSON.stringify(bom, null, 2)}\n`);
    });
    const images = opts.images.map(async (name) => {
      const ws = all.find((w) => w.name === name);
      if (!ws) throw new Error(`--image ${name}: no such workspace`);
      const short = name.replace(/^@mapperkit\/mapper-/, '').replace(/^@mapperkit\//, '');
      await installRoot(ws, all, tarballs, join(opts.out, 'images', short), { offline: opts.offline });
      log(`image context ${relative(opts.out, join(opts.out, 'images', short))}`);
    });
    await Promise.all([...sboms, ...images]);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const sums = listFiles(opts.out).map((p) => `${sha256File(p)}  ${relative(opts.out, p)}`);
  writeFileSync(join(opts.out, 'SHA256SUMS'), `${sums.join('\n')}\n`);
  log(`${sums.length} files, checksums in ${relative(root, join(opts.out, 'SHA256SUMS')) || join(opts.out, 'SHA256SUMS')}`);
  return { out: opts.out, packages: [...tarballs.values()] };
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  try {
    await prepare(parseArgs(process.argv.slice(2)));
  } catch (err) {
    process.stderr.write(`[release:prepare] ${err.stderr ? String(err.stderr).trim() : err.message}\n`);
    process.exit(1);
  }
}

