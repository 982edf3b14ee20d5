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
import { normalizeMqttAddress } from './targets.js';

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
      // QoS 0 messages are "done" once written, in order: only the last one of a run needs a
      // callback (half the CPU of a promise per message). QoS 1/2 wait for their acknowledgements.
      const outcomes: (Promise<void> | undefined)[] = new Array(records.length);
      stream?.cork?.();
      try {
        records.forEach((r, i) => {
          const route = r.route as MqttRoute | undefined;
          if (!route?.topic) {
            outcomes[i] = Promise.reject(new SinkError(`no MQTT topic for ${r.ns}/${r.dev} ${r.prop}`, { permanent: true }));
            return;
          }
          const opts = { qos: route.qos, retain: route.retained };
          const payload = mqttPayload(format, r, route.topic);
          if (route.qos === 0 && i < records.length - 1) client.publish(route.topic, payload, opts);
          else outcomes[i] = new Promise<void>((resolve, reject) => client.publish(route.topic, payload, opts, (err) => (err ? reject(err) : resolve())));
        });
      } finally {
        stream?.uncork?.();
      }
      const settled = await Promise.allSettled(outcomes.map((p) => p ?? Promise.resolve()));
      if (signal.aborted) throw new SinkError('aborted');
      let lastKnownGood = -1;
      for (let i = 0; i < records.length; i++) {
        const s = settled[i]!;
        if (s.status === 'rejected') {
          const reason = s.reason as Error;
          // Records after the last confirmed one are not known to have left: sent again (at least once).
          const delivered = reason instanceof SinkError && reason.permanent ? i : lastKnownGood + 1;
          throw reason instanceof SinkError
            ? new SinkError(reason.message, { delivered, permanent: reason.permanent })
            : new SinkError(`mqtt ${spec.address}: ${reason.message}`, { delivered, cause: reason });
        }
        if (outcomes[i] !== undefined) lastKnownGood = i;
      }
    },
    async close(): Promise<void> {
      await client.endAsync(true).catch(() => undefined);
    },
  };
}
