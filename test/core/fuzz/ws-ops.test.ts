// Fuzzing the WebSocket frame parsers, the acks and consume query strings and the operators' and ACL bodies:
// every property of ws-ops-properties.ts, plus the regression tests of the failures they found.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { filterFromFields } from '../../../src/core/security/acl.js';
import { isWellFormed } from '../../../src/core/utf8.js';
import { parseOffsetReset, parseTopicAlter } from '../../../src/http/ops-bodies.js';
import { parseAcks, parseConsumeQuery } from '../../../src/http/params.js';
import { closeReason, parseConsumeFrame, parseGroupFrame } from '../../../src/http/ws-frames.js';
import { assertProperty } from './fuzz-support.js';
import { wsOpsProperties } from './ws-ops-properties.js';

describe('WebSocket frames, query strings and operators\u2019 bodies under fuzzing', () => {
  for (const property of wsOpsProperties) test(property.name, () => assertProperty(property));
});

describe('regressions found by fuzzing frames, query strings and operators\u2019 bodies', () => {
  test('a group commit frame with a negative, fractional or huge offset or partition is refused', () => {
    for (const [partition, offset] of [
      [0, -1],
      [0, 1.5],
      [0, 1e300],
      [-1, 0],
      [0.5, 0],
      [2 ** 31, 0],
    ] as const) {
      const frame = parseGroupFrame(JSON.stringify({ type: 'commit', topic: 't', partition, offset }));
      assert.equal(typeof frame, 'string', `partition ${partition}, offset ${offset}`);
    }
    assert.deepEqual(parseGroupFrame('{"type":"commit","topic":"t","partition":2,"offset":7}'), {
      type: 'commit',
      topic: 't',
      partition: 2,
      offset: 7,
    });
  });

  test('an ACL filter field named constructor or __proto__ is unknown, not a TypeError (a 500 on GET /admin/acls)', () => {
    for (const key of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const fields = JSON.parse(`{${JSON.stringify(key)}:"x"}`) as Record<string, unknown>;
      assert.equal(filterFromFields(fields), `unknown ACL filter field '${key}'`);
    }
  });

  test('a config change naming __proto__ or toString is refused as an unknown setting, named', () => {
    for (const key of ['__proto__', 'toString', 'constructor']) {
      const result = parseTopicAlter(JSON.parse(`{${JSON.stringify(key)}:1}`), 3);
      assert.equal(result.kind, 'error');
      if (result.kind === 'error')
        assert.match(result.message, new RegExp(`unknown config setting '${key}'`));
    }
  });

  test('a config change or offset reset with a value nested 2*10^5 deep is a short refusal, not a stack overflow', () => {
    const deep = JSON.parse(`${'['.repeat(200_000)}${']'.repeat(200_000)}`) as unknown;
    const alter = parseTopicAlter({ retention_ms: deep }, 3);
    assert.deepEqual(alter, {
      kind: 'error',
      message: 'retention_ms must be an integer >= -1 (-1 keeps segments forever), got an array',
    });
    const reset = parseOffsetReset({ topic: 't', to: deep }, 3);
    assert.equal(reset.kind, 'error');
    if (reset.kind === 'error') assert.match(reset.message, /to must be one of .*, got an array/);
    // Forty unknown settings with long names: the first eight are named, then how many more.
    const many = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`${i}`.padEnd(400, 'k'), 1]));
    const named = parseTopicAlter(many, 3);
    assert.ok(
      named.kind === 'error' && named.message.length < 2048 && /and 32 more problems$/.test(named.message),
    );
  });

  test('a consume frame of lone surrogates closes with a well-formed reason, not an invalid close frame (1006)', () => {
    // JSON.parse names the first bad token: here half of a surrogate pair.
    const refusal = parseConsumeFrame('\u{7f8d8}\u{1ce18}');
    assert.equal(typeof refusal, 'string');
    const reason = closeReason(refusal as string);
    assert.ok(!isWellFormed(refusal as string) && isWellFormed(reason));
    // 120 characters of three bytes each were cut to 41, not sent as 360 bytes.
    assert.equal(closeReason('\u20ac'.repeat(120)), '\u20ac'.repeat(41));
  });

  test('a refused acks or consume value is named in a short sentence, not echoed whole', () => {
    const huge = 'x'.repeat(1_000_000);
    const acks = parseAcks(`acks=${huge}`);
    assert.ok(typeof acks === 'string' && acks.length < 200, 'acks');
    for (const key of ['offset', 'limit', 'isolation', 'value_format']) {
      const parsed = parseConsumeQuery(`${key}=${huge}`, { maxBytesCap: 1024, maxWaitMs: 10 });
      assert.ok('kind' in parsed && parsed.message.length < 200, key);
    }
  });
});
