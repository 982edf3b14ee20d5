// SPDX-License-Identifier: Apache-2.0
// The mapper's REST API, through a real server: a Modbus mapper (createMapper + the Modbus
// driver) on two simulated thermostats (modbus-sim's ThermostatSimulator), registered with a
// TestEdgecore, REST on a free port with a write token. Fuzzed requests must get a well-formed
// answer (JSON, a 4xx/503/504 status, never 500, never a dropped connection), write routes
// must refuse every request without the right token with 401, and the server must still be
// healthy afterwards.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, createMapper, type MapperHandle } from '@mapperkit/framework';
import { TestEdgecore } from '@mapperkit/framework/testing';
import { modbusDriver, ThermostatSimulator } from '@mapperkit/mapper-modbus';
import { fleetYaml } from '../../fleet.js';
import { freePort, until } from '../../procs.js';
import { decodedSegments, type FuzzRequest, type FuzzResponse, HttpFuzzClient, pathOf, requestArb } from '../http-fuzz.js';
import { type FuzzTarget, fuzzProperty, share } from '../harness.js';

const TOKEN = 'fuzz-token-0123456789abcdef';

/** Whether the request reaches one of the mapper's write routes (upstream's table). */
export function isWriteRoute(method: string, seg: readonly string[]): boolean {
  if (seg[0] !== 'api' || seg[1] !== 'v1') return false;
  if (seg[2] === 'device' && seg.length === 6) return method === 'PUT' || method === 'POST';
  if (seg[2] === 'devicemethod' && seg.length === 7) return method === 'PUT' || method === 'POST';
  if (seg[2] === 'devicemethod' && seg.length === 8) return method === 'GET';
  return false;
}

export function checkRestAnswer(r: FuzzRequest, res: FuzzResponse, stats: Record<string, number>, token: string | undefined): void {
  stats[`status ${res.status || res.error}`] = (stats[`status ${res.status || res.error}`] ?? 0) + 1;
  const bigBody = (r.body?.length ?? 0) > 64 * 1024;
  if (res.error || res.status === 0) {
    // The server may close the connection on a body it refused to read (413).
    if (bigBody) return;
    // Raw requests are written on their own connection, which the client then half-closes (FIN after the request).
    throw new Error(`no answer${r.raw ? ' to a request sent raw (client half-closed after sending)' : ''} (${(res.error ?? 'status 0').replace(/\d+/g, 'N')})\n${r.method} ${pathOf(r).slice(0, 200)}`);
  }
  if (res.status >= 500 && res.status !== 503 && res.status !== 504) throw new Error(`status ${res.status}: ${res.body.slice(0, 300)}\n${r.method} ${pathOf(r).slice(0, 200)}`);
  const seg = decodedSegments(r);
  const method = r.method.toUpperCase();
  if (res.status === 200 && method !== 'HEAD' && !res.contentType.startsWith('text/plain')) {
    try {
      JSON.parse(res.body);
    } catch {
      throw new Error(`200 with a body that is not JSON\n${r.method} ${pathOf(r).slice(0, 200)}: ${res.body.slice(0, 200)}`);
    }
  }
  // Node's HTTP parser answers 400/414/431 itself with an empty body; everything else is the mapper's JSON.
  if (res.status >= 400 && method !== 'HEAD' && res.body !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(res.body);
    } catch {
      throw new Error(`${res.status} with a body that is not JSON\n${r.method} ${pathOf(r).slice(0, 200)}: ${res.body.slice(0, 200)}`);
    }
    void parsed;
  }
  const rightToken = token !== undefined && (r.auth === 'right' || r.auth === 'lowercase');
  if (seg && isWriteRoute(method, seg) && !rightToken && token !== undefined) {
    if (res.status === 200) throw new Error(`write route answered 200 without the token\n${r.method} ${pathOf(r).slice(0, 200)}`);
    // 401, unless Node refused the request before any handler ran: head too large (431/414), or a request line its
    // parser rejects, e.g. a lower-case method sent raw (400 with an empty body; the mapper's own answers are JSON).
    const refusedByParser = res.status === 431 || res.status === 414 || (res.status === 400 && res.body === '');
    if (res.status !== 401 && !refusedByParser) throw new Error(`write route without the token answered ${res.status}, expected 401\n${r.method} ${pathOf(r).slice(0, 200)}`);
    stats['write refused without token'] = (stats['write refused without token'] ?? 0) + 1;
  }
  if (seg && isWriteRoute(method, seg) && rightToken && res.status === 200) stats['write accepted with token'] = (stats['write accepted with token'] ?? 0) + 1;
}

