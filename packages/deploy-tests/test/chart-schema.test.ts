// SPDX-License-Identifier: Apache-2.0
// charts/mapper/values.schema.json, checked with a JSON Schema validator (ajv, draft-07 like Helm 3) against the
// chart's defaults coalesced with good values (the four reference values files, pinned variants) and bad values
// (each must fail, naming the offending key). Runs without helm.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Ajv, type ErrorObject } from 'ajv';
import { parse } from 'yaml';
import { chartDir, coalesce, readYaml, REFERENCE_MAPPERS, withPath } from './helpers.ts';

const schema = JSON.parse(readFileSync(join(chartDir, 'values.schema.json'), 'utf8')) as object;
const defaults = readYaml(join(chartDir, 'values.yaml'));
const ajv = new Ajv({ allErrors: true, strict: true });
const validate = ajv.compile(schema);

/** Minimal user values that make the defaults installable. */
const minimal = { image: { repository: 'ghcr.io/mapperkit/mapper-virtual' }, config: { common: { name: 'virtual', protocol: 'virtual' } } };

function check(user: unknown): readonly ErrorObject[] {
  const values = coalesce(defaults, user);
  return validate(values) ? [] : (validate.errors ?? []);
}

function describeErrors(errors: readonly ErrorObject[]): string {
  return errors.map((e) => `${e.instancePath || '(root)'} ${e.message ?? ''}`).join('; ');
}

