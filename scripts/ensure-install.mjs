// SPDX-License-Identifier: Apache-2.0
// Installs dependencies when node_modules is missing or older than the lockfile / manifests.
// `npm ci` on a fresh clone (exactly the committed lockfile), `npm install` when only stale.
import { execSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const marker = join(root, 'node_modules', '.package-lock.json');
const manifests = [join(root, 'package.json'), join(root, 'package-lock.json')];
for (const base of ['packages', 'packages/mappers', 'examples']) {
  const dir = join(root, base);
  if (!existsSync(dir)) continue;
  for (const name of readdirSync(dir)) {
    const pj = join(dir, name, 'package.json');
    if (existsSync(pj)) manifests.push(pj);
  }
}
const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);
const newest = Math.max(...manifests.map(mtime));
if (!existsSync(marker)) {
  console.log('[ensure-install] node_modules missing: npm ci');
  execSync('npm ci --no-audit --no-fund', { cwd: root, stdio: 'inherit' });
} else if (mtime(marker) < newest) {
  console.log('[ensure-install] manifests changed: npm install');
  execSync('npm install --no-audit --no-fund', { cwd: root, stdio: 'inherit' });
} else {
  console.log('[ensure-install] node_modules up to date');
}
