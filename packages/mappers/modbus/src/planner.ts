// SPDX-License-Identifier: Apache-2.0
// The request planner: turns the properties due in one tick into as few Modbus requests as
// possible. Per register table, properties are sorted by address and merged while the hole
// between them is at most `maxGap` registers (`maxGapBits` bits) and the merged request stays
// within `maxRegisters` (125) / `maxBits` (2000). Overlapping properties share a request.
import type { Table } from './config.js';

/** One property to read: where its registers are. `index` is its position in the read() batch. */
export interface PlanItem {
  readonly index: number;
  readonly table: Table;
  readonly start: number;
  /** Registers or bits. */
  readonly count: number;
}

/** One request: a contiguous range of one table covering its members. */
export interface Span {
  readonly table: Table;
  readonly start: number;
  readonly count: number;
  /** Properties answered by this request, sorted by start address. */
  readonly members: readonly PlanItem[];
}

export interface PlanOptions {
  /** Merge properties into shared requests (false: one request per property, in batch order). */
  readonly coalesce: boolean;
  readonly maxGap: number;
  readonly maxGapBits: number;
  readonly maxRegisters: number;
  readonly maxBits: number;
}

const TABLE_ORDER: readonly Table[] = ['holding', 'input', 'coil', 'discrete'];

export function isBitTable(t: Table): boolean {
  return t === 'coil' || t === 'discrete';
}

/** A span covering exactly `members` (which must be of one table). */
export function spanOf(members: readonly PlanItem[]): Span {
  const sorted = [...members].sort((a, b) => a.start - b.start || b.count - a.count);
  const first = sorted[0]!;
  let end = first.start + first.count;
  for (const m of sorted) end = Math.max(end, m.start + m.count);
  return { table: first.table, start: first.start, count: end - first.start, members: sorted };
}

/**
 * An address range a merged request must not touch: registers the device refused, or the hole
 * between two properties that could each be read but not together. `start === end` is a cut:
 * no merged request may contain both `start - 1` and `start`.
 */
export interface Barrier {
  readonly table: Table;
  readonly start: number;
  readonly end: number;
}

function crosses(barriers: readonly Barrier[], table: Table, start: number, end: number): boolean {
  for (const b of barriers) if (b.table === table && start < (b.end === b.start ? b.start : b.end) && end > b.start) return true;
  return false;
}

/**
 * Plans the requests for one batch. `isolated(item)` marks properties that must be read
 * alone (a register the device refused); merged requests never touch a barrier.
 */
export function planReads(items: readonly PlanItem[], opts: PlanOptions, isolated: (item: PlanItem) => boolean = () => false, barriers: readonly Barrier[] = []): Span[] {
  if (!opts.coalesce) return items.map((i) => ({ table: i.table, start: i.start, count: i.count, members: [i] }));
  const spans: Span[] = [];
  for (const table of TABLE_ORDER) {
    const group = items.filter((i) => i.table === table);
    if (group.length === 0) continue;
    group.sort((a, b) => a.start - b.start || b.count - a.count);
    const bits = isBitTable(table);
    const gap = bits ? opts.maxGapBits : opts.maxGap;
    const max = bits ? opts.maxBits : opts.maxRegisters;
    let cur: { start: number; end: number; members: PlanItem[] } | undefined;
    for (const item of group) {
      const end = item.start + item.count;
      if (isolated(item)) {
        spans.push({ table, start: item.start, count: item.count, members: [item] });
        continue;
      }
      if (cur && item.start - cur.end <= gap && Math.max(cur.end, end) - cur.start <= max && !crosses(barriers, table, cur.start, Math.max(cur.end, end))) {
        cur.end = Math.max(cur.end, end);
        cur.members.push(item);
        continue;
      }
      if (cur) spans.push({ table, start: cur.start, count: cur.end - cur.start, members: cur.members });
      cur = { start: item.start, end, members: [item] };
    }
    if (cur) spans.push({ table, start: cur.start, count: cur.end - cur.start, members: cur.members });
  }
  return spans;
}

/** Splits a span of several members into two halves (by address) for re-planning around a refused register. */
export function bisect(span: Span): [Span, Span] {
  const half = Math.ceil(span.members.length / 2);
  return [spanOf(span.members.slice(0, half)), spanOf(span.members.slice(half))];
}
