// Bearer tokens checked against the salted scrypt hashes of `--auth-tokens-file` (format in
// src/core/security/token-file.ts). scrypt is slow on purpose, so it runs on libuv's thread pool (async) and
// never on the acceptor's event loop, and its results are remembered: a token is keyed by its SHA-256, a
// success for as long as the file is loaded, a failure too (so a client retrying a bad token costs one hash
// per entry once, not per request). Both caches and the number of verifications in flight are bounded; past
// the bound a new token is refused as "busy" rather than queued without limit.
// Runs on the acceptor (main) thread only.
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { formatScryptHash, type ScryptHash, type TokenEntry } from '../core/security/token-file.js';

/** Remembered tokens (good and bad, each); the oldest is forgotten first. */
export const TOKEN_CACHE_ENTRIES_MAX = 10_000;
/** Tokens being hashed at once; more are refused (the client retries). */
export const TOKEN_VERIFICATIONS_MAX = 16;
/** Bearer tokens longer than this are refused unhashed. */
export const TOKEN_BYTES_MAX = 4096;

export const DEFAULT_SCRYPT = { costN: 16_384, blockSizeR: 8, parallelismP: 1 } as const;

export type TokenOutcome =
  | { readonly kind: 'ok'; readonly principal: string }
  | { readonly kind: 'invalid' }
  | { readonly kind: 'busy' };

function scryptAsync(secret: string, h: ScryptHash, keyBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(
      secret,
      Buffer.from(h.salt, 'base64url'),
      keyBytes,
      { N: h.costN, r: h.blockSizeR, p: h.parallelismP, maxmem: 256 * h.costN * h.blockSizeR + 1024 * 1024 },
      (error, key) => (error === null ? resolve(key) : reject(error)),
    );
  });
}

/** A new salted hash of `token`, in the file's format. */
export async function hashToken(
  token: string,
  params: { costN: number; blockSizeR: number; parallelismP: number } = DEFAULT_SCRYPT,
): Promise<string> {
  const salt = randomBytes(16).toString('base64url');
  const partial: ScryptHash = { ...params, salt, hash: '' };
  const key = await scryptAsync(token, partial, 32);
  return formatScryptHash({ ...partial, hash: key.toString('base64url') });
}

/** A new random token: 32 bytes, base64url. */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

export class TokenVerifier {
  /** SHA-256 of a token (base64) -> its principal, or '' for a token that matched no entry. */
  private readonly cache = new Map<string, string>();
  private readonly pending = new Map<string, Promise<TokenOutcome>>();

  constructor(private readonly entries: readonly TokenEntry[]) {}

  /** The remembered outcome for `token`, or undefined when it has to be hashed. */
  cached(token: string): TokenOutcome | undefined {
    if (token.length > TOKEN_BYTES_MAX) return { kind: 'invalid' };
    const principal = this.cache.get(digest(token));
    if (principal === undefined) return undefined;
    return principal === '' ? { kind: 'invalid' } : { kind: 'ok', principal };
  }

  verify(token: string): Promise<TokenOutcome> {
    const known = this.cached(token);
    if (known !== undefined) return Promise.resolve(known);
    const key = digest(token);
    const running = this.pending.get(key);
    if (running !== undefined) return running;
    if (this.pending.size >= TOKEN_VERIFICATIONS_MAX) return Promise.resolve({ kind: 'busy' });
    const work = this.match(token).then((principal) => {
      this.pending.delete(key);
      this.remember(key, principal ?? '');
      return principal === null ? ({ kind: 'invalid' } as const) : ({ kind: 'ok', principal } as const);
    });
    this.pending.set(key, work);
    return work;
  }

  private async match(token: string): Promise<string | null> {
    // Every entry is hashed even after a match, so the time taken says nothing about which one matched.
    let found: string | null = null;
    for (const entry of this.entries) {
      const expected = Buffer.from(entry.hash.hash, 'base64url');
      const actual = await scryptAsync(token, entry.hash, expected.byteLength);
      if (timingSafeEqual(actual, expected) && found === null) found = entry.principal;
    }
    return found;
  }

  private remember(key: string, principal: string): void {
    if (this.cache.size >= TOKEN_CACHE_ENTRIES_MAX) {
      const oldest = this.cache.keys().next().value as string;
      this.cache.delete(oldest);
    }
    this.cache.set(key, principal);
  }
}

function digest(token: string): string {
  return createHash('sha256').update(token).digest('base64');
}
