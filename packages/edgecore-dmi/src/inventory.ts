// SPDX-License-Identifier: Apache-2.0
// The inventory: devices.kubeedge.io/v1beta1 Device and DeviceModel objects read from YAML
// files (multi-document) and from the API, validated object by object and converted to the
// protos edgecore sends (the framework's deviceToProto / deviceModelToProto, model defaults
// merged in). Every problem names its file, line and field; a bad object never affects the
// others, and a bad edit of an object that was good keeps its last good version in service.
import { createHash } from 'node:crypto';
import { CRD_API_VERSION, type Device, type DeviceModel, deviceModelToProto, deviceToProto, MAX_YAML_DEPTH, yamlNestingDepth } from '@mapperkit/framework/dmi';
import { type Document, LineCounter, parseAllDocuments } from 'yaml';

export type Kind = 'Device' | 'DeviceModel';
type Obj = Record<string, unknown>;

/** Where an object was defined. */
export interface Origin {
  /** File path, or `api:<name>` for objects applied through the API. */
  readonly source: string;
  /** 1-based document number within the file (0 for API objects). */
  readonly document: number;
  /** 1-based line of the document start (0 when unknown). */
  readonly line: number;
}

/** A load, validation, delivery or report problem. */
export interface Problem {
  readonly severity: 'error' | 'warning';
  /** File path, `api:<name>`, or `dmi` (mapper calls and reports). */
  readonly source: string;
  readonly line?: number;
  readonly document?: number;
  readonly kind?: Kind;
  /** `namespace/name` of the object concerned. */
  readonly id?: string;
  /** Dotted path of the offending field, e.g. `spec.protocol.configData.port`. */
  readonly field?: string;
  /** Complete message, naming file, line, object and field. */
  readonly message: string;
}

/** One Device or DeviceModel as found in a source, before validation. */
export interface RawObject {
  readonly kind: Kind;
  readonly id: string;
  readonly name: string;
  readonly namespace: string;
  readonly object: Obj;
  readonly origin: Origin;
  /** Line of a field in the source (undefined when unknown). */
  readonly lineOf: (path: readonly (string | number)[]) => number | undefined;
}

export interface ModelEntry {
  readonly kind: 'DeviceModel';
  readonly id: string;
  readonly name: string;
  readonly namespace: string;
  /** `spec.protocol`: which mapper gets the model calls. */
  readonly protocol: string;
  readonly object: Obj;
  readonly origin: Origin;
  /** The object in service: the current one when valid, else the last valid one. */
  readonly goodObject: Obj | undefined;
  readonly proto: DeviceModel | undefined;
  readonly fingerprint: string | undefined;
  readonly valid: boolean;
  /** Invalid now, but the last valid version stays in service. */
  readonly stale: boolean;
  readonly errors: readonly Problem[];
}

export interface DeviceEntry {
  readonly kind: 'Device';
  readonly id: string;
  readonly name: string;
  readonly namespace: string;
  /** `spec.protocol.protocolName` of the version in service. */
  readonly protocol: string;
  /** `namespace/name` of the model. */
  readonly modelId: string;
  readonly object: Obj;
  readonly origin: Origin;
  readonly proto: Device | undefined;
  readonly fingerprint: string | undefined;
  readonly valid: boolean;
  readonly stale: boolean;
  readonly errors: readonly Problem[];
}

export interface Snapshot {
  readonly models: ReadonlyMap<string, ModelEntry>;
  readonly devices: ReadonlyMap<string, DeviceEntry>;
  /** Every problem, in source order. */
  readonly problems: readonly Problem[];
}

export const EMPTY_SNAPSHOT: Snapshot = { models: new Map(), devices: new Map(), problems: [] };

