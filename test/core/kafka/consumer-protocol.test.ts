// The consumer protocol's subscription and assignment bytes, as Kafka clients write and read them.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeSubscriptionTopics, encodeAssignment } from '../../../src/core/kafka/consumer-protocol.js';

const hex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text.replace(/\s/g, ''), 'hex'));
const ascii = (text: string): string => Buffer.from(text).toString('hex');

describe('consumer protocol', () => {
  test('a subscription of any version yields its topics (later fields are ignored)', () => {
    // v1: version 1, topics ["a", "bc"], userData null, ownedPartitions [] (ignored).
    const bytes = hex(`0001 00000002 0001${ascii('a')} 0002${ascii('bc')} ffffffff 00000000`);
    assert.deepEqual(decodeSubscriptionTopics(bytes, 10), { kind: 'ok', topics: ['a', 'bc'] });
  });

  test('a subscription that lies about its lengths or names too many topics is an error value', () => {
    assert.equal(decodeSubscriptionTopics(hex('0000 7fffffff'), 10).kind, 'error');
    assert.equal(decodeSubscriptionTopics(hex(`0000 00000001 0009${ascii('a')}`), 10).kind, 'error');
    assert.equal(
      decodeSubscriptionTopics(hex(`0000 00000002 0001${ascii('a')} 0001${ascii('b')}`), 1).kind,
      'error',
    );
    assert.equal(decodeSubscriptionTopics(hex('ff'), 10).kind, 'error');
  });

  test('an assignment is version 0, topics sorted, empty topics left out, null user data', () => {
    const bytes = encodeAssignment({ t2: [3], t1: [0, 1], none: [] });
    assert.equal(
      Buffer.from(bytes).toString('hex'),
      `0000 00000002 0002${ascii('t1')} 00000002 00000000 00000001 0002${ascii('t2')} 00000001 00000003 ffffffff`.replace(
        /\s/g,
        '',
      ),
    );
  });
});
