// SPDX-License-Identifier: Apache-2.0
// The fuzzing harness: fast-check properties run in batches until the requested number of
// inputs, collecting every distinct failure (shrunk counterexample + error) instead of
// stopping at the first. Each target runs in a child process (see runner.ts) so that a crash
// (uncaught exception, fatal error, exit) is seen and the input that caused it is known: the
// current input is written to a file before it is tried.
import { closeSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import fc from 'fast-check';
import { isMapperError } from '@mapperkit/framework';
import { knownBugFor } from './known.js';

export interface Failure {
  /** Error class and message with numbers and quoted text blurred: one entry per distinct bug. */
  readonly signature: string;
  readonly error: string;
  readonly stack?: string;
  /** The (shrunk) failing input. */
  readonly counterexample: string;
  readonly seed: number;
  /** How many times this signature failed (one per batch that hit it). */
  readonly hits: number;
}

export interface PropertyResult {
  readonly name: string;
  readonly inputs: number;
  readonly failures: Failure[];
  /** Inputs that hit an already reported bug (src/fuzz/known.ts): counted, first example kept, campaign goes on. */
  readonly known: Record<string, { hits: number; error: string; example: string }>;
  readonly ms: number;
}

export interface TargetResult {
  readonly target: string;
  readonly description: string;
  readonly inputs: number;
  readonly properties: PropertyResult[];
  readonly failures: Failure[];
  readonly ms: number;
  /** Target-specific counters (status codes seen, errors by kind…). */
  readonly stats: Record<string, number>;
}

export interface TargetContext {
  /** The target's name (for the known-bug lookup). */
  readonly target: string;
  /** Inputs to generate in total (split among the target's properties). */
  readonly runs: number;
  readonly seed: number;
  /** Records the input about to be tried (for crash reports). */
  readonly lastInput: LastInput;
  readonly stats: Record<string, number>;
  readonly log: (line: string) => void;
}

export interface FuzzTarget {
  readonly name: string;
  readonly description: string;
  run(ctx: TargetContext): Promise<PropertyResult[]>;
}

/** A file holding the number of inputs tried so far and the current one, rewritten before each input. */
export class LastInput {
  private fd: number | undefined;
  private n = 0;
  constructor(path: string | undefined) {
    this.fd = path ? openSync(path, 'w') : undefined;
  }
  set(text: string): void {
    this.n++;
    if (this.fd === undefined) return;
    const buf = Buffer.from(`${this.n}\n${text.length > 100_000 ? `${text.slice(0, 100_000)}…(${text.length} chars)` : text}`);
    ftruncateSync(this.fd, 0);
    writeSync(this.fd, buf, 0, buf.length, 0);
  }
  get count(): number {
    return this.n;
  }
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

export function signatureOf(err: unknown): string {
  if (!(err instanceof Error)) return `non-Error thrown: ${typeof err}`;
  const first = (err.message.split('\n')[0] ?? '')
    .replace(/"(?:[^"\\]|\\.)*"/g, '"…"')
    .replace(/'(?:[^'\\]|\\.)*'/g, "'…'")
    .replace(/-?\d+(\.\d+)?(e[+-]?\d+)?/gi, 'N')
    .slice(0, 160);
  return `${err.constructor.name}: ${first}`;
}

/** Renders an input for a report (bytes as hex, long strings cut). */
export function show(v: unknown): string {
  try {
    return fc.stringify(v).slice(0, 4000);
  } catch {
    return String(v).slice(0, 4000);
  }
}

/**
 * The error policy shared by the targets: a MapperError is a clean refusal; anything else
 * (TypeError, RangeError, a plain Error where a MapperError is documented, a non-Error) is a bug.
 * `alsoAllowed` widens it for functions documented to throw plain Errors.
 */
export function refuseCleanly(err: unknown, stats: Record<string, number>, alsoAllowed?: (e: Error) => boolean): void {
  if (isMapperError(err)) {
    stats[`refused:${err.kind}`] = (stats[`refused:${err.kind}`] ?? 0) + 1;
    return;
  }
  if (err instanceof Error && alsoAllowed?.(err)) {
    stats['refused:Error'] = (stats['refused:Error'] ?? 0) + 1;
    return;
  }
  throw err;
}

