// SPDX-License-Identifier: Apache-2.0
// Shared generators: YAML-ish text (structured documents, token soup, mutations of valid
// documents, aliases, nesting), scalar soup for configData maps, byte mutations.
import fc from 'fast-check';
import { stringify } from 'yaml';

/** Scalars as they appear in configData (edgecore sends strings, numbers, booleans). */
export const scalar: fc.Arbitrary<string | number | boolean> = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom('', ' ', '0', '1', '-1', 'true', 'false', 'NaN', 'Infinity', '-0', '1e309', '0x10', '1_000', 'null', '~', '5020', 'ABCD', 'DCBA', 'TCP', 'RTU'),
  fc.integer({ min: -70_000, max: 70_000 }),
  fc.double(),
  fc.constantFrom(0, 1, -1, 2 ** 31, 2 ** 32, 2 ** 53, -(2 ** 53), 1e21, 0.1, Number.MAX_VALUE, Number.MIN_VALUE),
  fc.boolean(),
);

/** Any JSON-like value (for keys whose expected type is not respected). */
export const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: scalar },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.array(scalar, { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 5 }), scalar, { maxKeys: 3 }) },
);

/** A map whose keys are mostly the ones a schema knows, with values of any type. */
export function configMap(knownKeys: readonly string[], maxKeys = 8): fc.Arbitrary<Record<string, unknown>> {
  const key = fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...knownKeys) }, { weight: 1, arbitrary: fc.string({ maxLength: 10 }) });
  return fc.dictionary(key, anyValue, { maxKeys });
}

/** Byte-level mutations of a valid encoding: flip, truncate, extend, splice. */
export function mutateBytes(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(valid, fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 }), fc.constantFrom('flip', 'set', 'cut', 'insert', 'dup')), { maxLength: 4 }))
    .map(([bytes, edits]) => {
      let b = Array.from(bytes);
      for (const [pos, val, op] of edits) {
        const i = b.length === 0 ? 0 : pos % b.length;
        if (op === 'flip' && b.length) b[i] = (b[i]! ^ (1 << val % 8)) & 255;
        else if (op === 'set' && b.length) b[i] = val;
        else if (op === 'cut') b = b.slice(0, i);
        else if (op === 'insert') b.splice(i, 0, val);
        else if (op === 'dup') b = b.concat(b.slice(i, i + 8));
      }
      return Uint8Array.from(b);
    });
}

const YAML_TOKENS = [
  '\n', '\n  ', '\n    ', ' ', ': ', '- ', '---\n', '...\n', '#', '&a ', '*a', '&b ', '*b', '<<: ', '!!str ', '!!binary ', '!!int ', '!!map ', '!custom ', '|', '>', '"', "'", '{', '}', '[', ']', ',',
  '?', '%YAML 1.2\n', '%TAG ! tag:x,2000:\n', '\t', '\r\n', '\\u0000', '\u0000', '\ufeff', '\u2028', '😀',
  'apiVersion', 'devices.kubeedge.io/v1beta1', 'kind', 'Device', 'DeviceModel', 'metadata', 'name', 'namespace', 'spec', 'deviceModelRef', 'protocol', 'protocolName', 'configData',
  'properties', 'visitors', 'collectCycle', 'reportCycle', 'desired', 'value', 'pushMethod', 'mqtt', 'dbMethod', 'redis', 'redisClientConfig', 'methods', 'propertyNames', 'stateReport',
  'grpc_server', 'socket_path', 'common', 'edgecore_sock', 'http_port', 'runtime', 'rest', 'data_plane', 'buffer_dir', 'report_rate', 'modbus', 'x', '0', '-1', '1e400', 'null', '~', 'true', 'yes',
];

/** Text built from YAML tokens and field names (reaches the parser's odd corners quickly). */
export const yamlTokenSoup: fc.Arbitrary<string> = fc.array(fc.constantFrom(...YAML_TOKENS), { maxLength: 60 }).map((t) => t.join(''));

/** Character-level mutations of a valid document. */
export function mutateText(valid: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc
    .tuple(valid, fc.array(fc.tuple(fc.nat(), fc.constantFrom(...YAML_TOKENS), fc.constantFrom('insert', 'delete', 'replace')), { maxLength: 5 }))
    .map(([text, edits]) => {
      let t = text;
      for (const [pos, tok, op] of edits) {
        const i = t.length === 0 ? 0 : pos % t.length;
        if (op === 'insert') t = t.slice(0, i) + tok + t.slice(i);
        else if (op === 'delete') t = t.slice(0, i) + t.slice(i + 1 + (pos % 7));
        else t = t.slice(0, i) + tok + t.slice(i + tok.length);
      }
      return t;
    });
}

/** Aliases that expand (a "billion laughs" of bounded size). */
export const aliasExpansion: fc.Arbitrary<string> = fc.tuple(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 2, max: 12 })).map(([levels, width]) => {
  const lines = [`l0: &l0 [x${',x'.repeat(width - 1)}]`];
  for (let i = 1; i <= levels; i++) lines.push(`l${i}: &l${i} [${Array.from({ length: width }, () => `*l${i - 1}`).join(',')}]`);
  return `${lines.join('\n')}\n`;
});

/**
 * Nested flow collections and block maps, up to `maxDepth` levels. Depths of several hundred
 * make the yaml library overflow the stack (and used to abort the process: see the crash
 * probes); the framework's YAML guard refuses texts nested deeper than 64 levels first.
 */
export function nesting(maxDepth: number): fc.Arbitrary<string> {
  return fc.tuple(fc.integer({ min: 1, max: maxDepth }), fc.constantFrom('[', '{a: ', 'block')).map(([d, kind]) => {
    if (kind === 'block') return Array.from({ length: d }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n');
    return kind.repeat(d) + (kind === '[' ? ']' : '}').repeat(d);
  });
}

/**
 * Nesting far beyond the guard's limit (65–3,000 levels), alone or after text that may hide it
 * from a quote-aware depth scan (a quote inside a plain scalar or a comment). Whatever the guard
 * lets through reaches the yaml library, which must refuse it without killing the process.
 */
export const deepNesting: fc.Arbitrary<string> = fc
  .tuple(
    fc.constantFrom('', 'k: a"b\nm: ', "k: it's\nm: ", '# "\nm: ', 'k: "x\\"\nm: ', 'k: |\n  "\nm: ', '- a"\n- '),
    fc.integer({ min: 65, max: 3000 }),
    fc.constantFrom('[', '{a: ', '- '),
  )
  .map(([prefix, d, kind]) => (kind === '- ' ? `${prefix}\n${'- '.repeat(d)}x` : `${prefix}${kind.repeat(d)}${(kind === '[' ? ']' : '}').repeat(d)}`));

/** YAML text of a value (JSON text when the YAML writer refuses it). */
export function toYaml(v: unknown): string {
  try {
    return stringify(v);
  } catch {
    return JSON.stringify(v) ?? '';
  }
}

/** Structured documents with known field names and values of any type. */
export function structuredYaml(shape: fc.Arbitrary<unknown>): fc.Arbitrary<string> {
  return shape.map(toYaml);
}
