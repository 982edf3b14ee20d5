// SPDX-License-Identifier: Apache-2.0
// CI proof that generated projects work as users get them: pack the published workspaces,
// install the packed create-mapper, scaffold, install the project from the packed framework
// (a local registry for @mapperkit/*, everything else from the npm cache), build, run its
// tests, run the built mapper against the framework's TestEdgecore and against edgecore-dmi
// (the workspace build, as a separate process) until each reports a twin, run doctor/schema, then "publish" a patch release of the framework and show that upgrading
// is a version bump: npm update, rebuild, tests pass, no user file touched.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestEdgecore } from '@mapperkit/framework/testing';
import { cleanEnv, run } from './helpers/exec.js';
import { LocalRegistry } from './helpers/local-registry.js';

const repo = new URL('../../../', import.meta.url).pathname;
const keep = process.env['KEEP_INTEGRATION_TEST_DIR'] === 'true';

let tmp: string;
let tarballs: string;
let registry: LocalRegistry;
let npmEnv: NodeJS.ProcessEnv;
let cli: string;
let proj: string;
let frameworkVersion: string;
let genTarball: string;

function hashTree(dir: string, skip: (rel: string) => boolean): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const rel = relative(dir, p);
      if (skip(rel)) continue;
      if (statSync(p).isDirectory()) walk(p);
      else out.set(rel, createHash('sha256').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(dir);
  return out;
}

function installedFrameworkVersion(): string {
  return (JSON.parse(readFileSync(join(proj, 'node_modules/@mapperkit/framework/package.json'), 'utf8')) as { version: string }).version;
}

