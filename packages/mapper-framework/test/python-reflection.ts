// SPDX-License-Identifier: Apache-2.0
// Runs the independent reflection client (fixtures/python_reflection.py: Debian's Python grpcio) against a
// unix socket. Shared by the framework's and edgecore-dmi's reflection tests.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PY = '/usr/bin/python3';
const here = dirname(fileURLToPath(import.meta.url));
/** The reflection API's proto as the @grpc/reflection package ships it (the gRPC project's file). */
const reflectionProto = join(dirname(createRequire(import.meta.url).resolve('@grpc/reflection/package.json')), 'build', 'proto', 'grpc', 'reflection', 'v1', 'reflection.proto');

/** Lists the services on `socket` and asks for the files of `symbols`; asynchronous, so a server in this process keeps answering. */
export function pythonReflection(socket: string, symbols: readonly string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(PY, [join(here, 'fixtures', 'python_reflection.py'), reflectionProto, socket, ...symbols], { stdio: ['ignore', 'pipe', 'pipe'] });
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

/** The client's answer (see fixtures/python_reflection.py). */
export type ReflectionAnswer = Record<string, any>;

/** {@link pythonReflection} that must succeed: its JSON answer. */
export async function reflect(socket: string, ...symbols: string[]): Promise<ReflectionAnswer> {
  const r = await pythonReflection(socket, symbols);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as ReflectionAnswer;
}

/** Fails with the fix when Debian's Python grpcio or grpc_tools is missing. */
export function assertPythonGrpc(): void {
  const probe = spawnSync(PY, ['-c', 'import grpc, grpc_tools'], { encoding: 'utf8' });
  assert.equal(probe.status, 0, `Debian python3-grpcio and python3-grpc-tools are required (scripts/setup-peers.sh installs them): ${probe.stderr}`);
}
