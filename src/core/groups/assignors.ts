// Partition assignors for consumer groups: pure functions from (members with their subscriptions, topic →
// partition count, previous assignment) to member → topic → sorted partitions.
//
// Invariants of every assignor's output, for any input:
// - every partition of every topic that at least one member subscribes to is assigned to exactly one member,
//   and only to a member subscribed to its topic; topics missing from `partitionCounts` count as empty;
// - every member of the input appears in the output (possibly with nothing), and nobody else does;
// - the output depends only on the input's content, not on the order of members, topics or previous entries:
//   every replica of the group state machine must compute the same assignment.
//
// - `range` is Kafka's RangeAssignor: per topic, the partitions are cut into contiguous ranges over the
//   topic's subscribers sorted by id, the first `count % subscribers` members getting one extra. Balanced per
//   topic, not across topics (a known property of Kafka's range assignor).
// - `roundRobin` is Kafka's RoundRobinAssignor: all topic-partitions sorted by (topic, partition) are dealt
//   in turn over the members sorted by id, skipping members not subscribed to the partition's topic.
// - `sticky` follows the goals of Kafka's StickyAssignor and CooperativeStickyAssignor: first balance, then
//   as few moves as possible from `previous`. Balance means no partition could move to another member
//   subscribed to its topic that holds at least two fewer partitions; among members with the same
//   subscriptions that is "counts differ by at most one". For identical subscriptions it moves exactly the
//   minimum number of partitions a balanced assignment needs (the argument is in `sticky`'s comment).
//
// Pure: callable from any thread (the control thread runs it for the group coordinator).

import { assert } from '../assert.js';
import {
  type Assignment,
  compareStrings,
  normalizeTopicPartitions,
  type TopicPartitions,
} from './topic-partitions.js';

export interface MemberSubscription {
  readonly memberId: string;
  readonly topics: readonly string[];
}

export interface AssignorInput {
  readonly members: readonly MemberSubscription[];
  /** topic → number of partitions; a topic absent here has none (not created yet, or deleted). */
  readonly partitionCounts: ReadonlyMap<string, number>;
  /** The assignment this one replaces; only `sticky` reads it. Entries that no longer fit are ignored. */
  readonly previous: Assignment;
}

export type Assignor = (input: AssignorInput) => Assignment;

/** The input in canonical order: everything sorted, subscriptions deduplicated, empty topics dropped. */
interface Canonical {
  readonly memberIds: readonly string[];
  readonly subscriptions: ReadonlyMap<string, ReadonlySet<string>>;
  /** Topics with at least one partition and at least one subscriber, sorted. */
  readonly topics: readonly string[];
  /** topic → its subscribers sorted by id. */
  readonly subscribers: ReadonlyMap<string, readonly string[]>;
  readonly partitionCounts: ReadonlyMap<string, number>;
}

function canonicalize(input: AssignorInput): Canonical {
  const memberIds = input.members.map((m) => m.memberId).sort(compareStrings);
  for (let i = 1; i < memberIds.length; i++) {
    assert(memberIds[i - 1] !== memberIds[i], `duplicate member ${memberIds[i]} in assignor input`);
  }
  for (const [topic, count] of input.partitionCounts) {
    assert(Number.isSafeInteger(count) && count >= 0, `bad partition count ${count} for ${topic}`);
  }
  const subscriptions = new Map<string, Set<string>>();
  const subscriberSets = new Map<string, string[]>();
  for (const member of input.members) subscriptions.set(member.memberId, new Set(member.topics));
  for (const memberId of memberIds) {
    for (const topic of subscriptions.get(memberId)!) {
      if ((input.partitionCounts.get(topic) ?? 0) === 0) continue;
      let list = subscriberSets.get(topic);
      if (list === undefined) {
        list = [];
        subscriberSets.set(topic, list);
      }
      list.push(memberId); // memberIds is sorted, so every list is too
    }
  }
  const topics = [...subscriberSets.keys()].sort(compareStrings);
  return {
    memberIds,
    subscriptions,
    topics,
    subscribers: subscriberSets,
    partitionCounts: input.partitionCounts,
  };
}

/** Collects member → topic → partitions and emits the canonical, sorted `Assignment`. */
class AssignmentBuilder {
  private readonly byMember = new Map<string, Map<string, number[]>>();

  constructor(memberIds: readonly string[]) {
    for (const memberId of memberIds) this.byMember.set(memberId, new Map());
  }

