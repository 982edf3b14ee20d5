// SPDX-License-Identifier: Apache-2.0
// `npm run bench`: the framework benchmark, then every workspace's own "bench" script.
// Results land in bench/results/*.json; the README summarises them.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const only = process.argv.slice(2);
const run = (name: string, cmd: string, args: string[], cwd = root): void => {
  if (only.length > 0 && !only.includes(name)) return;
  console.log(`\n=== bench: ${name} ===`);
  const r = spawnSync(cmd, args, { cwd, stdio: 'inherit' });
  if (r.status !== 0) console.error(`bench ${name} failed (exit ${r.status})`);
};

run('framework', process.execPath, ['--import', 'tsx', join(root, 'bench', 'framework.ts')]);
for (const base of ['packages', 'packages/mappers', 'examples']) {
  const dir = join(root, base);
  if (!existsSync(dir)) continue;
  for (const name of readdirSync(dir)) {
    const pj = join(dir, name, 'package.json');
    if (!existsSync(pj)) continue;
    const pkg = JSON.parse(readFileSync(pj, 'utf8')) as { name: string; scripts?: Record<string, string> };
    if (pkg.scripts?.['bench']) run(name, 'npm', ['run', 'bench', '-w', pkg.name]);
  }
}
