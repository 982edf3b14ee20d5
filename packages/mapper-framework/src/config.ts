// SPDX-License-Identifier: Apache-2.0
// config.yaml: upstream keys (grpc_server.*, common.*) plus optional Mapperkit keys (runtime.*, rest.*, data_plane.*).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { parseYamlDocumentSafely } from './dmi/yaml-guard.js';
import { MapperError } from './errors.js';

const port = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const s = String(v).trim();
  if (s === '') return 7777;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    ctx.addIssue({ code: 'custom', message: `"${s}" is not a TCP port (0-65535)` });
    return z.NEVER;
  }
  return n;
});

const ms = (def: number) => z.coerce.number().int().positive().default(def);

/** Per sink kind: its own disk-buffer cap and age, overriding data_plane.buffer_max_bytes / buffer_max_age_ms. */
const bufferOverrides = {
  buffer_max_bytes: z.coerce.number().int().positive().optional(),
  buffer_max_age_ms: z.coerce.number().int().positive().optional(),
};

/** Schema of config.yaml. Unknown keys are reported as warnings, not errors (upstream ignores them). */
export const mapperConfigSchema = z.object({
  grpc_server: z.object({
    /** The mapper's own DMI socket (edgecore dials it). */
    socket_path: z.string().min(1),
  }),
  common: z.object({
    name: z.string().min(1),
    version: z.coerce.string().default('v1.0.0'),
    api_version: z.coerce.string().default('v1.0.0'),
    protocol: z.string().min(1),
    /** Unused upstream; kept for compatibility. */
    address: z.coerce.string().default('127.0.0.1'),
    /** edgecore's DMI socket; a directory means `<dir>/dmi.sock` (edgecore ≥ v1.23). */
    edgecore_sock: z.string().min(1).default('/etc/kubeedge/dmi.sock'),
    http_port: port.default(7777),
  }),
  runtime: z
    .object({
      /** Twin/state reports per second to edgecore (edgecore's server limiter: 1/s). */
      report_rate: z.coerce.number().positive().default(1),
      /** Burst of the report limiter (edgecore's server limiter: 100). */
      report_burst: z.coerce.number().int().positive().default(100),
      /** Timeout of one driver read() call. */
      read_timeout_ms: ms(5000),
      /** Timeout of one driver write() call. */
      write_timeout_ms: ms(5000),
      /** Timeout of one driver connect() call. */
      connect_timeout_ms: ms(10000),
      /** How often a connected client's state() is polled. */
      state_check_ms: ms(5000),
      /** First reconnect delay; doubles up to backoff_max_ms, with jitter. */
      backoff_initial_ms: ms(500),
      backoff_max_ms: ms(30000),
      /** Consecutive failed read ticks (every property failing) after which the client is reconnected. */
      reconnect_after_failures: z.coerce.number().int().positive().default(3),
      /** Deadline of one DMI call to edgecore. */
      dmi_timeout_ms: ms(5000),
      /** /healthz turns 503 after MapperRegister has been refused socket access (EACCES) this long. */
      unhealthy_after_ms: ms(60_000),
    })
    .prefault({}),
  /** REST API, /metrics and health endpoints (Mapperkit). The port is `common.http_port`. */
  rest: z
    .object({
      /** Serve the REST API at all. */
      enabled: z.boolean().default(true),
      /** Bind address; upstream binds 0.0.0.0, Mapperkit defaults to loopback (or env MAPPER_REST_BIND_ADDRESS). */
      bind_address: z.string().min(1).default(process.env['MAPPER_REST_BIND_ADDRESS'] || '127.0.0.1'),
      /** File holding a bearer token that write routes require (a mounted Secret); env REST_TOKEN / REST_TOKEN_FILE also work. */
      write_token_file: z.string().default(''),
    })
    .prefault({}),
  /** Push and database sinks, store-and-forward (Mapperkit). */
  data_plane: z
    .object({
      /** `cycle`: each property ships at most one sample (the latest) per reportCycle; `every_sample`: every sample read. */
      push_mode: z.enum(['cycle', 'every_sample']).default('cycle'),
      /** Directory of the per-sink disk buffers (store-and-forward); default `/var/lib/mapperkit/<common.name>/buffer`. One mapper per directory. */
      buffer_dir: z.string().default(''),
      /** Disk buffer cap per sink, in bytes; the oldest data is dropped beyond it. */
      buffer_max_bytes: z.coerce.number().int().positive().default(256 * 1024 * 1024),
      /** Buffered samples older than this are dropped instead of replayed. */
      buffer_max_age_ms: ms(24 * 3600 * 1000),
      /** fsync the disk buffer after each append (survives power loss, costs throughput). */
      buffer_fsync: z.boolean().default(false),
      /** In-memory queue per sink; beyond it samples go to the disk buffer. */
      queue_capacity: z.coerce.number().int().positive().default(50_000),
      /** Most samples per write (pipeline, multi-row INSERT, line-protocol batch). */
      batch_size: z.coerce.number().int().positive().default(1000),
      /** Timeout of one sink write (a batch). */
      write_timeout_ms: ms(10_000),
      /** Retry delay after a failed write: starts here, doubles up to retry_max_ms. */
      retry_initial_ms: ms(200),
      retry_max_ms: ms(10_000),
      /** Directory with credential files `password`, `token`, `username` (a mounted Secret); env vars are used otherwise. */
      credentials_dir: z.string().default(''),
      http: z
        .object({
          /** `form` (upstream: `<property>=<value>&time=<local time>`) or `json` (the upstream DataModel as JSON). */
          body: z.enum(['form', 'json']).default('form'),
          ...bufferOverrides,
        })
        .prefault({}),
      mqtt: z
        .object({
          /** `text` (upstream: `time is <local time>  <topic>: <value>`) or `json` (the upstream DataModel as JSON). */
          payload: z.enum(['text', 'json']).default('text'),
          /** Client id prefix; the broker address is hashed in. */
          client_id: z.string().default(''),
          ...bufferOverrides,
        })
        .prefault({}),
      redis: z
        .object({
          /** Sorted-set key; `{name}` (upstream: the bare device name) and `{namespace}` are replaced. */
          key_template: z.string().min(1).default('{name}'),
          ...bufferOverrides,
        })
        .prefault({}),
      influxdb2: z
        .object({
          /** `typed` (int → 42i, float → 21.5, boolean → true) or `string` (upstream: every value a string field). */
          field_type: z.enum(['typed', 'string']).default('typed'),
          ...bufferOverrides,
        })
        .prefault({}),
      tdengine: z.object(bufferOverrides).prefault({}),
      mysql: z.object(bufferOverrides).prefault({}),
      otel: z.object(bufferOverrides).prefault({}),
    })
    .prefault({}),
});

