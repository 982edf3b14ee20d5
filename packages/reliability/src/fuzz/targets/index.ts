// SPDX-License-Identifier: Apache-2.0
import type { FuzzTarget } from '../harness.js';
import { anyDecoderTarget } from './any-decoder.js';
import { bleConverterTarget } from './ble-converter.js';
import { configYamlTarget } from './config-yaml.js';
import { crdYamlTarget } from './crd-yaml.js';
import { edgecoreHttpTarget } from './edgecore-http.js';
import { modbusCodecTarget } from './modbus-codec.js';
import { modbusWireTarget } from './modbus-wire.js';
import { restApiTarget } from './rest-api.js';

/** Every fuzz target, in run order. */
export const TARGETS: readonly FuzzTarget[] = [anyDecoderTarget, crdYamlTarget, configYamlTarget, restApiTarget, edgecoreHttpTarget, modbusCodecTarget, modbusWireTarget, bleConverterTarget];

export function targetByName(name: string): FuzzTarget {
  const t = TARGETS.find((x) => x.name === name);
  if (!t) throw new Error(`unknown fuzz target "${name}" (known: ${TARGETS.map((x) => x.name).join(', ')})`);
  return t;
}
