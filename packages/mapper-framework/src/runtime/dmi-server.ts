// SPDX-License-Identifier: Apache-2.0
// The mapper's DeviceMapperService on a unix socket.
import { type handleUnaryCall, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { MapperError, toMapperError } from '../errors.js';
import { type Device, type DeviceModel, type DeviceMapperServiceServer, DeviceMapperServiceService } from '../generated/v1beta1/api.js';
import { UnixGrpcServer } from '../dmi/transport.js';

/** What the DMI server delegates to (the runtime). Errors are MapperErrors. */
export interface DeviceService {
  registerDevice(device: Device): Promise<void>;
  updateDevice(device: Device): Promise<void>;
  removeDevice(namespace: string, name: string): Promise<void>;
  createModel(model: DeviceModel): Promise<void>;
  updateModel(model: DeviceModel): Promise<void>;
  removeModel(namespace: string, name: string): Promise<void>;
  getDevice(namespace: string, name: string): Device;
}

function unary<Req, Res>(log: Logger, method: string, fn: (req: Req) => Promise<Res>): handleUnaryCall<Req, Res> {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    let p: Promise<Res>;
    try {
      p = fn(call.request);
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      (res) => callback(null, res),
      (err: unknown) => {
        const e = toMapperError(err);
        log.warn({ method, kind: e.kind, err: e.message }, 'DMI call rejected');
        callback({ code: e.grpcCode, details: e.message });
      },
    );
  };
}

function required(value: string, what: string): string {
  if (!value) throw new MapperError('InvalidConfig', `${what} is required`, { key: what });
  return value;
}

export function deviceMapperHandlers(svc: DeviceService, log: Logger): DeviceMapperServiceServer {
  return {
    registerDevice: unary(log, 'RegisterDevice', async (req) => {
      if (!req.device) throw new MapperError('InvalidConfig', 'RegisterDevice: device is required', { key: 'device' });
      await svc.registerDevice(req.device);
      return { deviceName: req.device.name, deviceNamespace: req.device.namespace || 'default' };
    }),
    updateDevice: unary(log, 'UpdateDevice', async (req) => {
      if (!req.device) throw new MapperError('InvalidConfig', 'UpdateDevice: device is required', { key: 'device' });
      await svc.updateDevice(req.device);
      return {};
    }),
    removeDevice: unary(log, 'RemoveDevice', async (req) => {
      await svc.removeDevice(req.deviceNamespace, required(req.deviceName, 'deviceName'));
      return {};
    }),
    createDeviceModel: unary(log, 'CreateDeviceModel', async (req) => {
      if (!req.model) throw new MapperError('InvalidConfig', 'CreateDeviceModel: model is required', { key: 'model' });
      await svc.createModel(req.model);
      return { deviceModelName: req.model.name, deviceModelNamespace: req.model.namespace || 'default' };
    }),
    updateDeviceModel: unary(log, 'UpdateDeviceModel', async (req) => {
      if (!req.model) throw new MapperError('InvalidConfig', 'UpdateDeviceModel: model is required', { key: 'model' });
      await svc.updateModel(req.model);
      return {};
    }),
    removeDeviceModel: unary(log, 'RemoveDeviceModel', async (req) => {
      await svc.removeModel(req.modelNamespace, required(req.modelName, 'modelName'));
      return {};
    }),
    getDevice: unary(log, 'GetDevice', async (req) => ({ device: svc.getDevice(req.deviceNamespace, required(req.deviceName, 'deviceName')) })),
  };
}

/** Starts DeviceMapperService on `socketPath`. */
export async function startDeviceMapperServer(socketPath: string, svc: DeviceService, log: Logger): Promise<UnixGrpcServer> {
  const s = new UnixGrpcServer(socketPath);
  s.server.addService(DeviceMapperServiceService, deviceMapperHandlers(svc, log));
  await s.listen();
  return s;
}