describe('values.schema.json', () => {
  it('compiles as a strict draft-07 schema', () => {
    assert.equal((schema as { $schema?: string }).$schema, 'http://json-schema.org/draft-07/schema#');
    assert.equal(typeof validate, 'function');
  });

  it('rejects the bare defaults: a mapper image and its name/protocol are required', () => {
    const errors = check({});
    const text = describeErrors(errors);
    assert.match(text, /\/image\/repository/);
    assert.match(text, /\/config\/common\/name/);
    assert.match(text, /\/config\/common\/protocol/);
  });

  it('accepts the defaults plus the minimal values', () => {
    assert.deepEqual(check(minimal), []);
  });

  for (const name of REFERENCE_MAPPERS) {
    it(`accepts values/${name}.yaml`, () => {
      const user = parse(readFileSync(join(chartDir, 'values', `${name}.yaml`), 'utf8'));
      const errors = check(user);
      assert.deepEqual(errors, [], describeErrors(errors));
    });
  }

  const good: ReadonlyArray<readonly [string, unknown]> = [
    ['usbmapper-style pinning (devPath, devPaths, plugin resource)', {
      nodeSelectorAndDevPath: {
        mapper: [
          { edgeNode: 'edge-node-1', devPath: '/dev/ttyUSB0' },
          { edgeNode: 'edge.example.com', devPath: '/dev/video0', devPaths: ['/dev/video1'], resourceName: 'squat.ai/video' },
          { edgeNode: 'edge-node-3' },
        ],
      },
      devices: { access: 'plugin', resourceName: 'squat.ai/serial' },
    }],
    ['http_port as upstream writes it (a string)', { config: { common: { http_port: '7777' } } }],
    ['image by digest', { image: { digest: `sha256:${'a'.repeat(64)}` } }],
    ['registry with a port', { image: { repository: 'registry.local:5000/mappers/modbus' } }],
    ['extra config sections are copied verbatim', { config: { runtime: { read_timeout_ms: 100 }, anything: { x: 1 } } }],
    ['legacy layout: all of /etc/kubeedge, no default ACL', { dmi: { socketDir: '/etc/kubeedge', prepare: { defaultAcl: false } } }],
    ['Secret volumes', { extraVolumes: [{ name: 'certs', secret: { secretName: 'c' } }], extraVolumeMounts: [{ name: 'certs', mountPath: '/etc/mapper/certs' }] }],
    ['no edge-node label requirement', { edgeNodeAffinity: { matchExpressions: null } }],
    ['replicaCount 0 (stopped)', { replicaCount: 0 }],
  ];
  for (const [title, extra] of good) {
    it(`accepts ${title}`, () => {
      const errors = check(coalesce(minimal, extra));
      assert.deepEqual(errors, [], describeErrors(errors));
    });
  }

  // [title, dotted key, value, expected error path]
  const bad: ReadonlyArray<readonly [string, string, unknown, RegExp]> = [
    ['a negative replicaCount', 'replicaCount', -1, /^\/replicaCount /],
    ['a replicaCount given as text', 'replicaCount', 'three', /^\/replicaCount /],
    ['an http_port out of range', 'config.common.http_port', 70000, /^\/config\/common\/http_port /],
    ['an http_port that is not a number', 'config.common.http_port', 'http', /^\/config\/common\/http_port /],
    ['a tag inside image.repository', 'image.repository', 'ghcr.io/x/y@sha256:abc', /^\/image\/repository /],
    ['a malformed digest', 'image.digest', 'sha256:xyz', /^\/image\/digest /],
    ['an unknown pull policy', 'image.pullPolicy', 'Sometimes', /^\/image\/pullPolicy /],
    ['a typo at the top level', 'replicacount', 1, /^ must NOT have additional properties/],
    ['a relative socket directory', 'dmi.socketDir', 'etc/kubeedge', /^\/dmi\/socketDir /],
    ['the root directory as socket directory', 'dmi.socketDir', '/', /^\/dmi\/socketDir /],
    ['an unknown hostPath type', 'dmi.hostPathType', 'Socket', /^\/dmi\/hostPathType /],
    ['a root uid', 'podSecurityContext.runAsUser', 0, /^\/podSecurityContext\/runAsUser /],
    ['runAsNonRoot switched off', 'securityContext.runAsNonRoot', false, /^\/securityContext\/runAsNonRoot /],
    ['privileged set by hand', 'securityContext.privileged', true, /^\/securityContext\/privileged /],
    ['an unknown device access mode', 'devices.access', 'mknod', /^\/devices\/access /],
    ['a resource name without a domain', 'devices.resourceName', 'serial', /^\/devices\/resourceName /],
    ['a bad CPU quantity', 'resources.limits.cpu', 'fast', /^\/resources\/limits\/cpu /],
    ['a probe path without a slash', 'probes.readiness.path', 'readyz', /^\/probes\/readiness\/path /],
    ['a mapper name with a slash', 'config.common.name', 'a/b', /^\/config\/common\/name /],
    ['a verbosity given as text', 'logVerbosity', 'debug', /^\/logVerbosity /],
    ['a hostPath extra volume', 'extraVolumes', [{ name: 'etc', hostPath: { path: '/etc' } }], /^\/extraVolumes\/0 /],
    ['a pinned entry without edgeNode', 'nodeSelectorAndDevPath.mapper', [{ devPath: '/dev/ttyUSB0' }], /^\/nodeSelectorAndDevPath\/mapper\/0 .*edgeNode/],
    ['a pinned entry with an upper-case node name', 'nodeSelectorAndDevPath.mapper', [{ edgeNode: 'Edge_1' }], /^\/nodeSelectorAndDevPath\/mapper\/0\/edgeNode /],
    ['a devPath outside /dev', 'nodeSelectorAndDevPath.mapper', [{ edgeNode: 'n1', devPath: '/etc/shadow' }], /^\/nodeSelectorAndDevPath\/mapper\/0\/devPath /],
    ['a misspelt entry key', 'nodeSelectorAndDevPath.mapper', [{ edgeNode: 'n1', devpath: '/dev/ttyUSB0' }], /^\/nodeSelectorAndDevPath\/mapper\/0 must NOT have additional properties/],
    ['an unknown toleration operator', 'tolerations', [{ key: 'k', operator: 'Matches' }], /^\/tolerations\/0\/operator /],
  ];
  for (const [title, key, value, expected] of bad) {
    it(`rejects ${title} (${key})`, () => {
      const errors = check(withPath(minimal, key, value));
      assert.ok(errors.length > 0, `${key}=${JSON.stringify(value)} was accepted`);
      const lines = errors.map((e) => `${e.instancePath} ${e.message ?? ''}`);
      assert.ok(lines.some((l) => expected.test(l)), `expected an error matching ${expected}, got: ${lines.join('; ')}`);
    });
  }
});
