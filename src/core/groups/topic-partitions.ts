// Value types for sets of topic-partitions as the consumer-group code passes them around, and the few helpers
// that compare and convert them. Maps rather than plain objects hold them inside the core, so that a topic or
// member named `__proto__` or `constructor` is an ordinary key; plain objects appear only at the edge, built
// with `Object.fromEntries`, which defines own properties and never touches a prototype.
// Invariants of a well-formed `TopicPartitions`: keys iterate in ascending order, every array is non-empty,
// strictly ascending and holds non-negative integers. Pure: callable from any thread.

import { assert } from '../assert.js';

/** topic → sorted partitions. */
export type TopicPartitions = ReadonlyMap<string, readonly number[]>;

/** member id → the topic-partitions assigned to it. */
export type Assignment = ReadonlyMap<string, TopicPartitions>;

/** The JSON form a client sees: `{"t1":[0,2]}`. */
export type TopicPartitionsObject = Readonly<Record<string, readonly number[]>>;

export const emptyTopicPartitions: TopicPartitions = new Map();

/**
 * Orders strings by UTF-16 code units. `localeCompare` would make the order depend on the host's locale,
 * and every replica of the group state machine must compute the same assignment.
 */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Builds a well-formed `TopicPartitions` from topic → partitions in any order, dropping empty topics. */
export function normalizeTopicPartitions(
  entries: Iterable<readonly [string, Iterable<number>]>,
): Map<string, number[]> {
  const byTopic = new Map<string, Set<number>>();
  for (const [topic, partitions] of entries) {
    let set = byTopic.get(topic);
    if (set === undefined) {
      set = new Set();
      byTopic.set(topic, set);
    }
    for (const partition of partitions) {
      assert(Number.isSafeInteger(partition) && partition >= 0, `bad partition ${partition} of ${topic}`);
      set.add(partition);
    }
  }
  const out = new Map<string, number[]>();
  for (const topic of [...byTopic.keys()].sort(compareStrings)) {
    const partitions = [...byTopic.get(topic)!].sort((a, b) => a - b);
    if (partitions.length > 0) out.set(topic, partitions);
  }
  return out;
}

export function sameTopicPartitions(a: TopicPartitions, b: TopicPartitions): boolean {
  if (a.size !== b.size) return false;
  for (const [topic, partitionsA] of a) {
    const partitionsB = b.get(topic);
    if (partitionsB === undefined || partitionsB.length !== partitionsA.length) return false;
    for (let i = 0; i < partitionsA.length; i++) if (partitionsA[i] !== partitionsB[i]) return false;
  }
  return true;
}

export function countTopicPartitions(tps: TopicPartitions): number {
  let count = 0;
  for (const partitions of tps.values()) count += partitions.length;
  return count;
}

export function hasTopicPartition(tps: TopicPartitions, topic: string, partition: number): boolean {
  return tps.get(topic)?.includes(partition) ?? false;
}

/** The client-facing JSON object, keys in ascending topic order. */
export function topicPartitionsToObject(tps: TopicPartitions): TopicPartitionsObject {
  return Object.fromEntries([...tps].map(([topic, partitions]) => [topic, [...partitions]]));
}

/** The snapshot form: an array, so that any topic name survives a JSON round trip unchanged. */
export function topicPartitionsToList(tps: TopicPartitions): Array<{ topic: string; partitions: number[] }> {
  return [...tps].map(([topic, partitions]) => ({ topic, partitions: [...partitions] }));
}

export function topicPartitionsFromList(
  list: ReadonlyArray<{ readonly topic: string; readonly partitions: readonly number[] }>,
): Map<string, number[]> {
  return normalizeTopicPartitions(list.map(({ topic, partitions }) => [topic, partitions] as const));
}
