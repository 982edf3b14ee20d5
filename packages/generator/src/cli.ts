// SPDX-License-Identifier: Apache-2.0
// The argv layer: yargs for flags, @clack/prompts for questions when run in a terminal.
// Every question has a flag, so the CLI runs unattended (CI, scripts) with --yes.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { basename, relative, resolve } from 'node:path';
import yargs from 'yargs';
import { CreateMapperError } from './errors.js';
import { validatePackageName, validateProtocol } from './names.js';
import { resolveOptions, scaffold } from './scaffold.js';
import { ownVersion, TEMPLATES } from './templates.js';

// Loaded only when needed, so that `create-mapper <dir> --yes` starts fast.
type Prompts = typeof import('@clack/prompts');

export interface CliIo {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
  /** Whether to ask questions. @default stdin and stdout are terminals */
  readonly interactive?: boolean;
}

const defaultIo: CliIo = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

function cancelled<T>(v: T | symbol): T {
  if (typeof v === 'symbol') throw new CreateMapperError('cancelled');
  return v;
}

const validWith = (fn: (s: string) => string) => (s: string | undefined) => {
  try {
    fn(s ?? '');
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
};

interface CreateArgs {
  dir?: string | undefined;
  protocol?: string | undefined;
  name?: string | undefined;
  template?: string | undefined;
  stream?: boolean | undefined;
  force?: boolean | undefined;
  yes?: boolean | undefined;
  install?: boolean | undefined;
  interactive?: boolean | undefined;
}

async function create(args: CreateArgs, io: CliIo): Promise<void> {
  const interactive = !args.yes && (args.interactive ?? io.interactive ?? (Boolean(process.stdin.isTTY) && Boolean(process.stdout.isTTY)));
  // 1. Collect answers: flags first, then questions for what is missing (interactive only).
  let { dir, protocol, template, stream, install } = args;
  const prompts: Prompts | undefined = interactive ? await import('@clack/prompts') : undefined;
  prompts?.intro(`create-mapper ${ownVersion()}`);
  if (dir === undefined) {
    if (!prompts) throw new CreateMapperError('missing target directory', { hint: 'usage: create-mapper <dir> --protocol <name> [--stream] [--yes]' });
    // Checked as typed: the package name it implies, and that it is empty (unless --force).
    const checkDir = (d: string): string => {
      const abs = resolve(d === '' ? 'my-mapper' : d);
      if (args.name === undefined) validatePackageName(basename(abs));
      if (!args.force && existsSync(abs) && readdirSync(abs).some((e) => e !== '.git')) throw new CreateMapperError(`${abs} is not empty (choose another directory, or pass --force)`);
      return d;
    };
    dir = cancelled<string>(await prompts.text({ message: 'Project directory', placeholder: 'my-mapper', defaultValue: 'my-mapper', validate: validWith(checkDir) }));
  }
  if (protocol === undefined) {
    if (!prompts) throw new CreateMapperError('missing --protocol', { hint: 'e.g. create-mapper my-mapper --protocol modbus' });
    protocol = cancelled<string>(await prompts.text({ message: 'Protocol name (lower case, e.g. modbus)', validate: validWith(validateProtocol) }));
  }
  if (template === undefined && prompts && TEMPLATES.length > 1) {
    template = cancelled<string>(await prompts.select({ message: 'Template', options: TEMPLATES.map((t) => ({ value: t.name, label: t.name, hint: t.description })) }));
  }
  if (stream === undefined && prompts) stream = cancelled<boolean>(await prompts.confirm({ message: 'Add camera stream capture (STREAM properties saveFrame/saveVideo, ffmpeg)?', initialValue: false }));
  if (install === undefined && prompts) install = cancelled<boolean>(await prompts.confirm({ message: 'Run npm install now?', initialValue: true }));

  // 2. Validate everything before writing anything.
  const opts = { targetDir: dir, protocol, name: args.name, template, stream: stream ?? false, force: args.force ?? false };
  resolveOptions(opts);

  // 3. Write the project (all or nothing).
  const result = await scaffold(opts);
  const shown = relative(process.cwd(), result.dir) || '.';
  const next = [`cd ${shown}`, ...(install ? [] : ['npm install']), 'npm test', 'npm run build'];
  // 4. Install dependencies when asked (CREATE_MAPPER_SKIP_INSTALL=1 is the test seam).
  if (install && process.env['CREATE_MAPPER_SKIP_INSTALL'] !== '1') {
    const r = spawnSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: result.dir, stdio: 'inherit' });
    if (r.status !== 0) throw new CreateMapperError(`the project was created in ${shown}, but npm install failed (exit ${r.status ?? r.signal})`);
  }
  const summary = `Created ${result.name} (${result.protocol} mapper${result.stream ? ', with stream capture' : ''}) in ${shown}: ${result.files.size} files.\nNext:\n${next.map((l) => `  ${l}`).join('\n')}\nFill in src/driver.ts (look for TODO).\n`;
  if (prompts) prompts.outro(summary);
  else io.out(summary);
}

/**
 * Runs the CLI with `argv` (without node and script); resolves with the exit code. Never
 * calls process.exit, so tests can call it in-process.
 */
