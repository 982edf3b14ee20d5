// SPDX-License-Identifier: Apache-2.0
// Units of the sample path: the shared scheduler, the reused read call, samples, the last-value
// cache and the reporter's twin slots.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { MapperError, createLogger } from '@mapperkit/framework';
import { RepeatedCall } from '../src/runtime/backoff.ts';
import { LastValueCache } from '../src/runtime/last-values.ts';
import { Reporter, type ReportTransport } from '../src/runtime/reporter.ts';
import { FunctionTask, nextAligned, phaseOf, Scheduler } from '../src/runtime/scheduler.ts';
import { LagRecorder, newStats } from '../src/runtime/stats.ts';
import { decodeDeviceRequest } from '../src/runtime/dmi-server.ts';
import { Device, RegisterDeviceRequest } from '../src/generated/v1beta1/api.ts';
import { encodeCustomizedValue } from '../src/dmi/any-codec.ts';
import { RuntimeSample, type Sample, type SampleSource } from '../src/sample.ts';
import type { DeviceSpec } from '../src/dmi/model.ts';

const source = (property: string, deviceId = 'default/d1', type: SampleSource['type'] = 'float'): SampleSource => ({
  deviceId,
  deviceName: deviceId.split('/')[1]!,
  namespace: 'default',
  property,
  type,
  collectCycle: 1000,
  reportCycle: 1000,
  pushMethod: undefined,
});

describe('scheduler', () => {
  it('runs tasks in due order, once each, and reschedules', async () => {
    const s = new Scheduler();
    const ran: string[] = [];
    const t0 = performance.now();
    const a = new FunctionTask(() => ran.push('a'));
    const b = new FunctionTask(() => ran.push('b'));
    const c = new FunctionTask(() => ran.push('c'));
    s.schedule(c, t0 + 30);
    s.schedule(a, t0 + 10);
    s.schedule(b, t0 + 20);
    s.schedule(b, t0 + 5); // moved earlier
    await sleep(60);
    assert.deepEqual(ran, ['b', 'a', 'c']);
    assert.equal(s.size, 0);
  });

  it('cancel removes a task; a throwing task does not stop the others', async () => {
    const s = new Scheduler();
    const ran: string[] = [];
    const t0 = performance.now();
    const a = new FunctionTask(() => {
      ran.push('a');
      throw new Error('task bug');
    });
    const b = new FunctionTask(() => ran.push('b'));
    const c = new FunctionTask(() => ran.push('c'));
    s.schedule(a, t0 + 5);
    s.schedule(b, t0 + 5);
    s.schedule(c, t0 + 10);
    s.cancel(c);
    s.cancel(c);
    assert.equal(s.size, 2);
    await sleep(40);
    assert.deepEqual(ran.sort(), ['a', 'b']);
  });

  it('keeps heap order under many random (re)schedules and cancels', () => {
    const s = new Scheduler();
    const tasks = Array.from({ length: 200 }, () => new FunctionTask(() => undefined));
    let seed = 7;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const now = performance.now() + 1e6;
    for (let i = 0; i < 2000; i++) {
      const t = tasks[Math.floor(rnd() * tasks.length)]!;
      if (rnd() < 0.2) s.cancel(t);
      else s.schedule(t, now + rnd() * 1000);
    }
    // Drain through the private heap: each pop must not be earlier than the previous one.
    const heap = (s as unknown as { heap: FunctionTask[] }).heap;
    let last = -Infinity;
    while (heap.length > 0) {
      const top = heap[0]!;
      assert.ok(top.due >= last, 'heap order');
      last = top.due;
      s.cancel(top);
    }
    for (const t of tasks) assert.equal(t.heapIndex, -1);
  });

  it('phases: spread by device, on 10 ms slots for 1 s cycles, aligned to the cycle', () => {
    const phases = new Set<number>();
    for (let i = 0; i < 1000; i++) {
      const p = phaseOf(`default/dev-${i}/1000`, 1000);
      assert.ok(p >= 0 && p < 1000 && p % 10 === 0, `phase ${p}`);
      phases.add(p);
    }
    assert.ok(phases.size > 80, `1000 devices spread over ${phases.size} of 100 slots`);
    assert.equal(phaseOf('x', 1), 0);
    const p = phaseOf('default/dev-1/250', 250);
    assert.ok(p >= 0 && p < 250);
    assert.equal(nextAligned(1000, 1000, 250), 1250);
    assert.equal(nextAligned(1250, 1000, 250), 1250);
    assert.equal(nextAligned(1251, 1000, 250), 2250);
    assert.equal(nextAligned(10.5, 1, 0), 11);
  });
});

