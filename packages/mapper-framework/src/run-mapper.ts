// SPDX-License-Identifier: Apache-2.0
import type { Logger } from 'pino';
import { resolve } from 'node:path';
import { parseArgs as parseCli } from 'node:util';
import { loadMapperConfig, type MapperConfig, parseMapperConfig } from './config.js';
import { type DiscoveredDevice, type DriverDefinition, isDiscoverable } from './driver.js';
import { MapperError, toMapperError } from './errors.js';
import { createLogger } from './logger.js';
import { createDataPlaneWiring } from './http/wiring.js';
import type { SinkStatus } from './sinks/channel.js';
import { type DeviceView, MapperRuntime, type StatsSnapshot } from './runtime/mapper.js';
import type { RuntimeObserver } from './observer.js';
import type { SampleConsumer } from './sample.js';
import type { PropertyValue } from './values.js';

/** Options of {@link runMapper} and {@link createMapper}. */
export interface RunMapperOptions<P, V> {
  /** The protocol driver. */
  readonly driver: DriverDefinition<P, V>;
  /**
   * Path of config.yaml when no `--config-file` flag is given. Default `./config.yaml`.
   * Ignored when `config` is given.
   */
  readonly configFile?: string;
  /** Config object or YAML text, instead of a file (tests, embedding). */
  readonly config?: MapperConfig | string;
  /** Command-line arguments to parse (`--config-file`, `--v`). runMapper defaults to `process.argv.slice(2)`; createMapper parses none. */
  readonly argv?: readonly string[];
  /** Logger; default: pino JSON on stdout at the `--v` level. */
  readonly logger?: Logger;
  /** Extra sample consumers (custom sinks). Each receives every sample; devices are read once. */
  readonly consumers?: readonly SampleConsumer[];
  /** Instrumentation hooks (metrics, tracing). */
  readonly observers?: readonly RuntimeObserver[];
  /** Install SIGTERM/SIGINT handlers that stop the mapper and exit 0. Default: true for runMapper, false for createMapper. */
  readonly handleSignals?: boolean;
}

/** A started mapper. */
export interface MapperHandle {
  readonly config: MapperConfig;
  readonly log: Logger;
  /** Resolves once the first MapperRegister succeeded and its devices are started. */
  whenRegistered(): Promise<void>;
  /** All registered devices. */
  devices(): DeviceView[];
  /** One device by `namespace/name`. */
  device(id: string): DeviceView | undefined;
  /** Writes a property value given as text (converted by the model type, range-checked). */
  writeProperty(namespace: string, name: string, property: string, value: string, signal?: AbortSignal): Promise<PropertyValue>;
  /** Devices the driver can see (its Discoverable capability); MapperError('Unsupported') without it. */
  discover(signal?: AbortSignal): Promise<readonly DiscoveredDevice[]>;
  /** Runtime counters and tick-lag percentiles. */
  stats(): StatsSnapshot;
  /** State and counters of every sink connection (push methods, databases). */
  sinks(): SinkStatus[];
  /** Where the REST API listens (undefined when disabled or its port was busy). */
  restAddress(): { host: string; port: number } | undefined;
  /** Clears tick-lag samples (benchmarks discard warm-up). */
  resetStats(): void;
  /** Stops devices, the DMI server and the edgecore channel; removes the socket file. */
  stop(): Promise<void>;
}

interface CliArgs {
  command: 'run' | 'doctor' | 'schema' | 'help';
  configFile: string;
  v: number;
  devices: string[];
  skipSocket: boolean;
  json: boolean;
  out: string;
}

const USAGE = `usage:
  <mapper> [--config-file FILE] [--v N]           run the mapper (defaults: ./config.yaml, 1)
  <mapper> doctor [--config-file FILE] [--devices PATH]... [--skip-socket] [--json]
                                                 check config.yaml and Device/DeviceModel YAML against this
                                                 driver's schemas and the CRD rules, and edgecore's socket
  <mapper> schema [--out DIR]                    write JSON Schemas of config.yaml and the driver's configData
--v is klog-style verbosity: 0 warn, 1 info, 2-3 debug, 4+ trace.
`;

