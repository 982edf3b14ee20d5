// SPDX-License-Identifier: Apache-2.0
// Mapperkit's view of DMI devices and models, decoded from the wire types, with one
// function per direction. Wire names stay in src/generated; these use domain words.
import { MapperError } from '../errors.js';
import type { Device, DeviceModel, PushMethod } from '../generated/v1beta1/api.js';
import { type ConfigMap, decodeCustomizedValue } from './any-codec.js';

/** Model property types (the CRD enum, lower-cased). */
export type PropertyType = 'int' | 'float' | 'double' | 'string' | 'boolean' | 'bytes' | 'stream';
export const PROPERTY_TYPES: readonly PropertyType[] = ['int', 'float', 'double', 'string', 'boolean', 'bytes', 'stream'];

/** Model access modes. */
export type AccessMode = 'ReadWrite' | 'ReadOnly';

/** One property of a DeviceModel. */
export interface ModelPropertySpec {
  readonly name: string;
  readonly description: string;
  readonly type: PropertyType;
  /** `type` exactly as the DeviceModel spells it (e.g. `FLOAT`), for upstream-compatible output. */
  readonly rawType: string;
  readonly accessMode: AccessMode;
  /** Parsed `minimum`, when it is a number. */
  readonly minimum: number | undefined;
  /** Parsed `maximum`, when it is a number. */
  readonly maximum: number | undefined;
  /** `minimum`/`maximum` exactly as the DeviceModel spells them ('' when absent). */
  readonly minimumText: string;
  readonly maximumText: string;
  readonly unit: string;
}

/** A DeviceModel, keyed `namespace/name`. */
export interface DeviceModelSpec {
  readonly id: string;
  readonly name: string;
  readonly namespace: string;
  readonly properties: readonly ModelPropertySpec[];
}

/** Desired value of a property as the CRD carries it (text plus metadata). */
export interface DesiredValue {
  readonly value: string;
  readonly metadata: Readonly<Record<string, string>>;
}

/** One property of a Device. */
export interface DevicePropertySpec {
  readonly name: string;
  readonly desired: DesiredValue | undefined;
  readonly visitorProtocol: string;
  /** Decoded visitor `configData`. */
  readonly visitor: ConfigMap;
  /** Read cadence in ms (proto 0 → 1000). */
  readonly collectCycle: number;
  /** Twin report / push cadence in ms (proto 0 → 1000). */
  readonly reportCycle: number;
  readonly reportToCloud: boolean;
  /** Push and database configuration, as on the wire; the data plane interprets it. */
  readonly pushMethod: PushMethod | undefined;
}

/** A device method: a named group of writable properties. */
export interface DeviceMethodSpec {
  readonly name: string;
  readonly description: string;
  readonly propertyNames: readonly string[];
}

/** A Device, keyed `namespace/name`. */
export interface DeviceSpec {
  readonly id: string;
  readonly name: string;
  readonly namespace: string;
  readonly modelName: string;
  /** `namespace/modelName`. */
  readonly modelId: string;
  readonly protocolName: string;
  /** Decoded protocol `configData`. */
  readonly protocol: ConfigMap;
  readonly properties: readonly DevicePropertySpec[];
  readonly methods: readonly DeviceMethodSpec[];
  /** Device-state reporting (`spec.stateReport`, carried in proto `status`). */
  readonly stateReport: { readonly reportToCloud: boolean; readonly reportCycle: number };
}

/** Result of decoding: the value plus every problem found (skipped keys, bad fields). */
export interface Decoded<T> {
  readonly value: T;
  readonly problems: readonly MapperError[];
}

export const DEFAULT_NAMESPACE = 'default';
export const DEFAULT_CYCLE_MS = 1000;
/** Cycles above this are taken for pre-v1.17 nanosecond values. */
const NANOSECOND_THRESHOLD_MS = 1_000_000_000;
/** Longest cycle: Node's timers hold at most 2^31-1 ms. */
export const MAX_CYCLE_MS = 2 ** 31 - 1;

/** `namespace/name`, with the namespace defaulted to `default`. */
export function resourceId(namespace: string | undefined, name: string): string {
  return `${namespace || DEFAULT_NAMESPACE}/${name}`;
}