describe('RepeatedCall (read/state calls with a reused signal)', () => {
  it('resolves, reuses the signal while calls succeed, and times out with an aborted signal', async () => {
    const parent = new AbortController();
    const seen: AbortSignal[] = [];
    const call = new RepeatedCall(async (ms: number, signal: AbortSignal) => {
      seen.push(signal);
      if (ms > 0) await sleep(ms);
      return ms;
    }, parent.signal, 'read default/d1');
    assert.equal(await call.call(0, 1000), 0);
    assert.equal(await call.call(0, 1000), 0);
    assert.equal(seen[0], seen[1], 'same signal for consecutive successful calls');
    const started = performance.now();
    await assert.rejects(call.call(200, 30), (e: Error) => e.name === 'TimeoutError' && /read default\/d1 timed out after 30 ms/.test(e.message));
    assert.ok(performance.now() - started < 150, 'rejected at the timeout, not when the work ended');
    assert.equal(seen[2]!.aborted, true, 'the timed-out call saw its signal abort');
    assert.equal(await call.call(0, 30), 0);
    assert.notEqual(seen[3], seen[2], 'a fresh signal after an abort');
    assert.equal(seen[3]!.aborted, false);
    call.dispose();
  });

  it('rejects with the parent reason when the parent aborts, and after it', async () => {
    const parent = new AbortController();
    let signal: AbortSignal | undefined;
    const call = new RepeatedCall((_: undefined, s: AbortSignal) => {
      signal = s;
      return new Promise<number>(() => undefined); // ignores its signal
    }, parent.signal, 'state d');
    const pending = call.call(undefined, 10_000);
    const reason = new MapperError('Cancelled', 'device stopped');
    parent.abort(reason);
    await assert.rejects(pending, (e) => e === reason);
    assert.equal(signal!.aborted, true);
    await assert.rejects(call.call(undefined, 10), (e) => e === reason);
    call.dispose();
  });

  it('a synchronous throw of the work rejects the call; a late answer of a timed-out call is ignored', async () => {
    const parent = new AbortController();
    const call = new RepeatedCall((mode: string) => {
      if (mode === 'throw') throw new Error('sync bug');
      return sleep(mode === 'slow' ? 60 : 0).then(() => mode);
    }, parent.signal, 'read x');
    await assert.rejects(call.call('throw', 100), /sync bug/);
    await assert.rejects(call.call('slow', 20), (e: Error) => e.name === 'TimeoutError');
    assert.equal(await call.call('fast', 200), 'fast');
    await sleep(80); // the slow call's late answer arrives now and must not disturb anything
    assert.equal(await call.call('fast', 200), 'fast');
    call.dispose();
  });

  it('replaces the signal after a bounded number of calls (a driver that leaks listeners cannot pile them up)', async () => {
    const parent = new AbortController();
    const signals = new Set<AbortSignal>();
    const call = new RepeatedCall(async (_: undefined, s: AbortSignal) => {
      signals.add(s);
      s.addEventListener('abort', () => undefined); // never removed
    }, parent.signal, 'read leaky');
    for (let i = 0; i < 200; i++) await call.call(undefined, 1000);
    assert.ok(signals.size >= 3 && signals.size <= 4, `${signals.size} signals for 200 calls`);
    call.dispose();
  });
});

