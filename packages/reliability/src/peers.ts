// SPDX-License-Identifier: Apache-2.0
// Debian redis-server and mosquitto as restartable peers on free loopback ports.
//
// Durability of the peers themselves is a precondition of "store-and-forward loses nothing":
// Redis runs with an append-only file fsynced before each reply (what it acknowledged
// survives SIGKILL); mosquitto keeps sessions and queued QoS 1 messages in its persistence
// file (saved on SIGTERM and every second), so the counting subscriber misses nothing while
// the broker is away.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, ManagedProcess, waitForPort } from './procs.js';

export interface Peer {
  readonly name: string;
  readonly port: number;
  readonly proc: ManagedProcess;
  start(): Promise<void>;
}

export async function redisPeer(opts: { dir: string; password?: string; port?: number }): Promise<Peer> {
  const port = opts.port ?? (await freePort());
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', opts.dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--protected-mode', 'yes'];
  if (opts.password) {
    // From a config file, not argv (argv is world-readable in /proc/<pid>/cmdline).
    const conf = join(opts.dir, 'redis.conf');
    writeFileSync(conf, `requirepass ${opts.password}\n`, { mode: 0o600 });
    args.unshift(conf);
  }
  const proc = new ManagedProcess({ name: 'redis-server', cmd: 'redis-server', args, logFile: join(opts.dir, 'redis.log') });
  return {
    name: 'redis-server',
    port,
    proc,
    async start() {
      proc.start();
      await waitForPort(port);
    },
  };
}

export async function mosquittoPeer(opts: { dir: string; port?: number }): Promise<Peer> {
  const port = opts.port ?? (await freePort());
  const conf = join(opts.dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      // As root, mosquitto switches to user "mosquitto", which cannot write the persistence file in
      // our private (0700) temp dir: without this line persistence silently fails.
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence true',
      `persistence_location ${opts.dir}/`,
      'autosave_interval 1',
      // Unlimited queue for an offline persistent subscriber (default 1000 would drop).
      'max_queued_messages 0',
      'max_inflight_messages 0',
      'log_dest stdout',
      'log_type error',
      'log_type warning',
      '',
    ].join('\n'),
  );
  const proc = new ManagedProcess({ name: 'mosquitto', cmd: 'mosquitto', args: ['-c', conf], logFile: join(opts.dir, 'mosquitto.log') });
  return {
    name: 'mosquitto',
    port,
    proc,
    async start() {
      proc.start();
      await waitForPort(port);
    },
  };
}
