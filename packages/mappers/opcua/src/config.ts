// SPDX-License-Identifier: Apache-2.0
// Protocol and visitor configData of the OPC UA driver. Keys follow the legacy upstream
// OPC UA mapper (url, userName, password, securityPolicy, securityMode, certificate,
// privateKey, timeout, nodeID, browseName) and add what v1beta1 users asked for (namespace
// URIs, data types, subscriptions with deadbands, explicit server trust). configData is a
// flat map of scalars on the DMI wire, so every setting is a flat key. Keys are matched
// case-insensitively, as upstream's Go JSON decoding did (`nodeId` = `nodeID`).
import { z } from '@mapperkit/framework';
import { parseNodeId, type NodeRef } from './node-id.js';

/** Lower-cases keys onto the canonical spelling of `keys`; unknown keys pass through. */
function canonicalKeys(keys: readonly string[], aliases: Readonly<Record<string, string>> = {}): (raw: unknown) => unknown {
  const byLower = new Map(keys.map((k) => [k.toLowerCase(), k]));
  for (const [alias, key] of Object.entries(aliases)) byLower.set(alias.toLowerCase(), key);
  return (raw) => {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(raw)) {
      const key = byLower.get(k.toLowerCase()) ?? k;
      if (!(key in out) || key === k) out[key] = v;
    }
    return out;
  };
}

/** true/false, "true"/"false" (any case), 1/0 — `z.coerce.boolean()` would read "false" as true. */
const bool = z.preprocess((v) => {
  if (typeof v === 'string') {
    const s = v.trim().toLowerCase();
    if (s === 'true' || s === '1') return true;
    if (s === 'false' || s === '0' || s === '') return false;
  }
  if (v === 1) return true;
  if (v === 0) return false;
  return v;
}, z.boolean());

const ms = (def: number, min = 1) => z.coerce.number().int().min(min).default(def);
const nonEmpty = z.string().trim().min(1);

/** Security policies this driver accepts; the keys are what configData may say (normalised). */
export const SECURITY_POLICIES = {
  None: 'None',
  Basic256Sha256: 'Basic256Sha256',
  Aes128Sha256RsaOaep: 'Aes128_Sha256_RsaOaep',
  Aes256Sha256RsaPss: 'Aes256_Sha256_RsaPss',
  // Deprecated by the OPC Foundation (SHA-1); accepted for old servers, with a warning.
  Basic256: 'Basic256',
  Basic128Rsa15: 'Basic128Rsa15',
} as const;
export type SecurityPolicyName = (typeof SECURITY_POLICIES)[keyof typeof SECURITY_POLICIES];

