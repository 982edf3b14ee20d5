// SPDX-License-Identifier: Apache-2.0
// Bugs the fuzzer found in other packages, reported to their owners, each with a regression
// test in test/regressions.test.ts (failing until fixed). A fuzz failure whose signature
// matches is reported as known; any other failure is new. Remove an entry once its fix lands.
export interface KnownBug {
  readonly id: string;
  readonly targets: readonly string[];
  readonly signature: RegExp;
  readonly title: string;
  /** Where the fix belongs. */
  readonly where: string;
}

export const KNOWN_BUGS: readonly KnownBug[] = [
  {
    id: 'yaml-alias-throws',
    targets: ['crd-yaml', 'config-yaml'],
    signature: /^ReferenceError: (Excessive alias count|Unresolved alias)/,
    title: 'parseCrdYaml and parseMapperConfig throw a ReferenceError (not a reported problem / MapperError) for YAML aliases: an undefined alias ("*a") or an alias expansion beyond the yaml library limit',
    where: 'packages/mapper-framework/src/dmi/crd.ts parseCrdYaml and src/config.ts parseMapperConfig: doc.toJS() is not guarded (edgecore-dmi\'s inventory.ts guards it)',
  },
  {
    id: 'float32-overflow',
    targets: ['crd-yaml'],
    signature: /^Error: invalid floatN/,
    title: 'deviceToProto / encodeAnyLikeEdgecore throw a plain Error ("invalid float32") for a configData number beyond the float32 range (e.g. 3.5e38); edgecore (Go) would send +Inf',
    where: 'packages/mapper-framework/src/dmi/any-codec.ts encodeAnyLikeEdgecore → encodeAnyAs("Float") → FloatValue.encode',
  },
  {
    id: 'int64-overflow',
    targets: ['crd-yaml'],
    signature: /^Error: value provided for field .* of type u?intN too large/,
    title: 'deviceToProto accepts integers beyond the int64 range (e.g. reportCycle: -9223372036854778000 or 1e30); the Device then fails to serialise (plain Error at Device.encode, i.e. when edgecore-dmi sends it)',
    where: 'packages/mapper-framework/src/dmi/crd.ts int(): Number.isInteger accepts any magnitude',
  },
  {
    id: 'proto-key-dropped',
    targets: ['any-decoder'],
    signature: /^Error: configData key "…" neither decoded nor reported skipped/,
    title: 'decodeCustomizedValue silently drops a configData key named "__proto__" (assigned into a plain object), without the skip warning other undecodable keys get',
    where: 'packages/mapper-framework/src/dmi/any-codec.ts decodeCustomizedValue (out = {})',
  },
  {
    id: 'yaml-deep-nesting-abort',
    targets: [],
    signature: /^$a/,
    title:
      'About 1,000 nested YAML collections (2 KB) make the yaml library overflow the stack; parsing such a text a second time in the same process aborts Node ("FATAL ERROR: RegExpCompiler Allocation failed - process out of memory"). edgecore-dmi dies on the second POST /api/v1/apply of it (or a watched file with it); parseCrdYaml / parseMapperConfig do the same. Found by the crash probes, not by the generators (their nesting is bounded so that the campaign can go on)',
    where: 'every yaml parse of untrusted text: packages/edgecore-dmi/src/inventory.ts parseSource, packages/mapper-framework/src/dmi/crd.ts parseCrdYaml, src/config.ts parseMapperConfig — refuse texts nested deeper than a limit before calling yaml',
  },
  {
    id: 'edgecore-dmi-shows-url-credentials',
    targets: [],
    signature: /^$a/,
    title:
      "edgecore-dmi's API (GET /api/v1/devices/{ns}/{name}: definition and proto) and so its dashboard show a Device's pushMethod.mqtt.address verbatim, including user:password (the only way the MQTT sink takes credentials). Found by the credential scan in test/security.test.ts",
    where: 'packages/edgecore-dmi/src (device detail view): redact URL userinfo as the framework does (redactUrl); and packages/mapper-framework/src/sinks/mqtt.ts: take USERNAME/PASSWORD from credentials_dir/env like the Redis sink, so no password needs to be in a CRD',
  },
  {
    id: 'edgecore-http-500',
    targets: ['edgecore-dmi-http'],
    signature: /^Error: status N: (Invalid URL|URI malformed)/,
    title: 'edgecore-dmi answers 500 Internal (not 400/404) for a path starting with "//" (new URL throws) and for a malformed percent-encoding in a path segment (decodeURIComponent throws)',
    where: 'packages/edgecore-dmi/src/http.ts route(): new URL(req.url, base) and parts.map(decodeURIComponent)',
  },
];

export function knownBugFor(target: string, signature: string): KnownBug | undefined {
  return KNOWN_BUGS.find((b) => b.targets.includes(target) && b.signature.test(signature));
}
