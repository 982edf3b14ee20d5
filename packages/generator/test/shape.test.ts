// SPDX-License-Identifier: Apache-2.0
// The reference mappers are meant to have the shape of a generated project (issue 5). This
// checks the shape on generated projects (it must pass, and must catch a broken one) and on
// each of packages/mappers/*. A reference mapper that does not conform yet is reported as a
// TODO with its differences (node:test todo: shown, not failing CI) until its owner aligns it.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { checkProjectShape, scaffold } from '../src/index.js';

const repo = new URL('../../../', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'create-mapper-shape-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('project shape', () => {
  it('generated projects have it (default and --stream)', async () => {
    for (const stream of [false, true]) {
      const r = await scaffold({ targetDir: join(tmp, `p-${stream}`), protocol: 'acme', stream });
      assert.deepEqual(checkProjectShape(r.dir), []);
    }
  });

  it('catches a project that differs', async () => {
    const dir = join(tmp, 'broken');
    cpSync(join(tmp, 'p-false'), dir, { recursive: true });
    writeFileSync(join(dir, 'src/main.ts'), "import { runMapper } from '@mapperkit/framework';\nimport { acme } from './index.js';\nawait runMapper({ driver: acme });\n");
    rmSync(join(dir, 'test/driver.test.ts'));
    rmSync(join(dir, 'resource'), { recursive: true });
    const files = checkProjectShape(dir).map((p) => p.file).sort();
    assert.deepEqual(files, ['resource/configmap.yaml', 'resource/deployment.yaml', 'src/main.ts', 'test/']);
  });

  const mappers = join(repo, 'packages/mappers');
  for (const name of existsSync(mappers) ? readdirSync(mappers).sort() : []) {
    it(`reference mapper ${name}`, (t) => {
      const problems = checkProjectShape(join(mappers, name));
      if (problems.length > 0) t.todo(`differs from a generated project: ${problems.map((p) => `${p.file}: ${p.message.split('\n')[0]}`).join('; ')}`);
    });
  }
});
