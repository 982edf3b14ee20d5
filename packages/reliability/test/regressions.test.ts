// SPDX-License-Identifier: Apache-2.0
// Regression tests for the bugs the fuzzer and the crash probes found in other packages, all
// fixed since (src/fuzz/known.ts FIXED_BUGS names each with its fixing commit). Each test
// states the contract the package documents, so the bug cannot come back unnoticed.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger, createMapper, defineDriver, isMapperError, type MapperHandle, parseMapperConfig, z } from '@mapperkit/framework';
import { decodeCustomizedValue, Device, deviceToProto, encodeAnyAs, parseCrdYaml } from '@mapperkit/framework/dmi';
import { TestEdgecore } from '@mapperkit/framework/testing';
import { startEdgecoreDmi } from '@mapperkit/edgecore-dmi';
import { httpRequest } from '../src/http-client.ts';
import { PROBES } from '../src/fuzz/probes.ts';
import { runProbe } from '../src/fuzz/runner.ts';
import { freePort, sleep } from '../src/procs.ts';

const API = 'devices.kubeedge.io/v1beta1';
const device = (extra: Record<string, unknown>): Record<string, unknown> => ({
  apiVersion: API,
  kind: 'Device',
  metadata: { name: 'dev-1', namespace: 'default' },
  spec: { deviceModelRef: { name: 'm' }, protocol: { protocolName: 'modbus', configData: { ip: '127.0.0.1' } }, ...extra },
});

/** Runs fn; passes if it returns, or throws a MapperError (a clean refusal). */
function refusesCleanly(fn: () => unknown, what: string): void {
  try {
    fn();
  } catch (err) {
    assert.ok(isMapperError(err), `${what} threw ${(err as Error).constructor.name}: ${(err as Error).message} (expected a MapperError)`);
  }
}

describe('yaml-alias-throws: YAML aliases are reported, not thrown', () => {
  it('parseCrdYaml reports an undefined alias as a problem (documented: never throws)', () => {
    for (const text of ['*a', 'apiVersion: *nope\nkind: Device\n']) {
      assert.doesNotThrow(() => parseCrdYaml(text, 'alias.yaml'), `parseCrdYaml(${JSON.stringify(text)})`);
      assert.ok(parseCrdYaml(text, 'alias.yaml').problems.length > 0);
    }
  });
  it('parseCrdYaml reports an alias expansion beyond the limit as a problem', () => {
    const bomb = ['l0: &l0 [x,x,x,x,x,x,x,x]', ...Array.from({ length: 6 }, (_, i) => `l${i + 1}: &l${i + 1} [${Array(8).fill(`*l${i}`).join(',')}]`)].join('\n');
    assert.doesNotThrow(() => parseCrdYaml(bomb, 'bomb.yaml'));
  });
  it('parseMapperConfig refuses them with InvalidConfig naming config.yaml', () => {
    for (const text of ['*a', 'common: *b\n']) {
      assert.throws(
        () => parseMapperConfig(text, 'config.yaml'),
        (e: unknown) => isMapperError(e) && e.kind === 'InvalidConfig' && e.message.startsWith('config.yaml'),
        `parseMapperConfig(${JSON.stringify(text)})`,
      );
    }
  });
});

describe('float32-overflow and int64-overflow: CRD numbers beyond the wire types', () => {
  it('a configData number beyond float32 is converted (as Go: +Inf) or refused with a MapperError', () => {
    refusesCleanly(() => deviceToProto(device({ protocol: { protocolName: 'modbus', configData: { ip: 3.5e38 } } })), 'deviceToProto(configData 3.5e38)');
    refusesCleanly(() => encodeAnyAs('Float', 3.5e38), 'encodeAnyAs(Float, 3.5e38)');
  });
  it('an integer beyond int64 is refused by the converter, not left for Device.encode to throw on', () => {
    for (const reportCycle of [1e30, -9223372036854778000]) {
      refusesCleanly(() => {
        const proto = deviceToProto(device({ stateReport: { reportToCloud: true, reportCycle } }));
        Device.encode(proto).finish();
      }, `reportCycle ${reportCycle}`);
    }
  });
});

