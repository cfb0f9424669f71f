// The checks of a JSON Web Token that need no cryptography (RFC 7519): the header's algorithm against the one
// configured (so `alg: none`, or an HS256 token offered to an RS256 verifier, is refused before any signature
// is looked at: the classic algorithm-confusion attacks), and the claims: `exp` and `nbf` against the time
// given, with a bounded clock skew, `aud` and `iss` when configured, and `sub` as the principal.
// The signature itself is checked by the shell (src/security/jwt.ts), with node:crypto.
// Pure: the time is an argument; callable from any thread.

export type JwtAlgorithm = 'HS256' | 'RS256';

export interface JwtClaimOptions {
  readonly algorithm: JwtAlgorithm;
  /** When set, `aud` (a string or an array of strings) must contain it. */
  readonly audience: string | null;
  /** When set, `iss` must equal it. */
  readonly issuer: string | null;
  /** Tolerated difference between the issuer's clock and ours, for `exp` and `nbf`. */
  readonly clockSkewS: number;
}

export type ClaimCheck =
  | { readonly ok: true; readonly principal: string; readonly expiresAtS: number | null }
  | { readonly ok: false; readonly reason: string };

/** Why the header cannot be accepted with `algorithm`, or null. */
export function headerProblem(header: unknown, algorithm: JwtAlgorithm): string | null {
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    return 'the header is not an object';
  const h = header as Record<string, unknown>;
  if (typeof h.alg !== 'string') return 'the header has no alg';
  if (h.alg.toLowerCase() === 'none') return 'unsigned tokens (alg none) are refused';
  if (h.alg !== algorithm) return `alg ${h.alg} is not the configured ${algorithm}`;
  if (h.crit !== undefined) return 'critical header extensions (crit) are not supported';
  return null;
}

const principalPattern = /^[\x21-\x7e]{1,255}$/;

/** The principal (`sub`) of a payload whose signature was verified, or why it is not accepted at `nowS`. */
export function checkClaims(payload: unknown, nowS: number, options: JwtClaimOptions): ClaimCheck {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    return { ok: false, reason: 'the payload is not an object' };
  }
  const p = payload as Record<string, unknown>;
  const numeric = (key: string): number | null | 'bad' => {
    const v = p[key];
    if (v === undefined) return null;
    return typeof v === 'number' && Number.isFinite(v) ? v : 'bad';
  };
  const exp = numeric('exp');
  const nbf = numeric('nbf');
  if (exp === 'bad' || nbf === 'bad') return { ok: false, reason: 'exp and nbf must be numbers' };
  if (exp !== null && nowS >= exp + options.clockSkewS) return { ok: false, reason: 'the token has expired' };
  if (nbf !== null && nowS < nbf - options.clockSkewS)
    return { ok: false, reason: 'the token is not valid yet (nbf)' };
  if (options.issuer !== null && p.iss !== options.issuer) {
    return { ok: false, reason: `the issuer is not ${options.issuer}` };
  }
  if (options.audience !== null) {
    const aud = p.aud;
    const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
    if (!audiences.includes(options.audience)) {
      return { ok: false, reason: `the audience does not include ${options.audience}` };
    }
  }
  if (typeof p.sub !== 'string' || !principalPattern.test(p.sub) || p.sub === '*') {
    return { ok: false, reason: 'the token has no usable sub (1-255 printable ASCII characters, not *)' };
  }
  return { ok: true, principal: p.sub, expiresAtS: exp };
}
