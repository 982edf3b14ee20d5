// SPDX-License-Identifier: Apache-2.0
// DMI transport: gRPC over unix sockets, as edgecore and mappers use it.
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { MapperError } from '../errors.js';

/** gRPC target for a unix socket path. */
export function unixTarget(path: string): string {
  return `unix://${resolve(path)}`;
}

/**
 * Prepares a unix socket path for listening: creates the directory, removes a stale socket.
 * Refuses to delete anything that is not a socket.
 */
export async function prepareSocketPath(path: string): Promise<void> {
  const abs = resolve(path);
  await mkdir(dirname(abs), { recursive: true });
  try {
    const st = await lstat(abs);
    if (!st.isSocket()) throw new MapperError('InvalidConfig', `socket path ${abs} exists and is not a socket; refusing to delete it`, { key: abs });
    await unlink(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** A gRPC server bound to a unix socket (mode 0660), removed again on shutdown. */
export class UnixGrpcServer {
  readonly server = new Server();
  readonly path: string;
  private bound = false;

  constructor(path: string) {
    this.path = resolve(path);
  }

  async listen(): Promise<void> {
    await prepareSocketPath(this.path);
    await new Promise<void>((res, rej) => {
      this.server.bindAsync(unixTarget(this.path), ServerCredentials.createInsecure(), (err) => (err ? rej(err) : res()));
    });
    this.bound = true;
    await chmod(this.path, 0o660);
  }

  async close(graceMs = 2000): Promise<void> {
    if (!this.bound) return;
    this.bound = false;
    await new Promise<void>((res) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        res();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        res();
      });
    });
    await unlink(this.path).catch(() => undefined);
  }
}

