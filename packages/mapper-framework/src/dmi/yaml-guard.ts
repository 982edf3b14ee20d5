// SPDX-License-Identifier: Apache-2.0
// Guards around the yaml library for untrusted text (Device YAML, config.yaml, API bodies):
// deeply nested collections overflow its recursive parser (and a second attempt in the same
// process can abort V8), and alias problems surface as thrown ReferenceErrors from toJS().
import { type Document, parseAllDocuments, parseDocument } from 'yaml';

/** Deepest collection nesting accepted. Real CRDs and configs nest < 15 levels. */
export const MAX_YAML_DEPTH = 64;
/** Most alias expansions accepted (billion-laughs guard; the yaml library's own default is 100). */
const MAX_ALIAS_COUNT = 100;

/** Characters after which a scalar (and so a quoted one) can start. */
const SCALAR_STARTS = ':,[{-?';

/**
 * Nesting depth of YAML text, approximated without parsing: the deepest flow nesting (`[`/`{`
 * outside quotes and comments) plus the deepest block indentation (in steps of one space, so an
 * over-estimate). Cheap and linear, so it can run before the recursive parser. A quote starts a
 * quoted scalar only where a scalar can start (line start, after `:`, `,`, `[`, `{`, `-`, `?`):
 * inside a plain scalar (`k: a"b`) YAML reads it as text, and so must the scan, or nesting after it
 * would go uncounted. Likewise `#` starts a comment only after white space.
 */
export function yamlNestingDepth(text: string): number {
  let max = 0;
  let flow = 0;
  let quote: '"' | "'" | undefined;
  let lineStart = true;
  let indent = 0;
  /** Last character outside quotes on this line that is not a space ('' at the line start). */
  let prev = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\n') {
      lineStart = true;
      indent = 0;
      prev = '';
      if (quote === "'") quote = undefined; // single-quoted scalars rarely span lines; keep the scan robust
      continue;
    }
    if (lineStart) {
      if (c === ' ' || c === '-') {
        indent++;
        continue;
      }
      lineStart = false;
      max = Math.max(max, Math.floor(indent / 2));
    }
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) {
        quote = undefined;
        prev = c;
      }
      continue;
    }
    if (c === ' ' || c === '\t') continue;
    const scalarStart = prev === '' || SCALAR_STARTS.includes(prev);
    prev = c;
    if ((c === '"' || c === "'") && scalarStart) quote = c;
    else if (c === '#' && (i === 0 || text[i - 1] === ' ' || text[i - 1] === '\t' || text[i - 1] === '\n')) {
      // A comment starts at a # after white space; inside a plain scalar (a#b) it is text.
      while (i + 1 < text.length && text[i + 1] !== '\n') i++;
    } else if (c === '[' || c === '{') {
      flow++;
      max = Math.max(max, flow + Math.floor(indent / 2));
    } else if (c === ']' || c === '}') flow = Math.max(0, flow - 1);
  }
  return max;
}

/** Result of a guarded parse: documents as plain JS, or the first error (message only). */
export type SafeYaml = { readonly docs: { readonly value: unknown; readonly error: string | undefined }[]; readonly error: string | undefined };

function toJs(doc: Document.Parsed): { value: unknown; error: string | undefined } {
  if (doc.errors.length > 0) return { value: undefined, error: doc.errors[0]!.message };
  try {
    return { value: doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }), error: undefined };
  } catch (err) {
    return { value: undefined, error: (err as Error).message };
  }
}

/** Parses every document of `text` without ever throwing: too deep, syntax and alias errors are returned. */
export function parseYamlSafely(text: string): SafeYaml {
  const depth = yamlNestingDepth(text);
  if (depth > MAX_YAML_DEPTH) return { docs: [], error: `YAML nested ${depth} levels deep (limit ${MAX_YAML_DEPTH})` };
  let all: Document.Parsed[];
  try {
    const parsed = parseAllDocuments(text);
    all = Array.isArray(parsed) ? parsed : [parsed as unknown as Document.Parsed];
  } catch (err) {
    return { docs: [], error: (err as Error).message };
  }
  return { docs: all.map(toJs), error: undefined };
}

/** Parses a single-document text without ever throwing; see {@link parseYamlSafely}. */
export function parseYamlDocumentSafely(text: string): { value: unknown; error: string | undefined } {
  const depth = yamlNestingDepth(text);
  if (depth > MAX_YAML_DEPTH) return { value: undefined, error: `YAML nested ${depth} levels deep (limit ${MAX_YAML_DEPTH})` };
  try {
    return toJs(parseDocument(text));
  } catch (err) {
    return { value: undefined, error: (err as Error).message };
  }
}
