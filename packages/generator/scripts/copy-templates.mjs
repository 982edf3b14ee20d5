// SPDX-License-Identifier: Apache-2.0
// prepack: puts a copy of the repository's top-level templates/ into the package
// (files: "templates"), so the published create-mapper carries them. The copy is left in place
// (it is gitignored; in the monorepo create-mapper reads templates/ at the root), because
// packs may run concurrently (tests): one pack must never delete what another is packing.
// The copy is only replaced when it differs, through a rename.
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = fileURLToPath(new URL('..', import.meta.url));
const dest = join(pkg, 'templates');
const src = fileURLToPath(new URL('../../../templates', import.meta.url));
if (!existsSync(src)) {
  console.error(`copy-templates: ${src} not found`);
  process.exit(1);
}

function files(dir, prefix = '') {
  return readdirSync(dir)
    .sort()
    .flatMap((n) => (statSync(join(dir, n)).isDirectory() ? files(join(dir, n), `${prefix}${n}/`) : [`${prefix}${n}`]));
}
function same(a, b) {
  if (!existsSync(b)) return false;
  const fa = files(a);
  const fb = files(b);
  return fa.length === fb.length && fa.every((f, i) => f === fb[i] && readFileSync(join(a, f)).equals(readFileSync(join(b, f))));
}

if (!same(src, dest)) {
  const tmp = mkdtempSync(join(pkg, '.templates-'));
  try {
    cpSync(src, join(tmp, 'templates'), { recursive: true });
    if (existsSync(dest)) renameSync(dest, join(tmp, 'old'));
    renameSync(join(tmp, 'templates'), dest);
  } catch (err) {
    // A concurrent pack may have replaced it first; fine if the copy is now current.
    if (!same(src, dest)) throw err;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