/**
 * Runs `predicate` on `runs` inputs from `arb`, in batches of at most `batch`, each batch with
 * its own seed, and collects distinct failures. A predicate fails by throwing or returning false.
 */
export async function fuzzProperty<T>(
  name: string,
  arb: fc.Arbitrary<T>,
  predicate: (x: T) => boolean | void | Promise<boolean | void>,
  ctx: Pick<TargetContext, 'runs' | 'seed' | 'lastInput' | 'target'>,
  opts: { batch?: number; render?: (x: T) => string; isAsync?: boolean; /** false: report the failing input as generated (slow I/O targets). */ shrink?: boolean; /** Inputs one property run stands for (a run that sends several). */ inputsPerRun?: number } = {},
): Promise<PropertyResult> {
  const start = Date.now();
  const batch = opts.batch ?? 20_000;
  const render = opts.render ?? show;
  const failures = new Map<string, Failure>();
  const known: PropertyResult['known'] = {};
  let inputs = 0;
  let seed = ctx.seed;
  // A known bug does not stop the batch (it would end every batch early): count it, keep one example.
  const onError = (x: T, err: unknown): true => {
    const bug = knownBugFor(ctx.target, signatureOf(err));
    if (!bug) throw err;
    const k = (known[bug.id] ??= { hits: 0, error: err instanceof Error ? `${err.constructor.name}: ${err.message}`.slice(0, 500) : String(err), example: render(x).slice(0, 2000) });
    k.hits++;
    return true;
  };
  const wrapped = (x: T): boolean | void | Promise<boolean | void> => {
    ctx.lastInput.set(`${name}: ${render(x)}`);
    let r: boolean | void | Promise<boolean | void>;
    try {
      r = predicate(x);
    } catch (err) {
      return onError(x, err);
    }
    return r instanceof Promise ? r.catch((err: unknown) => onError(x, err)) : r;
  };
  const perRun = opts.inputsPerRun ?? 1;
  const target = ctx.runs * perRun;
  while (inputs < target) {
    const numRuns = Math.min(batch, Math.ceil((target - inputs) / perRun));
    const details = opts.isAsync
      ? await fc.check(fc.asyncProperty(arb, async (x) => (await wrapped(x)) !== false), { numRuns, seed, endOnFailure: opts.shrink === false, maxSkipsPerRun: 1000 })
      : fc.check(fc.property(arb, (x) => wrapped(x) !== false), { numRuns, seed, endOnFailure: opts.shrink === false, maxSkipsPerRun: 1000 });
    // A failed batch ends at its failure; count what it ran, then go on with a new seed.
    inputs += (details.failed ? details.numRuns : numRuns) * (opts.inputsPerRun ?? 1);
    if (details.failed) {
      const err = details.errorInstance;
      const sig = err === undefined ? 'property returned false' : signatureOf(err);
      const prev = failures.get(sig);
      failures.set(sig, {
        signature: sig,
        error: err instanceof Error ? `${err.constructor.name}: ${err.message}`.slice(0, 2000) : err === undefined ? 'property returned false' : String(err),
        ...(err instanceof Error && err.stack ? { stack: err.stack.split('\n').slice(0, 8).join('\n') } : {}),
        counterexample: details.counterexample ? render(details.counterexample[0] as T) : '(none)',
        seed,
        hits: (prev?.hits ?? 0) + 1,
      });
      // Stop hammering a target that fails on nearly every input.
      if (failures.size >= 20 || (prev?.hits ?? 0) >= 50) break;
    }
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_647;
  }
  return { name, inputs, failures: [...failures.values()], known, ms: Date.now() - start };
}

/** Splits `total` runs among `n` properties (the first ones get the remainder). */
export function share(total: number, n: number, i: number): number {
  return Math.floor(total / n) + (i < total % n ? 1 : 0);
}
