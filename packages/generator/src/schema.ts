// SPDX-License-Identifier: Apache-2.0
// JSON Schema files emitted from the driver's own config schemas, so editors validate
// config blobs in Device YAML (yaml-language-server `$schema` comments point at them).
import { mkdir, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import type { StandardSchemaV1 } from '@mapperkit/framework';
import { CreateMapperError } from './errors.js';
import { type LoadedProject, loadProject } from './project.js';

export interface SchemaOptions {
  readonly dir: string;
  /** Compiled driver, relative to `dir`. @default 'dist/driver.js' */
  readonly driver?: string;
  /** Output folder, relative to `dir`. @default 'schema' */
  readonly out?: string;
}

const PROPERTY_TYPES = ['INT', 'FLOAT', 'DOUBLE', 'STRING', 'BOOLEAN', 'BYTES', 'STREAM'];

function jsonSchemaOf(p: LoadedProject, schema: StandardSchemaV1, what: string): Record<string, unknown> {
  const s = p.fw.toJsonSchema(schema);
  if (!s) throw new CreateMapperError(`the driver's ${what} schema is not a zod schema; JSON Schema can only be emitted for zod schemas`);
  const { $schema: _ignored, ...rest } = s;
  return rest;
}

/**
 * The schema documents for a loaded project (pure; used by {@link writeSchemas} and tests):
 * config.yaml (the framework's schema), protocol and visitor configData (the driver's), and
 * Device/DeviceModel YAML with configData typed by the driver's.
 */
export function buildSchemas(p: LoadedProject): Record<string, Record<string, unknown>> {
  const protocol = jsonSchemaOf(p, p.driver.protocolConfig, 'protocolConfig');
  const visitor = jsonSchemaOf(p, p.driver.visitorConfig, 'visitorConfig');
  const draft = 'https://json-schema.org/draft/2020-12/schema';
  const name = p.driver.protocol;
  const device = {
    type: 'object',
    required: ['apiVersion', 'kind', 'metadata', 'spec'],
    properties: {
      apiVersion: { const: 'devices.kubeedge.io/v1beta1' },
      kind: { const: 'Device' },
      spec: {
        type: 'object',
        required: ['deviceModelRef', 'protocol'],
        properties: {
          deviceModelRef: { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1 } } },
          nodeName: { type: 'string' },
          protocol: {
            type: 'object',
            required: ['protocolName'],
            properties: { protocolName: { const: name }, configData: { $ref: '#/$defs/protocolConfig' } },
          },
          properties: {
            type: 'array',
            items: {
              type: 'object',
              required: ['name'],
              properties: {
                name: { type: 'string', minLength: 1 },
                collectCycle: { type: 'integer', exclusiveMinimum: 0, description: 'ms between reads (default 1000)' },
                reportCycle: { type: 'integer', exclusiveMinimum: 0, description: 'ms between reports (default 1000)' },
                reportToCloud: { type: 'boolean' },
                desired: { type: 'object', properties: { value: { type: 'string' } } },
                visitors: {
                  type: 'object',
                  properties: { protocolName: { const: name }, configData: { $ref: '#/$defs/visitorConfig' } },
                },
              },
            },
          },
          methods: {
            type: 'array',
            items: { type: 'object', required: ['name', 'propertyNames'], properties: { name: { type: 'string' }, propertyNames: { type: 'array', items: { type: 'string' } } } },
          },
        },
      },
    },
  };
  const model = {
    type: 'object',
    required: ['apiVersion', 'kind', 'metadata', 'spec'],
    properties: {
      apiVersion: { const: 'devices.kubeedge.io/v1beta1' },
      kind: { const: 'DeviceModel' },
      spec: {
        type: 'object',
        required: ['protocol', 'properties'],
        properties: {
          protocol: { const: name },
          protocolConfigData: { $ref: '#/$defs/protocolConfig' },
          properties: {
            type: 'array',
            items: {
              type: 'object',
              required: ['name', 'type'],
              properties: {
                name: { type: 'string', minLength: 1 },
                type: { enum: PROPERTY_TYPES },
                accessMode: { enum: ['ReadWrite', 'ReadOnly'] },
                minimum: { type: 'string' },
                maximum: { type: 'string' },
                visitors: { type: 'object', properties: { protocolName: { const: name }, configData: { $ref: '#/$defs/visitorConfig' } } },
              },
            },
          },
        },
      },
    },
  };
  const mapperConfig = p.fw.toJsonSchema(p.fw.mapperConfigSchema);
  return {
    ...(mapperConfig ? { 'config.schema.json': { ...mapperConfig, title: `${name} mapper config.yaml (upstream keys + runtime)` } } : {}),
    'protocol-config.schema.json': { $schema: draft, title: `${name} protocol configData`, ...protocol },
    'visitor-config.schema.json': { $schema: draft, title: `${name} visitor configData`, ...visitor },
    'devices.schema.json': {
      $schema: draft,
      title: `${name} Device and DeviceModel (devices.kubeedge.io/v1beta1)`,
      $defs: { protocolConfig: protocol, visitorConfig: visitor },
      if: { properties: { kind: { const: 'DeviceModel' } }, required: ['kind'] },
      then: model,
      else: device,
    },
  };
}

/** Writes schema/*.json for the project's driver; resolves with the files written (relative). */
export async function writeSchemas(opts: SchemaOptions): Promise<string[]> {
  const p = await loadProject(opts.dir, opts.driver);
  const out = resolve(p.dir, opts.out ?? 'schema');
  await mkdir(out, { recursive: true });
  const written: string[] = [];
  for (const [file, schema] of Object.entries(buildSchemas(p))) {
    await writeFile(join(out, file), `${JSON.stringify(schema, null, 2)}\n`);
    written.push(relative(p.dir, join(out, file)));
  }
  return written;
}