/** Validated config.yaml. */
export type MapperConfig = z.infer<typeof mapperConfigSchema>;

function knownKeys(schema: z.ZodType, prefix = ''): string[] {
  let s: z.ZodType = schema;
  while (s instanceof z.ZodDefault || s instanceof z.ZodOptional || s instanceof z.ZodPipe) {
    s = s instanceof z.ZodPipe ? (s.def.in as z.ZodType) : (s.def.innerType as z.ZodType);
  }
  if (!(s instanceof z.ZodObject)) return [prefix];
  const out: string[] = [];
  for (const [k, v] of Object.entries(s.shape)) out.push(...knownKeys(v as z.ZodType, prefix ? `${prefix}.${k}` : k));
  return out;
}
const KNOWN = new Set(knownKeys(mapperConfigSchema));

function unknownKeys(value: unknown, prefix = ''): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return KNOWN.has(prefix) || prefix === '' ? [] : [prefix];
  const out: string[] = [];
  for (const [k, v] of Object.entries(value)) {
    const key = prefix ? `${prefix}.${k}` : k;
    const isSection = [...KNOWN].some((known) => known.startsWith(`${key}.`));
    if (isSection) out.push(...unknownKeys(v, key));
    else if (!KNOWN.has(key)) out.push(key);
  }
  return out;
}

/** Result of loading config.yaml. */
export interface LoadedConfig {
  readonly config: MapperConfig;
  /** Keys present in the file that Mapperkit does not know (typos, legacy keys). */
  readonly unknownKeys: readonly string[];
}

/**
 * Parses and validates config.yaml text. Throws MapperError('InvalidConfig') naming the file,
 * the key and the problem (e.g. `config.yaml: common.protocol: required`).
 */
export function parseMapperConfig(text: string, source = 'config.yaml'): LoadedConfig {
  const parsed = parseYamlDocumentSafely(text);
  if (parsed.error !== undefined) throw new MapperError('InvalidConfig', `${source}: YAML syntax error: ${parsed.error}`, { key: source });
  const raw: unknown = parsed.value ?? {};
  const result = mapperConfigSchema.safeParse(raw);
  if (!result.success) {
    const parts = result.error.issues.map((i) => {
      const key = i.path.map(String).join('.');
      const missing = i.code === 'invalid_type' && (i as { input?: unknown }).input === undefined;
      return `${key || '(root)'}: ${missing ? 'required' : i.message}`;
    });
    const firstKey = result.error.issues[0]?.path.map(String).join('.');
    throw new MapperError('InvalidConfig', `${source}: ${parts.join('; ')}`, firstKey ? { key: firstKey } : {});
  }
  const config = result.data;
  const sock = config.common.edgecore_sock;
  if (existsSync(sock) && statSync(sock).isDirectory()) config.common.edgecore_sock = join(sock, 'dmi.sock');
  return { config, unknownKeys: unknownKeys(raw) };
}

/** Reads and validates a config.yaml file; see {@link parseMapperConfig}. */
export function loadMapperConfig(file: string): LoadedConfig {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new MapperError('InvalidConfig', `cannot read config file ${path}: ${(err as Error).message}`, { cause: err, key: '--config-file' });
  }
  return parseMapperConfig(text, path);
}
