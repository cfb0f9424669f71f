// Authentication and authorization of client requests (HTTP, WebSocket, and the Kafka port's SASL PLAIN, whose
// password is the same bearer token) on the acceptor: who is asking (a bearer token from `--auth-tokens-file`,
// or a JWT verified with `--auth-jwt-*`), and whether the ACLs of
// the metadata log let that principal do what a route or a frame needs (decision: src/core/security/acl.ts).
// With no authentication configured, every request is the anonymous principal and nothing is enforced: the
// single-node default serves on loopback as before. With it, ACLs are enforced, super users bypass them.
// Refusals are values (`Refusal`) that the shells turn into 401 / 403 answers, close codes or error frames;
// every denial is counted (broker_authorization_denials_total) and logged, at most `deniedLogsPerS` lines a
// second (the rest are counted in the next line), so a client hammering a forbidden route cannot flood the log.
// Runs on the acceptor (main) thread only.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import {
  type AccessRequirement,
  type AclBinding,
  AclSet,
  describeRequirement,
} from '../core/security/acl.js';
import { JwtVerifier } from './jwt.js';
import type { TokenVerifier } from './tokens.js';

export const ANONYMOUS = 'ANONYMOUS';
/** Denial log lines a second at most; the others are summed into the next line written. */
const deniedLogsPerS = 5;
/**
 * Verified JWTs remembered (by SHA-256) until they expire, so a client sending the same token with every
 * request costs one signature check (an RS256 verify is tens of microseconds), not one per request.
 */
const jwtCacheEntriesMax = 10_000;

export type Authentication =
  | {
      readonly kind: 'ok';
      readonly principal: string;
      /** When the credential stops being valid (a JWT's exp), in s since the epoch; null: it does not expire. */
      readonly expiresAtS: number | null;
    }
  | { readonly kind: 'unauthenticated'; readonly message: string }
  | { readonly kind: 'busy' };

export interface Refusal {
  readonly kind: 'unauthenticated' | 'forbidden';
  readonly message: string;
}

export interface AccessOptions {
  readonly tokens: TokenVerifier | null;
  readonly jwt: JwtVerifier | null;
  readonly superUsers: readonly string[];
  readonly metricsRequireAuth: boolean;
  readonly log: Logger;
  readonly registry: Registry;
  /** Seconds since the epoch (JWT exp and nbf). */
  readonly nowS?: () => number;
}

export class AccessControl {
  readonly enabled: boolean;
  readonly metricsRequireAuth: boolean;
  private acls = new AclSet([]);
  private aclVersion = -1;
  private readonly superUsers: ReadonlySet<string>;
  private readonly denials: Counter<'operation' | 'resource_type'>;
  private readonly authFailures: Counter<'reason'>;
  private readonly nowS: () => number;
  private readonly jwtCache = new Map<
    string,
    { principal: string; validUntilS: number; expiresAtS: number | null }
  >();
  private logWindowS = 0;
  private logsInWindow = 0;
  private suppressed = 0;

  constructor(private readonly options: AccessOptions) {
    this.enabled = options.tokens !== null || options.jwt !== null;
    this.metricsRequireAuth = options.metricsRequireAuth;
    this.superUsers = new Set(options.superUsers);
    this.nowS = options.nowS ?? (() => Date.now() / 1000);
    this.denials = new Counter({
      name: 'broker_authorization_denials_total',
      help: 'Requests and WebSocket actions refused for want of an ACL (403), by operation and resource type',
      labelNames: ['operation', 'resource_type'],
      registers: [options.registry],
    });
    this.authFailures = new Counter({
      name: 'broker_authentication_failures_total',
      help: 'Requests, WebSocket upgrades and Kafka SASL exchanges refused for missing or invalid credentials, by reason',
      labelNames: ['reason'],
      registers: [options.registry],
    });
  }

  /** Follows the metadata's ACLs (a newer version replaces the set whole). */
  setAcls(version: number, bindings: readonly AclBinding[] | undefined): void {
    if (version < this.aclVersion) return;
    this.aclVersion = version;
    if (bindings !== undefined && bindings !== this.acls.bindings) this.acls = new AclSet(bindings);
  }

  get aclSet(): AclSet {
    return this.acls;
  }

  /**
   * Who sent a request with this Authorization header (or WebSocket `?token=`). Synchronous when the answer is
   * known at once (no auth, a JWT, a remembered token); a promise while a token is hashed.
   */
  authenticate(authorization: string, queryToken: string | null): Authentication | Promise<Authentication> {
    if (!this.enabled) return { kind: 'ok', principal: ANONYMOUS, expiresAtS: null };
    let token: string | null = null;
    if (authorization !== '') {
      const match = /^Bearer[ ]+([\x21-\x7e]+)\s*$/i.exec(authorization);
      if (match === null)
        return this.failed('malformed', 'the Authorization header must be "Bearer <token>"');
      token = match[1]!;
    } else if (queryToken !== null && queryToken !== '') {
      token = queryToken;
    }
    if (token === null) {
      return this.failed('missing', 'authentication is required: send Authorization: Bearer <token>');
    }
    return this.authenticateToken(token);
  }

