// SPDX-License-Identifier: Apache-2.0
// The mapper's DeviceMapperService on a unix socket.
import { EventEmitter } from 'node:events';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { type handleUnaryCall, type Server, type ServerDuplexStream, type ServerUnaryCall, type sendUnaryData, status } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { MapperError, toMapperError } from '../errors.js';
import { Device, type DeviceModel, type DeviceMapperServiceServer, DeviceMapperServiceService, type RegisterDeviceRequest } from '../generated/v1beta1/api.js';
import { UnixGrpcServer } from '../dmi/transport.js';

/** What the DMI server delegates to (the runtime). Errors are MapperErrors. */
export interface DeviceService {
  /** `encoded`: the Device as it arrived on the wire (kept instead of encoding it again). */
  registerDevice(device: Device, encoded?: Uint8Array): Promise<void>;
  updateDevice(device: Device, encoded?: Uint8Array): Promise<void>;
  removeDevice(namespace: string, name: string): Promise<void>;
  createModel(model: DeviceModel): Promise<void>;
  updateModel(model: DeviceModel): Promise<void>;
  removeModel(namespace: string, name: string): Promise<void>;
  getDevice(namespace: string, name: string): Device;
}

/** RegisterDeviceRequest / UpdateDeviceRequest (one field: `Device device = 1`), decoded, with the device's bytes. */
type DeviceRequest = RegisterDeviceRequest & { deviceBytes?: Uint8Array };

/**
 * Decodes a request whose only field is `Device device = 1`, keeping the device's own bytes (a
 * copy, not a view of gRPC's buffer): the runtime stores devices encoded, and this spares
 * encoding each registered device again. As the generated decoder, the last occurrence wins.
 */
export function decodeDeviceRequest(buf: Uint8Array): DeviceRequest {
  const reader = new BinaryReader(buf);
  let bytes: Uint8Array | undefined;
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag === 10) bytes = reader.bytes();
    else if ((tag & 7) === 4 || tag === 0) break;
    else reader.skip(tag & 7);
  }
  if (!bytes) return { device: undefined };
  const deviceBytes = new Uint8Array(bytes);
  return { device: Device.decode(deviceBytes), deviceBytes };
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
      await svc.registerDevice(req.device, (req as DeviceRequest).deviceBytes);
      return { deviceName: req.device.name, deviceNamespace: req.device.namespace || 'default' };
    }),
    updateDevice: unary(log, 'UpdateDevice', async (req) => {
      if (!req.device) throw new MapperError('InvalidConfig', 'UpdateDevice: device is required', { key: 'device' });
      await svc.updateDevice(req.device, (req as DeviceRequest).deviceBytes);
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

/** Both versions of the reflection API that @grpc/reflection serves (grpcurl asks v1, then v1alpha). */
const REFLECTION_PATHS = ['/grpc.reflection.v1.ServerReflection/ServerReflectionInfo', '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo'];

/**
 * gRPC server reflection describing DeviceMapperService, as the upstream mapper registers it
 * (upstream-kubeedge.md §2.1), so `grpcurl -plaintext -unix <socket> list` works. The methods are
 * registered at start with pass-through (bytes) codecs; @grpc/reflection, proto-loader and the
 * proto's descriptors (some megabytes) are loaded on the first reflection request, not by every
 * mapper at start. Messages that arrive meanwhile are held and replayed in order.
 */
function addLazyReflection(server: Server, log: Logger): void {
  let methods: Promise<Map<string, import('../dmi/reflection.js').ReflectionMethod>> | undefined;
  const load = () => (methods ??= import('../dmi/reflection.js').then((r) => r.reflectionMethods(['v1beta1.DeviceMapperService'])));
  const bytes = (b: Buffer): Buffer => b;
  for (const path of REFLECTION_PATHS) {
    const definition = { ServerReflectionInfo: { path, requestStream: true, responseStream: true, requestSerialize: bytes, requestDeserialize: bytes, responseSerialize: bytes, responseDeserialize: bytes, originalName: 'serverReflectionInfo' } };
    server.addService(definition, {
      ServerReflectionInfo: (call: ServerDuplexStream<Buffer, Buffer>) => {
        const held: Buffer[] = [];
        let ended = false;
        let deliver: ((b: Buffer) => void) | undefined;
        let finish: (() => void) | undefined;
        call.on('data', (b: Buffer) => (deliver ? deliver(b) : held.push(b)));
        call.on('end', () => (finish ? finish() : (ended = true)));
        load().then(
          (all) => {
            const m = all.get(path)!;
            // The stream the library's handler sees: objects in, objects out.
            const inner = Object.assign(new EventEmitter(), { write: (msg: unknown) => call.write(m.responseSerialize(msg)), end: () => call.end() });
            m.handler(inner);
            let failed = false;
            deliver = (b) => {
              if (failed) return;
              let msg: unknown;
              try {
                msg = m.requestDeserialize(b);
              } catch (err) {
                failed = true;
                call.emit('error', { code: status.INVALID_ARGUMENT, details: `malformed reflection request: ${(err as Error).message}` });
                return;
              }
              inner.emit('data', msg);
            };
            finish = () => {
              if (!failed) inner.emit('end');
            };
            for (const b of held.splice(0)) deliver(b);
            if (ended) finish();
          },
          (err: unknown) => {
            log.error({ err: (err as Error).message }, 'gRPC reflection could not be loaded');
            call.emit('error', { code: status.INTERNAL, details: `reflection unavailable: ${(err as Error).message}` });
          },
        );
      },
    });
  }
}

/** Starts DeviceMapperService on `socketPath`, with gRPC reflection. */
export async function startDeviceMapperServer(socketPath: string, svc: DeviceService, log: Logger): Promise<UnixGrpcServer> {
  const s = new UnixGrpcServer(socketPath);
  const service = {
    ...DeviceMapperServiceService,
    registerDevice: { ...DeviceMapperServiceService.registerDevice, requestDeserialize: decodeDeviceRequest },
    updateDevice: { ...DeviceMapperServiceService.updateDevice, requestDeserialize: decodeDeviceRequest },
  };
  s.server.addService(service, deviceMapperHandlers(svc, log));
  addLazyReflection(s.server, log);
  await s.listen();
  return s;
}