describe('RuntimeSample', () => {
  it('reads like a plain Sample, formats its text on demand, serialises like one', () => {
    const s = new RuntimeSample(source('temp'), 21.5, 1700000000000);
    assert.equal(s.deviceId, 'default/d1');
    assert.equal(s.deviceName, 'd1');
    assert.equal(s.namespace, 'default');
    assert.equal(s.property, 'temp');
    assert.equal(s.type, 'float');
    assert.equal(s.collectCycle, 1000);
    assert.equal(s.reportCycle, 1000);
    assert.equal(s.pushMethod, undefined);
    assert.equal(s.text, '21.5');
    assert.equal(new RuntimeSample(source('big', 'default/d1', 'int'), 12345678901234567890n, 1).text, '12345678901234567890');
    assert.equal(new RuntimeSample(source('on', 'default/d1', 'boolean'), true, 1).text, 'true');
    assert.equal(new RuntimeSample(source('tiny'), 1.5e-7, 1).text, '0.00000015');
    assert.deepEqual(JSON.parse(JSON.stringify(s)), {
      deviceId: 'default/d1',
      deviceName: 'd1',
      namespace: 'default',
      property: 'temp',
      type: 'float',
      value: 21.5,
      text: '21.5',
      timestamp: 1700000000000,
      collectCycle: 1000,
      reportCycle: 1000,
    });
  });
});

describe('last-value cache', () => {
  it('keeps the latest value and error per property, in place, and serves Samples', () => {
    const c = new LastValueCache();
    c.accept([new RuntimeSample(source('a'), 1.25, 10), new RuntimeSample(source('b', 'default/d1', 'string'), 'x', 10)]);
    c.accept([new RuntimeSample(source('a'), 2.5, 20)]);
    const a = c.get('default/d1', 'a')!;
    assert.equal(a.sample!.value, 2.5);
    assert.equal(a.sample!.text, '2.5');
    assert.equal(a.sample!.timestamp, 20);
    assert.equal(a.error, undefined);
    assert.equal(c.get('default/d1', 'b')!.sample!.value, 'x');
    // A failure keeps the last value; the next sample clears the error.
    const err = new MapperError('Timeout', 'no answer');
    c.readFailed({ deviceId: 'default/d1', property: 'a', error: err, timestamp: 30 });
    assert.equal(c.get('default/d1', 'a')!.error!.error, err);
    assert.equal(c.get('default/d1', 'a')!.sample!.value, 2.5);
    c.accept([new RuntimeSample(source('a'), 3, 40)]);
    assert.equal(c.get('default/d1', 'a')!.error, undefined);
    // A property that only failed so far has no sample.
    c.readFailed({ deviceId: 'default/d2', property: 'z', error: err, timestamp: 5 });
    assert.equal(c.get('default/d2', 'z')!.sample, undefined);
    // Plain Sample objects (not from the runtime) are accepted too.
    const plain: Sample = { ...JSON.parse(JSON.stringify(new RuntimeSample(source('p', 'default/d3'), 7, 1))), value: 7, pushMethod: undefined };
    c.accept([plain]);
    assert.equal(c.device('default/d3').get('p')!.sample!.text, '7');
    c.deviceRemoved('default/d1');
    assert.equal(c.get('default/d1', 'a'), undefined);
    assert.equal(c.device('default/d1').size, 0);
    c.accept([new RuntimeSample(source('a'), 9, 50)]);
    assert.equal(c.get('default/d1', 'a')!.sample!.value, 9);
  });
});

