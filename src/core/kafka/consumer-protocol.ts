// The "consumer" embedded protocol of Kafka's classic groups: the subscription a member sends in JoinGroup and
// the assignment it receives in SyncGroup, both opaque bytes to the group protocol (Kafka's
// ConsumerProtocolSubscription and ConsumerProtocolAssignment schemas):
//
// | subscription (v0 prefix, every version) | assignment (v0)                                      |
// |------------------------------------------|------------------------------------------------------|
// | version int16                            | version int16                                        |
// | topics [string] (int32 count)            | assigned [topic string, partitions [int32]]          |
// | userData nullable bytes, then later      | userData nullable bytes                              |
// | versions' fields (ignored here)          |                                                      |
//
// This broker assigns partitions itself (src/core/groups), so only the topics of a subscription are read, and
// an assignment is written for the partitions the coordinator gives the member.
// Pure: callable from any thread.
import { KafkaReader, KafkaWriter } from './primitives.js';

/** Subscribed topics of a subscription, or an error value for bytes that are not one. */
export function decodeSubscriptionTopics(
  metadata: Uint8Array,
  topicsMax: number,
): { kind: 'ok'; topics: string[] } | { kind: 'error'; reason: string } {
  const reader = new KafkaReader(metadata);
  const version = reader.int16();
  if (reader.error === null && version < 0) reader.fail(`subscription version ${version}`);
  const count = reader.arrayLength(false, false, 2);
  if (reader.error === null && count > topicsMax) reader.fail(`${count} topics, at most ${topicsMax}`);
  const topics: string[] = [];
  for (let i = 0; i < count && reader.error === null; i++) topics.push(reader.string(false));
  if (reader.error !== null) return { kind: 'error', reason: `subscription: ${reader.error}` };
  return { kind: 'ok', topics };
}

/** The assignment bytes for `assignments` (topic -> partitions), version 0, no user data. */
export function encodeAssignment(assignments: Readonly<Record<string, readonly number[]>>): Uint8Array {
  const writer = new KafkaWriter(64);
  // A topic with no partitions for this member is left out: clients treat a listed topic as owned.
  const topics = Object.keys(assignments)
    .filter((t) => assignments[t]!.length > 0)
    .sort();
  writer.int16(0);
  writer.arrayLength(false, topics.length);
  for (const topic of topics) {
    const partitions = assignments[topic]!;
    writer.string(false, topic);
    writer.arrayLength(false, partitions.length);
    for (const p of partitions) writer.int32(p);
  }
  writer.nullableBytes(false, null);
  return writer.finish().slice();
}
