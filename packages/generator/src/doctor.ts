// SPDX-License-Identifier: Apache-2.0
// `create-mapper doctor`: runs the framework's doctor (`mapper-<protocol> doctor`) for a mapper
// project, with the project's own framework copy and compiled driver, so it checks with exactly
// the rules and schemas the mapper runs with.
import type { DoctorProblem, DoctorReport } from '@mapperkit/framework';
import { CreateMapperError } from './errors.js';
import { loadProject } from './project.js';

export type Problem = DoctorProblem;

export interface DoctorOptions {
  readonly dir: string;
  /** @default 'config.yaml' */
  readonly config?: string;
  /** YAML files or folders with Device/DeviceModel objects. @default ['devices'] */
  readonly devices?: readonly string[];
  /** Compiled driver, relative to `dir`. @default 'dist/driver.js' */
  readonly driver?: string;
  /** Check that edgecore's socket accepts a connection. @default true */
  readonly checkSocket?: boolean;
}

/** The framework's report plus its human-readable form. */
export type DoctorResult = DoctorReport & { readonly text: string };

/** Runs every check; never throws for problems in the checked files (they are returned). */
export async function doctor(opts: DoctorOptions): Promise<DoctorResult> {
  const p = await loadProject(opts.dir, opts.driver);
  if (typeof p.fw.runDoctor !== 'function') {
    throw new CreateMapperError('this project\'s @mapperkit/framework has no doctor', { hint: 'upgrade it: npx create-mapper upgrade' });
  }
  const report = await p.fw.runDoctor({
    driver: p.driver,
    baseDir: p.dir,
    configFile: opts.config ?? 'config.yaml',
    devices: opts.devices ?? ['devices'],
    checkSocket: opts.checkSocket ?? true,
  });
  return { ...report, text: p.fw.formatDoctorReport(report) };
}

/** Human-readable report: one block per problem, then a summary line. */
export function formatReport(r: DoctorResult): string {
  return r.text;
}
