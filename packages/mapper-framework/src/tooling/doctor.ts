// SPDX-License-Identifier: Apache-2.0
// `mapper-<protocol> doctor`: checks config.yaml and Device/DeviceModel YAML against the driver's
// schemas and the CRD rules edgecore and the framework apply, and that edgecore's socket
// answers. Every problem names the file, the path in it, the line and a fix.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join, relative, resolve } from 'node:path';
import { type Document, isMap, isSeq, LineCounter, type Node, parseAllDocuments } from 'yaml';
import { type MapperConfig, parseMapperConfig } from '../config.js';
import { deviceModelRef, deviceModelToProto, deviceProtocol, deviceToProto, parseCrdYaml } from '../dmi/crd.js';
import { deviceFromProto, modelFromProto } from '../dmi/model.js';
import type { DriverDefinition } from '../driver.js';
import type { StandardSchemaV1 } from '../schema.js';
import { checkRange, parseValue } from '../values.js';

export interface DoctorProblem {
  readonly severity: 'error' | 'warning';
  /** File, relative to the project. */
  readonly file: string;
  /** Where in the file: a key path, prefixed by the object for CRD files. */
  readonly path: string;
  readonly message: string;
  readonly hint?: string;
  /** 1-based line of `path` in `file`, when it can be found. */
  readonly line?: number;
}

export interface DoctorOptions {
  /** The mapper's driver: its schemas and checkProperty are the rules. */
  readonly driver: DriverDefinition<unknown, unknown>;
  /** Directory that relative paths (and reported file names) are relative to. @default process.cwd() */
  readonly baseDir?: string;
  /** @default 'config.yaml' */
  readonly configFile?: string;
  /** YAML files or folders with Device/DeviceModel objects. @default ['devices'] */
  readonly devices?: readonly string[];
  /** Check that edgecore's socket accepts a connection. @default true */
  readonly checkSocket?: boolean;
}

export interface DoctorReport {
  readonly problems: readonly DoctorProblem[];
  readonly errors: number;
  readonly warnings: number;
  readonly checked: { readonly config: string; readonly files: readonly string[]; readonly devices: number; readonly models: number; readonly socket: 'reachable' | 'unreachable' | 'skipped' };
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function issuePath(issue: { path?: ReadonlyArray<PropertyKey | { key: PropertyKey }> | undefined }): string {
  return (issue.path ?? []).map((p) => String(typeof p === 'object' && p !== null && 'key' in p ? p.key : p)).join('.');
}

async function validate(schema: StandardSchemaV1, value: unknown): Promise<{ path: string; message: string }[]> {
  return (await parseWith(schema, value)).issues;
}

async function parseWith(schema: StandardSchemaV1, value: unknown): Promise<{ value: unknown; issues: { path: string; message: string }[] }> {
  const r = await schema['~standard'].validate(value);
  return r.issues ? { value: undefined, issues: r.issues.map((i) => ({ path: issuePath(i), message: i.message })) } : { value: r.value, issues: [] };
}

function yamlFiles(dir: string, entries: readonly string[]): string[] {
  const out: string[] = [];
  for (const e of entries) {
    const p = resolve(dir, e);
    if (!existsSync(p)) continue;
    if (statSync(p).isDirectory()) {
      for (const f of readdirSync(p).sort()) if (/\.ya?ml$/.test(f)) out.push(join(p, f));
    } else out.push(p);
  }
  return out;
}

function socketReachable(path: string, timeoutMs = 1000): Promise<string | undefined> {
  return new Promise((done) => {
    const s = connect(path);
    const finish = (err?: string): void => {
      clearTimeout(timer);
      s.destroy();
      done(err);
    };
    const timer = setTimeout(() => finish(`no answer within ${timeoutMs} ms`), timeoutMs);
    s.once('connect', () => finish());
    s.once('error', (e) => finish(e.message));
  });
}

/** Finds the line of a problem's path ("Device ns/name: spec.x[0].y", or "common.x" for config.yaml) in a YAML text. */
class YamlLines {
  private readonly docs: Document.Parsed[];
  private readonly lc = new LineCounter();

  constructor(text: string) {
    const all = parseAllDocuments(text, { lineCounter: this.lc });
    this.docs = Array.isArray(all) ? all : [];
  }

