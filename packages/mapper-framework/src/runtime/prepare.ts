// SPDX-License-Identifier: Apache-2.0
// Validates a device against its model and the driver's schemas, producing the requests a
// runner uses. Problems name device, property and key; only protocol config is fatal.
import type { DeviceModelSpec, DevicePropertySpec, DeviceSpec, ModelPropertySpec } from '../dmi/model.js';
import type { DriverDefinition, PropertyRequest } from '../driver.js';
import { MapperError, toMapperError } from '../errors.js';
import { validateWithSchema } from '../schema.js';

/** A property that could be set up: its request plus the spec it came from. */
export interface PreparedProperty<V> {
  readonly request: PropertyRequest<V>;
  readonly spec: DevicePropertySpec;
  readonly model: ModelPropertySpec;
}

export interface PreparedDevice<P, V> {
  readonly spec: DeviceSpec;
  readonly model: DeviceModelSpec;
  /** Parsed protocol config, or undefined when it failed (see `fatal`). */
  readonly protocolConfig: P | undefined;
  /** Why the device cannot connect at all (bad protocol config, wrong protocol). */
  readonly fatal: MapperError | undefined;
  readonly properties: readonly PreparedProperty<V>[];
  /** Properties that were disabled, with the reason. */
  readonly disabled: ReadonlyMap<string, MapperError>;
}

export async function prepareDevice<P, V>(driver: DriverDefinition<P, V>, spec: DeviceSpec, model: DeviceModelSpec): Promise<PreparedDevice<P, V>> {
  const device = spec.id;
  let fatal: MapperError | undefined;
  let protocolConfig: P | undefined;
  if (spec.protocolName !== driver.protocol) {
    fatal = new MapperError('InvalidConfig', `device ${device}: protocol "${spec.protocolName}" is not served by this mapper (protocol "${driver.protocol}")`, {
      device,
      key: 'spec.protocol.protocolName',
    });
  } else {
    try {
      protocolConfig = await validateWithSchema(driver.protocolConfig, spec.protocol, `device ${device}`, 'protocol configData', { device });
    } catch (err) {
      fatal = toMapperError(err, 'InvalidConfig', { device });
    }
  }

  const modelProps = new Map(model.properties.map((p) => [p.name, p]));
  const properties: PreparedProperty<V>[] = [];
  const disabled = new Map<string, MapperError>();
  for (const p of spec.properties) {
    const mp = modelProps.get(p.name);
    if (!mp) {
      disabled.set(p.name, new MapperError('InvalidConfig', `device ${device} property ${p.name}: not defined in model ${model.id}`, { device, property: p.name }));
      continue;
    }
    try {
      const visitor = await validateWithSchema(driver.visitorConfig, p.visitor, `device ${device} property ${p.name}`, 'visitors configData', {
        device,
        property: p.name,
      });
      const request: PropertyRequest<V> = { name: p.name, type: mp.type, accessMode: mp.accessMode, visitor, minimum: mp.minimum, maximum: mp.maximum, unit: mp.unit };
      driver.checkProperty?.(request);
      properties.push({ spec: p, model: mp, request });
    } catch (err) {
      disabled.set(p.name, toMapperError(err, 'InvalidConfig', { device, property: p.name }));
    }
  }
  return { spec, model, protocolConfig, fatal, properties, disabled };
}

/** Every problem of a prepared device, fatal first; empty when it is fully valid. */
export function preparationErrors(prepared: PreparedDevice<unknown, unknown>): MapperError[] {
  return [...(prepared.fatal ? [prepared.fatal] : []), ...prepared.disabled.values()];
}
