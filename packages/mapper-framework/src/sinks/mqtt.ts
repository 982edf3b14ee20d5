// SPDX-License-Identifier: Apache-2.0
// MQTT sink (mqtt.js): one persistent connection per broker address (upstream connected and
// disconnected for every message), reconnecting by itself; qos and retained per property. QoS 0
// messages are encoded here and written in one buffer per batch (mqtt.js' per-message publish
// path cost ~14 µs a message, the largest item in a mapper pushing 15,000 samples/s); QoS 1/2
// use mqtt.js' publish (packet ids, acknowledgements, resend).
// Payload: upstream's text `time is <local time>  <topic>: <value>` or the DataModel JSON.
import { createHash } from 'node:crypto';
import mqtt from 'mqtt';
import { dataModelJson, goLocalTime } from './data-model.js';
import { type MqttRoute, SinkError, type SinkRecord, type SinkWriter, type WriterContext } from './types.js';

export function mqttPayload(format: 'text' | 'json', r: SinkRecord, topic: string): string {
  return format === 'json' ? dataModelJson(r) : `time is ${goLocalTime(r.ts)}  ${topic}: ${r.val}`;
}

/** mqtt.js takes `mqtt://`, `mqtts://`, `tcp://`, `ssl://`, `ws://`; upstream samples also use a bare `host:port`. */
import { normalizeMqttAddress } from './targets.js';

