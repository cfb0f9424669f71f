// The error registry is complete and coherent: the properties every HTTP, WebSocket and wire answer relies on.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  BrokerError,
  errorBody,
  errorNameOfCode,
  errorNames,
  errors,
  httpStatusOf,
} from '../../src/core/errors.js';

// The codes the public API contract names (api.md): the registry must answer with exactly these.
const contractCodes = [40001, 40002, 40401, 40402, 40403, 40901, 41301, 42201, 42901, 50301, 50001];
const contractCloseCodes = [4001, 4004, 4008, 4013, 4029];

describe('error registry', () => {
  test('every code is unique and has five digits', () => {
    const codes = errorNames.map((name) => errors[name].code);
    assert.equal(new Set(codes).size, codes.length, `duplicate codes in ${codes.join(',')}`);
    for (const code of codes) assert.ok(code >= 10000 && code <= 99999, `code ${code}`);
  });

  test('every HTTP status is the first three digits of its code and a 4xx or 5xx', () => {
    for (const name of errorNames) {
      const { code } = errors[name];
      const { status } = errorBody(name, 'x');
      assert.equal(status, Number(String(code).slice(0, 3)), name);
      assert.ok(status >= 400 && status <= 599, `${name} status ${status}`);
    }
  });

  test('every retriable error has a Retry-After policy, and no other error does', () => {
    for (const name of errorNames) {
      const spec = errors[name];
      if (spec.retriable) {
        assert.ok(typeof spec.retryAfterS === 'number' && spec.retryAfterS >= 0, `${name} needs Retry-After`);
        assert.equal(errorBody(name, 'x').retryAfterS, spec.retryAfterS);
      } else {
        assert.equal(spec.retryAfterS, null, `${name} is not retriable but has a Retry-After`);
        assert.equal(errorBody(name, 'x', { retryAfterS: 9 }).retryAfterS, null);
      }
    }
  });

  test('every WebSocket close code is in the application range 4000-4999', () => {
    for (const name of errorNames) {
      const close = errors[name].wsCloseCode;
      if (close !== null) assert.ok(close >= 4000 && close <= 4999, `${name} close ${close}`);
    }
  });

  test('covers every code and close code of the API contract, with 50301 retriable', () => {
    for (const code of contractCodes) assert.notEqual(errorNameOfCode(code), null, `missing ${code}`);
    const closes = new Set(errorNames.map((name) => errors[name].wsCloseCode));
    for (const close of contractCloseCodes)
      assert.ok(closes.has(close as never), `no error closes with ${close}`);
    assert.equal(errors.no_leader.code, 50301);
    assert.equal(errors.no_leader.retriable, true);
  });

  test('every entry has a one-sentence summary', () => {
    for (const name of errorNames) assert.match(errors[name].summary, /^[A-Z].+\.$/, name);
  });
});

describe('errorBody and BrokerError', () => {
  test('errorBody answers {error_code, message} with the status and marks indefinite outcomes', () => {
    assert.deepEqual(errorBody('unknown_topic', 'topic "t" does not exist'), {
      status: 404,
      retryAfterS: null,
      body: { error_code: 40401, message: 'topic "t" does not exist' },
    });
    const indefinite = errorBody('no_leader', 'leader lost mid-write', { indefinite: true });
    assert.deepEqual(indefinite.body, {
      error_code: 50301,
      message: 'leader lost mid-write',
      indefinite: true,
    });
    assert.equal(indefinite.status, 503);
    assert.equal(errorBody('quota_exceeded', 'slow down', { retryAfterS: 7 }).retryAfterS, 7);
  });

  test('errorNameOfCode maps a code back to its name and unknown codes to null', () => {
    for (const name of errorNames) assert.equal(errorNameOfCode(errors[name].code), name);
    assert.equal(errorNameOfCode(12345), null);
    assert.equal(httpStatusOf(41301), 413);
  });

  test('BrokerError carries its kind, code and cause and renders the same answer', () => {
    const cause = new Error('disk full');
    const error = new BrokerError('internal', 'append failed', { cause });
    assert.ok(error instanceof Error);
    assert.equal(error.name, 'BrokerError');
    assert.equal(error.kind, 'internal');
    assert.equal(error.code, 50001);
    assert.equal(error.cause, cause);
    assert.deepEqual(error.toAnswer(), errorBody('internal', 'append failed'));
  });
});
