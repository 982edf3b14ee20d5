// SPDX-License-Identifier: Apache-2.0
// devices.kubeedge.io/v1beta1 Device and DeviceModel objects → DMI proto messages, converted
// as edgecore converts them (dtcommon.ConvertDevice / ConvertDeviceModel, and the v1.22+
// model-default override of dmicache.GetOverriddenDevice).
import { MapperError } from '../errors.js';
import type {
  DBMethod,
  Device,
  DeviceModel,
  DeviceProperty,
  PushMethod,
  Twin,
  TwinProperty,
} from '../generated/v1beta1/api.js';
import { encodeCustomizedValue } from './any-codec.js';
import { DEFAULT_NAMESPACE } from './model.js';
import { parseYamlSafely } from './yaml-guard.js';

export const CRD_API_VERSION = 'devices.kubeedge.io/v1beta1';

/** A Kubernetes object as parsed from YAML or JSON. */
export type CrdObject = Record<string, unknown>;

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Case-insensitive field lookup, as Go's encoding/json matches keys. Exact match wins. */
function field(o: unknown, name: string): unknown {
  if (!isObj(o)) return undefined;
  if (name in o) return o[name];
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(o)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

function str(o: unknown, name: string, where: string): string {
  const v = field(o, name);
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new MapperError('InvalidConfig', `${where}.${name}: expected a string`, { key: `${where}.${name}` });
}

function bool(o: unknown, name: string, where: string): boolean {
  const v = field(o, name);
  if (v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  throw new MapperError('InvalidConfig', `${where}.${name}: expected true or false, got ${JSON.stringify(v)}`, { key: `${where}.${name}` });
}

function int(o: unknown, name: string, where: string, bits: 32 | 64 = 32): number {
  const v = field(o, name);
  if (v === undefined || v === null) return 0;
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n)) {
    throw new MapperError('InvalidConfig', `${where}.${name}: expected an integer, got ${JSON.stringify(v)}`, { key: `${where}.${name}` });
  }
  const limit = bits === 32 ? 2 ** 31 : 2 ** 63;
  if (n < -limit || n >= limit) throw new MapperError('InvalidConfig', `${where}.${name}: ${n} does not fit in int${bits}`, { key: `${where}.${name}` });
  return n;
}

function int64(o: unknown, name: string, where: string): bigint {
  return BigInt(int(o, name, where, 64));
}

function obj(o: unknown, name: string, where: string): Obj | undefined {
  const v = field(o, name);
  if (v === undefined || v === null) return undefined;
  if (isObj(v)) return v;
  throw new MapperError('InvalidConfig', `${where}.${name}: expected an object`, { key: `${where}.${name}` });
}

function list(o: unknown, name: string, where: string): unknown[] {
  const v = field(o, name);
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) return v;
  throw new MapperError('InvalidConfig', `${where}.${name}: expected a list`, { key: `${where}.${name}` });
}

function stringMap(v: unknown, where: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (v === undefined || v === null) return out;
  if (!isObj(v)) throw new MapperError('InvalidConfig', `${where}: expected a map of strings`, { key: where });
  for (const [k, x] of Object.entries(v)) out[k] = typeof x === 'string' ? x : JSON.stringify(x);
  return out;
}

function meta(o: CrdObject, kind: string): { name: string; namespace: string } {
  const m = obj(o, 'metadata', kind);
  const name = str(m, 'name', `${kind}.metadata`);
  if (!name) throw new MapperError('InvalidConfig', `${kind}: metadata.name is required`, { key: 'metadata.name' });
  return { name, namespace: str(m, 'namespace', `${kind}.metadata`) || DEFAULT_NAMESPACE };
}

/** Converts a DeviceModel object. `spec.protocol`, `protocolConfigData` and model visitors are not sent (as upstream). */
export function deviceModelToProto(model: CrdObject): DeviceModel {
  const { name, namespace } = meta(model, 'DeviceModel');
  const where = `DeviceModel ${namespace}/${name}: spec`;
  const spec = obj(model, 'spec', `DeviceModel ${namespace}/${name}`);
  return {
    name,
    namespace,
    spec: {
      properties: list(spec, 'properties', where).map((p, i) => {
        const w = `${where}.properties[${i}]`;
        return {
          name: str(p, 'name', w),
          description: str(p, 'description', w),
          type: str(p, 'type', w),
          accessMode: str(p, 'accessMode', w),
          minimum: str(p, 'minimum', w),
          maximum: str(p, 'maximum', w),
          unit: str(p, 'unit', w),
        };
      }),
      commands: [],
    },
  };
}

/** Protocol name a DeviceModel is routed by (`spec.protocol`). */
export function deviceModelProtocol(model: CrdObject): string {
  return str(obj(model, 'spec', 'DeviceModel'), 'protocol', 'DeviceModel.spec');
}

/** Protocol name a Device is routed by (`spec.protocol.protocolName`). */
export function deviceProtocol(device: CrdObject): string {
  return str(obj(obj(device, 'spec', 'Device'), 'protocol', 'Device.spec'), 'protocolName', 'Device.spec.protocol');
}

