// SPDX-License-Identifier: Apache-2.0
// Runs fuzz targets and crash probes in child processes and merges what they report. A child
// that dies (fatal error, exit, signal) is a crash: the input it was on is read back from its
// last-input file, recorded, and the target resumes in a new child with the remaining inputs.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Failure, PropertyResult } from './harness.js';

export interface UncaughtRecord {
  readonly kind: string;
  readonly signature: string;
  readonly error: string;
  readonly stack?: string;
}

export interface CrashRecord {
  readonly exitCode: number | null;
  readonly signal: string | null;
  /** Inputs the child had started before it died (the last one is `input`). */
  readonly atInput: number;
  readonly input: string;
  readonly output: string;
}

export interface TargetRun {
  readonly target: string;
  readonly description: string;
  readonly requested: number;
  readonly inputs: number;
  readonly ms: number;
  readonly properties: PropertyResult[];
  readonly failures: Failure[];
  readonly uncaught: UncaughtRecord[];
  readonly crashes: CrashRecord[];
  readonly stats: Record<string, number>;
}

export interface ProbeRun {
  readonly probe: string;
  readonly description: string;
  readonly ok: boolean;
  readonly outcome: string;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly uncaught: UncaughtRecord[];
}

const here = fileURLToPath(import.meta.url);
const fromSource = here.endsWith('.ts');
const CHILD = join(dirname(here), fromSource ? 'child.ts' : 'child.js');

function runChild(args: readonly string[], timeoutMs: number): Promise<{ code: number | null; signal: string | null; result: Record<string, unknown> | undefined; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...(fromSource ? ['--import', 'tsx'] : []), CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-20_000)));
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(t);
      const line = out.split('\n').reverse().find((l) => l.startsWith('@@RESULT@@ '));
      resolve({ code, signal, result: line ? (JSON.parse(line.slice(11)) as Record<string, unknown>) : undefined, output: `${out.replace(/\n?@@RESULT@@ .*$/m, '')}${err}`.slice(-4000) });
    });
  });
}

export async function runTarget(name: string, runs: number, seed: number, opts: { timeoutMs?: number; maxCrashes?: number; log?: (l: string) => void } = {}): Promise<TargetRun> {
  const dir = mkdtempSync(join(tmpdir(), 'mk-fuzz-'));
  const lastFile = join(dir, 'last-input');
  const properties: PropertyResult[] = [];
  const failures = new Map<string, Failure>();
  const uncaught: UncaughtRecord[] = [];
  const crashes: CrashRecord[] = [];
  const stats: Record<string, number> = {};
  let description = '';
  let inputs = 0;
  let attemptSeed = seed;
  const start = Date.now();
  try {
    while (inputs < runs && crashes.length <= (opts.maxCrashes ?? 3)) {
      const r = await runChild(['target', name, String(runs - inputs), String(attemptSeed), lastFile], opts.timeoutMs ?? 3_600_000);
      if (r.result && 'fatal' in r.result) {
        crashes.push({ exitCode: r.code, signal: r.signal, atInput: inputs, input: '(harness error)', output: `${String(r.result['fatal'])}\n${String(r.result['stack'] ?? '')}` });
        break;
      }
      if (r.result) {
        const res = r.result as unknown as { description: string; inputs: number; properties: PropertyResult[]; failures: Failure[]; stats: Record<string, number>; uncaught: UncaughtRecord[] };
        description = res.description;
        inputs += res.inputs;
        properties.push(...res.properties);
        for (const f of res.failures) {
          const prev = failures.get(f.signature);
          failures.set(f.signature, prev ? { ...prev, hits: prev.hits + f.hits } : f);
        }
        for (const [k, v] of Object.entries(res.stats)) stats[k] = (stats[k] ?? 0) + v;
        uncaught.push(...res.uncaught);
        if (r.code !== 0) crashes.push({ exitCode: r.code, signal: r.signal, atInput: inputs, input: '(after the last input)', output: r.output });
        break;
      }
      // The child died: find out on which input.
      let at = 0;
      let input = '(unknown)';
      if (existsSync(lastFile)) {
        const text = readFileSync(lastFile, 'utf8');
        const nl = text.indexOf('\n');
        at = Number(text.slice(0, nl)) || 0;
        input = text.slice(nl + 1);
      }
      crashes.push({ exitCode: r.code, signal: r.signal, atInput: inputs + at, input: input.slice(0, 4000), output: r.output });
      opts.log?.(`[fuzz] ${name}: child died (code ${r.code}, signal ${r.signal}) at input ${inputs + at}: ${input.slice(0, 200)}`);
      inputs += Math.max(1, at);
      attemptSeed = (attemptSeed + 7919) % 2_147_483_647;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { target: name, description, requested: runs, inputs, ms: Date.now() - start, properties, failures: [...failures.values()], uncaught, crashes, stats };
}

export async function runProbe(name: string, description: string, timeoutMs = 120_000): Promise<ProbeRun> {
  const r = await runChild(['probe', name], timeoutMs);
  const res = r.result as { ok: boolean; outcome: string; uncaught: UncaughtRecord[] } | undefined;
  if (!res) {
    const fatal = r.output.split('\n').find((l) => /FATAL|Error|Aborted/.test(l)) ?? r.output.slice(-300);
    return { probe: name, description, ok: false, outcome: `process died (code ${r.code}, signal ${r.signal}): ${fatal.trim()}`, exitCode: r.code, signal: r.signal, uncaught: [] };
  }
  return { probe: name, description, ok: res.ok && r.code === 0, outcome: res.outcome, exitCode: r.code, signal: r.signal, uncaught: res.uncaught };
}
