// SPDX-License-Identifier: Apache-2.0
// Shared test fixtures: temp dirs, a controllable in-memory driver, device/model builders.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { boolish, createLogger, createMapper, defineDriver, type MapperHandle, MapperError, type PropertyValue, type ReadResult, type SampleConsumer, z } from '@mapperkit/framework';
import { type Device, type DeviceModel, encodeAnyAs, encodeCustomizedValue } from '@mapperkit/framework/dmi';
import { TestEdgecore } from '@mapperkit/framework/testing';

export function tempDir(prefix = 'mk-'): { dir: string; cleanup: () => void } {
  // Unix socket paths must stay short (108 bytes), so use /tmp directly.
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** What a test can see and steer of the fake devices behind the test driver. */
export interface FakeWorld {
  /** Register values per device id (`ns/name`) and register number. */
  values: Map<string, Map<number, PropertyValue>>;
  /** Every read() call: device id and the property names it carried. */
  reads: { device: string; properties: string[]; at: number }[];
  /** Every write() call. */
  writes: { device: string; property: string; value: PropertyValue }[];
  /** connect() calls per device. */
  connects: Map<string, number>;
  /** Devices whose connect() fails. */
  unreachable: Set<string>;
  /** Devices whose read() rejects (connection lost). */
  broken: Set<string>;
  /** Devices whose read() never resolves. */
  hanging: Set<string>;
  /** close() calls per device. */
  closes: Map<string, number>;
  /** Highest number of read/write/state calls in flight at once on one client. */
  maxConcurrent: number;
  /** Delay added to every read/write/state call, ms. */
  latencyMs: number;
  /** Extra delay of reads that include these registers, ms. */
  slowRegisters: Map<number, number>;
  /** Devices whose state() throws Unreachable (e.g. a gateway reporting its link down). */
  linkDown: Set<string>;
}

export function newWorld(): FakeWorld {
  return { values: new Map(), reads: [], writes: [], connects: new Map(), unreachable: new Set(), broken: new Set(), hanging: new Set(), closes: new Map(), maxConcurrent: 0, latencyMs: 0, slowRegisters: new Map(), linkDown: new Set() };
}

/** A driver for protocol "fake" backed by a FakeWorld. Registers that were never set read as register*10. */
export function fakeDriver(world: FakeWorld) {
  return defineDriver({
    protocol: 'fake',
    protocolConfig: z.object({ host: z.string().default('sim'), port: z.coerce.number().int().min(1).max(65535).default(502) }),
    visitorConfig: z.object({ register: z.coerce.number().int().nonnegative(), fail: boolish().default(false) }),
    async connect({ device }) {
      world.connects.set(device.id, (world.connects.get(device.id) ?? 0) + 1);
      if (world.unreachable.has(device.id)) throw new MapperError('Unreachable', `fake device ${device.id} unreachable`);
      let closed = false;
      let inFlight = 0;
      const track = async <T>(fn: () => Promise<T>): Promise<T> => {
        inFlight++;
        world.maxConcurrent = Math.max(world.maxConcurrent, inFlight);
        try {
          if (world.latencyMs > 0) await new Promise((r) => setTimeout(r, world.latencyMs));
          return await fn();
        } finally {
          inFlight--;
        }
      };
      return {
        read: (requests, signal) => track(async (): Promise<ReadResult[]> => {
          world.reads.push({ device: device.id, properties: requests.map((r) => r.name), at: Date.now() });
          if (closed) throw new MapperError('Unreachable', 'closed');
          if (world.broken.has(device.id)) throw new MapperError('Unreachable', 'link down');
          if (world.hanging.has(device.id)) await new Promise((_, rej) => signal.addEventListener('abort', () => rej(signal.reason), { once: true }));
          const slow = Math.max(0, ...requests.map((r) => world.slowRegisters.get(r.visitor.register) ?? 0));
          if (slow > 0) await new Promise((r) => setTimeout(r, slow));
          const regs = world.values.get(device.id);
          return requests.map((r) => {
            if (r.visitor.fail) return { ok: false, error: new MapperError('DeviceError', `register ${r.visitor.register} failed`) };
            const v = regs?.get(r.visitor.register) ?? r.visitor.register * 10;
            return { ok: true, value: r.type === 'boolean' ? Boolean(v) : r.type === 'string' ? String(v) : v };
          });
        }),
        write: (request, value) => track(async () => {
          world.writes.push({ device: device.id, property: request.name, value });
          let regs = world.values.get(device.id);
          if (!regs) world.values.set(device.id, (regs = new Map()));
          regs.set(request.visitor.register, value);
        }),
        state: () =>
          track(async () => {
            if (world.linkDown.has(device.id)) throw new MapperError('Unreachable', 'gateway reports its serial link down');
            return world.broken.has(device.id) ? 'unhealthy' : 'ok';
          }),
        async close() {
          closed = true;
          world.closes.set(device.id, (world.closes.get(device.id) ?? 0) + 1);
        },
      };
    },
  });
}

export interface PropDef {
  name: string;
  type?: string;
  access?: 'ReadWrite' | 'ReadOnly';
  register: number;
  collectCycle?: number;
  reportCycle?: number;
  reportToCloud?: boolean;
  desired?: string;
  fail?: boolean;
  minimum?: string;
  maximum?: string;
}

export function model(name: string, props: PropDef[], namespace = 'default'): DeviceModel {
  return {
    name,
    namespace,
    spec: {
      properties: props.map((p) => ({ name: p.name, description: '', type: p.type ?? 'INT', accessMode: p.access ?? 'ReadOnly', minimum: p.minimum ?? '', maximum: p.maximum ?? '', unit: '' })),
      commands: [],
    },
  };
}

export function device(name: string, modelName: string, props: PropDef[], opts: { namespace?: string; protocol?: Record<string, unknown>; protocolName?: string; stateReport?: boolean } = {}): Device {
  return {
    name,
    namespace: opts.namespace ?? 'default',
    spec: {
      deviceModelReference: modelName,
      protocol: { protocolName: opts.protocolName ?? 'fake', configData: encodeCustomizedValue(opts.protocol ?? { host: 'sim', port: 502 }) },
      properties: props.map((p) => ({
        name: p.name,
        desired: p.desired !== undefined ? { value: p.desired, metadata: {} } : undefined,
        visitors: { protocolName: 'fake', configData: { data: { register: encodeAnyAs('Float', p.register), ...(p.fail ? { fail: encodeAnyAs('Bool', true) } : {}) } } },
        reportCycle: BigInt(p.reportCycle ?? 200),
        collectCycle: BigInt(p.collectCycle ?? 100),
        reportToCloud: p.reportToCloud ?? true,
        pushMethod: undefined,
      })),
      methods: [],
    },
    status: { twins: [], reportToCloud: opts.stateReport ?? false, reportCycle: 500n },
  };
}

export function mapperConfigYaml(dir: string, extra = ''): string {
  return `grpc_server:\n  socket_path: ${join(dir, 'mapper.sock')}\ncommon:\n  name: fake-mapper\n  protocol: fake\n  edgecore_sock: ${join(dir, 'dmi.sock')}\nruntime:\n  report_rate: 1000\n  report_burst: 1000\n  state_check_ms: 200\n  backoff_initial_ms: 50\n  backoff_max_ms: 200\n  read_timeout_ms: 500\n${extra}`;
}

export interface Rig {
  dir: string;
  ec: TestEdgecore;
  mapper: MapperHandle;
  world: FakeWorld;
  stop(): Promise<void>;
}

/** A test edgecore plus a mapper with the fake driver, connected over real unix sockets. */
export async function startRig(opts: { devices?: Device[]; models?: DeviceModel[]; limiter?: false | { rate: number; burst: number }; configExtra?: string; consumers?: SampleConsumer[]; world?: FakeWorld } = {}): Promise<Rig> {
  const { dir, cleanup } = tempDir();
  const world = opts.world ?? newWorld();
  const ec = await TestEdgecore.start({ socketPath: join(dir, 'dmi.sock'), devices: opts.devices ?? [], models: opts.models ?? [], limiter: opts.limiter ?? false });
  const mapper = await createMapper({
    driver: fakeDriver(world),
    config: mapperConfigYaml(dir, opts.configExtra),
    logger: createLogger({ level: process.env['MK_TEST_LOG'] ? 'debug' : 'silent' }),
    consumers: opts.consumers ?? [],
  });
  await mapper.whenRegistered();
  return {
    dir,
    ec,
    mapper,
    world,
    async stop() {
      await mapper.stop();
      await ec.close();
      cleanup();
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until `fn` returns true; rejects after `timeoutMs` naming `what`. */
export async function until(fn: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}
