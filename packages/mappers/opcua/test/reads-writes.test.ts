// SPDX-License-Identifier: Apache-2.0
// Batched reads (counted by the server), per-node status codes, node id forms, chunking under
// MaxNodesPerRead, and writes coerced to each node's DataType (checked on the server side).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isMapperError, type MapperErrorKind } from '@mapperkit/framework';
import type { OpcuaDeviceClient } from '../src/client.ts';
import { connect, crdYaml, type MapperRig, type PropSpec, request, signal, sleep, startMapper, TEST_NAMESPACE_URI, TestServer, until } from './helpers.ts';

const pki = mkdtempSync(join(tmpdir(), 'opcua-rw-pki-'));
let server: TestServer;
let small: TestServer;
let client: OpcuaDeviceClient;

before(async () => {
  // Two servers in parallel: a default one and one that allows 4 nodes per Read.
  [server, small] = await Promise.all([TestServer.start(), TestServer.start({ maxNodesPerRead: 4 })]);
  client = await connect({ url: server.endpointUrl, pkiDir: pki });
});

after(async () => {
  await client?.close();
  await Promise.all([server?.stop(), small?.stop()]);
  rmSync(pki, { recursive: true, force: true });
});

function rejectsKind(kind: MapperErrorKind, pattern: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(isMapperError(e), `expected a MapperError, got ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    assert.match(e.message, pattern);
    return true;
  };
}

describe('reads', () => {
  it('every node id form reaches its node', async () => {
    const reqs = [
      await request('numeric', 'int', { nodeID: 'ns=2;i=1001' }),
      await request('string', 'float', { nodeID: 'ns=2;s=Float' }),
      await request('guid', 'double', { nodeID: 'ns=2;g=72962B91-FA75-4AE6-8D28-B404DC7DAF63' }),
      await request('opaque', 'double', { nodeID: 'ns=2;b=bWFwcGVya2l0' }),
      await request('nsu', 'double', { nodeID: `nsu=${TEST_NAMESPACE_URI};s=Double` }),
      await request('nsuKey', 'string', { nodeID: 's=String', namespaceUri: TEST_NAMESPACE_URI }),
      await request('ns0', 'string', { nodeID: 'i=2261' }), // Server_ServerStatus_BuildInfo_ProductName
    ];
    const res = await client.read(reqs, signal());
    const values = res.map((r) => (r.ok ? r.value : `error: ${r.error.message}`));
    assert.equal(typeof values[0], 'number');
    assert.deepEqual(values.slice(1), [21.5, 1.5, 2.5, 3.25, 'hello', 'mapperkit-opcua-test-server']);
  });

  it('a bad status on one node is an error for that property only', async () => {
    const reqs = [
      await request('ok1', 'double', { nodeID: 'ns=2;s=Double' }),
      await request('missing', 'double', { nodeID: 'ns=2;s=NoSuchNode' }),
      await request('badNs', 'double', { nodeID: 'nsu=urn:not-on-this-server;s=X' }),
      await request('array', 'int', { nodeID: 'ns=2;s=Int32Array' }),
      await request('ok2', 'string', { nodeID: 'ns=2;s=LocalizedText' }),
    ];
    await server.resetStats();
    const res = await client.read(reqs, signal());
    assert.equal(res.length, 5);
    assert.deepEqual(res[0], { ok: true, value: 3.25, timestamp: (res[0] as { timestamp: number }).timestamp });
    assert.ok(!res[1]!.ok && res[1]!.error.kind === 'DeviceError' && /node ns=2;s=NoSuchNode: BadNodeIdUnknown/.test(res[1]!.error.message), JSON.stringify(res[1]));
    assert.ok(!res[2]!.ok && res[2]!.error.kind === 'InvalidConfig' && /namespace urn:not-on-this-server is not in the server's NamespaceArray/.test(res[2]!.error.message));
    assert.ok(!res[3]!.ok && /holds an array of 3 values; read it into a STRING property/.test(res[3]!.error.message));
    assert.ok(res[4]!.ok && res[4]!.value === 'Pump 1');
    const st = await server.stats();
    assert.equal(st.deviceReadRequests, 1, 'one Read call for the batch (the unresolvable namespace is not sent)');
    assert.equal(st.deviceReadNodes, 4);
  });

  it('an idle connection stays up longer than the request timeout', async () => {
    const c = await connect({ url: server.endpointUrl, pkiDir: pki, timeout: 1000 });
    try {
      const req = await request('d', 'double', { nodeID: 'ns=2;s=Double' });
      assert.ok((await c.read([req], signal()))[0]?.ok);
      await sleep(3000);
      assert.ok((await c.read([req], signal()))[0]?.ok, 'read after 3 s without traffic');
      assert.equal(await c.state(signal()), 'ok');
    } finally {
      await c.close();
    }
  });

  it('uses source timestamps', async () => {
    const [r] = await client.read([await request('dt', 'string', { nodeID: 'ns=2;s=DateTime' })], signal());
    assert.ok(r?.ok && typeof r.timestamp === 'number' && r.timestamp <= Date.now() && r.timestamp > Date.now() - 3_600_000);
  });

  it('splits a batch into Read calls of at most the server MaxNodesPerRead, keeping request order', async () => {
    const c = await connect({ url: small.endpointUrl, pkiDir: pki });
    try {
      const names = ['Boolean', 'SByte', 'Byte', 'Int16', 'UInt16', 'Int32', 'UInt32', 'Float', 'Double', 'String'];
      const reqs = await Promise.all(names.map((n) => request(n, 'string', { nodeID: `ns=2;s=${n}` })));
      await small.resetStats();
      const res = await c.read(reqs, signal());
      assert.deepEqual(
        res.map((r) => (r.ok ? r.value : r.error.message)),
        ['true', '-5', '200', '-1234', '54321', '-123456', '4000000000', '21.5', '3.25', 'hello'],
      );
      const st = await small.stats();
      assert.equal(st.deviceReadRequests, 3, '10 nodes with MaxNodesPerRead=4 → 3 Read calls');
      assert.equal(st.maxReadNodes, 4);
      assert.equal(st.deviceReadNodes, 10);
    } finally {
      await c.close();
    }
  });

  it('maxNodesPerRead in configData lowers the chunk size further', async () => {
    const c = await connect({ url: server.endpointUrl, pkiDir: pki, maxNodesPerRead: 2 });
    try {
      const reqs = await Promise.all(['Float', 'Double', 'String', 'Boolean', 'Int16'].map((n) => request(n, 'string', { nodeID: `ns=2;s=${n}` })));
      await server.resetStats();
      const res = await c.read(reqs, signal());
      assert.ok(res.every((r) => r.ok));
      const st = await server.stats();
      assert.equal(st.deviceReadRequests, 3);
      assert.equal(st.maxReadNodes, 2);
    } finally {
      await c.close();
    }
  });
});

describe('connect', () => {
  it('a peer that accepts TCP but never answers fails as Timeout after `timeout` ms', async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const { port } = silent.address() as { port: number };
    try {
      const started = Date.now();
      await assert.rejects(connect({ url: `opc.tcp://127.0.0.1:${port}`, pkiDir: pki, timeout: 1000 }), rejectsKind('Timeout', /no answer within 1000 ms/));
      const took = Date.now() - started;
      assert.ok(took >= 900 && took < 8000, `gave up after ${took} ms`);
    } finally {
      silent.close();
    }
  });
});

