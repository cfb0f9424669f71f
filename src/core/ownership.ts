// Which partition worker of a node owns a partition, and the number that names a partition inside a node.
// Every node computes the same answer from the metadata alone (the topic's sequence number, the partition, and
// the owning node's worker count from its registration), so an acceptor routes to its own workers and a
// follower finds the leader's worker without asking anyone.
// Pure: callable from any thread.
import { assert } from './assert.js';

/** Partitions per topic at most, so that a partition key fits a safe integer. */
export const PARTITIONS_PER_TOPIC_MAX = 65_536;

/**
 * The worker index (0..workers-1) that owns `partition` of the topic numbered `topicSeq` on a node with
 * `workers` partition workers. Consecutive partitions of a topic go to consecutive workers, and topics start
 * at different workers, so load spreads.
 */
export function workerOf(topicSeq: number, partition: number, workers: number): number {
  assert(workers >= 1, 'a node has at least one partition worker');
  return (topicSeq + partition) % workers;
}

/** One number for (topic sequence, partition): a Map key that costs no string per lookup. */
export function partitionKey(topicSeq: number, partition: number): number {
  assert(partition >= 0 && partition < PARTITIONS_PER_TOPIC_MAX, `partition ${partition} out of range`);
  return topicSeq * PARTITIONS_PER_TOPIC_MAX + partition;
}