  add(memberId: string, topic: string, partition: number): void {
    const topics = this.byMember.get(memberId);
    assert(topics !== undefined, `assigning to unknown member ${memberId}`);
    const partitions = topics.get(topic);
    if (partitions === undefined) topics.set(topic, [partition]);
    else partitions.push(partition);
  }

  build(): Assignment {
    const out = new Map<string, TopicPartitions>();
    for (const [memberId, topics] of this.byMember) out.set(memberId, normalizeTopicPartitions(topics));
    return out;
  }
}

export function range(input: AssignorInput): Assignment {
  const c = canonicalize(input);
  const out = new AssignmentBuilder(c.memberIds);
  for (const topic of c.topics) {
    const subscribers = c.subscribers.get(topic)!;
    const count = c.partitionCounts.get(topic)!;
    const quota = Math.floor(count / subscribers.length);
    const extra = count % subscribers.length;
    let next = 0;
    subscribers.forEach((memberId, i) => {
      const size = quota + (i < extra ? 1 : 0);
      for (let p = next; p < next + size; p++) out.add(memberId, topic, p);
      next += size;
    });
    assert(next === count, `range left partitions of ${topic} unassigned`);
  }
  return out.build();
}

export function roundRobin(input: AssignorInput): Assignment {
  const c = canonicalize(input);
  const out = new AssignmentBuilder(c.memberIds);
  // The cursor walks the sorted members in a circle across all topics, as Kafka's CircularIterator does; a
  // topic with subscribers always finds one within one lap.
  let cursor = 0;
  for (const topic of c.topics) {
    const count = c.partitionCounts.get(topic)!;
    for (let p = 0; p < count; p++) {
      let steps = 0;
      while (!c.subscriptions.get(c.memberIds[cursor]!)!.has(topic)) {
        cursor = (cursor + 1) % c.memberIds.length;
        steps++;
        assert(steps <= c.memberIds.length, `no subscriber found for ${topic}`);
      }
      out.add(c.memberIds[cursor]!, topic, p);
      cursor = (cursor + 1) % c.memberIds.length;
    }
  }
  return out.build();
}

/**
 * Balanced first, sticky second. Three phases:
 * 1. Keep every previous (member, partition) pair that still fits: the member is present and subscribed, the
 *    partition exists, and no member sorted earlier already kept it.
 * 2. Hand each unowned partition, in (topic, partition) order, to the least-loaded subscriber of its topic.
 * 3. While some member X holds a partition whose topic a member Y subscribes to and X holds at least two more
 *    partitions than Y, move one such partition from the most loaded such X to the least loaded such Y. Each
 *    move lowers the sum of squared counts by at least two, so the loop ends; when it ends the assignment is
 *    balanced by definition.
 *
 * Why the moves are minimal for identical subscriptions (P partitions over M members, q = floor(P/M), r =
 * P mod M): a balanced assignment gives r members q+1 partitions and the rest q, so at most
 * (sum over the r members holding most of min(h, q+1)) + (sum over the others of min(h, q)) previous
 * holdings h survive, and every other partition must move. Phase 2 only feeds members at the current
 * minimum, which never reach the threshold of a phase 3 source; phase 3 takes only from members above
 * q+1 until they are at q+1, or from members at q+1 while the minimum is below q, and because it always
 * takes from the most loaded member, no member is cut to q while another above q+1 remains. So every kept
 * holding is min(h, q+1) for the largest holders and min(h, q) for the others: the bound is met exactly.
 * The property test checks this against the bound computed independently.
 */