export const restApiTarget: FuzzTarget = {
  name: 'rest-api',
  description: "the mapper's REST server (createMapper + Modbus driver on two simulated thermostats, TestEdgecore, write token): fuzzed method, path segments, percent-encoding, query, Authorization, Content-Type and body",
  async run(ctx) {
    const dir = mkdtempSync(join(tmpdir(), 'mk-fuzz-rest-'));
    const sims = [new ThermostatSimulator({ port: await freePort() }), new ThermostatSimulator({ port: await freePort() })];
    let mapper: MapperHandle | undefined;
    let ec: TestEdgecore | undefined;
    const client = { c: undefined as HttpFuzzClient | undefined };
    try {
      for (const s of sims) await s.start();
      const ports = sims.map((s) => s.port);
      const { devices, models } = TestEdgecore.fromCrdYaml(fleetYaml({ ports, cycleMs: 500, mqttPort: 1, redisPort: 1, push: false }));
      ec = await TestEdgecore.start({ socketPath: join(dir, 'dmi.sock'), devices, models, limiter: false });
      const restPort = await freePort();
      writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
      mapper = await createMapper({
        driver: modbusDriver,
        logger: createLogger({ level: 'silent' }),
        config: [
          'grpc_server:',
          `  socket_path: ${join(dir, 'mapper.sock')}`,
          'common:',
          '  name: fuzz-modbus',
          '  protocol: modbus',
          `  edgecore_sock: ${join(dir, 'dmi.sock')}`,
          `  http_port: ${restPort}`,
          'rest:',
          `  write_token_file: ${join(dir, 'token')}`,
          'data_plane:',
          `  buffer_dir: ${join(dir, 'buffer')}`,
          '',
        ].join('\n'),
      });
      await mapper.whenRegistered();
      await until(() => mapper!.devices().length === 2 && mapper!.devices().every((d) => d.state === 'ok'), 30_000, 'both fuzz devices ok');
      client.c = new HttpFuzzClient(restPort, TOKEN);
      const words = ['api', 'v1', 'device', 'devicemethod', 'meta', 'model', 'database', 'ping', 'healthz', 'readyz', 'metrics', 'default', 'temperature', 'setpoint', 'humidity', 'heating', 'set-temperature'];
      const ids = ['soak-000', 'soak-001', 'soak-002', 'default', 'kube-system', '21.5', '40', 'true', 'off', '-1'];
      const arb = requestArb({
        words,
        ids,
        templates: [
          'api/v1/ping',
          'api/v1/device',
          'api/v1/device/{ns}/{name}',
          'api/v1/device/{ns}/{name}/{prop}',
          'api/v1/device/{ns}/{name}/{prop}',
          'api/v1/devicemethod/{ns}/{name}',
          'api/v1/devicemethod/{ns}/{name}/{method}/{prop}',
          'api/v1/devicemethod/{ns}/{name}/{method}/{prop}/{data}',
          'api/v1/devicemethod/{ns}/{name}/{method}/{prop}/{data}',
          'api/v1/meta/model/{ns}/{name}',
          'api/v1/database/{ns}/{name}',
          'healthz',
          'readyz',
          'metrics',
        ],
        slots: {
          ns: ['default', 'default', 'default', 'kube-system', ''],
          name: ['soak-000', 'soak-001', 'soak-002', 'soak-thermostat'],
          prop: ['temperature', 'setpoint', 'setpoint', 'humidity', 'heating', 'nope'],
          method: ['set-temperature', 'heating', 'nope'],
          data: ['21.5', '22', '40', '-1', 'true', 'off', '1e400', 'abc', ''],
        },
      });
      const result = await fuzzProperty(
        'fuzzed request → well-formed answer; writes need the token',
        arb,
        async (r) => {
          const res = await client.c!.send(r);
          checkRestAnswer(r, res, ctx.stats, TOKEN);
        },
        { ...ctx, runs: share(ctx.runs, 1, 0) },
        { isAsync: true, batch: 5000, shrink: false, render: (r) => `${r.method} ${pathOf(r).slice(0, 300)} auth=${r.auth} ct=${r.contentType} body=${(r.body ?? '').slice(0, 200)}${(r.body?.length ?? 0) > 200 ? `…(${r.body!.length})` : ''} raw=${r.raw}` },
      );
      // Still serving, still reading devices.
      const health = await client.c.send({ method: 'GET', segments: ['healthz'], trailingSlash: false, query: '', auth: 'none', contentType: undefined, body: undefined, raw: false });
      if (health.status !== 200) result.failures.push({ signature: 'server unhealthy after the run', error: `GET /healthz → ${health.status} ${health.error ?? ''}`, counterexample: '(after all inputs)', seed: ctx.seed, hits: 1 });
      ctx.stats['devices ok after run'] = mapper.devices().filter((d) => d.state === 'ok').length;
      return [result];
    } finally {
      client.c?.close();
      await mapper?.stop();
      await ec?.close();
      for (const s of sims) await s.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
