// SPDX-License-Identifier: Apache-2.0
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadMapperConfig, MapperError, parseMapperConfig } from '@mapperkit/framework';

const UPSTREAM = `
grpc_server:
  socket_path: /etc/kubeedge/modbus.sock
common:
  name: modbus-mapper
  version: v1.13.0
  api_version: v1.0.0
  protocol: modbus
  address: 127.0.0.1
  edgecore_sock: /etc/kubeedge/dmi.sock
`;

describe('config.yaml', () => {
  it('accepts the upstream template unchanged, with defaults', () => {
    const { config, unknownKeys } = parseMapperConfig(UPSTREAM);
    assert.equal(config.grpc_server.socket_path, '/etc/kubeedge/modbus.sock');
    assert.equal(config.common.protocol, 'modbus');
    assert.equal(config.common.http_port, 7777);
    assert.equal(config.runtime.report_rate, 1);
    assert.equal(config.runtime.report_burst, 100);
    assert.deepEqual(unknownKeys, []);
  });

  it('accepts http_port as a string (upstream) or a number', () => {
    assert.equal(parseMapperConfig(`${UPSTREAM}  http_port: "8080"\n`).config.common.http_port, 8080);
    assert.equal(parseMapperConfig(`${UPSTREAM}  http_port: 9090\n`).config.common.http_port, 9090);
    assert.equal(parseMapperConfig(`${UPSTREAM}  http_port: ""\n`).config.common.http_port, 7777);
  });

  it('names the missing or bad key', () => {
    assert.throws(
      () => parseMapperConfig(UPSTREAM.replace('  protocol: modbus\n', ''), 'my.yaml'),
      (e: unknown) => e instanceof MapperError && e.kind === 'InvalidConfig' && e.key === 'common.protocol' && /my\.yaml: common\.protocol: required/.test(e.message),
    );
    assert.throws(() => parseMapperConfig(`${UPSTREAM}  http_port: "eighty"\n`), /common\.http_port: "eighty" is not a TCP port/);
    assert.throws(() => parseMapperConfig(`${UPSTREAM}runtime:\n  report_rate: -1\n`), /runtime\.report_rate/);
    assert.throws(() => parseMapperConfig('grpc_server: [\n'), /YAML syntax error/);
  });

  it('reports unknown keys (typos, legacy dev_init) instead of silently ignoring them', () => {
    const { unknownKeys } = parseMapperConfig(`${UPSTREAM}  protocl: x\ndev_init:\n  mode: register\n`);
    assert.deepEqual([...unknownKeys].sort(), ['common.protocl', 'dev_init']);
  });

  it('treats an edgecore_sock directory as <dir>/dmi.sock (edgecore >= v1.23 takes a directory)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    mkdirSync(join(dir, 'kubeedge'));
    const { config } = parseMapperConfig(UPSTREAM.replace('/etc/kubeedge/dmi.sock', join(dir, 'kubeedge')));
    assert.equal(config.common.edgecore_sock, join(dir, 'kubeedge', 'dmi.sock'));
  });

  it('loads a file and names it when it is missing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    writeFileSync(join(dir, 'config.yaml'), UPSTREAM);
    assert.equal(loadMapperConfig(join(dir, 'config.yaml')).config.common.name, 'modbus-mapper');
    assert.throws(() => loadMapperConfig(join(dir, 'nope.yaml')), /cannot read config file .*nope\.yaml/);
  });
});
