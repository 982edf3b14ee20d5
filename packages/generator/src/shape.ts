// SPDX-License-Identifier: Apache-2.0
// The shape every generated project has, so that hand-written mappers (the reference mappers)
// can be held to it and read as worked examples: same files, same scripts, same entry point,
// and the files agreeing with each other (ConfigMap = config.yaml, one protocol everywhere).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

export interface ShapeProblem {
  /** File or folder, relative to the project. */
  readonly file: string;
  readonly message: string;
}

/**
 * Files every project has (beyond the checks below). Generated files left out on purpose:
 * `test/simulator.ts` (the example protocol's simulated device; a real protocol's peer is
 * whatever can simulate it: a pymodbus process, a node-opcua server, emulated noble bindings,
 * ffmpeg's test source), `.gitignore` and `.dockerignore` (per repository, not per mapper).
 */
export const SHAPE_FILES: readonly { readonly file: string; readonly why: string }[] = [
  { file: 'package.json', why: 'npm project' },
  { file: 'tsconfig.json', why: 'build' },
  { file: 'tsconfig.test.json', why: 'type-check of src and test (npm run typecheck)' },
  { file: 'src/driver.ts', why: 'the driver, default export' },
  { file: 'src/main.ts', why: 'the entry point' },
  { file: 'config.yaml', why: 'mapper config (upstream keys)' },
  { file: 'Dockerfile', why: 'image' },
  { file: 'README.md', why: 'documentation' },
  { file: 'test/driver.test.ts', why: "the framework's driver conformance suite" },
  { file: 'test/mapper.test.ts', why: 'the whole mapper against an edgecore' },
  { file: 'resource/configmap.yaml', why: 'upstream-compatible ConfigMap (configData)' },
  { file: 'resource/deployment.yaml', why: 'upstream-compatible Deployment' },
  { file: 'deploy/values.yaml', why: 'values for the Helm chart charts/mapper' },
  { file: 'schema/devices.schema.json', why: "JSON Schema of the Device YAML, from the driver's schemas (`<mapper> schema`)" },
  { file: 'schema/protocol-config.schema.json', why: 'JSON Schema of the protocol configData' },
  { file: 'schema/visitor-config.schema.json', why: 'JSON Schema of the visitor configData' },
];

/** Scripts every project has (a generated one also has `simulator`, see SHAPE_FILES). */
export const SHAPE_SCRIPTS: readonly string[] = ['build', 'start', 'dev', 'typecheck', 'test'];

/** The entry point, as code lines (comments and blank lines ignored). */
export const ENTRY_POINT: readonly string[] = ["import { runMapper } from '@mapperkit/framework';", "import driver from './driver.js';", 'await runMapper({ driver });'];

const codeLines = (text: string): string[] =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('//'));

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const at = (v: unknown, path: string): unknown => path.split('.').reduce<unknown>((o, k) => (isObj(o) ? o[k] : Array.isArray(o) ? o[Number(k)] : undefined), v);

/** Deep equality of parsed YAML/JSON values. */
function same(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => same(x, b[i]));
  if (isObj(a) && isObj(b)) {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return same(ka, kb) && ka.every((k) => same(a[k], b[k]));
  }
  return Object.is(a, b);
}

/** All documents of a YAML file; a parse error is reported and yields none. */
function yamlDocs(dir: string, file: string, problems: ShapeProblem[]): unknown[] {
  const docs: unknown[] = [];
  for (const d of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
    if (d.errors.length > 0) {
      problems.push({ file, message: `does not parse: ${d.errors[0]!.message.split('\n')[0]}` });
      return [];
    }
    const v: unknown = d.toJS();
    if (v !== null && v !== undefined) docs.push(v);
  }
  return docs;
}

