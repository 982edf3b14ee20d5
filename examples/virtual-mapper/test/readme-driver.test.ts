// SPDX-License-Identifier: Apache-2.0
// The driver example in the root README must work: extract it, run it against a small TCP
// line device, and put it through the driver conformance suite.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DriverDefinition } from '@mapperkit/framework';
import { describeDriverConformance } from '@mapperkit/framework/testing';

const here = dirname(fileURLToPath(import.meta.url));
const readme = readFileSync(join(here, '..', '..', '..', 'README.md'), 'utf8');
const block = /```ts\n(\/\/ src\/driver\.ts\n[\s\S]*?)```/.exec(readme)?.[1];
if (!block) throw new Error('README driver example not found');
const dir = join(here, '..', '.tmp');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'readme-driver.ts'), block);
const driver = ((await import(join(dir, 'readme-driver.ts'))) as { default: DriverDefinition<unknown, unknown> }).default;

// The imaginary device: "GET 1,2" → "v1,v2"; "SET 2 7" → "OK".
function lineDevice(): Promise<{ server: Server; port: number }> {
  const channels = new Map<number, number>([
    [1, 21.5],
    [2, 3],
  ]);
  const server = createServer((sock) => {
    sock.on('data', (d) => {
      const [cmd, arg, val] = d.toString().trim().split(' ');
      if (cmd === 'GET') sock.write(`${(arg ?? '').split(',').map((c) => channels.get(Number(c)) ?? 0).join(',')}\n`);
      else if (cmd === 'SET') {
        channels.set(Number(arg), Number(val));
        sock.write('OK\n');
      }
    });
  });
  return new Promise((res) => server.listen(0, '127.0.0.1', () => res({ server, port: (server.address() as { port: number }).port })));
}

describeDriverConformance('README example driver', {
  driver,
  setup: async () => {
    const { server, port } = await lineDevice();
    return { protocolConfig: { host: '127.0.0.1', port }, teardown: () => new Promise<void>((r) => server.close(() => r())) };
  },
  properties: [
    { name: 'temperature', type: 'float', visitor: { channel: 1 }, expect: 21.5 },
    { name: 'speed', type: 'int', visitor: { channel: 2 }, expect: 3 },
    { name: 'setpoint', type: 'float', visitor: { channel: 3 }, write: 19 },
  ],
  invalidProtocolConfig: { host: 'x', port: 'http' },
  invalidVisitor: { channel: -1 },
  unreachableProtocolConfig: { host: '127.0.0.1', port: 1 },
});
