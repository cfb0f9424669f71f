// The bearer-token file of `--auth-tokens-file`: which principal a token stands for, each token kept only as a
// salted scrypt hash. Two spellings are read:
//   JSON   {"alice": "scrypt$16384$8$1$<salt>$<hash>", "bob": "..."}
//   lines  alice scrypt$16384$8$1$<salt>$<hash>        (blank lines and lines starting with # are skipped)
// A hash is `scrypt$N$r$p$salt$hash`, salt and hash in base64url, N a power of two (2^10..2^20), r 1..32,
// p 1..16, the hash 16..64 bytes: `broker auth hash-token` writes them.
// Parsing reports every bad line at once (like the configuration). Pure; called on the main thread at start-up.

export interface ScryptHash {
  readonly costN: number;
  readonly blockSizeR: number;
  readonly parallelismP: number;
  /** base64url */
  readonly salt: string;
  /** base64url */
  readonly hash: string;
}

export interface TokenEntry {
  readonly principal: string;
  readonly hash: ScryptHash;
}

/** Entries in one file at most: each bearer token is checked against every entry until one matches. */
export const TOKEN_ENTRIES_MAX = 1000;

const principalPattern = /^[\x21-\x7e]{1,255}$/;
const base64url = /^[A-Za-z0-9_-]+$/;

/** Decoded length of unpadded base64url text. */
function base64urlBytes(text: string): number {
  return Math.floor((text.length * 3) / 4);
}

export function parseScryptHash(text: string): ScryptHash | string {
  const parts = text.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return 'a hash is scrypt$N$r$p$salt$hash';
  const [, n, r, p, salt, hash] = parts as [string, string, string, string, string, string];
  const costN = Number(n);
  const blockSizeR = Number(r);
  const parallelismP = Number(p);
  if (!/^\d+$/.test(n) || costN < 1024 || costN > 1 << 20 || (costN & (costN - 1)) !== 0) {
    return 'N must be a power of two from 1024 to 1048576';
  }
  if (!/^\d+$/.test(r) || blockSizeR < 1 || blockSizeR > 32) return 'r must be 1 to 32';
  if (!/^\d+$/.test(p) || parallelismP < 1 || parallelismP > 16) return 'p must be 1 to 16';
  if (!base64url.test(salt) || base64urlBytes(salt) < 16)
    return 'the salt must be 16 bytes or more in base64url';
  const hashBytes = base64urlBytes(hash);
  if (!base64url.test(hash) || hashBytes < 16 || hashBytes > 64)
    return 'the hash must be 16-64 bytes in base64url';
  return { costN, blockSizeR, parallelismP, salt, hash };
}

export function formatScryptHash(h: ScryptHash): string {
  return `scrypt$${h.costN}$${h.blockSizeR}$${h.parallelismP}$${h.salt}$${h.hash}`;
}

export type TokenFileResult =
  | { readonly ok: true; readonly entries: readonly TokenEntry[] }
  | { readonly ok: false; readonly problems: readonly string[] };

export function parseTokenFile(text: string): TokenFileResult {
  const problems: string[] = [];
  const pairs: [string, string, string][] = [];
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch (error) {
      return { ok: false, problems: [`not valid JSON: ${(error as Error).message}`] };
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      return { ok: false, problems: ['the JSON must be an object of principal: hash'] };
    }
    for (const [principal, hash] of Object.entries(parsed as Record<string, unknown>)) {
      if (typeof hash !== 'string') problems.push(`${principal}: the hash must be a string`);
      else pairs.push([principal, hash, `"${principal}"`]);
    }
  } else {
    for (const [i, raw] of text.split('\n').entries()) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const match = /^(\S+)[\s:]+(\S+)$/.exec(line);
      if (match === null) {
        problems.push(`line ${i + 1}: expected 'principal scrypt$...'`);
        continue;
      }
      pairs.push([match[1]!, match[2]!, `line ${i + 1}`]);
    }
  }
  const entries: TokenEntry[] = [];
  const seen = new Set<string>();
  for (const [principal, hashText, where] of pairs) {
    if (!principalPattern.test(principal) || principal === '*') {
      problems.push(`${where}: the principal must be 1-255 printable ASCII characters, not *`);
      continue;
    }
    if (seen.has(principal)) {
      problems.push(`${where}: principal ${principal} is listed twice`);
      continue;
    }
    seen.add(principal);
    const hash = parseScryptHash(hashText);
    if (typeof hash === 'string') problems.push(`${where}: ${hash}`);
    else entries.push({ principal, hash });
  }
  if (entries.length > TOKEN_ENTRIES_MAX)
    problems.push(`${entries.length} entries; at most ${TOKEN_ENTRIES_MAX}`);
  return problems.length > 0 ? { ok: false, problems } : { ok: true, entries };
}
