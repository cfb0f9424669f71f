// The pure SASL core of the Kafka port (src/core/kafka/sasl.ts): PLAIN messages parse or are refused without
// throwing, whatever their bytes; only ApiVersions and the SASL APIs pass before authentication; a handshake
// other than v1 PLAIN is refused; the username must be the principal the password maps to; re-authentication
// keeps the principal; a JWT's exp becomes the session lifetime.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ApiKey, supportedApis } from '../../../src/core/kafka/api-keys.js';
import {
  encodePlain,
  expectsAuthenticate,
  parsePlain,
  SASL_INITIAL,
  SASL_PLAIN_BYTES_MAX,
  type SaslState,
  saslAuthenticated,
  saslGate,
  saslHandshake,
} from '../../../src/core/kafka/sasl.js';

const authed: SaslState = {
  kind: 'authenticated',
  principal: 'alice',
  sessionEndMs: null,
  reauthenticating: false,
};

describe('PLAIN messages', () => {
  test('authzid NUL username NUL password round-trips, an empty authzid too', () => {
    assert.deepEqual(parsePlain(encodePlain('', 'alice', 'tok')), {
      ok: true,
      authzid: '',
      username: 'alice',
      password: 'tok',
    });
    assert.deepEqual(parsePlain(encodePlain('alice', 'alice', 'eyJ.x.y')), {
      ok: true,
      authzid: 'alice',
      username: 'alice',
      password: 'eyJ.x.y',
    });
  });

  test('a message without two NULs, with three, or with an empty username or password is refused', () => {
    const enc = new TextEncoder();
    for (const text of [
      'alice',
      'alice\u0000pw',
      '\u0000\u0000pw',
      '\u0000alice\u0000',
      'a\u0000b\u0000c\u0000d',
    ]) {
      const parsed = parsePlain(enc.encode(text));
      assert.equal(parsed.ok, false, JSON.stringify(text));
    }
    assert.equal(parsePlain(new Uint8Array([0, 0xff, 0xfe, 0, 0x41])).ok, false, 'not UTF-8');
    assert.equal(parsePlain(new Uint8Array(SASL_PLAIN_BYTES_MAX + 1)).ok, false, 'too long');
    assert.equal(parsePlain(encodePlain('', 'x'.repeat(256), 'pw')).ok, false, 'username too long');
  });

  test('any bytes parse or are refused, never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const parsed = parsePlain(bytes);
        if (parsed.ok) assert.ok(parsed.username.length > 0 && parsed.password.length > 0);
        else assert.ok(parsed.reason.length > 0);
      }),
    );
  });
});

describe('the SASL gate', () => {
  test('with authentication off every request is served', () => {
    for (const api of supportedApis) assert.equal(saslGate(SASL_INITIAL, api.apiKey, false, 0).kind, 'serve');
  });

  test('before authentication only ApiVersions and the SASL APIs pass; anything else closes', () => {
    const open = new Set<number>([ApiKey.ApiVersions, ApiKey.SaslHandshake, ApiKey.SaslAuthenticate]);
    for (const state of [SASL_INITIAL, { kind: 'handshaken' } as const]) {
      for (const api of supportedApis) {
        const gate = saslGate(state, api.apiKey, true, 0);
        assert.equal(gate.kind, open.has(api.apiKey) ? 'serve' : 'close', `${api.name} in ${state.kind}`);
      }
    }
  });

  test('once authenticated every API is served until the session ends', () => {
    const expiring: SaslState = { ...authed, sessionEndMs: 5000 };
    assert.equal(saslGate(expiring, ApiKey.Metadata, true, 4999).kind, 'serve');
    assert.equal(saslGate(expiring, ApiKey.Metadata, true, 5000).kind, 'close');
    assert.equal(saslGate(authed, ApiKey.Produce, true, Number.MAX_SAFE_INTEGER).kind, 'serve');
  });
});

describe('the handshake', () => {
  test('v1 PLAIN is accepted first, and again once authenticated (re-authentication)', () => {
    assert.deepEqual(saslHandshake(SASL_INITIAL, 1, 'PLAIN'), {
      kind: 'accept',
      next: { kind: 'handshaken' },
    });
    const again = saslHandshake(authed, 1, 'PLAIN');
    assert.equal(again.kind, 'accept');
    assert.ok(again.kind === 'accept' && expectsAuthenticate(again.next));
    assert.ok(
      again.kind === 'accept' && again.next.kind === 'authenticated' && again.next.principal === 'alice',
    );
  });

  test('v0, another mechanism, or a second handshake before SaslAuthenticate is refused', () => {
    const v0 = saslHandshake(SASL_INITIAL, 0, 'PLAIN');
    assert.ok(v0.kind === 'refuse' && v0.errorCode === 'unsupported_version');
    const scram = saslHandshake(SASL_INITIAL, 1, 'SCRAM-SHA-256');
    assert.ok(scram.kind === 'refuse' && scram.errorCode === 'unsupported_mechanism');
    const twice = saslHandshake({ kind: 'handshaken' }, 1, 'PLAIN');
    assert.ok(twice.kind === 'refuse' && twice.errorCode === 'illegal_state');
    assert.equal(expectsAuthenticate(SASL_INITIAL), false);
    assert.equal(expectsAuthenticate(authed), false);
  });
});

describe('SaslAuthenticate outcomes', () => {
  const plain = (authzid: string, username: string) => ({ authzid, username });

  test('the username must be the principal of the password, the authzid empty or the same', () => {
    const ok = saslAuthenticated({ kind: 'handshaken' }, plain('', 'alice'), 'alice', null, 0);
    assert.deepEqual(ok, { kind: 'accept', next: authed, sessionLifetimeMs: 0 });
    assert.equal(
      saslAuthenticated({ kind: 'handshaken' }, plain('alice', 'alice'), 'alice', null, 0).kind,
      'accept',
    );
    const other = saslAuthenticated({ kind: 'handshaken' }, plain('', 'bob'), 'alice', null, 0);
    assert.ok(other.kind === 'refuse' && !other.reason.includes('alice'), 'the real principal is not told');
    assert.equal(
      saslAuthenticated({ kind: 'handshaken' }, plain('admin', 'alice'), 'alice', null, 0).kind,
      'refuse',
    );
  });

  test("a JWT's exp is the session's end and its lifetime; an expired one is refused", () => {
    const out = saslAuthenticated({ kind: 'handshaken' }, plain('', 'alice'), 'alice', 100, 40_000);
    assert.ok(out.kind === 'accept');
    assert.equal(out.sessionLifetimeMs, 60_000);
    assert.ok(out.next.kind === 'authenticated' && out.next.sessionEndMs === 100_000);
    assert.equal(
      saslAuthenticated({ kind: 'handshaken' }, plain('', 'alice'), 'alice', 100, 100_000).kind,
      'refuse',
    );
  });

  test('re-authentication keeps the principal', () => {
    const reauth: SaslState = { ...authed, reauthenticating: true };
    assert.equal(saslAuthenticated(reauth, plain('', 'alice'), 'alice', null, 0).kind, 'accept');
    assert.equal(saslAuthenticated(reauth, plain('', 'bob'), 'bob', null, 0).kind, 'refuse');
  });
});
