// SPDX-License-Identifier: Apache-2.0
// The template catalogue. Validation of --template, the prompt and --help all read this table.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One project template: a folder under templates/. */
export interface TemplateInfo {
  readonly name: string;
  readonly description: string;
}

export const TEMPLATES: readonly TemplateInfo[] = [
  {
    name: 'default',
    description: 'a polling driver for a networked device, with a simulated device that the conformance test runs against',
  },
];

/** Overlay folder added by `--stream` (camera stream capture with ffmpeg). */
export const STREAM_OVERLAY = 'stream';

/** Files npm would strip or treat specially are stored with a `_` prefix and renamed on copy. */
export const renameFiles: Readonly<Record<string, string>> = {
  _gitignore: '.gitignore',
  _dockerignore: '.dockerignore',
};

/** The package root (the folder holding package.json), from dist/ or src/. */
export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Where templates are read from: the repository's top-level `templates/` when running inside
 * the Mapperkit monorepo, else the copy packed into the package (`<package>/templates`).
 */
export function templatesRoot(): string {
  const repoRoot = join(packageRoot, '..', '..');
  const repoTemplates = join(repoRoot, 'templates');
  if (existsSync(join(repoTemplates, 'default')) && isMonorepo(repoRoot)) return repoTemplates;
  return join(packageRoot, 'templates');
}

function isMonorepo(dir: string): boolean {
  try {
    return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name === 'mapperkit';
  } catch {
    return false;
  }
}

/** Every file of a template folder, relative, with `/` separators, sorted. */
export function listTemplateFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(dir, p).split(sep).join('/'));
    }
  };
  walk(dir);
  return out.sort();
}

/** The output path of a template file (`_gitignore` → `.gitignore`, in any folder). */
export function outputPath(templatePath: string): string {
  const parts = templatePath.split('/');
  const base = parts.pop()!;
  return [...parts, renameFiles[base] ?? base].join('/');
}

/** The version of this package (also the framework version it scaffolds against: they are released together). */
export function ownVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
}
