// SPDX-License-Identifier: Apache-2.0
// The denominators of the framework bench's idle and RegisterDevice figures: a node process that
// is no mapper. Plain JS, run with the same environment as the mapper child.
//   floor-child.mjs bare                 node alone, kept alive by a 1 s timer
//   floor-child.mjs server <socket>      loads what a mapper loads from npm (grpc-js, pino, yaml,
//                                        zod, @bufbuild/protobuf's wire format, prom-client) and
//                                        serves DeviceMapperService's seven methods on <socket>,
//                                        each answering an empty message at once
// Sends 'ready' over IPC when serving.
const [mode, socketPath] = process.argv.slice(2);

if (mode === 'bare') {
  setInterval(() => undefined, 1000);
  process.send?.('ready');
} else if (mode === 'server' && socketPath) {
  const grpc = await import('@grpc/grpc-js');
  const { pino } = await import('pino');
  await Promise.all([import('yaml'), import('zod'), import('@bufbuild/protobuf/wire'), import('prom-client')]);
  const log = pino({ level: 'info' });
  // Requests are not decoded and every answer is an empty message (all fields at their defaults),
  // which each method's response type accepts: what the server costs without any mapper work.
  const bytes = (b) => b;
  const EMPTY = Buffer.alloc(0);
  const methods = ['RegisterDevice', 'RemoveDevice', 'UpdateDevice', 'CreateDeviceModel', 'RemoveDeviceModel', 'UpdateDeviceModel', 'GetDevice'];
  const definition = Object.fromEntries(
    methods.map((m) => [m, { path: `/v1beta1.DeviceMapperService/${m}`, requestStream: false, responseStream: false, requestSerialize: bytes, requestDeserialize: bytes, responseSerialize: bytes, responseDeserialize: bytes }]),
  );
  const server = new grpc.Server();
  server.addService(definition, Object.fromEntries(methods.map((m) => [m, (_call, callback) => callback(null, EMPTY)])));
  server.bindAsync(`unix:${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => {
    if (err) throw err;
    log.info({ socketPath }, 'floor server listening');
    process.send?.('ready');
  });
} else {
  throw new Error('usage: floor-child.mjs bare | server <socket>');
}