describe('reporter twin slots', () => {
  const spec = (props: { name: string; reportToCloud: boolean }[]): DeviceSpec =>
    ({
      id: 'default/d1',
      name: 'd1',
      namespace: 'default',
      properties: props.map((p) => ({ ...p, reportCycle: 50, collectCycle: 50 })),
      stateReport: { reportToCloud: false, reportCycle: 1000 },
    }) as unknown as DeviceSpec;

  it('reports the latest value of each reported property, formatted at send time, across a device restart', async () => {
    const sent: { twins: { propertyName: string; value: string; type: string; ts: string }[] }[] = [];
    const transport: ReportTransport = {
      async reportDeviceStatus(req) {
        sent.push({
          twins: req.reportedDevice!.twins.map((t) => ({ propertyName: t.propertyName, value: t.reported!.value, type: t.reported!.metadata['type']!, ts: t.reported!.metadata['timestamp']! })),
        });
      },
      async reportDeviceStates() {},
    };
    const r = new Reporter(transport, { rate: 1000, burst: 1000 }, createLogger({ level: 'silent' }), newStats());
    const types = new Map<string, 'float' | 'int'>([
      ['t', 'float'],
      ['n', 'int'],
      ['hidden', 'int'],
    ]);
    const s = spec([
      { name: 't', reportToCloud: true },
      { name: 'n', reportToCloud: true },
      { name: 'hidden', reportToCloud: false },
    ]);
    r.addDevice(s, types, 'ok', new Map());
    r.setOnline(true);
    r.accept([new RuntimeSample(source('t'), 1.5, 100), new RuntimeSample(source('hidden', 'default/d1', 'int'), 5, 100)]);
    r.accept([new RuntimeSample(source('t'), 2.25, 200), new RuntimeSample(source('n', 'default/d1', 'int'), 7, 200)]);
    await sleep(120);
    const last = sent.at(-1)!;
    assert.deepEqual(last.twins, [
      { propertyName: 't', value: '2.25', type: 'float', ts: '200' },
      { propertyName: 'n', value: '7', type: 'int', ts: '200' },
    ]);
    // Restarted device (same spec): the last values are kept until new samples arrive.
    const before = sent.length;
    r.addDevice(s, types, 'ok', new Map());
    r.accept([new RuntimeSample(source('n', 'default/d1', 'int'), 8, 300)]);
    await sleep(120);
    assert.ok(sent.length > before);
    assert.deepEqual(sent.at(-1)!.twins.map((t) => `${t.propertyName}=${t.value}@${t.ts}`), ['t=2.25@200', 'n=8@300']);
    await r.close();
  });
});

describe('lag recorder', () => {
  it('percentiles within 1 % of the exact ones, the maximum exact, in constant memory', () => {
    const l = new LagRecorder();
    const values: number[] = [];
    // Mostly on time, a long tail, and zeros (a tick that fired exactly when due).
    for (let i = 0; i < 200_000; i++) {
      const v = i % 10 === 0 ? 0 : i % 97 === 0 ? 5 + (i % 1000) : 0.05 + (i % 300) / 100;
      values.push(v);
      l.record(v);
    }
    values.sort((a, b) => a - b);
    const exact = (p: number): number => values[Math.max(0, Math.ceil((p / 100) * values.length) - 1)]!;
    for (const p of [10, 50, 90, 99, 99.9]) {
      const got = l.percentile(p);
      const want = exact(p);
      assert.ok(want === 0 ? got === 0 : got >= want && got <= want * 1.01, `p${p}: ${got} vs exact ${want}`);
    }
    assert.equal(l.percentile(100), values.at(-1));
    assert.equal(l.count, 200_000);
    l.record(2 * 3_600_000); // beyond the last bucket: counted, and the maximum stays exact
    assert.equal(l.percentile(100), 2 * 3_600_000);
    l.reset();
    assert.equal(l.percentile(99), 0);
    assert.equal(l.count, 0);
  });
});

