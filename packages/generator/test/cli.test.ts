// SPDX-License-Identifier: Apache-2.0
// The built bin, spawned as users run it: unattended with flags, bad input, help, and the
// interactive prompts in a real pseudo-terminal (util-linux `script`).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { listTemplateFiles, templatesRoot } from '../src/index.js';
import { cleanEnv, run } from './helpers/exec.js';

const repo = new URL('../../../', import.meta.url).pathname;
const bin = join(repo, 'packages/generator/bin/create-mapper.js');
let tmp: string;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'create-mapper-cli-'));
  await run('npx', ['tsc', '-b', 'packages/generator'], { cwd: repo });
});
after(() => rmSync(tmp, { recursive: true, force: true }));

const cm = (args: string[], cwd = tmp) => run(process.execPath, [bin, ...args], { cwd, allowFail: true });

describe('create-mapper CLI', () => {
  it('creates a project unattended from flags', async () => {
    const r = await cm(['cam-mapper', '--protocol', 'cam', '--stream', '--yes']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Created cam-mapper \(cam mapper, with stream capture\) in cam-mapper: \d+ files\.\nNext:\n {2}cd cam-mapper\n {2}npm install/);
    assert.ok(existsSync(join(tmp, 'cam-mapper/src/stream.ts')));
  });

  for (const [what, args, message] of [
    ['an invalid protocol', ['p1', '--protocol', 'Mod_Bus', '--yes'], /create-mapper: invalid protocol name "Mod_Bus".*\n {2}try --protocol mod-bus/],
    ['an invalid package name', ['p2', '--protocol', 'acme', '--name', 'Has Space', '--yes'], /invalid package name "Has Space"/],
    ['an unknown template', ['p3', '--protocol', 'acme', '--template', 'rust', '--yes'], /unknown template "rust"\n {2}available templates: default/],
    ['a missing protocol', ['p4', '--yes'], /missing --protocol/],
    ['an unknown flag', ['p5', '--protocol', 'acme', '--colour', '--yes'], /Unknown argument: colour/],
  ] as const) {
    it(`rejects ${what} with a clear message, exit 1 and nothing written`, async () => {
      const before = readdirSync(tmp).sort();
      const r = await cm([...args]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace for user errors');
      assert.deepEqual(readdirSync(tmp).sort(), before);
    });
  }

  it('refuses a non-empty target without --force', async () => {
    await cm(['taken', '--protocol', 'acme', '--yes']);
    const r = await cm(['taken', '--protocol', 'acme', '--yes']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /target directory .*taken is not empty\n {2}choose another directory, or pass --force/);
    assert.equal((await cm(['taken', '--protocol', 'acme', '--yes', '--force'])).code, 0);
  });

  it('--help lists every command', async () => {
    const r = await cm(['--help']);
    assert.equal(r.code, 0);
    for (const c of ['upgrade [dir]', 'doctor [dir]', 'schema [dir]', '--protocol', '--stream', '--yes']) assert.ok(r.stdout.includes(c), `help mentions ${c}`);
  });

  it('asks for what is missing when run in a terminal', async () => {
    const dir = mkdtempSync(join(tmp, 'tty-'));
    // `script` gives the CLI a pseudo-terminal; answers are typed when each question shows.
    const child = spawn('script', ['-qfec', `stty cols 120 rows 40; ${process.execPath} ${bin}`, '/dev/null'], { cwd: dir, env: cleanEnv({ TERM: 'xterm' }), stdio: ['pipe', 'pipe', 'pipe'] });
    const answers: [RegExp, string][] = [
      [/Project directory/, 'Bad Name\r'],
      // An answer that would fail later is refused as typed; erase it and type a good one.
      [/invalid package name "Bad Name"/, `${'\x7f'.repeat(8)}tty-mapper\r`],
      [/Protocol name/, 'acme\r'],
      [/Add camera/, 'y'],
      [/Run npm install/, 'n'],
    ];
    let out = '';
    const done = new Promise<number | null>((resolve) => child.on('close', resolve));
    // A keypress answer may end the CLI before the Enter typed after it: that write finds the
    // pipe closed (EPIPE). Only what the CLI printed and its exit code are asserted.
    let exited = false;
    child.on('exit', () => (exited = true));
    child.stdin.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
    });
    const type = (keys: string): void => {
      if (!exited && !child.stdin.destroyed) child.stdin.write(keys);
    };
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      // Match on the text alone, without colours, cursor moves and line breaks.
      const text = out.replace(/[\r\n]/g, '').replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
      const next = answers[0];
      if (next && next[0].test(text)) {
        answers.shift();
        out = '';
        setTimeout(() => type(next[1]), 100);
        if (/[yn]$/.test(next[1])) setTimeout(() => type('\r'), 300);
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await done;
    clearTimeout(timer);
    assert.equal(code, 0, `exit ${code}; unanswered: ${answers.map((a) => a[0]).join(', ')}; output: ${out}`);
    assert.deepEqual(answers, []);
    assert.match(out.replace(/[\r\n]/g, '').replace(/\x1b\[[0-9;?]*[A-Za-z]/g, ''), /Created tty-mapper \(acme mapper, with stream capture\)/);
    const pkg = JSON.parse(readFileSync(join(dir, 'tty-mapper/package.json'), 'utf8')) as { name: string; mapperkit: { template: string } };
    assert.equal(pkg.name, 'tty-mapper');
    assert.equal(pkg.mapperkit.template, 'default+stream');
  });
});

describe('packing', () => {
  it('npm pack of create-mapper carries every template file', async () => {
    const r = await run('npm', ['pack', '--dry-run', '--json', '-w', 'create-mapper'], { cwd: repo, env: cleanEnv() });
    const listed = new Set((JSON.parse(r.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path));
    const root = templatesRoot();
    const expected = readdirSync(root).flatMap((t) => listTemplateFiles(join(root, t)).map((f) => `templates/${t}/${f}`));
    assert.ok(expected.length > 15, `found ${expected.length} template files`);
    for (const f of expected) assert.ok(listed.has(f), `${f} is missing from the packed create-mapper`);
    for (const f of ['bin/create-mapper.js', 'dist/cli.js', 'dist/templates.compiled.cjs', 'dist/index.js', 'dist/index.d.ts', 'package.json', 'README.md']) assert.ok(listed.has(f), `${f} is packed`);
    assert.ok(![...listed].some((f) => f.includes('.tsbuildinfo') || f.startsWith('test/') || f.startsWith('src/')), 'no build info, tests or sources packed');
  });
});
