// The ISR change counters of /metrics: shrinks and expands between metadata snapshots are counted for the
// partitions this node leads, and an election (a new leader) is not an ISR change.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IsrTracker } from '../../src/broker/cluster-metrics.js';
import type { MetadataSnapshot, TopicMetadata } from '../../src/metadata/types.js';

function snapshot(version: number, leader: string, isr: string[]): MetadataSnapshot {
  const topic = {
    name: 't',
    topicId: 'id-t',
    numPartitions: 1,
    partitions: [
      { partition: 0, leader, leaderEpoch: 1, partitionEpoch: version, replicas: ['a', 'b', 'c'], isr },
    ],
  } as unknown as TopicMetadata;
  return { version, topics: new Map([['t', topic]]), brokers: new Map() };
}

test('ISR shrinks and expands of partitions led here are counted; elections are not', () => {
  const tracker = new IsrTracker('a');
  assert.deepEqual(tracker.observe(snapshot(1, 'a', ['a', 'b', 'c'])), { shrinks: 0, expands: 0 });
  assert.deepEqual(tracker.observe(snapshot(2, 'a', ['a', 'b'])), { shrinks: 1, expands: 0 });
  assert.deepEqual(tracker.observe(snapshot(3, 'a', ['a', 'b', 'c'])), { shrinks: 0, expands: 1 });
  assert.deepEqual(tracker.observe(snapshot(4, 'b', ['b', 'c'])), { shrinks: 0, expands: 0 }, 'an election');
  const other = new IsrTracker('c');
  other.observe(snapshot(1, 'b', ['a', 'b', 'c']));
  assert.deepEqual(other.observe(snapshot(2, 'b', ['b', 'c'])), { shrinks: 0, expands: 0 }, 'led elsewhere');
});