describe('RegisterDevice / UpdateDevice request decoding', () => {
  const device = (name: string): Device =>
    Device.fromPartial({
      name,
      namespace: 'plant',
      spec: { deviceModelReference: 'm', protocol: { protocolName: 'virtual', configData: encodeCustomizedValue({ seed: 7, host: 'a' }) }, properties: [{ name: 't', collectCycle: 1000n }] },
    });

  it('gives what the generated decoder gives, plus the device bytes as a copy', () => {
    const req = Buffer.from(RegisterDeviceRequest.encode({ device: device('d1') }).finish());
    const got = decodeDeviceRequest(req);
    assert.deepEqual(got.device, RegisterDeviceRequest.decode(req).device);
    assert.deepEqual(got.deviceBytes, Device.encode(device('d1')).finish());
    req.fill(0); // gRPC may reuse its buffer: the kept bytes do not share it
    assert.deepEqual(Device.decode(got.deviceBytes!), device('d1'));
  });

  it('skips unknown fields, keeps the last occurrence like the generated decoder, and leaves an absent device undefined', () => {
    const w = RegisterDeviceRequest.encode({ device: device('first') });
    w.uint32((7 << 3) | 2).string('unknown field');
    w.uint32((8 << 3) | 0).uint64(5n);
    Device.encode(device('second'), w.uint32(10).fork()).join();
    const buf = w.finish();
    const got = decodeDeviceRequest(buf);
    assert.equal(got.device?.name, RegisterDeviceRequest.decode(buf).device?.name);
    assert.equal(got.device?.name, 'second');
    assert.deepEqual(Device.decode(got.deviceBytes!), device('second'));
    assert.deepEqual(decodeDeviceRequest(new Uint8Array()), { device: undefined });
  });
});

describe('V8 settings of the mapper process', () => {
  it('MAPPER_V8_HEAP_GROWING_PERCENT: default 20, 0 = V8 own, anything else an error naming the variable', async () => {
    const { heapGrowingPercent } = await import('../src/runtime/v8-tuning.ts');
    assert.equal(heapGrowingPercent(undefined), 20);
    assert.equal(heapGrowingPercent(''), 20);
    assert.equal(heapGrowingPercent('0'), 0);
    assert.equal(heapGrowingPercent('50'), 50);
    for (const bad of ['abc', '-1', '2.5', '1001']) assert.match(String(heapGrowingPercent(bad)), /^MAPPER_V8_HEAP_GROWING_PERCENT=".*" is not a whole number from 0 to 1000; using 20$/);
  });
});

describe('reporter: states first, twins not starved', () => {
  it('a backlog of state reports lets a twin report through after every third state report', async () => {
    const kinds: string[] = [];
    const transport: ReportTransport = {
      async reportDeviceStatus() {
        kinds.push('T');
      },
      async reportDeviceStates() {
        kinds.push('S');
      },
    };
    // 20 reports/s, no burst, one at a time: the order is the reporter's choice alone.
    const r = new Reporter(transport, { rate: 20, burst: 1, concurrency: 1 }, createLogger({ level: 'silent' }), newStats());
    const types = new Map<string, 'float'>([['t', 'float']]);
    for (let i = 0; i < 10; i++) {
      const s = {
        id: `default/d${i}`,
        name: `d${i}`,
        namespace: 'default',
        properties: [{ name: 't', reportToCloud: true, reportCycle: 20, collectCycle: 20 }],
        stateReport: { reportToCloud: false, reportCycle: 1000 },
      } as unknown as DeviceSpec;
      r.addDevice(s, types, 'ok', new Map());
      r.accept([new RuntimeSample(source('t', `default/d${i}`), i, 100)]);
    }
    await sleep(60); // every device's twin timer has queued its twin report
    r.setOnline(true);
    for (const t0 = Date.now(); kinds.length < 20 && Date.now() - t0 < 5000; ) await sleep(20);
    await r.close();
    // Before: ten state reports, then the twins (SSSSSSSSSSTTTTTTTTTT).
    assert.equal(kinds.join(''), 'SSSTSSSTSSSTSTTTTTTT');
  });
});