export async function main(argv: readonly string[], io: CliIo = defaultIo): Promise<number> {
  let code = 0;
  const parser = yargs([...argv])
    .scriptName('create-mapper')
    .usage('$0 <dir> --protocol <name> [--stream] [--yes]\n\nCreates a KubeEdge mapper project that depends on @mapperkit/framework.')
    .command(
      '$0 [dir]',
      'create a mapper project',
      (y) =>
        y
          .positional('dir', { type: 'string', describe: 'directory to create (its name is the package name unless --name is given)' })
          .option('protocol', { alias: 'p', type: 'string', describe: 'protocol name (lower case; common.protocol and spec.protocol.protocolName)' })
          .option('name', { alias: 'n', type: 'string', describe: 'npm package name (default: the directory name)' })
          .option('template', { alias: 't', type: 'string', describe: `template: ${TEMPLATES.map((t) => t.name).join(', ')}`, default: undefined })
          .option('stream', { type: 'boolean', describe: 'add camera stream capture (saveFrame/saveVideo with ffmpeg)' })
          .option('force', { type: 'boolean', describe: 'write into a non-empty directory (overwrites files the template has)' })
          .option('install', { type: 'boolean', describe: 'run npm install afterwards' })
          .option('yes', { alias: 'y', type: 'boolean', describe: 'no questions: use flags and defaults' })
          .option('interactive', { type: 'boolean', describe: 'ask for missing answers (default: when run in a terminal)' }),
      async (a) => create(a, io),
    )
    .command(
      'upgrade [dir]',
      'move a project to a newer @mapperkit/framework and apply config migrations',
      (y) =>
        y
          .positional('dir', { type: 'string', default: '.', describe: 'project directory' })
          .option('to', { type: 'string', describe: `framework version (default: ${ownVersion()}, this create-mapper's release)` })
          .option('install', { type: 'boolean', default: true, describe: 'run npm install afterwards (--no-install to skip)' })
          .option('dry-run', { type: 'boolean', default: false, describe: 'show what would change' }),
      async (a) => {
        const { upgrade } = await import('./upgrade.js');
        const r = await upgrade({ dir: a.dir, install: a.install, dryRun: a['dry-run'], ...(a.to === undefined ? {} : { to: a.to }) });
        io.out(
          `${a['dry-run'] ? 'Would upgrade' : 'Upgraded'} @mapperkit/framework ${r.from} → ${r.to} (range ${r.rangeBefore} → ${r.rangeAfter}).\n` +
            (r.applied.length > 0 ? `Config migrations:\n${r.applied.map((d) => `  - ${d}`).join('\n')}\n` : 'No config migrations needed.\n') +
            (r.changedFiles.length > 0 ? `Files ${a['dry-run'] ? 'to change' : 'changed'}: ${r.changedFiles.join(', ')}\n` : ''),
        );
      },
    )
    .command(
      'doctor [dir]',
      "check config.yaml and Device/DeviceModel YAML against the driver's schemas and the CRD rules, and edgecore's socket",
      (y) =>
        y
          .positional('dir', { type: 'string', default: '.', describe: 'project directory (built: npm run build)' })
          .option('config', { type: 'string', default: 'config.yaml', describe: 'mapper config file' })
          .option('devices', { type: 'string', array: true, default: ['devices'], describe: 'Device/DeviceModel YAML files or folders' })
          .option('driver', { type: 'string', default: 'dist/driver.js', describe: 'compiled driver module (default export)' })
          .option('skip-socket', { type: 'boolean', default: false, describe: "don't check edgecore's socket" })
          .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON' }),
      async (a) => {
        const { doctor, formatReport } = await import('./doctor.js');
        const r = await doctor({ dir: a.dir, config: a.config, devices: a.devices, driver: a.driver, checkSocket: !a['skip-socket'] });
        io.out(a.json ? `${JSON.stringify(r, null, 2)}\n` : formatReport(r));
        if (r.errors > 0) code = 1;
      },
    )
    .command(
      'schema [dir]',
      "write JSON Schemas of the driver's protocol and visitor configs (and of its Device/DeviceModel YAML) for editors",
      (y) =>
        y
          .positional('dir', { type: 'string', default: '.', describe: 'project directory (built: npm run build)' })
          .option('driver', { type: 'string', default: 'dist/driver.js', describe: 'compiled driver module (default export)' })
          .option('out', { type: 'string', default: 'schema', describe: 'output folder' }),
      async (a) => {
        const { writeSchemas } = await import('./schema.js');
        const files = await writeSchemas({ dir: a.dir, driver: a.driver, out: a.out });
        io.out(`Wrote ${files.join(', ')}\n`);
      },
    )
    .strict()
    .help()
    .version(ownVersion())
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new CreateMapperError(msg, { hint: 'see create-mapper --help' });
    })
    .showHelpOnFail(false);
  try {
    await parser.parseAsync();
  } catch (err) {
    if (err instanceof CreateMapperError) {
      io.err(`create-mapper: ${err.message}\n${err.hint ? `  ${err.hint}\n` : ''}`);
      return err.exitCode;
    }
    io.err(`create-mapper: internal error (please report it): ${(err as Error)?.stack ?? String(err)}\n`);
    return 70;
  }
  return code;
}

