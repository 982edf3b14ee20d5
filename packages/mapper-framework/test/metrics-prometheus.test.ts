// SPDX-License-Identifier: Apache-2.0
// /metrics of a running mapper: runtime metrics from the observer hooks and sink metrics from
// the data plane, in Prometheus text format.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CaptureServer, type CounterState, crdYaml, type MapperRig, startMapper, until } from './sinks-helpers.ts';

/** Value of the first series named `name` whose labels include all of `labels`. */
function metric(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const m = /^([^{ ]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

describe('/metrics (prom-client)', () => {
  let rig: MapperRig;
  let server: CaptureServer;
  let up = false;
  const state: CounterState = { reads: 0, failing: false };
  const logs: string[] = [];
  const scrape = async (): Promise<string> => {
    const a = rig.mapper.restAddress()!;
    const res = await fetch(`http://${a.host}:${a.port}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    return res.text();
  };

  before(async () => {
    server = await new CaptureServer().start();
    server.respond = () => (up ? { status: 204 } : { status: 503 });
    rig = await startMapper(
      crdYaml('kiln', [
        { name: 'temp', collectCycle: 50, reportCycle: 50, pushMethod: `http:\n  hostName: http://127.0.0.1\n  port: ${server.port}\n  requestPath: /m` },
        { name: 'rpm', collectCycle: 50, reportCycle: 50 },
      ]),
      { driverState: state, logs, configExtra: 'data_plane:\n  queue_capacity: 20\n' },
    );
  });
  after(async () => {
    await rig?.stop();
    await server?.close();
  });

  it('exposes read latency, freshness, samples, state, registration and DMI call latency', async () => {
    await until(() => state.reads >= 5, 5000, 'reads');
    const text = await scrape();
    const dev = { device: 'default/kiln' };
    assert.ok(metric(text, 'mapper_read_duration_seconds_count', dev)! >= 5);
    assert.ok(metric(text, 'mapper_read_duration_seconds_bucket', { ...dev, le: '+Inf' })! >= 5);
    const fresh = metric(text, 'mapper_property_last_success_timestamp_seconds', { ...dev, property: 'rpm' })!;
    assert.ok(Math.abs(fresh - Date.now() / 1000) < 5, `last success is recent: ${fresh}`);
    assert.ok(metric(text, 'mapper_samples_total', dev)! >= 10);
    assert.equal(metric(text, 'mapper_device_state', { ...dev, state: 'ok' }), 1);
    assert.equal(metric(text, 'mapper_device_state', { ...dev, state: 'offline' }), 0);
    assert.equal(metric(text, 'mapper_registered'), 1);
    assert.ok(metric(text, 'mapper_dmi_call_duration_seconds_count', { method: 'MapperRegister', code: '0' })! >= 1);
    assert.ok(metric(text, 'mapper_connects_total', { ...dev, result: 'ok' })! >= 1);
    assert.ok(metric(text, 'process_cpu_user_seconds_total')! > 0, 'process metrics');
  });

  it('counts read errors by device, property and kind, and the reconnect they cause', async () => {
    state.failing = true;
    await until(async () => (metric(await scrape(), 'mapper_read_errors_total', { device: 'default/kiln', property: 'temp', kind: 'DeviceError' }) ?? 0) >= 2, 5000, 'errors');
    // runtime.reconnect_after_failures (3) failed reads in a row: the link is treated as lost and connected again.
    await until(async () => (metric(await scrape(), 'mapper_reconnects_total', { device: 'default/kiln' }) ?? 0) >= 1, 10_000, 'a reconnect counted');
    state.failing = false;
  });

  it('shows a failing sink as buffering with its disk backlog, then up again', async () => {
    const sink = `http:http://127.0.0.1:${server.port}/m`;
    const labels = { sink, kind: 'http' };
    await until(async () => (metric(await scrape(), 'mapper_sink_buffered_bytes', labels) ?? 0) > 0, 10_000, 'backlog on disk');
    let text = await scrape();
    assert.equal(metric(text, 'mapper_sink_state', { ...labels, state: 'buffering' }), 1);
    assert.equal(metric(text, 'mapper_sink_state', { ...labels, state: 'up' }), 0);
    assert.ok(metric(text, 'mapper_sink_buffered_records', labels)! > 0);
    // Memory keeps the newest half of queue_capacity (20) while older samples go to disk; a scrape
    // can fall just after a move to disk, so wait for one that shows the in-memory part.
    await until(async () => (metric(await scrape(), 'mapper_sink_queue_depth', labels) ?? 0) > 0, 5000, 'samples queued in memory');
    assert.ok(metric(text, 'mapper_sink_write_errors_total', labels)! > 0);
    assert.ok(metric(text, 'mapper_sink_write_duration_seconds_count', { ...labels, result: 'error' })! > 0);
    up = true;
    await until(async () => metric(await scrape(), 'mapper_sink_state', { ...labels, state: 'up' }) === 1, 40_000, 'sink up');
    text = await scrape();
    assert.equal(metric(text, 'mapper_sink_buffered_records', labels), 0);
    assert.ok(metric(text, 'mapper_sink_delivered_total', labels)! > 0);
    assert.equal(metric(text, 'mapper_sink_dropped_total', { ...labels, reason: 'cap' }), 0);
    assert.ok(metric(text, 'mapper_sink_delivery_latency_seconds', { ...labels, quantile: '0.99' })! > 0);
    // And in the logs: the failure, the move to disk, the recovery with the outage's length.
    const sinkLogs = logs.map((l) => JSON.parse(l) as { msg: string; sink?: string; level: string; outageMs?: number }).filter((l) => l.sink === sink);
    const msgs = sinkLogs.map((l) => l.msg);
    assert.ok(msgs.includes('sink write failed; buffering and retrying'), msgs.join(' | '));
    assert.ok(msgs.includes('sink down; buffering to disk'), msgs.join(' | '));
    const caughtUp = sinkLogs.find((l) => l.msg === 'sink caught up');
    assert.ok(caughtUp && caughtUp.level === 'info' && caughtUp.outageMs! > 0, msgs.join(' | '));
    assert.ok(msgs.indexOf('sink write failed; buffering and retrying') < msgs.indexOf('sink caught up'));
  });
});
