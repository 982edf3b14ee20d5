// SPDX-License-Identifier: Apache-2.0
// Devices and models for the benchmark, as edgecore would send them.
import { type Device, type DeviceModel, deviceModelToProto, deviceToProto } from '@mapperkit/framework/dmi';

export interface FleetOptions {
  readonly devices: number;
  readonly properties: number;
  /** Holding register of property 0; property k reads start + k (contiguous map). */
  readonly start: number;
  readonly host: string;
  /** Device i connects to port + i when `portPerDevice`, else every device to `port`. */
  readonly port: number;
  readonly portPerDevice: boolean;
  readonly cycleMs: number;
  readonly coalesce: boolean;
  readonly reportToCloud: boolean;
  /** Make property 0 ReadWrite (0..65535) for write-latency probes. */
  readonly writable: boolean;
}

export function fleet(o: FleetOptions): { devices: Device[]; models: DeviceModel[] } {
  const modelName = `bench-${o.properties}`;
  const model = {
    apiVersion: 'devices.kubeedge.io/v1beta1',
    kind: 'DeviceModel',
    metadata: { name: modelName, namespace: 'default' },
    spec: {
      protocol: 'modbus',
      properties: Array.from({ length: o.properties }, (_, k) => ({
        name: `p${k}`,
        type: 'INT',
        accessMode: o.writable && k === 0 ? 'ReadWrite' : 'ReadOnly',
        ...(o.writable && k === 0 ? { minimum: '0', maximum: '65535' } : {}),
      })),
    },
  };
  const devices: Device[] = [];
  for (let i = 0; i < o.devices; i++) {
    const crd = {
      apiVersion: 'devices.kubeedge.io/v1beta1',
      kind: 'Device',
      metadata: { name: `dev-${i}`, namespace: 'default' },
      spec: {
        deviceModelRef: { name: modelName },
        protocol: {
          protocolName: 'modbus',
          configData: { communicateMode: 'TCP', ip: o.host, port: o.portPerDevice ? o.port + i : o.port, slaveID: 1, timeout: 2000, coalesce: o.coalesce },
        },
        properties: Array.from({ length: o.properties }, (_, k) => ({
          name: `p${k}`,
          collectCycle: o.cycleMs,
          reportCycle: Math.max(1000, o.cycleMs),
          reportToCloud: o.reportToCloud,
          visitors: { protocolName: 'modbus', configData: { register: 'HoldingRegister', offset: o.start + k, dataType: 'uint16' } },
        })),
      },
    };
    devices.push(deviceToProto(crd, model));
  }
  return { devices, models: [deviceModelToProto(model)] };
}
