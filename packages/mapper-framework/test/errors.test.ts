// SPDX-License-Identifier: Apache-2.0
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { ERROR_CODES, MapperError, type MapperErrorKind, toMapperError } from '@mapperkit/framework';

describe('MapperError', () => {
  it('maps every kind to a gRPC status and an HTTP code, from one table', () => {
    const expected: Record<MapperErrorKind, [number, number]> = {
      InvalidConfig: [status.INVALID_ARGUMENT, 400],
      DeviceNotFound: [status.NOT_FOUND, 404],
      ModelNotFound: [status.NOT_FOUND, 404],
      PropertyNotFound: [status.NOT_FOUND, 404],
      Unreachable: [status.UNAVAILABLE, 503],
      Timeout: [status.DEADLINE_EXCEEDED, 504],
      DeviceError: [status.ABORTED, 502],
      WriteRejected: [status.FAILED_PRECONDITION, 409],
      Unsupported: [status.UNIMPLEMENTED, 501],
      Cancelled: [status.CANCELLED, 499],
      Busy: [status.RESOURCE_EXHAUSTED, 429],
      Internal: [status.INTERNAL, 500],
    };
    assert.deepEqual(Object.keys(ERROR_CODES).sort(), Object.keys(expected).sort());
    for (const [kind, [grpc, http]] of Object.entries(expected)) {
      const e = new MapperError(kind as MapperErrorKind, 'x');
      assert.equal(e.grpcCode, grpc, kind);
      assert.equal(e.httpStatus, http, kind);
    }
  });
  it('adds device/property context to messages once', () => {
    const e = new MapperError('Timeout', 'no answer').withContext({ device: 'default/pump', property: 'flow' });
    assert.equal(e.message, 'device default/pump property flow: no answer');
    assert.equal(e.withContext({ device: 'other' }).message, e.message);
  });
  it('wraps foreign errors: AbortError → Cancelled, TimeoutError → Timeout, others → fallback', () => {
    const abort = new Error('stop');
    abort.name = 'AbortError';
    assert.equal(toMapperError(abort).kind, 'Cancelled');
    const to = new Error('slow');
    to.name = 'TimeoutError';
    assert.equal(toMapperError(to).kind, 'Timeout');
    const e = toMapperError(new Error('ECONNREFUSED'), 'Unreachable', { device: 'ns/d' });
    assert.equal(e.kind, 'Unreachable');
    assert.equal(e.device, 'ns/d');
    assert.match(e.message, /^device ns\/d: ECONNREFUSED$/);
  });
});
