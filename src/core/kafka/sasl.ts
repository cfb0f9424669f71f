// SASL on a Kafka connection (KIP-43 SaslHandshake, KIP-152 SaslAuthenticate, KIP-368 re-authentication): the
// per-connection state machine that decides which request may be served in which state, and the PLAIN
// mechanism's message (RFC 4616). The shell (src/kafka/sasl.ts, on the acceptor) verifies the password
// and keeps a connection's state; this module only decides.
//
// States, with authentication on:
//   unauthenticated --SaslHandshake v1 (PLAIN)--> handshaken --SaslAuthenticate ok--> authenticated
//   authenticated --SaslHandshake v1 (PLAIN)--> authenticated, reauthenticating (KIP-368) --SaslAuthenticate--> ...
// ApiVersions is served in every state (clients ask it first). Every other API is served only once
// authenticated, and anything else closes the connection, as Kafka's SaslServerAuthenticator does. A v0
// SaslHandshake would be followed by raw, unframed SASL tokens (KIP-43); kafkajs and librdkafka both use v1 and
// SaslAuthenticate when ApiVersions lists it, so v0 is answered UNSUPPORTED_VERSION and the connection closed.
// With authentication off, nothing is gated and SaslHandshake is answered UNSUPPORTED_SASL_MECHANISM.
//
// PLAIN message: `authzid NUL authcid NUL passwd`, UTF-8. authcid (the username) is the principal its password
// (a bearer token or JWT) maps to; an authzid, when given, must be the same name (no acting for another).
//
// Pure: no I/O, no clock (times are given). Callable from any thread; used on the acceptor (main) thread.
import { ApiKey } from './api-keys.js';

export const SASL_MECHANISM_PLAIN = 'PLAIN';
export const SASL_MECHANISMS: readonly string[] = [SASL_MECHANISM_PLAIN];
/** SaslHandshake v1 is the first followed by SaslAuthenticate requests rather than raw tokens. */
export const SASL_HANDSHAKE_FRAMED_VERSION = 1;
/** SaslAuthenticate v1 is the first whose answer carries session_lifetime_ms (KIP-368). */
export const SASL_AUTHENTICATE_LIFETIME_VERSION = 1;
/**
 * A PLAIN message longer than this is refused unparsed: a JWT is at most 8 KiB here (src/security/jwt.ts), a
 * token 4 KiB, a principal 255 bytes, so 16 KiB holds any valid one with room to spare.
 */
export const SASL_PLAIN_BYTES_MAX = 16 * 1024;
/** The longest username (a principal: ACL principals are at most 255 bytes). */
export const SASL_USERNAME_BYTES_MAX = 255;

export type SaslState =
  | { readonly kind: 'unauthenticated' }
  | { readonly kind: 'handshaken' }
  | {
      readonly kind: 'authenticated';
      readonly principal: string;
      /** When the session ends (a JWT's exp), ms since the epoch; null: never. */
      readonly sessionEndMs: number | null;
      /** A SaslHandshake of re-authentication was accepted; its SaslAuthenticate comes next. */
      readonly reauthenticating: boolean;
    };

export const SASL_INITIAL: SaslState = { kind: 'unauthenticated' };

/** What to do with a request in a state: serve it, or close the connection (Kafka closes, it does not answer). */
export type SaslGate = { readonly kind: 'serve' } | { readonly kind: 'close'; readonly reason: string };

const SERVE: SaslGate = { kind: 'serve' };

/**
 * Whether a request with `apiKey` may be served now. SaslHandshake and SaslAuthenticate are always let through
 * to their handlers, which answer an out-of-order one with ILLEGAL_SASL_STATE before closing (a clearer end for
 * the client than a bare close). A session past its end closes even before its timer fires.
 */
export function saslGate(state: SaslState, apiKey: number, authEnabled: boolean, nowMs: number): SaslGate {
  if (!authEnabled) return SERVE;
  if (
    apiKey === ApiKey.ApiVersions ||
    apiKey === ApiKey.SaslHandshake ||
    apiKey === ApiKey.SaslAuthenticate
  ) {
    return SERVE;
  }
  if (state.kind !== 'authenticated') {
    return {
      kind: 'close',
      reason: `a request (API ${apiKey}) before SASL authentication: authenticate with SASL PLAIN first`,
    };
  }
  if (state.sessionEndMs !== null && nowMs >= state.sessionEndMs) {
    return { kind: 'close', reason: 'the SASL session expired without re-authentication' };
  }
  return SERVE;
}

export type HandshakeDecision =
  | { readonly kind: 'accept'; readonly next: SaslState }
  /** Answer with this error code (and the mechanisms), then close the connection. */
  | {
      readonly kind: 'refuse';
      readonly errorCode: 'unsupported_mechanism' | 'unsupported_version' | 'illegal_state';
      readonly reason: string;
    };

