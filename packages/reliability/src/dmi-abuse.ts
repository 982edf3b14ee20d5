// SPDX-License-Identifier: Apache-2.0
// Malformed DMI calls to a mapper's DeviceMapperService socket: bytes that are not a protobuf
// message, requests without the required fields, a device whose configData the driver refuses
// (new and as an update of a running device), an unknown model, an oversized message, and raw
// bytes that are not HTTP/2 at all. Each call must be answered with an error code (or the
// connection closed) and the mapper must keep every device it had.
import { randomBytes } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import { credentials, type Client, makeGenericClientConstructor, Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { type Device, DeviceMapperServiceClient, DeviceMapperServiceService, encodeAnyLikeEdgecore, unixTarget } from '@mapperkit/framework/dmi';

export interface AbuseOutcome {
  readonly call: string;
  /** gRPC status name of the answer, `OK`, or `closed` for a raw connection. */
  readonly code: string;
  readonly expected: readonly string[];
  readonly ok: boolean;
  readonly detail?: string;
}

const codeName = (c: number): string => (status as unknown as Record<number, string>)[c] ?? String(c);

function unaryCall<Req, Res>(client: Client, method: string, req: Req, deadlineMs: number): Promise<{ code: number; details: string; res?: Res }> {
  return new Promise((resolve) => {
    const fn = (client as unknown as Record<string, (r: Req, m: Metadata, o: { deadline: Date }, cb: (e: ServiceError | null, r?: Res) => void) => void>)[method]!;
    fn.call(client, req, new Metadata(), { deadline: new Date(Date.now() + deadlineMs) }, (err, res) => {
      if (err) resolve({ code: err.code, details: err.details });
      else resolve({ code: status.OK, details: '', ...(res === undefined ? {} : { res }) });
    });
  });
}

/** A client whose RegisterDevice/UpdateDevice send raw bytes (no serialisation). */
const RawClient = makeGenericClientConstructor(
  {
    RegisterDevice: {
      path: DeviceMapperServiceService.registerDevice.path,
      requestStream: false,
      responseStream: false,
      requestSerialize: (b: Buffer) => b,
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Buffer) => b,
      responseDeserialize: (b: Buffer) => b,
    },
    UpdateDevice: {
      path: DeviceMapperServiceService.updateDevice.path,
      requestStream: false,
      responseStream: false,
      requestSerialize: (b: Buffer) => b,
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Buffer) => b,
      responseDeserialize: (b: Buffer) => b,
    },
  },
  'v1beta1.DeviceMapperService',
);

function rawSocketGarbage(socketPath: string, bytes: Buffer, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const s = netConnect(socketPath);
    let got = 0;
    const done = (how: string): void => {
      clearTimeout(t);
      s.destroy();
      resolve(how);
    };
    const t = setTimeout(() => done(`open after ${timeoutMs} ms (${got} bytes answered)`), timeoutMs);
    s.on('connect', () => s.write(bytes));
    s.on('data', (d) => (got += d.length));
    s.on('error', () => done('closed'));
    s.on('close', () => done('closed'));
  });
}

/**
 * Sends the malformed calls. `existing` is a running device (GetDevice'd, then re-sent with a
 * broken visitor); `modelName` is its model. Returns one outcome per call.
 */
