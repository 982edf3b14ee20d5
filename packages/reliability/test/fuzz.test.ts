// SPDX-License-Identifier: Apache-2.0
// The fuzz campaigns of `npm run fuzz` with small input counts (the full run uses 100,000 per
// target): every target runs in its own process, as in the full run, and must finish its
// inputs with no new failure (known bugs are listed in src/fuzz/known.ts and have their own
// regression tests), no uncaught exception and no process exit.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FIXED_BUGS, knownBugFor, KNOWN_BUGS } from '../src/fuzz/known.ts';
import { fuzzProperty, LastInput, signatureOf } from '../src/fuzz/harness.ts';
import { runTarget } from '../src/fuzz/runner.ts';
import { checkRestAnswer } from '../src/fuzz/targets/rest-api.ts';
import { TARGETS } from '../src/fuzz/targets/index.ts';

const RUNS: Record<string, number> = {
  'any-decoder': 2000,
  'crd-yaml': 1500,
  'config-yaml': 1500,
  'rest-api': 600,
  'edgecore-dmi-http': 600,
  'modbus-codec': 2000,
  'modbus-wire': 512,
  'ble-converter': 2000,
};

describe('fuzzing (small counts; npm run fuzz runs 100,000 per target)', () => {
  it('covers every target', () => {
    assert.deepEqual(Object.keys(RUNS).sort(), TARGETS.map((t) => t.name).sort());
  });
  for (const t of TARGETS) {
    it(`${t.name}: ${RUNS[t.name]} inputs, no new failure, no uncaught exception, no process exit`, async () => {
      const seed = 1 + Math.floor(Math.random() * 2_000_000_000);
      const r = await runTarget(t.name, RUNS[t.name]!, seed, { timeoutMs: 240_000, maxCrashes: 0 });
      const fresh = r.failures.filter((f) => !knownBugFor(t.name, f.signature));
      assert.deepEqual(
        fresh.map((f) => `${f.signature} — input ${f.counterexample.slice(0, 400)}`),
        [],
        `new failures (seed ${seed}); add a regression test and an entry in src/fuzz/known.ts once reported`,
      );
      assert.deepEqual(r.uncaught, [], `uncaught exceptions (seed ${seed})`);
      assert.deepEqual(
        r.crashes.map((c) => `exit ${c.exitCode}/${c.signal} on ${c.input.slice(0, 300)}: ${c.output.slice(-300)}`),
        [],
        `the target process died (seed ${seed})`,
      );
      assert.ok(r.inputs >= RUNS[t.name]!, `only ${r.inputs} of ${RUNS[t.name]} inputs ran`);
      // The generators reach the code under test rather than being refused at the door.
      const reached = Object.entries(r.stats).filter(([k]) => !k.startsWith('refused') && !k.startsWith('status 4') && k !== 'undecodable' && k !== 'visitor refused' && k !== 'protocol refused');
      assert.ok(reached.some(([, n]) => n > 0), `no input got past validation: ${JSON.stringify(r.stats)}`);
    });
  }
});

describe('bugs fixed since the fuzzer found them count as failures again', () => {
  it('no fixed bug is still excused as known', () => {
    const open = new Set(KNOWN_BUGS.map((b) => b.id));
    assert.deepEqual(FIXED_BUGS.filter((b) => open.has(b.id)).map((b) => b.id), []);
  });
  for (const bug of FIXED_BUGS) {
    for (const target of bug.sample ? bug.targets : []) {
      it(`${bug.id}: its old error on ${target} is a campaign failure, not a known-bug hit`, async () => {
        const sample = bug.sample!;
        assert.equal(knownBugFor(target, signatureOf(sample)), undefined);
        // The harness path a target's input takes when the code under test throws.
        const r = await fuzzProperty('replay', fc.constant(0), () => {
          throw sample;
        }, { target, runs: 3, seed: 1, lastInput: new LastInput(undefined) });
        assert.deepEqual(r.known, {}, 'counted as a known bug');
        assert.deepEqual(r.failures.map((f) => f.signature), [signatureOf(sample)]);
      });
    }
  }
});

describe('rest-api oracle', () => {
  const base = { method: 'POST', segments: ['api', 'v1', 'device', 'default', 'soak-000', 'heating'], trailingSlash: false, query: '', auth: 'right' as const, contentType: '', body: '{"value":false}' };
  const err = (f: () => void): string => {
    try {
      f();
    } catch (e) {
      return signatureOf(e);
    }
    return 'no error';
  };
  it('a dropped answer is a failure, raw (half-closed: rest-half-close-drops-write, fixed in efd49af) or pooled', () => {
    const raw = err(() => checkRestAnswer({ ...base, raw: true }, { status: 0, contentType: '', body: '', error: 'no HTTP answer (0 bytes)' }, {}, 'tok'));
    assert.match(raw, /no answer/);
    assert.equal(knownBugFor('rest-api', raw), undefined, raw);
    const pooled = err(() => checkRestAnswer({ ...base, raw: false }, { status: 0, contentType: '', body: '', error: 'ECONNRESET socket hang up' }, {}, 'tok'));
    assert.equal(knownBugFor('rest-api', pooled), undefined, pooled);
  });
  it("a write route without the token: Node's own 400 (empty body) for a request line it rejects is a refusal; a handler's 400 or 404 is not", () => {
    const req = { ...base, method: 'get', segments: ['api', 'v1', 'devicemethod', '', 'soak-001', 'heating', 'temperature', '21.5'], auth: 'none' as const, raw: true };
    assert.equal(err(() => checkRestAnswer(req, { status: 400, contentType: '', body: '' }, {}, 'tok')), 'no error');
    assert.match(err(() => checkRestAnswer(req, { status: 400, contentType: 'application/json', body: '{"statusCode":400}' }, {}, 'tok')), /expected N/);
    assert.match(err(() => checkRestAnswer(req, { status: 404, contentType: 'application/json', body: '{"statusCode":404}' }, {}, 'tok')), /expected N/);
  });
});
