// SPDX-License-Identifier: Apache-2.0
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { type Document, isMap, parse } from 'yaml';
import { compareVersions, CreateMapperError, type Migration, MIGRATIONS, ownVersion, scaffold, upgrade } from '../src/index.js';

let tmp: string;
let dir: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'create-mapper-upgrade-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));
beforeEach(async () => {
  dir = (await scaffold({ targetDir: join(mkdtempSync(join(tmp, 'p-')), 'acme-mapper'), protocol: 'acme' })).dir;
});

/** Example: a release that renamed common.address to common.listen_address. */
const renameAddress: Migration = {
  version: '0.3.0',
  description: 'common.address → common.listen_address',
  migrate(doc: Document) {
    const common = doc.get('common');
    if (!isMap(common) || !common.has('address')) return false;
    common.set('listen_address', common.get('address'));
    common.delete('address');
    return true;
  },
};
const dropHttpPort: Migration = {
  version: '0.2.0',
  description: 'remove common.http_port',
  migrate(doc: Document) {
    return doc.deleteIn(['common', 'http_port']);
  },
};
const notYet: Migration = { version: '0.9.0', description: 'never applied in these tests', migrate: () => assert.fail('a migration beyond the target ran') };

const read = (f: string): string => readFileSync(join(dir, f), 'utf8');

describe('upgrade', () => {
  it('compares versions', () => {
    assert.ok(compareVersions('0.1.0', '0.1.1') < 0);
    assert.ok(compareVersions('0.10.0', '0.9.9') > 0);
    assert.ok(compareVersions('1.0.0-rc.1', '1.0.0') < 0);
    assert.equal(compareVersions('v1.2.3', '1.2.3'), 0);
  });

  it('bumps the range and applies the migrations in (from, to], oldest first, to config.yaml and its copies', async () => {
    const r = await upgrade({ dir, to: '0.3.0', install: false, migrations: [renameAddress, notYet, dropHttpPort] });
    assert.equal(r.from, ownVersion());
    assert.equal(r.rangeAfter, '^0.3.0');
    assert.deepEqual(r.applied, ['remove common.http_port', 'common.address → common.listen_address']);
    assert.deepEqual([...r.changedFiles].sort(), ['config.yaml', 'deploy/values.yaml', 'package.json', 'resource/configmap.yaml']);
    const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
    assert.equal(pkg.dependencies['@mapperkit/framework'], '^0.3.0');
    const config = read('config.yaml');
    assert.match(config, /listen_address: 127\.0\.0\.1/);
    assert.doesNotMatch(config, /http_port|\n {2}address:/);
    assert.match(config, /# The mapper's own DMI socket; edgecore dials it\./, 'comments kept');
    assert.equal((parse(read('resource/configmap.yaml')) as { data: { configData: string } }).data.configData, config, 'ConfigMap copy migrated the same way');
    const values = parse(read('deploy/values.yaml')) as { config: { common: Record<string, unknown> } };
    assert.equal(values.config.common['http_port'], undefined, 'Helm values copy migrated too');
    assert.equal(values.config.common['protocol'], 'acme');
    assert.match(read('deploy/values.yaml'), /# The mapper's config\.yaml \(upstream keys\)/, 'comments kept');
  });

  it('touches no user code', async () => {
    const before = ['src/driver.ts', 'src/main.ts', 'test/driver.test.ts', 'devices/device-instance.yaml'].map(read);
    await upgrade({ dir, to: '0.3.0', install: false, migrations: [renameAddress] });
    assert.deepEqual(['src/driver.ts', 'src/main.ts', 'test/driver.test.ts', 'devices/device-instance.yaml'].map(read), before);
  });

  it('--dry-run reports without writing', async () => {
    const pkgBefore = read('package.json');
    const configBefore = read('config.yaml');
    const r = await upgrade({ dir, to: '0.3.0', install: false, dryRun: true, migrations: [renameAddress] });
    assert.deepEqual(r.applied, ['common.address → common.listen_address']);
    assert.equal(read('package.json'), pkgBefore);
    assert.equal(read('config.yaml'), configBefore);
  });

  it('a patch bump needs no migration; the shipped migration table is ordered and valid', async () => {
    const r = await upgrade({ dir, to: '0.1.9', install: false, migrations: [renameAddress, dropHttpPort] });
    assert.deepEqual(r.applied, []);
    assert.deepEqual(r.changedFiles, ['package.json']);
    for (const [i, m] of MIGRATIONS.entries()) if (i > 0) assert.ok(compareVersions(MIGRATIONS[i - 1]!.version, m.version) <= 0);
  });

  it('refuses a downgrade, a bad version and a project without the framework', async () => {
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'x', dependencies: { '@mapperkit/framework': '^0.5.0' } }));
    await assert.rejects(upgrade({ dir, to: '0.4.0', install: false }), (e: unknown) => e instanceof CreateMapperError && /does not downgrade/.test(e.message));
    await assert.rejects(upgrade({ dir, to: 'latest', install: false }), /is not a version/);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'x', dependencies: {} }));
    await assert.rejects(upgrade({ dir, install: false }), /does not depend on @mapperkit\/framework/);
  });
});