describe('proto-key-dropped: every configData key is decoded or reported', () => {
  it('a key named __proto__ is not silently lost', () => {
    // What a decoded CustomizedValue holds for a CRD with a `__proto__` configData key (an own property).
    const cv = { data: Object.fromEntries([['__proto__', encodeAnyAs('String', 'x')], ['ip', encodeAnyAs('String', '127.0.0.1')]]) };
    assert.ok(Object.hasOwn(cv.data, '__proto__'));
    const skipped: string[] = [];
    const out = decodeCustomizedValue(cv, (k) => skipped.push(k));
    assert.ok(Object.hasOwn(out, '__proto__') || skipped.includes('__proto__'), `__proto__ neither decoded nor reported (decoded keys: ${JSON.stringify(Object.keys(out))})`);
  });
});

describe('edgecore-http-500: edgecore-dmi answers bad paths with 4xx', () => {
  let dir: string;
  let edge: Awaited<ReturnType<typeof startEdgecoreDmi>>;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mk-reg-'));
    edge = await startEdgecoreDmi({ socketPath: join(dir, 'dmi.sock'), http: '127.0.0.1:0', dbPath: ':memory:', logLevel: 'silent' });
  });
  after(async () => {
    await edge?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  for (const path of ['//', '//x?y=1', '/api/v1/devices/%zz', '/api/v1/devices/default/%C0%AF/history?property=x']) {
    it(`GET ${path} → 4xx`, async () => {
      const res = await httpRequest(`${edge.url}${path}`);
      assert.ok(res.status >= 400 && res.status < 500, `GET ${path} answered ${res.status}: ${res.body.slice(0, 200)}`);
    });
  }
});

describe('yaml-deep-nesting-abort: 2 KB of nested YAML must not kill the process (crash probes, each in its own process)', () => {
  for (const p of PROBES) {
    it(p.name, async () => {
      const r = await runProbe(p.name, p.description);
      assert.ok(r.ok, `${p.description}: ${r.outcome}`);
    });
  }
});

