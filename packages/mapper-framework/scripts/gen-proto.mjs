// SPDX-License-Identifier: Apache-2.0
// Regenerates src/generated/ from proto/ with ts-proto (protoc from the npm `protoc` package).
//   node scripts/gen-proto.mjs            write into src/generated
//   node scripts/gen-proto.mjs --out DIR  write into DIR (used by the staleness test)
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(pkgDir, 'package.json'));
const outIdx = process.argv.indexOf('--out');
const outDir = outIdx > 0 ? resolve(process.argv[outIdx + 1]) : join(pkgDir, 'src', 'generated');

const protocDir = dirname(require.resolve('protoc/package.json'));
const plugin = join(dirname(require.resolve('ts-proto/package.json')), 'protoc-gen-ts_proto');
const options = [
  'outputServices=grpc-js',
  'esModuleInterop=true',
  'forceLong=bigint',
  'importSuffix=.js',
  'env=node',
  'outputJsonMethods=false',
  'useOptionals=messages',
];

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
const r = spawnSync(
  process.execPath,
  [
    join(protocDir, 'protoc.cjs'),
    `--plugin=protoc-gen-ts_proto=${plugin}`,
    `--ts_proto_out=${outDir}`,
    `--ts_proto_opt=${options.join(',')}`,
    `-I${join(pkgDir, 'proto')}`,
    `-I${join(protocDir, 'include')}`,
    'v1beta1/api.proto',
    'google/protobuf/wrappers.proto',
  ],
  { stdio: 'inherit' },
);
if (r.status !== 0) process.exit(r.status ?? 1);
console.log(`generated TypeScript in ${outDir}`);
