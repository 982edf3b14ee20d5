// SPDX-License-Identifier: Apache-2.0
// Runs the independent reflection client (fixtures/python_reflection.py: Debian's Python grpcio) against a
// unix socket. Shared by the framework's and edgecore-dmi's reflection tests.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** The reflection API's proto as the @grpc/reflection package ships it (the gRPC project's file). */
const reflectionProto = join(dirname(createRequire(import.meta.url).resolve('@grpc/reflection/package.json')), 'build', 'proto', 'grpc', 'reflection', 'v1', 'reflection.proto');

/** Lists the services on `socket` and asks for the files of `symbols`; asynchronous, so a server in this process keeps answering. */
export function pythonReflection(socket: string, symbols: readonly string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn('/usr/bin/python3', [join(here, 'fixtures', 'python_reflection.py'), reflectionProto, socket, ...symbols], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => c.kill('SIGKILL'), 30_000);
    c.on('exit', (status) => {
      clearTimeout(t);
      resolve({ status, stdout, stderr });
    });
  });
}
