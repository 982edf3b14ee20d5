// SPDX-License-Identifier: Apache-2.0
// The Modbus driver: TCP and RTU devices on shared, serialised links; one read() per tick
// answered by a coalesced request plan; writes with inverse conversion and range checks.
import {
  defineDriver,
  type DeviceClient,
  type DeviceState,
  type DriverDefinition,
  type Logger,
  MapperError,
  type PropertyRequest,
  type PropertyValue,
  type ReadResult,
} from '@mapperkit/framework';
import { type CircuitBreaker } from './breaker.js';
import { decodeBits, decodeRegisters, encodeWrite, toModelValue } from './codec.js';
import { type ModbusProtocol, type ModbusVisitor, protocolConfig, type Table, tableName, visitorConfig } from './config.js';
import { isAddressException, ModbusExceptionError } from './errors.js';
import { LinkError, LinkRegistry, type LinkStats, type ModbusLink, type ModbusRequest, type ModbusResponse } from './link.js';
import { type Barrier, bisect, isBitTable, type PlanItem, planReads, type Span } from './planner.js';

export type { LinkStats } from './link.js';

/** The Modbus driver, plus counters of its links (for tests, benchmarks and diagnostics). */
export interface ModbusDriver extends DriverDefinition<ModbusProtocol, ModbusVisitor> {
  /** Counters and breaker states of every open link. */
  linkStats(): LinkStats[];
}

const READ_FC: Readonly<Record<Table, 1 | 2 | 3 | 4>> = { coil: 1, discrete: 2, holding: 3, input: 4 };

type Req = PropertyRequest<ModbusVisitor>;

const PLAN_CACHE_LIMIT = 64;

/** A span of a cached plan with its request, built once and sent again every tick. */
interface Planned extends Span {
  readonly req: ModbusRequest;
}

/** Answers (or errors) of one read's spans, in span order. */
interface Outcomes {
  readonly res: (ModbusResponse | undefined)[];
  readonly err: unknown[];
}

function planned(span: Span): Planned {
  return { ...span, req: { fc: READ_FC[span.table], address: span.start, count: span.count } };
}

/** `p`, or the abort reason as soon as `signal` aborts. */
function raceAbort<T>(signal: AbortSignal, p: Promise<T>): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

class ModbusDeviceClient implements DeviceClient<ModbusVisitor> {
  private readonly link: ModbusLink;
  private readonly registry: LinkRegistry;
  private readonly p: ModbusProtocol;
  private readonly deviceId: string;
  private readonly breaker: CircuitBreaker;
  private readonly log: Logger;
  private closed = false;
  private readonly ids = new WeakMap<Req, number>();
  private nextId = 1;
  private readonly plans = new Map<string, Planned[]>();
  /** Properties that must be read alone (the device refused their registers). */
  private readonly isolated = new WeakSet<Req>();
  /** Ranges merged reads must not touch (learned from refused merged reads). */
  private readonly barriers: Barrier[] = [];
  private lastBatch: { requests: readonly Req[]; key: string; plan: Planned[] } | undefined;

  constructor(args: { link: ModbusLink; registry: LinkRegistry; protocol: ModbusProtocol; deviceId: string; breaker: CircuitBreaker; log: Logger }) {
    this.link = args.link;
    this.registry = args.registry;
    this.p = args.protocol;
    this.deviceId = args.deviceId;
    this.breaker = args.breaker;
    this.log = args.log;
  }

  private err(req: Req, e: unknown): MapperError {
    const device = this.deviceId;
    const property = req.name;
    if (e instanceof MapperError) {
      const where = `${tableName(req.visitor.table)} ${req.visitor.address}`;
      const msg = `device ${device} property ${property} (${where}): ${e.message}`;
      const out =
        e instanceof ModbusExceptionError ? new ModbusExceptionError(e.kind, e.exceptionCode, msg, { device, property }) : new MapperError(e.kind, msg, { device, property, cause: e.cause ?? e });
      return out;
    }
    return new MapperError('DeviceError', `device ${device} property ${property}: ${String((e as Error)?.message ?? e)}`, { device, property, cause: e });
  }

