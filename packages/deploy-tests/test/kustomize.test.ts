// SPDX-License-Identifier: Apache-2.0
// deploy/kustomize: the base and every overlay built with `kubectl kustomize` (offline), every object validated with
// kubernetes-models, the pod invariants checked, config.yaml parsed by the framework's own loader. No helm needed.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it, type TestContext } from 'node:test';
import { parseMapperConfig } from '@mapperkit/framework';
import { at, chartDir, isObj, type Obj, REFERENCE_MAPPERS, repoRoot, run, validateK8s, yamlDocs } from './helpers.ts';

let kubectl: string | null = null;
let kubectlNote = '';

function build(t: TestContext, dir: string): Obj[] | null {
  if (!kubectl) {
    t.skip(`kubectl not available (${kubectlNote}); kustomize build not run`);
    return null;
  }
  const r = run(kubectl, ['kustomize', join(repoRoot, 'deploy/kustomize', dir)]);
  assert.equal(r.status, 0, `kubectl kustomize ${dir}: ${r.stderr}`);
  return yamlDocs(r.stdout);
}

const asArr = (v: unknown): Obj[] => (Array.isArray(v) ? (v as Obj[]) : []);

function checkDeployment(dep: Obj, devices: readonly string[]): void {
  const pod = at(dep, 'spec.template.spec') as Obj;
  assert.equal(at(dep, 'spec.strategy.type'), 'Recreate');
  assert.ok(Number(at(pod, 'securityContext.runAsUser')) >= 1);
  const c = asArr(pod.containers).find((x) => x.name === 'mapper');
  assert.ok(c, 'container mapper');
  assert.equal(at(c, 'securityContext.runAsNonRoot'), true);
  assert.equal(at(c, 'securityContext.readOnlyRootFilesystem'), true);
  assert.deepEqual((c.args as string[]).slice(0, 3), ['--config-file', '/etc/mapper/config.yaml', '--v']);
  assert.equal(at(c, 'livenessProbe.httpGet.path'), '/healthz');
  assert.equal(at(c, 'readinessProbe.httpGet.path'), '/readyz');
  const hostPaths = asArr(pod.volumes).filter((v) => isObj(v.hostPath)).map((v) => String(at(v, 'hostPath.path')));
  assert.deepEqual(hostPaths, ['/etc/kubeedge/dmi', ...devices], 'only the DMI socket directory (and the pinned device) come from the host');
  const cfgVol = asArr(pod.volumes).find((v) => v.name === 'config');
  assert.deepEqual(at(cfgVol, 'configMap.items'), [{ key: 'configData', path: 'config.yaml' }]);
  assert.ok(asArr(pod.tolerations).some((t) => t.key === 'node-role.kubernetes.io/edge'));
}

describe('deploy/kustomize', () => {
  before(() => {
    const r = run('kubectl', ['version', '--client']);
    if (r.status === 0) kubectl = 'kubectl';
    else kubectlNote = r.stderr.trim().split('\n')[0] ?? `exit ${r.status}`;
    console.log(kubectl ? `# kubectl: ${r.stdout.split('\n').filter(Boolean).join(', ')}` : `# kubectl: NOT AVAILABLE (${kubectlNote})`);
  });

  it('base: valid objects, the config map key configData, a pod without the chart or an overlay', (t) => {
    const docs = build(t, 'base');
    if (!docs) return;
    for (const d of docs) validateK8s(d);
    assert.deepEqual(docs.map((d) => d.kind).sort(), ['ConfigMap', 'Deployment', 'ServiceAccount']);
    const cm = docs.find((d) => d.kind === 'ConfigMap')!;
    assert.match(String(at(cm, 'metadata.name')), /^mapper-[a-z0-9]{10}$/, 'hash-suffixed so a config change rolls the pod');
    const { config, unknownKeys } = parseMapperConfig(String(at(cm, 'data.configData')));
    assert.deepEqual(unknownKeys, []);
    assert.equal(config.rest.bind_address, '0.0.0.0');
    const dep = docs.find((d) => d.kind === 'Deployment')!;
    checkDeployment(dep, []);
    const vol = asArr(at(dep, 'spec.template.spec.volumes')).find((v) => v.name === 'config');
    assert.equal(at(vol, 'configMap.name'), at(cm, 'metadata.name'), 'the Deployment refers to the generated ConfigMap');
  });

  it('base: the init container runs exactly charts/mapper/files/prepare-dmi-dir.sh', (t) => {
    const docs = build(t, 'base');
    if (!docs) return;
    const dep = docs.find((d) => d.kind === 'Deployment')!;
    const init = asArr(at(dep, 'spec.template.spec.initContainers'))[0];
    const script = readFileSync(join(chartDir, 'files/prepare-dmi-dir.sh'), 'utf8').replace(/^#.*\n/gm, '');
    assert.equal((init?.command as string[])[2], script);
  });

  for (const name of REFERENCE_MAPPERS) {
    it(`overlays/${name}: valid objects, its own image, config and workload label`, (t) => {
      const docs = build(t, `overlays/${name}`);
      if (!docs) return;
      for (const d of docs) validateK8s(d);
      const dep = docs.find((d) => d.kind === 'Deployment')!;
      checkDeployment(dep, name === 'usb-camera' ? ['/dev/video0'] : []);
      for (const c of [...asArr(at(dep, 'spec.template.spec.containers')), ...asArr(at(dep, 'spec.template.spec.initContainers'))]) {
        assert.equal(c.image, `ghcr.io/mapperkit/mapper-${name}:0.1.0`);
      }
      const cm = docs.find((d) => d.kind === 'ConfigMap')!;
      const { config, unknownKeys } = parseMapperConfig(String(at(cm, 'data.configData')));
      assert.deepEqual(unknownKeys, []);
      assert.equal(config.grpc_server.socket_path, `/etc/kubeedge/dmi/${config.common.name}.sock`);
      const port = at(dep, 'spec.template.spec.containers.0.ports.0.containerPort');
      assert.equal(port, config.common.http_port, 'container port = common.http_port');
      const labels = at(dep, 'spec.selector.matchLabels') as Obj;
      assert.match(String(labels['mapperkit.io/workload']), new RegExp(`^${name}-mapper`));
    });
  }
});
