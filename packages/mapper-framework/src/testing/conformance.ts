// SPDX-License-Identifier: Apache-2.0
// A driver conformance suite every driver runs against its own simulator or device.
import assert from 'node:assert/strict';
import * as nodeTest from 'node:test';
import type { AccessMode, PropertyType } from '../dmi/model.js';
import { DEVICE_STATES, type DeviceClient, type DriverDefinition, type PropertyRequest } from '../driver.js';
import { isMapperError, type MapperErrorKind } from '../errors.js';
import { createLogger } from '../logger.js';
import { validateWithSchema } from '../schema.js';
import type { PropertyValue } from '../values.js';

/** One property the suite reads (and optionally writes). */
export interface ConformanceProperty {
  readonly name: string;
  readonly type: PropertyType;
  /** Raw visitor configData, as it would arrive over DMI. */
  readonly visitor: Record<string, unknown>;
  /** Expected value of the first read, or a predicate on it. */
  readonly expect?: PropertyValue | ((value: PropertyValue) => boolean);
  /** A value to write and read back (makes the property ReadWrite). */
  readonly write?: PropertyValue;
  readonly minimum?: number;
  readonly maximum?: number;
}

/** Options of {@link describeDriverConformance}. */
export interface ConformanceOptions<P, V> {
  readonly driver: DriverDefinition<P, V>;
  /** Starts the simulator; returns raw protocol configData that reaches it. */
  setup(): Promise<{ protocolConfig: Record<string, unknown>; teardown?: () => Promise<void> }>;
  readonly properties: readonly ConformanceProperty[];
  /** Protocol configData the schema must reject. */
  readonly invalidProtocolConfig?: Record<string, unknown>;
  /** Visitor configData the schema must reject. */
  readonly invalidVisitor?: Record<string, unknown>;
  /** Protocol configData of a device that does not exist: connect or the first read must fail with Unreachable/Timeout. */
  readonly unreachableProtocolConfig?: Record<string, unknown>;
  /** Test functions; default node:test. Pass vitest's to run under vitest. */
  readonly test?: {
    describe: (name: string, fn: () => void) => unknown;
    it: (name: string, fn: () => Promise<void>) => unknown;
    before: (fn: () => Promise<void>) => unknown;
    after: (fn: () => Promise<void>) => unknown;
  };
  /** Per-call timeout in ms (default 5000). */
  readonly timeoutMs?: number;
}

const UNREACHABLE_KINDS: readonly MapperErrorKind[] = ['Unreachable', 'Timeout'];

function matches(expected: ConformanceProperty['expect'], value: PropertyValue): boolean {
  if (expected === undefined) return true;
  if (typeof expected === 'function') return expected(value);
  if (expected instanceof Uint8Array && value instanceof Uint8Array) return Buffer.from(expected).equals(Buffer.from(value));
  if (typeof expected === 'number' && typeof value === 'number') return Math.abs(expected - value) <= Math.abs(expected) * 1e-6;
  return expected === value;
}

/**
 * Registers the conformance tests for a driver: schemas accept the simulator's config and
 * reject bad config; one batched read returns one result per request in request order (also
 * reversed); writes read back; `state()` returns a DMI state; `close()` is idempotent; an
 * aborted signal does not hang; an absent device fails as Unreachable/Timeout.
 */
