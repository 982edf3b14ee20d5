// A simulated {{protocol}} device: answers the example line protocol of src/driver.ts over TCP.
// The conformance test and the end-to-end test run against it; `npm run simulator` starts one
// on 127.0.0.1:5020 so that `npm run dev` has a device to talk to.
//
// TODO: once the driver speaks your protocol, make this a simulator of that protocol (or start a
// real simulator/test device here), so the tests keep running without hardware.
import { createServer, type Socket } from 'node:net';
import { pathToFileURL } from 'node:url';

/** Values the simulated device starts with (address → text). */
export const DEFAULT_VALUES: Readonly<Record<string, string>> = {
  temperature: '21.5',
  setpoint: '20',
  enabled: 'true',
{{#if stream}}
  // The stream location the device reports; tests point it at a clip made with ffmpeg.
  camera: '',
{{/if}}
};

export interface Simulator {
  readonly host: string;
  readonly port: number;
  /** Current values; tests may read and change them. */
  readonly values: Map<string, string>;
  close(): Promise<void>;
}

/** Starts a simulated device; port 0 (the default) picks a free port. */
export async function startSimulator(options: { host?: string; port?: number; values?: Record<string, string> } = {}): Promise<Simulator> {
  const host = options.host ?? '127.0.0.1';
  const values = new Map(Object.entries({ ...DEFAULT_VALUES, ...options.values }));
  const sockets = new Set<Socket>();
  const answer = (line: string): string => {
    const [cmd, address = '', ...rest] = line.trim().split(' ');
    if (cmd === 'PING') return 'OK';
    if (!values.has(address)) return `ERR unknown address "${address}"`;
    if (cmd === 'READ') return `OK ${values.get(address)}`;
    if (cmd === 'WRITE' && rest.length > 0) {
      values.set(address, rest.join(' '));
      return 'OK';
    }
    return `ERR unknown command "${line}"`;
  };
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.setEncoding('utf8');
    let buffer = '';
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        socket.write(`${answer(line)}\n`);
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    host,
    port,
    values,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

// `npm run simulator [-- --port 5020]`: run one until Ctrl-C.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const i = process.argv.indexOf('--port');
  const port = i > 0 ? Number(process.argv[i + 1]) : 5020;
  const sim = await startSimulator({ port });
  console.log(`simulated {{protocol}} device listening on ${sim.host}:${sim.port}`);
  const stop = (): void => void sim.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