  lineOf(path: string): number | undefined {
    const m = /^(Device|DeviceModel) ([^:\s]+)(?:: (.*))?$/.exec(path);
    let doc: Document.Parsed | undefined = this.docs[0];
    let rest = path;
    if (m) {
      doc = this.docs.find((d) => {
        const o = d.toJS() as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null;
        return o !== null && o.kind === m[1] && `${String(o.metadata?.namespace ?? 'default')}/${String(o.metadata?.name ?? '')}` === m[2];
      });
      rest = m[3] ?? '';
    }
    if (!doc) return undefined;
    let node: unknown = doc.contents;
    let found = node as Node | null;
    for (const seg of rest.split(/\.|(?=\[)/).filter(Boolean)) {
      const idx = /^\[(\d+)\]$/.exec(seg);
      const next: unknown = idx && isSeq(node) ? node.get(Number(idx[1]), true) : isMap(node) ? node.get(seg, true) : undefined;
      if (next === undefined || next === null) break;
      node = next;
      found = next as Node;
    }
    const offset = found?.range?.[0];
    return offset === undefined ? undefined : this.lc.linePos(offset).line;
  }
}

/** Runs every check; never throws for problems in the checked files (they are returned). */
export async function runDoctor(opts: DoctorOptions): Promise<DoctorReport> {
  const p = { dir: resolve(opts.baseDir ?? process.cwd()), driver: opts.driver };
  const problems: DoctorProblem[] = [];
  const rel = (f: string): string => relative(p.dir, f) || f;
  const add = (severity: DoctorProblem['severity'], file: string, path: string, message: string, hint?: string): void => {
    problems.push(hint === undefined ? { severity, file, path, message } : { severity, file, path, message, hint });
  };
  const protocol = p.driver.protocol;

  // 1. config.yaml
  const configFile = resolve(p.dir, opts.configFile ?? 'config.yaml');
  let config: MapperConfig | undefined;
  if (!existsSync(configFile)) add('error', rel(configFile), '', 'file not found', 'create it (see the upstream keys in the README) or pass --config-file <file>');
  else {
    try {
      const loaded = parseMapperConfig(readFileSync(configFile, 'utf8'), rel(configFile));
      config = loaded.config;
      for (const k of loaded.unknownKeys) add('warning', rel(configFile), k, 'unknown key; the mapper ignores it', 'check the spelling against the upstream keys (grpc_server.*, common.*, runtime.*)');
    } catch (err) {
      const e = err as { key?: string; message: string };
      add('error', rel(configFile), e.key ?? '', e.message.replace(`${rel(configFile)}: `, ''), 'fix the value; required keys: grpc_server.socket_path, common.name, common.protocol');
    }
  }
  if (config && config.common.protocol !== protocol) {
    add('error', rel(configFile), 'common.protocol', `"${config.common.protocol}" is not the driver's protocol "${protocol}"`, `set common.protocol: ${protocol} (edgecore routes devices by it)`);
  }

  // 2. Device and DeviceModel objects
  const files = yamlFiles(p.dir, opts.devices ?? ['devices']).filter((f) => f !== configFile);
  if (files.length === 0) add('warning', (opts.devices ?? ['devices']).join(', '), '', 'no Device/DeviceModel YAML found', 'pass --devices <file-or-folder>');
  const models = new Map<string, { obj: Obj; file: string }>();
  const devices: { obj: Obj; file: string }[] = [];
  for (const f of files) {
    const docs = parseCrdYaml(readFileSync(f, 'utf8'), rel(f));
    for (const prob of docs.problems) {
      const ignored = /ignored \(expected/.test(prob.message);
      add(ignored ? 'warning' : 'error', rel(f), '', prob.message.replace(`${rel(f)} `, ''), ignored ? 'only devices.kubeedge.io/v1beta1 Device and DeviceModel objects are checked' : 'fix the YAML syntax');
    }
    for (const m of docs.models) {
      const meta = (m['metadata'] ?? {}) as Obj;
      const id = `${String(meta['namespace'] ?? 'default')}/${String(meta['name'] ?? '')}`;
      if (models.has(id)) add('error', rel(f), `DeviceModel ${id}`, `defined twice (also in ${models.get(id)!.file})`, 'keep one definition');
      models.set(id, { obj: m, file: rel(f) });
    }
    for (const d of docs.devices) devices.push({ obj: d, file: rel(f) });
  }

  for (const [id, { obj, file }] of models) {
    const where = `DeviceModel ${id}`;
    const spec = isObj(obj['spec']) ? obj['spec'] : {};
    if (spec['protocol'] !== protocol) add('error', file, `${where}: spec.protocol`, `"${String(spec['protocol'] ?? '')}" is not the driver's protocol "${protocol}"`, `set spec.protocol: ${protocol} (edgecore routes models by it)`);
    let decoded;
    try {
      decoded = modelFromProto(deviceModelToProto(obj));
    } catch (err) {
      add('error', file, where, (err as Error).message, 'fix the field named in the message');
      continue;
    }
    for (const e of decoded.problems) add('error', file, `${where}: spec.properties`, e.message, 'types: INT FLOAT DOUBLE STRING BOOLEAN BYTES STREAM; accessMode: ReadWrite or ReadOnly; minimum/maximum: numbers as strings');
    const seen = new Set<string>();
    for (const mp of decoded.value.properties) {
      if (seen.has(mp.name)) add('error', file, `${where}: spec.properties`, `property ${mp.name} is listed twice`, 'property names must be unique');
      seen.add(mp.name);
    }
    const raw = Array.isArray(spec['properties']) ? (spec['properties'] as unknown[]) : [];
    for (const [i, mp] of raw.entries()) {
      const v = isObj(mp) && isObj(mp['visitors']) ? mp['visitors'] : undefined;
      if (v && isObj(v['configData'])) {
        for (const issue of await validate(p.driver.visitorConfig, v['configData'])) {
          // Model visitors are defaults merged under each device's; only type errors are certain here.
          if (!/required|expected .* received undefined/i.test(issue.message)) {
            add('error', file, `${where}: spec.properties[${i}].visitors.configData${issue.path ? `.${issue.path}` : ''}`, issue.message, 'see schema/visitor-config.schema.json (mapper schema)');
          }
        }
      }
    }
  }

  for (const { obj, file } of devices) {
    const meta = (isObj(obj['metadata']) ? obj['metadata'] : {}) as Obj;
    const id = `${String(meta['namespace'] ?? 'default')}/${String(meta['name'] ?? '')}`;
    const where = `Device ${id}`;
    const spec = isObj(obj['spec']) ? obj['spec'] : {};
    const rawProps = Array.isArray(spec['properties']) ? (spec['properties'] as unknown[]) : [];
    const ref = deviceModelRef(obj);
    const model = models.get(ref);
    if (!model) add('error', file, `${where}: spec.deviceModelRef.name`, `model ${ref} is not defined in the checked files`, 'add the DeviceModel (edgecore does not send a device whose model is missing) or fix the name');

    const protocolName = deviceProtocol(obj);
    if (protocolName !== protocol) add('error', file, `${where}: spec.protocol.protocolName`, `"${protocolName}" is not the driver's protocol "${protocol}"`, `set protocolName: ${protocol}`);

    // Explicit cycles must be positive (0 or absent means the default, 1000 ms).
    for (const [i, rp] of rawProps.entries()) {
      if (!isObj(rp)) continue;
      for (const k of ['collectCycle', 'reportCycle']) {
        const v = rp[k];
        if (typeof v === 'number' && v <= 0) add('error', file, `${where}: spec.properties[${i}].${k}`, `${v} is not a positive number of ms`, 'omit it for the default (1000 ms) or give a positive value in ms');
      }
    }
    const stateCycle = isObj(spec['stateReport']) ? spec['stateReport']['reportCycle'] : undefined;
    if (typeof stateCycle === 'number' && stateCycle <= 0) add('error', file, `${where}: spec.stateReport.reportCycle`, `${stateCycle} is not a positive number of ms`, 'omit it for the default or give a positive value in ms');

    let decoded;
    try {
      decoded = deviceFromProto(deviceToProto(obj, model?.obj));
    } catch (err) {
      add('error', file, where, (err as Error).message.replace(`${where}: `, ''), 'configData values must be scalars (string, number, boolean): edgecore cannot send nested maps or lists');
      continue;
    }
    for (const e of decoded.problems) {
      if (/ is negative;/.test(e.message)) continue; // reported above with its path
      const hint = /nanoseconds/.test(e.message) ? 'cycles are milliseconds since KubeEdge v1.17' : /listed twice/.test(e.message) ? 'property names must be unique' : 'configData values must be strings, numbers or booleans';
      add('warning', file, where, e.message.replace(`device ${id}: `, '').replace(`device ${id} `, ''), hint);
    }
    const dev = decoded.value;

    for (const issue of await validate(p.driver.protocolConfig, dev.protocol)) {
      add('error', file, `${where}: spec.protocol.configData${issue.path ? `.${issue.path}` : ''}`, issue.message, 'see schema/protocol-config.schema.json (mapper schema)');
    }

    const modelProps = new Map((model ? modelFromProto(deviceModelToProto(model.obj)).value.properties : []).map((mp) => [mp.name, mp]));
    for (const [i, prop] of dev.properties.entries()) {
      const at = `${where}: spec.properties[${i}]`;
      const mp = modelProps.get(prop.name);
      if (model && !mp) add('error', file, `${at}.name`, `property ${prop.name} is not defined in model ${ref}`, `add it to the DeviceModel or remove it (the mapper disables it)`);
      if (prop.visitorProtocol !== '' && prop.visitorProtocol !== protocol) add('warning', file, `${at}.visitors.protocolName`, `"${prop.visitorProtocol}" differs from the driver's protocol "${protocol}"`, `set it to ${protocol}`);
      const visitor = await parseWith(p.driver.visitorConfig, prop.visitor);
      for (const issue of visitor.issues) {
        add('error', file, `${at}.visitors.configData${issue.path ? `.${issue.path}` : ''}`, issue.message, 'see schema/visitor-config.schema.json (mapper schema); the mapper disables this property');
      }
      if (visitor.issues.length === 0 && mp && p.driver.checkProperty) {
        try {
          p.driver.checkProperty({ name: prop.name, type: mp.type, accessMode: mp.accessMode, visitor: visitor.value, minimum: mp.minimum, maximum: mp.maximum, unit: mp.unit });
        } catch (err) {
          add('error', file, at, (err as Error).message, "the driver's checkProperty refuses this property; the mapper rejects the device");
        }
      }
      if (prop.desired && prop.desired.value !== '' && mp) {
        if (mp.accessMode !== 'ReadWrite') add('warning', file, `${at}.desired`, `property ${prop.name} is ${mp.accessMode} in the model; the desired value is never written`, 'make it ReadWrite in the model or remove desired');
        else if (mp.type !== 'stream') {
          try {
            checkRange(parseValue(prop.desired.value, mp.type), mp);
          } catch (err) {
            add('error', file, `${at}.desired.value`, `${(err as Error).message} (model type ${mp.type.toUpperCase()})`, 'give a value of the model type within minimum/maximum');
          }
        }
      }
    }

    const names = new Set(dev.properties.map((x) => x.name));
    for (const [i, m] of dev.methods.entries()) {
      for (const n of m.propertyNames) {
        if (!names.has(n)) add('error', file, `${where}: spec.methods[${i}].propertyNames`, `method ${m.name} names unknown property ${n}`, `add property ${n} to the device or remove it from the method`);
        else if (modelProps.get(n)?.accessMode === 'ReadOnly') add('warning', file, `${where}: spec.methods[${i}].propertyNames`, `method ${m.name} includes ${n}, which is ReadOnly; calls will be refused`, 'methods write properties: use ReadWrite ones');
      }
    }
  }

  // 3. edgecore's socket
  let socket: DoctorReport['checked']['socket'] = 'skipped';
  if (config && (opts.checkSocket ?? true)) {
    const sock = config.common.edgecore_sock;
    const err = await socketReachable(sock);
    socket = err ? 'unreachable' : 'reachable';
    if (err) add('error', rel(configFile), 'common.edgecore_sock', `edgecore's DMI socket ${sock} is not reachable: ${err}`, 'run on the edge node where edgecore runs (or fix the path); pass --skip-socket to check files only');
  }

  // Line numbers, for editors and humans.
  const texts = new Map<string, YamlLines>();
  const located = problems.map((x): DoctorProblem => {
    if (x.path === '') return x;
    const abs = resolve(p.dir, x.file);
    if (!existsSync(abs) || !/\.ya?ml$/.test(abs)) return x;
    let lines = texts.get(abs);
    if (!lines) texts.set(abs, (lines = new YamlLines(readFileSync(abs, 'utf8'))));
    const line = lines.lineOf(x.path);
    return line === undefined ? x : { ...x, line };
  });
  const errors = located.filter((x) => x.severity === 'error').length;
  return { problems: located, errors, warnings: located.length - errors, checked: { config: rel(configFile), files: files.map(rel), devices: devices.length, models: models.size, socket } };
}

/** Human-readable report: one block per problem, then a summary line. */
export function formatDoctorReport(r: DoctorReport): string {
  const lines: string[] = [];
  for (const x of r.problems) {
    lines.push(`${x.severity}: ${x.file}${x.line === undefined ? '' : `:${x.line}`}${x.path ? `: ${x.path}` : ''}: ${x.message}`);
    if (x.hint) lines.push(`  fix: ${x.hint}`);
  }
  const c = r.checked;
  lines.push(
    `${r.errors} error(s), ${r.warnings} warning(s) — checked ${c.config}, ${c.files.length} YAML file(s) (${c.models} model(s), ${c.devices} device(s)), edgecore socket: ${c.socket}`,
  );
  return `${lines.join('\n')}\n`;
}

