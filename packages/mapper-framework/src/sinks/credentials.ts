// SPDX-License-Identifier: Apache-2.0
// Sink credentials, as upstream from environment variables (`PASSWORD`, `TOKEN`, `USERNAME`),
// and from files (mounted Kubernetes Secrets). Values are never logged; only where they came
// from is.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CredentialName } from './types.js';

/** Where a credential was found (for logs); never the value. */
export type CredentialSource = `file:${string}` | `env:${string}` | 'none';

/**
 * Looks up a credential, first match wins:
 * 1. `<credentials_dir>/<name lower-case>` (e.g. `/etc/mapper/secrets/password`),
 * 2. the file named by env `<NAME>_FILE` (e.g. `PASSWORD_FILE`),
 * 3. env `<NAME>` (upstream).
 * One trailing newline of a file is removed (Secrets written by `echo` have one).
 */
export function lookupCredential(name: CredentialName, dir: string, env: NodeJS.ProcessEnv = process.env): { value: string | undefined; source: CredentialSource } {
  const fromFile = (path: string): string | undefined => {
    try {
      return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
    } catch {
      return undefined;
    }
  };
  if (dir) {
    const path = join(dir, name.toLowerCase());
    const v = fromFile(path);
    if (v !== undefined) return { value: v, source: `file:${path}` };
  }
  const fileVar = env[`${name}_FILE`];
  if (fileVar) {
    const v = fromFile(fileVar);
    if (v !== undefined) return { value: v, source: `file:${fileVar}` };
  }
  const v = env[name];
  if (v !== undefined && v !== '') return { value: v, source: `env:${name}` };
  return { value: undefined, source: 'none' };
}
