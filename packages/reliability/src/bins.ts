// SPDX-License-Identifier: Apache-2.0
// Where the packages' CLIs are: the npm bin links of the workspace root, run with this node.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is packages/reliability/{src,dist}/bins.*). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export type BinName = 'edgecore-dmi' | 'mapper-modbus' | 'modbus-sim' | 'mapper-opcua' | 'mapper-ble';

/** Absolute path of a package bin (`node_modules/.bin/<name>`); throws when it is missing. */
export function binPath(name: BinName): string {
  const p = join(REPO_ROOT, 'node_modules', '.bin', name);
  if (!existsSync(p)) throw new Error(`${p} is missing: run npm install at the repository root`);
  return p;
}

/** The command line that runs a bin with the current node (as `[cmd, args]`). */
export function nodeBin(name: BinName, args: readonly string[]): { cmd: string; args: string[] } {
  return { cmd: process.execPath, args: [binPath(name), ...args] };
}