/** Bytes of the MQTT variable byte integer (remaining length). */
function varintSize(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

const MAX_REMAINING = 268_435_455;

/**
 * QoS 0 PUBLISH packets of `records[from, to)` in one buffer (MQTT 3.1.1 §3.3, 5.0 §3.3: fixed
 * header 0x30 | retain, remaining length, topic as a length-prefixed UTF-8 string, in 5.0 an
 * empty property list, then the payload). No packet id, no state: what mqtt.js would send, without
 * its per-message objects, debug calls and one write per packet part.
 */
export function encodeQos0(records: readonly SinkRecord[], from: number, to: number, format: 'text' | 'json', v5: boolean): Buffer {
  const parts: { topic: string; payload: string; t: number; p: number; rem: number; retain: boolean }[] = [];
  let total = 0;
  for (let i = from; i < to; i++) {
    const r = records[i]!;
    const route = r.route as MqttRoute;
    const payload = mqttPayload(format, r, route.topic);
    const t = Buffer.byteLength(route.topic);
    const p = Buffer.byteLength(payload);
    const rem = 2 + t + (v5 ? 1 : 0) + p;
    if (t > 65_535 || rem > MAX_REMAINING) throw new SinkError(`mqtt message for ${r.ns}/${r.dev} ${r.prop} is too large (${rem} bytes)`, { permanent: true, delivered: i });
    parts.push({ topic: route.topic, payload, t, p, rem, retain: route.retained });
    total += 1 + varintSize(rem) + rem;
  }
  const buf = Buffer.allocUnsafe(total);
  let o = 0;
  for (const x of parts) {
    buf[o++] = x.retain ? 0x31 : 0x30;
    let n = x.rem;
    do {
      let b = n % 128;
      n = Math.floor(n / 128);
      if (n > 0) b |= 0x80;
      buf[o++] = b;
    } while (n > 0);
    buf.writeUInt16BE(x.t, o);
    o += 2;
    o += buf.write(x.topic, o, 'utf8');
    if (v5) buf[o++] = 0;
    o += buf.write(x.payload, o, 'utf8');
  }
  return buf;
}

/** CONNACK codes of a refused login: MQTT 3.1.1 (4, 5) and 5 (134, 135). */
const AUTH_REFUSED = new Set([4, 5, 134, 135]);
const NO_LOGIN_HINT =
  'no broker login was found: give the address user info (mqtt://user:pass@host) or the sink credentials MQTT_USERNAME/MQTT_PASSWORD (files mqtt_username/mqtt_password in data_plane.credentials_dir, MQTT_USERNAME_FILE/MQTT_PASSWORD_FILE, or the variables)';

export function createMqttWriter(spec: { address: string }, ctx: WriterContext): SinkWriter {
  const url = normalizeMqttAddress(spec.address);
  const idPrefix = ctx.options.mqttClientId || 'mapperkit';
  const clientId = `${idPrefix}-${createHash('sha256').update(`${ctx.options.mapperName}|${url}`).digest('hex').slice(0, 10)}`;
  // Broker login: the address's own user info (mqtt://user:pass@host) when it has some; else the
  // sink credentials MQTT_USERNAME / MQTT_PASSWORD, found as the other sinks' are (credentials_dir
  // files mqtt_username / mqtt_password, *_FILE, env). Upstream's MQTT push has no login at all.
  const login: { username?: string; password?: string } = {};
  const urlHasLogin = URL.canParse(url) && new URL(url).username !== '';
  if (!urlHasLogin) {
    const username = ctx.credential('MQTT_USERNAME');
    const password = ctx.credential('MQTT_PASSWORD');
    if (username !== undefined) login.username = username;
    if (password !== undefined) login.password = password;
  }
  const noLoginFound = !urlHasLogin && login.username === undefined && login.password === undefined;
  const client = mqtt.connect(url, {
    ...login,
    clientId,
    reconnectPeriod: 1000,
    connectTimeout: 5000,
    // Never queue while offline: the channel's disk buffer does that, in order.
    queueQoSZero: false,
    clean: true,
  });
  let lastErr = '';
  client.on('error', (err: Error) => {
    // A broker that wants a login while none was found: say where one is looked for.
    const refused = AUTH_REFUSED.has((err as Error & { code?: unknown }).code as number);
    const message = refused && noLoginFound ? `${err.message}; ${NO_LOGIN_HINT}` : err.message;
    if (message !== lastErr) {
      lastErr = message;
      ctx.log.debug({ err: message }, 'mqtt connection error');
    }
  });
  client.on('connect', () => {
    lastErr = '';
  });
  const format = ctx.options.mqttPayload;
  /** Writes QoS 0 packets straight to the connection; done once handed to the socket (as mqtt.js' own QoS 0 callback). */
  const writeQos0 = (records: readonly SinkRecord[], from: number, to: number, fmt: 'text' | 'json', v5: boolean): Promise<void> => {
    let buf: Buffer;
    try {
      buf = encodeQos0(records, from, to, fmt, v5);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const stream = client.stream as unknown as NodeJS.WritableStream & { destroyed?: boolean };
    if (!client.connected || !stream || stream.destroyed) return Promise.reject(new SinkError(`mqtt ${spec.address} not connected`));
    return new Promise<void>((resolve, reject) => {
      stream.write(buf, (err?: Error | null) => (err ? reject(err) : resolve()));
    });
  };
  return {
    ready: (signal) =>
      client.connected
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            const done = (): void => {
              client.off('connect', done);
              signal.removeEventListener('abort', done);
              resolve();
            };
            client.once('connect', done);
            signal.addEventListener('abort', done, { once: true });
          }),
    async write(records: readonly SinkRecord[], signal: AbortSignal): Promise<void> {
      if (!client.connected) throw new SinkError(`mqtt ${spec.address} not connected${lastErr ? ` (${lastErr})` : ''}`);
      // Runs of QoS 0 messages are encoded here, one buffer and one socket write per run; QoS 1/2
      // go through mqtt.js (packet ids, acknowledgements). Each outcome covers records [from, to).
      const outcomes: { from: number; to: number; done: Promise<void> }[] = [];
      const v5 = client.options.protocolVersion === 5;
      let run = 0;
      const flushRun = (to: number): void => {
        if (run < to) outcomes.push({ from: run, to, done: writeQos0(records, run, to, format, v5) });
        run = to + 1;
      };
      for (let i = 0; i < records.length; i++) {
        const r = records[i]!;
        const route = r.route as MqttRoute | undefined;
        if (route?.topic && route.qos === 0) continue;
        flushRun(i);
        if (!route?.topic) {
          outcomes.push({ from: i, to: i + 1, done: Promise.reject(new SinkError(`no MQTT topic for ${r.ns}/${r.dev} ${r.prop}`, { permanent: true })) });
          continue;
        }
        const payload = mqttPayload(format, r, route.topic);
        const done = new Promise<void>((resolve, reject) => client.publish(route.topic, payload, { qos: route.qos, retain: route.retained }, (err) => (err ? reject(err) : resolve())));
        outcomes.push({ from: i, to: i + 1, done });
      }
      flushRun(records.length);
      const settled = await Promise.allSettled(outcomes.map((o) => o.done));
      if (signal.aborted) throw new SinkError('aborted');
      for (let k = 0; k < outcomes.length; k++) {
        const s = settled[k]!;
        if (s.status === 'fulfilled') continue;
        const reason = s.reason as Error;
        // Records from the first failed outcome on are not known to have left: sent again (at least once).
        const delivered = outcomes[k]!.from;
        throw reason instanceof SinkError
          ? new SinkError(reason.message, { delivered, permanent: reason.permanent })
          : new SinkError(`mqtt ${spec.address}: ${reason.message}`, { delivered, cause: reason });
      }
    },
    async close(): Promise<void> {
      await client.endAsync(true).catch(() => undefined);
    },
  };
}
