// SPDX-License-Identifier: Apache-2.0
// One fuzz target (or probe) in its own process: `child.js target <name> <runs> <seed> <lastInputFile>`
// or `child.js probe <name>`. Prints one result line `@@RESULT@@ {json}`; uncaught exceptions
// and unhandled rejections are counted (not fatal) and reported.
import { LastInput, signatureOf, type TargetResult } from './harness.js';
import { PROBES } from './probes.js';
import { targetByName } from './targets/index.js';

const uncaught: { kind: string; signature: string; error: string; stack?: string }[] = [];
process.on('uncaughtException', (err) => uncaught.push({ kind: 'uncaughtException', signature: signatureOf(err), error: String(err), ...(err.stack ? { stack: err.stack.split('\n').slice(0, 8).join('\n') } : {}) }));
process.on('unhandledRejection', (err) => uncaught.push({ kind: 'unhandledRejection', signature: signatureOf(err), error: String(err), ...(err instanceof Error && err.stack ? { stack: err.stack.split('\n').slice(0, 8).join('\n') } : {}) }));

const [mode, name, runsText, seedText, lastFile] = process.argv.slice(2);
const emit = (obj: unknown): void => {
  process.stdout.write(`\n@@RESULT@@ ${JSON.stringify(obj, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}\n`);
};

if (mode === 'probe') {
  const probe = PROBES.find((p) => p.name === name);
  if (!probe) throw new Error(`unknown probe ${name}`);
  try {
    emit({ probe: name, ok: true, outcome: await probe.run(), uncaught });
  } catch (err) {
    emit({ probe: name, ok: false, outcome: (err as Error).message, uncaught });
  }
} else {
  try {
    await runTarget();
  } catch (err) {
    // The harness itself failed (e.g. a generator threw): report it rather than die silently.
    emit({ fatal: `${(err as Error).constructor?.name}: ${(err as Error).message}`, stack: (err as Error).stack?.split('\n').slice(0, 10).join('\n'), uncaught });
  }
}
process.exit(0);

async function runTarget(): Promise<void> {
  const target = targetByName(name!);
  const lastInput = new LastInput(lastFile);
  const stats: Record<string, number> = {};
  const start = Date.now();
  const properties = await target.run({ target: target.name, runs: Number(runsText), seed: Number(seedText), lastInput, stats, log: (l) => process.stderr.write(`${l}\n`) });
  lastInput.close();
  const result: TargetResult = {
    target: target.name,
    description: target.description,
    inputs: properties.reduce((a, p) => a + p.inputs, 0),
    properties,
    failures: properties.flatMap((p) => p.failures),
    ms: Date.now() - start,
    stats,
  };
  // Let late errors (a socket closing after the last input) surface before reporting.
  await new Promise((r) => setTimeout(r, 200));
  emit({ ...result, uncaught });
}
