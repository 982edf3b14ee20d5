// SPDX-License-Identifier: Apache-2.0
import { CreateMapperError } from './errors.js';

/** Protocol names end up in socket paths and Kubernetes object names, so they are DNS-1123 labels. */
const PROTOCOL = /^[a-z]([a-z0-9-]*[a-z0-9])?$/;
const MAX_PROTOCOL = 40;

/** npm package name rules (lower case, URL-safe, optional scope, ≤ 214 characters). */
const PACKAGE = /^(?:@[a-z0-9~-][a-z0-9._~-]*\/)?[a-z0-9~-][a-z0-9._~-]*$/;

/** Throws CreateMapperError naming the rule a protocol name breaks. */
export function validateProtocol(protocol: string): string {
  if (protocol === '') throw new CreateMapperError('protocol name is empty', { hint: 'pass --protocol <name>, e.g. --protocol modbus' });
  if (protocol.length > MAX_PROTOCOL) throw new CreateMapperError(`protocol name "${protocol}" is longer than ${MAX_PROTOCOL} characters`);
  if (!PROTOCOL.test(protocol)) {
    const lower = protocol.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^[^a-z]+|-+$/g, '');
    throw new CreateMapperError(
      `invalid protocol name "${protocol}": use lower-case letters, digits and "-", starting with a letter (it becomes part of socket paths and Kubernetes names)`,
      lower && PROTOCOL.test(lower) ? { hint: `try --protocol ${lower}` } : {},
    );
  }
  return protocol;
}

/** Throws CreateMapperError naming the rule a package name breaks. */
export function validatePackageName(name: string): string {
  if (name === '') throw new CreateMapperError('package name is empty', { hint: 'pass --name <package-name>' });
  if (name.length > 214) throw new CreateMapperError(`invalid package name "${name}": longer than 214 characters`);
  if (name.startsWith('.') || name.startsWith('_')) throw new CreateMapperError(`invalid package name "${name}": must not start with "." or "_"`);
  if (!PACKAGE.test(name)) {
    throw new CreateMapperError(`invalid package name "${name}": npm names are lower case and may contain only letters, digits, "-", ".", "_" and "~" (optionally @scope/)`, {
      hint: 'pass a valid name with --name, e.g. --name acme-mapper',
    });
  }
  return name;
}

/** `modbus-tcp` → `ModbusTcp`. */
export function pascalCase(s: string): string {
  return s
    .split(/[^a-zA-Z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('');
}

/** `modbus-tcp` → `modbusTcp`. */
export function camelCase(s: string): string {
  const p = pascalCase(s);
  return p.length > 0 ? p[0]!.toLowerCase() + p.slice(1) : p;
}
