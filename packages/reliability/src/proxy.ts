// SPDX-License-Identifier: Apache-2.0
// A TCP proxy in front of one simulated Modbus device that can cut the connection in the
// middle of a response frame: the next answer from the device is forwarded only up to half
// its length, then both sides are reset. The mapper sees a truncated MBAP frame followed by a
// dead connection, which is what a device rebooting or a cable pulled mid-answer looks like.
import { createServer, type Server, type Socket, connect as netConnect } from 'node:net';

export interface CutProxy {
  readonly port: number;
  /** Cuts the next response mid-frame; resolves with the bytes forwarded / the frame length. */
  cutNextResponse(timeoutMs?: number): Promise<{ forwarded: number; frameBytes: number }>;
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

export function startCutProxy(targetPort: number, listenPort = 0): Promise<CutProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let accepted = 0;
  let pendingCut: { resolve: (r: { forwarded: number; frameBytes: number }) => void } | undefined;

  const server: Server = createServer((client) => {
    accepted++;
    const upstream = netConnect(targetPort, '127.0.0.1');
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const drop = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d: Buffer) => {
      const cut = pendingCut;
      if (cut && d.length >= 2) {
        pendingCut = undefined;
        const half = Math.max(1, Math.floor(d.length / 2));
        client.write(d.subarray(0, half), () => {
          // RST, not FIN: the peer vanished.
          client.resetAndDestroy();
          upstream.destroy();
          cut.resolve({ forwarded: half, frameBytes: d.length });
        });
        return;
      }
      client.write(d);
    });
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenPort, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      resolve({
        port,
        connections: () => accepted,
        cutNextResponse(timeoutMs = 10_000) {
          return new Promise((res, rej) => {
            const t = setTimeout(() => {
              pendingCut = undefined;
              rej(new Error(`no response passed the proxy within ${timeoutMs} ms`));
            }, timeoutMs);
            pendingCut = {
              resolve: (r) => {
                clearTimeout(t);
                res(r);
              },
            };
          });
        },
        close: () =>
          new Promise<void>((r) => {
            for (const [a, b] of pairs) {
              a.destroy();
              b.destroy();
            }
            server.close(() => r());
          }),
      });
    });
  });
}
