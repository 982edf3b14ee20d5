// SPDX-License-Identifier: Apache-2.0
// Starts the node-opcua test server (fixtures/opcua-server.ts) in its own process and talks
// to it over the IPC channel: counters of received service requests, server-side values,
// trusting certificates, kill/restart.
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const TEST_NAMESPACE_URI = 'urn:mapperkit:opcua-test';
export const USER = 'operator';
export const PASSWORD = 's3cret-Pa55';

const FIXTURE = new URL('./fixtures/opcua-server.ts', import.meta.url).pathname;

export interface ServerStats {
  readRequests: number;
  deviceReadRequests: number;
  readNodes: number;
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

  /** Starts the server again on the same port with the same PKI (same certificate). */
  async restart(): Promise<void> {
    await this.kill();
    await this.spawn();
  }

  async stop(): Promise<void> {
    const child = this.child;
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
