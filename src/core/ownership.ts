// Which partition worker of a node owns a partition, and the number that names a partition inside a node.
// Every node computes the same answer from the metadata alone (the topic's sequence number, the partition, and
// the owning node's worker count from its registration), so an acceptor routes to its own workers and a
// follower finds the leader's worker without asking anyone.
// A node's partition-worker balancer may override the hash for some partitions (`ownerOf`); other nodes learn
// such overrides from the "moved" answers of that node's workers (`LearnedPlacements`).
// Pure: callable from any thread.
import { assert, assertionFailed } from './assert.js';

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
  // The message is built only on failure: this runs for every request.
  if (!(partition >= 0 && partition < PARTITIONS_PER_TOPIC_MAX))
    assertionFailed(`partition ${partition} out of range`);
  return topicSeq * PARTITIONS_PER_TOPIC_MAX + partition;
}

/** The partition's (topic sequence, partition) back from its key. */
export function splitPartitionKey(key: number): { readonly topicSeq: number; readonly partition: number } {
  return { topicSeq: Math.floor(key / PARTITIONS_PER_TOPIC_MAX), partition: key % PARTITIONS_PER_TOPIC_MAX };
}

/**
 * The worker that owns a partition on a node whose balancer overrode the hash for some partitions: the
 * override (partition key -> worker index) where there is one, else `workerOf`. An override out of range (a
 * table from a node with more workers) is ignored.
 */
export function ownerOf(
  topicSeq: number,
  partition: number,
  workers: number,
  overrides: ReadonlyMap<number, number>,
): number {
  if (overrides.size > 0) {
    const w = overrides.get(partitionKey(topicSeq, partition));
    if (w !== undefined && w < workers) return w;
  }
  return workerOf(topicSeq, partition, workers);
}

/**
 * What one node has learned of other nodes' overrides, from their "moved to worker j" answers: per broker, the
 * data ports it was learned under (a restart gives new ports or a new worker count, and forgets it) and the
 * partitions known to have moved. Bounded by `entriesMax` per broker (the oldest learned is forgotten: a
 * forgotten entry costs one more "moved" answer, never a wrong delivery, since every worker checks ownership).
 * Used by one thread (the acceptor's router, or one partition worker's fetch sessions).
 */
export class LearnedPlacements {
  private readonly brokers = new Map<
    string,
    { ports: readonly number[]; readonly moved: Map<number, number> }
  >();

  constructor(private readonly entriesMax = 65_536) {}

  /** The worker index of `broker` that owns the partition, as far as this node knows. */
  workerFor(
    broker: { readonly id: string; readonly dataPorts: readonly number[] },
    topicSeq: number,
    partition: number,
  ): number {
    const known = this.brokers.get(broker.id);
    const workers = broker.dataPorts.length;
    if (known === undefined || !samePorts(known.ports, broker.dataPorts))
      return workerOf(topicSeq, partition, workers);
    return ownerOf(topicSeq, partition, workers, known.moved);
  }

  /** `broker` answered that the partition is owned by its worker `worker`. */
  learn(
    broker: { readonly id: string; readonly dataPorts: readonly number[] },
    topicSeq: number,
    partition: number,
    worker: number,
  ): void {
    let known = this.brokers.get(broker.id);
    if (known === undefined || !samePorts(known.ports, broker.dataPorts)) {
      known = { ports: broker.dataPorts, moved: new Map() };
      this.brokers.set(broker.id, known);
    }
    const key = partitionKey(topicSeq, partition);
    known.moved.delete(key);
    if (worker === workerOf(topicSeq, partition, broker.dataPorts.length)) return;
    if (known.moved.size >= this.entriesMax) {
      const oldest = known.moved.keys().next().value as number;
      known.moved.delete(oldest);
    }
    known.moved.set(key, worker);
  }
}

function samePorts(a: readonly number[], b: readonly number[]): boolean {
  return a === b || (a.length === b.length && a.every((port, i) => port === b[i]));
}
