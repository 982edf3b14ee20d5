// SPDX-License-Identifier: Apache-2.0
// config.yaml parsing: any text gives either a validated config or MapperError('InvalidConfig')
// naming config.yaml; a config that is accepted has values the runtime can use.
import fc from 'fast-check';
import { isMapperError, parseMapperConfig } from '@mapperkit/framework';
import { aliasExpansion, anyValue, deepNesting, mutateText, nesting, toYaml, yamlTokenSoup } from '../arbs.js';
import { type FuzzTarget, fuzzProperty, share } from '../harness.js';

const v = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | unknown> => fc.oneof({ weight: 5, arbitrary: a }, { weight: 1, arbitrary: anyValue });
const num = fc.oneof(fc.integer({ min: -10, max: 100_000 }), fc.constantFrom('500', '1e3', '-1', '0', 'x', 1.5, 1e400));

const configObj = fc.record(
  {
    grpc_server: v(fc.record({ socket_path: v(fc.constantFrom('/tmp/mapper-fuzz.sock', '', 'relative.sock')) }, { requiredKeys: [] })),
    common: v(
      fc.record(
        {
          name: v(fc.constantFrom('m', '')),
          version: v(fc.constantFrom('v1.0.0', 1)),
          api_version: v(fc.constantFrom('v1.0.0')),
          protocol: v(fc.constantFrom('modbus', '')),
          address: v(fc.constantFrom('127.0.0.1')),
          edgecore_sock: v(fc.constantFrom('/tmp/dmi-fuzz.sock', '/tmp', '', '/etc/kubeedge/dmi.sock')),
          http_port: v(fc.oneof(fc.integer({ min: -5, max: 70_000 }), fc.constantFrom('7777', '', ' ', '0x1F', '7777.5', 'abc'))),
        },
        { requiredKeys: [] },
      ),
    ),
    runtime: v(
      fc.record(
        { report_rate: v(num), report_burst: v(num), read_timeout_ms: v(num), backoff_initial_ms: v(num), backoff_max_ms: v(num), reconnect_after_failures: v(num), dmi_timeout_ms: v(num), bogus_key: v(num) },
        { requiredKeys: [] },
      ),
    ),
    rest: v(fc.record({ enabled: v(fc.boolean()), bind_address: v(fc.constantFrom('127.0.0.1', '0.0.0.0', '', '::1')), write_token_file: v(fc.constantFrom('', '/nonexistent/token')) }, { requiredKeys: [] })),
    data_plane: v(
      fc.record(
        {
          push_mode: v(fc.constantFrom('cycle', 'every_sample', 'x')),
          buffer_dir: v(fc.constantFrom('/tmp/buf', '')),
          buffer_max_bytes: v(num),
          queue_capacity: v(num),
          batch_size: v(num),
          mqtt: v(fc.record({ payload: v(fc.constantFrom('text', 'json', 'xml')), client_id: v(fc.string({ maxLength: 5 })) }, { requiredKeys: [] })),
          redis: v(fc.record({ key_template: v(fc.constantFrom('{name}', '', '{namespace}:{name}')) }, { requiredKeys: [] })),
        },
        { requiredKeys: [] },
      ),
    ),
    dev_init: v(fc.constant({ mode: 'configmap' })),
  },
  { requiredKeys: [] },
);

const valid = [
  'grpc_server:',
  '  socket_path: /tmp/mapper-fuzz.sock',
  'common:',
  '  name: modbus-mapper',
  '  version: v1.0.0',
  '  api_version: v1.0.0',
  '  protocol: modbus',
  '  address: 127.0.0.1',
  '  edgecore_sock: /tmp/dmi-fuzz.sock',
  '  http_port: "7777"',
  'runtime:',
  '  report_rate: 1',
  '  read_timeout_ms: 5000',
  'rest:',
  '  bind_address: 127.0.0.1',
  'data_plane:',
  '  buffer_dir: /tmp/buf',
  '  mqtt:',
  '    payload: json',
  '',
].join('\n');

export const configText: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: configObj.map(toYaml) },
  { weight: 4, arbitrary: mutateText(fc.constant(valid)) },
  { weight: 2, arbitrary: yamlTokenSoup },
  { weight: 1, arbitrary: aliasExpansion },
  { weight: 1, arbitrary: nesting(120) },
  { weight: 1, arbitrary: deepNesting },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
);

export const configYamlTarget: FuzzTarget = {
  name: 'config-yaml',
  description: 'parseMapperConfig on structured configs (known keys, values of any type), mutations of a valid config.yaml, token soup, aliases, nesting, raw strings',
  async run(ctx) {
    return [
      await fuzzProperty(
        'config.yaml text → validated config or InvalidConfig',
        configText,
        (text) => {
          try {
            const { config } = parseMapperConfig(text, 'config.yaml');
            const c = config;
            const port = c.common.http_port;
            if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`accepted http_port ${String(port)}`);
            for (const [k, x] of Object.entries(c.runtime)) if (!(typeof x === 'number' && x > 0 && Number.isFinite(x))) throw new Error(`accepted runtime.${k} = ${String(x)}`);
            if (!c.grpc_server.socket_path || !c.common.protocol || !c.common.name) throw new Error('accepted an empty required key');
            ctx.stats['accepted'] = (ctx.stats['accepted'] ?? 0) + 1;
          } catch (err) {
            if (!isMapperError(err)) throw err;
            if (err.kind !== 'InvalidConfig') throw new Error(`refused with kind ${err.kind}`);
            if (!err.message.startsWith('config.yaml')) throw new Error(`error does not name the file: ${err.message}`);
            ctx.stats['refused:InvalidConfig'] = (ctx.stats['refused:InvalidConfig'] ?? 0) + 1;
          }
        },
        { ...ctx, runs: share(ctx.runs, 1, 0) },
      ),
    ];
  },
};
