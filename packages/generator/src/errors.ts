// SPDX-License-Identifier: Apache-2.0

/**
 * A problem the user can fix (bad name, non-empty target, unknown template…). The CLI prints
 * its message (and hint) without a stack and exits with `exitCode`.
 */
export class CreateMapperError extends Error {
  override name = 'CreateMapperError';
  readonly exitCode: number;
  readonly hint: string | undefined;

  constructor(message: string, options: { hint?: string; exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.exitCode = options.exitCode ?? 1;
    this.hint = options.hint;
  }
}