export function describeDriverConformance<P, V>(name: string, opts: ConformanceOptions<P, V>): void {
  const t = opts.test ?? { describe: nodeTest.describe, it: nodeTest.it, before: nodeTest.before, after: nodeTest.after };
  const timeout = opts.timeoutMs ?? 5000;
  const log = createLogger({ level: 'silent' });
  const device = { id: 'conformance/dev', name: 'dev', namespace: 'conformance', model: 'conformance-model' };

  // AbortSignal.timeout() does not keep the event loop alive: a driver that only waits on the
  // signal would end the test run with "Promise resolution is still pending". Hold it open.
  const timers = new Set<NodeJS.Timeout>();
  const signalFor = (ms: number): AbortSignal => {
    const ctl = new AbortController();
    const t = setTimeout(() => {
      timers.delete(t);
      ctl.abort(new DOMException(`conformance call timed out after ${ms} ms`, 'TimeoutError'));
    }, ms);
    timers.add(t);
    return ctl.signal;
  };

  t.describe(`driver conformance: ${name}`, () => {
    let teardown: (() => Promise<void>) | undefined;
    let protocolRaw: Record<string, unknown> = {};
    let client: DeviceClient<V> | undefined;
    let requests: PropertyRequest<V>[] = [];

    const connect = async (raw: Record<string, unknown>): Promise<DeviceClient<V>> => {
      const config = await validateWithSchema(opts.driver.protocolConfig, raw, 'conformance device', 'protocol configData');
      return opts.driver.connect({ device, config, log }, signalFor(timeout));
    };

    t.before(async () => {
      const s = await opts.setup();
      protocolRaw = s.protocolConfig;
      teardown = s.teardown;
      requests = [];
      for (const p of opts.properties) {
        const visitor = await validateWithSchema(opts.driver.visitorConfig, p.visitor, `property ${p.name}`, 'visitors configData');
        const accessMode: AccessMode = p.write === undefined ? 'ReadOnly' : 'ReadWrite';
        requests.push({ name: p.name, type: p.type, accessMode, visitor, minimum: p.minimum, maximum: p.maximum, unit: '' });
      }
      client = await connect(protocolRaw);
    });

    t.after(async () => {
      await client?.close();
      await teardown?.();
      for (const tm of timers) clearTimeout(tm);
      timers.clear();
    });

    t.it('protocol name is set', async () => {
      assert.ok(opts.driver.protocol.length > 0, 'driver.protocol must not be empty');
    });

    if (opts.invalidProtocolConfig) {
      const bad = opts.invalidProtocolConfig;
      t.it('rejects invalid protocol config with InvalidConfig', async () => {
        await assert.rejects(validateWithSchema(opts.driver.protocolConfig, bad, 'conformance device', 'protocol configData'), (e: unknown) => isMapperError(e) && e.kind === 'InvalidConfig');
      });
    }

    if (opts.invalidVisitor) {
      const bad = opts.invalidVisitor;
      t.it('rejects an invalid visitor with InvalidConfig', async () => {
        await assert.rejects(validateWithSchema(opts.driver.visitorConfig, bad, 'property x', 'visitors configData'), (e: unknown) => isMapperError(e) && e.kind === 'InvalidConfig');
      });
    }

    t.it('reads every property in one batch, in request order', async () => {
      const results = await client!.read(requests, signalFor(timeout));
      assert.equal(results.length, requests.length, 'one result per request');
      results.forEach((r, i) => {
        const p = opts.properties[i]!;
        assert.ok(r.ok, `property ${p.name} failed: ${r.ok ? '' : r.error.message}`);
        assert.ok(matches(p.expect, r.value), `property ${p.name}: unexpected value ${String(r.value)}`);
      });
    });

    t.it('keeps request order when the batch is reversed', async () => {
      const reversed = [...requests].reverse();
      const forward = await client!.read(requests, signalFor(timeout));
      const backward = await client!.read(reversed, signalFor(timeout));
      assert.equal(backward.length, reversed.length);
      reversed.forEach((req, i) => {
        const j = requests.indexOf(req);
        const a = forward[j]!;
        const b = backward[i]!;
        assert.equal(a.ok, b.ok, `property ${req.name}: ok differs between orders`);
        const p = opts.properties[j]!;
        if (b.ok && p.expect !== undefined) assert.ok(matches(p.expect, b.value), `property ${req.name}: value differs when reordered`);
      });
    });

    for (const [i, p] of opts.properties.entries()) {
      if (p.write === undefined) continue;
      const value = p.write;
      t.it(`writes ${p.name} and reads it back`, async () => {
        const req = requests[i]!;
        await client!.write(req, value, signalFor(timeout));
        const [r] = await client!.read([req], signalFor(timeout));
        assert.ok(r?.ok, `read-back of ${p.name} failed`);
        assert.ok(matches(value, r.value), `read-back of ${p.name}: wrote ${String(value)}, read ${String(r.value)}`);
      });
    }

    t.it('state() returns a DMI device state', async () => {
      const s = await client!.state(signalFor(timeout));
      assert.ok(DEVICE_STATES.includes(s), `state "${s}" is not one of ${DEVICE_STATES.join(', ')}`);
    });

    t.it('does not hang on an aborted signal', async () => {
      const ctl = new AbortController();
      ctl.abort(new Error('aborted by test'));
      const started = Date.now();
      await client!.read(requests, ctl.signal).catch(() => undefined);
      assert.ok(Date.now() - started < timeout, 'read with an aborted signal must settle promptly');
    });

    t.it('close() is idempotent', async () => {
      const c = await connect(protocolRaw);
      await c.close();
      await c.close();
    });

    if (opts.unreachableProtocolConfig) {
      const raw = opts.unreachableProtocolConfig;
      t.it('an absent device fails as Unreachable or Timeout', async () => {
        let c: DeviceClient<V> | undefined;
        try {
          c = await connect(raw);
        } catch (err) {
          assert.ok(isMapperError(err) && UNREACHABLE_KINDS.includes(err.kind), `connect failed with ${String(err)}; expected MapperError Unreachable/Timeout`);
          return;
        }
        try {
          const results = await c.read(requests, signalFor(timeout)).catch((err: unknown) => {
            assert.ok(isMapperError(err) && UNREACHABLE_KINDS.includes(err.kind), `read rejected with ${String(err)}; expected MapperError Unreachable/Timeout`);
            return undefined;
          });
          if (results) {
            for (const r of results) {
              assert.ok(!r.ok, 'reads from an absent device must fail');
              assert.ok(UNREACHABLE_KINDS.includes(r.error.kind), `read failed with kind ${r.error.kind}; expected Unreachable/Timeout`);
            }
          }
        } finally {
          await c.close();
        }
      });
    }
  });
}
