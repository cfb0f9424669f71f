// Test helpers for authentication and ACLs: every route the broker serves (built from the route table with
// stub handlers, so a new route shows up here by itself), a token file with cheap scrypt hashes, a JWT secret,
// and requests with a bearer token. Used by the process tests in this directory.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Acceptor } from '../../src/broker/acceptor.js';
import type { AclAdmin } from '../../src/broker/acl-admin.js';
import type { GroupAdmin } from '../../src/broker/group-admin.js';
import type { GroupsService } from '../../src/broker/groups-service.js';
import type { MoveAdmin } from '../../src/broker/move-admin.js';
import type { TopicAdmin } from '../../src/broker/topic-admin.js';
import type { WorkerMoves } from '../../src/broker/worker-moves.js';
import { buildAclRoutes } from '../../src/http/acl-routes.js';
import { buildMoveRoutes } from '../../src/http/move-routes.js';
import { buildOpsRoutes } from '../../src/http/ops-routes.js';
import { buildRoutes } from '../../src/http/routes.js';
import type { Route } from '../../src/http/server.js';
import { buildWorkerRoutes } from '../../src/http/worker-routes.js';
import { signJwt } from '../../src/security/jwt.js';
import { hashToken } from '../../src/security/tokens.js';

/** Every HTTP route of the broker, as start.ts assembles them (handlers are never called here). */
export function allRoutes(): Route[] {
  const stub = () => undefined;
  return [
    ...buildRoutes({} as Acceptor, {} as GroupsService, {
      health: stub,
      clusterStatus: stub,
      metrics: stub,
      assignmentPlan: stub,
      openapi: stub,
    }),
    ...buildOpsRoutes({} as TopicAdmin, {} as GroupAdmin),
    ...buildMoveRoutes({} as MoveAdmin),
    ...buildWorkerRoutes({} as WorkerMoves),
    ...buildAclRoutes({} as AclAdmin),
  ];
}

/** A concrete path for a route pattern: its parameters filled from `values` (by parameter name). */
export function pathOf(route: Route, values: Record<string, string>): string {
  return route.pattern.replace(/:([a-zA-Z_]+)/g, (_m, name: string) =>
    encodeURIComponent(values[name] ?? 'x'),
  );
}

export const JWT_SECRET = 'a-test-secret-for-hs256-of-at-least-32-bytes';
export const TOKENS = { admin: 'admin-token', alice: 'alice-token', bob: 'bob-token' } as const;

/** A directory with `tokens` (cheap scrypt: tests only) and `jwt-secret`; the broker flags that use them. */
export async function authFiles(): Promise<{ dir: string; flags: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'broker-auth-'));
  const lines = await Promise.all(
    Object.entries(TOKENS).map(
      async ([principal, token]) =>
        `${principal} ${await hashToken(token, { costN: 1024, blockSizeR: 8, parallelismP: 1 })}`,
    ),
  );
  writeFileSync(join(dir, 'tokens'), `${lines.join('\n')}\n`);
  writeFileSync(join(dir, 'jwt-secret'), `${JWT_SECRET}\n`);
  return {
    dir,
    flags: [
      '--auth-tokens-file',
      join(dir, 'tokens'),
      '--auth-jwt-hs256-secret-file',
      join(dir, 'jwt-secret'),
      '--super-users',
      'admin',
    ],
  };
}

export function jwtFor(sub: string, expiresInS: number): string {
  return signJwt({ sub, exp: Math.floor(Date.now() / 1000) + expiresInS }, 'HS256', JWT_SECRET);
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}
