// Bearer tokens against salted scrypt hashes: the file's two spellings and their refusals, a hash made by
// hashToken verifying its token and no other, and the caches (a known token answers without hashing).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseTokenFile } from '../../../src/core/security/token-file.js';
import { hashToken, TokenVerifier } from '../../../src/security/tokens.js';

// The minimum cost, so the test stays fast; the broker accepts any cost the file names.
const cheap = { costN: 1024, blockSizeR: 8, parallelismP: 1 };

describe('token file and verification', () => {
  test('JSON and line files parse to the same entries; every bad line is reported', async () => {
    const a = await hashToken('token-a', cheap);
    const b = await hashToken('token-b', cheap);
    const json = parseTokenFile(JSON.stringify({ alice: a, bob: b }));
    const lines = parseTokenFile(`# comment\n\nalice ${a}\nbob:${b}\n`);
    assert.ok(json.ok && lines.ok);
    assert.deepEqual(json.entries, lines.entries);
    const bad = parseTokenFile(`alice ${a}\nalice ${b}\n* ${a}\ncarol scrypt$3$8$1$xx$yy\njust-one-field\n`);
    assert.ok(!bad.ok);
    assert.equal(bad.problems.length, 4, bad.problems.join('\n'));
    assert.ok(!parseTokenFile('{"x": 1}').ok);
    assert.ok(!parseTokenFile('{broken').ok);
  });

  test('a token verifies as its principal, a wrong one as invalid, and both are remembered', async () => {
    const parsed = parseTokenFile(
      `alice ${await hashToken('token-a', cheap)}\nbob ${await hashToken('token-b', cheap)}\n`,
    );
    assert.ok(parsed.ok);
    const verifier = new TokenVerifier(parsed.entries);
    assert.equal(verifier.cached('token-b'), undefined);
    assert.deepEqual(await verifier.verify('token-b'), { kind: 'ok', principal: 'bob' });
    assert.deepEqual(await verifier.verify('token-a'), { kind: 'ok', principal: 'alice' });
    assert.deepEqual(await verifier.verify('token-c'), { kind: 'invalid' });
    assert.deepEqual(verifier.cached('token-b'), { kind: 'ok', principal: 'bob' });
    assert.deepEqual(verifier.cached('token-c'), { kind: 'invalid' });
    assert.deepEqual(verifier.cached('x'.repeat(5000)), { kind: 'invalid' });
  });

  test('hashes are salted: the same token hashes differently each time', async () => {
    assert.notEqual(await hashToken('same', cheap), await hashToken('same', cheap));
  });
});
