// SPDX-License-Identifier: Apache-2.0
import { spawn } from 'node:child_process';

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * A child environment without the npm_* variables of an enclosing `npm test`/`npm run`, and
 * without NODE_TEST_CONTEXT (set by node --test: a nested test runner would otherwise report
 * to this one instead of printing its results).
 */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && !['NODE_ENV', 'NODE_OPTIONS', 'NODE_TEST_CONTEXT'].includes(k)) env[k] = v;
  return { ...env, ...extra };
}

/** Runs a command to completion, collecting output; rejects on a non-zero exit unless `allowFail`. */
export function run(cmd: string, args: readonly string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; allowFail?: boolean; timeoutMs?: number }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 240_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const r = { code, stdout, stderr };
      if (code !== 0 && !opts.allowFail) reject(new Error(`${cmd} ${args.join(' ')} (in ${opts.cwd}) exited ${code}\n--- stdout\n${stdout.slice(-4000)}\n--- stderr\n${stderr.slice(-4000)}`));
      else resolve(r);
    });
  });
}
