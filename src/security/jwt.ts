// JWT verification with node:crypto only (no dependency): HS256 with a shared secret, RS256 with an RSA
// public key (PEM). A token is `base64url(header).base64url(payload).base64url(signature)`; the algorithm
// and claims are checked by the pure core (src/core/security/jwt-claims.ts) and the signature here, with a
// constant-time comparison for HMAC. Every failure is a value with a reason for the log; clients only hear
// "invalid token". Stateless, so callable from any thread; used on the acceptor (main) thread.
import { createHmac, createPublicKey, type KeyObject, sign, timingSafeEqual, verify } from 'node:crypto';
import { checkClaims, headerProblem, type JwtAlgorithm } from '../core/security/jwt-claims.js';

/** A token longer than this is refused unread (a header line of a sane size holds far fewer). */
export const JWT_BYTES_MAX = 8192;

export interface JwtVerifierOptions {
  readonly algorithm: JwtAlgorithm;
  /** HS256: the secret's bytes; RS256: the public key in PEM. */
  readonly key: Buffer | string;
  readonly audience: string | null;
  readonly issuer: string | null;
  readonly clockSkewS: number;
}

export type JwtResult =
  | { readonly ok: true; readonly principal: string; readonly expiresAtS: number | null }
  | { readonly ok: false; readonly reason: string };

const base64url = /^[A-Za-z0-9_-]*$/;

export class JwtVerifier {
  private readonly hmacKey: Buffer | null;
  private readonly publicKey: KeyObject | null;

  constructor(private readonly options: JwtVerifierOptions) {
    if (options.algorithm === 'HS256') {
      this.hmacKey = typeof options.key === 'string' ? Buffer.from(options.key, 'utf8') : options.key;
      if (this.hmacKey.byteLength < 32) {
        throw new Error('an HS256 secret must be at least 32 bytes (RFC 7518 section 3.2)');
      }
      this.publicKey = null;
    } else {
      this.hmacKey = null;
      this.publicKey = createPublicKey(options.key);
      if (this.publicKey.asymmetricKeyType !== 'rsa')
        throw new Error('an RS256 key must be an RSA public key');
    }
  }

  /** Whether a bearer token looks like a JWT at all (three base64url parts), so other schemes can be tried. */
  static looksLikeJwt(token: string): boolean {
    const parts = token.split('.');
    return parts.length === 3 && parts[0]!.startsWith('eyJ');
  }

  verify(token: string, nowS: number): JwtResult {
    if (token.length > JWT_BYTES_MAX)
      return { ok: false, reason: `a token longer than ${JWT_BYTES_MAX} bytes` };
    const parts = token.split('.');
    if (parts.length !== 3 || !parts.every((p) => base64url.test(p))) {
      return { ok: false, reason: 'not a compact JWS (three base64url parts)' };
    }
    const [headerText, payloadText, signatureText] = parts as [string, string, string];
    const header = parseJsonPart(headerText);
    if (header === undefined) return { ok: false, reason: 'the header is not JSON' };
    const problem = headerProblem(header, this.options.algorithm);
    if (problem !== null) return { ok: false, reason: problem };
    const signed = Buffer.from(`${headerText}.${payloadText}`, 'ascii');
    const signature = Buffer.from(signatureText, 'base64url');
    if (!this.signatureValid(signed, signature)) return { ok: false, reason: 'bad signature' };
    const payload = parseJsonPart(payloadText);
    if (payload === undefined) return { ok: false, reason: 'the payload is not JSON' };
    return checkClaims(payload, nowS, this.options);
  }

  private signatureValid(signed: Buffer, signature: Buffer): boolean {
    if (this.hmacKey !== null) {
      const expected = createHmac('sha256', this.hmacKey).update(signed).digest();
      return signature.byteLength === expected.byteLength && timingSafeEqual(signature, expected);
    }
    try {
      return verify('RSA-SHA256', signed, this.publicKey!, signature);
    } catch {
      return false;
    }
  }
}

function parseJsonPart(text: string): unknown {
  try {
    return JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** Signs a token (HS256 or RS256): for tests and the CLI's tooling, never used by the broker to accept one. */
export function signJwt(
  payload: Record<string, unknown>,
  algorithm: JwtAlgorithm,
  key: Buffer | string,
  headerExtra: Record<string, unknown> = {},
): string {
  const header = Buffer.from(JSON.stringify({ alg: algorithm, typ: 'JWT', ...headerExtra })).toString(
    'base64url',
  );
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
  const input = `${header}.${body}`;
  const signature =
    algorithm === 'HS256'
      ? createHmac('sha256', key).update(input).digest()
      : sign('RSA-SHA256', Buffer.from(input), key);
  return `${input}.${signature.toString('base64url')}`;
}
