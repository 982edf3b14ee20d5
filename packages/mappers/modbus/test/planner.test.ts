// SPDX-License-Identifier: Apache-2.0
// The request planner on its own: which properties share a request.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { bisect, type PlanItem, type PlanOptions, planReads } from '../src/index.ts';

const OPTS: PlanOptions = { coalesce: true, maxGap: 8, maxGapBits: 64, maxRegisters: 125, maxBits: 2000 };
const item = (index: number, start: number, count = 1, table: PlanItem['table'] = 'holding'): PlanItem => ({ index, table, start, count });
const shape = (spans: ReturnType<typeof planReads>) => spans.map((s) => [s.table, s.start, s.count, s.members.map((m) => m.index)]);

describe('request planner', () => {
  it('merges contiguous registers of one table into one request', () => {
    const items = Array.from({ length: 10 }, (_, i) => item(i, 100 + i));
    assert.deepEqual(shape(planReads(items, OPTS)), [['holding', 100, 10, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]]]);
  });

  it('bridges holes up to maxGap registers and no further', () => {
    assert.deepEqual(shape(planReads([item(0, 0), item(1, 9)], OPTS)), [['holding', 0, 10, [0, 1]]], 'hole of 8 bridged');
    assert.deepEqual(shape(planReads([item(0, 0), item(1, 10)], OPTS)), [
      ['holding', 0, 1, [0]],
      ['holding', 10, 1, [1]],
    ]);
    assert.equal(planReads([item(0, 0), item(1, 3)], { ...OPTS, maxGap: 0 }).length, 2, 'maxGap 0 merges only adjacent registers');
  });

  it('never exceeds 125 registers or 2000 bits per request', () => {
    const regs = Array.from({ length: 300 }, (_, i) => item(i, i));
    const spans = planReads(regs, OPTS);
    assert.deepEqual(
      spans.map((s) => s.count),
      [125, 125, 50],
    );
    const bits = Array.from({ length: 4500 }, (_, i) => item(i, i, 1, 'coil'));
    assert.deepEqual(
      planReads(bits, OPTS).map((s) => s.count),
      [2000, 2000, 500],
    );
    const wide = [item(0, 0, 2), item(1, 2, 2), item(2, 4, 4)];
    assert.deepEqual(
      planReads(wide, { ...OPTS, maxRegisters: 4 }).map((s) => [s.start, s.count]),
      [
        [0, 4],
        [4, 4],
      ],
      'a multi-register value is never split',
    );
  });

  it('keeps tables apart and lets overlapping properties share registers', () => {
    const spans = planReads([item(0, 0, 2, 'holding'), item(1, 0, 1, 'input'), item(2, 1, 1, 'holding'), item(3, 0, 1, 'coil'), item(4, 5, 1, 'discrete')], OPTS);
    assert.deepEqual(shape(spans), [
      ['holding', 0, 2, [0, 2]],
      ['input', 0, 1, [1]],
      ['coil', 0, 1, [3]],
      ['discrete', 5, 1, [4]],
    ]);
  });

  it('sends one request per property, in batch order, when coalescing is off', () => {
    const items = [item(0, 5), item(1, 4), item(2, 6)];
    assert.deepEqual(shape(planReads(items, { ...OPTS, coalesce: false })), [
      ['holding', 5, 1, [0]],
      ['holding', 4, 1, [1]],
      ['holding', 6, 1, [2]],
    ]);
  });

  it('reads isolated properties alone', () => {
    const items = [item(0, 0), item(1, 1), item(2, 2)];
    assert.deepEqual(shape(planReads(items, OPTS, (i) => i.index === 1)), [
      ['holding', 1, 1, [1]],
      ['holding', 0, 3, [0, 2]],
    ]);
  });

  it('never merges across a barrier (a refused register or an unbridgeable hole)', () => {
    const items = Array.from({ length: 10 }, (_, i) => item(i, 40 + i)).filter((i) => i.start !== 45);
    assert.deepEqual(
      planReads(items, OPTS, () => false, [{ table: 'holding', start: 45, end: 46 }]).map((s) => [s.start, s.count]),
      [
        [40, 5],
        [46, 4],
      ],
    );
    assert.equal(planReads(items, OPTS, () => false, [{ table: 'input', start: 45, end: 46 }]).length, 1, 'barriers are per table');
    const cut = planReads([item(0, 0), item(1, 1), item(2, 2)], OPTS, () => false, [{ table: 'holding', start: 2, end: 2 }]);
    assert.deepEqual(
      cut.map((s) => [s.start, s.count]),
      [
        [0, 2],
        [2, 1],
      ],
      'a cut at 2 separates register 1 from register 2',
    );
  });

  it('bisects a span into halves that cover exactly their members', () => {
    const [span] = planReads([item(0, 0), item(1, 2), item(2, 4), item(3, 6), item(4, 8)], OPTS);
    const [l, r] = bisect(span!);
    assert.deepEqual([l.start, l.count, r.start, r.count], [0, 5, 6, 3]);
  });

  it('every property is covered by exactly one request of its table, within the limits', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ table: fc.constantFrom('holding', 'input', 'coil', 'discrete') as fc.Arbitrary<PlanItem['table']>, start: fc.integer({ min: 0, max: 3000 }), count: fc.integer({ min: 1, max: 4 }) }), {
          maxLength: 200,
        }),
        fc.integer({ min: 0, max: 20 }),
        (raw, gap) => {
          const items = raw.map((r, index) => ({ ...r, index }));
          const spans = planReads(items, { ...OPTS, maxGap: gap, maxGapBits: gap * 8 });
          const seen = new Map<number, number>();
          for (const s of spans) {
            assert.ok(s.count <= (s.table === 'coil' || s.table === 'discrete' ? 2000 : 125));
            for (const m of s.members) {
              assert.equal(m.table, s.table);
              assert.ok(m.start >= s.start && m.start + m.count <= s.start + s.count);
              seen.set(m.index, (seen.get(m.index) ?? 0) + 1);
            }
          }
          assert.equal(seen.size, items.length);
          for (const n of seen.values()) assert.equal(n, 1);
        },
      ),
    );
  });
});
