// JWT verification (node:crypto only): HS256 and RS256 signatures, exp / nbf / aud / iss, and the refusals of
// the known attacks: alg none, an algorithm other than the configured one (an RS256 public key used as an
// HS256 secret), a tampered payload, and a signature of the wrong length.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';
import { checkClaims, headerProblem } from '../../../src/core/security/jwt-claims.js';
import { JwtVerifier, signJwt } from '../../../src/security/jwt.js';

const secret = Buffer.from('a-shared-secret-of-at-least-32-bytes!!');
const nowS = 1_800_000_000;
const options = { audience: null, issuer: null, clockSkewS: 30 } as const;
const hs = new JwtVerifier({ algorithm: 'HS256', key: secret, ...options });

describe('JWT verification', () => {
  test('a good HS256 token gives its sub as the principal', () => {
    const token = signJwt({ sub: 'alice', exp: nowS + 60 }, 'HS256', secret);
    assert.deepEqual(hs.verify(token, nowS), { ok: true, principal: 'alice', expiresAtS: nowS + 60 });
  });

  test('expired (beyond the skew), not yet valid, and tampered tokens are refused', () => {
    assert.match(failure(hs.verify(signJwt({ sub: 'a', exp: nowS - 31 }, 'HS256', secret), nowS)), /expired/);
    assert.equal(
      hs.verify(signJwt({ sub: 'a', exp: nowS - 5 }, 'HS256', secret), nowS).ok,
      true,
      'within skew',
    );
    assert.match(failure(hs.verify(signJwt({ sub: 'a', nbf: nowS + 120 }, 'HS256', secret), nowS)), /nbf/);
    const token = signJwt({ sub: 'alice' }, 'HS256', secret);
    const [h, , s] = token.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ sub: 'admin' })).toString('base64url')}.${s}`;
    assert.match(failure(hs.verify(forged, nowS)), /bad signature/);
    assert.match(failure(hs.verify(`${h}.${token.split('.')[1]}.${s!.slice(0, 10)}`, nowS)), /bad signature/);
    assert.match(
      failure(
        hs.verify(signJwt({ sub: 'a' }, 'HS256', Buffer.from('another-secret-of-32-bytes-or-more!!')), nowS),
      ),
      /bad signature/,
    );
  });

  test('alg none and an algorithm other than the configured one are refused before the signature', () => {
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"admin"}').toString('base64url')}.`;
    assert.match(failure(hs.verify(none, nowS)), /alg none/);
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const rs = new JwtVerifier({ algorithm: 'RS256', key: pem, ...options });
    // The classic confusion: an HS256 token whose HMAC key is the RS256 public key.
    const confused = signJwt({ sub: 'admin' }, 'HS256', Buffer.from(pem));
    assert.match(failure(rs.verify(confused, nowS)), /not the configured RS256/);
    const good = signJwt(
      { sub: 'bob', exp: nowS + 10 },
      'RS256',
      privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    );
    assert.equal(rs.verify(good, nowS).ok, true);
    assert.match(failure(hs.verify(good, nowS)), /not the configured HS256/);
  });

  test('audience and issuer are enforced when configured', () => {
    const v = new JwtVerifier({
      algorithm: 'HS256',
      key: secret,
      audience: 'broker',
      issuer: 'https://idp',
      clockSkewS: 0,
    });
    const ok = signJwt({ sub: 'a', aud: ['x', 'broker'], iss: 'https://idp' }, 'HS256', secret);
    assert.equal(v.verify(ok, nowS).ok, true);
    assert.match(
      failure(v.verify(signJwt({ sub: 'a', aud: 'x', iss: 'https://idp' }, 'HS256', secret), nowS)),
      /audience/,
    );
    assert.match(
      failure(v.verify(signJwt({ sub: 'a', aud: 'broker', iss: 'evil' }, 'HS256', secret), nowS)),
      /issuer/,
    );
  });

  test('malformed tokens and claims are values, never throws', () => {
    for (const token of ['', 'a.b', 'a.b.c.d', 'eyJ!.x.y', `${'a'.repeat(9000)}.b.c`]) {
      assert.equal(hs.verify(token, nowS).ok, false, token.slice(0, 20));
    }
    assert.equal(checkClaims({ sub: 'a', exp: 'soon' }, nowS, { ...options, algorithm: 'HS256' }).ok, false);
    assert.equal(checkClaims({ sub: '*' }, nowS, { ...options, algorithm: 'HS256' }).ok, false);
    assert.equal(checkClaims({}, nowS, { ...options, algorithm: 'HS256' }).ok, false);
    assert.match(headerProblem({ alg: 'HS256', crit: ['x'] }, 'HS256') ?? '', /crit/);
    assert.throws(() => new JwtVerifier({ algorithm: 'HS256', key: 'short', ...options }), /32 bytes/);
  });
});

function failure(result: { ok: boolean; reason?: string }): string {
  assert.equal(result.ok, false);
  return result.reason ?? '';
}