function parseBound(text: string): number | undefined {
  if (text.trim() === '') return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

/** Parses a model type (case-insensitive; accepts `integer`/`bool` aliases). */
export function parsePropertyType(raw: string): PropertyType | undefined {
  const t = raw.trim().toLowerCase();
  if (t === 'integer') return 'int';
  if (t === 'bool') return 'boolean';
  return (PROPERTY_TYPES as readonly string[]).includes(t) ? (t as PropertyType) : undefined;
}

/** Decodes a DeviceModel; properties with an unknown type are dropped and reported as problems. */
export function modelFromProto(m: DeviceModel): Decoded<DeviceModelSpec> {
  const problems: MapperError[] = [];
  const id = resourceId(m.namespace, m.name);
  if (!m.name) problems.push(new MapperError('InvalidConfig', 'device model has no name', { key: 'name' }));
  const properties: ModelPropertySpec[] = [];
  for (const p of m.spec?.properties ?? []) {
    const type = parsePropertyType(p.type);
    if (!type) {
      problems.push(
        new MapperError('InvalidConfig', `model ${id} property ${p.name}: unknown type "${p.type}" (expected one of ${PROPERTY_TYPES.join(', ').toUpperCase()})`, {
          property: p.name,
          key: 'type',
        }),
      );
      continue;
    }
    const access = p.accessMode.trim().toLowerCase();
    if (access !== '' && access !== 'readwrite' && access !== 'readonly') {
      problems.push(
        new MapperError('InvalidConfig', `model ${id} property ${p.name}: unknown accessMode "${p.accessMode}" (ReadWrite or ReadOnly); treated as ReadOnly`, {
          property: p.name,
          key: 'accessMode',
        }),
      );
    }
    const minimum = parseBound(p.minimum);
    const maximum = parseBound(p.maximum);
    if (p.minimum.trim() !== '' && minimum === undefined)
      problems.push(new MapperError('InvalidConfig', `model ${id} property ${p.name}: minimum "${p.minimum}" is not a number; ignored`, { property: p.name, key: 'minimum' }));
    if (p.maximum.trim() !== '' && maximum === undefined)
      problems.push(new MapperError('InvalidConfig', `model ${id} property ${p.name}: maximum "${p.maximum}" is not a number; ignored`, { property: p.name, key: 'maximum' }));
    properties.push({
      name: p.name,
      description: p.description,
      type,
      rawType: p.type,
      accessMode: access === 'readwrite' ? 'ReadWrite' : 'ReadOnly',
      minimum,
      maximum,
      minimumText: p.minimum,
      maximumText: p.maximum,
      unit: p.unit,
    });
  }
  return { value: { id, name: m.name, namespace: m.namespace || DEFAULT_NAMESPACE, properties }, problems };
}

function cycle(raw: bigint, what: string, device: string, property: string, problems: MapperError[]): number {
  let ms = Number(raw);
  if (ms < 0) {
    problems.push(new MapperError('InvalidConfig', `device ${device} property ${property}: ${what} ${ms} is negative; using ${DEFAULT_CYCLE_MS} ms`, { device, property, key: what }));
    return DEFAULT_CYCLE_MS;
  }
  if (ms === 0) return DEFAULT_CYCLE_MS;
  if (ms >= NANOSECOND_THRESHOLD_MS) {
    const converted = Math.max(1, Math.round(ms / 1_000_000));
    problems.push(
      new MapperError('InvalidConfig', `device ${device} property ${property}: ${what} ${ms} looks like nanoseconds (KubeEdge < v1.17); using ${converted} ms`, {
        device,
        property,
        key: what,
      }),
    );
    ms = converted;
  }
  if (ms > MAX_CYCLE_MS) {
    // Node runs a timer beyond 2^31-1 ms after 1 ms: never schedule one.
    problems.push(new MapperError('InvalidConfig', `device ${device} property ${property}: ${what} ${ms} ms is too long; using ${MAX_CYCLE_MS} ms (24.8 days)`, { device, property, key: what }));
    ms = MAX_CYCLE_MS;
  }
  return ms;
}

/**
 * Decodes a Device. Undecodable configData keys are skipped (and reported); the device is
 * still usable. Problems name the device, property and key.
 */
export function deviceFromProto(d: Device): Decoded<DeviceSpec> {
  const problems: MapperError[] = [];
  const namespace = d.namespace || DEFAULT_NAMESPACE;
  const id = resourceId(namespace, d.name);
  if (!d.name) problems.push(new MapperError('InvalidConfig', 'device has no name', { key: 'name' }));
  const spec = d.spec;
  const protocol = decodeCustomizedValue(spec?.protocol?.configData, (key, err) =>
    problems.push(new MapperError('InvalidConfig', `device ${id}: protocol configData.${key} skipped: ${err.message}`, { device: id, key: `protocol.configData.${key}`, cause: err })),
  );
  const properties: DevicePropertySpec[] = [];
  const seen = new Set<string>();
  for (const p of spec?.properties ?? []) {
    if (seen.has(p.name)) {
      problems.push(new MapperError('InvalidConfig', `device ${id}: property ${p.name} is listed twice; the first one is used`, { device: id, property: p.name }));
      continue;
    }
    seen.add(p.name);
    const visitor = decodeCustomizedValue(p.visitors?.configData, (key, err) =>
      problems.push(
        new MapperError('InvalidConfig', `device ${id} property ${p.name}: visitors configData.${key} skipped: ${err.message}`, {
          device: id,
          property: p.name,
          key: `visitors.configData.${key}`,
          cause: err,
        }),
      ),
    );
    properties.push({
      name: p.name,
      desired: p.desired ? { value: p.desired.value, metadata: { ...p.desired.metadata } } : undefined,
      visitorProtocol: p.visitors?.protocolName ?? '',
      visitor,
      collectCycle: cycle(p.collectCycle, 'collectCycle', id, p.name, problems),
      reportCycle: cycle(p.reportCycle, 'reportCycle', id, p.name, problems),
      reportToCloud: p.reportToCloud,
      pushMethod: p.pushMethod,
    });
  }
  const status = d.status;
  return {
    value: {
      id,
      name: d.name,
      namespace,
      modelName: spec?.deviceModelReference ?? '',
      modelId: resourceId(namespace, spec?.deviceModelReference ?? ''),
      protocolName: spec?.protocol?.protocolName ?? '',
      protocol,
      properties,
      methods: (spec?.methods ?? []).map((m) => ({ name: m.name, description: m.description, propertyNames: [...m.propertyNames] })),
      stateReport: {
        reportToCloud: status?.reportToCloud ?? false,
        reportCycle: status && status.reportCycle > 0n ? cycle(status.reportCycle, 'stateReport.reportCycle', id, '(state)', problems) : DEFAULT_CYCLE_MS,
      },
    },
    problems,
  };
}
