// SPDX-License-Identifier: Apache-2.0
// Modbus TCP responses off the wire: the real driver (modbus-serial framing + the driver's
// link, planner and decoders) reads from a server that answers each request with a fuzzed
// frame — valid frames with mutated bytes, wrong transaction ids, lying byte counts and MBAP
// lengths, exceptions, random bytes, split or trailing frames, a closed connection, silence.
// read() must settle (values, per-property MapperErrors, or a MapperError rejection) and
// nothing may escape as an uncaught exception.
import { createServer, type Server, type Socket } from 'node:net';
import fc from 'fast-check';
import { createLogger, type DeviceClient, isMapperError, type PropertyRequest } from '@mapperkit/framework';
import { createModbusDriver, type ModbusDriver, type ModbusVisitor, protocolConfig, visitorConfig } from '@mapperkit/mapper-modbus';
import { type FuzzTarget, fuzzProperty, share } from '../harness.js';

type Strategy = 'valid' | 'mutate' | 'random' | 'wrong-tid' | 'wrong-unit' | 'wrong-fc' | 'exception' | 'bytecount-lie' | 'length-lie' | 'split' | 'trailing' | 'close' | 'half-close' | 'silence';

interface Answer {
  readonly strategy: Strategy;
  readonly data: Uint8Array;
  readonly edits: readonly [number, number][];
  readonly n: number;
}

const answerArb: fc.Arbitrary<Answer> = fc.record({
  strategy: fc.oneof(
    { weight: 4, arbitrary: fc.constant<Strategy>('valid') },
    { weight: 6, arbitrary: fc.constant<Strategy>('mutate') },
    { weight: 2, arbitrary: fc.constantFrom<Strategy>('random', 'wrong-tid', 'wrong-unit', 'wrong-fc', 'exception', 'bytecount-lie', 'length-lie', 'split', 'trailing') },
    { weight: 1, arbitrary: fc.constantFrom<Strategy>('close', 'half-close') },
    { weight: 1, arbitrary: fc.constant<Strategy>('silence') },
  ),
  data: fc.uint8Array({ minLength: 0, maxLength: 300 }),
  edits: fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 }),
  n: fc.nat(1000),
});

/** A valid response PDU for a request frame (register/bit reads; writes echo). */
function validResponse(req: Buffer, fill: Uint8Array): Buffer {
  const fcode = req[7]!;
  const qty = req.readUInt16BE(10);
  let pdu: Buffer;
  if (fcode === 3 || fcode === 4) {
    const n = Math.min(qty, 125) * 2;
    const body = Buffer.alloc(n);
    for (let i = 0; i < n; i++) body[i] = fill[i % Math.max(1, fill.length)] ?? i;
    pdu = Buffer.concat([Buffer.from([fcode, n]), body]);
  } else if (fcode === 1 || fcode === 2) {
    const n = Math.ceil(Math.min(qty, 2000) / 8);
    const body = Buffer.alloc(n);
    for (let i = 0; i < n; i++) body[i] = fill[i % Math.max(1, fill.length)] ?? 0;
    pdu = Buffer.concat([Buffer.from([fcode, n]), body]);
  } else {
    pdu = req.subarray(7, 12);
  }
  const head = Buffer.alloc(7);
  req.copy(head, 0, 0, 4); // transaction id, protocol id
  head.writeUInt16BE(pdu.length + 1, 4);
  head[6] = req[6]!;
  return Buffer.concat([head, pdu]);
}

