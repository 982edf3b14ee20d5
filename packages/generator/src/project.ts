// SPDX-License-Identifier: Apache-2.0
// Loading a mapper project's own framework copy and compiled driver, so that doctor and
// schema check with exactly the rules and schemas the mapper runs with.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { DriverDefinition } from '@mapperkit/framework';
import { CreateMapperError } from './errors.js';

export type Framework = typeof import('@mapperkit/framework');
export type FrameworkDmi = typeof import('@mapperkit/framework/dmi');

export interface LoadedProject {
  readonly dir: string;
  readonly fw: Framework;
  readonly dmi: FrameworkDmi;
  readonly driver: DriverDefinition<unknown, unknown>;
  readonly driverFile: string;
}

/** Imports `@mapperkit/framework` (and `/dmi`) as resolved from the project directory. */
export async function loadFramework(dir: string): Promise<{ fw: Framework; dmi: FrameworkDmi }> {
  const req = createRequire(join(resolve(dir), 'package.json'));
  try {
    const fw = (await import(pathToFileURL(req.resolve('@mapperkit/framework')).href)) as Framework;
    const dmi = (await import(pathToFileURL(req.resolve('@mapperkit/framework/dmi')).href)) as FrameworkDmi;
    return { fw, dmi };
  } catch (err) {
    throw new CreateMapperError(`cannot load @mapperkit/framework from ${dir}: ${(err as Error).message}`, { hint: 'run npm install in the project', cause: err });
  }
}

/** Loads the project's framework and its compiled driver (default export of `driverPath`). */
export async function loadProject(dir: string, driverPath = 'dist/driver.js'): Promise<LoadedProject> {
  const root = resolve(dir);
  const { fw, dmi } = await loadFramework(root);
  const driverFile = resolve(root, driverPath);
  if (!existsSync(driverFile)) throw new CreateMapperError(`driver ${driverFile} not found`, { hint: 'build the project first (npm run build), or pass --driver <file>' });
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(driverFile).href)) as { default?: unknown };
  } catch (err) {
    throw new CreateMapperError(`cannot load driver ${driverFile}: ${(err as Error).message}`, { cause: err });
  }
  const d = mod.default as Partial<DriverDefinition<unknown, unknown>> | undefined;
  if (!d || typeof d.protocol !== 'string' || typeof d.connect !== 'function' || !d.protocolConfig || !d.visitorConfig) {
    throw new CreateMapperError(`${driverFile} does not export a driver as default (defineDriver({ protocol, protocolConfig, visitorConfig, connect }))`);
  }
  return { dir: root, fw, dmi, driver: d as DriverDefinition<unknown, unknown>, driverFile };
}
