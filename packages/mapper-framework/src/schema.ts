// SPDX-License-Identifier: Apache-2.0
import { z } from 'zod';
import { MapperError } from './errors.js';

/**
 * The Standard Schema v1 interface (https://standardschema.dev), implemented by zod 4,
 * valibot and ArkType. Drivers describe their protocol and visitor config with any such
 * schema; zod is re-exported by the framework so a driver needs no extra dependency.
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => StandardResult<Output> | Promise<StandardResult<Output>>;
    readonly types?: { readonly input: Input; readonly output: Output } | undefined;
  };
}

/** Result of a Standard Schema validation. */
export type StandardResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<StandardIssue> };

/** One validation issue. */
export interface StandardIssue {
  readonly message: string;
  readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
}

/** Output type of a schema. */
export type InferOutput<S> = S extends StandardSchemaV1<unknown, infer O> ? O : never;

function issuePath(issue: StandardIssue): string {
  return (issue.path ?? []).map((p) => String(typeof p === 'object' && p !== null && 'key' in p ? p.key : p)).join('.');
}

/**
 * Validates `value` against a schema. On failure throws MapperError('InvalidConfig') whose
 * message names `where` and every failing key, e.g.
 * `device default/pump-1 property flow: visitor configData.register: Invalid option: expected one of …`.
 */
export async function validateWithSchema<O>(schema: StandardSchemaV1<unknown, O>, value: unknown, where: string, base: string, ctx: { device?: string; property?: string } = {}): Promise<O> {
  const result = await schema['~standard'].validate(value);
  if (!result.issues) return result.value;
  const parts = result.issues.map((i) => {
    const p = issuePath(i);
    return `${p ? `${base}.${p}` : base}: ${i.message}`;
  });
  const firstPath = result.issues[0] ? issuePath(result.issues[0]) : '';
  throw new MapperError('InvalidConfig', `${where}: ${parts.join('; ')}`, { ...ctx, key: firstPath ? `${base}.${firstPath}` : base });
}

/**
 * JSON Schema (draft 2020-12) of a driver's config schema, for editors, `mapper doctor` and
 * Helm values. Works for zod schemas; other vendors return `undefined`.
 */
export function toJsonSchema(schema: StandardSchemaV1): Record<string, unknown> | undefined {
  if (schema['~standard'].vendor !== 'zod') return undefined;
  return z.toJSONSchema(schema as unknown as z.ZodType, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}

/**
 * A boolean config value as DMI may carry it: a BoolValue, a number (1/0, possibly float32) or
 * text ("true"/"false", "1"/"0", "yes"/"no", "on"/"off", any case). Unlike `z.coerce.boolean()`,
 * the text "false" is false.
 */
export function boolish(): z.ZodType<boolean, unknown> {
  return z.union([z.boolean(), z.number(), z.string()]).transform((v, ctx) => {
    if (typeof v === 'boolean') return v;
    if (typeof v === 'number') {
      if (v === 1 || v === 0) return v === 1;
    } else {
      const t = v.trim().toLowerCase();
      if (['true', '1', 'yes', 'on', 't'].includes(t)) return true;
      if (['false', '0', 'no', 'off', 'f', ''].includes(t)) return false;
    }
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a boolean (true/false, 1/0)` });
    return z.NEVER;
  }) as unknown as z.ZodType<boolean, unknown>;
}