const policy = z.preprocess(
  (v) => {
    if (typeof v !== 'string') return v;
    // Accept `Aes128_Sha256_RsaOaep`, `Aes128Sha256RsaOaep` and the full policy URI.
    const short = v.trim().replace(/^https?:\/\/opcfoundation\.org\/UA\/SecurityPolicy#/i, '').replace(/[_-]/g, '');
    const hit = Object.keys(SECURITY_POLICIES).find((k) => k.toLowerCase() === short.toLowerCase()) as keyof typeof SECURITY_POLICIES | undefined;
    return hit ? SECURITY_POLICIES[hit] : v;
  },
  z.enum(['None', 'Basic256Sha256', 'Aes128_Sha256_RsaOaep', 'Aes256_Sha256_RsaPss', 'Basic256', 'Basic128Rsa15'], {
    error: 'must be one of None, Basic256Sha256, Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss (deprecated: Basic256, Basic128Rsa15)',
  }),
);

const mode = z.preprocess(
  (v) => (typeof v === 'string' ? ({ none: 'None', sign: 'Sign', signandencrypt: 'SignAndEncrypt' } as Record<string, string>)[v.trim().toLowerCase().replace(/[_-]/g, '')] ?? v : v),
  z.enum(['None', 'Sign', 'SignAndEncrypt'], { error: 'must be one of None, Sign, SignAndEncrypt' }),
);

const identity = z.preprocess(
  (v) =>
    typeof v === 'string'
      ? ({ anonymous: 'anonymous', username: 'username', x509: 'x509', certificate: 'x509' } as Record<string, string>)[v.trim().toLowerCase()] ?? v
      : v,
  z.enum(['anonymous', 'username', 'x509'], { error: 'must be one of anonymous, username, x509' }),
);

const PROTOCOL_KEYS = [
  'url',
  'securityPolicy',
  'securityMode',
  'identity',
  'userName',
  'password',
  'passwordFile',
  'passwordEnv',
  'certificate',
  'privateKey',
  'userCertificate',
  'userPrivateKey',
  'pkiDir',
  'serverCertificate',
  'acceptUnknownServerCertificate',
  'applicationName',
  'applicationUri',
  'timeout',
  'sessionTimeout',
  'maxAge',
  'maxNodesPerRead',
  'subscribe',
  'publishingInterval',
] as const;

/**
 * Protocol configData. Credentials never sit in it in clear: `password`/`passwordFile` name a
 * file (a mounted Secret; upstream's `password` already was a file path), `passwordEnv` an
 * environment variable (a Secret exposed with `env.valueFrom.secretKeyRef`).
 */
export const protocolConfig = z
  .preprocess(
    canonicalKeys(PROTOCOL_KEYS, { username: 'userName', remoteCertificate: 'serverCertificate', endpoint: 'url', endpointUrl: 'url' }),
    z.object({
      /** Endpoint URL, `opc.tcp://host:4840[/path]`. */
      url: nonEmpty.regex(/^opc\.tcp:\/\/(\[[0-9a-fA-F:.]+\]|[^/:\s[\]]+)(:\d{1,5})?(\/\S*)?$/i, 'must be an endpoint URL like opc.tcp://host:4840'),
      securityPolicy: policy.default('None'),
      securityMode: mode.default('None'),
      /** Default: `username` when userName is set, else anonymous. */
      identity: identity.optional(),
      userName: nonEmpty.optional(),
      /** Absolute path of a file holding the password (upstream semantics). */
      password: nonEmpty.optional(),
      /** Same as `password`, with a clearer name. */
      passwordFile: nonEmpty.optional(),
      /** Name of an environment variable holding the password. */
      passwordEnv: nonEmpty.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name').optional(),
      /** Client application certificate (PEM or DER file); default: created in pkiDir on first start. */
      certificate: nonEmpty.optional(),
      /** Private key (PEM file) of `certificate`. */
      privateKey: nonEmpty.optional(),
      /** X.509 user identity certificate; default: the application certificate. */
      userCertificate: nonEmpty.optional(),
      userPrivateKey: nonEmpty.optional(),
      /** PKI directory (own/, trusted/, rejected/, issuers/). Default: $OPCUA_PKI_DIR or ./pki. */
      pkiDir: nonEmpty.optional(),
      /** A server certificate file (PEM or DER) to trust explicitly (upstream: remoteCertificate). */
      serverCertificate: nonEmpty.optional(),
      /**
       * Trust any server certificate on first sight and store it in trusted/ (lab use only).
       * Default false: the server certificate must be in pkiDir/trusted/certs or `serverCertificate`.
       */
      acceptUnknownServerCertificate: bool.default(false),
      applicationName: nonEmpty.default('mapperkit-opcua'),
      /** Default `urn:<hostname>:mapperkit-opcua`; must match the certificate's URI. */
      applicationUri: nonEmpty.optional(),
      /** Connect and request timeout, ms (upstream `timeout`). */
      timeout: ms(5000, 100),
      /** Requested session timeout, ms. */
      sessionTimeout: ms(60_000, 1000),
      /** MaxAge of Read requests, ms (0: read the device, not a cache). */
      maxAge: z.coerce.number().int().min(0).default(0),
      /** Upper bound of nodes per Read call, on top of the server's MaxNodesPerRead. */
      maxNodesPerRead: z.coerce.number().int().positive().optional(),
      /** Default of the visitors' `subscribe`. */
      subscribe: bool.default(false),
      /** Publishing interval of the device's subscription, ms. */
      publishingInterval: ms(1000, 10),
    }),
  )
  .superRefine((c, ctx) => {
    if ((c.securityPolicy === 'None') !== (c.securityMode === 'None'))
      ctx.addIssue({
        code: 'custom',
        path: ['securityMode'],
        message: `securityMode ${c.securityMode} does not go with securityPolicy ${c.securityPolicy} (None goes only with None)`,
      });
    const files = [c.password, c.passwordFile].filter((x) => x !== undefined);
    if (files.length + (c.passwordEnv ? 1 : 0) > 1) ctx.addIssue({ code: 'custom', path: ['passwordEnv'], message: 'set only one of password, passwordFile, passwordEnv' });
    // Never echo the value: a cleartext password put here by mistake must not reach logs.
    for (const key of ['password', 'passwordFile'] as const) {
      const v = c[key];
      if (v !== undefined && !v.startsWith('/'))
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: 'must be the absolute path of a file holding the password (e.g. a mounted Secret); cleartext passwords are not accepted',
        });
    }
    const id = c.identity ?? (c.userName ? 'username' : 'anonymous');
    if (id === 'username' && !c.userName) ctx.addIssue({ code: 'custom', path: ['userName'], message: 'required for identity username' });
    if (id === 'username' && files.length === 0 && !c.passwordEnv)
      ctx.addIssue({ code: 'custom', path: ['passwordFile'], message: 'identity username needs passwordFile (or password) or passwordEnv' });
    if ((c.certificate === undefined) !== (c.privateKey === undefined))
      ctx.addIssue({ code: 'custom', path: [c.certificate ? 'privateKey' : 'certificate'], message: 'certificate and privateKey go together' });
    if ((c.userCertificate === undefined) !== (c.userPrivateKey === undefined))
      ctx.addIssue({ code: 'custom', path: [c.userCertificate ? 'userPrivateKey' : 'userCertificate'], message: 'userCertificate and userPrivateKey go together' });
  })
  .transform((c) => ({ ...c, identity: c.identity ?? (c.userName ? ('username' as const) : ('anonymous' as const)) }));

