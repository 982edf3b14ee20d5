// SPDX-License-Identifier: Apache-2.0
import { pino, type Logger, type DestinationStream } from 'pino';

/**
 * klog-style verbosity (`--v`) → pino level. Upstream mappers run with `--v 1` by default
 * and `--v 4` in their Deployment: 0 → warn, 1 → info, 2-3 → debug, 4+ → trace.
 */
export function levelForVerbosity(v: number): pino.Level {
  if (v <= 0) return 'warn';
  if (v === 1) return 'info';
  if (v <= 3) return 'debug';
  return 'trace';
}

/** JSON logger (pino) on stdout, or on `destination`. */
export function createLogger(options: { verbosity?: number; level?: pino.LevelWithSilent; name?: string; destination?: DestinationStream } = {}): Logger {
  const level = options.level ?? levelForVerbosity(options.verbosity ?? 1);
  return pino(
    {
      level,
      base: options.name ? { mapper: options.name } : {},
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Credentials must never reach logs, whatever a driver puts in an object it logs.
      redact: { paths: ['password', '*.password', 'token', '*.token', 'config.password', 'config.token'], censor: '[redacted]' },
    },
    options.destination,
  );
}
