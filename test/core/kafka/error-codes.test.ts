// The Kafka error-code table is coherent: unique codes, the success code, and the retriable flags clients rely
// on for the conditions this broker reports while a cluster changes (leader moves, elections, ISR shrinking).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type KafkaErrorName, kafkaErrorName, kafkaErrors } from '../../../src/core/kafka/error-codes.js';

describe('Kafka error codes', () => {
  test('codes are unique and each maps back to its name', () => {
    const names = Object.keys(kafkaErrors) as KafkaErrorName[];
    const codes = names.map((name) => kafkaErrors[name].code);
    assert.equal(new Set(codes).size, codes.length);
    for (const name of names) assert.equal(kafkaErrorName(kafkaErrors[name].code), name);
    assert.equal(kafkaErrorName(12345), undefined);
  });

  test('NONE is 0 and not retriable; the codes of a moving cluster are retriable, the codes of bad input are not', () => {
    assert.deepEqual(kafkaErrors.NONE, { code: 0, retriable: false, summary: 'No error.' });
    for (const name of [
      'NOT_LEADER_OR_FOLLOWER',
      'LEADER_NOT_AVAILABLE',
      'NOT_COORDINATOR',
      'COORDINATOR_NOT_AVAILABLE',
      'NOT_ENOUGH_REPLICAS',
      'REQUEST_TIMED_OUT',
      'UNKNOWN_TOPIC_OR_PARTITION',
    ] as const) {
      assert.equal(kafkaErrors[name].retriable, true, name);
    }
    for (const name of [
      'INVALID_REQUIRED_ACKS',
      'TOPIC_ALREADY_EXISTS',
      'UNSUPPORTED_VERSION',
      'INVALID_TOPIC_EXCEPTION',
    ] as const) {
      assert.equal(kafkaErrors[name].retriable, false, name);
    }
  });
});
