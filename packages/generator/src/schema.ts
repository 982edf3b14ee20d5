// SPDX-License-Identifier: Apache-2.0
// JSON Schema files emitted from the driver's own config schemas, so editors validate
// config blobs in Device YAML (yaml-language-server `$schema` comments point at them).
import { mkdir, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { CreateMapperError } from './errors.js';
import { type LoadedProject, loadProject } from './project.js';

export interface SchemaOptions {
  readonly dir: string;
  /** Compiled driver, relative to `dir`. @default 'dist/driver.js' */
  readonly driver?: string;
  /** Output folder, relative to `dir`. @default 'schema' */
  readonly out?: string;
}

/** The schema documents for a loaded project (pure): the framework builds them from the driver. */
export function buildSchemas(p: LoadedProject): Record<string, Record<string, unknown>> {
  if (typeof p.fw.buildSchemas !== 'function') throw new CreateMapperError("this project's @mapperkit/framework cannot build schemas", { hint: 'upgrade it: npx create-mapper upgrade' });
  return p.fw.buildSchemas(p.driver);
}

/** Writes schema/*.json for the project's driver; resolves with the files written (relative). */
export async function writeSchemas(opts: SchemaOptions): Promise<string[]> {
  const p = await loadProject(opts.dir, opts.driver);
  const out = resolve(p.dir, opts.out ?? 'schema');
  await mkdir(out, { recursive: true });
  const written: string[] = [];
  for (const [file, schema] of Object.entries(buildSchemas(p))) {
    await writeFile(join(out, file), `${JSON.stringify(schema, null, 2)}\n`);
    written.push(relative(p.dir, join(out, file)));
  }
  return written;
}
