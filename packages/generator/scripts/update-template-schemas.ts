// SPDX-License-Identifier: Apache-2.0
// Regenerates templates/*/schema/*.json: the driver-derived JSON Schemas `create-mapper schema`
// would write for a freshly generated project, shipped in the template so the Device YAML's
// `$schema` comments work before the first build. (config.schema.json comes from the framework's
// config schema, which changes with the framework, so it is not shipped: `schema` writes it.) Run after changing a template's driver schemas:
//   npm run update-schemas -w create-mapper
// (test/doctor.test.ts fails while they are stale.)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSchemas, loadProject, scaffold, STREAM_OVERLAY } from '../src/index.js';

const repo = new URL('../../../', import.meta.url).pathname;
const SENTINEL = 'zzsentinel';
const tmp = mkdtempSync(join(tmpdir(), 'create-mapper-schemas-'));
try {
  const outputs: Record<string, Record<string, string>> = {};
  for (const stream of [false, true]) {
    const { dir } = await scaffold({ targetDir: join(tmp, `p-${stream}`), protocol: SENTINEL, stream });
    symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'));
    execFileSync(join(repo, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], { cwd: dir, stdio: 'inherit' });
    const schemas = buildSchemas(await loadProject(dir));
    delete schemas['config.schema.json'];
    outputs[String(stream)] = Object.fromEntries(Object.entries(schemas).map(([f, s]) => [f, `${JSON.stringify(s, null, 2)}\n`.replaceAll(SENTINEL, '{{protocol}}')]));
  }
  const write = (folder: string, files: Record<string, string>): void => {
    const d = join(repo, 'templates', folder, 'schema');
    rmSync(d, { recursive: true, force: true });
    if (Object.keys(files).length === 0) return;
    mkdirSync(d, { recursive: true });
    for (const [f, text] of Object.entries(files)) writeFileSync(join(d, f), text);
  };
  const base = outputs['false']!;
  const stream = outputs['true']!;
  write('default', base);
  // The overlay carries only the files --stream changes.
  write(STREAM_OVERLAY, Object.fromEntries(Object.entries(stream).filter(([f, t]) => base[f] !== t)));
  for (const folder of ['default', STREAM_OVERLAY]) {
    const d = join(repo, 'templates', folder, 'schema');
    if (existsSync(d)) console.log(`${folder}/schema: ${readFileSync(join(d, existsSync(join(d, 'devices.schema.json')) ? 'devices.schema.json' : 'visitor-config.schema.json'), 'utf8').length} bytes (devices)`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
