// SPDX-License-Identifier: Apache-2.0
// prepack: copies the repository's top-level templates/ into the package (files: "templates"),
// so the published create-mapper carries them. postpack (`--clean`) removes the copy again.
import { cpSync, existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const pkg = fileURLToPath(new URL('..', import.meta.url));
const dest = `${pkg}templates`;
const src = fileURLToPath(new URL('../../../templates', import.meta.url));
rmSync(dest, { recursive: true, force: true });
if (process.argv.includes('--clean')) process.exit(0);
if (!existsSync(src)) {
  console.error(`copy-templates: ${src} not found`);
  process.exit(1);
}
cpSync(src, dest, { recursive: true });
