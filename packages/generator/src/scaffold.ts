// SPDX-License-Identifier: Apache-2.0
// scaffold(): no prompts, no process.exit. Renders the whole project in memory, checks it,
// then writes it so that a failure leaves nothing half-written.
import { existsSync, lstatSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { CreateMapperError } from './errors.js';
import { camelCase, pascalCase, validatePackageName, validateProtocol } from './names.js';
import { COMPILE_OPTIONS, loadPrecompiled, type PrecompiledTemplates } from './precompile.js';
import { listTemplateFiles, outputPath, ownVersion, STREAM_OVERLAY, TEMPLATES, templatesRoot } from './templates.js';

const require = createRequire(import.meta.url);
type Hbs = typeof import('handlebars');
type Render = (context: object) => string;

/** Options of {@link scaffold} and {@link renderProject}. */
export interface ScaffoldOptions {
  /** Directory to create (or an empty existing one). */
  readonly targetDir: string;
  /** Protocol name (`common.protocol`, `spec.protocol.protocolName`). */
  readonly protocol: string;
  /** npm package name. @default the target directory's name */
  readonly name?: string;
  /** Template name from {@link TEMPLATES}. @default 'default' */
  readonly template?: string;
  /** Add camera stream capture (saveFrame/saveVideo with ffmpeg). @default false */
  readonly stream?: boolean;
  /** Write into a non-empty directory, overwriting files the template also has. @default false */
  readonly force?: boolean;
  /** Framework version range written into package.json. @default `^<create-mapper version>` */
  readonly frameworkRange?: string;
  /**
   * Precompiled templates to render with (tests). @default the packed set when it matches
   * the templates on disk, else the templates are compiled
   */
  readonly precompiled?: PrecompiledTemplates | false;
}

/** A rendered project: output path → file text. */
export interface RenderedProject {
  readonly name: string;
  readonly protocol: string;
  readonly template: string;
  readonly stream: boolean;
  readonly files: ReadonlyMap<string, string>;
}

export interface ScaffoldResult extends RenderedProject {
  /** Absolute path of the project. */
  readonly dir: string;
}

interface TemplateSource {
  readonly files: ReadonlyMap<string, string>;
}

const sourceCache = new Map<string, TemplateSource>();

function loadTemplateDir(dir: string): TemplateSource {
  const cached = sourceCache.get(dir);
  if (cached) return cached;
  const files = new Map<string, string>();
  for (const f of listTemplateFiles(dir)) files.set(f, readFileSync(join(dir, f), 'utf8'));
  const src = { files };
  sourceCache.set(dir, src);
  return src;
}

/** Checks options and resolves defaults; throws CreateMapperError for bad input. */
export function resolveOptions(opts: ScaffoldOptions): { name: string; protocol: string; template: string; stream: boolean; dir: string } {
  const protocol = validateProtocol(opts.protocol);
  const template = opts.template ?? 'default';
  if (!TEMPLATES.some((t) => t.name === template)) {
    throw new CreateMapperError(`unknown template "${template}"`, { hint: `available templates: ${TEMPLATES.map((t) => t.name).join(', ')}` });
  }
  if (opts.targetDir.trim() === '') throw new CreateMapperError('target directory is empty', { hint: 'pass a directory, e.g. create-mapper my-mapper --protocol acme' });
  const dir = resolve(opts.targetDir);
  const name = validatePackageName(opts.name ?? basename(dir));
  return { name, protocol, template, stream: opts.stream ?? false, dir };
}

/**
 * Renders a project in memory (reads the templates, writes nothing). Every file goes through
 * handlebars in strict mode (a missing variable is an error); the output is then checked:
 * no `{{` left, JSON parses. (That every YAML file parses is checked by the tests; parsing it
 * here would double the CLI's start-up time.)
 */
export function renderProject(opts: ScaffoldOptions): RenderedProject {
  const { name, protocol, template, stream } = resolveOptions(opts);
  const root = templatesRoot();
  const base = join(root, template);
  if (!existsSync(base)) throw new CreateMapperError(`template folder ${base} is missing (broken installation of create-mapper)`);
  const sources = new Map(loadTemplateDir(base).files);
  if (stream) for (const [f, text] of loadTemplateDir(join(root, STREAM_OVERLAY)).files) sources.set(f, text);
  const renderers = compileAll(root, template, stream, sources, opts.precompiled);

  const version = ownVersion();
  const context = {
    name,
    protocol,
    Protocol: pascalCase(protocol),
    protocolCamel: camelCase(protocol),
    mapperName: `${protocol}-mapper`,
    frameworkRange: opts.frameworkRange ?? `^${version}`,
    generatorVersion: version,
    stream,
    template,
  };
  const files = new Map<string, string>();
  for (const [src, render] of [...renderers].sort(([a], [b]) => a.localeCompare(b))) {
    let out: string;
    try {
      out = render(context);
    } catch (err) {
      throw new CreateMapperError(`template ${template}: cannot render ${src}: ${(err as Error).message}`, { cause: err });
    }
    if (out.trim() === '') continue; // a file whose whole content is conditional
    files.set(outputPath(src), out);
  }
  checkRendered(files);
  return { name, protocol, template, stream, files };
}

/**
 * One render function per output file, with the `config` partial (config.yaml, embedded in the
 * ConfigMap) registered. Uses handlebars' runtime with the precompiled set when it matches,
 * else compiles the sources with the full handlebars.
 */
function compileAll(root: string, template: string, stream: boolean, sources: ReadonlyMap<string, string>, given: PrecompiledTemplates | false | undefined): Map<string, Render> {
  if (!sources.has('config.yaml')) throw new CreateMapperError(`template ${template} has no config.yaml`);
  const pre = given === false ? undefined : (given ?? loadPrecompiled(root));
  const out = new Map<string, Render>();
  if (pre) {
    const hb = (require('handlebars/runtime') as Hbs).create();
    const specs = { ...pre.templates[template], ...(stream ? pre.templates[STREAM_OVERLAY] : {}) };
    hb.registerPartial('config', hb.template(specs['config.yaml'] as TemplateSpecification));
    for (const f of sources.keys()) {
      const spec = specs[f];
      if (!spec) throw new CreateMapperError(`precompiled templates lack ${template}/${f} (broken installation of create-mapper)`);
      out.set(f, hb.template(spec as TemplateSpecification));
    }
    return out;
  }
  const hb = (require('handlebars') as Hbs).create();
  hb.registerPartial('config', sources.get('config.yaml')!);
  for (const [f, text] of sources) out.set(f, hb.compile(text, COMPILE_OPTIONS));
  return out;
}

type TemplateSpecification = Parameters<Hbs['template']>[0];

function checkRendered(files: ReadonlyMap<string, string>): void {
  for (const [path, text] of files) {
    if (text.includes('{{')) throw new CreateMapperError(`internal error: ${path} still contains "{{" after rendering`);
    try {
      // tsconfig files are JSONC (comments allowed); every other .json must be strict JSON.
      if (path.endsWith('.json') && !/(^|\/)tsconfig[^/]*\.json$/.test(path)) JSON.parse(text);
    } catch (err) {
      throw new CreateMapperError(`internal error: rendered ${path} does not parse: ${(err as Error).message}`, { cause: err });
    }
  }
}

function isEmptyDir(dir: string): boolean {
  return readdirSync(dir).every((e) => e === '.git');
}

/**
 * Creates a project. Renders everything first, so bad input or a broken template writes
 * nothing. A new directory is written to a temporary sibling and renamed into place; an
 * existing (empty, or `force`) directory gets its files moved in, and on failure the files
 * created so far are removed again.
 */
export async function scaffold(opts: ScaffoldOptions): Promise<ScaffoldResult> {
  const { dir } = resolveOptions(opts);
  let exists = false;
  if (existsSync(dir)) {
    if (!lstatSync(dir).isDirectory()) throw new CreateMapperError(`target ${dir} exists and is not a directory`);
    exists = true;
    if (!isEmptyDir(dir) && !opts.force) {
      throw new CreateMapperError(`target directory ${dir} is not empty`, { hint: 'choose another directory, or pass --force to write into it (files the template also has are overwritten)' });
    }
  }
  const project = renderProject(opts);

  const parent = dirname(dir);
  await mkdir(parent, { recursive: true });
  const tmp = await mkdtemp(join(parent, `.create-mapper-${basename(dir)}-`));
  try {
    for (const [path, text] of project.files) {
      const p = join(tmp, path);
      await mkdir(dirname(p), { recursive: true });
      await writeFile(p, text);
    }
    if (!exists) {
      await rename(tmp, dir);
    } else {
      const created: string[] = [];
      try {
        for (const path of project.files.keys()) {
          const dest = join(dir, path);
          await mkdir(dirname(dest), { recursive: true });
          if (!existsSync(dest)) created.push(dest);
          await rename(join(tmp, path), dest);
        }
      } catch (err) {
        await Promise.all(created.map((f) => rm(f, { force: true })));
        throw err;
      }
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return { ...project, dir };
}
