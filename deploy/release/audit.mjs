#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// The dependency audit gate of the release: `npm audit --omit=dev --json`, and every advisory it reports must be
// explained in SECURITY.md: its GHSA id named in the "### Accepted findings" subsection, with why it is accepted or
// how it is mitigated (an id mentioned elsewhere, e.g. in the table of advisories checked, does not count). Exit codes:
//   0  no finding, or every finding explained;
//   1  a finding not explained in SECURITY.md (each one printed: package, GHSA id, severity, title, where it is);
//   2  the audit could not run (e.g. the registry's advisory endpoint answers 405, as on the machines this
//      project is developed on) or its output is not an audit report.
// Usage: node deploy/release/audit.mjs [--report FILE] [--security FILE]
//   --report reads a saved `npm audit --json` report instead of running npm audit.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(new URL('../..', import.meta.url).pathname);

/** GHSA ids in a text (case-insensitive, returned upper-case after the prefix as GitHub writes them). */
export function ghsaIds(text) {
  return new Set([...text.matchAll(/GHSA(-[23456789cfghjmpqrvwx]{4}){3}/gi)].map((m) => `GHSA${m[0].slice(4).toLowerCase()}`));
}

/** The advisories of an `npm audit --json` report (auditReportVersion 2), one entry per advisory and package. */
export function findings(report) {
  const out = [];
  for (const [pkg, v] of Object.entries(report.vulnerabilities ?? {})) {
    for (const via of v.via ?? []) {
      if (typeof via !== 'object' || via === null) continue; // a string: "depends on a vulnerable package"
      const id = ghsaIds(String(via.url ?? ''));
      out.push({ package: pkg, id: [...id][0] ?? String(via.source ?? via.url ?? '?'), severity: via.severity ?? v.severity, title: via.title ?? '', range: via.range ?? '', nodes: v.nodes ?? [] });
    }
  }
  return out;
}

/** The text of SECURITY.md's "### Accepted findings" subsection ('' when there is none). */
export function acceptedSection(markdown) {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => /^###\s+Accepted findings\s*$/i.test(l));
  if (start < 0) return '';
  const end = lines.findIndex((l, i) => i > start && /^#{1,3}\s/.test(l));
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n');
}

function parseArgs(argv) {
  const opts = { report: undefined, security: join(root, 'SECURITY.md') };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--report') opts.report = argv[++i];
    else if (argv[i] === '--security') opts.security = argv[++i];
    else {
      console.error(`usage: audit.mjs [--report FILE] [--security FILE] (unknown argument ${argv[i]})`);
      process.exit(2);
    }
  }
  return opts;
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  let text;
  if (opts.report) text = readFileSync(opts.report, 'utf8');
  else {
    const r = spawnSync('npm', ['audit', '--omit=dev', '--json'], { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    text = r.stdout;
  }
  let report;
  try {
    report = JSON.parse(text);
  } catch {
    console.error(`npm audit printed no JSON report: ${String(text).slice(0, 300)}`);
    process.exit(2);
  }
  if (!report || typeof report !== 'object' || typeof report.vulnerabilities !== 'object' || report.vulnerabilities === null) {
    const why = report?.message ?? report?.error?.summary ?? JSON.stringify(report).slice(0, 300);
    console.error(`npm audit could not run: ${why}`);
    process.exit(2);
  }
  const explained = ghsaIds(acceptedSection(readFileSync(opts.security, 'utf8')));
  const all = findings(report);
  const missing = all.filter((f) => !explained.has(f.id));
  for (const f of all) {
    console.log(`${explained.has(f.id) ? 'explained  ' : 'UNEXPLAINED'} ${f.package} ${f.range} ${f.id} (${f.severity}) ${f.title} — ${f.nodes.join(', ')}`);
  }
  console.log(`npm audit --omit=dev: ${all.length} advisory finding(s), ${all.length - missing.length} explained in ${opts.security} (Accepted findings), ${missing.length} not`);
  process.exit(missing.length > 0 ? 1 : 0);
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) main();
