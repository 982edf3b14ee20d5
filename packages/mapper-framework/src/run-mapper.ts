// SPDX-License-Identifier: Apache-2.0
import type { Logger } from 'pino';
import yargs from 'yargs';
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
  configFile: string;
  v: number;
}

function parseArgs(argv: readonly string[], defaultConfigFile: string): CliArgs {
  const parsed = yargs([...argv])
    .scriptName('mapper')
    .option('config-file', { type: 'string', default: defaultConfigFile, describe: 'path of config.yaml' })
    .option('v', { type: 'number', default: 1, describe: 'log verbosity (klog style: 0 warn, 1 info, 2-3 debug, 4+ trace)' })
    .strict()
    .help()
    .version(false)
    .parseSync();
  return { configFile: parsed['config-file'], v: parsed.v };
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
  let handle: MapperHandle;
  try {
    handle = await createMapper({ ...options, argv: options.argv ?? process.argv.slice(2) });
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