describe('one Read service call per collect tick (through the mapper)', () => {
  let rig: MapperRig;
  after(() => rig?.stop());

  it('reads all properties of a device due in a tick with one Read call, and reports them as twins', async () => {
    const props: PropSpec[] = ['Float', 'Double', 'Int16', 'UInt32', 'Boolean', 'String', 'Byte', 'SByte'].map((n) => ({
      name: n.toLowerCase(),
      type: n === 'Float' ? 'FLOAT' : n === 'Double' ? 'DOUBLE' : n === 'Boolean' ? 'BOOLEAN' : n === 'String' ? 'STRING' : 'INT',
      visitor: { nodeID: `ns=2;s=${n}` },
      collectCycle: 200,
    }));
    rig = await startMapper(crdYaml('opcua-model', props, [{ name: 'plc-1', protocol: { url: server.endpointUrl, pkiDir: pki } }]));
    await rig.ec.waitFor(() => rig.ec.twinsOf('default/plc-1').size === 8, 15_000, 'all twins of plc-1');
    const twins = rig.ec.twinsOf('default/plc-1');
    assert.equal(twins.get('float')?.reported, '21.5');
    assert.equal(twins.get('uint32')?.reported, '4000000000');
    assert.equal(twins.get('boolean')?.reported, 'true');
    assert.equal(twins.get('string')?.reported, 'hello');

    await server.resetStats();
    const before = rig.mapper.stats().readCalls;
    await sleep(1500);
    const st = await server.stats();
    const ticks = rig.mapper.stats().readCalls - before;
    assert.ok(ticks >= 5, `expected ≥ 5 collect ticks in 1.5 s at 200 ms, got ${ticks}`);
    // A tick in flight at either end of the window may be counted on one side only.
    assert.ok(Math.abs(st.deviceReadRequests - ticks) <= 2, `server saw ${st.deviceReadRequests} Read calls for ${ticks} ticks`);
    assert.equal(st.maxReadNodes, 8, 'each Read carries all 8 properties');
    assert.equal(st.deviceReadNodes, 8 * st.deviceReadRequests, 'no partial or per-node reads');
  });
});