  private planFor(requests: readonly Req[]): Planned[] {
    // Most devices read the same batch every tick (the very same array, from the runtime):
    // compare with the last one before hashing.
    const last = this.lastBatch;
    if (last && last.requests === requests && this.plans.get(last.key) === last.plan) return last.plan;
    if (last && last.requests.length === requests.length && this.plans.get(last.key) === last.plan) {
      let same = true;
      for (let i = 0; i < requests.length; i++) {
        if (last.requests[i] !== requests[i]) {
          same = false;
          break;
        }
      }
      if (same) return last.plan;
    }
    const ids = new Array<number>(requests.length);
    for (let i = 0; i < requests.length; i++) {
      const r = requests[i]!;
      let id = this.ids.get(r);
      if (id === undefined) this.ids.set(r, (id = this.nextId++));
      ids[i] = id;
    }
    // One flat string (a key built with += is a rope of one piece per property, kept by the cache).
    const key = ids.join(',');
    let plan = this.plans.get(key);
    if (!plan) {
      const items: PlanItem[] = requests.map((r, index) => ({ index, table: r.visitor.table, start: r.visitor.address, count: r.visitor.count }));
      const p = this.p;
      plan = planReads(
        items,
        { coalesce: p.coalesce, maxGap: p.maxGap, maxGapBits: p.maxGapBits, maxRegisters: p.maxRegisters, maxBits: p.maxBits },
        (i) => this.isolated.has(requests[i.index]!),
        this.barriers,
      ).map(planned);
      if (this.plans.size >= PLAN_CACHE_LIMIT) this.plans.clear();
      this.plans.set(key, plan);
    }
    // The runtime passes the same array every tick; keep a copy only if it might be changed.
    this.lastBatch = { requests: Object.isFrozen(requests) ? requests : [...requests], key, plan };
    return plan;
  }

  /**
   * Queues one read request per span (the link sends them one after the other) and resolves
   * with every outcome, in span order. Rejects at once if `signal` aborts.
   */
  private readSpans(spans: readonly Planned[], signal: AbortSignal): Promise<Outcomes> {
    return new Promise<Outcomes>((resolve, reject) => {
      const n = spans.length;
      const out: Outcomes = { res: new Array<ModbusResponse | undefined>(n), err: new Array<unknown>(n) };
      let pending = n;
      if (pending === 0) {
        resolve(out);
        return;
      }
      const onAbort = (): void => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      const slave = this.p.slaveId;
      const timeoutMs = this.p.timeoutMs;
      for (let i = 0; i < n; i++) {
        this.link.submit(slave, timeoutMs, signal, false, spans[i]!.req, (err, res) => {
          if (err === undefined) out.res[i] = res;
          else out.err[i] = err;
          if (--pending === 0) {
            signal.removeEventListener('abort', onAbort);
            resolve(out);
          }
        });
      }
    });
  }

  private async readSpan(span: Span, signal: AbortSignal): Promise<ModbusResponse> {
    const o = await this.readSpans([planned(span)], signal);
    if (o.res[0]) return o.res[0];
    throw o.err[0];
  }

