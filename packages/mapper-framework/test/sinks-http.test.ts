// SPDX-License-Identifier: Apache-2.0
// HTTP push sink end to end against a local HTTP server that records every request.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CaptureServer, crdYaml, recorder, sleep, startMapper, until } from './sinks-helpers.ts';

const LOCAL_TIME = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/;

function pushMethod(port: number, path: string, timeout = 0): string {
  return `http:\n  hostName: http://127.0.0.1\n  port: ${port}\n  requestPath: ${path}\n  timeout: ${timeout}`;
}

describe('http push sink (local HTTP server)', () => {
  let server: CaptureServer;
  before(async () => {
    server = await new CaptureServer().start();
  });
  after(() => server?.close());

  it('POSTs the upstream form body <property>=<value>&time=<local time>, URL-encoded, in order', async () => {
    const rec = recorder();
    const rig = await startMapper(
      crdYaml('meter', [
        { name: 'power', pushMethod: pushMethod(server.port, '/ingest/power') },
        { name: 'note', type: 'STRING', fixed: 'a&b=c d', pushMethod: pushMethod(server.port, '/ingest/note') },
      ]),
      { consumers: [rec] },
    );
    try {
      await until(() => server.requests.filter((r) => r.url === '/ingest/power').length >= 4 && server.requests.some((r) => r.url === '/ingest/note'), 10_000, 'requests');
      const power = server.requests.filter((r) => r.url === '/ingest/power');
      for (const [i, r] of power.entries()) {
        assert.equal(r.method, 'POST');
        assert.equal(r.headers['content-type'], 'application/x-www-form-urlencoded');
        const form = new URLSearchParams(r.body);
        assert.deepEqual([...form.keys()], ['power', 'time']);
        assert.match(form.get('time')!, LOCAL_TIME);
        assert.equal(form.get('power'), String(Number(new URLSearchParams(power[0]!.body).get('power')) + i));
        // The exact bytes: upstream's layout, properly escaped (upstream sent the space and colons raw).
        assert.equal(r.body, `power=${form.get('power')}&time=${form.get('time')!.replace(' ', '+').replaceAll(':', '%3A')}`);
      }
      const note = new URLSearchParams(server.requests.find((r) => r.url === '/ingest/note')!.body);
      assert.equal(note.get('note'), 'a&b=c d', 'values with & = and spaces survive');
      // The time is the sample's time.
      const first = new URLSearchParams(power[0]!.body);
      const sample = rec.samples.find((s) => s.property === 'power' && s.text === first.get('power'))!;
      const d = new Date(sample.timestamp);
      assert.equal(first.get('time')!.slice(11), `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}:${String(d.getSeconds()).padStart(2, '0')}`);
    } finally {
      await rig.stop();
    }
  });

  it('POSTs the DataModel JSON with data_plane.http.body: json', async () => {
    const rig = await startMapper(crdYaml('jmeter', [{ name: 'power', pushMethod: pushMethod(server.port, '/json') }]), { configExtra: 'data_plane:\n  http:\n    body: json\n' });
    try {
      await until(() => server.requests.some((r) => r.url === '/json'), 10_000, 'json request');
      const r = server.requests.find((x) => x.url === '/json')!;
      assert.equal(r.headers['content-type'], 'application/json');
      const m = JSON.parse(r.body) as Record<string, unknown>;
      assert.deepEqual(Object.keys(m), ['DeviceName', 'PropertyName', 'Namespace', 'Value', 'Type', 'TimeStamp']);
      assert.equal(m['DeviceName'], 'jmeter');
    } finally {
      await rig.stop();
    }
  });

  it('honours the CRD timeout (ms): slow answers count as failures, samples are buffered and delivered once the server is fast again', async () => {
    let slow = true;
    server.respond = (r) => (r.url === '/slow' && slow ? { status: 204, delayMs: 800 } : { status: 204 });
    const rec = recorder();
    const rig = await startMapper(crdYaml('slowdev', [{ name: 'v', pushMethod: pushMethod(server.port, '/slow', 150) }]), { consumers: [rec] });
    try {
      await until(() => rig.mapper.sinks()[0]?.writeErrors! >= 2, 10_000, 'timeouts');
      const st = rig.mapper.sinks()[0]!;
      assert.equal(st.state, 'buffering');
      assert.match(st.lastError ?? '', /timed out after 150 ms/);
      slow = false;
      await sleep(300);
      await rig.ec.removeDevice('default', 'slowdev');
      const produced = rec.samples.filter((s) => s.deviceId === 'default/slowdev').map((s) => s.text);
      await until(() => {
        const s = rig.mapper.sinks()[0]!;
        return s.state === 'up' && s.bufferedRecords === 0 && s.queued === 0;
      }, 15_000, 'drained');
      // At least once: a request that timed out may still have reached the server; first arrivals keep the order.
      const seen: string[] = [];
      for (const r of server.requests.filter((x) => x.url === '/slow')) {
        const v = new URLSearchParams(r.body).get('v')!;
        if (!seen.includes(v)) seen.push(v);
      }
      assert.deepEqual(seen, produced);
    } finally {
      server.respond = () => ({ status: 204 });
      await rig.stop();
    }
  });

  it('drops a sample the server refuses (400) and carries on; retries 503 until accepted', async () => {
    let unavailable = 3;
    server.respond = (r) => {
      if (r.url !== '/picky') return { status: 204 };
      const v = Number(new URLSearchParams(r.body).get('v'));
      if (v === 2) return { status: 400, body: 'bad value' };
      if (v === 4 && unavailable-- > 0) return { status: 503 };
      return { status: 204 };
    };
    const rig = await startMapper(crdYaml('picky', [{ name: 'v', collectCycle: 100, reportCycle: 100, pushMethod: pushMethod(server.port, '/picky') }]));
    try {
      await until(() => server.requests.filter((r) => r.url === '/picky').length >= 5, 10_000, 'accepted requests');
      const accepted = server.requests.filter((r) => r.url === '/picky').map((r) => Number(new URLSearchParams(r.body).get('v')));
      assert.deepEqual(accepted.slice(0, 4), [1, 3, 4, 5]);
      const st = rig.mapper.sinks()[0]!;
      assert.equal(st.dropped.rejected, 1);
      assert.ok(server.rejected.filter((r) => r.url === '/picky' && new URLSearchParams(r.body).get('v') === '4').length === 3, '503 retried');
    } finally {
      server.respond = () => ({ status: 204 });
      await rig.stop();
    }
  });
});
