// SPDX-License-Identifier: Apache-2.0
// Schemas, node id forms and value coercion: pure functions, no server needed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMapperError, type MapperErrorKind } from '@mapperkit/framework';
import { DataType, Variant, VariantArrayType } from 'node-opcua';
import { protocolConfig, type VisitorConfig, visitorConfig } from '../src/config.ts';
import driver from '../src/driver.ts';
import { fromVariant, shortestFloat32, toVariant } from '../src/convert.ts';
import { parseNodeId } from '../src/node-id.ts';

async function ok(schema: typeof protocolConfig | typeof visitorConfig, raw: unknown) {
  const r = (await schema['~standard'].validate(raw)) as { value?: unknown; issues?: { message: string }[] };
  assert.equal(r.issues, undefined, `unexpected issues: ${JSON.stringify(r.issues)}`);
  return r.value as Record<string, unknown>;
}

async function issues(schema: typeof protocolConfig | typeof visitorConfig, raw: unknown): Promise<string> {
  const r = (await schema['~standard'].validate(raw)) as { issues?: { message: string; path?: PropertyKey[] }[] };
  assert.ok(r.issues && r.issues.length > 0, `expected issues for ${JSON.stringify(raw)}`);
  return r.issues.map((i) => `${(i.path ?? []).map(String).join('.')}: ${i.message}`).join('; ');
}

function throwsKind(fn: () => unknown, kind: MapperErrorKind, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => isMapperError(e) && e.kind === kind && pattern.test(e.message));
}

describe('node id forms', () => {
  it('parses numeric, string, GUID, opaque, namespace-index and namespace-URI forms', () => {
    assert.deepEqual(parseNodeId('ns=2;i=1001'), { namespace: { index: 2 }, kind: 'i', identifier: 1001, text: 'ns=2;i=1001' });
    assert.deepEqual(parseNodeId('i=2258'), { namespace: { index: 0 }, kind: 'i', identifier: 2258, text: 'i=2258' });
    assert.deepEqual(parseNodeId('ns=2;s=Line 1;Temp=x'), { namespace: { index: 2 }, kind: 's', identifier: 'Line 1;Temp=x', text: 'ns=2;s=Line 1;Temp=x' });
    assert.deepEqual(parseNodeId('ns=3;g=72962B91-FA75-4AE6-8D28-B404DC7DAF63'), {
      namespace: { index: 3 },
      kind: 'g',
      identifier: '72962b91-fa75-4ae6-8d28-b404dc7daf63',
      text: 'ns=3;g=72962B91-FA75-4AE6-8D28-B404DC7DAF63',
    });
    assert.deepEqual(parseNodeId('ns=1;b=bWFwcGVya2l0'), { namespace: { index: 1 }, kind: 'b', identifier: 'bWFwcGVya2l0', text: 'ns=1;b=bWFwcGVya2l0' });
    assert.deepEqual(parseNodeId('nsu=urn:acme:plant%3Bline;s=T'), { namespace: { uri: 'urn:acme:plant;line' }, kind: 's', identifier: 'T', text: 'nsu=urn:acme:plant%3Bline;s=T' });
    assert.deepEqual(parseNodeId('s=T', 'urn:acme'), { namespace: { uri: 'urn:acme' }, kind: 's', identifier: 'T', text: 's=T' });
  });

  it('rejects malformed ids with a message naming the problem', () => {
    assert.match(parseNodeId('Temperature') as string, /not an OPC UA node id/);
    assert.match(parseNodeId('ns=x;i=1') as string, /namespace index "x"/);
    assert.match(parseNodeId('ns=70000;i=1') as string, /0-65535/);
    assert.match(parseNodeId('ns=2;i=-1') as string, /numeric identifier/);
    assert.match(parseNodeId('ns=2;i=4294967296') as string, /numeric identifier/);
    assert.match(parseNodeId('ns=2;g=not-a-guid') as string, /is not a GUID/);
    assert.match(parseNodeId('ns=2;b=***') as string, /not base64/);
    assert.match(parseNodeId('ns=2;s=') as string, /empty/);
    assert.match(parseNodeId('ns=2;s=T', 'urn:acme') as string, /namespaceUri is also set/);
    assert.match(parseNodeId('nsu=urn:a;s=T', 'urn:b') as string, /names namespace urn:a but namespaceUri is urn:b/);
  });
});