describe('writes coerced to the node DataType', () => {
  const cases: { node: string; type: 'int' | 'float' | 'double' | 'boolean' | 'string' | 'bytes'; value: string | number | bigint | boolean | Uint8Array; want: unknown; dataType: string }[] = [
    { node: 'Int16', type: 'int', value: 321, want: 321, dataType: 'Int16' },
    { node: 'SByte', type: 'int', value: -100, want: -100, dataType: 'SByte' },
    { node: 'Byte', type: 'double', value: 17, want: 17, dataType: 'Byte' }, // DOUBLE property on a Byte node
    { node: 'UInt32', type: 'int', value: 4294967295, want: 4294967295, dataType: 'UInt32' },
    { node: 'Int64', type: 'int', value: -5_000_000_000n, want: [0xfffffffe, 0xd5fa0e00], dataType: 'Int64' },
    { node: 'UInt64', type: 'int', value: 2n ** 63n + 5n, want: [0x80000000, 5], dataType: 'UInt64' },
    { node: 'Float', type: 'float', value: 0.1, want: Math.fround(0.1), dataType: 'Float' },
    { node: 'Double', type: 'int', value: 7, want: 7, dataType: 'Double' }, // INT property on a Double node
    { node: 'Boolean', type: 'int', value: 0, want: false, dataType: 'Boolean' },
    { node: 'String', type: 'double', value: 12.5, want: '12.5', dataType: 'String' },
    { node: 'DateTime', type: 'string', value: '2025-06-07T08:09:10.000Z', want: '2025-06-07T08:09:10.000Z', dataType: 'DateTime' },
    { node: 'ByteString', type: 'bytes', value: new Uint8Array([9, 8, 7]), want: 'CQgH', dataType: 'ByteString' },
    { node: 'LocalizedText', type: 'string', value: 'Pump 2', want: 'Pump 2', dataType: 'LocalizedText' },
    { node: 'Int32Array', type: 'string', value: '[7, -8, 9]', want: [7, -8, 9], dataType: 'Int32' },
    { node: 'Duration', type: 'int', value: 2500, want: 2500, dataType: 'Double' }, // DataType Duration → built-in Double
  ];
  for (const c of cases) {
    it(`${c.type.toUpperCase()} ${String(c.value)} → ${c.node}`, async () => {
      const req = await request(c.node, c.type, { nodeID: `ns=2;s=${c.node}` });
      await client.write(req, c.value, signal());
      const got = await server.get(c.node);
      assert.equal(got.dataType, c.dataType, 'the node keeps its DataType');
      assert.deepEqual(got.value, c.want);
    });
  }

  it('refuses values outside the node type, naming the limit, and leaves the node unchanged', async () => {
    const req = await request('i16', 'int', { nodeID: 'ns=2;s=Int16' });
    await client.write(req, 1000, signal());
    await assert.rejects(client.write(req, 70000, signal()), rejectsKind('WriteRejected', /node ns=2;s=Int16 has DataType Int16: 70000 is outside -32768\.\.32767/));
    await assert.rejects(client.write(req, 1.5, signal()) as Promise<unknown>, rejectsKind('WriteRejected', /1\.5 is not an integer/));
    assert.deepEqual(await server.get('Int16'), { dataType: 'Int16', value: 1000 });
  });

  it('a node that refuses the write gives WriteRejected with its status', async () => {
    const req = await request('ro', 'double', { nodeID: 'ns=2;s=ReadOnly' });
    await assert.rejects(client.write(req, 1, signal()), rejectsKind('WriteRejected', /node ns=2;s=ReadOnly refused the write: BadNotWritable/));
    const missing = await request('missing', 'double', { nodeID: 'ns=2;s=NoSuchNode' });
    await assert.rejects(client.write(missing, 1, signal()), rejectsKind('DeviceError', /BadNodeIdUnknown/));
  });

  it('visitor dataType skips the type lookup', async () => {
    const req = await request('dbl', 'double', { nodeID: 'ns=2;s=Double', dataType: 'Double' });
    await server.resetStats();
    await client.write(req, 6.5, signal());
    const st = await server.stats();
    assert.equal(st.readRequests, 0, 'no DataType read before the write');
    assert.equal(st.writeRequests, 1);
    assert.deepEqual(await server.get('Double'), { dataType: 'Double', value: 6.5 });
  });

  it('a desired value in the Device CRD is written through the mapper', async () => {
    const rig = await startMapper(
      crdYaml('setpoint-model', [{ name: 'setpoint', type: 'FLOAT', access: 'ReadWrite', visitor: { nodeID: 'ns=2;s=Float' }, desired: '42.25' }], [
        { name: 'plc-desired', protocol: { url: server.endpointUrl, pkiDir: pki } },
      ]),
    );
    try {
      await rig.ec.waitFor(() => rig.ec.twinsOf('default/plc-desired').get('setpoint')?.observedDesired === '42.25', 15_000, 'observedDesired');
      await until(async () => (await server.get('Float')).value === 42.25, 5000, 'server-side value 42.25');
      await rig.ec.waitFor(() => rig.ec.twinsOf('default/plc-desired').get('setpoint')?.reported === '42.25', 5000, 'reported 42.25');
      await rig.mapper.writeProperty('default', 'plc-desired', 'setpoint', '19.5');
      assert.deepEqual(await server.get('Float'), { dataType: 'Float', value: 19.5 });
    } finally {
      await rig.stop();
    }
  });
});
