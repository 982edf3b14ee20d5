// SPDX-License-Identifier: Apache-2.0
// `create-mapper upgrade`: moves an existing project to a newer @mapperkit/framework release
// and applies the config migrations of the releases in between. User code is not touched.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Document, isMap, isScalar, parseDocument } from 'yaml';
import { CreateMapperError } from './errors.js';
import { ownVersion } from './templates.js';

export const FRAMEWORK_PACKAGE = '@mapperkit/framework';

/**
 * A change to config.yaml that a framework release needs (a renamed or removed key). Applied
 * to config.yaml and to the copies of it in resource/configmap.yaml (`data.configData`, text)
 * and deploy/values.yaml (`config`, a map with only some keys). Comments and formatting of
 * untouched keys are kept.
 */
export interface Migration {
  /** The framework version that needs it; applied when upgrading from below it to it or above. */
  readonly version: string;
  readonly description: string;
  /** Edits the parsed config.yaml in place; returns whether it changed anything. */
  migrate(config: Document): boolean;
}

/**
 * Migrations of released framework versions, oldest first. Empty so far: 0.1.x is the first
 * release train, and no config key has changed since.
 */
export const MIGRATIONS: readonly Migration[] = [];

export interface UpgradeOptions {
  /** Project directory. */
  readonly dir: string;
  /** Target framework version. @default the version of this create-mapper (they are released together) */
  readonly to?: string;
  /** Run `npm install` afterwards. @default true */
  readonly install?: boolean;
  /** @default {@link MIGRATIONS} */
  readonly migrations?: readonly Migration[];
  /** Report what would change without writing. @default false */
  readonly dryRun?: boolean;
}

export interface UpgradeResult {
  /** Version the project was on (installed, else the lower bound of its range). */
  readonly from: string;
  readonly to: string;
  /** Dependency range before and after. */
  readonly rangeBefore: string;
  readonly rangeAfter: string;
  /** Descriptions of the migrations applied. */
  readonly applied: readonly string[];
  /** Files written (relative to the project). */
  readonly changedFiles: readonly string[];
}

type Semver = [number, number, number, string];

function parseSemver(v: string): Semver | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/.exec(v.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3]), m[4] ?? ''] : undefined;
}

/** Compares two versions (x.y.z with optional prerelease, compared as text). */
export function compareVersions(a: string, b: string): number {
  const x = parseSemver(a);
  const y = parseSemver(b);
  if (!x || !y) throw new CreateMapperError(`not a version: "${x ? b : a}"`);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  if (x[3] === y[3]) return 0;
  if (x[3] === '') return 1;
  if (y[3] === '') return -1;
  return x[3] < y[3] ? -1 : 1;
}

function lowerBound(range: string): string | undefined {
  const m = /(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)/.exec(range);
  return m?.[1];
}

function applyToDoc(doc: Document, migrations: readonly Migration[], applied: Set<string>): boolean {
  let changed = false;
  for (const m of migrations) {
    if (m.migrate(doc)) {
      changed = true;
      applied.add(m.description);
    }
  }
  return changed;
}

/**
 * Migrates a YAML file that holds a copy of config.yaml at `path`: as text (a block scalar, the
 * ConfigMap's `configData`) or as a map (the Helm chart's `config` values).
 */
function migrateEmbedded(text: string, path: readonly string[], migrations: readonly Migration[], applied: Set<string>): string | undefined {
  const outer = parseDocument(text);
  const node = outer.getIn(path, true);
  if (isScalar(node) && typeof node.value === 'string') {
    const inner = parseDocument(node.value);
    if (!isMap(inner.contents) || !applyToDoc(inner, migrations, applied)) return undefined;
    node.value = inner.toString();
    return outer.toString();
  }
  if (isMap(node)) {
    // A Document over the same node: the migration edits the map in place.
    const inner = new Document();
    inner.contents = node;
    return applyToDoc(inner, migrations, applied) ? outer.toString() : undefined;
  }
  return undefined;
}

/**
 * Upgrades a project: sets `@mapperkit/framework` to `^<to>` in package.json, applies the
 * migrations for versions in (from, to], and runs `npm install`. Throws CreateMapperError for a
 * directory that is not a Mapperkit project, a bad version or a downgrade.
 */
