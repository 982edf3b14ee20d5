// SPDX-License-Identifier: Apache-2.0
// `npm run fuzz [-- --runs 100000 --targets any-decoder,rest-api --seed 42 --out bench/results/fuzz.json]`
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from './bins.js';
import { FIXED_BUGS, knownBugFor, KNOWN_BUGS } from './fuzz/known.js';
import { PROBES } from './fuzz/probes.js';
import { type ProbeRun, runProbe, runTarget, type TargetRun } from './fuzz/runner.js';
import { TARGETS } from './fuzz/targets/index.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '100000' },
    targets: { type: 'string', default: TARGETS.map((t) => t.name).join(',') },
    seed: { type: 'string', default: String(Date.now() % 2_147_483_647) },
    probes: { type: 'boolean', default: true },
    out: { type: 'string', default: join(REPO_ROOT, 'bench', 'results', 'fuzz.json') },
  },
  allowNegative: true,
  strict: true,
});

const runs = Number(values.runs);
const seed = Number(values.seed);
const names = values.targets.split(',').map((s) => s.trim()).filter(Boolean);
const say = (l: string): void => void process.stderr.write(`${l}\n`);
const loadStart = loadavg()[0]!;
const started = Date.now();
const targets: TargetRun[] = [];
for (const name of names) {
  say(`[fuzz] ${name}: ${runs} inputs (seed ${seed})`);
  const r = await runTarget(name, runs, seed, { log: say });
  targets.push(r);
  say(`[fuzz] ${name}: ${r.inputs} inputs in ${(r.ms / 1000).toFixed(1)} s — ${r.failures.length} failure(s), ${r.uncaught.length} uncaught, ${r.crashes.length} crash(es)`);
  for (const f of r.failures) say(`         ✗ ${knownBugFor(name, f.signature) ? `[known: ${knownBugFor(name, f.signature)!.id}] ` : '[NEW] '}${f.signature}\n           input: ${f.counterexample.slice(0, 300)}`);
  for (const [id, k] of Object.entries(knownHits(r))) say(`         ! known bug ${id}: ${k.hits} input(s), e.g. ${k.example.slice(0, 200)}`);
  for (const u of r.uncaught.slice(0, 5)) say(`         ✗ uncaught ${u.kind}: ${u.signature}`);
  for (const c of r.crashes) say(`         ✗ crash (code ${c.exitCode}, signal ${c.signal}) on: ${c.input.slice(0, 300)}`);
}
const probes: ProbeRun[] = [];
if (values.probes) {
  for (const p of PROBES) {
    const r = await runProbe(p.name, p.description);
    probes.push(r);
    say(`[fuzz] probe ${p.name}: ${r.ok ? 'ok' : 'FAILS'} — ${r.outcome.slice(0, 200)}`);
  }
}
function knownHits(t: TargetRun): Record<string, { hits: number; error: string; example: string }> {
  const out: Record<string, { hits: number; error: string; example: string }> = {};
  for (const p of t.properties) for (const [id, k] of Object.entries(p.known ?? {})) out[id] = { hits: (out[id]?.hits ?? 0) + k.hits, error: out[id]?.error ?? k.error, example: out[id]?.example ?? k.example };
  return out;
}

const summary = {
  benchmark: 'fuzz',
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '', node: process.version, loadavg1mAtStart: Number(loadStart.toFixed(2)), loadavg1mAtEnd: Number(loadavg()[0]!.toFixed(2)) },
  engine: 'fast-check 4 (property-based; shrunk counterexamples), one child process per target',
  seed,
  runsPerTarget: runs,
  totalSeconds: Number(((Date.now() - started) / 1000).toFixed(1)),
  totals: {
    inputs: targets.reduce((a, t) => a + t.inputs, 0),
    failures: targets.reduce((a, t) => a + t.failures.length, 0),
    newFailures: targets.reduce((a, t) => a + t.failures.filter((f) => !knownBugFor(t.target, f.signature)).length, 0),
    knownBugHits: targets.reduce((a, t) => a + Object.values(knownHits(t)).reduce((x, k) => x + k.hits, 0), 0),
    uncaughtExceptions: targets.reduce((a, t) => a + t.uncaught.length, 0),
    processExits: targets.reduce((a, t) => a + t.crashes.length, 0),
    probesFailing: probes.filter((p) => !p.ok).length,
  },
  targets: targets.map((t) => ({
    target: t.target,
    description: t.description,
    inputs: t.inputs,
    seconds: Number((t.ms / 1000).toFixed(1)),
    failures: t.failures.map((f) => ({ known: knownBugFor(t.target, f.signature)?.id ?? null, ...f })),
    uncaught: t.uncaught,
    crashes: t.crashes,
    knownBugHits: knownHits(t),
    properties: t.properties.map((p) => ({ name: p.name, inputs: p.inputs, failures: p.failures.length, knownBugHits: Object.fromEntries(Object.entries(p.known).map(([id, k]) => [id, k.hits])) })),
    stats: t.stats,
  })),
  probes,
  knownBugs: KNOWN_BUGS.map((b) => ({ id: b.id, title: b.title, where: b.where, targets: b.targets })),
  // Found earlier and fixed: no longer excused, a recurrence is a failure above.
  fixedBugs: FIXED_BUGS.map((b) => ({ id: b.id, title: b.title, fixedIn: b.fixedIn, targets: b.targets, regressionTest: b.regressionTest })),
};
const out = resolve(values.out);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(summary, null, 2)}\n`);
say(`[fuzz] wrote ${out}: ${JSON.stringify(summary.totals)}`);
process.exit(summary.totals.failures + summary.totals.uncaughtExceptions + summary.totals.processExits + summary.totals.probesFailing > 0 ? 1 : 0);
