// Builds the broker's AccessControl from its configuration at start-up: reads the token file and the JWT key
// (a file that cannot be read or parsed stops the start with every problem named), and says loudly when a
// broker listens beyond loopback with no authentication. Runs on the main thread at start-up.
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { BrokerConfig } from '../config/config.js';
import { parseTokenFile } from '../core/security/token-file.js';
import { AccessControl } from './access.js';
import { JwtVerifier } from './jwt.js';
import { TokenVerifier } from './tokens.js';

/** Seconds of clock difference tolerated between a JWT issuer and this broker for exp and nbf. */
const jwtClockSkewS = 30;

function read(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new Error(`cannot read the ${what} ${path}: ${(error as Error).message}`);
  }
}

export function accessControlFor(config: BrokerConfig, log: Logger, registry: Registry): AccessControl {
  let tokens: TokenVerifier | null = null;
  if (config.authTokensFile !== null) {
    const parsed = parseTokenFile(
      read(config.authTokensFile, 'token file (--auth-tokens-file)').toString('utf8'),
    );
    if (!parsed.ok) {
      throw new Error(`the token file ${config.authTokensFile} is not valid: ${parsed.problems.join('; ')}`);
    }
    tokens = new TokenVerifier(parsed.entries);
  }
  let jwt: JwtVerifier | null = null;
  const common = {
    audience: config.authJwtAudience,
    issuer: config.authJwtIssuer,
    clockSkewS: jwtClockSkewS,
  };
  if (config.authJwtHs256SecretFile !== null) {
    const secret = read(config.authJwtHs256SecretFile, 'JWT secret (--auth-jwt-hs256-secret-file)');
    // A trailing newline is what editors and `echo` leave; it is not part of the secret.
    const trimmed = secret.subarray(0, secret.length - (secret.at(-1) === 0x0a ? 1 : 0));
    jwt = new JwtVerifier({ algorithm: 'HS256', key: trimmed, ...common });
  } else if (config.authJwtRs256PublicKeyFile !== null) {
    const pem = read(config.authJwtRs256PublicKeyFile, 'JWT public key (--auth-jwt-rs256-public-key-file)');
    jwt = new JwtVerifier({ algorithm: 'RS256', key: pem.toString('utf8'), ...common });
  }
  const access = new AccessControl({
    tokens,
    jwt,
    superUsers: config.superUsers,
    metricsRequireAuth: config.metricsRequireAuth,
    log: log.child({ component: 'access' }),
    registry,
  });
  if (!access.enabled && !isLoopback(config.host)) {
    log.warn(
      { host: config.host },
      `AUTHENTICATION IS OFF and the client port listens on ${config.host}, beyond loopback: anyone who can reach it can read, write and delete every topic. Give --auth-tokens-file or --auth-jwt-*-file, or --host 127.0.0.1`,
    );
  }
  if (access.enabled) {
    log.info(
      { tokens: tokens !== null, jwt: jwt !== null, superUsers: config.superUsers.length },
      'authentication on: ACLs are enforced',
    );
  }
  return access;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