/** `namespace/name` of the DeviceModel a Device references. */
export function deviceModelRef(device: CrdObject): string {
  const { namespace } = meta(device, 'Device');
  const ref = str(obj(obj(device, 'spec', 'Device'), 'deviceModelRef', 'Device.spec'), 'name', 'Device.spec.deviceModelRef');
  return `${namespace}/${ref}`;
}

function twinProperty(v: unknown, where: string): TwinProperty | undefined {
  if (v === undefined || v === null) return undefined;
  return { value: str(v, 'value', where), metadata: stringMap(field(v, 'metadata'), `${where}.metadata`) };
}

function pushMethod(pm: Obj | undefined, where: string): PushMethod | undefined {
  if (!pm) return undefined;
  const out: PushMethod = {};
  const http = obj(pm, 'http', where);
  if (http) {
    const w = `${where}.http`;
    out.http = { hostname: str(http, 'hostName', w), port: int64(http, 'port', w), requestpath: str(http, 'requestPath', w), timeout: int64(http, 'timeout', w) };
  }
  const mqtt = obj(pm, 'mqtt', where);
  if (mqtt) {
    const w = `${where}.mqtt`;
    out.mqtt = { address: str(mqtt, 'address', w), topic: str(mqtt, 'topic', w), qos: int(mqtt, 'qos', w), retained: bool(mqtt, 'retained', w) };
  }
  const otel = obj(pm, 'otel', where);
  if (otel) out.otel = { endpointURL: str(otel, 'endpointURL', `${where}.otel`) };
  const db = obj(pm, 'dbMethod', where);
  if (db) {
    const w = `${where}.dbMethod`;
    const dbm: DBMethod = {};
    const influx = obj(db, 'influxdb2', w);
    if (influx) {
      const cc = obj(influx, 'influxdb2ClientConfig', `${w}.influxdb2`);
      const dc = obj(influx, 'influxdb2DataConfig', `${w}.influxdb2`);
      dbm.influxdb2 = {
        influxdb2ClientConfig: cc && { url: str(cc, 'url', w), org: str(cc, 'org', w), bucket: str(cc, 'bucket', w) },
        influxdb2DataConfig: dc && { measurement: str(dc, 'measurement', w), tag: stringMap(field(dc, 'tag'), `${w}.influxdb2.influxdb2DataConfig.tag`), fieldKey: str(dc, 'fieldKey', w) },
      };
    }
    const redis = obj(db, 'redis', w);
    if (redis) {
      const cc = obj(redis, 'redisClientConfig', `${w}.redis`);
      const ww = `${w}.redis.redisClientConfig`;
      dbm.redis = { redisClientConfig: cc && { addr: str(cc, 'addr', ww), db: int(cc, 'db', ww), poolsize: int(cc, 'poolsize', ww), minIdleConns: int(cc, 'minIdleConns', ww) } };
    }
    const td = obj(db, 'TDEngine', w);
    if (td) {
      const cc = obj(td, 'TDEngineClientConfig', `${w}.TDEngine`);
      const ww = `${w}.TDEngine.TDEngineClientConfig`;
      dbm.tdengine = { tdEngineClientConfig: cc && { addr: str(cc, 'addr', ww), dbname: str(cc, 'dbName', ww) } };
    }
    const mysql = obj(db, 'mysql', w);
    if (mysql) {
      const cc = obj(mysql, 'mysqlClientConfig', `${w}.mysql`);
      const ww = `${w}.mysql.mysqlClientConfig`;
      dbm.mysql = { mysqlClientConfig: cc && { addr: str(cc, 'addr', ww), database: str(cc, 'database', ww), userName: str(cc, 'userName', ww) } };
    }
    out.dbMethod = dbm;
  }
  const ad = obj(pm, 'anomalyDetection', where);
  if (ad) out.anomalyDetection = { data: encodeCustomizedValue(ad, `${where}.anomalyDetection`).data };
  return out;
}

/**
 * Converts a Device object to the proto edgecore sends, with the model's defaults merged in
 * (v1.22+): model `protocolConfigData` under the device's `protocol.configData`, and each model
 * property's `visitors` under the device property's (device keys win; the model's visitor
 * protocolName replaces the device's when the model has visitors). Throws
 * MapperError('InvalidConfig') naming the device and key when edgecore could not convert it
 * either (nested configData, wrong field types).
 */