  /** One write transaction; rejects at once if `signal` aborts. */
  private writeOne(req: ModbusRequest, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      this.link.submit(this.p.slaveId, this.p.timeoutMs, signal, true, req, (err) => {
        signal.removeEventListener('abort', onAbort);
        if (err === undefined) resolve();
        else reject(err);
      });
    });
  }

  private fill(span: Span, res: ModbusResponse, requests: readonly Req[], results: ReadResult[]): void {
    const bits = isBitTable(span.table);
    const bytes = res.bytes ?? Buffer.alloc(0);
    const dv = bits ? undefined : new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (const m of span.members) {
      const req = requests[m.index]!;
      const rel = m.start - span.start;
      try {
        let raw;
        if (bits) {
          const all = res.bits ?? [];
          if (all.length < rel + m.count) throw new MapperError('DeviceError', `answer has ${all.length} bits, expected ${span.count}`);
          raw = decodeBits(all.slice(rel, rel + m.count), req.visitor);
        } else {
          if (bytes.length < (rel + m.count) * 2) throw new MapperError('DeviceError', `answer has ${bytes.length} bytes, expected ${span.count * 2}`);
          raw = decodeRegisters(bytes, req.visitor, rel * 2, dv);
        }
        results[m.index] = { ok: true, value: toModelValue(raw, req.visitor, req.type) };
      } catch (e) {
        results[m.index] = { ok: false, error: this.err(req, e) };
      }
    }
  }

  private failAll(span: Span, e: unknown, requests: readonly Req[], results: ReadResult[]): void {
    for (const m of span.members) results[m.index] = { ok: false, error: this.err(requests[m.index]!, e) };
  }

  /**
   * Re-reads a merged range the device refused, split in halves until every part is either
   * answered or a single property (which then carries the exception). What it learns (refused
   * properties, holes that cannot be bridged) becomes barriers for every later plan.
   */
  private async refine(span: Span, requests: readonly Req[], results: ReadResult[], signal: AbortSignal): Promise<void> {
    const halves = bisect(span);
    const answered = [false, false];
    for (const [k, half] of halves.entries()) {
      try {
        const res = await this.readSpan(half, signal);
        this.fill(half, res, requests, results);
        answered[k] = true;
      } catch (e) {
        if (e instanceof LinkError && e.reason === 'closed') throw e;
        signal.throwIfAborted();
        if (e instanceof ModbusExceptionError && isAddressException(e.exceptionCode)) {
          if (half.members.length > 1) {
            await this.refine(half, requests, results, signal);
            continue;
          }
          this.isolated.add(requests[half.members[0]!.index]!);
          this.barriers.push({ table: half.table, start: half.start, end: half.start + half.count });
        }
        this.failAll(half, e, requests, results);
      }
    }
    if (answered[0] && answered[1]) {
      // Each half alone is fine, together they are not: never bridge what lies between them.
      const [l, r] = halves;
      const lEnd = l.start + l.count;
      this.barriers.push({ table: span.table, start: Math.min(lEnd, r.start), end: Math.max(lEnd, r.start) });
    }
  }

  async read(requests: readonly Req[], signal: AbortSignal): Promise<readonly ReadResult[]> {
    signal.throwIfAborted();
    if (this.closed) throw new MapperError('Unreachable', `device ${this.deviceId}: client closed`);
    if (!this.link.isOpen) throw this.link.downError();
    if (this.breaker.isOpen()) throw this.circuitError();
    const spans = this.planFor(requests);
    const results: ReadResult[] = new Array<ReadResult>(requests.length);
    const outcomes = await this.readSpans(spans, signal);
    let learned = false;
    for (let i = 0; i < spans.length; i++) {
      const span = spans[i]!;
      const res = outcomes.res[i];
      if (res) {
        this.fill(span, res, requests, results);
        continue;
      }
      const e = outcomes.err[i];
      signal.throwIfAborted();
      if (e instanceof LinkError && e.reason === 'closed') throw e;
      if (e instanceof ModbusExceptionError && isAddressException(e.exceptionCode)) {
        if (span.members.length > 1) {
          await this.refine(span, requests, results, signal);
          learned = true;
          this.log.info(
            { range: `${tableName(span.table)} ${span.start}..${span.start + span.count - 1}`, exception: e.exceptionCode },
            'the device refused a merged read; re-planned around the refused registers',
          );
          continue;
        }
        const req = requests[span.members[0]!.index]!;
        if (!this.isolated.has(req)) {
          this.isolated.add(req);
          this.barriers.push({ table: span.table, start: span.start, end: span.start + span.count });
          learned = true;
        }
      }
      this.failAll(span, e, requests, results);
    }
    if (learned) this.plans.clear();
    if (this.breaker.isOpen()) throw this.circuitError();
    return results;
  }

  private circuitError(): MapperError {
    return new MapperError(
      'Unreachable',
      `device ${this.deviceId}: slave ${this.p.slaveId} on ${this.link.key} did not answer ${this.breaker.threshold} requests in a row; circuit open, next probe in ${this.breaker.retryInMs()} ms`,
      { device: this.deviceId },
    );
  }

  async write(request: Req, value: PropertyValue, signal: AbortSignal): Promise<void> {
    const v = request.visitor;
    let enc;
    try {
      enc = encodeWrite(value, v, request);
    } catch (e) {
      throw this.err(request, e);
    }
    if (this.closed) throw new MapperError('Unreachable', `device ${this.deviceId}: client closed`, { device: this.deviceId, property: request.name });
    const slave = this.p.slaveId;
    try {
      if (enc.kind === 'bits') {
        await this.writeOne(enc.bits.length === 1 ? { fc: 5, address: v.address, value: enc.bits[0]! } : { fc: 15, address: v.address, values: enc.bits }, signal);
      } else if (enc.kind === 'words') {
        await this.writeOne(enc.words.length === 1 && !v.writeMultiple ? { fc: 6, address: v.address, value: enc.words[0]! } : { fc: 16, address: v.address, values: enc.words }, signal);
      } else {
        // One bit of a holding register: read-modify-write as one job, so nothing else on the
        // link runs in between.
        const { bitIndex, on } = enc;
        await raceAbort(signal, this.link.enqueue(slave, this.p.timeoutMs, signal, true, async (tx) => {
          const res = await tx({ fc: 3, address: v.address, count: 1 });
          const cur = res.bytes && res.bytes.length >= 2 ? res.bytes.readUInt16BE(0) : 0;
          // The register's value as the device sees it: undo and redo isSwap around the bit change.
          const logical = v.byteSwap ? ((cur & 0xff) << 8) | (cur >> 8) : cur;
          const next = on ? logical | (1 << bitIndex) : logical & ~(1 << bitIndex) & 0xffff;
          const wire = v.byteSwap ? ((next & 0xff) << 8) | (next >> 8) : next;
          if (wire === cur) return;
          await tx(v.writeMultiple ? { fc: 16, address: v.address, values: [wire] } : { fc: 6, address: v.address, value: wire });
        }));
      }
    } catch (e) {
      throw this.err(request, e);
    }
  }

  async state(): Promise<DeviceState> {
    if (this.closed || !this.link.isOpen) return 'offline';
    if (this.breaker.isOpen()) return 'offline';
    return 'ok';
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.registry.release(this.link);
  }
}

/**
 * Creates a Modbus driver with its own set of links. Devices of one driver that name the
 * same TCP endpoint (host:port) or serial port share one connection.
 */
export function createModbusDriver(): ModbusDriver {
  const registry = new LinkRegistry();
  const driver = defineDriver({
    protocol: 'modbus',
    protocolConfig,
    visitorConfig,
    async connect({ device, config, log }, signal) {
      const link = registry.acquire(config, log);
      try {
        await link.open(signal);
        const breaker = link.breaker(config.slaveId, config.breakerThreshold, config.breakerCooldownMs);
        if (breaker.isOpen())
          throw new MapperError('Unreachable', `slave ${config.slaveId} on ${link.key} is not answering: circuit open, next probe in ${breaker.retryInMs()} ms`, { device: device.id });
        return new ModbusDeviceClient({ link, registry, protocol: config, deviceId: device.id, breaker, log });
      } catch (err) {
        await registry.release(link);
        throw err;
      }
    },
  });
  return Object.assign(driver, { linkStats: () => registry.stats() });
}

/** The default driver instance: what the `mapper-modbus` bin runs (src/main.ts). */
export default createModbusDriver();