/** Checks a project against the generated-project shape; empty when it conforms. */
export function checkProjectShape(dir: string): ShapeProblem[] {
  const problems: ShapeProblem[] = [];
  const has = (f: string): boolean => existsSync(join(dir, f));
  const read = (f: string): string => readFileSync(join(dir, f), 'utf8');
  for (const { file, why } of SHAPE_FILES) if (!has(file)) problems.push({ file, message: `missing (${why})` });

  if (has('package.json')) {
    const pkg = JSON.parse(read('package.json')) as { type?: string; scripts?: Record<string, string>; dependencies?: Record<string, string> };
    if (pkg.type !== 'module') problems.push({ file: 'package.json', message: '"type" must be "module"' });
    for (const s of SHAPE_SCRIPTS) if (!pkg.scripts?.[s]) problems.push({ file: 'package.json', message: `no "${s}" script` });
    const range = pkg.dependencies?.['@mapperkit/framework'];
    if (!range || !/^\^\d+\.\d+\.\d+/.test(range)) problems.push({ file: 'package.json', message: `dependencies["@mapperkit/framework"] must be a caret range (is ${JSON.stringify(range)})` });
  }
  if (has('src/main.ts') && codeLines(read('src/main.ts')).join('\n') !== ENTRY_POINT.join('\n')) {
    problems.push({ file: 'src/main.ts', message: `must be the three-line entry point:\n${ENTRY_POINT.join('\n')}` });
  }
  if (has('src/driver.ts') && !/^export default /m.test(read('src/driver.ts'))) {
    problems.push({ file: 'src/driver.ts', message: 'must export the driver as default (export default defineDriver({...}))' });
  }
  if (has('test/driver.test.ts') && !read('test/driver.test.ts').includes('describeDriverConformance(')) {
    problems.push({ file: 'test/driver.test.ts', message: "must run the framework's driver conformance suite (describeDriverConformance)" });
  }

  // config.yaml, and everything that repeats it: the ConfigMap, the Helm values, the CRDs.
  let config: Obj | undefined;
  if (has('config.yaml')) {
    const c: unknown = parse(read('config.yaml'));
    if (!at(c, 'grpc_server.socket_path') || !at(c, 'common.name') || !at(c, 'common.protocol')) problems.push({ file: 'config.yaml', message: 'needs grpc_server.socket_path, common.name and common.protocol' });
    else config = c as Obj;
  }
  const protocol = config ? String(at(config, 'common.protocol')) : undefined;

  let configMapName: unknown;
  if (has('resource/configmap.yaml')) {
    const cm = yamlDocs(dir, 'resource/configmap.yaml', problems).find((d) => at(d, 'kind') === 'ConfigMap');
    const data = at(cm, 'data.configData');
    configMapName = at(cm, 'metadata.name');
    if (typeof data !== 'string') problems.push({ file: 'resource/configmap.yaml', message: 'needs a ConfigMap with data.configData (the config.yaml text, as upstream ships it)' });
    else if (config && !same(parse(data), config)) problems.push({ file: 'resource/configmap.yaml', message: 'data.configData differs from config.yaml (keep them in step)' });
  }
  if (has('resource/deployment.yaml')) {
    const dep = yamlDocs(dir, 'resource/deployment.yaml', problems).find((d) => at(d, 'kind') === 'Deployment');
    const volumes = at(dep, 'spec.template.spec.volumes');
    const cmVolume = Array.isArray(volumes) ? (volumes as unknown[]).find((v) => at(v, 'configMap') !== undefined) : undefined;
    if (!dep) problems.push({ file: 'resource/deployment.yaml', message: 'needs a Deployment' });
    else if (at(dep, 'spec.strategy.type') !== 'Recreate') problems.push({ file: 'resource/deployment.yaml', message: 'needs strategy.type Recreate (during a rolling update two pods would own one socket path)' });
    if (dep && (!same(at(cmVolume, 'configMap.items'), [{ key: 'configData', path: 'config.yaml' }]) || (configMapName !== undefined && at(cmVolume, 'configMap.name') !== configMapName))) {
      problems.push({ file: 'resource/deployment.yaml', message: "must mount the ConfigMap's key configData as config.yaml (upstream layout)" });
    }
  }
  if (has('deploy/values.yaml') && protocol !== undefined) {
    const p = at(parse(read('deploy/values.yaml')), 'config.common.protocol');
    if (p !== protocol) problems.push({ file: 'deploy/values.yaml', message: `config.common.protocol is ${JSON.stringify(p)}, config.yaml says ${JSON.stringify(protocol)}` });
  }

  const crds = has('devices') ? readdirSync(join(dir, 'devices')).filter((f) => /\.ya?ml$/.test(f)).sort() : [];
  const docs = crds.flatMap((f) => yamlDocs(dir, `devices/${f}`, problems).map((d) => ({ f, d })));
  if (!docs.some(({ d }) => at(d, 'kind') === 'DeviceModel') || !docs.some(({ d }) => at(d, 'kind') === 'Device')) {
    problems.push({ file: 'devices/', message: 'needs example DeviceModel and Device YAML' });
  }
  if (protocol !== undefined) {
    for (const { f, d } of docs) {
      const name = at(d, 'metadata.name');
      const p: unknown = at(d, 'kind') === 'DeviceModel' ? at(d, 'spec.protocol') : at(d, 'kind') === 'Device' ? at(d, 'spec.protocol.protocolName') : protocol;
      if (p !== protocol) problems.push({ file: `devices/${f}`, message: `${String(at(d, 'kind'))} ${String(name)}: protocol ${JSON.stringify(p)}, config.yaml says ${JSON.stringify(protocol)}` });
    }
  }
  return problems;
}
