// SPDX-License-Identifier: Apache-2.0
// node-opcua reports failures as Error objects whose text carries an OPC UA status name or a
// socket error code. These helpers turn them into MapperError kinds the framework acts on:
// Unreachable/Timeout → `offline` and reconnect with backoff; InvalidConfig → `unhealthy`
// (wrong password, untrusted certificate: retrying does not help until someone fixes it).
import { MapperError, type MapperErrorKind } from '@mapperkit/framework';

/** Status names and socket errors that mean the session or channel is gone. */
const LOST =
  /BadConnectionClosed|BadSecureChannelClosed|BadSecureChannelIdInvalid|BadSessionClosed|BadSessionIdInvalid|BadSessionNotActivated|BadNotConnected|BadServerHalted|BadShutdown|BadCommunicationError|BadDisconnect|BadNoCommunication|Invalid Channel|ECONNRESET|ECONNREFUSED|EPIPE|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|socket has been disconnected|premature disconnection|has been closed|Connection Break|Client is not usable|disconnected/i;
const TIMEOUT = /BadTimeout|BadRequestTimeout|Timeout|timed out|ETIMEDOUT/i;
const IDENTITY = /BadUserAccessDenied|BadIdentityTokenRejected|BadIdentityTokenInvalid|BadUserSignatureInvalid|BadIdentityChangeNotSupported/;
const CERTIFICATE = /BadCertificate\w*|BadSecurityChecksFailed|BadSecurityPolicyRejected|BadNonceInvalid|certificate verification failed|Certificate verification/i;
const ENDPOINT = /cannot find endpoint/i;

/** The first OPC UA status name in a text, if any. */
export function statusNameIn(text: string): string | undefined {
  return /\b(Bad|Uncertain)[A-Z][A-Za-z]+/.exec(text)?.[0];
}

/** Whether an error means the connection (channel or session) is gone. */
export function isConnectionLoss(err: unknown): boolean {
  const text = err instanceof Error ? err.message : String(err);
  return LOST.test(text);
}

/** Kind for an error of a request on an established session. */
export function requestErrorKind(err: unknown): MapperErrorKind {
  const text = err instanceof Error ? err.message : String(err);
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return err.name === 'TimeoutError' ? 'Timeout' : 'Cancelled';
  if (LOST.test(text)) return 'Unreachable';
  if (TIMEOUT.test(text)) return 'Timeout';
  return 'DeviceError';
}

export interface ConnectErrorContext {
  readonly url: string;
  readonly securityPolicy: string;
  readonly securityMode: string;
  readonly identityLabel: string;
  readonly pkiDir: string;
  readonly certificateFile: string;
  readonly timeoutMs: number;
}

/** Turns a failure of connect/createSession into a MapperError that tells the operator what to do. */
export function connectError(err: unknown, c: ConnectErrorContext): MapperError {
  if (err instanceof MapperError) return err;
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError'))
    return new MapperError(err.name === 'TimeoutError' ? 'Timeout' : 'Cancelled', `connect ${c.url}: ${err.name === 'TimeoutError' ? `no answer within ${c.timeoutMs} ms` : err.message}`, { cause: err });
  const text = err instanceof Error ? err.message : String(err);
  const status = statusNameIn(text);
  const first = text.split('\n')[0]!.trim();
  if (IDENTITY.test(text))
    return new MapperError('InvalidConfig', `${c.url}: the server rejected the user identity (${c.identityLabel}): ${status ?? first}`, { cause: err, key: 'userName' });
  if (/server Certificate verification failed|BadCertificateUntrusted/i.test(text) && /server Certificate/i.test(text))
    return new MapperError(
      'InvalidConfig',
      `${c.url}: the server certificate is not trusted (${status ?? 'untrusted'}); it was stored in ${c.pkiDir}/rejected. ` +
        `Move it to ${c.pkiDir}/trusted/certs, point serverCertificate at it, or (lab only) set acceptUnknownServerCertificate`,
      { cause: err, key: 'serverCertificate' },
    );
  if (CERTIFICATE.test(text))
    return new MapperError(
      'InvalidConfig',
      `${c.url}: secure channel ${c.securityPolicy}/${c.securityMode} refused (${status ?? first}); does the server trust the client certificate ${c.certificateFile}?`,
      { cause: err, key: 'securityPolicy' },
    );
  if (ENDPOINT.test(text))
    return new MapperError('InvalidConfig', `${c.url}: the server offers no endpoint with securityPolicy ${c.securityPolicy} and securityMode ${c.securityMode}`, {
      cause: err,
      key: 'securityPolicy',
    });
  const kind: MapperErrorKind = TIMEOUT.test(text) && !/ECONNREFUSED/.test(text) ? 'Timeout' : 'Unreachable';
  return new MapperError(kind, `connect ${c.url}: ${first}`, { cause: err });
}
