// SPDX-License-Identifier: Apache-2.0
// Two V8 settings for the mapper process, applied when the first device starts (both are read
// by V8 at GC time, so they take effect when set at run time; node does not accept them in
// NODE_OPTIONS).
//
// 1. Allocation-site pretenuring off. V8 "pretenures" an allocation site (allocates its objects
// straight in the old generation) when most of its objects survived the young generation in the
// past. A mapper starts with a burst: every device registers, connects and reads at once, while
// the registration's own objects fill the young generation; objects made on the read path
// survive that burst, V8 marks their sites long-lived, and keeps that decision. From then on
// every read allocates some of its short-lived objects in the old generation, which also keeps
// the young objects they point to alive until the next full GC. Measured with 1,000 virtual
// devices x 10 properties at 1 s: the old generation grew ~1.1 MB/s (RSS 160 -> 270 MB between
// full GCs); without pretenuring it stays flat. MAPPER_V8_PRETENURING=on keeps V8's default.
//
// 2. Old-generation growth of 20 % over the live heap (--heap-growing-percent=20). V8 otherwise
// picks a factor between 1.1 and 4 from its GC speed; a mapper's heap is mostly long-lived device
// state with a slow trickle of promoted garbage, so V8 let the old generation grow for ~90 s
// (RSS +10 MB at 1,000 x 10) before its memory reducer collected it. With 20 % the next full GC
// comes once the heap is 1.2 x what the last one kept, and RSS stays flat for the same CPU
// (bench/results/framework*.json). MAPPER_V8_HEAP_GROWING_PERCENT=N sets N (0 = V8's own).
import { setFlagsFromString } from 'node:v8';
import type { Logger } from 'pino';

const DEFAULT_HEAP_GROWING_PERCENT = 20;
let applied = false;

/** The old-generation growth to set from MAPPER_V8_HEAP_GROWING_PERCENT: a percent, 0 for V8's own, or an error text. */
export function heapGrowingPercent(raw: string | undefined): number | string {
  if (raw === undefined || raw.trim() === '') return DEFAULT_HEAP_GROWING_PERCENT;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 1000) return `MAPPER_V8_HEAP_GROWING_PERCENT=${JSON.stringify(raw)} is not a whole number from 0 to 1000; using ${DEFAULT_HEAP_GROWING_PERCENT}`;
  return n;
}

/** Applies the mapper's V8 settings to this process (once; see above). */
export function tuneHeapForMapper(log: Logger): void {
  if (applied) return;
  applied = true;
  if (process.env['MAPPER_V8_PRETENURING'] !== 'on') setFlagsFromString('--no-allocation-site-pretenuring');
  let percent = heapGrowingPercent(process.env['MAPPER_V8_HEAP_GROWING_PERCENT']);
  if (typeof percent === 'string') {
    log.warn({ key: 'MAPPER_V8_HEAP_GROWING_PERCENT' }, percent);
    percent = DEFAULT_HEAP_GROWING_PERCENT;
  }
  if (percent > 0) setFlagsFromString(`--heap-growing-percent=${percent}`);
}
