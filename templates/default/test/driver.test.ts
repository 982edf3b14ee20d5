// The framework's driver conformance suite, against the simulated device: batched reads in
// request order, write and read back, state(), idempotent close(), abort handling, schema
// rejection of bad config, and Unreachable for an absent device.
{{#if stream}}
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
{{/if}}
import { describeDriverConformance } from '@mapperkit/framework/testing';
import driver from '../src/driver.js';
import { startSimulator } from './simulator.js';
{{#if stream}}
import { makeTestClip } from './test-clip.js';

const outputDir = mkdtempSync(join(tmpdir(), '{{protocol}}-frames-'));
after(() => rmSync(outputDir, { recursive: true, force: true }));
{{/if}}

describeDriverConformance('{{protocol}}', {
  driver,
  async setup() {
{{#if stream}}
    const clip = await makeTestClip(outputDir);
    const sim = await startSimulator({ values: { camera: clip } });
{{else}}
    const sim = await startSimulator();
{{/if}}
    return { protocolConfig: { host: sim.host, port: sim.port }, teardown: () => sim.close() };
  },
  properties: [
    { name: 'temperature', type: 'float', visitor: { address: 'temperature' }, expect: 21.5 },
    { name: 'setpoint', type: 'int', visitor: { address: 'setpoint' }, expect: 20, write: 23 },
    { name: 'enabled', type: 'boolean', visitor: { address: 'enabled' }, expect: true, write: false },
{{#if stream}}
    {
      name: 'saveFrame',
      type: 'stream',
      visitor: { address: 'camera', outputDir, frameCount: 2, frameInterval: 0 },
      expect: (v) => typeof v === 'string' && v.split(',').length === 2 && v.split(',').every((f) => existsSync(f)),
    },
{{/if}}
  ],
  invalidProtocolConfig: { host: '', port: 'not-a-port' },
  invalidVisitor: { address: 'not an address' },
  // Nothing listens on port 1: connect must fail as Unreachable.
  unreachableProtocolConfig: { host: '127.0.0.1', port: 1, timeoutMs: 1000 },
});
