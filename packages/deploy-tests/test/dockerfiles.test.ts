// SPDX-License-Identifier: Apache-2.0
// The four mapper Dockerfiles, checked statically: no Docker engine runs on this machine (the docker client has no
// daemon), so images are not built here. What the checks cover: multi-stage, node:20-slim pinned by one digest, a
// non-root numeric USER in the final stage, production-only `npm ci --omit=dev` from the release context, nothing but
// the install stage's output copied into the final stage, ENTRYPOINT = the package's own bin, ffmpeg only in the camera
// image, no remote downloads. The install step itself is exercised in release.test.ts (same npm ci on the same context).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REFERENCE_MAPPERS, repoRoot } from './helpers.ts';

/** node:20-slim (bookworm, Node 20.20.2), multi-arch index digest; evidence in deploy/images/README.md. */
export const NODE_BASE = 'node:20-slim@sha256:1e85773c98c31d4fe5b545e4cb17379e617b348832fb3738b22a08f68dec30f3';

interface Instruction {
  readonly op: string;
  readonly args: string;
}
interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly body: Instruction[];
}

/** Dockerfile → stages of instructions (comments dropped, continuation lines joined). */
function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let cur = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (cur === '' && (line.trim() === '' || line.trimStart().startsWith('#'))) continue;
    if (line.trimStart().startsWith('#')) continue;
    if (line.endsWith('\\')) {
      cur += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push((cur + line).trim());
    cur = '';
  }
  assert.equal(cur, '', 'dangling line continuation');
  const stages: Stage[] = [];
  for (const l of logical) {
    const m = /^(\w+)\s+(.*)$/.exec(l);
    assert.ok(m, `unparsable line: ${l}`);
    const op = m[1]!.toUpperCase();
    const args = m[2]!;
    if (op === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      assert.ok(f, `FROM: ${args}`);
      stages.push({ from: f[1]!, name: f[2], body: [] });
    } else {
      assert.ok(stages.length > 0, `${op} before FROM`);
      stages[stages.length - 1]!.body.push({ op, args });
    }
  }
  return stages;
}

describe('mapper Dockerfiles (static: no Docker engine here)', () => {
  for (const name of REFERENCE_MAPPERS) {
    describe(`packages/mappers/${name}/Dockerfile`, () => {
      const text = readFileSync(join(repoRoot, 'packages/mappers', name, 'Dockerfile'), 'utf8');
      const stages = parseDockerfile(text);
      const final = stages[stages.length - 1]!;
      const runs = (s: Stage): string => s.body.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');

      it('is multi-stage, every stage on node:20-slim pinned by the same digest', () => {
        assert.ok(stages.length >= 2, 'at least an install stage and a runtime stage');
        for (const s of stages) assert.equal(s.from, NODE_BASE);
        assert.match(NODE_BASE, /@sha256:[a-f0-9]{64}$/);
      });

      it('installs only locked production dependencies from the release context', () => {
        const install = stages.find((s) => s.name === 'install');
        assert.ok(install, 'a stage named install');
        const copies = install.body.filter((i) => i.op === 'COPY').map((i) => i.args);
        assert.deepEqual(copies, ['package.json package-lock.json ./', '*.tgz ./'], 'only the release:prepare context files');
        assert.match(runs(install), /npm ci --omit=dev\b/);
        assert.doesNotMatch(text, /npm install\b/, 'npm ci (locked), never npm install');
      });

      it('runs as a non-root numeric user, copying only the install stage output', () => {
        const users = final.body.filter((i) => i.op === 'USER');
        assert.equal(users.length, 1);
        const [uid, gid] = users[0]!.args.split(':');
        assert.match(uid!, /^\d+$/, 'numeric uid (runAsNonRoot can verify it)');
        assert.notEqual(Number(uid), 0);
        assert.equal(Number(uid), 10001, 'the uid charts/mapper runs as');
        assert.equal(Number(gid), 10001);
        for (const c of final.body.filter((i) => i.op === 'COPY' || i.op === 'ADD')) {
          assert.equal(c.op, 'COPY');
          assert.match(c.args, /^--from=install\b/, `final stage copies only from the install stage: ${c.args}`);
        }
        assert.match(runs(final), /useradd --system --uid 10001 --gid 10001\b/);
        assert.match(runs(final), /--no-install-recommends acl\b/, 'setfacl for the chart init container');
      });

      it("starts the package's own bin with the chart's flags", () => {
        const pkg = JSON.parse(readFileSync(join(repoRoot, 'packages/mappers', name, 'package.json'), 'utf8')) as { name: string; bin: Record<string, string> };
        const bin = pkg.bin[`mapper-${name}`];
        assert.ok(bin, `package.json bin mapper-${name}`);
        const entry = final.body.find((i) => i.op === 'ENTRYPOINT');
        assert.ok(entry);
        const argv = JSON.parse(entry.args) as string[];
        assert.deepEqual(argv, ['node', join('/opt/mapper/node_modules', pkg.name, bin)]);
        const cmd = JSON.parse(final.body.find((i) => i.op === 'CMD')!.args) as string[];
        assert.deepEqual(cmd, ['--config-file', '/etc/mapper/config.yaml', '--v', '1']);
        assert.ok(final.body.some((i) => i.op === 'ENV' && i.args === 'NODE_ENV=production'));
      });

      it('sets the memory settings the framework benchmark measures (deploy/images/runtime-env.json)', () => {
        const env = JSON.parse(readFileSync(join(repoRoot, 'deploy/images/runtime-env.json'), 'utf8')) as Record<string, string>;
        assert.ok(Object.keys(env).length > 0);
        const line = Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ');
        assert.ok(final.body.some((i) => i.op === 'ENV' && i.args === line), `ENV ${line} in the final stage`);
      });

      it(name === 'usb-camera' ? 'ships ffmpeg' : 'does not ship ffmpeg', () => {
        if (name === 'usb-camera') assert.match(runs(final), /\bffmpeg\b/);
        else assert.doesNotMatch(text, /ffmpeg/);
      });

      it('downloads nothing but Debian and npm packages', () => {
        assert.doesNotMatch(text, /\b(curl|wget)\b|^ADD\s+https?:/im);
        if (name === 'ble') assert.match(runs(final), /setcap cap_net_raw,cap_net_admin\+eip/);
        else assert.doesNotMatch(text, /setcap/);
      });
    });
  }
});
