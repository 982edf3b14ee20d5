// SPDX-License-Identifier: Apache-2.0
// Defaults shared by the server and the CLI (kept free of heavy imports: client commands load only this).
import { homedir } from 'node:os';
import { join } from 'node:path';

export const DEFAULT_SOCKET = '/etc/kubeedge/dmi.sock';
export const DEFAULT_HTTP = '127.0.0.1:7780';

/** Default store path: `$XDG_STATE_HOME/edgecore-dmi/edgecore-dmi.db` (or ~/.local/state/…). */
export function defaultDbPath(): string {
  const base = process.env['XDG_STATE_HOME'] || join(homedir(), '.local', 'state');
  return join(base, 'edgecore-dmi', 'edgecore-dmi.db');
}
