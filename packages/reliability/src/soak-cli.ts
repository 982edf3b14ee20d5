// SPDX-License-Identifier: Apache-2.0
// `npm run soak [-- --duration 10m --devices 200 --out bench/results/soak.json]`
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from './bins.js';
import { ALL_FAULTS, type FaultKind, runSoak, type SoakReport, summarizeMemory } from './soak.js';

function duration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new Error(`--duration: "${text}" is not a duration (e.g. 90s, 10m)`);
  const n = Number(m[1]);
  return Math.round(n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h']);
}

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10m' },
    devices: { type: 'string', default: '200' },
    sims: { type: 'string', default: '2' },
    'cycle-ms': { type: 'string', default: '1000' },
    'outage-ms': { type: 'string', default: '8000' },
    'gap-ms': { type: 'string', default: '5000' },
    faults: { type: 'string', default: ALL_FAULTS.join(',') },
    out: { type: 'string', default: join(REPO_ROOT, 'bench', 'results', 'soak.json') },
    'keep-work-dir': { type: 'boolean', default: false },
    v: { type: 'string', default: '1' },
    /** Recompute the derived memory figures of an existing report from its samples (no new run). */
    'recompute-memory': { type: 'string' },
  },
  strict: true,
});

if (values['recompute-memory']) {
  const file = resolve(values['recompute-memory']);
  const old = JSON.parse(readFileSync(file, 'utf8')) as SoakReport;
  const memory = summarizeMemory(old.samples, old.measuredS, Number((old.config as { sampleEveryMs?: number }).sampleEveryMs ?? 10_000));
  writeFileSync(file, `${JSON.stringify({ ...old, memory }, null, 2)}\n`);
  process.stderr.write(`[soak] recomputed memory figures of ${file}: ${JSON.stringify(memory.heapFloor)}\n`);
  process.exit(0);
}

const faults = values.faults.split(',').map((f) => f.trim()) as FaultKind[];
for (const f of faults) if (!ALL_FAULTS.includes(f)) throw new Error(`--faults: unknown fault "${f}" (known: ${ALL_FAULTS.join(', ')})`);
const report = await runSoak({
  durationMs: duration(values.duration),
  devices: Number(values.devices),
  simProcesses: Number(values.sims),
  cycleMs: Number(values['cycle-ms']),
  outageMs: Number(values['outage-ms']),
  gapMs: Number(values['gap-ms']),
  faults,
  keepWorkDir: values['keep-work-dir'],
  verbosity: Number(values.v),
});
const out = resolve(values.out);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
const s = report.sinks;
process.stderr.write(
  [
    `[soak] wrote ${out}`,
    `[soak] redis: produced ${s.redis.produced}, delivered ${s.redis.delivered}; mqtt: produced ${s.mqtt.produced}, delivered ${s.mqtt.delivered} (${s.mqtt.duplicates} duplicates)`,
    `[soak] re-registration after edgecore restart: ${report.reRegistration.msAfterSocket.join(', ')} ms; faults ${JSON.stringify(report.faultCounts)}`,
    `[soak] RSS ${report.memory.rssStartMB} → ${report.memory.rssEndMB} MB (second-half slope ${report.memory.secondHalf.rssSlopeMBPerHour} MB/h ± ${report.memory.secondHalf.rssResidualStdMB}); heap slope ${report.memory.secondHalf.heapUsedSlopeMBPerHour} MB/h; heap floor per minute ${report.memory.heapFloor.perMinuteMB.join(' ')} MB (second-half slope ${report.memory.heapFloor.secondHalfSlopeMBPerHour} MB/h)`,
    `[soak] event-loop lag p99 (per scrape interval, ${report.eventLoopLag.readings} readings): median ${report.eventLoopLag.p99MedianMs} ms, p90 ${report.eventLoopLag.p99P90Ms} ms, max ${report.eventLoopLag.p99MaxMs} ms; longest delay ${report.eventLoopLag.maxMs} ms; fds ${report.fds.start} → ${report.fds.end} (own ${report.fds.ownStart} → ${report.fds.ownEnd}, inbound DMI ${report.fds.dmiInboundAtStart} → ${report.fds.dmiInboundAtEnd})`,
    `[soak] leftovers: ${JSON.stringify(report.leftovers)}`,
    report.violations.length ? `[soak] GOALS MISSED:\n  - ${report.violations.join('\n  - ')}` : '[soak] all goals met',
    '',
  ].join('\n'),
);
process.exit(report.violations.length ? 1 : 0);
