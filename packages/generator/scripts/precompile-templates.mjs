// SPDX-License-Identifier: Apache-2.0
// prepack (after tsc -b and copy-templates): writes dist/templates.compiled.cjs from the
// package's templates/ copy, so the published CLI renders without compiling templates.
// Written to a temporary file and renamed: packs may run concurrently.
import { renameSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PRECOMPILED_FILE, precompileTemplates } from '../dist/precompile.js';

const tmp = `${PRECOMPILED_FILE}.${process.pid}.tmp`;
writeFileSync(tmp, precompileTemplates(fileURLToPath(new URL('../templates', import.meta.url))));
renameSync(tmp, PRECOMPILED_FILE);
