// SPDX-License-Identifier: Apache-2.0
// Puts the data plane (sinks), the metrics and the REST server around a mapper runtime:
// created before the runtime (they are its consumers and observers), started after it.
import type { Logger } from 'pino';
import type { MapperConfig } from '../config.js';
import { toMapperError } from '../errors.js';
import { MapperMetrics } from '../metrics/metrics.js';
import type { RuntimeObserver } from '../observer.js';
import type { SampleConsumer } from '../sample.js';
import type { SinkStatus } from '../sinks/channel.js';
import { DataPlane } from '../sinks/data-plane.js';
import { type RestBackend, type RestServer, resolveWriteToken, startRestServer } from './rest-server.js';

export interface DataPlaneWiring {
  /** Consumers to give the runtime (data plane, metrics). */
  readonly consumers: readonly SampleConsumer[];
  /** Observers to give the runtime (metrics). */
  readonly observers: readonly RuntimeObserver[];
  /** Binds the runtime's views; call before the runtime produces samples. */
  attach(backend: Omit<RestBackend, 'sinks' | 'metrics' | 'registered'>): void;
  /** Replays old disk buffers and starts the REST server (a busy port is logged, not fatal, as upstream). */
  start(): Promise<void>;
  sinks(): SinkStatus[];
  restAddress(): { host: string; port: number } | undefined;
  /** Stops the REST server (the data plane is closed by the runtime, as a consumer). */
  stop(): Promise<void>;
}

export function createDataPlaneWiring(config: MapperConfig, log: Logger): DataPlaneWiring {
  const metrics = new MapperMetrics();
  const dataPlane = new DataPlane({
    config,
    log: log.child({ component: 'data-plane' }),
    hooks: { onWrite: (sink, kind, ms, ok) => metrics.onSinkWrite(sink, kind, ms, ok) },
  });
  metrics.setSinkSource(() => dataPlane.status());
  let rest: RestServer | undefined;
  let stopped = false;
  let registered = false;
  let backend: Omit<RestBackend, 'sinks' | 'metrics' | 'registered' | 'unhealthy'> | undefined;
  // Liveness: a mapper refused access to edgecore's socket never recovers by itself (the socket
  // was re-created with other permissions, e.g. by an edgecore restart under a restrictive umask);
  // a pod restart re-runs the chart's socket-directory preparation. So /healthz fails after a while.
  let deniedSince: number | undefined;
  let deniedReason = '';
  const health: RuntimeObserver = {
    onRegistration: (e) => (registered = e.registered),
    onDmiCall: (e) => {
      if (e.method !== 'MapperRegister') return;
      if (e.code === 0) deniedSince = undefined;
      else if (e.error && /EACCES|permission denied/i.test(e.error)) {
        deniedSince ??= Date.now();
        deniedReason = e.error;
      }
    },
  };
  const unhealthy = (): string | undefined =>
    deniedSince !== undefined && Date.now() - deniedSince >= config.runtime.unhealthy_after_ms
      ? `MapperRegister has been refused access to edgecore's socket ${config.common.edgecore_sock} for ${Math.round((Date.now() - deniedSince) / 1000)} s: ${deniedReason}`
      : undefined;
  return {
    consumers: [dataPlane, metrics.consumer],
    observers: [metrics, health],
    attach(b) {
      backend = b;
      dataPlane.setCollectCycleLookup((id, prop) => b.device(id)?.spec.properties.find((p) => p.name === prop)?.collectCycle);
    },
    async start() {
      dataPlane.restoreBuffers();
      if (!backend) throw new Error('data plane wiring: attach() before start()');
      if (!config.rest.enabled) return;
      const host = config.rest.bind_address;
      const port = config.common.http_port;
      try {
        const writeToken = resolveWriteToken(config.rest.write_token_file);
        rest = await startRestServer({ backend: { ...backend, registered: () => registered, unhealthy, sinks: () => dataPlane.status(), metrics }, host, port, writeToken, log: log.child({ component: 'rest' }) });
        if (stopped) {
          await rest.close();
          return;
        }
        log.info({ address: `${rest.address.host}:${rest.address.port}`, writeAuth: writeToken !== undefined }, 'REST API listening');
      } catch (err) {
        log.error({ host, port, err: toMapperError(err).message }, 'REST API not started');
      }
    },
    sinks: () => dataPlane.status(),
    restAddress: () => rest?.address,
    async stop() {
      stopped = true;
      await rest?.close();
    },
  };
}