/** A SaslHandshake of `version` asking for `mechanism`, in `state` (authentication on). */
export function saslHandshake(state: SaslState, version: number, mechanism: string): HandshakeDecision {
  if (version < SASL_HANDSHAKE_FRAMED_VERSION) {
    return {
      kind: 'refuse',
      errorCode: 'unsupported_version',
      reason:
        'SaslHandshake v0 (raw SASL tokens after the handshake) is not supported: use v1 with SaslAuthenticate',
    };
  }
  if (mechanism !== SASL_MECHANISM_PLAIN) {
    return {
      kind: 'refuse',
      errorCode: 'unsupported_mechanism',
      reason: `SASL mechanism '${mechanism.slice(0, 64)}' is not supported; enabled: ${SASL_MECHANISMS.join(', ')}`,
    };
  }
  if (state.kind === 'unauthenticated') return { kind: 'accept', next: { kind: 'handshaken' } };
  if (state.kind === 'authenticated' && !state.reauthenticating) {
    return { kind: 'accept', next: { ...state, reauthenticating: true } };
  }
  return {
    kind: 'refuse',
    errorCode: 'illegal_state',
    reason: 'a second SaslHandshake before SaslAuthenticate',
  };
}

/** Whether a SaslAuthenticate is expected in `state`. */
export function expectsAuthenticate(state: SaslState): boolean {
  return state.kind === 'handshaken' || (state.kind === 'authenticated' && state.reauthenticating);
}

export type PlainMessage =
  | { readonly ok: true; readonly authzid: string; readonly username: string; readonly password: string }
  | { readonly ok: false; readonly reason: string };

const NUL = 0;

/** Parses a PLAIN message (RFC 4616). Never throws. */
export function parsePlain(bytes: Uint8Array): PlainMessage {
  if (bytes.length > SASL_PLAIN_BYTES_MAX) {
    return { ok: false, reason: `a PLAIN message longer than ${SASL_PLAIN_BYTES_MAX} bytes` };
  }
  const first = bytes.indexOf(NUL);
  const second = first < 0 ? -1 : bytes.indexOf(NUL, first + 1);
  if (first < 0 || second < 0 || bytes.indexOf(NUL, second + 1) >= 0) {
    return { ok: false, reason: 'a PLAIN message is authzid NUL username NUL password' };
  }
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let authzid: string;
  let username: string;
  let password: string;
  try {
    authzid = decoder.decode(bytes.subarray(0, first));
    username = decoder.decode(bytes.subarray(first + 1, second));
    password = decoder.decode(bytes.subarray(second + 1));
  } catch {
    return { ok: false, reason: 'a PLAIN message must be UTF-8' };
  }
  if (username.length === 0) return { ok: false, reason: 'the username is empty' };
  if (second - first - 1 > SASL_USERNAME_BYTES_MAX) {
    return { ok: false, reason: `the username is longer than ${SASL_USERNAME_BYTES_MAX} bytes` };
  }
  if (password.length === 0) return { ok: false, reason: 'the password is empty' };
  return { ok: true, authzid, username, password };
}

/** Encodes a PLAIN message (for tests and tools). */
export function encodePlain(authzid: string, username: string, password: string): Uint8Array {
  return new TextEncoder().encode(`${authzid}\u0000${username}\u0000${password}`);
}

export type AuthenticateDecision =
  | {
      readonly kind: 'accept';
      readonly next: SaslState;
      /** For SaslAuthenticate v1+: ms until the session ends, 0 when it does not (Kafka's "no limit"). */
      readonly sessionLifetimeMs: number;
    }
  | { readonly kind: 'refuse'; readonly reason: string; readonly metricReason: string };

/**
 * The outcome of a SaslAuthenticate whose password verified to `principal` (expiring at `expiresAtS`, a JWT's
 * exp in s, or null), given what the client claimed. The refusal messages name what was wrong without saying
 * which principal the password belongs to.
 */
export function saslAuthenticated(
  state: SaslState,
  message: { readonly authzid: string; readonly username: string },
  principal: string,
  expiresAtS: number | null,
  nowMs: number,
): AuthenticateDecision {
  if (message.username !== principal) {
    return {
      kind: 'refuse',
      reason: `the password does not belong to username '${message.username}'`,
      metricReason: 'sasl_username_mismatch',
    };
  }
  if (message.authzid !== '' && message.authzid !== message.username) {
    return {
      kind: 'refuse',
      reason: 'the authorization id must be empty or the username (no acting for another principal)',
      metricReason: 'sasl_authzid',
    };
  }
  if (state.kind === 'authenticated' && state.principal !== principal) {
    return {
      kind: 'refuse',
      reason: 're-authentication must keep the principal of the connection',
      metricReason: 'sasl_principal_changed',
    };
  }
  const sessionEndMs = expiresAtS === null ? null : expiresAtS * 1000;
  if (sessionEndMs !== null && sessionEndMs <= nowMs) {
    return {
      kind: 'refuse',
      reason: `the token expired at ${new Date(sessionEndMs).toISOString()}`,
      metricReason: 'sasl_expired',
    };
  }
  return {
    kind: 'accept',
    next: { kind: 'authenticated', principal, sessionEndMs, reauthenticating: false },
    sessionLifetimeMs: sessionEndMs === null ? 0 : Math.max(1, Math.floor(sessionEndMs - nowMs)),
  };
}
