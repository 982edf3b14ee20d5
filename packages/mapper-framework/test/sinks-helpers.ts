// SPDX-License-Identifier: Apache-2.0
// Fixtures of the data-plane tests: real peers (redis-server, mosquitto, MariaDB) started on
// free ports in temp dirs, a capturing HTTP server, a small counter driver, and a mapper
// (createMapper + TestEdgecore) fed with Device/DeviceModel CRD YAML.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createNetServer, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, createMapper, defineDriver, type MapperHandle, MapperError, type ReadResult, type SampleConsumer, z } from '@mapperkit/framework';
import { TestEdgecore } from '@mapperkit/framework/testing';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function until(fn: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

export function tempDir(prefix = 'mkdp-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const sock = netConnect(port, '127.0.0.1');
      sock.once('connect', () => {
        sock.destroy();
        resolve();
      });
      sock.once('error', () => {
        sock.destroy();
        if (Date.now() > end) reject(new Error(`port ${port} did not open within ${timeoutMs} ms`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

function stopChild(p: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    p.once('exit', () => resolve());
    p.kill(signal);
    setTimeout(() => p.kill('SIGKILL'), 5000).unref();
  });
}

/** A peer process that can be stopped and started again on the same port. */
export interface Peer {
  readonly port: number;
  start(): Promise<void>;
  /** Kills it (SIGKILL: no goodbye to clients). */
  kill(): Promise<void>;
  /** Stops it (SIGTERM); `start()` brings it back with its data. */
  stop(): Promise<void>;
  /** Stops it and removes its files. */
  dispose(): Promise<void>;
}

function peer(port: number, cmd: string, args: string[], cwd?: string): Peer {
  let child: ChildProcess | undefined;
  return {
    port,
    async start() {
      child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], ...(cwd ? { cwd } : {}) });
      let err = '';
      child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
      child.once('exit', (code) => {
        if (code && code !== 0 && err) process.stderr.write(`[${cmd}] exited ${code}: ${err.slice(0, 500)}\n`);
      });
      await waitForPort(port);
    },
    kill: () => stopChild(child, 'SIGKILL'),
    stop: () => stopChild(child),
    dispose: () => stopChild(child),
  };
}

/**
 * Debian redis-server on a free loopback port. `durable`: append-only file fsynced before each
 * reply (so what Redis acknowledged survives a SIGKILL); otherwise no persistence.
 */
export async function startRedis(opts: { durable?: boolean } = {}): Promise<Peer> {
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', ''];
  let cleanup = (): void => {};
  if (opts.durable) {
    const t = tempDir('mkredis-');
    cleanup = t.cleanup;
    args.push('--dir', t.dir, '--appendonly', 'yes', '--appendfsync', 'always');
  } else {
    args.push('--appendonly', 'no');
  }
  const p = peer(port, 'redis-server', args);
  await p.start();
  return {
    ...p,
    async dispose() {
      await p.stop();
      cleanup();
    },
  };
}

/**
 * Debian mosquitto 2 on a free loopback port (anonymous). `persistent`: sessions and queued
 * QoS 1 messages survive a restart (saved at SIGTERM). `users`: a login is required, with these
 * user names and passwords (a password file written by mosquitto_passwd).
 */
export async function startMosquitto(opts: { persistent?: boolean; users?: Record<string, string> } = {}): Promise<Peer> {
  const port = await freePort();
  const t = tempDir('mkmqtt-');
  const conf = join(t.dir, 'mosquitto.conf');
  const lines = [`listener ${port} 127.0.0.1`];
  if (opts.users) {
    const file = join(t.dir, 'passwords');
    writeFileSync(file, '');
    for (const [user, password] of Object.entries(opts.users)) execFileSync('mosquitto_passwd', ['-b', file, user, password]);
    // Started as root, mosquitto drops to its own user, which must be able to reach and read the file (it warns that others can).
    chmodSync(t.dir, 0o755);
    chmodSync(file, 0o644);
    lines.push('allow_anonymous false', `password_file ${file}`);
  } else lines.push('allow_anonymous true');
  if (opts.persistent) lines.push('persistence true', `persistence_location ${t.dir}/`, 'autosave_interval 0');
  writeFileSync(conf, `${lines.join('\n')}\n`);
  const p = peer(port, 'mosquitto', ['-c', conf]);
  await p.start();
  return {
    ...p,
    async dispose() {
      await p.stop();
      t.cleanup();
    },
  };
}

/** Debian MariaDB in a temp datadir (as root), with database `mk` and user `mk`@`127.0.0.1` identified by `password`. */
export async function startMariadb(password: string): Promise<Peer> {
  const port = await freePort();
  const { dir, cleanup } = tempDir('mkdb-');
  const data = join(dir, 'data');
  const sock = join(dir, 'mysqld.sock');
  execFileSync('mariadb-install-db', ['--no-defaults', `--datadir=${data}`, '--user=root', '--auth-root-authentication-method=normal', '--skip-test-db'], { stdio: 'ignore' });
  const p = peer(port, 'mariadbd', [
    '--no-defaults',
    `--datadir=${data}`,
    `--socket=${sock}`,
    `--pid-file=${join(dir, 'mysqld.pid')}`,
    `--port=${port}`,
    '--bind-address=127.0.0.1',
    '--user=root',
    '--skip-log-bin',
    '--innodb-buffer-pool-size=16M',
    '--innodb-log-file-size=8M',
  ]);
  await p.start();
  const sql = `CREATE DATABASE mk; CREATE USER 'mk'@'127.0.0.1' IDENTIFIED BY '${password.replace(/[\\']/g, (c) => `\\${c}`)}'; GRANT ALL ON mk.* TO 'mk'@'127.0.0.1'; FLUSH PRIVILEGES;`;
  execFileSync('mariadb', ['--no-defaults', `--socket=${sock}`, '-uroot', '-e', sql]);
  return {
    ...p,
    async dispose() {
      await p.stop();
      cleanup();
    },
  };
}

export interface CapturedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
  readonly at: number;
}

