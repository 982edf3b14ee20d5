// SPDX-License-Identifier: Apache-2.0
// Reports stored in SQLite survive a restart of edgecore-dmi; history is bounded per property;
// what each mapper was sent survives too, so a restarted edgecore-dmi only sends differences.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import type { MapperHandle } from '@mapperkit/framework';
import { type EdgecoreDmi } from '../src/index.js';
import { Store } from '../src/store.js';
import { deviceYaml, eventually, MODEL_YAML, startServer, startVirtualMapper, TempDir } from './helpers.ts';

describe('report storage across restarts', () => {
  const dir = new TempDir();
  let server: EdgecoreDmi | undefined;
  let mapper: MapperHandle | undefined;
  after(async () => {
    await mapper?.stop();
    await server?.close();
    dir.remove();
  });

  it('keeps twins, history, states, mappers, API objects and desired overrides after a restart', async () => {
    mkdirSync(dir.join('devices'));
    dir.file('devices/inv.yaml', `${MODEL_YAML}---\n${deviceYaml('t1')}`);
    server = await startServer(dir, { devices: dir.join('devices'), limiter: false, historyLimit: 5 });
    mapper = await startVirtualMapper(dir, server.socketPath);
    await mapper.whenRegistered();
    // The counter visitor increments by 1 per read: wait for more values than the history keeps.
    await eventually(() => Number(server!.deviceView('t1')!.twins.find((t) => t.property === 'temperature')!.reported ?? 0) >= 8, 10_000, 'temperature >= 8');
    const applied = server.apply(deviceYaml('t-api', { seed: 9 }), 'extra.yaml');
    assert.deepEqual(applied.changed, [{ kind: 'Device', id: 'default/t-api', action: 'created' }]);
    server.setDesired('t1', 'setpoint', '12');
    await eventually(() => server!.deviceView('t1')!.twins.find((t) => t.property === 'setpoint')!.reported === '12', 10_000, 'setpoint 12 reported');
    // The mapper must have everything before it stops, or the restarted server rightly retries what was pending.
    await eventually(() => mapper!.device('default/t-api'), 10_000, 't-api on the mapper');
    await mapper.stop();
    mapper = undefined;
    const before = server.deviceView('t1')!;
    const hist = server.history('t1', 'temperature');
    assert.equal(hist.length, 5, 'history bounded to historyLimit');
    // The counter only goes up (the mapper may coalesce reports under load): the most recent, oldest first.
    const values = hist.map((h) => Number(h.value));
    assert.ok(values.every((v, i) => i === 0 || v > values[i - 1]!), `increasing: ${values.join(',')}`);
    assert.equal(String(values[4]), before.twins.find((t) => t.property === 'temperature')!.reported);
    assert.ok(values[0]! >= 3, 'older values were trimmed');
    await server.close();

    server = await startServer(dir, { devices: dir.join('devices'), limiter: false, historyLimit: 5 });
    const after_ = server.deviceView('t1')!;
    assert.deepEqual(
      after_.twins.map((t) => [t.property, t.reported, t.reportedAt, t.observedDesired, t.desired, t.desiredOverride]),
      before.twins.map((t) => [t.property, t.reported, t.reportedAt, t.observedDesired, t.desired, t.desiredOverride]),
    );
    assert.equal(after_.state, 'ok');
    assert.equal(after_.stateAt, before.stateAt);
    assert.deepEqual(server.history('t1', 'temperature'), hist);
    assert.deepEqual(
      server.mappers().map((m) => [m.name, m.protocol, m.address]),
      [['virtual-mapper', 'virtual', dir.join('virtual.sock')]],
    );
    assert.ok(server.deviceView('t-api'), 'API-applied device restored');
    assert.equal(server.deviceView('t1')!.twins.find((t) => t.property === 'setpoint')!.desired, '12');

    // The restarted server remembers what the mapper had: on re-registration nothing is re-sent by call.
    mapper = await startVirtualMapper(dir, server.socketPath);
    await mapper.whenRegistered();
    assert.ok(mapper.device('default/t1') && mapper.device('default/t-api'));
    assert.equal(mapper.device('default/t1')!.observedDesired.get('setpoint') ?? '12', '12');
    await eventually(() => server!.mappers()[0]!.sync?.status === 'in-sync', 5000, 'in sync');
    assert.deepEqual(server.calls().filter((c) => c.method !== 'CreateDeviceModel'), []);
  });

  it('the store trims history per property, not globally', () => {
    const s = new Store(dir.join('unit.db'), { historyLimit: 3 });
    for (let i = 0; i < 10; i++) {
      s.putTwins('default/a', [{ property: 'x', reported: String(i), reportedMetadata: {}, observedDesired: '' }], 1000 + i);
      if (i < 2) s.putTwins('default/a', [{ property: 'y', reported: `y${i}`, reportedMetadata: { type: 'int' }, observedDesired: '5' }], 2000 + i);
    }
    assert.deepEqual(
      s.history('default/a', 'x').map((h) => h.value),
      ['7', '8', '9'],
    );
    assert.deepEqual(
      s.history('default/a', 'y').map((h) => [h.value, h.at]),
      [
        ['y0', 2000],
        ['y1', 2001],
      ],
    );
    assert.deepEqual(s.twins('default/a').find((t) => t.property === 'y')!.reportedMetadata, { type: 'int' });
    assert.equal(s.putState('default/a', 'offline', 5).lastOnline, 0);
    assert.equal(s.putState('default/a', 'ok', 6).lastOnline, 6);
    assert.equal(s.putState('default/a', 'offline', 7).lastOnline, 6);
    s.close();
  });
});
