// SPDX-License-Identifier: Apache-2.0
// The deployment files inside each reference mapper package (the shape of a generated project: resource/ and
// deploy/values.yaml) agree with the mapper and with the repository's chart and kustomize overlays. Every place that
// names the mapper's protocol names the driver's protocol: the framework refuses to start when config.yaml's
// common.protocol differs from it, so a wrong value in a chart or overlay is a mapper that never runs.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { parseMapperConfig } from '@mapperkit/framework';
import { at, isObj, type Obj, readYaml, REFERENCE_MAPPERS, repoRoot, validateK8s, yamlDocs } from './helpers.ts';

const asArr = (v: unknown): Obj[] => (Array.isArray(v) ? (v as Obj[]) : []);

/** The driver's protocol, from the package's source (src/driver.ts default export, else src/index.ts's). */
async function driverProtocol(pkg: string): Promise<string> {
  for (const entry of ['src/driver.ts', 'src/index.ts']) {
    const mod = (await import(join(pkg, entry))) as { default?: { protocol?: unknown } };
    if (typeof mod.default?.protocol === 'string') return mod.default.protocol;
  }
  throw new Error(`${pkg}: no default driver export`);
}

describe('reference mapper packages: resource/ and deploy/values.yaml', () => {
  for (const name of REFERENCE_MAPPERS) {
    const pkg = join(repoRoot, 'packages/mappers', name);

    it(`${name}: every place that names the protocol names the driver's`, async () => {
      const protocol = await driverProtocol(pkg);
      const places: [string, unknown][] = [
        [`packages/mappers/${name}/config.yaml`, at(readYaml(join(pkg, 'config.yaml')), 'common.protocol')],
        [`packages/mappers/${name}/deploy/values.yaml`, at(readYaml(join(pkg, 'deploy/values.yaml')), 'config.common.protocol')],
        [`charts/mapper/values/${name}.yaml`, at(readYaml(join(repoRoot, 'charts/mapper/values', `${name}.yaml`)), 'config.common.protocol')],
        [`deploy/kustomize/overlays/${name}/config.yaml`, at(readYaml(join(repoRoot, 'deploy/kustomize/overlays', name, 'config.yaml')), 'common.protocol')],
      ];
      for (const [file, p] of places) assert.equal(p, protocol, `${file}: common.protocol must be the driver's protocol "${protocol}"`);
      const kustomization = readFileSync(join(repoRoot, 'deploy/kustomize/overlays', name, 'kustomization.yaml'), 'utf8');
      assert.match(kustomization, new RegExp(`mapperkit\\.io/protocol: ${protocol}$`, 'm'), 'the overlay labels its workload with the protocol');
    });

    it(`${name}: deploy/values.yaml holds the same values as charts/mapper/values/${name}.yaml`, () => {
      assert.deepEqual(readYaml(join(pkg, 'deploy/values.yaml')), readYaml(join(repoRoot, 'charts/mapper/values', `${name}.yaml`)));
    });

    it(`${name}: resource/ is valid Kubernetes, runs the release image as 10001 with config.yaml from the ConfigMap`, () => {
      const docs = readdirSync(join(pkg, 'resource'))
        .filter((f) => f.endsWith('.yaml'))
        .flatMap((f) => yamlDocs(readFileSync(join(pkg, 'resource', f), 'utf8')));
      for (const d of docs) validateK8s(d);
      const cm = docs.find((d) => d.kind === 'ConfigMap');
      const dep = docs.find((d) => d.kind === 'Deployment');
      assert.ok(cm && dep, 'a ConfigMap and a Deployment');
      const { config, unknownKeys } = parseMapperConfig(String(at(cm, 'data.configData')));
      assert.deepEqual(unknownKeys, []);
      assert.deepEqual(config, parseMapperConfig(readFileSync(join(pkg, 'config.yaml'), 'utf8')).config, 'configData is config.yaml');

      const pod = at(dep, 'spec.template.spec') as Obj;
      assert.equal(at(dep, 'spec.strategy.type'), 'Recreate');
      assert.equal(at(pod, 'securityContext.runAsNonRoot'), true);
      assert.equal(at(pod, 'securityContext.runAsUser'), 10001, 'the uid of the image (Dockerfile USER)');
      const containers = asArr(pod.containers);
      assert.equal(containers.length, 1);
      const c = containers[0]!;
      assert.equal(c.image, `ghcr.io/mapperkit/mapper-${name}:0.1.0`);
      assert.deepEqual(c.args, ['--config-file', '/etc/mapper/config.yaml', '--v', '1']);
      assert.equal(at(c, 'securityContext.readOnlyRootFilesystem'), true);

      const mountOf = (volume: string): string | undefined => asArr(c.volumeMounts).find((m) => m.name === volume)?.mountPath as string | undefined;
      const volumes = asArr(pod.volumes);
      const cmVol = volumes.find((v) => isObj(v.configMap));
      assert.equal(at(cmVol, 'configMap.name'), at(cm, 'metadata.name'));
      assert.deepEqual(at(cmVol, 'configMap.items'), [{ key: 'configData', path: 'config.yaml' }]);
      assert.equal(mountOf(String(cmVol!.name)), '/etc/mapper');
      // Both sockets live in the host directory mounted at the same path (upstream: /etc/kubeedge).
      for (const sock of [config.grpc_server.socket_path, config.common.edgecore_sock]) {
        const hostDir = volumes.find((v) => isObj(v.hostPath) && at(v, 'hostPath.path') === dirname(sock));
        assert.ok(hostDir, `${sock}: its directory is a hostPath volume`);
        assert.equal(mountOf(String(hostDir.name)), dirname(sock), `${sock}: mounted at the same path`);
      }
      // Any other persistent volume the Deployment claims is in resource/ too.
      for (const v of volumes.filter((x) => isObj(x.persistentVolumeClaim))) {
        assert.ok(
          docs.some((d) => d.kind === 'PersistentVolumeClaim' && at(d, 'metadata.name') === at(v, 'persistentVolumeClaim.claimName')),
          `claim ${String(at(v, 'persistentVolumeClaim.claimName'))} is in resource/`,
        );
      }
      if (name === 'usb-camera') {
        const cam = volumes.find((v) => isObj(v.hostPath) && v.hostPath.type === 'CharDevice');
        assert.ok(cam, 'the camera device node');
        assert.equal(mountOf(String(cam.name)), at(cam, 'hostPath.path'));
      }
      if (name === 'ble') {
        assert.equal(pod.hostNetwork, true, 'HCI sockets live in the host network namespace');
        assert.deepEqual(at(c, 'securityContext.capabilities.add'), ['NET_RAW', 'NET_ADMIN']);
      }
    });
  }

  it('the reference mapper list is the packages/mappers folder', () => {
    const dirs = readdirSync(join(repoRoot, 'packages/mappers')).filter((d) => existsSync(join(repoRoot, 'packages/mappers', d, 'package.json')));
    assert.deepEqual([...REFERENCE_MAPPERS].sort(), dirs.sort());
  });
});
