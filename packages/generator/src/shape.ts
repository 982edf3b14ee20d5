// SPDX-License-Identifier: Apache-2.0
// The shape every generated project has, so that hand-written mappers (the reference mappers)
// can be held to it and read as worked examples: same files, same scripts, same entry point.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

export interface ShapeProblem {
  /** File or folder, relative to the project. */
  readonly file: string;
  readonly message: string;
}

/** Files every project has (beyond the checks below). */
export const SHAPE_FILES: readonly { readonly file: string; readonly why: string }[] = [
  { file: 'package.json', why: 'npm project' },
  { file: 'tsconfig.json', why: 'build' },
  { file: 'src/driver.ts', why: 'the driver, default export' },
  { file: 'src/main.ts', why: 'the entry point' },
  { file: 'config.yaml', why: 'mapper config (upstream keys)' },
  { file: 'Dockerfile', why: 'image' },
  { file: 'README.md', why: 'documentation' },
  { file: 'resource/configmap.yaml', why: 'upstream-compatible ConfigMap (configData)' },
  { file: 'resource/deployment.yaml', why: 'upstream-compatible Deployment' },
];

/** Scripts every project has. */
export const SHAPE_SCRIPTS: readonly string[] = ['build', 'test'];

/** The entry point, as code lines (comments and blank lines ignored). */
export const ENTRY_POINT: readonly string[] = ["import { runMapper } from '@mapperkit/framework';", "import driver from './driver.js';", 'await runMapper({ driver });'];

const codeLines = (text: string): string[] =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('//'));

/** Checks a project against the generated-project shape; empty when it conforms. */
export function checkProjectShape(dir: string): ShapeProblem[] {
  const problems: ShapeProblem[] = [];
  const has = (f: string): boolean => existsSync(join(dir, f));
  for (const { file, why } of SHAPE_FILES) if (!has(file)) problems.push({ file, message: `missing (${why})` });

  if (has('package.json')) {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { type?: string; scripts?: Record<string, string>; dependencies?: Record<string, string> };
    if (pkg.type !== 'module') problems.push({ file: 'package.json', message: '"type" must be "module"' });
    for (const s of SHAPE_SCRIPTS) if (!pkg.scripts?.[s]) problems.push({ file: 'package.json', message: `no "${s}" script` });
    const range = pkg.dependencies?.['@mapperkit/framework'];
    if (!range || !/^\^\d+\.\d+\.\d+/.test(range)) problems.push({ file: 'package.json', message: `dependencies["@mapperkit/framework"] must be a caret range (is ${JSON.stringify(range)})` });
  }
  if (has('src/main.ts') && codeLines(readFileSync(join(dir, 'src/main.ts'), 'utf8')).join('\n') !== ENTRY_POINT.join('\n')) {
    problems.push({ file: 'src/main.ts', message: `must be the three-line entry point:\n${ENTRY_POINT.join('\n')}` });
  }
  if (has('src/driver.ts') && !/^export default /m.test(readFileSync(join(dir, 'src/driver.ts'), 'utf8'))) {
    problems.push({ file: 'src/driver.ts', message: 'must export the driver as default (export default defineDriver({...}))' });
  }
  if (has('config.yaml')) {
    const c = parse(readFileSync(join(dir, 'config.yaml'), 'utf8')) as { grpc_server?: { socket_path?: unknown }; common?: { name?: unknown; protocol?: unknown } } | null;
    if (!c?.grpc_server?.socket_path || !c.common?.name || !c.common.protocol) problems.push({ file: 'config.yaml', message: 'needs grpc_server.socket_path, common.name and common.protocol' });
  }
  const tests = has('test') ? readdirSync(join(dir, 'test')).filter((f) => f.endsWith('.test.ts')) : [];
  if (!tests.some((f) => readFileSync(join(dir, 'test', f), 'utf8').includes('describeDriverConformance('))) {
    problems.push({ file: 'test/', message: "no test runs the framework's driver conformance suite (describeDriverConformance)" });
  }
  const crds = has('devices') ? readdirSync(join(dir, 'devices')).filter((f) => /\.ya?ml$/.test(f)) : [];
  const texts = crds.map((f) => readFileSync(join(dir, 'devices', f), 'utf8')).join('\n');
  if (!/^kind: DeviceModel$/m.test(texts) || !/^kind: Device$/m.test(texts)) problems.push({ file: 'devices/', message: 'needs example DeviceModel and Device YAML' });
  return problems;
}
