// SPDX-License-Identifier: Apache-2.0
// One timer for every device's collect ticks and state checks. A setTimeout per device per
// cycle costs a Timeout object and a closure that live for the whole cycle (so V8 promotes
// them, and they die in the old generation), and a separate event-loop wake-up for nearly
// every device. Here tasks are long-lived objects in a binary heap ordered by due time, and the
// process wakes once per distinct due time; devices whose phases fall in the same slot (see
// `phaseOf`) are ticked in one wake-up.
import { performance } from 'node:perf_hooks';
import { MAX_CYCLE_MS } from '../dmi/model.js';

/** Something to run at a time (ms on the performance.now() clock). Reused from run to run. */
export abstract class ScheduledTask {
  /** When it runs next (performance.now() ms); Infinity when not scheduled. */
  due = Infinity;
  /** Position in the scheduler's heap, -1 when not scheduled. */
  heapIndex = -1;
  /** Runs the task; `now` is the wake-up time. Must not throw (a throw is swallowed). */
  abstract run(now: number): void;
}

/** A task calling a function. */
export class FunctionTask extends ScheduledTask {
  private readonly fn: (now: number) => void;
  constructor(fn: (now: number) => void) {
    super();
    this.fn = fn;
  }
  run(now: number): void {
    this.fn(now);
  }
}

/** Timers fire up to 1 ms early on the performance clock (libuv counts whole ms). */
const EARLY_MS = 1;

export class Scheduler {
  private readonly heap: ScheduledTask[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** Due time the timer is armed for. */
  private armedAt = Infinity;
  private running = false;
  private readonly fire = (): void => this.runDue();

  /** Number of scheduled tasks (tests, diagnostics). */
  get size(): number {
    return this.heap.length;
  }

  /** Schedules (or reschedules) `task` at `due`. */
  schedule(task: ScheduledTask, due: number): void {
    if (task.heapIndex >= 0) {
      const before = task.due;
      task.due = due;
      if (due < before) this.up(task.heapIndex);
      else this.down(task.heapIndex);
    } else {
      task.due = due;
      task.heapIndex = this.heap.length;
      this.heap.push(task);
      this.up(task.heapIndex);
    }
    if (!this.running) this.arm();
  }

  /** Unschedules `task` (no-op when it is not scheduled). */
  cancel(task: ScheduledTask): void {
    const i = task.heapIndex;
    if (i < 0) return;
    const last = this.heap.pop()!;
    task.heapIndex = -1;
    task.due = Infinity;
    if (last !== task) {
      this.heap[i] = last;
      last.heapIndex = i;
      this.up(i);
      this.down(last.heapIndex);
    }
    if (!this.running) this.arm();
  }

  private runDue(): void {
    this.timer = undefined;
    this.armedAt = Infinity;
    this.running = true;
    try {
      const now = performance.now();
      // Tasks scheduled during this pass for a time already reached run in the next pass.
      let budget = this.heap.length;
      while (budget-- > 0) {
        const top = this.heap[0];
        if (!top || top.due > now + EARLY_MS) break;
        this.cancel(top);
        try {
          top.run(now);
        } catch {
          // A task must not stop the others.
        }
      }
    } finally {
      this.running = false;
      this.arm();
    }
  }

  private arm(): void {
    const top = this.heap[0];
    const at = top ? top.due : Infinity;
    if (at === this.armedAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = at;
    if (at === Infinity) return;
    const delay = Math.min(Math.max(0, at - performance.now()), MAX_CYCLE_MS);
    this.timer = setTimeout(this.fire, delay);
  }

  private up(i: number): void {
    const h = this.heap;
    const t = h[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = h[p]!;
      if (parent.due <= t.due) break;
      h[i] = parent;
      parent.heapIndex = i;
      i = p;
    }
    h[i] = t;
    t.heapIndex = i;
  }

  private down(i: number): void {
    const h = this.heap;
    const n = h.length;
    const t = h[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && h[r]!.due < h[l]!.due ? r : l;
      const child = h[c]!;
      if (child.due >= t.due) break;
      h[i] = child;
      child.heapIndex = i;
      i = c;
    }
    h[i] = t;
    t.heapIndex = i;
  }
}

/** The scheduler of this process (all runtimes share it). */
export const scheduler = new Scheduler();

/** Phases are multiples of this many ms (cycles of 1 s and more): 100 wake-ups/s at most, however many devices. */
const SLOT_MS = 10;

/**
 * Offset within the cycle at which a device's group of properties is read: spread over the
 * cycle by a hash of its id so that devices registered together do not all read in the same
 * millisecond, and rounded to a slot so that devices sharing a slot share a wake-up.
 */
export function phaseOf(key: string, cycle: number): number {
  let h = 2166136261;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619);
  const phase = (h >>> 0) % cycle;
  return cycle >= 100 * SLOT_MS ? phase - (phase % SLOT_MS) : phase;
}

/** The first time ≥ `from` that is `phase` past a multiple of `cycle` (on the performance clock). */
export function nextAligned(from: number, cycle: number, phase: number): number {
  const base = Math.floor((from - phase) / cycle) * cycle + phase;
  return base >= from ? base : base + cycle;
}