export function sticky(input: AssignorInput): Assignment {
  const c = canonicalize(input);
  const owners = new Map<string, Array<string | undefined>>();
  for (const topic of c.topics) owners.set(topic, new Array(c.partitionCounts.get(topic)!).fill(undefined));
  const counts = new Map<string, number>(c.memberIds.map((id) => [id, 0]));
  const give = (memberId: string, topic: string, partition: number): void => {
    owners.get(topic)![partition] = memberId;
    counts.set(memberId, counts.get(memberId)! + 1);
  };

  // Phase 1: keep what still fits, members in id order so that conflicting claims resolve the same way on
  // every replica.
  for (const memberId of c.memberIds) {
    const previous = input.previous.get(memberId);
    if (previous === undefined) continue;
    const subscribed = c.subscriptions.get(memberId)!;
    for (const topic of [...previous.keys()].sort(compareStrings)) {
      const topicOwners = owners.get(topic);
      if (topicOwners === undefined || !subscribed.has(topic)) continue;
      for (const partition of previous.get(topic)!) {
        if (partition >= 0 && partition < topicOwners.length && topicOwners[partition] === undefined) {
          give(memberId, topic, partition);
        }
      }
    }
  }

  const leastLoaded = (candidates: readonly string[]): string => {
    let best = candidates[0]!;
    for (const memberId of candidates) if (counts.get(memberId)! < counts.get(best)!) best = memberId;
    return best; // candidates are sorted, so ties go to the smallest id
  };

  // Phase 2: orphans (new partitions, or those of members that left or unsubscribed). Within one topic only
  // this loop changes counts, so a heap of the topic's subscribers stays valid while the topic is filled.
  for (const topic of c.topics) {
    const topicOwners = owners.get(topic)!;
    if (!topicOwners.includes(undefined)) continue;
    const heap = new MemberHeap(c.subscribers.get(topic)!, counts);
    for (let p = 0; p < topicOwners.length; p++) {
      if (topicOwners[p] !== undefined) continue;
      const memberId = heap.popLeastLoaded();
      give(memberId, topic, p);
      heap.push(memberId);
    }
  }

  // Phase 3: move from the most loaded to the least loaded until no move would narrow a gap of two.
  const heldTopics = (memberId: string): string[] =>
    c.topics.filter((topic) => c.subscriptions.get(memberId)!.has(topic));
  for (;;) {
    let minCount = Number.POSITIVE_INFINITY;
    for (const count of counts.values()) minCount = Math.min(minCount, count);
    const sources = [...c.memberIds].sort((a, b) => counts.get(b)! - counts.get(a)! || compareStrings(a, b));
    let move: { from: string; to: string; topic: string } | undefined;
    for (const from of sources) {
      const fromCount = counts.get(from)!;
      if (fromCount < minCount + 2) break;
      let bestTo: string | undefined;
      let bestTopic = '';
      for (const topic of heldTopics(from)) {
        if (!owners.get(topic)!.includes(from)) continue;
        const to = leastLoaded(c.subscribers.get(topic)!);
        if (counts.get(to)! > fromCount - 2) continue;
        if (bestTo === undefined || counts.get(to)! < counts.get(bestTo)!) {
          bestTo = to;
          bestTopic = topic;
        }
      }
      if (bestTo !== undefined) {
        move = { from, to: bestTo, topic: bestTopic };
        break;
      }
    }
    if (move === undefined) break;
    const topicOwners = owners.get(move.topic)!;
    const partition = topicOwners.lastIndexOf(move.from);
    assert(partition >= 0, 'sticky chose a source that holds nothing of the topic');
    counts.set(move.from, counts.get(move.from)! - 1);
    give(move.to, move.topic, partition);
  }

  const out = new AssignmentBuilder(c.memberIds);
  for (const [topic, topicOwners] of owners) {
    topicOwners.forEach((memberId, partition) => {
      assert(memberId !== undefined, `sticky left ${topic}-${partition} unassigned`);
      out.add(memberId, topic, partition);
    });
  }
  return out.build();
}

/** A binary min-heap of members ordered by (count, id): the least-loaded subscriber in O(log n). */
class MemberHeap {
  private readonly items: string[] = [];

  constructor(
    memberIds: readonly string[],
    private readonly counts: ReadonlyMap<string, number>,
  ) {
    for (const memberId of memberIds) this.push(memberId);
  }

  push(memberId: string): void {
    const items = this.items;
    items.push(memberId);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  popLeastLoaded(): string {
    const items = this.items;
    assert(items.length > 0, 'popping an empty member heap');
    const top = items[0]!;
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let smallest = i;
        if (left < items.length && this.less(items[left]!, items[smallest]!)) smallest = left;
        if (right < items.length && this.less(items[right]!, items[smallest]!)) smallest = right;
        if (smallest === i) break;
        [items[i], items[smallest]] = [items[smallest]!, items[i]!];
        i = smallest;
      }
    }
    return top;
  }

  private less(a: string, b: string): boolean {
    const countA = this.counts.get(a)!;
    const countB = this.counts.get(b)!;
    return countA < countB || (countA === countB && a < b);
  }
}

/** The assignors a group may choose, by the name a client sends. */
export const assignors = { range, roundrobin: roundRobin, sticky } as const satisfies Record<
  string,
  Assignor
>;

export type AssignorName = keyof typeof assignors;

export function isAssignorName(name: string): name is AssignorName {
  return Object.hasOwn(assignors, name);
}