describe('timer overflow: a cycle beyond 2^31 ms must not become a 1 ms timer', () => {
  let dir: string;
  let ec: TestEdgecore;
  let mapper: MapperHandle;
  let reads = 0;
  // Node turns a timer beyond 2^31-1 ms into a 1 ms timer and says so with this warning.
  const overflows: string[] = [];
  const onWarning = (w: Error): void => {
    if (w.name === 'TimeoutOverflowWarning') overflows.push(w.message);
  };
  before(async () => {
    process.on('warning', onWarning);
    dir = mkdtempSync(join(tmpdir(), 'mk-reg-timer-'));
    const driver = defineDriver({
      protocol: 'counter',
      protocolConfig: z.object({}).passthrough(),
      visitorConfig: z.object({}).passthrough(),
      async connect() {
        return {
          read: async (reqs) => {
            reads++;
            return reqs.map(() => ({ ok: true as const, value: 1 }));
          },
          write: async () => undefined,
          state: async () => 'ok' as const,
          close: async () => undefined,
        };
      },
    });
    // 3e15 (taken for pre-v1.17 nanoseconds, ~35 days) → 3e9 ms after the conversion: above setTimeout's 2^31-1 ms.
    const { devices, models } = TestEdgecore.fromCrdYaml(
      [
        `apiVersion: ${API}`,
        'kind: DeviceModel',
        'metadata: {name: m, namespace: default}',
        'spec: {properties: [{name: p, type: INT, accessMode: ReadOnly}]}',
        '---',
        `apiVersion: ${API}`,
        'kind: Device',
        'metadata: {name: slow, namespace: default}',
        'spec:',
        '  deviceModelRef: {name: m}',
        '  protocol: {protocolName: counter, configData: {x: 1}}',
        '  properties: [{name: p, collectCycle: 3000000000000000, reportCycle: 3000000000000000, reportToCloud: true, visitors: {protocolName: counter, configData: {x: 1}}}]',
        '',
      ].join('\n'),
    );
    ec = await TestEdgecore.start({ socketPath: join(dir, 'dmi.sock'), devices, models, limiter: false });
    mapper = await createMapper({
      driver,
      logger: createLogger({ level: 'silent' }),
      config: { grpc_server: { socket_path: join(dir, 'm.sock') }, common: { name: 'timer', protocol: 'counter', edgecore_sock: join(dir, 'dmi.sock'), http_port: 0 }, rest: { enabled: false } } as never,
    });
    await mapper.whenRegistered();
  });
  after(async () => {
    process.off('warning', onWarning);
    await mapper?.stop();
    await ec?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  it('schedules no timer beyond 2^31-1 ms (Node would fire it every millisecond)', async () => {
    reads = 0;
    await sleep(500);
    assert.ok(reads <= 2, `${reads} reads in 0.5 s for a collectCycle of 3e9 ms`);
    assert.deepEqual(overflows, [], 'TimeoutOverflowWarning: the scheduler / reporter set a timer beyond 2^31-1 ms, which Node runs every 1 ms');
  });
});

// Found by `npm run fuzz` (rest-api), fixed in efd49af (src/fuzz/known.ts FIXED_BUGS); the control beside
// it shows the setup answers normally.
describe('rest-half-close-drops-write: a write whose client half-closes after sending gets its answer', () => {
  let dir: string;
  let ec: TestEdgecore;
  let mapper: MapperHandle;
  let port: number;
  const writes: string[] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mk-reg-halfclose-'));
    const driver = defineDriver({
      protocol: 'slowwrite',
      protocolConfig: z.object({}).passthrough(),
      visitorConfig: z.object({}).passthrough(),
      async connect() {
        return {
          read: async (reqs) => reqs.map(() => ({ ok: true as const, value: 1 })),
          // A device write takes a few milliseconds, as a real one does.
          write: async (_req, value) => {
            await sleep(5);
            writes.push(String(value));
          },
          state: async () => 'ok' as const,
          close: async () => undefined,
        };
      },
    });
    const { devices, models } = TestEdgecore.fromCrdYaml(
      [
        `apiVersion: ${API}`,
        'kind: DeviceModel',
        'metadata: {name: m, namespace: default}',
        'spec: {properties: [{name: p, type: INT, accessMode: ReadWrite}]}',
        '---',
        `apiVersion: ${API}`,
        'kind: Device',
        'metadata: {name: d, namespace: default}',
        'spec:',
        '  deviceModelRef: {name: m}',
        '  protocol: {protocolName: slowwrite, configData: {x: 1}}',
        '  properties: [{name: p, collectCycle: 1000, reportCycle: 1000, visitors: {protocolName: slowwrite, configData: {x: 1}}}]',
        '',
      ].join('\n'),
    );
    ec = await TestEdgecore.start({ socketPath: join(dir, 'dmi.sock'), devices, models, limiter: false });
    port = await freePort();
    mapper = await createMapper({
      driver,
      logger: createLogger({ level: 'silent' }),
      config: { grpc_server: { socket_path: join(dir, 'm.sock') }, common: { name: 'halfclose', protocol: 'slowwrite', edgecore_sock: join(dir, 'dmi.sock'), http_port: port } } as never,
    });
    await mapper.whenRegistered();
  });
  after(async () => {
    await mapper?.stop();
    await ec?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  /** POST {"value": v} on a raw connection; `halfClose` sends FIN right after the request, as `nc -N` does. */
  const post = (value: string, halfClose: boolean): Promise<string> =>
    new Promise((resolve) => {
      const body = JSON.stringify({ value });
      const req = `POST /api/v1/device/default/d/p HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
      const s = connect(port, '127.0.0.1');
      let out = '';
      const t = setTimeout(() => s.destroy(), 5000);
      s.on('connect', () => (halfClose ? s.end(req) : s.write(req)));
      s.on('data', (d: Buffer) => (out += d.toString('latin1')));
      s.on('error', () => undefined);
      s.on('close', () => {
        clearTimeout(t);
        resolve(out.split('\r\n')[0] ?? '');
      });
    });
  it('control: the same write on a connection the client keeps open is answered 200 and reaches the device', async () => {
    assert.equal(await post('7', false), 'HTTP/1.1 200 OK');
    assert.ok(writes.includes('7'), `device writes: ${writes.join(',')}`);
  });
  it('half-closed: answered 200 as well', async () => {
    assert.equal(await post('8', true), 'HTTP/1.1 200 OK');
  });
});
