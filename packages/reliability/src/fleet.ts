// SPDX-License-Identifier: Apache-2.0
// Device/DeviceModel YAML of the soak fleet: N simulated thermostats (modbus-sim register
// map), two properties of each pushed to MQTT (QoS 1) and Redis, a writable setpoint with a
// desired value (written again on every reconnect), and a coil.
import { stringify } from 'yaml';

export interface FleetOptions {
  /** Modbus TCP port of each device (index = device number). */
  readonly ports: readonly number[];
  readonly cycleMs: number;
  readonly mqttPort: number;
  readonly redisPort: number;
  readonly namePrefix?: string;
  /** Push the sampled properties to the MQTT and Redis sinks (default true). */
  readonly push?: boolean;
}

export const MODEL_NAME = 'soak-thermostat';
/** Properties whose samples go to both sinks. */
export const PUSHED_PROPERTIES = ['temperature', 'humidity'] as const;

export function deviceName(i: number, prefix = 'soak'): string {
  return `${prefix}-${String(i).padStart(3, '0')}`;
}

export function modelYaml(): string {
  return stringify({
    apiVersion: 'devices.kubeedge.io/v1beta1',
    kind: 'DeviceModel',
    metadata: { name: MODEL_NAME, namespace: 'default' },
    spec: {
      protocol: 'modbus',
      properties: [
        { name: 'temperature', type: 'FLOAT', accessMode: 'ReadOnly', unit: 'degC' },
        { name: 'humidity', type: 'FLOAT', accessMode: 'ReadOnly', unit: '%' },
        { name: 'setpoint', type: 'FLOAT', accessMode: 'ReadWrite', minimum: '5', maximum: '35', unit: 'degC' },
        { name: 'heating', type: 'BOOLEAN', accessMode: 'ReadWrite' },
      ],
    },
  });
}

export function deviceYaml(i: number, opts: FleetOptions): string {
  const name = deviceName(i, opts.namePrefix);
  const cycle = opts.cycleMs;
  const push = (prop: string) => (opts.push === false ? undefined : {
    mqtt: { address: `tcp://127.0.0.1:${opts.mqttPort}`, topic: `soak/${name}/${prop}`, qos: 1, retained: false },
    dbMethod: { redis: { redisClientConfig: { addr: `127.0.0.1:${opts.redisPort}`, db: 0, poolsize: 4, minIdleConns: 1 } } },
  });
  const visitor = (configData: Record<string, string | number | boolean>) => ({ protocolName: 'modbus', configData });
  return stringify({
    apiVersion: 'devices.kubeedge.io/v1beta1',
    kind: 'Device',
    metadata: { name, namespace: 'default' },
    spec: {
      deviceModelRef: { name: MODEL_NAME },
      nodeName: 'soak-node',
      protocol: {
        protocolName: 'modbus',
        configData: { communicateMode: 'TCP', ip: '127.0.0.1', port: opts.ports[i]!, slaveID: 1, timeout: 1000, connectTimeout: 2000 },
      },
      stateReport: { reportToCloud: true, reportCycle: 10_000 },
      properties: [
        { name: 'temperature', collectCycle: cycle, reportCycle: cycle, reportToCloud: true, visitors: visitor({ register: 'HoldingRegister', offset: 0, dataType: 'int16', scale: 0.1 }), pushMethod: push('temperature') },
        { name: 'humidity', collectCycle: cycle, reportCycle: cycle, reportToCloud: true, visitors: visitor({ register: 'InputRegister', offset: 1, dataType: 'uint16', scale: 0.1 }), pushMethod: push('humidity') },
        { name: 'setpoint', collectCycle: cycle, reportCycle: cycle, reportToCloud: true, desired: { value: '21.5' }, visitors: visitor({ register: 'HoldingRegister', offset: 1, dataType: 'int16', scale: 0.1 }) },
        { name: 'heating', collectCycle: cycle * 5, reportCycle: cycle * 5, reportToCloud: true, visitors: visitor({ register: 'CoilRegister', offset: 0 }) },
      ],
    },
  });
}

/** One multi-document YAML file with the model and every device. */
export function fleetYaml(opts: FleetOptions): string {
  return [modelYaml(), ...opts.ports.map((_, i) => deviceYaml(i, opts))].join('---\n');
}