describe('packed create-mapper → generated project → installed, built, tested, run', () => {
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'create-mapper-it-'));
    tarballs = join(tmp, 'tarballs');
    mkdirSync(tarballs);
    // 1. Build and pack the published workspaces the generated project needs.
    await run('npx', ['tsc', '-b', 'packages/generator'], { cwd: repo });
    const packed = await run('npm', ['pack', '-w', '@mapperkit/framework', '-w', 'create-mapper', '--pack-destination', tarballs, '--json'], { cwd: repo, env: cleanEnv() });
    const files = (JSON.parse(packed.stdout) as { filename: string; name: string; version: string }[]).map((p) => ({ ...p, path: join(tarballs, p.filename) }));
    const fw = files.find((f) => f.name === '@mapperkit/framework');
    const gen = files.find((f) => f.name === 'create-mapper');
    assert.ok(fw && gen, `npm pack produced ${files.map((f) => f.filename).join(', ')}`);
    frameworkVersion = fw.version;
    // 2. A registry for @mapperkit/* only; other packages come from the local npm cache.
    registry = await LocalRegistry.start();
    registry.publish(fw.path);
    npmEnv = cleanEnv({ 'npm_config_@mapperkit:registry': registry.url, npm_config_prefer_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' });
    // 3. Install the packed create-mapper as a user would get it.
    const cliDir = join(tmp, 'cli');
    await run('npm', ['install', '--prefix', cliDir, gen.path], { cwd: tmp, env: npmEnv });
    cli = join(cliDir, 'node_modules', '.bin', 'create-mapper');
    genTarball = gen.path;
    assert.ok(existsSync(join(cliDir, 'node_modules/create-mapper/dist/templates.compiled.cjs')), 'the packed CLI carries precompiled templates');
  });

  after(async () => {
    await registry?.close();
    if (keep) console.log(`kept ${tmp}`);
    else if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('scaffolds with the packed CLI and installs from the packed framework', async () => {
    const r = await run(cli, ['acme-mapper', '--protocol', 'acme', '--yes'], { cwd: tmp, env: npmEnv });
    assert.match(r.stdout, /Created acme-mapper \(acme mapper\)/);
    proj = join(tmp, 'acme-mapper');
    const pkg = JSON.parse(readFileSync(join(proj, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    assert.equal(pkg.dependencies['@mapperkit/framework'], `^${frameworkVersion}`);
    await run('npm', ['install'], { cwd: proj, env: npmEnv });
    assert.equal(installedFrameworkVersion(), frameworkVersion);
    assert.ok(registry.requests.some((u) => /@mapperkit(%2f|\/)framework/i.test(u)), 'the framework was resolved through the local registry');
    assert.ok(!existsSync(join(proj, 'node_modules/@mapperkit/framework/src')), 'installed the packed framework (dist only), not a workspace link');
  });

  it('runs through npm exec as `npm create mapper` runs it (package spec → bin create-mapper)', async () => {
    const dir = mkdtempSync(join(tmp, 'exec-'));
    const r = await run('npm', ['exec', '--yes', '--package', genTarball, '--', 'create-mapper', 'via-exec', '--protocol', 'acme', '--yes'], { cwd: dir, env: npmEnv });
    assert.match(r.stdout, /Created via-exec \(acme mapper\)/);
    assert.ok(existsSync(join(dir, 'via-exec/src/driver.ts')));
  });

  it('builds and passes its own tests (conformance suite + end to end)', async () => {
    await run('npm', ['run', 'build'], { cwd: proj, env: npmEnv });
    assert.ok(existsSync(join(proj, 'dist/main.js')) && existsSync(join(proj, 'dist/driver.js')));
    const t = await run('npm', ['test'], { cwd: proj, env: npmEnv });
    assert.match(t.stdout, /# fail 0/);
    assert.match(t.stdout, /# pass (1[0-9]|[2-9][0-9])/, 'conformance and end-to-end tests ran');
  });

  it('the built mapper registers with a test edgecore and reports a twin', async () => {
    const work = mkdtempSync(join(tmp, 'run-'));
    const sim = await startSimulator();
    let mapper: RunningMapper | undefined;
    let edgecore: TestEdgecore | undefined;
    try {
      edgecore = await TestEdgecore.start({ socketPath: join(work, 'dmi.sock'), ...TestEdgecore.fromCrdYaml(devicesYaml(sim.port)) });
      mapper = startMapper(work);
      const ec = edgecore;
      const m = mapper;
      await ec.waitFor(() => ec.twinsOf('default/acme-device-1').get('temperature')?.reported === '21.5', 15_000, 'temperature twin').catch((e: Error) => {
        throw new Error(`${e.message}\nmapper output:\n${m.logs()}`);
      });
      assert.equal(ec.mapper?.protocol, 'acme');
      assert.equal(ec.stateOf('default/acme-device-1'), 'ok');

      // doctor (packed CLI) against the running edgecore: no errors.
      const doc = await run(cli, ['doctor', proj, '--config', join(work, 'config.yaml')], { cwd: tmp, env: npmEnv, allowFail: true });
      assert.equal(doc.code, 0, doc.stdout + doc.stderr);
      assert.match(doc.stdout, /0 error\(s\).*edgecore socket: reachable/);

      assert.equal(await mapper.stop(), 0, `mapper exit code after SIGTERM\n${mapper.logs()}`);
      mapper = undefined;
    } finally {
      mapper?.kill();
      sim.stop();
      await edgecore?.close();
    }
  });

  it('the built mapper runs against edgecore-dmi (a separate process) and its twin shows in the edgecore-dmi API', async () => {
    await run('npx', ['tsc', '-b', 'packages/edgecore-dmi'], { cwd: repo });
    const work = mkdtempSync(join(tmp, 'dmi-'));
    const sim = await startSimulator();
    writeFileSync(join(work, 'devices.yaml'), devicesYaml(sim.port));
    const edge = spawn(process.execPath, [join(repo, 'packages/edgecore-dmi/bin/edgecore-dmi.js'), 'serve', '--socket', join(work, 'dmi.sock'), '--devices', join(work, 'devices.yaml'), '--http', '127.0.0.1:0', '--db', ':memory:', '--log-level', 'warn'], { cwd: work, env: cleanEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
    let mapper: RunningMapper | undefined;
    try {
      const api = await new Promise<string>((resolve, reject) => {
        let err = '';
        edge.stderr!.setEncoding('utf8').on('data', (d: string) => {
          err += d;
          const m = /dashboard (http:\/\/[^\s/]+)\//.exec(err);
          if (m) resolve(m[1]!);
        });
        edge.once('exit', (c) => reject(new Error(`edgecore-dmi exited ${c}: ${err}`)));
      });
      mapper = startMapper(work);
      const deadline = Date.now() + 20_000;
      let view: { state?: string; twins?: { property: string; reported?: string }[] } = {};
      while (Date.now() < deadline) {
        const r = await fetch(`${api}/api/v1/devices/default/acme-device-1`);
        if (r.ok) view = (await r.json()) as typeof view;
        if (view.twins?.find((t) => t.property === 'temperature')?.reported === '21.5') break;
        await new Promise((res) => setTimeout(res, 250));
      }
      assert.equal(view.twins?.find((t) => t.property === 'temperature')?.reported, '21.5', `edgecore-dmi view: ${JSON.stringify(view)}\nmapper output:\n${mapper.logs()}`);
      assert.equal(await mapper.stop(), 0);
      mapper = undefined;
    } finally {
      mapper?.kill();
      edge.kill('SIGTERM');
      sim.stop();
    }
  });

  it('schema writes JSON Schemas from the driver for editors (the same the template ships)', async () => {
    const r = await run(cli, ['schema', proj, '--out', 'schema-fresh'], { cwd: tmp, env: npmEnv });
    assert.match(r.stdout, /devices\.schema\.json/);
    const s = JSON.parse(readFileSync(join(proj, 'schema-fresh/protocol-config.schema.json'), 'utf8')) as { properties: Record<string, unknown>; required: string[] };
    assert.deepEqual(Object.keys(s.properties).sort(), ['host', 'port', 'timeoutMs']);
    assert.ok(s.required.includes('host'));
    for (const f of readdirSync(join(proj, 'schema'))) assert.equal(readFileSync(join(proj, 'schema-fresh', f), 'utf8'), readFileSync(join(proj, 'schema', f), 'utf8'), f);
    rmSync(join(proj, 'schema-fresh'), { recursive: true });
  });

  it('upgrade is a version bump: a patch release with a fix installs, builds and passes with no user file touched', async () => {
    // A patch release X+1 of the packed framework X with a behaviour fix: formatValue drops
    // trailing NUL characters of strings (C strings from devices).
    const next = bumpPatch(frameworkVersion);
    const stage = join(tmp, 'next');
    await run('tar', ['-xzf', join(tarballs, `mapperkit-framework-${frameworkVersion}.tgz`), '-C', tmp], { cwd: tmp });
    cpSync(join(tmp, 'package'), stage, { recursive: true });
    rmSync(join(tmp, 'package'), { recursive: true });
    const pj = JSON.parse(readFileSync(join(stage, 'package.json'), 'utf8')) as { version: string; scripts?: unknown };
    pj.version = next;
    delete pj.scripts;
    writeFileSync(join(stage, 'package.json'), `${JSON.stringify(pj, null, 2)}\n`);
    const valuesJs = join(stage, 'dist/values.js');
    const src = readFileSync(valuesJs, 'utf8');
    assert.match(src, /function formatValue\(/, 'dist/values.js defines formatValue');
    writeFileSync(
      valuesJs,
      `${src.replace(/function formatValue\(/, 'function formatValueBefore(')}\nexport function formatValue(value) {\n  return typeof value === 'string' ? value.replace(/\\0+$/, '') : formatValueBefore(value);\n}\n`,
    );
    const packedNext = await run('npm', ['pack', '--pack-destination', tarballs, '--json'], { cwd: stage, env: npmEnv });
    const nextFile = join(tarballs, (JSON.parse(packedNext.stdout) as { filename: string }[])[0]!.filename);
    assert.deepEqual(registry.publish(nextFile), { name: '@mapperkit/framework', version: next });

    const probe = ['--input-type=module', '-e', "import { formatValue } from '@mapperkit/framework'; console.log(JSON.stringify(formatValue('ab\\0\\0')));"];
    assert.equal((await run(process.execPath, probe, { cwd: proj })).stdout.trim(), '"ab\\u0000\\u0000"', 'X does not have the fix');

    const userFiles = (rel: string): boolean => rel === 'node_modules' || rel === 'dist' || rel === 'package-lock.json';
    const before = hashTree(proj, userFiles);
    await run('npm', ['update', '@mapperkit/framework'], { cwd: proj, env: npmEnv });
    assert.equal(installedFrameworkVersion(), next);
    assert.equal((await run(process.execPath, probe, { cwd: proj })).stdout.trim(), '"ab"', 'X+1 has the fix');
    await run('npm', ['run', 'build'], { cwd: proj, env: npmEnv });
    const t = await run('npm', ['test'], { cwd: proj, env: npmEnv });
    assert.match(t.stdout, /# fail 0/);
    assert.deepEqual(hashTree(proj, userFiles), before, 'no user file changed');

    // `create-mapper upgrade` moves the range itself (and would apply config migrations).
    const up = await run(cli, ['upgrade', proj, '--to', next], { cwd: tmp, env: npmEnv });
    assert.match(up.stdout, new RegExp(`Upgraded @mapperkit/framework ${next.replace(/\./g, '\\.')} → ${next.replace(/\./g, '\\.')}`));
    const pkg = JSON.parse(readFileSync(join(proj, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    assert.equal(pkg.dependencies['@mapperkit/framework'], `^${next}`);
    assert.equal(installedFrameworkVersion(), next);
  });
});

/** The project's simulated device (its own test/simulator.ts, run with its own tsx). */
async function startSimulator(): Promise<{ port: number; stop(): void }> {
  const sim = spawn(join(proj, 'node_modules/.bin/tsx'), ['test/simulator.ts', '--port', '0'], { cwd: proj, env: cleanEnv(), stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    sim.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /listening on [\d.]+:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    sim.once('exit', (c) => reject(new Error(`simulator exited ${c}: ${out}`)));
  });
  return { port, stop: () => sim.kill('SIGTERM') };
}

/** The project's example DeviceModel and Device, pointed at the simulator. */
function devicesYaml(port: number): string {
  const text = ['devices/device-model.yaml', 'devices/device-instance.yaml'].map((f) => readFileSync(join(proj, f), 'utf8')).join('\n---\n');
  const local = text.replace(/port: 5020\b/, `port: ${port}`);
  assert.notEqual(local, text, 'the example Device points at port 5020');
  return local;
}

interface RunningMapper {
  logs(): string;
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | null>;
  kill(): void;
}

/** The built mapper (`node dist/main.js`) with the project's config.yaml, sockets moved into `work`. */
function startMapper(work: string): RunningMapper {
  const config = readFileSync(join(proj, 'config.yaml'), 'utf8')
    .replace(/socket_path: .*/, `socket_path: ${join(work, 'acme.sock')}`)
    .replace(/edgecore_sock: .*/, `edgecore_sock: ${join(work, 'dmi.sock')}`);
  writeFileSync(join(work, 'config.yaml'), config);
  const child = spawn(process.execPath, ['dist/main.js', '--config-file', join(work, 'config.yaml'), '--v', '1'], { cwd: proj, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let logs = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (logs += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (logs += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    logs: () => logs,
    stop: () => {
      child.kill('SIGTERM');
      return exited;
    },
    kill: () => child.kill('SIGKILL'),
  };
}

function bumpPatch(v: string): string {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(v);
  assert.ok(m, `version ${v}`);
  return `${m[1]}.${m[2]}.${Number(m[3]) + 1}`;
}
