// The acceptor's AccessControl (src/security/access.ts) with an injected clock: authentication off lets every
// request through as ANONYMOUS; the Authorization header is parsed strictly; a remembered JWT stops being
// accepted when it expires; ACL snapshots only move forward; denials are counted and their log lines limited
// to 5 a second, the rest summed into the next line.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { AclBinding } from '../../../src/core/security/acl.js';
import { AccessControl, ANONYMOUS, type Authentication } from '../../../src/security/access.js';
import { JwtVerifier, signJwt } from '../../../src/security/jwt.js';

const secret = 'access-test-secret-of-32-bytes-or-more';
const need = { resourceType: 'topic', resourceName: 'orders', operation: 'write' } as const;

function make(nowS: { value: number }, lines: Record<string, unknown>[] = []) {
  const log = pino({ level: 'warn' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return new AccessControl({
    tokens: null,
    jwt: new JwtVerifier({ algorithm: 'HS256', key: secret, audience: null, issuer: null, clockSkewS: 0 }),
    superUsers: ['root'],
    metricsRequireAuth: false,
    log,
    registry: new Registry(),
    nowS: () => nowS.value,
  });
}

function sync(a: Authentication | Promise<Authentication>): Authentication {
  assert.ok(!(a instanceof Promise));
  return a;
}

describe('AccessControl', () => {
  test('with no authentication configured every request is ANONYMOUS and allowed', () => {
    const off = new AccessControl({
      tokens: null,
      jwt: null,
      superUsers: [],
      metricsRequireAuth: false,
      log: pino({ level: 'silent' }),
      registry: new Registry(),
    });
    assert.equal(off.enabled, false);
    assert.deepEqual(sync(off.authenticate('', null)), {
      kind: 'ok',
      principal: ANONYMOUS,
      expiresAtS: null,
    });
    assert.equal(off.authorize(ANONYMOUS, [need], 'test'), null);
  });

  test('the Authorization header must be Bearer <token>; ?token= is used only without a header', () => {
    const now = { value: 1000 };
    const access = make(now);
    const good = signJwt({ sub: 'alice', exp: 2000 }, 'HS256', secret);
    assert.equal(sync(access.authenticate(`Bearer ${good}`, null)).kind, 'ok');
    assert.equal(sync(access.authenticate(`bearer   ${good}`, null)).kind, 'ok');
    assert.equal(sync(access.authenticate('', good)).kind, 'ok');
    for (const header of [`Basic ${good}`, `Bearer`, `Bearer ${good} extra`, good]) {
      assert.equal(sync(access.authenticate(header, null)).kind, 'unauthenticated', header);
    }
    assert.equal(sync(access.authenticate('Bearer nope', good)).kind, 'unauthenticated', 'the header wins');
    assert.equal(sync(access.authenticate('', null)).kind, 'unauthenticated');
  });

  test('a remembered JWT is refused once it expires', () => {
    const now = { value: 1000 };
    const access = make(now);
    const token = `Bearer ${signJwt({ sub: 'alice', exp: 1010 }, 'HS256', secret)}`;
    assert.deepEqual(sync(access.authenticate(token, null)), {
      kind: 'ok',
      principal: 'alice',
      expiresAtS: 1010,
    });
    now.value = 1009;
    assert.equal(sync(access.authenticate(token, null)).kind, 'ok');
    now.value = 1010;
    assert.equal(sync(access.authenticate(token, null)).kind, 'unauthenticated');
  });

  test('ACLs follow newer snapshots only; super users bypass them', () => {
    const access = make({ value: 0 });
    const allow: AclBinding = {
      principal: 'alice',
      resourceType: 'topic',
      patternType: 'literal',
      resourceName: 'orders',
      operation: 'write',
      permission: 'allow',
    };
    assert.notEqual(access.authorize('alice', [need], 't'), null);
    access.setAcls(5, [allow]);
    assert.equal(access.authorize('alice', [need], 't'), null);
    access.setAcls(4, []);
    assert.equal(access.authorize('alice', [need], 't'), null, 'an older snapshot is ignored');
    access.setAcls(6, []);
    assert.match(access.authorize('alice', [need], 't')?.message ?? '', /lacks topic:write on 'orders'/);
    assert.equal(access.authorize('root', [need], 't'), null);
  });

  test('denials log at most 5 lines a second; the next line says how many were not logged', () => {
    const now = { value: 100 };
    const lines: Record<string, unknown>[] = [];
    const access = make(now, lines);
    for (let i = 0; i < 20; i++) access.authorize('bob', [need], 'produce');
    assert.equal(lines.length, 5);
    now.value = 101;
    access.authorize('bob', [need], 'produce');
    assert.equal(lines.length, 6);
    assert.equal(lines[5]!.alsoDeniedNotLogged, 15);
    assert.equal(lines[0]!.msg, 'authorization denied');
  });
});