/** A local HTTP server recording every request; `respond` decides status (and an optional delay). */
export class CaptureServer {
  readonly requests: CapturedRequest[] = [];
  respond: (req: CapturedRequest) => { status: number; body?: string; delayMs?: number } = () => ({ status: 204 });
  private server: Server | undefined;
  port = 0;

  async start(port = 0): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const r: CapturedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() };
        const out = this.respond(r);
        // Recorded on arrival (a delayed answer may reach the client after it gave up).
        if (out.status < 300) this.requests.push(r);
        else this.rejected.push(r);
        const reply = (): void => {
          res.writeHead(out.status, { 'content-type': 'text/plain' });
          res.end(out.body ?? '');
        };
        if (out.delayMs) setTimeout(reply, out.delayMs);
        else reply();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  /** Requests answered with a status >= 300. */
  readonly rejected: CapturedRequest[] = [];

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

/**
 * Protocol `counter`: every property reads as an increasing integer (1, 2, 3… per device and
 * property), so sinks can be checked for completeness and order. A `fixed` visitor value makes
 * the property read that text instead (strings with quotes, commas…).
 */
export interface CounterState {
  reads: number;
  failing: boolean;
  /** Every write() call. */
  writes?: { device: string; property: string; value: unknown }[];
  /** A write takes this long (ms), as a real device write does. */
  writeDelayMs?: number;
}

export function counterDriver(state: CounterState = { reads: 0, failing: false }) {
  return defineDriver({
    protocol: 'counter',
    protocolConfig: z.object({}).passthrough(),
    visitorConfig: z.object({ fixed: z.string().optional() }).passthrough(),
    async connect({ device }) {
      const seq = new Map<string, number>();
      return {
        async read(requests): Promise<ReadResult[]> {
          state.reads++;
          return requests.map((r) => {
            if (state.failing) return { ok: false, error: new MapperError('DeviceError', 'counter failing') };
            if (r.visitor.fixed !== undefined) return { ok: true, value: r.type === 'string' ? r.visitor.fixed : Number(r.visitor.fixed) };
            const n = (seq.get(r.name) ?? 0) + 1;
            seq.set(r.name, n);
            return { ok: true, value: r.type === 'string' ? `v${n}` : r.type === 'boolean' ? n % 2 === 0 : n };
          });
        },
        async write(request, value) {
          if (state.writeDelayMs) await sleep(state.writeDelayMs);
          state.writes?.push({ device: device.id, property: request.name, value });
        },
        async state() {
          return 'ok';
        },
        async close() {},
      };
    },
  });
}

export interface PropSpec {
  name: string;
  type?: string;
  access?: 'ReadWrite' | 'ReadOnly';
  collectCycle?: number;
  reportCycle?: number;
  /** YAML of `pushMethod:` (indented under the property; give it without leading spaces). */
  pushMethod?: string;
  fixed?: string;
}

function indent(text: string, n: number): string {
  const pad = ' '.repeat(n);
  return text
    .trim()
    .split('\n')
    .map((l) => pad + l)
    .join('\n');
}

