// SASL PLAIN on the Kafka port: SaslHandshake and SaslAuthenticate answered from the pure decisions of
// src/core/kafka/sasl.ts, the password verified by the same AccessControl as HTTP bearer tokens (a token of
// --auth-tokens-file, or a JWT), so a Kafka client is the same principal, under the same ACLs, as it is on
// HTTP. Failures are counted in broker_authentication_failures_total{reason} and answered
// SASL_AUTHENTICATION_FAILED with a message, after which the listener closes the connection. A JWT's exp is
// the session's end: the answer's session_lifetime_ms (v1+) tells the client to re-authenticate before it, and
// the listener closes the connection at it otherwise (KIP-368).
//
// With authentication off nothing is gated and SASL is not offered (ApiVersions does not list it); a client
// asking anyway is answered UNSUPPORTED_SASL_MECHANISM with no mechanisms, so kafkajs and librdkafka report
// "mechanism not supported by the broker" rather than a bare disconnect.
// Runs on the acceptor (main) thread only.
import type { Logger } from 'pino';
import { kafkaErrors } from '../core/kafka/error-codes.js';
import type {
  SaslAuthenticateRequest,
  SaslAuthenticateResponse,
  SaslHandshakeRequest,
  SaslHandshakeResponse,
} from '../core/kafka/messages.generated.js';
import {
  expectsAuthenticate,
  parsePlain,
  SASL_MECHANISMS,
  saslAuthenticated,
  saslHandshake,
} from '../core/kafka/sasl.js';
import type { AccessControl, Authentication } from '../security/access.js';
import type { KafkaConnection } from './listener.js';

const E = kafkaErrors;
/**
 * A token being hashed while 16 others are (the verifier's bound) is retried this often, this many times (5 s
 * in all), rather than failing the client's authentication for the broker's load.
 */
const BUSY_RETRY_MS = 50;
const BUSY_RETRIES_MAX = 100;

export interface SaslAnswer<T> {
  readonly body: T;
  /** Set when the connection is to be closed once the answer is written. */
  readonly closeAfter?: string;
}

export class KafkaSasl {
  constructor(
    private readonly access: AccessControl,
    private readonly log: Logger,
    private readonly nowMs: () => number = () => Date.now(),
  ) {}

  get enabled(): boolean {
    return this.access.enabled;
  }

  handshake(
    version: number,
    request: SaslHandshakeRequest,
    connection: KafkaConnection,
  ): SaslAnswer<SaslHandshakeResponse> {
    if (!this.access.enabled) {
      return { body: { errorCode: E.UNSUPPORTED_SASL_MECHANISM.code, mechanisms: [] } };
    }
    const decision = saslHandshake(connection.sasl, version, request.mechanism);
    if (decision.kind === 'accept') {
      connection.sasl = decision.next;
      return { body: { errorCode: E.NONE.code, mechanisms: [...SASL_MECHANISMS] } };
    }
    this.access.countFailure(`sasl_${decision.errorCode}`);
    const errorCode =
      decision.errorCode === 'unsupported_mechanism'
        ? E.UNSUPPORTED_SASL_MECHANISM.code
        : decision.errorCode === 'unsupported_version'
          ? E.UNSUPPORTED_VERSION.code
          : E.ILLEGAL_SASL_STATE.code;
    return { body: { errorCode, mechanisms: [...SASL_MECHANISMS] }, closeAfter: decision.reason };
  }

  async authenticate(
    request: SaslAuthenticateRequest,
    connection: KafkaConnection,
  ): Promise<SaslAnswer<SaslAuthenticateResponse>> {
    const refuse = (code: number, message: string): SaslAnswer<SaslAuthenticateResponse> => ({
      body: { errorCode: code, errorMessage: message, authBytes: new Uint8Array(0), sessionLifetimeMs: 0 },
      closeAfter: message,
    });
    if (!this.access.enabled) {
      return {
        body: {
          errorCode: E.ILLEGAL_SASL_STATE.code,
          errorMessage: 'authentication is off on this broker: connect without SASL',
          authBytes: new Uint8Array(0),
          sessionLifetimeMs: 0,
        },
      };
    }
    if (!expectsAuthenticate(connection.sasl)) {
      this.access.countFailure('sasl_illegal_state');
      return refuse(E.ILLEGAL_SASL_STATE.code, 'SaslAuthenticate must follow a SaslHandshake');
    }
    const failed = (reason: string, message: string): SaslAnswer<SaslAuthenticateResponse> => {
      this.log.debug(
        { remote: connection.remoteAddress, clientId: connection.clientId, reason: message },
        'Kafka SASL authentication failed',
      );
      if (reason !== '') this.access.countFailure(reason);
      return refuse(E.SASL_AUTHENTICATION_FAILED.code, `SASL PLAIN authentication failed: ${message}`);
    };
    const plain = parsePlain(request.authBytes);
    if (!plain.ok) return failed('sasl_malformed', plain.reason);
    const verified = await this.verify(plain.password);
    // AccessControl counted its own failures (invalid_token, invalid_jwt) already.
    if (verified.kind === 'busy') return failed('sasl_busy', 'the broker is busy verifying tokens; retry');
    if (verified.kind === 'unauthenticated') return failed('', 'the password is not a valid token');
    const decision = saslAuthenticated(
      connection.sasl,
      plain,
      verified.principal,
      verified.expiresAtS,
      this.nowMs(),
    );
    if (decision.kind === 'refuse') return failed(decision.metricReason, decision.reason);
    connection.sasl = decision.next;
    connection.setSessionEnd(decision.next.kind === 'authenticated' ? decision.next.sessionEndMs : null);
    return {
      body: {
        errorCode: E.NONE.code,
        errorMessage: null,
        authBytes: new Uint8Array(0),
        sessionLifetimeMs: decision.sessionLifetimeMs,
      },
    };
  }

  private async verify(token: string): Promise<Authentication> {
    for (let attempt = 0; ; attempt++) {
      const outcome = await this.access.authenticateToken(token);
      if (outcome.kind !== 'busy' || attempt >= BUSY_RETRIES_MAX) return outcome;
      await new Promise((resolve) => setTimeout(resolve, BUSY_RETRY_MS));
    }
  }
}