export type ProtocolConfig = z.output<typeof protocolConfig>;

const VISITOR_KEYS = [
  'nodeID',
  'namespaceUri',
  'browseName',
  'dataType',
  'subscribe',
  'samplingInterval',
  'queueSize',
  'discardOldest',
  'deadbandType',
  'deadbandValue',
  'dataChangeTrigger',
] as const;

/** OPC UA built-in types a write can be coerced to (names as in OPC 10000-6). */
export const BUILTIN_TYPES = [
  'Boolean',
  'SByte',
  'Byte',
  'Int16',
  'UInt16',
  'Int32',
  'UInt32',
  'Int64',
  'UInt64',
  'Float',
  'Double',
  'String',
  'DateTime',
  'Guid',
  'ByteString',
  'XmlElement',
  'LocalizedText',
] as const;
export type BuiltinTypeName = (typeof BUILTIN_TYPES)[number];

const builtinType = z.preprocess(
  (v) => (typeof v === 'string' ? (BUILTIN_TYPES.find((t) => t.toLowerCase() === v.trim().toLowerCase()) ?? v) : v),
  z.enum(BUILTIN_TYPES, { error: `must be an OPC UA built-in type: ${BUILTIN_TYPES.join(', ')}` }),
);

/** Visitor configData: which node a property is, and how it is monitored when subscribed. */
export const visitorConfig = z
  .preprocess(
    canonicalKeys(VISITOR_KEYS, { nodeId: 'nodeID', node: 'nodeID', namespace: 'namespaceUri', nsu: 'namespaceUri' }),
    z.object({
      /** `ns=2;s=Temperature`, `ns=2;i=1001`, `ns=3;g=<guid>`, `ns=1;b=<base64>` or `nsu=<uri>;s=…`. */
      nodeID: nonEmpty,
      /** Namespace URI for a node id written without `ns=`/`nsu=` (e.g. nodeID `s=Temperature`). */
      namespaceUri: nonEmpty.optional(),
      /** Informational (upstream). */
      browseName: z.string().optional(),
      /** The node's built-in type, to coerce writes without asking the server (default: read from the node). */
      dataType: builtinType.optional(),
      /** Monitor instead of poll (default: the device's `subscribe`). */
      subscribe: bool.optional(),
      /** Sampling interval, ms; -1 = the publishing interval, 0 = the fastest the server offers. */
      samplingInterval: z.coerce.number().min(-1).default(-1),
      queueSize: z.coerce.number().int().min(0).max(0xffffffff).default(1),
      discardOldest: bool.default(true),
      deadbandType: z
        .preprocess(
          (v) => (typeof v === 'string' ? ({ none: 'None', absolute: 'Absolute', percent: 'Percent' } as Record<string, string>)[v.trim().toLowerCase()] ?? v : v),
          z.enum(['None', 'Absolute', 'Percent'], { error: 'must be one of None, Absolute, Percent' }),
        )
        .default('None'),
      /** Absolute: in the value's units; Percent: of the node's EURange (0-100). */
      deadbandValue: z.coerce.number().min(0).default(0),
      dataChangeTrigger: z
        .preprocess(
          (v) =>
            typeof v === 'string'
              ? ({ status: 'Status', statusvalue: 'StatusValue', statusvaluetimestamp: 'StatusValueTimestamp' } as Record<string, string>)[v.trim().toLowerCase()] ?? v
              : v,
          z.enum(['Status', 'StatusValue', 'StatusValueTimestamp'], { error: 'must be one of Status, StatusValue, StatusValueTimestamp' }),
        )
        .default('StatusValue'),
    }),
  )
  .superRefine((v, ctx) => {
    const parsed = parseNodeId(v.nodeID, v.namespaceUri);
    if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', path: ['nodeID'], message: parsed });
    if (v.deadbandType === 'Percent' && v.deadbandValue > 100) ctx.addIssue({ code: 'custom', path: ['deadbandValue'], message: 'a Percent deadband must be 0-100' });
    if (v.deadbandType === 'None' && v.deadbandValue > 0)
      ctx.addIssue({ code: 'custom', path: ['deadbandType'], message: 'deadbandValue is set; deadbandType must be Absolute or Percent' });
  })
  .transform((v) => ({ ...v, node: parseNodeId(v.nodeID, v.namespaceUri) as NodeRef }));

export type VisitorConfig = z.output<typeof visitorConfig>;
