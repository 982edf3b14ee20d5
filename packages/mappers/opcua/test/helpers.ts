// SPDX-License-Identifier: Apache-2.0
// Starts the node-opcua test server (fixtures/opcua-server.ts) in its own process and talks
// to it over the IPC channel: counters of received service requests, server-side values,
// trusting certificates, kill/restart.
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, createMapper, type Logger, type MapperHandle, type PropertyRequest, type PropertyType } from '@mapperkit/framework';
import { TestEdgecore } from '@mapperkit/framework/testing';
import type { OpcuaDeviceClient } from '../src/client.ts';
import type { ProtocolConfig, VisitorConfig } from '../src/config.ts';
import driver from '../src/driver.ts';

export const TEST_NAMESPACE_URI = 'urn:mapperkit:opcua-test';
export const USER = 'operator';
export const PASSWORD = 's3cret-Pa55';

const FIXTURE = new URL('./fixtures/opcua-server.ts', import.meta.url).pathname;

export interface ServerStats {
  readRequests: number;
  deviceReadRequests: number;
  readNodes: number;
  deviceReadNodes: number;
  maxReadNodes: number;
  writeRequests: number;
  createMonitoredItemsRequests: number;
  createSubscriptionRequests: number;
  activateSessionRequests: number;
}

export interface ServerOptions {
  /** Folder for the server's PKI (kept across restarts); default: a new temp folder. */
  readonly dir?: string;
  readonly port?: number;
  /** Server's MaxNodesPerRead operation limit (0: the node-opcua default). */
  readonly maxNodesPerRead?: number;
  /** Number of Bulk.NNNN variables. */
  readonly bulk?: number;
  /** Trust every client certificate (default true). */
  readonly acceptUnknownClients?: boolean;
  readonly changeEveryMs?: number;
  /** Nodeset the server loads: `mini` (default, fast) or `standard` (the full OPC UA address space). */
  readonly nodeset?: 'mini' | 'standard';
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export class TestServer {
  readonly dir: string;
  readonly port: number;
  readonly endpointUrl: string;
  serverCertificateFile = '';
  private child: ChildProcess | undefined;
  private readonly opts: ServerOptions;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly ownDir: boolean;

  private constructor(dir: string, port: number, opts: ServerOptions, ownDir: boolean) {
    this.dir = dir;
    this.port = port;
    this.endpointUrl = `opc.tcp://127.0.0.1:${port}`;
    this.opts = opts;
    this.ownDir = ownDir;
  }

  static async start(opts: ServerOptions = {}): Promise<TestServer> {
    const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'opcua-server-'));
    const s = new TestServer(dir, opts.port ?? (await freePort()), opts, opts.dir === undefined);
    await s.spawn();
    return s;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private spawn(): Promise<void> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      OPCUA_FIXTURE_PORT: String(this.port),
      OPCUA_FIXTURE_PKI: this.dir,
      OPCUA_FIXTURE_MAX_NODES_PER_READ: String(this.opts.maxNodesPerRead ?? 0),
      OPCUA_FIXTURE_BULK: String(this.opts.bulk ?? 0),
      OPCUA_FIXTURE_ACCEPT_CLIENTS: this.opts.acceptUnknownClients === false ? '0' : '1',
      OPCUA_FIXTURE_CHANGE_MS: String(this.opts.changeEveryMs ?? 100),
      OPCUA_FIXTURE_USERS: `${USER}:${PASSWORD}`,
      OPCUA_FIXTURE_NODESET: this.opts.nodeset ?? 'mini',
    };
    const child = fork(FIXTURE, [], { execArgv: ['--import', 'tsx'], env, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    this.child = child;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('OPC UA test server did not start within 60 s')), 60_000);
      child.on('message', (m: { ready?: boolean; serverCertificateFile?: string; id?: number; ok?: boolean; result?: unknown; error?: string }) => {
        if (m.ready) {
          clearTimeout(timer);
          this.serverCertificateFile = m.serverCertificateFile ?? '';
          resolve();
          return;
        }
        const p = m.id === undefined ? undefined : this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id!);
        if (m.ok) p.resolve(m.result);
        else p.reject(new Error(m.error));
      });
      child.once('exit', (code, sig) => {
        clearTimeout(timer);
        for (const p of this.pending.values()) p.reject(new Error(`server exited (${code ?? sig})`));
        this.pending.clear();
        reject(new Error(`OPC UA test server exited (${code ?? sig}) before it was ready`));
      });
    });
  }

  private call<T>(msg: Record<string, unknown>): Promise<T> {
    const child = this.child;
    if (!child?.connected) return Promise.reject(new Error('server not running'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ ...msg, id });
    });
  }

  stats(): Promise<ServerStats> {
    return this.call({ cmd: 'stats' });
  }
  resetStats(): Promise<void> {
    return this.call({ cmd: 'resetStats' });
  }
  /** Server-side value of Test/<name>: `{ dataType, value }` (dates ISO, bytes base64, Int64 as [hi, lo]). */
  get(node: string): Promise<{ dataType: string; value: unknown }> {
    return this.call({ cmd: 'get', node });
  }
  set(node: string, value: number | string | boolean): Promise<void> {
    return this.call({ cmd: 'set', node, value });
  }
  trustClient(certificateFile: string): Promise<void> {
    return this.call({ cmd: 'trustClient', certificateFile });
  }
  trustUser(certificateFile: string): Promise<void> {
    return this.call({ cmd: 'trustUser', certificateFile });
  }
  /** Monitored items requested since the last resetStats, with the client's parameters, in order. */
  monitoredItems(): Promise<{ nodeId: string; samplingInterval: number; queueSize: number; discardOldest: boolean; deadbandType: string; deadbandValue: number }[]> {
    return this.call({ cmd: 'monitoredItems' });
  }
  /** Sessions activated since this server process started: channel security and identity. */
  activations(): Promise<{ applicationUri: string; securityMode: string; securityPolicy: string; identity: string; at: number }[]> {
    return this.call({ cmd: 'activations' });
  }
  sessions(): Promise<number> {
    return this.call({ cmd: 'sessions' });
  }

  /** Kills the server process (SIGKILL: no goodbye to clients) and waits for it to exit. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGKILL');
    await exited;
    this.child = undefined;
  }

  /** Freezes the server process (SIGSTOP): connections stay open, nothing answers. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }
  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Starts the server again on the same port with the same PKI (same certificate). */
  async restart(): Promise<void> {
    await this.kill();
    await this.spawn();
  }

  async stop(): Promise<void> {
    const child = this.child;
    child?.kill('SIGCONT');
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    this.child = undefined;
    if (this.ownDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/* ── A mapper on the OPC UA driver talking DMI to a TestEdgecore ── */

export interface PropSpec {
  readonly name: string;
  /** Model type: INT, FLOAT, DOUBLE, BOOLEAN, STRING, BYTES. */
  readonly type: string;
  readonly access?: 'ReadWrite' | 'ReadOnly';
  readonly visitor: Record<string, string | number | boolean>;
  readonly collectCycle?: number;
  readonly reportCycle?: number;
  readonly desired?: string;
}

/**
 * devices.kubeedge.io/v1beta1 YAML for one model and its devices (JSON is YAML), converted
 * by TestEdgecore.fromCrdYaml exactly as edgecore converts CRDs.
 */
export function crdYaml(model: string, props: readonly PropSpec[], devices: readonly { name: string; protocol: Record<string, string | number | boolean>; props?: readonly PropSpec[] }[]): string {
  const docs: unknown[] = [
    {
      apiVersion: 'devices.kubeedge.io/v1beta1',
      kind: 'DeviceModel',
      metadata: { name: model, namespace: 'default' },
      spec: { protocol: 'opcua', properties: props.map((p) => ({ name: p.name, type: p.type, accessMode: p.access ?? 'ReadOnly' })) },
    },
    ...devices.map((d) => ({
      apiVersion: 'devices.kubeedge.io/v1beta1',
      kind: 'Device',
      metadata: { name: d.name, namespace: 'default' },
      spec: {
        deviceModelRef: { name: model },
        nodeName: 'edge-1',
        protocol: { protocolName: 'opcua', configData: d.protocol },
        stateReport: { reportToCloud: false, reportCycle: 1000 },
        properties: (d.props ?? props).map((p) => ({
          name: p.name,
          collectCycle: p.collectCycle ?? 200,
          reportCycle: p.reportCycle ?? 200,
          reportToCloud: true,
          ...(p.desired !== undefined ? { desired: { value: p.desired } } : {}),
          visitors: { protocolName: 'opcua', configData: p.visitor },
        })),
      },
    })),
  ];
  return docs.map((d) => JSON.stringify(d)).join('\n---\n');
}

export interface MapperRig {
  readonly dir: string;
  readonly ec: TestEdgecore;
  readonly mapper: MapperHandle;
  /** JSON log lines the mapper wrote. */
  readonly logs: string[];
  stop(): Promise<void>;
}

/** A TestEdgecore holding the devices of `yamlText` and a mapper (createMapper) on the OPC UA driver. */
export async function startMapper(yamlText: string, runtimeExtra: Record<string, number> = {}): Promise<MapperRig> {
  const dir = mkdtempSync(join(tmpdir(), 'opcua-rig-'));
  const ec = await TestEdgecore.start({ socketPath: join(dir, 'dmi.sock'), ...TestEdgecore.fromCrdYaml(yamlText), limiter: false });
  const runtime = { report_rate: 1000, report_burst: 1000, state_check_ms: 300, backoff_initial_ms: 100, backoff_max_ms: 1000, read_timeout_ms: 3000, ...runtimeExtra };
  const config =
    `grpc_server:\n  socket_path: ${join(dir, 'mapper.sock')}\ncommon:\n  name: opcua-mapper\n  protocol: opcua\n  edgecore_sock: ${join(dir, 'dmi.sock')}\n  http_port: "0"\n` +
    `runtime:\n${Object.entries(runtime)
      .map(([k, v]) => `  ${k}: ${v}\n`)
      .join('')}rest:\n  enabled: false\n`;
  const logs: string[] = [];
  const destination = { write: (line: string) => void logs.push(line) };
  const mapper = await createMapper({ driver, config, logger: createLogger({ level: process.env['MK_TEST_LOG'] ? 'debug' : 'info', destination }) });
  await mapper.whenRegistered();
  return {
    dir,
    ec,
    mapper,
    logs,
    async stop() {
      await mapper.stop();
      await ec.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until `fn` resolves true; rejects after `timeoutMs` naming `what`. */
export async function until(fn: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/* ── The driver used directly (no mapper) ── */

export type Req = PropertyRequest<VisitorConfig>;

/** A PropertyRequest with the visitor validated by the driver's schema (as the framework does). */
export async function request(name: string, type: PropertyType, visitor: Record<string, unknown>, accessMode: 'ReadWrite' | 'ReadOnly' = 'ReadWrite'): Promise<Req> {
  const r = (await driver.visitorConfig['~standard'].validate(visitor)) as { value?: VisitorConfig; issues?: unknown };
  if (!r.value) throw new Error(`bad visitor for ${name}: ${JSON.stringify(r.issues)}`);
  return { name, type, accessMode, visitor: r.value, minimum: undefined, maximum: undefined, unit: '' };
}

/** Validates protocol configData with the driver's schema and connects. */
export async function connect(raw: Record<string, unknown>, log: Logger = createLogger({ level: 'silent' })): Promise<OpcuaDeviceClient> {
  const r = (await driver.protocolConfig['~standard'].validate(raw)) as { value?: ProtocolConfig; issues?: unknown };
  if (!r.value) throw new Error(`bad protocol config: ${JSON.stringify(r.issues)}`);
  const client = await driver.connect({ device: { id: 'test/dev', name: 'dev', namespace: 'test', model: 'm' }, config: r.value, log }, AbortSignal.timeout(20_000));
  return client as OpcuaDeviceClient;
}

export const signal = (ms = 5000): AbortSignal => AbortSignal.timeout(ms);
