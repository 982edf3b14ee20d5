// SPDX-License-Identifier: Apache-2.0
// The fault-injection soak, short: the same process tree and fault schedule as `npm run soak`
// (edgecore-dmi, mapper-modbus, 200 devices on two modbus-sim processes, redis-server and
// mosquitto sinks; every fault once) over a 75 s window instead of 10 minutes. Memory slopes
// are not judged here (75 s is GC noise); the 10-minute run in bench/results/soak.json is.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ALL_FAULTS, runSoak, type SoakReport } from '../src/soak.ts';

describe('soak with faults (short)', () => {
  let report: SoakReport;

  it('runs every fault against the live process tree', async () => {
    report = await runSoak({ durationMs: 75_000, devices: 200, simProcesses: 2, outageMs: 4000, gapMs: 1500, quietMs: 10_000, sampleEveryMs: 5000, log: () => undefined });
    for (const f of ALL_FAULTS) assert.ok((report.faultCounts[f] ?? 0) >= 1, `fault ${f} ran (counts ${JSON.stringify(report.faultCounts)})`);
  });

  it('meets every goal: nothing lost, devices kept, re-registration < 5 s, no leaked descriptors, nothing left behind', () => {
    assert.ok(report, 'the soak ran');
    assert.deepEqual(report.violations, [], JSON.stringify({ faults: report.faults.filter((f) => !f.ok), sinks: report.sinks, fds: report.fds, leftovers: report.leftovers }, null, 1).slice(0, 6000));
  });

  it('delivered every sample each sink was given, through its outage', () => {
    for (const k of ['redis', 'mqtt'] as const) {
      const s = report.sinks[k];
      // 200 devices × 2 pushed properties × 1/s over 75 s, minus the simulator outages: far above 10,000.
      assert.ok(s.produced > 10_000, `${k}: only ${s.produced} samples produced`);
      assert.equal(s.delivered, s.produced, `${k}: produced ${s.produced}, delivered ${s.delivered}`);
      assert.ok(s.peakBufferedRecords > 0, `${k}: the outage never made the sink buffer`);
    }
  });

  it('re-registered after every edgecore-dmi restart within 5 s of its socket, keeping all 200 devices', () => {
    assert.ok(report.reRegistration.count >= 1);
    assert.ok(report.reRegistration.maxMsAfterSocket < 5000, `re-registration ${report.reRegistration.msAfterSocket.join(', ')} ms`);
    assert.equal(report.reRegistration.devicesKept, true);
  });

  it('stayed within sane resource bounds and left nothing behind', () => {
    assert.ok(report.memory.rssMaxMB < 600, `RSS peaked at ${report.memory.rssMaxMB} MB`);
    assert.equal(report.fds.ownEnd, report.fds.ownStart, `fds ${JSON.stringify(report.fds)}`);
    assert.deepEqual(report.leftovers, { processes: [], socketFiles: [], listeningPorts: [] });
    assert.equal(report.mapperUnexpectedExits, 0);
    assert.deepEqual(report.shutdown['mapper-modbus'], { code: 0, signal: null });
  });
});