export async function upgrade(opts: UpgradeOptions): Promise<UpgradeResult> {
  const dir = resolve(opts.dir);
  // 1. The project and its current framework version.
  const pkgFile = join(dir, 'package.json');
  if (!existsSync(pkgFile)) throw new CreateMapperError(`${dir} has no package.json`, { hint: 'run upgrade in a mapper project created by create-mapper' });
  const pkgText = readFileSync(pkgFile, 'utf8');
  const pkg = JSON.parse(pkgText) as { dependencies?: Record<string, string> };
  const rangeBefore = pkg.dependencies?.[FRAMEWORK_PACKAGE];
  if (rangeBefore === undefined) throw new CreateMapperError(`${pkgFile} does not depend on ${FRAMEWORK_PACKAGE}`, { hint: 'upgrade works on projects created by create-mapper' });
  const installedFile = join(dir, 'node_modules', ...FRAMEWORK_PACKAGE.split('/'), 'package.json');
  const installed = existsSync(installedFile) ? (JSON.parse(readFileSync(installedFile, 'utf8')) as { version: string }).version : undefined;
  const from = installed ?? lowerBound(rangeBefore);
  if (from === undefined) throw new CreateMapperError(`cannot tell the current framework version from "${rangeBefore}" (and it is not installed)`, { hint: 'run npm install first' });

  // 2. The target version.
  const to = opts.to ?? ownVersion();
  if (!parseSemver(to)) throw new CreateMapperError(`--to "${to}" is not a version (x.y.z)`);
  if (compareVersions(to, from) < 0) throw new CreateMapperError(`the project is on ${FRAMEWORK_PACKAGE} ${from}, newer than ${to}; upgrade does not downgrade`);

  // 3. Config migrations for versions in (from, to], oldest first.
  const due = [...(opts.migrations ?? MIGRATIONS)]
    .filter((m) => compareVersions(m.version, from) > 0 && compareVersions(m.version, to) <= 0)
    .sort((a, b) => compareVersions(a.version, b.version));
  const applied = new Set<string>();
  const writes = new Map<string, string>();
  const configFile = join(dir, 'config.yaml');
  if (due.length > 0 && existsSync(configFile)) {
    const doc = parseDocument(readFileSync(configFile, 'utf8'));
    if (doc.errors.length > 0) throw new CreateMapperError(`config.yaml: ${doc.errors[0]!.message}`, { hint: 'fix the YAML, then run upgrade again' });
    if (applyToDoc(doc, due, applied)) writes.set('config.yaml', doc.toString());
    for (const [file, path] of [
      ['resource/configmap.yaml', ['data', 'configData']],
      ['deploy/values.yaml', ['config']],
    ] as const) {
      const p = join(dir, file);
      if (!existsSync(p)) continue;
      const out = migrateEmbedded(readFileSync(p, 'utf8'), path, due, applied);
      if (out !== undefined) writes.set(file, out);
    }
  }

  // 4. The dependency range (kept as it is when it already allows `to`).
  const rangeAfter = `^${to}`;
  if (rangeAfter !== rangeBefore) {
    const indent = /^(\s+)"/m.exec(pkgText)?.[1] ?? '  ';
    pkg.dependencies![FRAMEWORK_PACKAGE] = rangeAfter;
    writes.set('package.json', `${JSON.stringify(pkg, null, indent)}\n`);
  }

  if (!opts.dryRun) {
    for (const [file, text] of writes) await writeFile(join(dir, file), text);
    // 5. Install.
    if ((opts.install ?? true) && process.env['CREATE_MAPPER_SKIP_INSTALL'] !== '1') {
      const r = spawnSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: dir, stdio: 'inherit' });
      if (r.status !== 0) throw new CreateMapperError(`npm install failed in ${dir} (exit ${r.status ?? r.signal})`, { hint: 'package.json is already updated; fix the install problem and run npm install' });
    }
  }
  return { from, to, rangeBefore, rangeAfter, applied: [...applied], changedFiles: [...writes.keys()] };
}
