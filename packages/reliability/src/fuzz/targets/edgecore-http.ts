// SPDX-License-Identifier: Apache-2.0
// edgecore-dmi's HTTP API (the dashboard's backend and the CLI's server): fuzzed GET paths and
// queries, POST apply/delete with fuzzed CRD YAML, PUT desired values. Every request must get
// a JSON answer with a 2xx/4xx status (never 500, never a dropped connection) and the server
// must keep serving.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { startEdgecoreDmi } from '@mapperkit/edgecore-dmi';
import { fleetYaml } from '../../fleet.js';
import { decodedSegments, type FuzzRequest, HttpFuzzClient, pathOf, requestArb } from '../http-fuzz.js';
import { type FuzzTarget, fuzzProperty, share } from '../harness.js';
import { crdText } from './crd-yaml.js';

export const edgecoreHttpTarget: FuzzTarget = {
  name: 'edgecore-dmi-http',
  description: "edgecore-dmi's HTTP API (startEdgecoreDmi, :memory: store, a watched fleet file): fuzzed GET paths and queries, POST apply/delete with fuzzed CRD YAML, PUT desired values",
  async run(ctx) {
    const dir = mkdtempSync(join(tmpdir(), 'mk-fuzz-edge-'));
    writeFileSync(join(dir, 'fleet.yaml'), fleetYaml({ ports: [15020, 15021], cycleMs: 1000, mqttPort: 1, redisPort: 1, push: false }));
    const edge = await startEdgecoreDmi({ socketPath: join(dir, 'dmi.sock'), devices: [join(dir, 'fleet.yaml')], http: '127.0.0.1:0', dbPath: ':memory:', logLevel: 'silent', pollMs: 0 });
    const port = Number(new URL(edge.url!).port);
    const client = new HttpFuzzClient(port, undefined);
    try {
      const words = ['api', 'v1', 'overview', 'devices', 'models', 'mappers', 'problems', 'calls', 'stats', 'history', 'properties', 'desired', 'apply', 'delete', 'healthz', 'index.html', 'default', 'temperature', 'setpoint'];
      const ids = ['soak-000', 'soak-001', 'soak-thermostat', 'default', 'nope'];
      const base = requestArb({
        words,
        ids,
        templates: [
          '',
          'healthz',
          'api/v1/{coll}',
          'api/v1/{coll}',
          'api/v1/devices/{ns}/{name}',
          'api/v1/devices/{name}',
          'api/v1/devices/{ns}/{name}/history',
          'api/v1/devices/{ns}/{name}/properties/{prop}/desired',
          'api/v1/calls',
        ],
        slots: {
          coll: ['overview', 'devices', 'models', 'mappers', 'problems', 'calls', 'stats'],
          ns: ['default', 'default', 'x'],
          name: ['soak-000', 'soak-001', 'soak-thermostat', 'nope'],
          prop: ['setpoint', 'temperature', 'heating', 'y'],
        },
      });
      // Half the bodies are CRD YAML (apply/delete), deep nesting beyond the YAML guard included.
      const arb: fc.Arbitrary<FuzzRequest> = fc.oneof(
        base,
        fc.tuple(base, fc.constantFrom('apply', 'delete'), crdText).map(([r, op, body]) => ({ ...r, method: 'POST', segments: ['api', 'v1', op], query: r.query.startsWith('?source') ? r.query : '', body, contentType: 'application/yaml', raw: false })),
        fc.tuple(base, fc.constantFrom('soak-000', 'soak-001', 'x'), fc.constantFrom('setpoint', 'temperature', 'heating', 'y')).map(([r, d, p]) => ({ ...r, method: 'PUT', segments: ['api', 'v1', 'devices', 'default', d, 'properties', p, 'desired'] })),
      ).filter((r) => !(decodedSegments(r) ?? []).includes('events'));
      const result = await fuzzProperty(
        'fuzzed request → JSON answer, no 5xx',
        arb,
        async (r) => {
          const res = await client.send(r);
          ctx.stats[`status ${res.status || res.error}`] = (ctx.stats[`status ${res.status || res.error}`] ?? 0) + 1;
          if (res.error || res.status === 0) throw new Error(`no answer (${(res.error ?? 'status 0').replace(/\d+/g, 'N')})\n${r.method} ${pathOf(r).slice(0, 200)}`);
          if (res.status >= 500) {
            let msg = res.body.slice(0, 300);
            try {
              msg = String((JSON.parse(res.body) as { error?: unknown }).error);
            } catch {
              // not JSON
            }
            throw new Error(`status ${res.status}: ${msg}\n${r.method} ${pathOf(r).slice(0, 200)}`);
          }
          // Node's HTTP parser answers malformed requests itself (400/414/431, empty body); everything else is edgecore-dmi's JSON.
          if (r.method.toUpperCase() !== 'HEAD' && !res.contentType.startsWith('text/html') && !(res.status >= 400 && res.body === '')) {
            try {
              JSON.parse(res.body);
            } catch {
              throw new Error(`${res.status} with a body that is not JSON\n${r.method} ${pathOf(r).slice(0, 200)}: ${res.body.slice(0, 200)}`);
            }
          }
        },
        { ...ctx, runs: share(ctx.runs, 1, 0) },
        { isAsync: true, batch: 5000, shrink: false, render: (r) => `${r.method} ${pathOf(r).slice(0, 300)} ct=${r.contentType} body=${JSON.stringify((r.body ?? '').slice(0, 300))} raw=${r.raw}` },
      );
      const health = await client.send({ method: 'GET', segments: ['healthz'], trailingSlash: false, query: '', auth: 'none', contentType: undefined, body: undefined, raw: false });
      if (health.status !== 200) result.failures.push({ signature: 'server unhealthy after the run', error: `GET /healthz → ${health.status} ${health.error ?? ''}`, counterexample: '(after all inputs)', seed: ctx.seed, hits: 1 });
      return [result];
    } finally {
      client.close();
      await edge.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