describe('protocol configData', () => {
  it('applies defaults and takes upstream key spellings case-insensitively', async () => {
    const c = await ok(protocolConfig, { URL: 'opc.tcp://plc:4840', securitypolicy: 'basic256sha256', SecurityMode: 'signandencrypt', username: 'op', password: '/run/secrets/pw', timeout: '3000' });
    assert.equal(c['url'], 'opc.tcp://plc:4840');
    assert.equal(c['securityPolicy'], 'Basic256Sha256');
    assert.equal(c['securityMode'], 'SignAndEncrypt');
    assert.equal(c['identity'], 'username');
    assert.equal(c['userName'], 'op');
    assert.equal(c['timeout'], 3000);
    assert.equal(c['acceptUnknownServerCertificate'], false);
    assert.equal(c['subscribe'], false);
    const d = await ok(protocolConfig, { url: 'opc.tcp://plc:4840' });
    assert.equal(d['securityPolicy'], 'None');
    assert.equal(d['securityMode'], 'None');
    assert.equal(d['identity'], 'anonymous');
  });

  it('accepts the policy spellings of node-opcua, the issue and the policy URI', async () => {
    for (const [raw, want] of [
      ['Aes128_Sha256_RsaOaep', 'Aes128_Sha256_RsaOaep'],
      ['Aes128Sha256RsaOaep', 'Aes128_Sha256_RsaOaep'],
      ['http://opcfoundation.org/UA/SecurityPolicy#Aes256_Sha256_RsaPss', 'Aes256_Sha256_RsaPss'],
    ] as const) {
      const c = await ok(protocolConfig, { url: 'opc.tcp://h:1', securityPolicy: raw, securityMode: 'Sign' });
      assert.equal(c['securityPolicy'], want);
    }
  });

  it('reads "false" as false (z.coerce.boolean would not)', async () => {
    const c = await ok(protocolConfig, { url: 'opc.tcp://h:1', acceptUnknownServerCertificate: 'false', subscribe: 'TRUE' });
    assert.equal(c['acceptUnknownServerCertificate'], false);
    assert.equal(c['subscribe'], true);
  });

  it('rejects bad combinations naming the key', async () => {
    assert.match(await issues(protocolConfig, { url: 'http://h:1' }), /^url: must be an endpoint URL/);
    for (const url of ['opc.tcp://[::1]:4840', 'opc.tcp://plc-7.plant.local:4840/UA/Server', 'opc.tcp://10.0.0.5']) assert.equal((await ok(protocolConfig, { url }))['url'], url);
    assert.match(await issues(protocolConfig, { url: 'opc.tcp://h:1 2' }), /^url: must be an endpoint URL/);
    assert.match(await issues(protocolConfig, { url: 'opc.tcp://h:1', securityPolicy: 'Basic256Sha256' }), /securityMode: securityMode None does not go with securityPolicy Basic256Sha256/);
    assert.match(await issues(protocolConfig, { url: 'opc.tcp://h:1', securityMode: 'Sign' }), /securityMode: securityMode Sign does not go with securityPolicy None/);
    assert.match(await issues(protocolConfig, { url: 'opc.tcp://h:1', securityPolicy: 'Rot13' }), /securityPolicy: must be one of/);
    assert.match(await issues(protocolConfig, { url: 'opc.tcp://h:1', userName: 'op' }), /passwordFile: identity username needs/);
    assert.match(await issues(protocolConfig, { url: 'opc.tcp://h:1', identity: 'username', passwordEnv: 'PW' }), /userName: required/);
    assert.match(await issues(protocolConfig, { url: 'opc.tcp://h:1', certificate: '/c.pem' }), /privateKey: certificate and privateKey go together/);
    assert.match(await issues(protocolConfig, { url: 'opc.tcp://h:1', userName: 'op', passwordFile: '/a', passwordEnv: 'B' }), /set only one of/);
    assert.match(await issues(protocolConfig, { url: 'opc.tcp://h:1', userName: 'op', passwordEnv: 'not a var' }), /passwordEnv: must be an environment variable name/);
  });

  it('refuses a cleartext password without echoing it', async () => {
    const msg = await issues(protocolConfig, { url: 'opc.tcp://h:1', userName: 'op', password: 'hunter2-cleartext' });
    assert.match(msg, /password: must be the absolute path of a file/);
    assert.ok(!msg.includes('hunter2-cleartext'), 'the rejected value must not appear in the message');
  });
});

