// SPDX-License-Identifier: Apache-2.0
// Bugs the fuzzer found in other packages and that are not fixed yet. A fuzz failure whose
// signature matches an entry is counted under its id and does not stop the campaign; any
// other failure is new and fails `npm run fuzz` and test/fuzz.test.ts. Add an entry only
// together with a regression test in test/regressions.test.ts and a report to the owner;
// remove it (moving it to FIXED_BUGS) in the commit that lands the fix, so that the campaign
// treats the bug as a failure again.
export interface KnownBug {
  readonly id: string;
  readonly targets: readonly string[];
  readonly signature: RegExp;
  readonly title: string;
  /** Where the fix belongs. */
  readonly where: string;
}

/** Open bugs. */
export const KNOWN_BUGS: readonly KnownBug[] = [];

export interface FixedBug {
  readonly id: string;
  readonly title: string;
  /** The commit that fixed it. */
  readonly fixedIn: string;
  /** Fuzz targets that found it (empty: a crash probe or the credential scan). */
  readonly targets: readonly string[];
  /** An error the bug used to produce, as thrown (the campaign must count it as a failure now). */
  readonly sample?: Error;
  /** Where its regression test is: file and describe/it names. */
  readonly regressionTest: string;
}

/** Bugs found by fuzzing, probes or the credential scan, since fixed; each keeps its regression test. */
export const FIXED_BUGS: readonly FixedBug[] = [
  {
    id: 'rest-half-close-drops-write',
    title:
      "The mapper's REST server closed the connection without an answer when the client half-closed it (FIN) right after a write request: Node's http.Server (httpAllowHalfOpen false) aborted the request on the FIN before the asynchronous device write answered",
    fixedIn: 'efd49af',
    targets: ['rest-api'],
    sample: new Error('no answer to a request sent raw (client half-closed after sending)'),
    regressionTest: 'test/regressions.test.ts "rest-half-close-drops-write: a write whose client half-closes after sending gets its answer"',
  },
  {
    id: 'yaml-alias-throws',
    title: 'parseCrdYaml / parseMapperConfig threw a ReferenceError for an undefined alias or an alias expansion beyond the limit',
    fixedIn: '1606d87',
    targets: ['crd-yaml', 'config-yaml'],
    sample: new ReferenceError('Excessive alias count indicates a resource exhaustion attack'),
    regressionTest: 'test/regressions.test.ts "yaml-alias-throws: YAML aliases are reported, not thrown"',
  },
  {
    id: 'float32-overflow',
    title: 'deviceToProto / encodeAnyLikeEdgecore threw a plain Error ("invalid float32") for a configData number beyond the float32 range',
    fixedIn: '1606d87',
    targets: ['crd-yaml'],
    sample: new Error('invalid float32: 3.5e+38'),
    regressionTest: 'test/regressions.test.ts "float32-overflow and int64-overflow: CRD numbers beyond the wire types"',
  },
  {
    id: 'int64-overflow',
    title: 'deviceToProto accepted integers beyond int64; Device.encode then threw a plain Error',
    fixedIn: '1606d87',
    targets: ['crd-yaml'],
    sample: new Error('value provided for field "reportCycle" of type int64 too large'),
    regressionTest: 'test/regressions.test.ts "float32-overflow and int64-overflow: CRD numbers beyond the wire types"',
  },
  {
    id: 'proto-key-dropped',
    title: 'decodeCustomizedValue silently dropped a configData key named "__proto__"',
    fixedIn: '1606d87',
    targets: ['any-decoder'],
    sample: new Error('configData key "__proto__" neither decoded nor reported skipped'),
    regressionTest: 'test/regressions.test.ts "proto-key-dropped: every configData key is decoded or reported"',
  },
  {
    id: 'edgecore-http-500',
    title: 'edgecore-dmi answered 500 for a path starting with "//" or with a malformed percent-encoding',
    fixedIn: '1606d87',
    targets: ['edgecore-dmi-http'],
    sample: new Error('status 500: Invalid URL'),
    regressionTest: 'test/regressions.test.ts "edgecore-http-500: edgecore-dmi answers bad paths with 4xx"',
  },
  {
    id: 'yaml-deep-nesting-abort',
    title: 'About 1,000 nested YAML collections (2 KB) parsed twice in one process aborted Node (edgecore-dmi on the second POST /api/v1/apply)',
    fixedIn: '1606d87',
    targets: [],
    regressionTest: 'test/regressions.test.ts "yaml-deep-nesting-abort: …" (the crash probes of src/fuzz/probes.ts, each in its own process)',
  },
  {
    id: 'cycle-timer-overflow',
    title: 'a collectCycle/reportCycle beyond 2^31-1 ms became a 1 ms timer',
    fixedIn: '1606d87',
    targets: [],
    regressionTest: 'test/regressions.test.ts "timer overflow: a cycle beyond 2^31 ms must not become a 1 ms timer"',
  },
  {
    id: 'edgecore-dmi-shows-url-credentials',
    title: "edgecore-dmi's device API and dashboard showed pushMethod.mqtt.address verbatim, user:password included",
    fixedIn: '44f2ae9',
    targets: [],
    regressionTest: 'test/security.test.ts "edgecore-dmi\'s API and dashboard do not show credentials carried in a Device (broker URL userinfo)"',
  },
];

export function knownBugFor(target: string, signature: string): KnownBug | undefined {
  return KNOWN_BUGS.find((b) => b.targets.includes(target) && b.signature.test(signature));
}
