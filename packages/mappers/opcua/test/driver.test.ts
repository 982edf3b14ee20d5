// SPDX-License-Identifier: Apache-2.0
// The framework's driver conformance suite against a node-opcua server in its own process.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import type { PropertyValue } from '@mapperkit/framework';
import { describeDriverConformance } from '@mapperkit/framework/testing';
import driver from '../src/driver.ts';
import { TEST_NAMESPACE_URI, TestServer } from './helpers.ts';

// Port 1 (tcpmux) is privileged and closed here: a device that does not exist.
const UNREACHABLE_URL = 'opc.tcp://127.0.0.1:1';
const pki = mkdtempSync(join(tmpdir(), 'opcua-conf-pki-'));
after(() => rmSync(pki, { recursive: true, force: true }));

describeDriverConformance('opcua', {
  driver,
  async setup() {
    const server = await TestServer.start();
    return { protocolConfig: { url: server.endpointUrl, pkiDir: pki }, teardown: () => server.stop() };
  },
  properties: [
    { name: 'float', type: 'float', visitor: { nodeID: 'ns=2;s=Float' }, expect: 21.5, write: 12.25 },
    { name: 'double', type: 'double', visitor: { nodeID: 'ns=2;s=Double' }, expect: 3.25, write: -0.5 },
    { name: 'int16', type: 'int', visitor: { nodeID: 'ns=2;s=Int16' }, expect: -1234, write: 321 },
    { name: 'uint64', type: 'int', visitor: { nodeID: 'ns=2;s=UInt64' }, expect: 2n ** 53n + 1n },
    { name: 'bool', type: 'boolean', visitor: { nodeID: 'ns=2;s=Boolean' }, expect: true, write: false },
    { name: 'string', type: 'string', visitor: { nodeID: 'ns=2;s=String' }, expect: 'hello', write: 'world' },
    { name: 'bytes', type: 'bytes', visitor: { nodeID: 'ns=2;s=ByteString' }, expect: new Uint8Array([1, 2, 3, 250]) },
    // Namespace URI form and a numeric id of a changing variable.
    { name: 'counter', type: 'int', visitor: { nodeID: `nsu=${TEST_NAMESPACE_URI};i=1001` }, expect: (v: PropertyValue) => typeof v === 'number' && v >= 0 },
  ],
  invalidProtocolConfig: { url: 'http://not-opc-ua:80' },
  invalidVisitor: { nodeID: 'Temperature' },
  unreachableProtocolConfig: { url: UNREACHABLE_URL, pkiDir: pki },
  timeoutMs: 10_000,
});
