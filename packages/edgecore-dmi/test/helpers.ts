// SPDX-License-Identifier: Apache-2.0
// Test helpers: temp dirs, an edgecore-dmi server, and a real mapper (the virtual-mapper
// example's driver run by the framework's createMapper).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, createMapper, type MapperHandle } from '@mapperkit/framework';
import { virtualDriver } from '@mapperkit/example-virtual-mapper';
import { type EdgecoreDmi, type EdgecoreDmiOptions, startEdgecoreDmi } from '../src/index.js';

export const silent = createLogger({ level: process.env['TEST_LOG'] ? 'debug' : 'silent' });

export class TempDir {
  readonly path: string;
  constructor(prefix = 'edgecore-dmi-') {
    this.path = mkdtempSync(join(tmpdir(), prefix));
  }
  file(name: string, content: string): string {
    const p = join(this.path, name);
    writeFileSync(p, content);
    return p;
  }
  join(...parts: string[]): string {
    return join(this.path, ...parts);
  }
  remove(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}

export function startServer(dir: TempDir, opts: Partial<EdgecoreDmiOptions> = {}): Promise<EdgecoreDmi> {
  return startEdgecoreDmi({
    socketPath: dir.join('dmi.sock'),
    dbPath: dir.join('store.db'),
    http: false,
    logger: silent,
    retryInitialMs: 100,
    retryMaxMs: 500,
    pollMs: 500,
    ...opts,
  });
}

/** Starts the virtual mapper (protocol `virtual`) against `edgecoreSock`. */
export function startVirtualMapper(dir: TempDir, edgecoreSock: string, name = 'virtual-mapper', socketName = 'virtual.sock'): Promise<MapperHandle> {
  return createMapper({
    driver: virtualDriver,
    logger: silent,
    // YAML, so that the framework's schema fills in every default.
    config: `grpc_server:
  socket_path: ${dir.join(socketName)}
common:
  name: ${name}
  version: v1.0.0
  api_version: v1.0.0
  protocol: virtual
  edgecore_sock: ${edgecoreSock}
  http_port: 0
runtime:
  report_rate: 50
  report_burst: 100
  read_timeout_ms: 1000
  write_timeout_ms: 1000
  connect_timeout_ms: 1000
  state_check_ms: 200
  backoff_initial_ms: 100
  backoff_max_ms: 500
  dmi_timeout_ms: 2000
`,
  });
}

export const MODEL_YAML = `apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata:
  name: thermo
spec:
  protocol: virtual
  protocolConfigData:
    latencyMs: 0
  properties:
    - name: temperature
      type: FLOAT
      accessMode: ReadOnly
    - name: setpoint
      type: FLOAT
      accessMode: ReadWrite
      minimum: "5"
      maximum: "30"
      visitors:
        protocolName: virtual
        configData:
          kind: constant
          initial: 20
`;

export function deviceYaml(name: string, opts: { protocol?: string; seed?: number; model?: string; cycle?: number; extra?: string } = {}): string {
  return `apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata:
  name: ${name}
spec:
  deviceModelRef:
    name: ${opts.model ?? 'thermo'}
  protocol:
    protocolName: ${opts.protocol ?? 'virtual'}
    configData:
      seed: ${opts.seed ?? 1}
  properties:
    - name: temperature
      collectCycle: ${opts.cycle ?? 100}
      reportCycle: ${opts.cycle ?? 100}
      reportToCloud: true
      visitors:
        protocolName: virtual
        configData:
          kind: counter
          min: 0
          max: 1000000
    - name: setpoint
      collectCycle: ${opts.cycle ?? 100}
      reportCycle: ${opts.cycle ?? 100}
      reportToCloud: true
${opts.extra ?? ''}`;
}

/** Polls `fn` until it returns a truthy value. */
export async function eventually<T>(fn: () => T | Promise<T>, timeoutMs = 10_000, what = 'condition'): Promise<NonNullable<T>> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
