// SPDX-License-Identifier: Apache-2.0
// Data-plane benchmark child (plain JS on the built packages, so tsx is not measured): one
// mapper process (virtual driver) whose sinks push to Redis and MQTT. Controlled by
// bench/data-plane.ts over IPC. Built only on the framework's public API.
import { createLogger, createMapper } from '@mapperkit/framework';
import { virtualDriver } from '@mapperkit/example-virtual-mapper';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const [dir, bufferDir] = process.argv.slice(2);
if (!dir || !bufferDir) throw new Error('usage: data-plane-child <socketDir> <bufferDir>');

// Samples fanned out, per device: what the sinks must end up holding.
const perDevice = new Map();
const counter = {
  name: 'bench-counter',
  accept(samples) {
    for (const s of samples) perDevice.set(s.deviceId, (perDevice.get(s.deviceId) ?? 0) + 1);
  },
};

let mapper;
// Event-loop delay (how long a ready callback, e.g. a REST request, waits), per benchmark phase;
// sampled by a 1 ms timer, which the figures include (an idle loop reads ~1 ms).
const eld = monitorEventLoopDelay({ resolution: 1 });
eld.enable();
const ms = (ns) => Math.round(ns / 1e5) / 10;
process.on('message', async (msg) => {
  const reply = (data) => void process.send?.({ cmd: msg.cmd, data });
  try {
    switch (msg.cmd) {
      case 'start': {
        mapper = await createMapper({
          driver: virtualDriver,
          config: `grpc_server:\n  socket_path: ${dir}/virtual.sock\ncommon:\n  name: bench\n  protocol: virtual\n  edgecore_sock: ${dir}/dmi.sock\n  http_port: 0\ndata_plane:\n  buffer_dir: ${bufferDir}\n  retry_initial_ms: 200\n  retry_max_ms: 1000\n  mqtt:\n    payload: json\n`,
          logger: createLogger({ level: 'warn' }),
          consumers: [counter],
        });
        await mapper.whenRegistered();
        reply({ pid: process.pid, rest: mapper.restAddress() });
        break;
      }
      case 'status':
        reply({ sinks: mapper.sinks(), samples: [...perDevice.values()].reduce((a, b) => a + b, 0), cpu: process.cpuUsage(), rss: process.memoryUsage().rss, maxRssKB: process.resourceUsage().maxRSS });
        break;
      case 'eld':
        // Event-loop delay since the last 'eld' (ms), then start over.
        reply({ p50: ms(eld.percentile(50)), p99: ms(eld.percentile(99)), max: ms(eld.max) });
        eld.reset();
        break;
      case 'perDevice':
        reply(Object.fromEntries(perDevice));
        break;
      case 'stop':
        await mapper.stop();
        reply({});
        process.exit(0);
        break;
      default:
        reply({ error: `unknown command ${msg.cmd}` });
    }
  } catch (err) {
    reply({ error: String(err?.stack ?? err) });
  }
});
// Never outlive the benchmark.
process.on('disconnect', () => process.exit(1));
process.send?.({ cmd: 'ready' });
