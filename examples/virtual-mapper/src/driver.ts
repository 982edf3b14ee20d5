// SPDX-License-Identifier: Apache-2.0
// A virtual device: every property is a small simulation (random walk, counter, sine, toggle,
// constant). Writable properties take the written value and continue from it. Useful as a
// demo, a benchmark load and a test peer (it can be told to fail).
import { boolish, defineDriver, MapperError, type PropertyType, type PropertyValue, type ReadResult, z } from '@mapperkit/framework';

const protocolConfig = z.object({
  /** Seed for the pseudo-random generator (same seed, same sequence). */
  seed: z.coerce.number().int().default(1),
  /** Simulated round-trip time of one read() call, ms. */
  latencyMs: z.coerce.number().nonnegative().default(0),
  /** Make connect() fail, to exercise reconnect and `offline` reporting. */
  failConnect: boolish().default(false),
});

const visitorConfig = z.object({
  /** How the value evolves between reads. */
  kind: z.enum(['randomWalk', 'counter', 'sine', 'toggle', 'constant']).default('randomWalk'),
  min: z.coerce.number().default(0),
  max: z.coerce.number().default(100),
  /** Largest change per read (randomWalk) or increment (counter). */
  step: z.coerce.number().default(1),
  /** Starting value; default: middle of [min, max] (counter: min). */
  initial: z.coerce.number().optional(),
  /** Period of a sine, ms. */
  periodMs: z.coerce.number().positive().default(60_000),
  /** Make reads of this property fail, to exercise per-property errors. */
  fail: boolish().default(false),
});

type Visitor = z.infer<typeof visitorConfig>;

/** Mulberry32: a tiny deterministic PRNG. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function typed(type: PropertyType, n: number): PropertyValue {
  switch (type) {
    case 'int':
      return Math.round(n);
    case 'boolean':
      return n >= 0.5;
    case 'string':
      return String(Math.round(n * 100) / 100);
    case 'bytes':
      return new Uint8Array([Math.round(n) & 0xff]);
    default:
      return Math.round(n * 1000) / 1000;
  }
}

function numeric(v: PropertyValue): number {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v instanceof Uint8Array) return v[0] ?? 0;
  return Number(v);
}

export default defineDriver({
  protocol: 'virtual',
  protocolConfig,
  visitorConfig,
  async connect({ config, device }, signal) {
    if (config.failConnect) throw new MapperError('Unreachable', `virtual device ${device.id} is configured to be unreachable (failConnect)`);
    signal.throwIfAborted();
    const random = rng(config.seed);
    const state = new WeakMap<Visitor, number>();
    // A written value is what the next read returns; the simulation continues from it.
    const held = new WeakMap<Visitor, number>();
    const started = Date.now();
    let closed = false;

    const step = (v: Visitor): number => {
      const h = held.get(v);
      if (h !== undefined) {
        held.delete(v);
        state.set(v, h);
        return h;
      }
      const prev = state.get(v) ?? v.initial ?? (v.kind === 'counter' ? v.min : (v.min + v.max) / 2);
      let next: number;
      switch (v.kind) {
        case 'randomWalk':
          next = Math.min(v.max, Math.max(v.min, prev + (random() * 2 - 1) * v.step));
          break;
        case 'counter':
          next = prev + v.step > v.max ? v.min : prev + v.step;
          break;
        case 'sine':
          next = v.min + ((v.max - v.min) / 2) * (1 + Math.sin((2 * Math.PI * (Date.now() - started)) / v.periodMs));
          break;
        case 'toggle':
          next = prev >= 0.5 ? 0 : 1;
          break;
        case 'constant':
          next = prev;
          break;
      }
      state.set(v, next);
      return next;
    };

    return {
      async read(requests, sig): Promise<ReadResult[]> {
        if (closed) throw new MapperError('Unreachable', 'client closed');
        if (config.latencyMs > 0) await new Promise((r) => setTimeout(r, config.latencyMs));
        sig.throwIfAborted();
        return requests.map((r) =>
          r.visitor.fail
            ? { ok: false, error: new MapperError('DeviceError', `property ${r.name} is configured to fail`) }
            : { ok: true, value: typed(r.type, step(r.visitor)) },
        );
      },
      async write(request, value) {
        if (closed) throw new MapperError('Unreachable', 'client closed');
        const n = numeric(value);
        if (!Number.isFinite(n)) throw new MapperError('WriteRejected', `value ${String(value)} is not numeric`);
        held.set(request.visitor, n);
      },
      async state() {
        return closed ? 'offline' : 'ok';
      },
      async close() {
        closed = true;
      },
    };
  },
});
