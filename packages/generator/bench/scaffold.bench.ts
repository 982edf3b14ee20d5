// SPDX-License-Identifier: Apache-2.0
// Scaffolding time (goal: < 1 s). Three measures:
//  - in-process renderProject (templates read and compiled: first call cold, then warm),
//  - in-process scaffold() to disk (render + atomic write of a fresh project),
//  - the whole CLI as users run it (`node bin/create-mapper.js <dir> --protocol x --yes`,
//    process start included), default and --stream: from the repository (templates compiled
//    on each run) and from the packed package (npm pack, extracted; precompiled templates).
// Writes bench/results/generator.json at the repository root.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { renderProject, scaffold } from '../src/index.js';

const repo = new URL('../../../', import.meta.url).pathname;
const bin = join(repo, 'packages/generator/bin/create-mapper.js');
const tmp = mkdtempSync(join(tmpdir(), 'create-mapper-bench-'));
const load = loadavg()[0]!;

function stats(ms: number[]): { n: number; p50: number; p95: number; max: number; mean: number } {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  const r = (x: number): number => Math.round(x * 100) / 100;
  return { n: s.length, p50: r(q(0.5)), p95: r(q(0.95)), max: r(s.at(-1)!), mean: r(s.reduce((a, b) => a + b, 0) / s.length) };
}

const time = (fn: () => void): number => {
  const t = performance.now();
  fn();
  return performance.now() - t;
};

const cold = time(() => renderProject({ targetDir: join(tmp, 'cold'), protocol: 'acme' }));
const warm = Array.from({ length: 200 }, (_, i) => time(() => renderProject({ targetDir: join(tmp, `w${i}`), protocol: 'acme', stream: i % 2 === 1 })));

const toDisk: number[] = [];
for (let i = 0; i < 50; i++) {
  const t = performance.now();
  await scaffold({ targetDir: join(tmp, `disk-${i}`), protocol: 'acme', stream: i % 2 === 1 });
  toDisk.push(performance.now() - t);
}

mkdirSync(join(tmp, 'cli'));
let runs = 0;
const once = (binFile: string, stream: boolean): number => {
  const t = performance.now();
  const r = spawnSync(process.execPath, [binFile, `p-${runs++}`, '--protocol', 'acme', '--yes', ...(stream ? ['--stream'] : [])], { cwd: join(tmp, 'cli'), encoding: 'utf8' });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`create-mapper failed: ${r.stderr}`);
  return ms;
};
/** Default and --stream runs interleaved (so load changes hit both alike), after one warm-up run. */
const cli = (binFile: string): [number[], number[]] => {
  once(binFile, false);
  const d: number[] = [];
  const s: number[] = [];
  for (let i = 0; i < 15; i++) {
    d.push(once(binFile, false));
    s.push(once(binFile, true));
  }
  return [d, s];
};
const nodeStart = Array.from({ length: 15 }, () => time(() => spawnSync(process.execPath, ['-e', '0'])));
const cliLoadOnly = Array.from({ length: 15 }, () => time(() => spawnSync(process.execPath, [bin, '--version'])));
const [cliDefault, cliStream] = cli(bin);

// The packed package, extracted outside the repository (its dependencies from the repository's node_modules).
const packed = spawnSync('npm', ['pack', '-w', 'create-mapper', '--pack-destination', tmp, '--json'], { cwd: repo, encoding: 'utf8' });
if (packed.status !== 0) throw new Error(`npm pack failed: ${packed.stderr}`);
const tgz = join(tmp, (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename);
spawnSync('tar', ['-xzf', tgz, '-C', tmp]);
symlinkSync(join(repo, 'node_modules'), join(tmp, 'package', 'node_modules'));
const packedBin = join(tmp, 'package', 'bin', 'create-mapper.js');
const [packedDefault, packedStream] = cli(packedBin);

const result = {
  benchmark: 'generator',
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model.split(' ').slice(0, 2).join(' '), node: process.version, loadavg1mAtStart: Math.round(load * 100) / 100, loadavg1mAtEnd: Math.round(loadavg()[0]! * 100) / 100 },
  goalMs: 1000,
  renderColdMs: Math.round(cold * 100) / 100,
  renderWarmMs: stats(warm),
  scaffoldToDiskMs: stats(toDisk),
  cliEndToEndMs: { default: stats(cliDefault), stream: stats(cliStream) },
  packedCliEndToEndMs: { default: stats(packedDefault), stream: stats(packedStream) },
  nodeProcessStartMs: stats(nodeStart),
  cliVersionOnlyMs: stats(cliLoadOnly),
  meetsGoal: {
    scaffoldInProcessMax: Math.max(...toDisk) < 1000,
    packedCliP50: stats([...packedDefault, ...packedStream]).p50 < 1000,
    packedCliMax: Math.max(...packedDefault, ...packedStream) < 1000,
  },
  note: 'cliEndToEndMs runs bin/ in the repository (templates compiled on each run); packedCliEndToEndMs runs the npm-packed package (precompiled templates), as users get it. nodeProcessStartMs is `node -e 0` and cliVersionOnlyMs `create-mapper --version` (module loading, no scaffold) on the same machine at the same time: on a loaded machine most of the CLI time is process start.',
};
rmSync(tmp, { recursive: true, force: true });
mkdirSync(join(repo, 'bench/results'), { recursive: true });
writeFileSync(join(repo, 'bench/results/generator.json'), `${JSON.stringify(result, null, 2)}\n`);
console.log(JSON.stringify(result, null, 2));
