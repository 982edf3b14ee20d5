// SPDX-License-Identifier: Apache-2.0
// Benchmark child (plain JS on the built packages, so tsx's own memory is not measured): one mapper process (virtual driver) whose own CPU, memory and tick lag are
// measured. Controlled by the parent over IPC. Built only on the framework's public API.
import { createLogger, createMapper } from '@mapperkit/framework';
import { virtualDriver } from '@mapperkit/example-virtual-mapper';

const [socketDir] = process.argv.slice(2);
if (!socketDir) throw new Error('usage: mapper-child <socketDir>');

// Count what the driver is asked to read, per property, to prove read-once fan-out.
const driverReads = new Map();
const counted = {
  ...virtualDriver,
  async connect(ctx, signal) {
    const client = await virtualDriver.connect(ctx, signal);
    const read = client.read.bind(client);
    client.read = (requests, s) => {
      for (const r of requests) driverReads.set(`${ctx.device.id}/${r.name}`, (driverReads.get(`${ctx.device.id}/${r.name}`) ?? 0) + 1);
      return read(requests, s);
    };
    return client;
  },
};

const consumerCounts = [0, 0, 0];
const consumers = consumerCounts.map((_, i) => ({
  name: `bench-consumer-${i}`,
  accept(samples) {
    consumerCounts[i] += samples.length;
  },
}));

let mapper;
let cpuMark = process.cpuUsage();
let timeMark = performance.now();
let readsMark = 0;
let consumerMark = [0, 0, 0];
const rss = [];
let rssTimer;

function totalReads() {
  let n = 0;
  for (const v of driverReads.values()) n += v;
  return n;
}

process.on('message', async (msg) => {
  const reply = (data) => void process.send?.({ cmd: msg.cmd, data });
  switch (msg.cmd) {
    case 'start': {
      mapper = await createMapper({
        driver: counted,
        config: `grpc_server:\n  socket_path: ${socketDir}/virtual.sock\ncommon:\n  name: bench\n  protocol: virtual\n  edgecore_sock: ${socketDir}/dmi.sock\n`,
        logger: createLogger({ level: 'warn' }),
        consumers,
      });
      await mapper.whenRegistered();
      reply({ pid: process.pid });
      break;
    }
    case 'mark': {
      // Start of a measurement window.
      cpuMark = process.cpuUsage();
      timeMark = performance.now();
      readsMark = totalReads();
      consumerMark = [...consumerCounts];
      mapper?.resetStats();
      rss.length = 0;
      clearInterval(rssTimer);
      rssTimer = setInterval(() => rss.push(process.memoryUsage.rss()), 1000);
      reply({});
      break;
    }
    case 'measure': {
      const cpu = process.cpuUsage(cpuMark);
      const elapsed = performance.now() - timeMark;
      const s = mapper.stats();
      rss.push(process.memoryUsage.rss());
      reply({
        elapsedMs: elapsed,
        cpuShareOfOneCore: (cpu.user + cpu.system) / 1000 / elapsed,
        rssMaxMB: Math.max(...rss) / 1e6,
        rssLastMB: rss.at(-1) / 1e6,
        heapUsedMB: process.memoryUsage().heapUsed / 1e6,
        tickLagP50: s.tickLagP50,
        tickLagP99: s.tickLagP99,
        tickLagMax: s.tickLagMax,
        ticks: s.ticks,
        overruns: s.overruns,
        propertyReads: totalReads() - readsMark,
        consumerSamples: consumerCounts.map((c, i) => c - consumerMark[i]),
        devices: s.devices,
        connected: mapper.devices().filter((d) => d.connected).length,
        sampled: mapper.devices().filter((d) => d.values.size > 0).length,
        twinReports: s.twinReports,
        stateReports: s.stateReports,
      });
      break;
    }
    case 'stop': {
      clearInterval(rssTimer);
      await mapper?.stop();
      reply({});
      process.exit(0);
    }
  }
});
process.send?.({ cmd: 'ready' });