/** Parses the mapper command line (node:util parseArgs: no extra dependency in every mapper process). */
function parseArgs(argv: readonly string[], defaultConfigFile: string): CliArgs {
  let parsed: ReturnType<typeof parseCli>;
  try {
    parsed = parseCli({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        'config-file': { type: 'string' },
        v: { type: 'string' },
        devices: { type: 'string', multiple: true },
        'skip-socket': { type: 'boolean' },
        json: { type: 'boolean' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new MapperError('InvalidConfig', `${(err as Error).message}\n${USAGE}`, { key: 'argv' });
  }
  const values = parsed.values as Record<string, string | string[] | boolean | undefined>;
  const [sub, ...extra] = parsed.positionals;
  if (extra.length > 0 || (sub !== undefined && sub !== 'doctor' && sub !== 'schema')) {
    throw new MapperError('InvalidConfig', `unexpected argument "${extra[0] ?? sub}"\n${USAGE}`, { key: 'argv' });
  }
  const command: CliArgs['command'] = values['help'] ? 'help' : (sub as 'doctor' | 'schema' | undefined) ?? 'run';
  const onlyFor: Record<string, CliArgs['command'][]> = { devices: ['doctor'], 'skip-socket': ['doctor'], json: ['doctor'], out: ['schema'] };
  for (const [opt, cmds] of Object.entries(onlyFor)) {
    if (values[opt] !== undefined && command !== 'help' && !cmds.includes(command)) {
      throw new MapperError('InvalidConfig', `--${opt} is only valid with: ${cmds.join(', ')}\n${USAGE}`, { key: `--${opt}` });
    }
  }
  const vText = (values['v'] as string | undefined) ?? '1';
  const v = Number(vText);
  if (!Number.isInteger(v) || v < 0) throw new MapperError('InvalidConfig', `--v: "${vText}" is not a verbosity level (0, 1, 2, …)`, { key: '--v' });
  return {
    command,
    configFile: (values['config-file'] as string | undefined) ?? defaultConfigFile,
    v,
    devices: (values['devices'] as string[] | undefined) ?? ['devices'],
    skipSocket: values['skip-socket'] === true,
    json: values['json'] === true,
    out: (values['out'] as string | undefined) ?? 'schema',
  };
}

/**
 * Creates and starts a mapper without touching process state (no signal handlers, no exit).
 * Rejects with MapperError('InvalidConfig') for a bad config.
 */
export async function createMapper<P, V>(options: RunMapperOptions<P, V>): Promise<MapperHandle> {
  const defaultFile = options.configFile ?? './config.yaml';
  const args = options.argv ? parseArgs(options.argv, defaultFile) : { configFile: defaultFile, v: 1 };
  let config: MapperConfig;
  let unknown: readonly string[] = [];
  // Objects go through the schema too, so defaults of every section apply.
  if (typeof options.config === 'object') ({ config, unknownKeys: unknown } = parseMapperConfig(JSON.stringify(options.config)));
  else if (typeof options.config === 'string') ({ config, unknownKeys: unknown } = parseMapperConfig(options.config));
  else ({ config, unknownKeys: unknown } = loadMapperConfig(args.configFile));
  const log = options.logger ?? createLogger({ verbosity: args.v, name: config.common.name });
  for (const key of unknown) log.warn({ key }, 'unknown key in config.yaml ignored');
  const wiring = createDataPlaneWiring(config, log);
  const runtime = new MapperRuntime({
    driver: options.driver,
    config,
    log,
    consumers: [...wiring.consumers, ...(options.consumers ?? [])],
    observers: [...wiring.observers, ...(options.observers ?? [])],
  });
  wiring.attach({
    devices: () => runtime.deviceViews(),
    device: (id) => runtime.deviceView(id),
    writeProperty: (ns, name, prop, value, signal) => runtime.writeProperty(ns, name, prop, value, signal),
  });
  await runtime.start();
  await wiring.start();
  return {
    config,
    log,
    whenRegistered: () => runtime.whenRegistered(),
    devices: () => runtime.deviceViews(),
    device: (id) => runtime.deviceView(id),
    writeProperty: (ns, name, prop, value, signal) => runtime.writeProperty(ns, name, prop, value, signal),
    discover: async (signal) => {
      const d = options.driver as DriverDefinition<unknown, unknown>;
      if (!isDiscoverable(d)) throw new MapperError('Unsupported', `the ${d.protocol} driver does not support discovery`);
      return d.discover(signal ?? AbortSignal.timeout(30_000));
    },
    stats: () => runtime.stats(),
    sinks: () => wiring.sinks(),
    restAddress: () => wiring.restAddress(),
    resetStats: () => runtime.resetLag(),
    stop: async () => {
      await wiring.stop();
      await runtime.stop();
    },
  };
}

/**
 * Runs a mapper as a process: parses `--config-file` and `--v`, starts the DMI server,
 * registers with edgecore (retrying until it answers), and stops cleanly on SIGTERM/SIGINT
 * (exit code 0). A bad config prints one line naming the key and exits 2.
 *
 * @example
 * // src/main.ts of a mapper
 * import { runMapper } from '@mapperkit/framework';
 * import driver from './driver.js';
 * await runMapper({ driver });
 */
export async function runMapper<P, V>(options: RunMapperOptions<P, V>): Promise<MapperHandle> {
  const argv = options.argv ?? process.argv.slice(2);
  let args: CliArgs;
  try {
    args = parseArgs(argv, options.configFile ?? './config.yaml');
  } catch (err) {
    process.stderr.write(`mapper: ${toMapperError(err).message}\n`);
    process.exit(2);
  }
  if (args.command !== 'run') process.exit(await runTool(options.driver as DriverDefinition<unknown, unknown>, args));
  let handle: MapperHandle;
  try {
    handle = await createMapper({ ...options, argv });
  } catch (err) {
    const e = toMapperError(err);
    process.stderr.write(`mapper: ${e.message}\n`);
    process.exit(e instanceof MapperError && e.kind === 'InvalidConfig' ? 2 : 1);
  }
  if (options.handleSignals ?? true) {
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      handle.log.info({ signal: sig }, 'shutting down');
      const force = setTimeout(() => process.exit(1), 15_000);
      force.unref();
      handle.stop().then(
        () => {
          handle.log.flush?.();
          process.exit(0);
        },
        (err: unknown) => {
          handle.log.error({ err: toMapperError(err).message }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }
  return handle;
}

/** `doctor`, `schema` and `--help`; resolves with the exit code. */
async function runTool(driver: DriverDefinition<unknown, unknown>, args: CliArgs): Promise<number> {
  if (args.command === 'help') {
    process.stdout.write(USAGE.replaceAll('<mapper>', `mapper-${driver.protocol}`));
    return 0;
  }
  try {
    if (args.command === 'schema') {
      const { writeSchemas } = await import('./tooling/schemas.js');
      const files = await writeSchemas(driver, resolve(args.out));
      process.stdout.write(`wrote ${files.join(', ')}\n`);
      return 0;
    }
    const { runDoctor, formatDoctorReport } = await import('./tooling/doctor.js');
    const report = await runDoctor({ driver, configFile: args.configFile, devices: args.devices, checkSocket: !args.skipSocket });
    process.stdout.write(args.json ? `${JSON.stringify(report, null, 2)}\n` : formatDoctorReport(report));
    return report.errors > 0 ? 1 : 0;
  } catch (err) {
    process.stderr.write(`mapper ${args.command}: ${toMapperError(err).message}\n`);
    return 2;
  }
}