const PROPERTY_TYPES = ['INT', 'FLOAT', 'DOUBLE', 'STRING', 'BOOLEAN', 'BYTES', 'STREAM'];
const ACCESS_MODES = ['ReadWrite', 'ReadOnly'];

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Case-insensitive field lookup (edgecore decodes CRDs with Go's encoding/json). Exact match wins. */
function get(o: unknown, name: string): unknown {
  if (!isObj(o)) return undefined;
  if (name in o) return o[name];
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(o)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

function text(o: unknown, name: string): string {
  const v = get(o, name);
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : '';
}

/** Stable JSON of a proto message: sorted keys, bigint as text, bytes as base64. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (typeof x === 'bigint') return x.toString();
    if (x instanceof Uint8Array) return Buffer.from(x).toString('base64');
    if (isObj(x)) return Object.fromEntries(Object.keys(x).sort().map((k) => [k, x[k]]));
    return x;
  });
}

export function fingerprint(v: unknown): string {
  return createHash('sha256').update(canonicalJson(v)).digest('hex').slice(0, 16);
}

function fieldPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${p}` : p;
  return out;
}

function location(origin: Origin, line: number | undefined): string {
  if (origin.source.startsWith('api:')) return origin.source;
  const l = line ?? origin.line;
  return l > 0 ? `${origin.source}:${l}` : origin.source;
}

/** Builds a problem about one object and field; the message names file, line, object and field. */
function objectProblem(raw: RawObject, path: readonly (string | number)[], message: string, severity: Problem['severity'] = 'error'): Problem {
  const line = path.length > 0 ? (raw.lineOf(path) ?? raw.origin.line) : raw.origin.line;
  const field = fieldPath(path);
  return {
    severity,
    source: raw.origin.source,
    line: line || undefined,
    document: raw.origin.document || undefined,
    kind: raw.kind,
    id: raw.id,
    field: field || undefined,
    message: `${location(raw.origin, line)}: ${raw.kind} ${raw.id}${field ? `: ${field}` : ''}: ${message}`,
  };
}

function nodeLine(doc: Document, counter: LineCounter, path: readonly (string | number)[]): number | undefined {
  // Exact keys first; then walk case-insensitively like the converter does.
  let node: unknown = doc.contents;
  for (const seg of path) {
    if (node === null || typeof node !== 'object') return undefined;
    const n = node as { items?: unknown[] };
    if (!Array.isArray(n.items)) return undefined;
    if (typeof seg === 'number') {
      node = n.items[seg];
      continue;
    }
    const pairs = n.items as { key?: { value?: unknown; range?: [number, number, number] }; value?: unknown }[];
    const pair = pairs.find((p) => p.key?.value === seg) ?? pairs.find((p) => String(p.key?.value).toLowerCase() === seg.toLowerCase());
    if (!pair) return undefined;
    if (seg === path[path.length - 1] && pair.key?.range) return counter.linePos(pair.key.range[0]).line;
    node = pair.value;
  }
  const range = (node as { range?: [number, number, number] } | undefined)?.range;
  return range ? counter.linePos(range[0]).line : undefined;
}

/** Parses one source (multi-document YAML or JSON). Bad documents become problems; the rest still load. */
export function parseSource(source: string, content: string): { objects: RawObject[]; problems: Problem[] } {
  const objects: RawObject[] = [];
  const problems: Problem[] = [];
  // The yaml library's recursive parser overflows the stack on deep nesting (and a second attempt
  // can abort V8): refuse such text before parsing it.
  const depth = yamlNestingDepth(content);
  if (depth > MAX_YAML_DEPTH) {
    problems.push({ severity: 'error', source, line: 1, message: `${source}: YAML nested ${depth} levels deep (limit ${MAX_YAML_DEPTH}); not loaded` });
    return { objects, problems };
  }
  const counter = new LineCounter();
  let docs: ReturnType<typeof parseAllDocuments>;
  try {
    docs = parseAllDocuments(content, { lineCounter: counter, prettyErrors: false });
  } catch (err) {
    problems.push({ severity: 'error', source, line: 1, message: `${source}: ${(err as Error).message}` });
    return { objects, problems };
  }
  const list = Array.isArray(docs) ? docs : [];
  if (!Array.isArray(docs)) {
    // parseAllDocuments returns an EmptyStream for empty input.
    return { objects, problems };
  }
  list.forEach((doc, i) => {
    const document = i + 1;
    const startLine = doc.range ? counter.linePos(doc.range[0]).line : 0;
    const docProblem = (line: number | undefined, field: string | undefined, message: string): void => {
      const l = line ?? startLine;
      problems.push({
        severity: 'error',
        source,
        line: l || undefined,
        document,
        field,
        message: `${l > 0 ? `${source}:${l}` : source} (document ${document})${field ? `: ${field}` : ''}: ${message}`,
      });
    };
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!;
      const line = e.linePos?.[0]?.line ?? counter.linePos(e.pos[0]).line;
      docProblem(line, undefined, `invalid YAML: ${e.message.split('\n')[0]}`);
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      docProblem(undefined, undefined, `invalid YAML: ${(err as Error).message}`);
      return;
    }
    if (value === null || value === undefined) return; // empty document (e.g. a trailing ---)
    if (!isObj(value)) {
      docProblem(undefined, undefined, 'expected a Kubernetes object (a map with apiVersion, kind, metadata, spec)');
      return;
    }
    const apiVersion = value['apiVersion'];
    const kind = value['kind'];
    if (apiVersion !== CRD_API_VERSION) {
      docProblem(nodeLine(doc, counter, ['apiVersion']), 'apiVersion', `unsupported apiVersion ${JSON.stringify(apiVersion ?? null)} (expected ${CRD_API_VERSION})`);
      return;
    }
    if (kind !== 'Device' && kind !== 'DeviceModel') {
      docProblem(nodeLine(doc, counter, ['kind']), 'kind', `unknown kind ${JSON.stringify(kind ?? null)} (expected Device or DeviceModel)`);
      return;
    }
    const metadata = value['metadata'];
    const name = isObj(metadata) ? metadata['name'] : undefined;
    if (typeof name !== 'string' || name === '') {
      docProblem(nodeLine(doc, counter, ['metadata']), 'metadata.name', `${kind}: metadata.name is required`);
      return;
    }
    const nsRaw = isObj(metadata) ? metadata['namespace'] : undefined;
    const namespace = typeof nsRaw === 'string' && nsRaw !== '' ? nsRaw : 'default';
    objects.push({
      kind,
      id: `${namespace}/${name}`,
      name,
      namespace,
      object: value,
      origin: { source, document, line: startLine },
      lineOf: (path) => nodeLine(doc, counter, path),
    });
  });
  return { objects, problems };
}

/** An object applied through the API (stored as JSON). */
export function rawFromApplied(kind: Kind, object: Obj, source: string): RawObject {
  const md = isObj(object['metadata']) ? object['metadata'] : {};
  const name = typeof md['name'] === 'string' ? md['name'] : '';
  const namespace = typeof md['namespace'] === 'string' && md['namespace'] ? md['namespace'] : 'default';
  return { kind, id: `${namespace}/${name}`, name, namespace, object, origin: { source: `api:${source}`, document: 0, line: 0 }, lineOf: () => undefined };
}

/** Non-scalar values in a configData-like map (edgecore cannot encode them into an Any). */
function nonScalars(map: unknown, path: readonly (string | number)[]): { path: (string | number)[]; what: string }[] {
  if (map === undefined || map === null) return [];
  if (!isObj(map)) return [{ path: [...path], what: 'expected a map of strings, numbers or booleans' }];
  const out: { path: (string | number)[]; what: string }[] = [];
  for (const [k, v] of Object.entries(map)) {
    if (typeof v === 'string' || typeof v === 'boolean') continue;
    if (typeof v === 'number' && Number.isFinite(v)) continue;
    const what = v === null ? 'an empty value (null)' : Array.isArray(v) ? 'a list' : isObj(v) ? 'a nested map' : `a ${typeof v}`;
    out.push({
      path: [...path, k],
      what: `${what} cannot be sent over DMI: edgecore encodes configData values as google.protobuf wrappers, so only flat strings, numbers and booleans are possible (flatten the key or encode it as a string)`,
    });
  }
  return out;
}

/** Mapping of a converter error key like "Device ns/x property temp.collectCycle" back to a field path. */
function converterField(raw: RawObject, key: string | undefined): (string | number)[] {
  if (!key) return [];
  const spec = get(raw.object, 'spec');
  const m = /property ([^.:\s]+)[.:]?\s*(.*)$/.exec(key);
  if (m) {
    const props = get(spec, 'properties');
    const idx = Array.isArray(props) ? props.findIndex((p) => text(p, 'name') === m[1]) : -1;
    const rest = (m[2] ?? '').split('.').filter(Boolean);
    return idx >= 0 ? ['spec', 'properties', idx, ...rest] : [];
  }
  const dot = key.indexOf('.spec');
  if (dot >= 0) return key.slice(dot + 1).split('.').filter(Boolean);
  return [];
}

interface BuildInput {
  readonly objects: readonly RawObject[];
  readonly parseProblems: readonly Problem[];
  /** Desired-value overrides by device id → property → value. */
  readonly overrides: ReadonlyMap<string, ReadonlyMap<string, string>>;
  readonly previous: Snapshot;
}

/**
 * Validates and converts every object. Duplicates: the definition already in service wins
 * (else the first in source order); the other is an error naming both places.
 */
export function buildSnapshot(input: BuildInput): Snapshot {
  const problems: Problem[] = [...input.parseProblems];
  const chosen = new Map<string, RawObject>();
  for (const raw of input.objects) {
    const key = `${raw.kind}/${raw.id}`;
    const other = chosen.get(key);
    if (!other) {
      chosen.set(key, raw);
      continue;
    }
    const prevOrigin = (raw.kind === 'Device' ? input.previous.devices : input.previous.models).get(raw.id)?.origin;
    const rawIsCurrent = prevOrigin && prevOrigin.source === raw.origin.source && prevOrigin.document === raw.origin.document && other.origin.source !== prevOrigin.source;
    const [keep, drop] = rawIsCurrent ? [raw, other] : [other, raw];
    chosen.set(key, keep);
    problems.push(
      objectProblem(drop, ['metadata', 'name'], `duplicate ${raw.kind} name: ${raw.id} is already defined at ${location(keep.origin, keep.origin.line)}; this definition is ignored`),
    );
  }

  const models = new Map<string, ModelEntry>();
  for (const raw of chosen.values()) {
    if (raw.kind !== 'DeviceModel') continue;
    const entry = buildModel(raw, input.previous.models.get(raw.id));
    models.set(raw.id, entry);
  }
  const devices = new Map<string, DeviceEntry>();
  for (const raw of chosen.values()) {
    if (raw.kind !== 'Device') continue;
    devices.set(raw.id, buildDevice(raw, models, input.overrides.get(raw.id), input.previous.devices.get(raw.id)));
  }
  for (const raw of input.objects) {
    const e = (raw.kind === 'Device' ? devices : models).get(raw.id);
    if (e && e.origin === raw.origin) problems.push(...e.errors);
  }
  return { models, devices, problems };
}

function buildModel(raw: RawObject, previous: ModelEntry | undefined): ModelEntry {
  const errors: Problem[] = [];
  const spec = get(raw.object, 'spec');
  const protocol = text(spec, 'protocol');
  if (spec !== undefined && !isObj(spec)) errors.push(objectProblem(raw, ['spec'], 'expected a map'));
  if (!protocol) errors.push(objectProblem(raw, ['spec', 'protocol'], 'is empty: model calls (Create/Update/RemoveDeviceModel) cannot be routed to a mapper', 'warning'));
  const props = get(spec, 'properties');
  if (props !== undefined && props !== null && !Array.isArray(props)) errors.push(objectProblem(raw, ['spec', 'properties'], 'expected a list'));
  const seen = new Set<string>();
  (Array.isArray(props) ? props : []).forEach((p, i) => {
    const name = text(p, 'name');
    if (!name) errors.push(objectProblem(raw, ['spec', 'properties', i, 'name'], 'is required'));
    else if (seen.has(name)) errors.push(objectProblem(raw, ['spec', 'properties', i, 'name'], `duplicate property name "${name}"`));
    seen.add(name);
    const type = text(p, 'type');
    if (!PROPERTY_TYPES.includes(type)) {
      errors.push(objectProblem(raw, ['spec', 'properties', i, 'type'], `${type ? `"${type}" is not a valid type` : 'is required'} (one of ${PROPERTY_TYPES.join(', ')})`));
    }
    const access = text(p, 'accessMode');
    if (access && !ACCESS_MODES.includes(access)) errors.push(objectProblem(raw, ['spec', 'properties', i, 'accessMode'], `"${access}" is not valid (ReadWrite or ReadOnly)`));
    for (const bad of nonScalars(get(get(p, 'visitors'), 'configData'), ['spec', 'properties', i, 'visitors', 'configData'])) errors.push(objectProblem(raw, bad.path, bad.what));
  });
  for (const bad of nonScalars(get(spec, 'protocolConfigData'), ['spec', 'protocolConfigData'])) errors.push(objectProblem(raw, bad.path, bad.what));

  let proto: DeviceModel | undefined;
  if (!errors.some((e) => e.severity === 'error')) {
    try {
      proto = deviceModelToProto(raw.object);
    } catch (err) {
      const e = err as Error & { key?: string };
      errors.push(objectProblem(raw, converterField(raw, e.key), e.message));
    }
  }
  const valid = proto !== undefined;
  if (valid) return { kind: 'DeviceModel', id: raw.id, name: raw.name, namespace: raw.namespace, protocol, object: raw.object, origin: raw.origin, goodObject: raw.object, proto, fingerprint: fingerprint(proto), valid, stale: false, errors };
  const keep = previous?.goodObject !== undefined && previous.proto !== undefined;
  if (keep) errors.push(objectProblem(raw, [], 'the last valid version of this DeviceModel stays in service until the error is fixed', 'warning'));
  return {
    kind: 'DeviceModel',
    id: raw.id,
    name: raw.name,
    namespace: raw.namespace,
    protocol: keep ? previous.protocol : protocol,
    object: raw.object,
    origin: raw.origin,
    goodObject: keep ? previous.goodObject : undefined,
    proto: keep ? previous.proto : undefined,
    fingerprint: keep ? previous.fingerprint : undefined,
    valid: false,
    stale: keep,
    errors,
  };
}

function withOverrides(object: Obj, overrides: ReadonlyMap<string, string> | undefined): Obj {
  if (!overrides || overrides.size === 0) return object;
  const copy = structuredClone(object);
  const spec = get(copy, 'spec');
  const props = get(spec, 'properties');
  if (!Array.isArray(props)) return copy;
  for (const p of props) {
    if (!isObj(p)) continue;
    const v = overrides.get(text(p, 'name'));
    if (v === undefined) continue;
    const d = isObj(p['desired']) ? p['desired'] : {};
    p['desired'] = { ...d, value: v };
  }
  return copy;
}

function buildDevice(raw: RawObject, models: ReadonlyMap<string, ModelEntry>, overrides: ReadonlyMap<string, string> | undefined, previous: DeviceEntry | undefined): DeviceEntry {
  const errors: Problem[] = [];
  const spec = get(raw.object, 'spec');
  if (!isObj(spec)) errors.push(objectProblem(raw, ['spec'], spec === undefined ? 'is required' : 'expected a map'));
  const modelName = text(get(spec, 'deviceModelRef'), 'name');
  const modelId = `${raw.namespace}/${modelName}`;
  const protocol = text(get(spec, 'protocol'), 'protocolName');
  if (!modelName) errors.push(objectProblem(raw, ['spec', 'deviceModelRef', 'name'], 'is required (the DeviceModel of this device, in the same namespace)'));
  if (!protocol) errors.push(objectProblem(raw, ['spec', 'protocol', 'protocolName'], 'is required (it selects the mapper that serves this device)'));
  const model = modelName ? models.get(modelId) : undefined;
  if (modelName && !model) {
    errors.push(objectProblem(raw, ['spec', 'deviceModelRef', 'name'], `DeviceModel ${modelId} not found; the device is not sent to any mapper until it exists`));
  } else if (model && !model.goodObject) {
    errors.push(objectProblem(raw, ['spec', 'deviceModelRef', 'name'], `DeviceModel ${modelId} is invalid (${location(model.origin, model.origin.line)}); the device is not sent until the model is fixed`));
  }
  for (const bad of nonScalars(get(get(spec, 'protocol'), 'configData'), ['spec', 'protocol', 'configData'])) errors.push(objectProblem(raw, bad.path, bad.what));
  const props = get(spec, 'properties');
  if (props !== undefined && props !== null && !Array.isArray(props)) errors.push(objectProblem(raw, ['spec', 'properties'], 'expected a list'));
  const modelProps = new Set<string>();
  const mp = get(get(model?.goodObject, 'spec'), 'properties');
  if (Array.isArray(mp)) for (const p of mp) modelProps.add(text(p, 'name'));
  const seen = new Set<string>();
  (Array.isArray(props) ? props : []).forEach((p, i) => {
    const name = text(p, 'name');
    if (!name) errors.push(objectProblem(raw, ['spec', 'properties', i, 'name'], 'is required'));
    else if (seen.has(name)) errors.push(objectProblem(raw, ['spec', 'properties', i, 'name'], `duplicate property name "${name}"`));
    else if (model?.goodObject && !modelProps.has(name)) {
      errors.push(objectProblem(raw, ['spec', 'properties', i, 'name'], `property "${name}" is not defined in DeviceModel ${modelId}; mappers cannot type it`, 'warning'));
    }
    seen.add(name);
    for (const bad of nonScalars(get(get(p, 'visitors'), 'configData'), ['spec', 'properties', i, 'visitors', 'configData'])) errors.push(objectProblem(raw, bad.path, bad.what));
    const ad = get(get(p, 'pushMethod'), 'anomalyDetection');
    for (const bad of nonScalars(ad, ['spec', 'properties', i, 'pushMethod', 'anomalyDetection'])) errors.push(objectProblem(raw, bad.path, bad.what));
  });

  let proto: Device | undefined;
  if (!errors.some((e) => e.severity === 'error') && model?.goodObject) {
    try {
      proto = deviceToProto(withOverrides(raw.object, overrides), model.goodObject);
    } catch (err) {
      const e = err as Error & { key?: string };
      errors.push(objectProblem(raw, converterField(raw, e.key), e.message));
    }
  }
  if (proto) {
    return { kind: 'Device', id: raw.id, name: raw.name, namespace: raw.namespace, protocol, modelId, object: raw.object, origin: raw.origin, proto, fingerprint: fingerprint(proto), valid: true, stale: false, errors };
  }
  const keep = previous?.proto !== undefined;
  if (keep) errors.push(objectProblem(raw, [], 'the last valid version of this Device stays in service until the error is fixed', 'warning'));
  return {
    kind: 'Device',
    id: raw.id,
    name: raw.name,
    namespace: raw.namespace,
    protocol: keep ? previous.protocol : protocol,
    modelId: keep ? previous.modelId : modelId,
    object: raw.object,
    origin: raw.origin,
    proto: keep ? previous.proto : undefined,
    fingerprint: keep ? previous.fingerprint : undefined,
    valid: false,
    stale: keep,
    errors,
  };
}

/** The desired value a Device definition gives a property ('' if none). */
export function definedDesired(object: Obj, property: string): string {
  const props = get(get(object, 'spec'), 'properties');
  if (!Array.isArray(props)) return '';
  const p = props.find((x) => text(x, 'name') === property);
  return text(get(p, 'desired'), 'value');
}

/** Names of the properties a Device definition lists. */
export function deviceProperties(object: Obj): string[] {
  const props = get(get(object, 'spec'), 'properties');
  return Array.isArray(props) ? props.map((p) => text(p, 'name')).filter(Boolean) : [];
}

/** The model property (type, accessMode) of a device property, from the model in service. */
export function modelProperty(model: ModelEntry | undefined, property: string): { type: string; accessMode: string } | undefined {
  const props = get(get(model?.goodObject, 'spec'), 'properties');
  if (!Array.isArray(props)) return undefined;
  const p = props.find((x) => text(x, 'name') === property);
  return p === undefined ? undefined : { type: text(p, 'type'), accessMode: text(p, 'accessMode') };
}