export function deviceToProto(device: CrdObject, model?: CrdObject): Device {
  const { name, namespace } = meta(device, 'Device');
  const where = `Device ${namespace}/${name}`;
  const spec = obj(device, 'spec', where) ?? {};
  const modelSpec = model ? obj(model, 'spec', 'DeviceModel') : undefined;

  const protocol = obj(spec, 'protocol', `${where}.spec`);
  const protocolData: Obj = { ...(obj(modelSpec, 'protocolConfigData', 'DeviceModel.spec') ?? {}), ...(obj(protocol, 'configData', `${where}.spec.protocol`) ?? {}) };

  const modelVisitors = new Map<string, Obj>();
  for (const mp of list(modelSpec, 'properties', 'DeviceModel.spec')) {
    const v = obj(mp, 'visitors', 'DeviceModel.spec.properties[]');
    if (v) modelVisitors.set(str(mp, 'name', 'DeviceModel.spec.properties[]'), v);
  }

  const properties: DeviceProperty[] = list(spec, 'properties', `${where}.spec`).map((p, i) => {
    const w = `${where}.spec.properties[${i}]`;
    const pname = str(p, 'name', w);
    const pw = `${where} property ${pname}`;
    const dv = obj(p, 'visitors', w);
    const mv = modelVisitors.get(pname);
    const visitorProtocol = mv ? str(mv, 'protocolName', pw) : str(dv, 'protocolName', pw);
    const visitorData = { ...(obj(mv, 'configData', `${pw}.visitors`) ?? {}), ...(obj(dv, 'configData', `${pw}.visitors`) ?? {}) };
    const hasVisitors = dv !== undefined || mv !== undefined;
    return {
      name: pname,
      desired: twinProperty(field(p, 'desired'), `${pw}.desired`),
      visitors: hasVisitors ? { protocolName: visitorProtocol, configData: encodeCustomizedValue(visitorData, `${pw}: visitors.configData`) } : undefined,
      reportCycle: int64(p, 'reportCycle', pw),
      collectCycle: int64(p, 'collectCycle', pw),
      reportToCloud: bool(p, 'reportToCloud', pw),
      pushMethod: pushMethod(obj(p, 'pushMethod', pw), `${pw}.pushMethod`),
    };
  });

  const status = obj(device, 'status', where);
  const stateReport = obj(spec, 'stateReport', `${where}.spec`) ?? status;
  const twins: Twin[] = list(status, 'twins', `${where}.status`).map((t, i) => ({
    propertyName: str(t, 'propertyName', `${where}.status.twins[${i}]`),
    reported: twinProperty(field(t, 'reported'), `${where}.status.twins[${i}].reported`),
    observedDesired: twinProperty(field(t, 'observedDesired'), `${where}.status.twins[${i}].observedDesired`),
  }));

  return {
    name,
    namespace,
    spec: {
      deviceModelReference: str(obj(spec, 'deviceModelRef', `${where}.spec`), 'name', `${where}.spec.deviceModelRef`),
      protocol: {
        protocolName: str(protocol, 'protocolName', `${where}.spec.protocol`),
        configData: encodeCustomizedValue(protocolData, `${where}: protocol.configData`),
      },
      properties,
      methods: list(spec, 'methods', `${where}.spec`).map((m, i) => {
        const w = `${where}.spec.methods[${i}]`;
        return {
          name: str(m, 'name', w),
          description: str(m, 'description', w),
          propertyNames: list(m, 'propertyNames', w).map((x) => String(x)),
        };
      }),
    },
    status: {
      twins,
      reportToCloud: bool(stateReport, 'reportToCloud', `${where}.spec.stateReport`),
      reportCycle: int64(stateReport, 'reportCycle', `${where}.spec.stateReport`),
    },
  };
}

/** Objects found in a YAML (or JSON) text, split by kind. */
export interface CrdDocuments {
  readonly devices: CrdObject[];
  readonly models: CrdObject[];
  /** Documents that are not Device/DeviceModel of devices.kubeedge.io/v1beta1, or did not parse. */
  readonly problems: MapperError[];
}

/** Parses multi-document YAML into Device and DeviceModel objects. Other kinds are reported, not fatal. */
export function parseCrdYaml(text: string, source = '<input>'): CrdDocuments {
  const out: CrdDocuments = { devices: [], models: [], problems: [] };
  const parsed = parseYamlSafely(text);
  if (parsed.error) {
    out.problems.push(new MapperError('InvalidConfig', `${source}: ${parsed.error}`, { key: source }));
    return out;
  }
  parsed.docs.forEach((doc, i) => {
    if (doc.error) {
      out.problems.push(new MapperError('InvalidConfig', `${source} document ${i + 1}: ${doc.error}`, { key: source }));
      return;
    }
    const value = doc.value;
    if (value === null || value === undefined) return;
    if (!isObj(value)) {
      out.problems.push(new MapperError('InvalidConfig', `${source} document ${i + 1}: not an object`, { key: source }));
      return;
    }
    const kind = value['kind'];
    const apiVersion = value['apiVersion'];
    if (apiVersion !== CRD_API_VERSION || (kind !== 'Device' && kind !== 'DeviceModel')) {
      out.problems.push(
        new MapperError('InvalidConfig', `${source} document ${i + 1}: ${String(apiVersion)}/${String(kind)} ignored (expected ${CRD_API_VERSION} Device or DeviceModel)`, { key: source }),
      );
      return;
    }
    (kind === 'Device' ? out.devices : out.models).push(value);
  });
  return out;
}
