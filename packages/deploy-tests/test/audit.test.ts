// SPDX-License-Identifier: Apache-2.0
// deploy/release/audit.mjs, the release's dependency-audit gate: every advisory `npm audit --omit=dev` reports must be
// named in SECURITY.md's "Accepted findings" subsection. npm audit cannot reach an advisory API from this machine
// (405), so the gate runs here on saved reports in npm's auditReportVersion 2 format, against the real SECURITY.md;
// the live run is checked for what it must do when the API is unreachable.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import { type Obj, repoRoot } from './helpers.ts';

const script = join(repoRoot, 'deploy/release/audit.mjs');
const tmp = mkdtempSync(join(tmpdir(), 'mapperkit-audit-'));

function gate(report: unknown, security?: string): { status: number | null; out: string } {
  const file = join(tmp, `report-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, typeof report === 'string' ? report : JSON.stringify(report));
  const args = [script, '--report', file, ...(security ? ['--security', security] : [])];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** One advisory as npm audit --json (auditReportVersion 2) reports it, plus the package that depends on it. */
function report(advisories: ReadonlyArray<{ pkg: string; ghsa: string; title: string }>): Obj {
  const vulnerabilities: Obj = {};
  for (const a of advisories) {
    vulnerabilities[a.pkg] = {
      name: a.pkg,
      severity: 'high',
      isDirect: false,
      via: [{ source: 1_100_000, name: a.pkg, dependency: a.pkg, title: a.title, url: `https://github.com/advisories/${a.ghsa}`, severity: 'high', cwe: [], cvss: {}, range: '<=7.5.2' }],
      effects: ['node-gyp'],
      range: '<=7.5.2',
      nodes: [`node_modules/${a.pkg}`],
      fixAvailable: false,
    };
  }
  vulnerabilities['node-gyp'] = { name: 'node-gyp', severity: 'high', isDirect: false, via: Object.keys(vulnerabilities), effects: [], range: '*', nodes: ['node_modules/node-gyp'], fixAvailable: false };
  return { auditReportVersion: 2, vulnerabilities, metadata: { vulnerabilities: { high: advisories.length } } };
}

after(() => rmSync(tmp, { recursive: true, force: true }));

describe('release dependency-audit gate (deploy/release/audit.mjs)', () => {
  it('passes when every finding is accepted in SECURITY.md (the tar 6.2.1 advisories of the BLE build tooling)', () => {
    const r = gate(report([{ pkg: 'tar', ghsa: 'GHSA-8qq5-rm4j-mr97', title: 'node-tar arbitrary file overwrite' }]));
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /^explained +tar <=7\.5\.2 GHSA-8qq5-rm4j-mr97 \(high\)/m);
    assert.match(r.out, /1 advisory finding\(s\), 1 explained/);
  });

  it('fails naming each advisory SECURITY.md does not accept', () => {
    const r = gate(report([
      { pkg: 'tar', ghsa: 'GHSA-r6q2-hw4h-h46w', title: 'race' },
      { pkg: 'some-lib', ghsa: 'GHSA-2222-3333-4444', title: 'a new advisory' },
    ]));
    assert.equal(r.status, 1, r.out);
    assert.match(r.out, /^UNEXPLAINED some-lib <=7\.5\.2 GHSA-2222-3333-4444 \(high\) a new advisory — node_modules\/some-lib$/m);
    assert.match(r.out, /2 advisory finding\(s\), 1 explained .*, 1 not/);
  });

  it('an id SECURITY.md only lists as checked (not accepted) does not count as explained', () => {
    const security = readFileSync(join(repoRoot, 'SECURITY.md'), 'utf8');
    assert.ok(security.includes('GHSA-96hv-2xvq-fx4p'), 'the ws advisory is in the table of advisories checked');
    const r = gate(report([{ pkg: 'ws', ghsa: 'GHSA-96hv-2xvq-fx4p', title: 'memory exhaustion' }]));
    assert.equal(r.status, 1, r.out);
    assert.match(r.out, /UNEXPLAINED ws/);
  });

  it('an empty report passes; a SECURITY.md without the subsection accepts nothing', () => {
    assert.equal(gate({ auditReportVersion: 2, vulnerabilities: {}, metadata: {} }).status, 0);
    const bare = join(tmp, 'SECURITY.md');
    writeFileSync(bare, '# Security\n\nGHSA-8qq5-rm4j-mr97 is mentioned but not accepted.\n');
    assert.equal(gate(report([{ pkg: 'tar', ghsa: 'GHSA-8qq5-rm4j-mr97', title: 'x' }]), bare).status, 1);
  });

  it('exits 2 when the audit cannot run: the 405 answer of the registry reachable here, or no JSON', () => {
    const r = gate({ message: '405 Method Not Allowed - POST /-/npm/v1/security/advisories/bulk', statusCode: 405, error: { summary: '', detail: '' } });
    assert.equal(r.status, 2, r.out);
    assert.match(r.out, /npm audit could not run: 405 Method Not Allowed/);
    assert.equal(gate('npm error something').status, 2);
  });

  it('live: runs npm audit --omit=dev itself; here the advisory API answers 405, so it must say so and exit 2, not pass', (t) => {
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 180_000 });
    const out = `${r.stdout}${r.stderr}`;
    if (r.status === 2) {
      assert.match(out, /npm audit could not run/);
      t.diagnostic(`npm audit unavailable here: ${out.trim().split('\n').pop()}`);
    } else {
      // Where the API answers (e.g. GitHub runners), the gate's verdict is the real one: every finding accepted.
      assert.equal(r.status, 0, out);
      assert.match(out, /advisory finding\(s\)/);
    }
  });

  it('the release job runs the gate after installing and before building or publishing', () => {
    const wf = parse(readFileSync(join(repoRoot, '.github/workflows/release.yml'), 'utf8')) as Obj;
    const steps = ((wf.jobs as Record<string, Obj>).release!.steps as Obj[]).map((s) => String(s.run ?? s.uses ?? ''));
    const gateAt = steps.indexOf('node deploy/release/audit.mjs');
    assert.ok(gateAt > steps.findIndex((s) => s.startsWith('npm ci')), steps.join(' | '));
    assert.ok(gateAt < steps.indexOf('npm run release:prepare'));
    assert.ok(gateAt < steps.findIndex((s) => s.startsWith('changesets/action@')));
  });
});
