// SPDX-License-Identifier: Apache-2.0
// edgecore-dmi CLI: `serve`, and kubectl-like client commands against a running server.
import { readFileSync } from 'node:fs';
import yargs from 'yargs';
import { ApiClient, ApiError } from './client.js';
import type { Problem } from './inventory.js';
import { DEFAULT_HTTP, DEFAULT_SOCKET, defaultDbPath } from './defaults.js';
import type { DeviceView, EdgecoreDmi } from './server.js';

const DEFAULT_SERVER = process.env['EDGECORE_DMI_SERVER'] ?? `http://${DEFAULT_HTTP}`;

function out(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function table(rows: readonly (readonly string[])[]): void {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  for (const r of rows) out(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('   ').trimEnd());
}

function age(at: number | undefined): string {
  if (!at) return '-';
  const s = Math.max(0, Math.round((Date.now() - at) / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
}

function printProblems(problems: readonly Problem[]): void {
  for (const p of problems) process.stderr.write(`${p.severity}: ${p.message}\n`);
}

function printDevice(d: DeviceView): void {
  out(`Device:     ${d.id}`);
  out(`Protocol:   ${d.protocol}    Model: ${d.model}    Source: ${d.source}`);
  out(`Mapper:     ${d.mapper ?? '-'}    Delivery: ${d.delivery.status}${d.delivery.detail ? ` (${d.delivery.detail})` : ''}`);
  out(`State:      ${d.state ?? '-'} (${age(d.stateAt)} ago)${d.lastOnline ? `    last online ${age(d.lastOnline)} ago` : ''}`);
  out('Twins:');
  table([
    ['  PROPERTY', 'TYPE', 'ACCESS', 'REPORTED', 'AGE', 'DESIRED', 'OBSERVED-DESIRED'],
    ...d.twins.map((t) => [
      `  ${t.property}`,
      t.type || '-',
      t.accessMode || '-',
      t.reported ?? '-',
      age(t.reportedAt),
      t.desired ? `${t.desired}${t.desiredOverride ? ' (set)' : ''}` : '-',
      t.observedDesired || '-',
    ]),
  ]);
  if (d.errors.length > 0) {
    out('Errors:');
    for (const e of d.errors) out(`  ${e}`);
  }
}

async function serve(argv: {
  socket: string;
  devices: string[];
  http: string;
  db: string;
  limiter: boolean;
  reflection: boolean;
  'limiter-rate': number;
  'limiter-burst': number;
  history: number;
  'log-level': string;
  poll: number;
}): Promise<void> {
  let server: EdgecoreDmi;
  try {
    // Loaded only here: client commands stay light (no gRPC, SQLite or framework).
    const { startEdgecoreDmi } = await import('./server.js');
    server = await startEdgecoreDmi({
      socketPath: argv.socket,
      devices: argv.devices,
      http: argv.http === 'off' || argv.http === '' ? false : argv.http,
      dbPath: argv.db,
      limiter: argv.limiter ? { rate: argv['limiter-rate'], burst: argv['limiter-burst'] } : false,
      reflection: argv.reflection,
      historyLimit: argv.history,
      pollMs: argv.poll,
      logLevel: argv['log-level'] as 'info',
    });
  } catch (err) {
    process.stderr.write(`edgecore-dmi: ${(err as Error).message}\n`);
    process.exit(1);
  }
  process.stderr.write(`edgecore-dmi: DMI socket ${server.socketPath}${server.url ? `, dashboard ${server.url}/` : ''}\n`);
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => process.exit(1), 5000);
    force.unref();
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

async function main(): Promise<void> {
  await yargs(process.argv.slice(2))
    .scriptName('edgecore-dmi')
    .usage('$0 <command>\n\nThe edgecore side of KubeEdge DMI on your laptop: serve Device/DeviceModel YAML to mappers, store what they report.')
    .option('server', { type: 'string', default: DEFAULT_SERVER, describe: 'URL of a running edgecore-dmi (client commands; env EDGECORE_DMI_SERVER)', global: true })
    .option('output', { alias: 'o', choices: ['table', 'json'] as const, default: 'table' as const, describe: 'output format (client commands)', global: true })
    .command(
      'serve',
      'run the DMI server, the HTTP API and the dashboard',
      (y) =>
        y
          .option('socket', { type: 'string', default: DEFAULT_SOCKET, describe: 'DeviceManagerService unix socket (stale file removed; mode 0660)' })
          .option('devices', { type: 'string', array: true, default: [] as string[], describe: 'Device/DeviceModel YAML file or directory (repeatable; watched)' })
          .option('http', { type: 'string', default: DEFAULT_HTTP, describe: 'HTTP API and dashboard host:port ("off" to disable)' })
          .option('db', { type: 'string', default: defaultDbPath(), describe: 'SQLite store (":memory:" keeps nothing)' })
          .option('limiter', { type: 'boolean', default: true, describe: "emulate edgecore's DMI limiter (--no-limiter to disable)" })
          .option('reflection', { type: 'boolean', default: true, describe: 'gRPC server reflection on the socket, as edgecore (--no-reflection to disable)' })
          .option('limiter-rate', { type: 'number', default: 1, describe: 'limiter requests per second' })
          .option('limiter-burst', { type: 'number', default: 100, describe: 'limiter burst' })
          .option('history', { type: 'number', default: 500, describe: 'reported values kept per property' })
          .option('poll', { type: 'number', default: 2000, describe: 'safety-net rescan of --devices, ms (0 disables)' })
          .option('log-level', { type: 'string', default: 'info', choices: ['trace', 'debug', 'info', 'warn', 'error', 'silent'] }),
      (argv) => serve(argv),
    )
    .command(
      'get <what> [name]',
      'show devices | device NAME | models | mappers | problems | calls',
      (y) =>
        y
          .positional('what', { choices: ['devices', 'device', 'models', 'mappers', 'problems', 'calls'] as const, demandOption: true })
          .positional('name', { type: 'string', describe: 'device name (namespace/name or name in "default")' }),
      async (argv) => {
        const api = new ApiClient(argv.server);
        const json = argv.output === 'json';
        switch (argv.what) {
          case 'devices': {
            const ds = await api.devices();
            if (json) return out(JSON.stringify(ds, null, 2));
            table([
              ['NAME', 'PROTOCOL', 'MODEL', 'STATE', 'DELIVERY', 'MAPPER', 'TWINS', 'SOURCE'],
              ...ds.map((d) => [d.id, d.protocol || '-', d.model, d.state ?? '-', d.stale ? `${d.delivery.status} (stale)` : d.valid ? d.delivery.status : 'invalid', d.mapper ?? '-', String(d.twins.filter((t) => t.reported !== undefined).length), d.source]),
            ]);
            return;
          }
          case 'device': {
            if (!argv.name) throw new ApiError(0, 'usage: edgecore-dmi get device NAME', undefined);
            const d = await api.device(argv.name);
            if (json) return out(JSON.stringify(d, null, 2));
            return printDevice(d);
          }
          case 'models': {
            const ms = await api.models();
            if (json) return out(JSON.stringify(ms, null, 2));
            table([['NAME', 'PROTOCOL', 'PROPERTIES', 'VALID', 'SOURCE'], ...ms.map((m) => [m.id, m.protocol || '-', String(m.properties.length), m.valid ? 'yes' : m.stale ? 'no (stale)' : 'no', m.source])]);
            return;
          }
          case 'mappers': {
            const ms = await api.mappers();
            if (json) return out(JSON.stringify(ms, null, 2));
            table([
              ['NAME', 'PROTOCOL', 'VERSION', 'ACTIVE', 'SYNC', 'DEVICES', 'REGISTERED', 'ADDRESS'],
              ...ms.map((m) => [m.name, m.protocol, m.version, m.active ? 'yes' : 'no', m.sync ? `${m.sync.status}${m.sync.pending ? ` (${m.sync.pending} pending)` : ''}` : '-', String(m.devices), `${age(m.registeredAt)} ago`, m.address]),
            ]);
            return;
          }
          case 'problems': {
            const ps = await api.problems();
            if (json) return out(JSON.stringify(ps, null, 2));
            for (const p of ps) out(`${p.severity}: ${p.message}`);
            return;
          }
          case 'calls': {
            const cs = await api.calls();
            if (json) return out(JSON.stringify(cs, null, 2));
            table([['TIME', 'MAPPER', 'METHOD', 'TARGET', 'RESULT'], ...cs.map((c) => [new Date(c.at).toISOString(), c.mapper, c.method, c.target, c.ok ? 'OK' : `code ${c.code}: ${c.error ?? ''}`])]);
            return;
          }
        }
      },
    )
    .command(
      ['apply', 'delete'],
      'apply (or delete) Device/DeviceModel objects from a YAML file ("-" for stdin)',
      (y) => y.option('f', { alias: 'filename', type: 'string', demandOption: true, describe: 'YAML file' }),
      async (argv) => {
        const api = new ApiClient(argv.server);
        const verb = argv._[0] === 'delete' ? 'delete' : 'apply';
        const text = argv.f === '-' ? readFileSync(0, 'utf8') : readFileSync(argv.f, 'utf8');
        const r = verb === 'apply' ? await api.apply(text, argv.f) : await api.delete(text, argv.f);
        if (argv.output === 'json') out(JSON.stringify(r, null, 2));
        else for (const c of r.changed) out(`${c.kind.toLowerCase()} ${c.id} ${c.action}`);
        printProblems(r.errors);
        if (!r.ok) process.exitCode = 1;
      },
    )
    .command(
      'set-desired <device> <property> <value>',
      'set the desired value of a device property (sent to its mapper with UpdateDevice)',
      (y) =>
        y
          .positional('device', { type: 'string', demandOption: true })
          .positional('property', { type: 'string', demandOption: true })
          .positional('value', { type: 'string', demandOption: true }),
      async (argv) => {
        const api = new ApiClient(argv.server);
        const d = await api.setDesired(argv.device, argv.property, String(argv.value));
        if (argv.output === 'json') return out(JSON.stringify(d, null, 2));
        out(`device ${d.id} property ${argv.property} desired ${String(argv.value)} (delivery: ${d.delivery.status})`);
      },
    )
    .demandCommand(1, 'give a command: serve, get, apply, delete or set-desired')
    .strict()
    .fail((msg, err, y) => {
      if (err instanceof ApiError) {
        process.stderr.write(`edgecore-dmi: ${err.message}\n`);
        process.exit(1);
      }
      if (err) {
        process.stderr.write(`edgecore-dmi: ${err.message}\n`);
        process.exit(1);
      }
      y.showHelp();
      process.stderr.write(`\n${msg}\n`);
      process.exit(2);
    })
    .help()
    .version(false)
    .parseAsync();
}

await main();
