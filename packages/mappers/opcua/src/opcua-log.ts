// SPDX-License-Identifier: Apache-2.0
// node-opcua writes its warnings and errors with console.log (coloured, multi-line). A mapper
// logs JSON lines, so those messages are routed into the mapper's pino logger instead, with
// any known password masked. The routing is process-wide (node-opcua's loggers are global).
import { format } from 'node:util';
import type { Logger } from '@mapperkit/framework';
import { setErrorLogger, setWarningLogger } from 'node-opcua';

const secrets = new Set<string>();
let target: Logger | undefined;
let installed = false;

/** Whether node-opcua's messages already go to a logger. */
export function nodeOpcuaLogsRouted(): boolean {
  return target !== undefined;
}

/** Passwords in use; masked in anything node-opcua logs. */
export function registerSecret(secret: string): void {
  if (secret.length >= 3) secrets.add(secret);
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;

function render(args: unknown[]): string {
  let text = format(...args).replace(ANSI, '').trim();
  for (const s of secrets) text = text.split(s).join('***');
  return text;
}

/**
 * Routes node-opcua's warnings/errors to `log` (from now on). The CVE-2023-46809 notice
 * node-opcua prints at load is dropped: the driver checks PKCS#1 v1.5 itself when
 * Basic128Rsa15 is configured, and no other supported policy needs it.
 */
export function routeNodeOpcuaLogs(log: Logger): void {
  target = log;
  install();
}

function install(): void {
  if (installed) return;
  installed = true;
  const sink =
    (level: 'warn' | 'error') =>
    (_context?: unknown, ...args: unknown[]): void => {
      const text = render(args);
      if (text === '' || /NODE-OPCUA-W27|security-revert=CVE-2023-46809/.test(text)) return;
      const l = target;
      if (!l) {
        process.stderr.write(`node-opcua: ${text}\n`);
        return;
      }
      // node-opcua's own "errors" are mostly recoverable protocol noise for a mapper; keep them visible at warn.
      if (level === 'error') l.warn({ source: 'node-opcua' }, text);
      else l.debug({ source: 'node-opcua' }, text);
    };
  setWarningLogger(sink('warn'));
  setErrorLogger(sink('error'));
}

// Installed at load, before node-opcua's asynchronous start-up self-test prints its notice.
install();