  /**
   * Who a bearer token (or JWT) belongs to, whatever carried it: an Authorization header, a WebSocket
   * `?token=`, or the password of a SASL PLAIN exchange on the Kafka port. Failures are counted by reason.
   */
  authenticateToken(token: string): Authentication | Promise<Authentication> {
    if (!this.enabled) return { kind: 'ok', principal: ANONYMOUS, expiresAtS: null };
    const jwt = this.options.jwt;
    if (jwt !== null && (this.options.tokens === null || JwtVerifier.looksLikeJwt(token))) {
      const nowS = this.nowS();
      const key = createHash('sha256').update(token).digest('base64');
      const known = this.jwtCache.get(key);
      if (known !== undefined && nowS < known.validUntilS) {
        return { kind: 'ok', principal: known.principal, expiresAtS: known.expiresAtS };
      }
      if (known !== undefined) this.jwtCache.delete(key);
      const result = jwt.verify(token, nowS);
      if (!result.ok) return this.failed('invalid_jwt', `the bearer token is not valid: ${result.reason}`);
      if (this.jwtCache.size >= jwtCacheEntriesMax)
        this.jwtCache.delete(this.jwtCache.keys().next().value as string);
      // Without exp a token is valid for ever: it is remembered for a minute, then verified again.
      const validUntilS = result.expiresAtS === null ? nowS + 60 : Math.min(result.expiresAtS, nowS + 3600);
      this.jwtCache.set(key, { principal: result.principal, validUntilS, expiresAtS: result.expiresAtS });
      return { kind: 'ok', principal: result.principal, expiresAtS: result.expiresAtS };
    }
    const tokens = this.options.tokens!;
    const known = tokens.cached(token);
    const settle = (outcome: NonNullable<typeof known>): Authentication => {
      if (outcome.kind === 'ok') return { kind: 'ok', principal: outcome.principal, expiresAtS: null };
      if (outcome.kind === 'busy') return { kind: 'busy' };
      return this.failed('invalid_token', 'the bearer token is not valid');
    };
    if (known !== undefined) return settle(known);
    return tokens.verify(token).then(settle);
  }

  private failed(reason: string, message: string): Authentication {
    this.countFailure(reason);
    return { kind: 'unauthenticated', message };
  }

  /** Counts a failed authentication decided elsewhere (a SASL exchange whose username is not the token's). */
  countFailure(reason: string): void {
    this.authFailures.inc({ reason });
  }

  /** The first requirement `principal` lacks, or null when every one is met (always null with auth off). */
  missing(principal: string, needs: readonly AccessRequirement[]): AccessRequirement | null {
    if (!this.enabled) return null;
    for (const need of needs) {
      if (!this.acls.decide(principal, need, this.superUsers).allowed) return need;
    }
    return null;
  }

  /** Whether `principal` may do `need`; true with auth off. No counting: for filtering lists. */
  allows(principal: string, need: AccessRequirement): boolean {
    return !this.enabled || this.acls.decide(principal, need, this.superUsers).allowed;
  }

  /** Checks `needs` and, on a denial, counts and logs it; the refusal names the missing permission. */
  authorize(principal: string, needs: readonly AccessRequirement[], where: string): Refusal | null {
    const need = this.missing(principal, needs);
    if (need === null) return null;
    this.denied(principal, need, where);
    return {
      kind: 'forbidden',
      message: `principal '${principal}' lacks ${describeRequirement(need)}: an administrator can grant it with POST /admin/acls`,
    };
  }

  denied(principal: string, need: AccessRequirement, where: string): void {
    this.denials.inc({ operation: need.operation, resource_type: need.resourceType });
    const nowS = Math.floor(this.nowS());
    if (nowS !== this.logWindowS) {
      this.logWindowS = nowS;
      this.logsInWindow = 0;
    }
    if (this.logsInWindow >= deniedLogsPerS) {
      this.suppressed++;
      return;
    }
    this.logsInWindow++;
    const alsoDenied = this.suppressed;
    this.suppressed = 0;
    this.options.log.warn(
      {
        principal,
        operation: need.operation,
        resourceType: need.resourceType,
        resource: need.resourceName,
        where,
        ...(alsoDenied > 0 ? { alsoDeniedNotLogged: alsoDenied } : {}),
      },
      'authorization denied',
    );
  }
}