export async function abuseMapperDmi(socketPath: string, opts: { existing: string; namespace?: string; deadlineMs?: number }): Promise<AbuseOutcome[]> {
  const ns = opts.namespace ?? 'default';
  const deadline = opts.deadlineMs ?? 10_000;
  const target = unixTarget(socketPath);
  const typed = new DeviceMapperServiceClient(target, credentials.createInsecure());
  const raw = new RawClient(target, credentials.createInsecure());
  const out: AbuseOutcome[] = [];
  const record = (call: string, code: number | string, expected: string[], detail?: string): void => {
    const name = typeof code === 'number' ? codeName(code) : code;
    out.push({ call, code: name, expected, ok: expected.includes(name), ...(detail ? { detail: detail.slice(0, 300) } : {}) });
  };
  try {
    // 1. Bytes that do not decode as a RegisterDeviceRequest (field 1 with a length past the end, then noise).
    const garbage = Buffer.concat([Buffer.from([0x0a, 0xff, 0xff, 0x03]), randomBytes(64)]);
    let r = await unaryCall(raw, 'RegisterDevice', garbage, deadline);
    record('RegisterDevice(undecodable bytes)', r.code, ['INTERNAL', 'INVALID_ARGUMENT'], r.details);
    // 2. Random bytes as an UpdateDevice (may or may not decode; must not be OK with a device).
    r = await unaryCall(raw, 'UpdateDevice', randomBytes(512), deadline);
    record('UpdateDevice(random bytes)', r.code, ['INTERNAL', 'INVALID_ARGUMENT', 'NOT_FOUND'], r.details);
    // 3. Empty request: no device.
    r = await unaryCall(typed, 'registerDevice', {}, deadline);
    record('RegisterDevice({})', r.code, ['INVALID_ARGUMENT'], r.details);
    r = await unaryCall(typed, 'removeDevice', { deviceName: '', deviceNamespace: '' }, deadline);
    record('RemoveDevice(no name)', r.code, ['INVALID_ARGUMENT'], r.details);
    r = await unaryCall(typed, 'getDevice', { deviceName: 'no-such-device', deviceNamespace: ns }, deadline);
    record('GetDevice(unknown)', r.code, ['NOT_FOUND'], r.details);
    // 4. A running device re-sent with a visitor the driver refuses: rejected, device untouched.
    const got = await unaryCall<{ deviceName: string; deviceNamespace: string }, { device?: Device }>(typed, 'getDevice', { deviceName: opts.existing, deviceNamespace: ns }, deadline);
    const dev = got.res?.device;
    if (!dev?.spec) {
      record(`GetDevice(${opts.existing})`, got.code, ['OK'], `no device in the answer: ${got.details}`);
    } else {
      const broken: Device = structuredClone(dev);
      const prop = broken.spec!.properties[0]!;
      prop.visitors = { protocolName: prop.visitors?.protocolName ?? 'modbus', configData: { data: { ...(prop.visitors?.configData?.data ?? {}), register: encodeAnyLikeEdgecore('NoSuchTable', 'register'), offset: encodeAnyLikeEdgecore(-5, 'offset') } } };
      r = await unaryCall(typed, 'updateDevice', { device: broken }, deadline);
      record(`UpdateDevice(${opts.existing} with register NoSuchTable)`, r.code, ['INVALID_ARGUMENT'], r.details);
      // 5. A new device with an unknown model (NOT_FOUND after the mapper's wait for the model).
      const orphan: Device = { ...structuredClone(dev), name: 'soak-orphan' };
      orphan.spec!.deviceModelReference = 'no-such-model';
      r = await unaryCall(typed, 'registerDevice', { device: orphan }, deadline);
      record('RegisterDevice(unknown model)', r.code, ['NOT_FOUND', 'INVALID_ARGUMENT'], r.details);
      // 6. A new device whose protocol configData is refused (port out of range).
      const badProto: Device = { ...structuredClone(dev), name: 'soak-bad-port' };
      badProto.spec!.protocol = { protocolName: 'modbus', configData: { data: { ...(dev.spec.protocol?.configData?.data ?? {}), port: encodeAnyLikeEdgecore(70000, 'port') } } };
      r = await unaryCall(typed, 'registerDevice', { device: badProto }, deadline);
      record('RegisterDevice(port 70000)', r.code, ['INVALID_ARGUMENT'], r.details);
      // 7. An oversized message (8 MiB of property names; grpc-js' default receive limit is 4 MiB).
      const huge: Device = { ...structuredClone(dev), name: 'soak-huge' };
      huge.spec!.methods = [{ name: 'm', description: 'x'.repeat(8 * 1024 * 1024), propertyNames: [] }];
      r = await unaryCall(typed, 'registerDevice', { device: huge }, deadline);
      record('RegisterDevice(8 MiB)', r.code, ['RESOURCE_EXHAUSTED', 'INVALID_ARGUMENT', 'UNAVAILABLE', 'INTERNAL'], r.details);
    }
    // 8. Not HTTP/2 at all on the socket: an HTTP/1 request, then random bytes.
    record('raw HTTP/1 request on the DMI socket', await rawSocketGarbage(socketPath, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 3000), ['closed']);
    record('raw random bytes on the DMI socket', await rawSocketGarbage(socketPath, randomBytes(4096), 3000), ['closed']);
  } finally {
    typed.close();
    raw.close();
  }
  return out;
}
