// SPDX-License-Identifier: Apache-2.0
// `mapper-<protocol> schema`: JSON Schema files emitted from the driver's own config schemas, so
// editors validate config.yaml and the configData of Device YAML (yaml-language-server `$schema`).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mapperConfigSchema } from '../config.js';
import type { DriverDefinition } from '../driver.js';
import { MapperError } from '../errors.js';
import { type StandardSchemaV1, toJsonSchema } from '../schema.js';

const PROPERTY_TYPES = ['INT', 'FLOAT', 'DOUBLE', 'STRING', 'BOOLEAN', 'BYTES', 'STREAM'];

function jsonSchemaOf(schema: StandardSchemaV1, what: string): Record<string, unknown> {
  const s = toJsonSchema(schema);
  if (!s) throw new MapperError('Unsupported', `the driver's ${what} schema is not a zod schema; JSON Schema can only be emitted for zod schemas`);
  const { $schema: _ignored, ...rest } = s;
  return rest;
}

/**
 * The schema documents of a driver (pure; used by {@link writeSchemas} and tests):
 * config.yaml (the framework's schema), protocol and visitor configData (the driver's), and
 * Device/DeviceModel YAML with configData typed by the driver's.
 */
export function buildSchemas(driver: DriverDefinition<unknown, unknown>): Record<string, Record<string, unknown>> {
  const protocol = jsonSchemaOf(driver.protocolConfig, 'protocolConfig');
  const visitor = jsonSchemaOf(driver.visitorConfig, 'visitorConfig');
  const draft = 'https://json-schema.org/draft/2020-12/schema';
  const name = driver.protocol;
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
  const mapperConfig = toJsonSchema(mapperConfigSchema as unknown as StandardSchemaV1);
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

/** Writes the schema files into `outDir`; resolves with their paths. */
export async function writeSchemas(driver: DriverDefinition<unknown, unknown>, outDir: string): Promise<string[]> {
  await mkdir(outDir, { recursive: true });
  const written: string[] = [];
  for (const [file, schema] of Object.entries(buildSchemas(driver))) {
    await writeFile(join(outDir, file), `${JSON.stringify(schema, null, 2)}\n`);
    written.push(join(outDir, file));
  }
  return written;
}