describe('visitor configData', () => {
  it('parses the node id (upstream key nodeID or nodeId) and monitoring settings', async () => {
    const v = await ok(visitorConfig, { nodeId: 'ns=2;s=Level', dataType: 'double', subscribe: 'true', samplingInterval: '250', queueSize: 5, deadbandType: 'percent', deadbandValue: '2.5' });
    assert.deepEqual(v['node'], { namespace: { index: 2 }, kind: 's', identifier: 'Level', text: 'ns=2;s=Level' });
    assert.equal(v['dataType'], 'Double');
    assert.equal(v['subscribe'], true);
    assert.equal(v['samplingInterval'], 250);
    assert.equal(v['queueSize'], 5);
    assert.equal(v['deadbandType'], 'Percent');
    assert.equal(v['deadbandValue'], 2.5);
    const w = await ok(visitorConfig, { nodeID: 's=Level', namespaceUri: 'urn:x', browseName: 'Level' });
    assert.deepEqual(w['node'], { namespace: { uri: 'urn:x' }, kind: 's', identifier: 'Level', text: 's=Level' });
    assert.equal(w['subscribe'], undefined, 'unset: the device default applies');
    assert.equal(w['samplingInterval'], -1);
    assert.equal(w['deadbandType'], 'None');
  });

  it('rejects bad visitors naming the key', async () => {
    assert.match(await issues(visitorConfig, {}), /nodeID/);
    assert.match(await issues(visitorConfig, { nodeID: 'Temperature' }), /nodeID: "Temperature" is not an OPC UA node id/);
    assert.match(await issues(visitorConfig, { nodeID: 'ns=2;s=T', dataType: 'Int128' }), /dataType: must be an OPC UA built-in type/);
    assert.match(await issues(visitorConfig, { nodeID: 'ns=2;s=T', deadbandType: 'Percent', deadbandValue: 150 }), /deadbandValue: a Percent deadband must be 0-100/);
    assert.match(await issues(visitorConfig, { nodeID: 'ns=2;s=T', deadbandValue: 1 }), /deadbandType: deadbandValue is set/);
    assert.match(await issues(visitorConfig, { nodeID: 'ns=2;s=T', queueSize: -1 }), /queueSize/);
  });
});

describe('checkProperty (visitor × model type)', () => {
  const req = async (type: 'int' | 'string' | 'stream', visitor: Record<string, unknown>) => ({
    name: 'p',
    type,
    accessMode: 'ReadOnly' as const,
    visitor: (await ok(visitorConfig, visitor)) as unknown as VisitorConfig,
    minimum: undefined,
    maximum: undefined,
    unit: '',
  });
  it('refuses STREAM properties and deadbands on non-numeric properties', async () => {
    const stream = await req('stream', { nodeID: 'ns=2;s=A' });
    const text = await req('string', { nodeID: 'ns=2;s=A', deadbandType: 'Absolute', deadbandValue: 1 });
    const number = await req('int', { nodeID: 'ns=2;s=A', deadbandType: 'Absolute', deadbandValue: 1 });
    throwsKind(() => driver.checkProperty!(stream), 'InvalidConfig', /property p: STREAM properties are not supported/);
    throwsKind(() => driver.checkProperty!(text), 'InvalidConfig', /needs a numeric property .* not STRING/);
    assert.doesNotThrow(() => driver.checkProperty!(number));
  });
});

