// SPDX-License-Identifier: Apache-2.0
import { status as GrpcStatus } from '@grpc/grpc-js';

/**
 * What went wrong, independent of transport. Every error the framework raises or
 * accepts from a driver carries one of these kinds; {@link ERROR_CODES} maps each
 * kind to the gRPC status (DMI server) and HTTP status (REST API) it travels as.
 */
export type MapperErrorKind =
  /** A config blob (config.yaml, protocol configData, visitor configData) failed validation. */
  | 'InvalidConfig'
  /** No device with that namespace/name is registered. */
  | 'DeviceNotFound'
  /** No device model with that namespace/name is known. */
  | 'ModelNotFound'
  /** The device has no property (or method) with that name. */
  | 'PropertyNotFound'
  /** The device or its bus cannot be reached (connection refused, port missing, link down). */
  | 'Unreachable'
  /** The device did not answer in time. */
  | 'Timeout'
  /** The device answered with an error (e.g. a Modbus exception, an OPC UA bad status). */
  | 'DeviceError'
  /** A write was refused: read-only property, value outside minimum/maximum or the type's range. */
  | 'WriteRejected'
  /** The driver or framework does not support the operation. */
  | 'Unsupported'
  /** The operation was cancelled (device removed, update, shutdown). */
  | 'Cancelled'
  /** Too many requests; try again later. */
  | 'Busy'
  /** A bug: anything that is not one of the above. */
  | 'Internal';

/** The one table from error kind to transport codes. A `Record`, so a new kind without codes fails to compile. */
export const ERROR_CODES: Readonly<Record<MapperErrorKind, { readonly grpc: GrpcStatus; readonly http: number }>> = {
  InvalidConfig: { grpc: GrpcStatus.INVALID_ARGUMENT, http: 400 },
  DeviceNotFound: { grpc: GrpcStatus.NOT_FOUND, http: 404 },
  ModelNotFound: { grpc: GrpcStatus.NOT_FOUND, http: 404 },
  PropertyNotFound: { grpc: GrpcStatus.NOT_FOUND, http: 404 },
  Unreachable: { grpc: GrpcStatus.UNAVAILABLE, http: 503 },
  Timeout: { grpc: GrpcStatus.DEADLINE_EXCEEDED, http: 504 },
  DeviceError: { grpc: GrpcStatus.ABORTED, http: 502 },
  WriteRejected: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 409 },
  Unsupported: { grpc: GrpcStatus.UNIMPLEMENTED, http: 501 },
  Cancelled: { grpc: GrpcStatus.CANCELLED, http: 499 },
  Busy: { grpc: GrpcStatus.RESOURCE_EXHAUSTED, http: 429 },
  Internal: { grpc: GrpcStatus.INTERNAL, http: 500 },
};

/** Options for {@link MapperError}: context that ends up in logs and in DMI/REST error details. */
export interface MapperErrorOptions {
  /** The underlying error (socket error, schema issue…). */
  readonly cause?: unknown;
  /** `namespace/name` of the device concerned, when known. */
  readonly device?: string;
  /** Property (or method) name concerned, when known. */
  readonly property?: string;
  /** Config key concerned (dotted path), when known. */
  readonly key?: string;
}

/**
 * The single error type of Mapperkit. Drivers throw it (or return it in a failed
 * {@link ReadResult}) to say what kind of failure happened; the framework maps it
 * to gRPC and HTTP codes through {@link ERROR_CODES}.
 *
 * @example
 * throw new MapperError('Unreachable', 'connect 10.0.0.5:502 timed out', { cause: err });
 */
export class MapperError extends Error {
  override name = 'MapperError';
  readonly kind: MapperErrorKind;
  readonly device: string | undefined;
  readonly property: string | undefined;
  readonly key: string | undefined;

  constructor(kind: MapperErrorKind, message: string, options: MapperErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.device = options.device;
    this.property = options.property;
    this.key = options.key;
  }

  /** gRPC status code for this error. */
  get grpcCode(): GrpcStatus {
    return ERROR_CODES[this.kind].grpc;
  }

  /** HTTP status code for this error. */
  get httpStatus(): number {
    return ERROR_CODES[this.kind].http;
  }

  /** A copy with device/property context filled in where missing, the message prefixed accordingly. */
  withContext(ctx: { device?: string; property?: string }): MapperError {
    const device = this.device ?? ctx.device;
    const property = this.property ?? ctx.property;
    if (device === this.device && property === this.property) return this;
    const where = [device && !this.device ? `device ${device}` : '', property && !this.property ? `property ${property}` : '']
      .filter(Boolean)
      .join(' ');
    const err = new MapperError(this.kind, where ? `${where}: ${this.message}` : this.message, {
      cause: this.cause,
      device,
      property,
      key: this.key,
    });
    if (this.stack) err.stack = this.stack;
    return err;
  }
}

/** Type guard for {@link MapperError}. */
export function isMapperError(err: unknown): err is MapperError {
  return err instanceof MapperError;
}

/** Message text of any thrown value. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * Wraps any thrown value as a {@link MapperError}. MapperErrors pass through (with context
 * added); AbortErrors become `Cancelled` or `Timeout`; anything else becomes `fallback`.
 */
export function toMapperError(
  err: unknown,
  fallback: MapperErrorKind = 'Internal',
  ctx: { device?: string; property?: string } = {},
): MapperError {
  if (err instanceof MapperError) return err.withContext(ctx);
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) {
    const kind: MapperErrorKind = err.name === 'TimeoutError' ? 'Timeout' : 'Cancelled';
    return new MapperError(kind, err.message, { cause: err, ...ctx });
  }
  const prefix = [ctx.device ? `device ${ctx.device}` : '', ctx.property ? `property ${ctx.property}` : '']
    .filter(Boolean)
    .join(' ');
  const msg = errorMessage(err);
  return new MapperError(fallback, prefix ? `${prefix}: ${msg}` : msg, { cause: err, ...ctx });
}
