// SPDX-License-Identifier: Apache-2.0
// MQTT sink (mqtt.js): one persistent connection per broker address (upstream connected and
// disconnected for every message), reconnecting by itself; qos and retained per property.
// Payload: upstream's text `time is <local time>  <topic>: <value>` or the DataModel JSON.
import { createHash } from 'node:crypto';
import mqtt from 'mqtt';
import { dataModelJson, goLocalTime } from './data-model.js';
import { type MqttRoute, SinkError, type SinkRecord, type SinkWriter, type WriterContext } from './types.js';

export function mqttPayload(format: 'text' | 'json', r: SinkRecord, topic: string): string {
  return format === 'json' ? dataModelJson(r) : `time is ${goLocalTime(r.ts)}  ${topic}: ${r.val}`;
}

/** mqtt.js takes `mqtt://`, `mqtts://`, `tcp://`, `ssl://`, `ws://`; upstream samples also use a bare `host:port`. */
export function normalizeMqttAddress(address: string): string {
  const a = address.trim();
  return /^[a-z]+:\/\//i.test(a) ? a : `mqtt://${a}`;
}

export function createMqttWriter(spec: { address: string }, ctx: WriterContext): SinkWriter {
  const url = normalizeMqttAddress(spec.address);
  const idPrefix = ctx.options.mqttClientId || 'mapperkit';
  const clientId = `${idPrefix}-${createHash('sha256').update(`${ctx.options.mapperName}|${url}`).digest('hex').slice(0, 10)}`;
  const client = mqtt.connect(url, {
    clientId,
    reconnectPeriod: 1000,
    connectTimeout: 5000,
    // Never queue while offline: the channel's disk buffer does that, in order.
    queueQoSZero: false,
    clean: true,
  });
  let lastErr = '';
  client.on('error', (err: Error) => {
    if (err.message !== lastErr) {
      lastErr = err.message;
      ctx.log.debug({ err: err.message }, 'mqtt connection error');
    }
  });
  client.on('connect', () => {
    lastErr = '';
  });
  const format = ctx.options.mqttPayload;
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
      // One socket write for the whole batch instead of one per packet.
      const stream = (client as unknown as { stream?: { cork?: () => void; uncork?: () => void } }).stream;
      stream?.cork?.();
      let results: Promise<unknown>[];
      try {
        results = records.map((r) => {
          const route = r.route as MqttRoute | undefined;
          if (!route?.topic) return Promise.reject(new SinkError(`no MQTT topic for ${r.ns}/${r.dev} ${r.prop}`, { permanent: true }));
          return client.publishAsync(route.topic, mqttPayload(format, r, route.topic), { qos: route.qos, retain: route.retained });
        });
      } finally {
        stream?.uncork?.();
      }
      const settled = await Promise.allSettled(results);
      if (signal.aborted) throw new SinkError('aborted');
      const bad = settled.findIndex((s) => s.status === 'rejected');
      if (bad >= 0) {
        const reason = (settled[bad] as PromiseRejectedResult).reason as Error;
        throw reason instanceof SinkError
          ? new SinkError(reason.message, { delivered: bad, permanent: reason.permanent })
          : new SinkError(`mqtt ${spec.address}: ${reason.message}`, { delivered: bad, cause: reason });
      }
    },
    async close(): Promise<void> {
      await client.endAsync(true).catch(() => undefined);
    },
  };
}
