// SPDX-License-Identifier: Apache-2.0
// Crash probes: the inputs that crashed a process during fuzzing, replayed deterministically
// in a child process each time. A probe passes when the process survives and answers sanely.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseMapperConfig } from '@mapperkit/framework';
import { parseCrdYaml } from '@mapperkit/framework/dmi';
import { nodeBin } from '../bins.js';
import { httpRequest } from '../http-client.js';
import { freePort, ManagedProcess, until } from '../procs.js';

export interface Probe {
  readonly name: string;
  readonly description: string;
  /** Resolves with a short outcome; throws (or crashes the process) when the bug is present. */
  run(): Promise<string>;
}

/** 1,000 nested flow sequences: 2 KB of YAML. */
export const DEEP_YAML = `${'['.repeat(1000)}${']'.repeat(1000)}`;
/**
 * The same nesting after a double quote inside a plain scalar: YAML reads `a"b` as plain text,
 * but a depth scan that takes the quote for the start of a quoted scalar does not see the
 * nesting, so the text reaches the yaml library's recursive parser.
 */
export const HIDDEN_DEEP_YAML = `k: a"b\nm: ${DEEP_YAML}\n`;

export const PROBES: readonly Probe[] = [
  {
    name: 'crd-yaml-deep-nesting-twice',
    description: 'parseCrdYaml on 1,000 nested flow sequences, twice in one process (the yaml library overflows the stack; the second time V8 aborts the process: "FATAL ERROR: RegExpCompiler Allocation failed")',
    async run() {
      const a = parseCrdYaml(DEEP_YAML, 'deep.yaml');
      const b = parseCrdYaml(DEEP_YAML, 'deep.yaml');
      if (a.problems.length === 0 || b.problems.length === 0) throw new Error('deep YAML gave no problem');
      return `refused twice: ${b.problems[0]!.message.slice(0, 120)}`;
    },
  },
  {
    name: 'crd-yaml-hidden-deep-nesting-twice',
    description: 'parseCrdYaml, twice in one process, on 1,000 nested flow sequences that follow a double quote inside a plain scalar (past the depth scan, into the yaml parser)',
    async run() {
      const a = parseCrdYaml(HIDDEN_DEEP_YAML, 'deep.yaml');
      const b = parseCrdYaml(HIDDEN_DEEP_YAML, 'deep.yaml');
      if (a.problems.length === 0 || b.problems.length === 0) throw new Error('hidden deep YAML gave no problem');
      return `refused twice: ${b.problems[0]!.message.slice(0, 120)}`;
    },
  },
  {
    name: 'config-yaml-deep-nesting-twice',
    description: 'parseMapperConfig on 1,000 nested flow sequences, twice in one process (same V8 abort as above), then twice more hidden after a quote',
    async run() {
      const out: string[] = [];
      for (const text of [DEEP_YAML, DEEP_YAML, HIDDEN_DEEP_YAML, HIDDEN_DEEP_YAML]) {
        try {
          parseMapperConfig(text);
          throw new Error('deep config.yaml accepted');
        } catch (err) {
          out.push((err as Error).message.slice(0, 80));
        }
      }
      return `refused ${out.length} times: ${out[3]}`;
    },
  },
  {
    name: 'edgecore-dmi-apply-deep-yaml',
    description: 'edgecore-dmi serve (the bin): POST /api/v1/apply with 2 KB of nested YAML, twice, then twice hidden after a quote; the server must answer 4xx and keep serving',
    async run() {
      const dir = mkdtempSync(join(tmpdir(), 'mk-probe-'));
      const port = await freePort();
      const { cmd, args } = nodeBin('edgecore-dmi', ['serve', '--socket', join(dir, 'dmi.sock'), '--http', `127.0.0.1:${port}`, '--db', ':memory:', '--log-level', 'warn']);
      const p = new ManagedProcess({ name: 'edgecore-dmi', cmd, args, logFile: join(dir, 'log') });
      p.start();
      try {
        await until(async () => (await httpRequest(`http://127.0.0.1:${port}/healthz`).catch(() => ({ status: 0 }))).status === 200, 30_000, 'edgecore-dmi up');
        const statuses: (number | string)[] = [];
        for (const body of [DEEP_YAML, DEEP_YAML, HIDDEN_DEEP_YAML, HIDDEN_DEEP_YAML]) statuses.push(await httpRequest(`http://127.0.0.1:${port}/api/v1/apply`, { method: 'POST', body, timeoutMs: 10_000 }).then((r) => r.status, (e: Error) => e.message));
        const health = await httpRequest(`http://127.0.0.1:${port}/healthz`, { timeoutMs: 5000 }).then((r) => r.status, (e: Error) => e.message);
        if (health !== 200 || !p.running) throw new Error(`edgecore-dmi died: apply answered ${statuses.join(', ')}, then /healthz ${health}; output: ${p.output().split('\n').filter((l) => /FATAL|Error/.test(l)).slice(0, 2).join(' | ')}`);
        if (!statuses.every((st) => typeof st === 'number' && st >= 400 && st < 500)) throw new Error(`apply answered ${statuses.join(', ')} (expected 4xx for each)`);
        return `apply answered ${statuses.join(', ')}, still healthy`;
      } finally {
        await p.close();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  },
];