function answerFor(req: Buffer, a: Answer, k: number): Buffer | 'close' | 'half-close' | 'silence' {
  const ok = validResponse(req, a.data);
  const edit = (b: Buffer): Buffer => {
    const c = Buffer.from(b);
    for (const [pos, val] of a.edits) if (c.length) c[(pos + k) % c.length] = val;
    return c;
  };
  switch (a.strategy) {
    case 'valid':
      return ok;
    case 'mutate':
      return edit(ok);
    case 'random':
      return Buffer.from(a.data);
    case 'wrong-tid': {
      const c = Buffer.from(ok);
      c.writeUInt16BE((c.readUInt16BE(0) + 1 + a.n) & 0xffff, 0);
      return c;
    }
    case 'wrong-unit': {
      const c = Buffer.from(ok);
      c[6] = (c[6]! + 1 + a.n) & 0xff;
      return c;
    }
    case 'wrong-fc': {
      const c = Buffer.from(ok);
      c[7] = (a.n % 255) + 1;
      return c;
    }
    case 'exception': {
      const c = Buffer.alloc(9);
      req.copy(c, 0, 0, 4);
      c.writeUInt16BE(3, 4);
      c[6] = req[6]!;
      c[7] = req[7]! | 0x80;
      c[8] = a.n % 256;
      return c;
    }
    case 'bytecount-lie': {
      const c = Buffer.from(ok);
      if (c.length > 8) c[8] = a.n % 256;
      return c;
    }
    case 'length-lie': {
      const c = Buffer.from(ok);
      c.writeUInt16BE(a.n % 65536, 4);
      return c;
    }
    case 'split':
      return ok; // written in two parts by the server
    case 'trailing':
      return Buffer.concat([ok, Buffer.from(a.data.subarray(0, 20))]);
    case 'close':
    case 'half-close':
    case 'silence':
      return a.strategy;
  }
}

const PROPS: readonly { name: string; type: PropertyRequest<ModbusVisitor>['type']; visitor: Record<string, unknown> }[] = [
  { name: 't', type: 'float', visitor: { register: 'HoldingRegister', offset: 0, dataType: 'int16', scale: 0.1 } },
  { name: 'f', type: 'double', visitor: { register: 'HoldingRegister', offset: 4, dataType: 'float32' } },
  { name: 'u', type: 'int', visitor: { register: 'HoldingRegister', offset: 8, dataType: 'uint32' } },
  { name: 's', type: 'string', visitor: { register: 'HoldingRegister', offset: 10, dataType: 'string', limit: 4 } },
  { name: 'h', type: 'float', visitor: { register: 'InputRegister', offset: 1, dataType: 'uint16', scale: 0.1 } },
  { name: 'c', type: 'boolean', visitor: { register: 'CoilRegister', offset: 0 } },
  { name: 'd', type: 'boolean', visitor: { register: 'DiscreteInputRegister', offset: 1 } },
  { name: 'b', type: 'bytes', visitor: { register: 'CoilRegister', offset: 3, dataType: 'bytes', limit: 16 } },
];

const LANES = 16;
/** Inputs per property run, consumed by whichever lane is free. */
const PER_RUN = 64;

/** One fake device and one driver client: answers each request with the lane's current fuzz input. */
class Lane {
  current: Answer | undefined;
  private k = 0;
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  private client: DeviceClient<ModbusVisitor> | undefined;
  private protocol: ReturnType<typeof protocolConfig.parse> | undefined;
  private reads = 0;
  private failedTicks = 0;

  async start(): Promise<void> {
    this.server = createServer((sock) => this.serve(sock));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    const port = (this.server.address() as { port: number }).port;
    this.protocol = protocolConfig.parse({ communicateMode: 'TCP', ip: '127.0.0.1', port, slaveID: 1, timeout: 40, connectTimeout: 1000, breakerThreshold: 1000, breakerCooldown: 1, maxGap: 16 });
  }

