// SPDX-License-Identifier: Apache-2.0
// OPC UA node id text forms (OPC 10000-6 §5.3.1.10) → a parsed reference whose namespace may
// still be a URI; the URI is resolved against the server's NamespaceArray once per session,
// because namespace indexes may change when a server restarts.

/** Identifier kinds: numeric, string, GUID, opaque (ByteString, base64). */
export type NodeIdKind = 'i' | 's' | 'g' | 'b';

/** A node id as configured: the namespace is an index or a URI still to be resolved. */
export interface NodeRef {
  readonly namespace: { readonly index: number } | { readonly uri: string };
  readonly kind: NodeIdKind;
  /** Numeric identifier for `i`, text otherwise (GUID text, base64 for `b`). */
  readonly identifier: number | string;
  /** The text the user wrote (for messages). */
  readonly text: string;
}

const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const FORM = /^(?:(ns|nsu)=([^;]*);)?(i|s|g|b)=([\s\S]*)$/;

/**
 * Parses `ns=2;s=Temperature`, `ns=2;i=1001`, `i=2258`, `ns=3;g=<guid>`, `ns=1;b=<base64>`,
 * `nsu=urn:acme:plant;s=Temperature`, or, with `namespaceUri`, a node id without namespace
 * (`s=Temperature`). Returns a message instead of throwing, for schema refinements.
 */
export function parseNodeId(text: string, namespaceUri?: string): NodeRef | string {
  const t = text.trim();
  const m = FORM.exec(t);
  if (!m) return `"${text}" is not an OPC UA node id (expected e.g. ns=2;s=Temperature, ns=2;i=1001 or nsu=<namespace URI>;s=Temperature)`;
  const [, nsKind, nsText = '', kind, id = ''] = m as unknown as [string, string | undefined, string | undefined, NodeIdKind, string];
  let namespace: NodeRef['namespace'];
  if (nsKind === 'ns') {
    if (!/^\d+$/.test(nsText) || Number(nsText) > 65535) return `"${text}": namespace index "${nsText}" must be an integer 0-65535`;
    if (namespaceUri) return `"${text}" has a namespace index but namespaceUri is also set; use one of them`;
    namespace = { index: Number(nsText) };
  } else if (nsKind === 'nsu') {
    let uri: string;
    try {
      uri = decodeURIComponent(nsText);
    } catch {
      return `"${text}": namespace URI is not valid percent-encoding`;
    }
    if (uri === '') return `"${text}": namespace URI is empty`;
    if (namespaceUri && namespaceUri !== uri) return `"${text}" names namespace ${uri} but namespaceUri is ${namespaceUri}`;
    namespace = { uri };
  } else {
    namespace = namespaceUri ? { uri: namespaceUri } : { index: 0 };
  }
  switch (kind) {
    case 'i': {
      if (!/^\d+$/.test(id) || Number(id) > 0xffffffff) return `"${text}": numeric identifier "${id}" must be an integer 0-4294967295`;
      return { namespace, kind, identifier: Number(id), text: t };
    }
    case 's':
      if (id.length === 0) return `"${text}": string identifier is empty`;
      if (id.length > 4096) return `"${text}": string identifier is longer than 4096 characters`;
      return { namespace, kind, identifier: id, text: t };
    case 'g':
      if (!GUID.test(id)) return `"${text}": "${id}" is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)`;
      return { namespace, kind, identifier: id.toLowerCase(), text: t };
    case 'b':
      if (id.length === 0 || !BASE64.test(id)) return `"${text}": opaque identifier "${id}" is not base64`;
      return { namespace, kind, identifier: id, text: t };
  }
}