describe('reading: Variant → model type', () => {
  const v = (dataType: DataType, value: unknown, arrayType = VariantArrayType.Scalar) => new Variant({ dataType, value, arrayType });

  it('converts each built-in type to the model type', () => {
    assert.equal(fromVariant(v(DataType.Int16, -1234), 'int', 'n'), -1234);
    assert.equal(fromVariant(v(DataType.Int64, [0xffffffff, 0xfffffffe]), 'int', 'n'), -2);
    assert.equal(fromVariant(v(DataType.UInt64, [0x00200000, 1]), 'int', 'n'), 2n ** 53n + 1n);
    assert.equal(fromVariant(v(DataType.Double, 21.9), 'int', 'n'), 21, 'int from a Double truncates');
    assert.equal(fromVariant(v(DataType.Float, 0.1), 'float', 'n'), 0.1, 'float32 0.1 reads as 0.1');
    assert.equal(fromVariant(v(DataType.Double, 0.1), 'double', 'n'), 0.1);
    assert.equal(fromVariant(v(DataType.Boolean, true), 'boolean', 'n'), true);
    assert.equal(fromVariant(v(DataType.Byte, 0), 'boolean', 'n'), false);
    assert.equal(fromVariant(v(DataType.LocalizedText, { text: 'Pump', locale: 'en' }), 'string', 'n'), 'Pump');
    assert.equal(fromVariant(v(DataType.DateTime, new Date('2024-01-02T03:04:05Z')), 'string', 'n'), '2024-01-02T03:04:05.000Z');
    assert.equal(fromVariant(v(DataType.Double, 1.5), 'string', 'n'), '1.5');
    assert.equal(fromVariant(v(DataType.Int32, [1, 2, 3], VariantArrayType.Array), 'string', 'n'), '[1,2,3]');
    assert.deepEqual(fromVariant(v(DataType.ByteString, Buffer.from([1, 2, 250])), 'bytes', 'n'), new Uint8Array([1, 2, 250]));
  });

  it('fails per value, naming the node, when the value does not fit', () => {
    throwsKind(() => fromVariant(v(DataType.Int32, [1, 2], VariantArrayType.Array), 'int', 'ns=2;s=A'), 'DeviceError', /node ns=2;s=A \(Int32\): holds an array of 2 values/);
    throwsKind(() => fromVariant(v(DataType.String, 'abc'), 'double', 'ns=2;s=S'), 'DeviceError', /cannot be read as a number/);
    throwsKind(() => fromVariant(v(DataType.Null, null), 'string', 'ns=2;s=N'), 'DeviceError', /has no value/);
    throwsKind(() => fromVariant(v(DataType.Double, 1), 'stream', 'ns=2;s=N'), 'Unsupported', /STREAM/);
  });

  it('shortestFloat32 gives the shortest decimal of the same float32', () => {
    assert.equal(shortestFloat32(Math.fround(0.1)), 0.1);
    assert.equal(shortestFloat32(Math.fround(21.5)), 21.5);
    assert.equal(shortestFloat32(Math.fround(1 / 3)), 0.33333334);
  });
});

describe('writing: model value → node DataType', () => {
  it('coerces to the node type', () => {
    assert.equal(toVariant(42, DataType.Int16, -1, 'n').value, 42);
    assert.deepEqual(toVariant(-2, DataType.Int64, -1, 'n').value, [0xffffffff, 0xfffffffe]);
    assert.deepEqual(toVariant(2n ** 63n, DataType.UInt64, -1, 'n').value, [0x80000000, 0]);
    assert.equal(toVariant(21.5, DataType.Float, -1, 'n').value, 21.5);
    assert.equal(toVariant(7, DataType.Double, -1, 'n').value, 7);
    assert.equal(toVariant(1, DataType.Boolean, -1, 'n').value, true);
    assert.equal(toVariant(12.5, DataType.String, -1, 'n').value, '12.5');
    assert.equal((toVariant('x', DataType.LocalizedText, -1, 'n').value as { text: string }).text, 'x');
    assert.deepEqual(toVariant('2024-05-06T07:08:09Z', DataType.DateTime, -1, 'n').value, new Date('2024-05-06T07:08:09Z'));
    assert.deepEqual(toVariant(new Uint8Array([9, 8]), DataType.ByteString, -1, 'n').value, Buffer.from([9, 8]));
    const arr = toVariant('[4,5,6]', DataType.Int32, 1, 'n');
    assert.equal(arr.arrayType, VariantArrayType.Array);
    assert.deepEqual(Array.from(arr.value as ArrayLike<number>), [4, 5, 6]);
  });

  it('rejects values that do not fit, naming the limit', () => {
    throwsKind(() => toVariant(70000, DataType.Int16, -1, 'ns=2;s=I'), 'WriteRejected', /node ns=2;s=I has DataType Int16: 70000 is outside -32768\.\.32767/);
    throwsKind(() => toVariant(-1, DataType.UInt32, -1, 'n'), 'WriteRejected', /-1 is outside 0\.\.4294967295/);
    throwsKind(() => toVariant(2.5, DataType.Int32, -1, 'n'), 'WriteRejected', /2\.5 is not an integer/);
    throwsKind(() => toVariant(1e39, DataType.Float, -1, 'n'), 'WriteRejected', /outside the Float range/);
    throwsKind(() => toVariant('yes', DataType.Boolean, -1, 'n'), 'WriteRejected', /is not a boolean/);
    throwsKind(() => toVariant('soon', DataType.DateTime, -1, 'n'), 'WriteRejected', /is not a date/);
    throwsKind(() => toVariant('1,2', DataType.Int32, 1, 'n'), 'WriteRejected', /write it as JSON array text/);
    throwsKind(() => toVariant('[1,99999]', DataType.Int16, 1, 'n'), 'WriteRejected', /99999 is outside/);
    throwsKind(() => toVariant('x', DataType.ExtensionObject, -1, 'n'), 'Unsupported', /writing DataType ExtensionObject is not supported/);
  });
});