  private serve(sock: Socket): void {
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 7) {
        const len = buf.readUInt16BE(4) + 6;
        if (buf.length < len) break;
        const req = Buffer.from(buf.subarray(0, len));
        buf = buf.subarray(len);
        const a = this.current;
        if (!a || req.length < 12) continue;
        const ans = answerFor(req, a, this.k++);
        if (ans === 'silence') continue;
        if (ans === 'close') {
          sock.destroy();
          return;
        }
        if (ans === 'half-close') {
          const ok = validResponse(req, a.data);
          sock.end(ok.subarray(0, Math.max(1, ok.length >> 1)));
          return;
        }
        if (a.strategy === 'split' && ans.length > 2) {
          const cut = 1 + (a.n % (ans.length - 1));
          sock.write(ans.subarray(0, cut));
          setTimeout(() => sock.writable && sock.write(ans.subarray(cut)), a.n % 3);
        } else sock.write(ans);
      }
    });
  }

  private async ensureClient(): Promise<DeviceClient<ModbusVisitor>> {
    if (this.client) return this.client;
    // A fresh driver per connection: the link registry paces reconnects of a shared link (200 ms → 10 s).
    const driver: ModbusDriver = createModbusDriver();
    this.client = await driver.connect({ device: DEVICE, config: this.protocol!, log: LOG }, AbortSignal.timeout(5000));
    return this.client;
  }

  async drop(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    await c?.close();
  }

  /** One fuzz input: one read of one to three properties answered with `a`. */
  async step(a: Answer, requests: readonly PropertyRequest<ModbusVisitor>[], count: (k: string) => void): Promise<void> {
    this.current = a;
    const c = await this.ensureClient();
    const subset = [requests[a.n % requests.length]!, ...(a.n % 3 === 0 ? [requests[(a.n >> 3) % requests.length]!] : []), ...(a.n % 5 === 0 ? [requests[(a.n >> 5) % requests.length]!] : [])].filter(
      (r, i, all) => all.indexOf(r) === i,
    );
    const settled = await Promise.race([
      c.read(subset, AbortSignal.timeout(2000)).then(
        (r) => ({ r }),
        (e: unknown) => ({ e }),
      ),
      new Promise<{ hang: true }>((r) => setTimeout(() => r({ hang: true }), 4000)),
    ]);
    if ('hang' in settled) {
      await Promise.race([this.drop(), new Promise((r) => setTimeout(r, 2000))]);
      this.client = undefined;
      throw new Error(`read() did not settle within 4 s (strategy ${a.strategy})`);
    }
    if ('e' in settled) {
      if (!isMapperError(settled.e)) throw settled.e;
      count(`rejected:${settled.e.kind}`);
      await this.drop();
      return;
    }
    const r = settled.r;
    if (r.length !== subset.length) throw new Error(`${r.length} results for ${subset.length} requests`);
    for (const x of r) {
      if (x.ok) count('value');
      else if (!isMapperError(x.error)) throw new Error(`property error is not a MapperError: ${String(x.error)}`);
      else count(`property error:${x.error.kind}`);
    }
    // As the framework does: three reads in a row where every property failed → reconnect.
    this.failedTicks = r.every((x) => !x.ok) ? this.failedTicks + 1 : 0;
    if (this.failedTicks >= 3 || a.strategy === 'close' || a.strategy === 'half-close' || ++this.reads % 200 === 0) {
      if (this.failedTicks >= 3) count('reconnect after 3 failed reads');
      this.failedTicks = 0;
      await this.drop();
    }
  }

  async close(): Promise<void> {
    await this.drop().catch(() => undefined);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

const LOG = createLogger({ level: 'silent' });
const DEVICE = { id: 'default/fuzz', name: 'fuzz', namespace: 'default', model: 'm' };

export const modbusWireTarget: FuzzTarget = {
  name: 'modbus-wire',
  description: `the Modbus driver (modbus-serial TCP framing, link queue, planner, decoders) reading from fake devices that answer with fuzzed frames: mutated, wrong tid/unit/function, exception codes, lying byte count / MBAP length, random, split, trailing bytes, close, silence (${LANES} fake devices in parallel; one input = one read, each of its requests answered by one fuzzed frame)`,
  async run(ctx) {
    const lanes = Array.from({ length: LANES }, () => new Lane());
    for (const l of lanes) await l.start();
    const requests: PropertyRequest<ModbusVisitor>[] = PROPS.map((p) => ({
      name: p.name,
      type: p.type,
      accessMode: 'ReadOnly',
      visitor: visitorConfig.parse(p.visitor),
      minimum: undefined,
      maximum: undefined,
      unit: '',
    }));
    const count = (key: string): void => {
      ctx.stats[key] = (ctx.stats[key] ?? 0) + 1;
    };
    try {
      const result = await fuzzProperty(
        'fuzzed response frames → read() settles cleanly',
        fc.array(answerArb, { minLength: PER_RUN, maxLength: PER_RUN }),
        async (answers) => {
          const errors: unknown[] = [];
          let next = 0;
          await Promise.all(
            lanes.map(async (l) => {
              while (next < answers.length) {
                const a = answers[next++]!;
                await l.step(a, requests, count).catch((e: unknown) => void errors.push(e));
              }
            }),
          );
          if (errors.length > 0) throw errors[0];
        },
        { ...ctx, runs: Math.ceil(share(ctx.runs, 1, 0) / PER_RUN) },
        { isAsync: true, batch: 200, shrink: false, inputsPerRun: PER_RUN },
      );
      return [result];
    } finally {
      for (const l of lanes) await l.close();
    }
  },
};