/** Device + DeviceModel CRD YAML for the counter protocol. */
export function crdYaml(name: string, props: PropSpec[], opts: { namespace?: string; methods?: { name: string; propertyNames: string[] }[] } = {}): string {
  const ns = opts.namespace ?? 'default';
  const model = `apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata:
  name: ${name}-model
  namespace: ${ns}
spec:
  protocol: counter
  properties:
${props.map((p) => `    - name: ${p.name}\n      type: ${p.type ?? 'INT'}\n      accessMode: ${p.access ?? 'ReadOnly'}\n      minimum: "0"\n      maximum: "1000000"\n      unit: u`).join('\n')}
`;
  const methods = opts.methods?.length
    ? `  methods:\n${opts.methods.map((m) => `    - name: ${m.name}\n      propertyNames: [${m.propertyNames.join(', ')}]`).join('\n')}\n`
    : '';
  const device = `apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata:
  name: ${name}
  namespace: ${ns}
spec:
  deviceModelRef:
    name: ${name}-model
  protocol:
    protocolName: counter
    configData:
      host: sim
  properties:
${props
  .map((p) => {
    let s = `    - name: ${p.name}\n      collectCycle: ${p.collectCycle ?? 100}\n      reportCycle: ${p.reportCycle ?? 100}\n      reportToCloud: false\n      visitors:\n        protocolName: counter\n        configData:\n          kind: seq`;
    if (p.fixed !== undefined) s += `\n          fixed: ${JSON.stringify(p.fixed)}`;
    if (p.pushMethod) s += `\n      pushMethod:\n${indent(p.pushMethod, 8)}`;
    return s;
  })
  .join('\n')}
${methods}`;
  return `${model}---\n${device}`;
}

export interface MapperRig {
  readonly dir: string;
  readonly ec: TestEdgecore;
  readonly mapper: MapperHandle;
  readonly bufferDir: string;
  stop(): Promise<void>;
}

/** A TestEdgecore serving `yaml` and a mapper with the counter driver; REST on a free port. */
export async function startMapper(
  yaml: string,
  opts: { configExtra?: string; consumers?: SampleConsumer[]; bufferDir?: string; driverState?: CounterState; /** Collects the mapper's JSON log lines (level info). */ logs?: string[] } = {},
): Promise<MapperRig> {
  const { dir, cleanup } = tempDir();
  const { devices, models } = TestEdgecore.fromCrdYaml(yaml);
  const ec = await TestEdgecore.start({ socketPath: join(dir, 'dmi.sock'), devices, models, limiter: false });
  const bufferDir = opts.bufferDir ?? join(dir, 'buffer');
  const config = `grpc_server:
  socket_path: ${join(dir, 'mapper.sock')}
common:
  name: dp-mapper
  protocol: counter
  edgecore_sock: ${join(dir, 'dmi.sock')}
  http_port: 0
runtime:
  report_rate: 1000
  report_burst: 1000
  backoff_initial_ms: 50
  backoff_max_ms: 200
${opts.configExtra ?? ''}`;
  const withBuffer = config.includes('data_plane:') ? config.replace('data_plane:\n', `data_plane:\n  buffer_dir: ${bufferDir}\n`) : `${config}\ndata_plane:\n  buffer_dir: ${bufferDir}\n  retry_initial_ms: 50\n  retry_max_ms: 500\n`;
  const mapper = await createMapper({
    driver: counterDriver(opts.driverState),
    config: withBuffer,
    logger: opts.logs
      ? createLogger({ level: 'info', destination: { write: (line: string) => void opts.logs!.push(line) } })
      : createLogger({ level: process.env['MK_TEST_LOG'] ? 'debug' : 'silent' }),
    consumers: opts.consumers ?? [],
  });
  await mapper.whenRegistered();
  return {
    dir,
    ec,
    mapper,
    bufferDir,
    async stop() {
      await mapper.stop();
      await ec.close();
      cleanup();
    },
  };
}

/** Records every sample fanned out (what the data plane received). */
export function recorder(): SampleConsumer & { samples: { deviceId: string; property: string; text: string; timestamp: number }[] } {
  const samples: { deviceId: string; property: string; text: string; timestamp: number }[] = [];
  return {
    name: 'recorder',
    samples,
    accept(batch) {
      for (const s of batch) samples.push({ deviceId: s.deviceId, property: s.property, text: s.text, timestamp: s.timestamp });
    },
  };
}
