// The {{protocol}} driver: the one file of this project you fill in.
//
// @mapperkit/framework does everything else: DMI registration with edgecore, the device
// registry, collect/report scheduling, desired-value writes, twin and state reports, retries
// and reconnects, sinks and REST. This file says how to talk to one {{protocol}} device.
//
// As generated, it speaks a tiny example line protocol (`READ <address>`, `WRITE <address>
// <value>`, `PING`) over TCP, which the simulated device in test/simulator.ts answers, so
// the project builds, passes its tests and runs before you change anything. Replace the
// parts marked TODO with your protocol's client library.
import { createConnection, type Socket } from 'node:net';
import { defineDriver, type DeviceClient, formatValue, MapperError, parseValue, type PropertyRequest, type ReadResult, z } from '@mapperkit/framework';
{{#if stream}}
import { captureStream, streamVisitorFields } from './stream.js';
{{/if}}

/**
 * Protocol `configData` of a Device (`spec.protocol.configData`, merged over the model's
 * `spec.protocolConfigData`): how to reach one device.
 *
 * TODO: replace with your protocol's connection settings (address, unit id, baud rate,
 * credentials reference…). Numbers may arrive as strings from some edgecore versions, so use
 * `z.coerce.number()` for numeric keys. `.describe()` texts end up in the JSON Schema that
 * editors use to validate Device YAML (`npx create-mapper schema`).
 */
export const protocolConfig = z.object({
  host: z.string().min(1).describe('Host name or IP address of the device'),
  port: z.coerce.number().int().min(1).max(65535).default(5020).describe('TCP port of the device'),
  timeoutMs: z.coerce.number().int().positive().default(2000).describe('Connect and request timeout, in ms'),
});

/**
 * Visitor `configData` of one property (`spec.properties[].visitors.configData`): where the
 * property lives on the device.
 *
 * TODO: replace with your protocol's addressing (register and offset, node id, characteristic
 * UUID…).
 */
export const visitorConfig = z.object({
  address: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, "_", "." and "-" only')
    .describe('Name of the value on the device'),
{{#if stream}}
  ...streamVisitorFields,
{{/if}}
});

export type ProtocolConfig = z.infer<typeof protocolConfig>;
export type VisitorConfig = z.infer<typeof visitorConfig>;

export default defineDriver({
  protocol: '{{protocol}}',
  protocolConfig,
  visitorConfig,

  /**
   * Rejects a property this driver cannot serve when its device arrives, rather than failing
   * every read. TODO: add your protocol's cross-checks (e.g. "FLOAT needs two registers").
   */
  checkProperty(request) {
{{#if stream}}
    if (request.type === 'stream' && request.name !== 'saveFrame' && request.name !== 'saveVideo') {
      throw new MapperError('InvalidConfig', `${request.name}: a STREAM property must be named saveFrame or saveVideo`, { property: request.name, key: 'name' });
    }
{{else}}
    if (request.type === 'stream') {
      throw new MapperError('InvalidConfig', `${request.name}: STREAM properties need the stream pieces (create-mapper --stream)`, { property: request.name, key: 'type' });
    }
{{/if}}
  },

  /**
   * Called when a device is registered, after an update of its protocol or visitors, and to
   * reconnect after a failure (the framework backs off and reports the device `offline`
   * meanwhile). Throw MapperError('Unreachable' | 'Timeout' | 'InvalidConfig').
   */
  async connect({ config, device, log }, signal): Promise<DeviceClient<VisitorConfig>> {
    // TODO: open a connection with your protocol's client library.
    const conn = await ExampleConnection.open(config.host, config.port, config.timeoutMs, signal);
    log.debug({ host: config.host, port: config.port }, `connected to ${device.id}`);

    return {
      /**
       * One call per collect tick with every property due. Return one result per request, in
       * request order; a failing property is `{ ok: false }`. Reject only when the whole
       * device is unusable: the framework then reconnects.
       */
      async read(requests: readonly PropertyRequest<VisitorConfig>[], sig: AbortSignal): Promise<ReadResult[]> {
        sig.throwIfAborted();
        // TODO: read the values with your protocol (batch where it allows: register ranges, one multi-read…).
        const answers = await Promise.all(requests.map((r) => conn.request(`READ ${r.visitor.address}`, sig)));
        return Promise.all(
          requests.map(async (r, i): Promise<ReadResult> => {
            const answer = answers[i]!;
            if (!answer.ok) return { ok: false, error: new MapperError('DeviceError', `${r.name}: device answered: ${answer.text}`, { property: r.name }) };
{{#if stream}}
            // STREAM properties: the device tells where its stream is; saveFrame/saveVideo capture it.
            if (r.type === 'stream') {
              try {
                return { ok: true, value: await captureStream(r.name, answer.text, r.visitor, sig) };
              } catch (err) {
                return { ok: false, error: err instanceof MapperError ? err : new MapperError('DeviceError', `${r.name}: ${(err as Error).message}`, { cause: err, property: r.name }) };
              }
            }
{{else}}
            if (r.type === 'stream') {
              return { ok: false, error: new MapperError('Unsupported', `${r.name}: STREAM properties need the stream pieces (create-mapper --stream)`, { property: r.name }) };
            }
{{/if}}
            try {
              // TODO: convert what your device returns into the model type.
              return { ok: true, value: parseValue(answer.text, r.type) };
            } catch (err) {
              return { ok: false, error: new MapperError('DeviceError', `${r.name}: cannot parse "${answer.text}" as ${r.type}`, { cause: err, property: r.name }) };
            }
          }),
        );
      },

      /**
       * Writes one property (a desired value from the Device, or a REST/method write). `value`
       * is already converted to the model type and checked against minimum/maximum.
       */
      async write(request, value, sig) {
        // TODO: write with your protocol; check protocol limits (e.g. int16) and throw WriteRejected.
        const answer = await conn.request(`WRITE ${request.visitor.address} ${formatValue(value)}`, sig);
        if (!answer.ok) throw new MapperError('WriteRejected', `${request.name}: device refused ${formatValue(value)}: ${answer.text}`, { property: request.name });
      },

      /** Polled periodically; reported to edgecore when it changes. */
      async state(sig) {
        // TODO: a cheap health check of your device.
        if (conn.closed) return 'offline';
        const answer = await conn.request('PING', sig).catch(() => undefined);
        return answer?.ok ? 'ok' : 'unhealthy';
      },

      /** Idempotent; must not throw for a broken connection. */
      async close() {
        conn.close();
      },
    };
  },
});

// ---------------------------------------------------------------------------------------
// TODO: everything below is the client of the example line protocol. Delete it once the
// driver uses your protocol's client library.

interface Answer {
  readonly ok: boolean;
  readonly text: string;
}

interface Pending {
  resolve(a: Answer): void;
  reject(e: Error): void;
  abandoned: boolean;
}

/** One TCP connection; requests are pipelined and answered in order, one line each. */
class ExampleConnection {
  private readonly socket: Socket;
  private readonly timeoutMs: number;
  private readonly pending: Pending[] = [];
  private buffer = '';
  closed = false;

  private constructor(socket: Socket, timeoutMs: number) {
    this.socket = socket;
    this.timeoutMs = timeoutMs;
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', () => this.fail('connection error'));
    socket.on('close', () => this.fail('connection closed'));
  }

  static open(host: string, port: number, timeoutMs: number, signal: AbortSignal): Promise<ExampleConnection> {
    return new Promise((resolve, reject) => {
      const where = `${host}:${port}`;
      const socket = createConnection({ host, port });
      const done = (err?: MapperError): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        socket.removeAllListeners('error');
        socket.removeAllListeners('connect');
        if (err) {
          socket.destroy();
          reject(err);
        } else resolve(new ExampleConnection(socket, timeoutMs));
      };
      const onAbort = (): void => done(new MapperError('Cancelled', `connect ${where} aborted`));
      const timer = setTimeout(() => done(new MapperError('Timeout', `connect ${where} timed out after ${timeoutMs} ms`)), timeoutMs);
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      socket.once('connect', () => done());
      socket.once('error', (err) => done(new MapperError('Unreachable', `connect ${where}: ${err.message}`, { cause: err })));
    });
  }

  /** Sends one request line; resolves with the answer line. Rejects with Unreachable/Timeout/Cancelled. */
  request(line: string, signal: AbortSignal): Promise<Answer> {
    if (this.closed) return Promise.reject(new MapperError('Unreachable', 'connection closed'));
    return new Promise<Answer>((resolve, reject) => {
      // An abandoned entry stays queued so that its late answer is consumed, not given to the next request.
      const entry: Pending = { resolve: (a) => settle(() => resolve(a)), reject: (e) => settle(() => reject(e)), abandoned: false };
      const settle = (fn: () => void): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        if (!entry.abandoned) fn();
        entry.abandoned = true;
      };
      const onAbort = (): void => entry.reject(new MapperError('Cancelled', `${line}: aborted`));
      const timer = setTimeout(() => entry.reject(new MapperError('Timeout', `${line}: no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.pending.push(entry);
      this.socket.write(`${line}\n`);
    });
  }

  close(): void {
    this.fail('connection closed');
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).replace(/\r$/, '');
      this.buffer = this.buffer.slice(nl + 1);
      const entry = this.pending.shift();
      if (!entry) continue;
      const ok = line === 'OK' || line.startsWith('OK ');
      entry.resolve({ ok, text: line.replace(/^(OK|ERR) ?/, '') });
    }
  }

  private fail(reason: string): void {
    this.closed = true;
    for (const entry of this.pending.splice(0)) entry.reject(new MapperError('Unreachable', reason));
  }
}
