// SPDX-License-Identifier: Apache-2.0
// PushMethod (DMI wire form, as edgecore sends it) → the sink targets of one property.
// Unlike upstream, which picks one push kind (http > mqtt > otel) and one database
// (influxdb2 > redis > tdengine > mysql), every configured method is served.
import { createHash } from 'node:crypto';
import type { PushMethod } from '../generated/v1beta1/api.js';
import { MapperError } from '../errors.js';
import { DEFAULT_HTTP_TIMEOUT_MS, httpPushUrl, redactUrl } from './http.js';
import type { ChannelSpec, InfluxRoute, MqttRoute } from './types.js';

/** One place a property's samples go. */
export interface Target {
  readonly spec: ChannelSpec;
  /** Stable identity of the channel (same spec → same channel, buffer directory). */
  readonly key: string;
  readonly route: MqttRoute | InfluxRoute | undefined;
}

/** Result of parsing: usable targets plus one error per unusable method (naming device, property and key). */
export interface ParsedTargets {
  readonly targets: readonly Target[];
  readonly problems: readonly MapperError[];
}

/** Identity of a channel spec (also names its buffer directory). */
export function channelKey(spec: ChannelSpec): string {
  return JSON.stringify(spec);
}

/** Directory name of a channel's disk buffer: `<kind>-<hash>`. */
export function channelDirName(spec: ChannelSpec): string {
  return `${spec.kind}-${createHash('sha256').update(channelKey(spec)).digest('hex').slice(0, 16)}`;
}

/** `kind:endpoint` without credentials: the `sink` label. */
export function channelLabel(spec: ChannelSpec): string {
  switch (spec.kind) {
    case 'http':
      return `http:${redactUrl(spec.url)}`;
    case 'mqtt':
      return `mqtt:${redactUrl(spec.address)}`;
    case 'otel':
      return `otel:${redactUrl(spec.endpoint)}`;
    case 'redis':
      return `redis:${redactUrl(spec.addr)}/${spec.db}`;
    case 'tdengine':
      return `tdengine:${redactUrl(spec.addr)}/${spec.dbname}`;
    case 'mysql':
      return `mysql:${spec.userName}@${redactUrl(spec.addr)}/${spec.database}`;
    case 'influxdb2':
      return `influxdb2:${redactUrl(spec.url)}/${spec.org}/${spec.bucket}`;
  }
}

function target(spec: ChannelSpec, route?: MqttRoute | InfluxRoute): Target {
  return { spec, key: channelKey(spec), route };
}

/** Parses the push methods of one property. Never throws: unusable methods come back as problems. */
export function parsePushMethod(pm: PushMethod | undefined, where: { device: string; property: string }): ParsedTargets {
  const targets: Target[] = [];
  const problems: MapperError[] = [];
  if (!pm) return { targets, problems };
  const bad = (key: string, msg: string): void => {
    problems.push(new MapperError('InvalidConfig', `device ${where.device} property ${where.property}: pushMethod.${key}: ${msg}`, { device: where.device, property: where.property, key: `pushMethod.${key}` }));
  };
  if (pm.http) {
    const h = pm.http;
    const port = Number(h.port);
    if (!h.hostname.trim()) bad('http.hostName', 'required (scheme and host, e.g. http://10.0.0.5)');
    else if (!Number.isInteger(port) || port < 0 || port > 65535) bad('http.port', `${h.port} is not a TCP port`);
    else {
      try {
        const timeout = Number(h.timeout);
        targets.push(target({ kind: 'http', url: httpPushUrl(h.hostname, port, h.requestpath), timeoutMs: timeout > 0 ? timeout : DEFAULT_HTTP_TIMEOUT_MS }));
      } catch (err) {
        bad('http.hostName', `"${h.hostname}" does not make a URL: ${(err as Error).message}`);
      }
    }
  }
  if (pm.mqtt) {
    const m = pm.mqtt;
    if (!m.address.trim()) bad('mqtt.address', 'required (e.g. tcp://broker:1883)');
    else if (!m.topic) bad('mqtt.topic', 'required');
    else if (/[#+]/.test(m.topic)) bad('mqtt.topic', `"${m.topic}" contains a wildcard (+ or #); publishing needs a plain topic`);
    else if (m.qos !== 0 && m.qos !== 1 && m.qos !== 2) bad('mqtt.qos', `${m.qos} is not 0, 1 or 2`);
    else {
      try {
        new URL(normalizeMqttAddress(m.address));
        targets.push(target({ kind: 'mqtt', address: m.address.trim() }, { topic: m.topic, qos: m.qos, retained: m.retained }));
      } catch {
        bad('mqtt.address', `"${m.address}" is not a broker URL`);
      }
    }
  }
  if (pm.otel) {
    const url = pm.otel.endpointURL.trim();
    if (!url) bad('otel.endpointURL', 'required (e.g. http://collector:4318/v1/metrics)');
    else {
      try {
        new URL(url.includes('://') ? url : `http://${url}`);
        targets.push(target({ kind: 'otel', endpoint: url }));
      } catch {
        bad('otel.endpointURL', `"${url}" is not a URL`);
      }
    }
  }
  const db = pm.dbMethod;
  if (db?.influxdb2) {
    const c = db.influxdb2.influxdb2ClientConfig;
    const d = db.influxdb2.influxdb2DataConfig;
    if (!c?.url) bad('dbMethod.influxdb2.influxdb2ClientConfig.url', 'required');
    else if (!c.bucket) bad('dbMethod.influxdb2.influxdb2ClientConfig.bucket', 'required');
    else {
      targets.push(
        target({ kind: 'influxdb2', url: c.url, org: c.org, bucket: c.bucket }, { measurement: d?.measurement ?? '', tags: { ...(d?.tag ?? {}) }, fieldKey: d?.fieldKey ?? '' }),
      );
    }
  }
  if (db?.redis) {
    const c = db.redis.redisClientConfig;
    if (!c?.addr) bad('dbMethod.redis.redisClientConfig.addr', 'required (host:port)');
    else if (c.db < 0) bad('dbMethod.redis.redisClientConfig.db', `${c.db} is negative`);
    else targets.push(target({ kind: 'redis', addr: c.addr.trim(), db: c.db }));
  }
  if (db?.tdengine) {
    const c = db.tdengine.tdEngineClientConfig;
    if (!c?.addr) bad('dbMethod.TDEngine.TDEngineClientConfig.addr', 'required (host:port of the REST endpoint)');
    else if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(c.dbname)) bad('dbMethod.TDEngine.TDEngineClientConfig.dbName', `"${c.dbname}" is not a valid TDengine database name`);
    else targets.push(target({ kind: 'tdengine', addr: c.addr.trim(), dbname: c.dbname }));
  }
  if (db?.mysql) {
    const c = db.mysql.mysqlClientConfig;
    if (!c?.addr) bad('dbMethod.mysql.mysqlClientConfig.addr', 'required (host:port)');
    else if (!c.database) bad('dbMethod.mysql.mysqlClientConfig.database', 'required');
    else if (!c.userName) bad('dbMethod.mysql.mysqlClientConfig.userName', 'required');
    else targets.push(target({ kind: 'mysql', addr: c.addr.trim(), database: c.database, userName: c.userName }));
  }
  return { targets, problems };
}

/** Broker URL of an upstream MQTT address (`tcp://host:1883`, `mqtt://…`, or bare `host:port`). */
export function normalizeMqttAddress(address: string): string {
  const a = address.trim();
  return /^[a-z]+:\/\//i.test(a) ? a : `mqtt://${a}`;
}
