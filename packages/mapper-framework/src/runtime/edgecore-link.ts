// SPDX-License-Identifier: Apache-2.0
// The mapper's side of DeviceManagerService: one long-lived channel to edgecore's unix socket,
// MapperRegister with backoff, reports, and detection of edgecore restarts.
import { type ChannelOptions, connectivityState, credentials, Metadata, type ServiceError, status } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  DeviceManagerServiceClient,
  type MapperInfo,
  type MapperRegisterResponse,
  type ReportDeviceStatesRequest,
  type ReportDeviceStatusRequest,
} from '../generated/v1beta1/api.js';
import { unixTarget } from '../dmi/transport.js';
import { notify, type RuntimeObserver } from '../observer.js';
import { Backoff, sleep } from './backoff.js';
import type { ReportTransport } from './reporter.js';

const CHANNEL_OPTIONS: ChannelOptions = {
  // Re-dial quickly after edgecore restarts: re-registration must happen within seconds.
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1000,
  // An idle channel must not look like a lost edgecore.
  'grpc.client_idle_timeout_ms': 24 * 3600 * 1000,
};

export interface EdgecoreLinkOptions {
  readonly socketPath: string;
  readonly mapper: MapperInfo;
  readonly timeoutMs: number;
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  readonly log: Logger;
  readonly observers?: readonly RuntimeObserver[];
}

export class EdgecoreLink implements ReportTransport {
  private readonly client: DeviceManagerServiceClient;
  private readonly opts: EdgecoreLinkOptions;
  private closed = false;
  private watching = false;

  constructor(opts: EdgecoreLinkOptions) {
    this.opts = opts;
    this.client = new DeviceManagerServiceClient(unixTarget(opts.socketPath), credentials.createInsecure(), CHANNEL_OPTIONS);
  }

  private deadline(): { deadline: number } {
    return { deadline: Date.now() + this.opts.timeoutMs };
  }

  /** Runs one unary call with a deadline, reporting its duration and status to observers. */
  private unary<T>(method: string, start: (cb: (err: ServiceError | null, res: T) => void) => void): Promise<T> {
    const started = performance.now();
    return new Promise<T>((res, rej) => {
      start((err, out) => {
        const durationMs = performance.now() - started;
        notify(this.opts.observers ?? [], 'onDmiCall', err ? { method, durationMs, code: err.code ?? status.UNKNOWN, error: err.details || err.message } : { method, durationMs, code: status.OK });
        if (err) rej(err);
        else res(out);
      });
    });
  }

  /** One MapperRegister(withData=true) call. */
  registerOnce(): Promise<MapperRegisterResponse> {
    return this.unary('MapperRegister', (cb) => this.client.mapperRegister({ withData: true, mapper: this.opts.mapper }, new Metadata(), this.deadline(), cb));
  }

  /**
   * Registers until edgecore answers, with jittered backoff (start order does not matter).
   * Rejects only when `signal` aborts.
   */
  async register(signal: AbortSignal): Promise<MapperRegisterResponse> {
    const backoff = new Backoff(this.opts.backoffInitialMs, Math.min(this.opts.backoffMaxMs, 5000));
    for (;;) {
      if (signal.aborted) throw signal.reason;
      try {
        return await this.registerOnce();
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        const e = err as ServiceError;
        const delay = backoff.next();
        const level = backoff.attempts <= 1 || backoff.attempts % 10 === 0 ? 'warn' : 'debug';
        this.opts.log[level]({ socket: this.opts.socketPath, code: e.code, err: e.details || e.message, retryInMs: delay, attempt: backoff.attempts }, 'MapperRegister failed; retrying');
        await sleep(delay, signal);
      }
    }
  }

  reportDeviceStatus(req: ReportDeviceStatusRequest): Promise<void> {
    return this.unary<unknown>('ReportDeviceStatus', (cb) => this.client.reportDeviceStatus(req, new Metadata(), this.deadline(), cb)).then(() => undefined);
  }

  reportDeviceStates(req: ReportDeviceStatesRequest): Promise<void> {
    return this.unary<unknown>('ReportDeviceStates', (cb) => this.client.reportDeviceStates(req, new Metadata(), this.deadline(), cb)).then(() => undefined);
  }

  /**
   * Watches the channel. `onDown` fires when an established connection drops; `onUp` when it
   * is ready again after a drop — edgecore restarted, so the mapper must register again
   * (edgecore ≤ v1.22 forgets its mappers on restart).
   */
  watch(handlers: { onDown: () => void; onUp: () => void }): void {
    if (this.watching) return;
    this.watching = true;
    const channel = this.client.getChannel();
    let wasReady = false;
    let dropped = false;
    const step = (): void => {
      if (this.closed) return;
      const current = channel.getConnectivityState(true);
      if (current === connectivityState.READY) {
        if (dropped) {
          dropped = false;
          handlers.onUp();
        }
        wasReady = true;
      } else if (wasReady && (current === connectivityState.TRANSIENT_FAILURE || current === connectivityState.IDLE || current === connectivityState.CONNECTING)) {
        wasReady = false;
        dropped = true;
        handlers.onDown();
      }
      channel.watchConnectivityState(current, Date.now() + 60_000, () => step());
    };
    step();
  }

  /** Whether an error means edgecore is not reachable. */
  static isUnavailable(err: unknown): boolean {
    const code = (err as Partial<ServiceError>)?.code;
    return code === status.UNAVAILABLE || code === status.DEADLINE_EXCEEDED || code === status.CANCELLED;
  }

  close(): void {
    this.closed = true;
    this.client.close();
  }
}
