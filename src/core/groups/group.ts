// One consumer group: its members, generation, target assignment, what each member currently owns, and its
// committed offsets. The registry (`registry.ts`) validates requests and enforces the global limits; this
// class holds the protocol.
//
// The protocol is the incremental cooperative one of Kafka's KIP-848, with the heartbeat as the only
// exchange a member has with the coordinator:
// - Every membership change (join, subscription change, leave, eviction) and every change of a subscribed
//   topic's partition count bumps `generation` and recomputes `target` with the group's assignor, using the
//   previous target as the sticky starting point.
// - `owned` of a member is exactly what its last answer (register or heartbeat) told it to consume. A
//   member's heartbeat is its acknowledgement of the generation that heartbeat returns: at that heartbeat the
//   member gives up what it owns outside its target, and receives the part of its target that no other live
//   member still owns. A partition moving from A to B therefore reaches B only after A's heartbeat at the new
//   generation (which tells A to stop) or after A's eviction; until then B's answers omit it and say
//   `rebalance: true`, so that B heartbeats again soon.
//
// Invariants (checked by `checkInvariants`, asserted after restore):
// - the `owned` sets of live members are pairwise disjoint, and `owners` indexes exactly them;
// - `owned` of a member holds only partitions that existed when they were handed out, and a member never
//   gains a partition outside its target;
// - `target` has an entry for every member and assigns no partition twice;
// - a member's `generation` is at most the group's.
//
// Pure and deterministic: time arrives as `nowMs` arguments. Called from the control thread only.

import { assert } from '../assert.js';
import { type AssignorName, assignors, isAssignorName } from './assignors.js';
import {
  type Assignment,
  compareStrings,
  emptyTopicPartitions,
  normalizeTopicPartitions,
  sameTopicPartitions,
  type TopicPartitions,
  type TopicPartitionsObject,
  topicPartitionsFromList,
  topicPartitionsToList,
  topicPartitionsToObject,
} from './topic-partitions.js';

export interface MemberState {
  readonly memberId: string;
  /** Subscribed topics, sorted and unique. */
  topics: readonly string[];
  sessionTimeoutMs: number;
  lastHeartbeatMs: number;
  /** The group generation this member's last answer carried; its commits must quote it. */
  generation: number;
  /** What the member's last answer told it to consume. */
  owned: TopicPartitions;
}

export interface CommittedOffset {
  readonly offset: number;
  readonly metadata: string;
  readonly commitTimestampMs: number;
}

export const GroupState = { empty: 'empty', stable: 'stable', rebalancing: 'rebalancing' } as const;
export type GroupState = (typeof GroupState)[keyof typeof GroupState];

/** The answer to a register or heartbeat. */
export interface MemberAnswer {
  readonly generation: number;
  /**
   * True when this answer carries a new generation or a changed assignment, or when the member still waits
   * for partitions another member has yet to release: the client applies `assignments` and heartbeats again
   * soon rather than at its normal interval.
   */
  readonly rebalance: boolean;
  readonly assignments: TopicPartitionsObject;
}

export type GroupCommitResult =
  | { readonly kind: 'ok' }
  | { readonly kind: 'unknown_member' }
  | { readonly kind: 'stale_generation'; readonly current: number }
  | { readonly kind: 'not_owner' }
  | { readonly kind: 'group_has_members'; readonly generation: number };

export interface MemberDescription {
  readonly memberId: string;
  readonly topics: readonly string[];
  readonly generation: number;
  readonly sessionTimeoutMs: number;
  readonly lastHeartbeatMs: number;
  readonly assignments: TopicPartitionsObject;
  /** Where the member is headed; differs from `assignments` while a rebalance is under way. */
  readonly target: TopicPartitionsObject;
}

export interface OffsetDescription {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly metadata: string;
  readonly commitTimestampMs: number;
  /** Log end offset minus committed offset, when the caller knows the log end offset. */
  readonly lag?: number;
  /** The member that owns the partition now, if any. */
  readonly owner?: string;
}

export interface GroupDescription {
  readonly groupId: string;
  readonly generation: number;
  readonly state: GroupState;
  readonly assignor: AssignorName;
  readonly members: readonly MemberDescription[];
  readonly offsets: readonly OffsetDescription[];
}

/** The plain, JSON-safe form of one group. Arrays, not objects, so that any name survives a round trip. */
export interface GroupSnapshot {
  readonly groupId: string;
  readonly generation: number;
  readonly assignor: AssignorName;
  readonly members: ReadonlyArray<{
    readonly memberId: string;
    readonly topics: readonly string[];
    readonly sessionTimeoutMs: number;
    readonly lastHeartbeatMs: number;
    readonly generation: number;
    readonly owned: ReadonlyArray<{ readonly topic: string; readonly partitions: readonly number[] }>;
    readonly target: ReadonlyArray<{ readonly topic: string; readonly partitions: readonly number[] }>;
  }>;
  readonly offsets: ReadonlyArray<{
    readonly topic: string;
    readonly partition: number;
    readonly offset: number;
    readonly metadata: string;
    readonly commitTimestampMs: number;
  }>;
}

/** A caller-supplied view of the logs, for lag; undefined when the partition's end offset is unknown. */
export type LogEndOffsets = (topic: string, partition: number) => number | undefined;

export class ConsumerGroup {
  generation = 0;
  private readonly members = new Map<string, MemberState>();
  private target: Assignment = new Map();
  /** topic → partition → owning member: the index of the members' `owned` sets. */
  private readonly owners = new Map<string, Map<number, string>>();
  /** topic → partition → committed offset. */
  private readonly offsets = new Map<string, Map<number, CommittedOffset>>();

  constructor(
    readonly groupId: string,
    public assignor: AssignorName,
  ) {}

  get memberCount(): number {
    return this.members.size;
  }

  hasMember(memberId: string): boolean {
    return this.members.has(memberId);
  }

  subscribes(topic: string): boolean {
    for (const member of this.members.values()) if (member.topics.includes(topic)) return true;
    return false;
  }

  /** A group with no members and no offsets holds nothing worth keeping. */
  get disposable(): boolean {
    return this.members.size === 0 && this.offsets.size === 0;
  }

  /**
   * Registers `memberId`, or refreshes it when it is already a member (a client that retries its register
   * gets the same answer and causes no rebalance). `topics` must be sorted and unique.
   */
  join(
    memberId: string,
    topics: readonly string[],
    sessionTimeoutMs: number,
    nowMs: number,
    partitionCounts: ReadonlyMap<string, number>,
  ): MemberAnswer {
    const existing = this.members.get(memberId);
    if (existing !== undefined) {
      existing.sessionTimeoutMs = sessionTimeoutMs;
      if (!sameStrings(existing.topics, topics)) {
        existing.topics = topics;
        this.rebalance(partitionCounts);
      }
      return this.heartbeat(memberId, nowMs);
    }
    this.members.set(memberId, {
      memberId,
      topics,
      sessionTimeoutMs,
      lastHeartbeatMs: nowMs,
      generation: 0,
      owned: emptyTopicPartitions,
    });
    this.rebalance(partitionCounts);
    return this.heartbeat(memberId, nowMs);
  }

  /** The member's acknowledgement of the current generation; see the protocol in the file comment. */
  heartbeat(memberId: string, nowMs: number): MemberAnswer {
    const member = this.members.get(memberId);
    assert(member !== undefined, `heartbeat from non-member ${memberId}`);
    member.lastHeartbeatMs = Math.max(member.lastHeartbeatMs, nowMs);
    const target = this.target.get(memberId) ?? emptyTopicPartitions;
    const before = member.owned;
    const next: Array<readonly [string, number[]]> = [];
    for (const [topic, partitions] of target) {
      const topicOwners = this.owners.get(topic);
      next.push([
        topic,
        partitions.filter((p) => {
          const owner = topicOwners?.get(p);
          return owner === undefined || owner === memberId;
        }),
      ]);
    }
    this.setOwned(member, normalizeTopicPartitions(next));
    const newGeneration = member.generation !== this.generation;
    member.generation = this.generation;
    return {
      generation: this.generation,
      rebalance:
        newGeneration ||
        !sameTopicPartitions(before, member.owned) ||
        !sameTopicPartitions(member.owned, target),
      assignments: topicPartitionsToObject(member.owned),
    };
  }

  leave(memberId: string, partitionCounts: ReadonlyMap<string, number>): void {
    this.remove(memberId);
    this.rebalance(partitionCounts);
  }

  /** Evicts every member whose session expired at `nowMs`, with one generation bump for all of them. */
  evictExpired(nowMs: number, partitionCounts: ReadonlyMap<string, number>): string[] {
    const expired = [...this.members.values()]
      .filter((m) => nowMs >= m.lastHeartbeatMs + m.sessionTimeoutMs)
      .map((m) => m.memberId)
      .sort(compareStrings);
    for (const memberId of expired) this.remove(memberId);
    if (expired.length > 0) this.rebalance(partitionCounts);
    return expired;
  }

  /** A subscribed topic was created, grown, shrunk or deleted: offsets past its end go, and a rebalance follows. */
  topicChanged(topic: string, partitionCounts: ReadonlyMap<string, number>): void {
    const count = partitionCounts.get(topic) ?? 0;
    const committed = this.offsets.get(topic);
    if (committed !== undefined) {
      for (const partition of [...committed.keys()]) if (partition >= count) committed.delete(partition);
      if (committed.size === 0) this.offsets.delete(topic);
    }
    if (this.subscribes(topic)) this.rebalance(partitionCounts);
  }

  /**
   * Records an offset. With a member, the generation must be the one the member's last answer carried and
   * the member must own the partition now; without one (a standalone client that manages its own
   * partitions), the group must have no members, or it would overwrite what the members commit. With
   * `record` false the commit is only checked.
   */
  commit(
    member: { readonly memberId: string; readonly generation: number } | undefined,
    topic: string,
    partition: number,
    offset: number,
    metadata: string,
    nowMs: number,
    record = true,
  ): GroupCommitResult {
    if (member === undefined) {
      if (this.members.size > 0) return { kind: 'group_has_members', generation: this.generation };
    } else {
      const state = this.members.get(member.memberId);
      if (state === undefined) return { kind: 'unknown_member' };
      if (member.generation !== state.generation)
        return { kind: 'stale_generation', current: state.generation };
      if (this.owners.get(topic)?.get(partition) !== member.memberId) return { kind: 'not_owner' };
    }
    if (record) this.record(topic, partition, offset, metadata, nowMs);
    return { kind: 'ok' };
  }

  /** Records an offset with no check (one already checked, or already durable in the metadata log). */
  record(
    topic: string,
    partition: number,
    offset: number,
    metadata: string,
    commitTimestampMs: number,
  ): void {
    let committed = this.offsets.get(topic);
    if (committed === undefined) {
      committed = new Map();
      this.offsets.set(topic, committed);
    }
    committed.set(partition, { offset, metadata, commitTimestampMs });
  }

  /** When the group's newest commit was made (0 when it holds no offsets). */
  get lastCommitMs(): number {
    let latest = 0;
    for (const partitions of this.offsets.values()) {
      for (const entry of partitions.values()) latest = Math.max(latest, entry.commitTimestampMs);
    }
    return latest;
  }

  committed(topic: string, partition: number): CommittedOffset | undefined {
    return this.offsets.get(topic)?.get(partition);
  }

  get state(): GroupState {
    if (this.members.size === 0) return GroupState.empty;
    for (const member of this.members.values()) {
      const target = this.target.get(member.memberId) ?? emptyTopicPartitions;
      if (member.generation !== this.generation || !sameTopicPartitions(member.owned, target)) {
        return GroupState.rebalancing;
      }
    }
    return GroupState.stable;
  }

  describe(logEndOffsets?: LogEndOffsets): GroupDescription {
    const members = [...this.members.values()]
      .sort((a, b) => compareStrings(a.memberId, b.memberId))
      .map(
        (m): MemberDescription => ({
          memberId: m.memberId,
          topics: [...m.topics],
          generation: m.generation,
          sessionTimeoutMs: m.sessionTimeoutMs,
          lastHeartbeatMs: m.lastHeartbeatMs,
          assignments: topicPartitionsToObject(m.owned),
          target: topicPartitionsToObject(this.target.get(m.memberId) ?? emptyTopicPartitions),
        }),
      );
    const offsets: OffsetDescription[] = [];
    for (const topic of [...this.offsets.keys()].sort(compareStrings)) {
      const committed = this.offsets.get(topic)!;
      for (const partition of [...committed.keys()].sort((a, b) => a - b)) {
        const entry = committed.get(partition)!;
        const endOffset = logEndOffsets?.(topic, partition);
        const owner = this.owners.get(topic)?.get(partition);
        offsets.push({
          topic,
          partition,
          ...entry,
          ...(endOffset === undefined ? {} : { lag: Math.max(0, endOffset - entry.offset) }),
          ...(owner === undefined ? {} : { owner }),
        });
      }
    }
    return {
      groupId: this.groupId,
      generation: this.generation,
      state: this.state,
      assignor: this.assignor,
      members,
      offsets,
    };
  }

  toSnapshot(): GroupSnapshot {
    return {
      groupId: this.groupId,
      generation: this.generation,
      assignor: this.assignor,
      members: [...this.members.values()]
        .sort((a, b) => compareStrings(a.memberId, b.memberId))
        .map((m) => ({
          memberId: m.memberId,
          topics: [...m.topics],
          sessionTimeoutMs: m.sessionTimeoutMs,
          lastHeartbeatMs: m.lastHeartbeatMs,
          generation: m.generation,
          owned: topicPartitionsToList(m.owned),
          target: topicPartitionsToList(this.target.get(m.memberId) ?? emptyTopicPartitions),
        })),
      offsets: [...this.offsets.keys()].sort(compareStrings).flatMap((topic) => {
        const committed = this.offsets.get(topic)!;
        return [...committed.keys()]
          .sort((a, b) => a - b)
          .map((partition) => ({ topic, partition, ...committed.get(partition)! }));
      }),
    };
  }

  static fromSnapshot(snapshot: GroupSnapshot): ConsumerGroup {
    assert(isAssignorName(snapshot.assignor), `snapshot names unknown assignor ${snapshot.assignor}`);
    assert(isCount(snapshot.generation), `snapshot of ${snapshot.groupId} has a bad generation`);
    const group = new ConsumerGroup(snapshot.groupId, snapshot.assignor);
    group.generation = snapshot.generation;
    const target = new Map<string, TopicPartitions>();
    for (const m of snapshot.members) {
      assert(!group.members.has(m.memberId), `snapshot repeats member ${m.memberId}`);
      assert(
        isCount(m.generation) && isCount(m.lastHeartbeatMs) && isCount(m.sessionTimeoutMs),
        `snapshot of member ${m.memberId} holds a non-integer field`,
      );
      const member: MemberState = {
        memberId: m.memberId,
        topics: [...new Set(m.topics)].sort(compareStrings),
        sessionTimeoutMs: m.sessionTimeoutMs,
        lastHeartbeatMs: m.lastHeartbeatMs,
        generation: m.generation,
        owned: emptyTopicPartitions,
      };
      group.members.set(m.memberId, member);
      group.setOwned(member, topicPartitionsFromList(m.owned));
      target.set(m.memberId, topicPartitionsFromList(m.target));
    }
    group.target = target;
    for (const o of snapshot.offsets) {
      assert(
        isCount(o.partition) && isCount(o.offset) && typeof o.metadata === 'string',
        `snapshot offset of ${o.topic} is malformed`,
      );
      let committed = group.offsets.get(o.topic);
      if (committed === undefined) {
        committed = new Map();
        group.offsets.set(o.topic, committed);
      }
      committed.set(o.partition, {
        offset: o.offset,
        metadata: o.metadata,
        commitTimestampMs: o.commitTimestampMs,
      });
    }
    group.checkInvariants();
    return group;
  }

  /** Asserts the invariants listed in the file comment; cost is linear in the group's size. */
  checkInvariants(): void {
    let indexed = 0;
    for (const member of this.members.values()) {
      assert(member.generation <= this.generation, `${member.memberId} is ahead of the group generation`);
      assert(this.target.has(member.memberId), `${member.memberId} has no target`);
      for (const [topic, partitions] of member.owned) {
        for (const p of partitions) {
          assert(
            this.owners.get(topic)?.get(p) === member.memberId,
            `${topic}-${p} not indexed to its owner`,
          );
          indexed++;
        }
      }
    }
    let total = 0;
    for (const partitions of this.owners.values()) total += partitions.size;
    assert(total === indexed, 'the owner index holds partitions no live member owns');
    const seen = new Set<string>();
    for (const [memberId, tps] of this.target) {
      assert(this.members.has(memberId), `target names non-member ${memberId}`);
      for (const [topic, partitions] of tps) {
        for (const p of partitions) {
          const key = `${topic}\u0000${p}`;
          assert(!seen.has(key), `${topic}-${p} targeted twice`);
          seen.add(key);
        }
      }
    }
  }

  private rebalance(partitionCounts: ReadonlyMap<string, number>): void {
    this.generation++;
    const members = [...this.members.values()].map((m) => ({ memberId: m.memberId, topics: m.topics }));
    this.target = assignors[this.assignor]({ members, partitionCounts, previous: this.target });
  }

  private remove(memberId: string): void {
    const member = this.members.get(memberId);
    assert(member !== undefined, `removing non-member ${memberId}`);
    this.setOwned(member, emptyTopicPartitions);
    this.members.delete(memberId);
  }

  /** Replaces what `member` owns, keeping the owner index in step and asserting exclusivity. */
  private setOwned(member: MemberState, owned: TopicPartitions): void {
    for (const [topic, partitions] of member.owned) {
      const topicOwners = this.owners.get(topic)!;
      for (const p of partitions) topicOwners.delete(p);
      if (topicOwners.size === 0) this.owners.delete(topic);
    }
    for (const [topic, partitions] of owned) {
      let topicOwners = this.owners.get(topic);
      if (topicOwners === undefined) {
        topicOwners = new Map();
        this.owners.set(topic, topicOwners);
      }
      for (const p of partitions) {
        const owner = topicOwners.get(p);
        assert(owner === undefined, `${topic}-${p} handed to ${member.memberId} while ${owner} owns it`);
        topicOwners.set(p, member.memberId);
      }
    }
    member.owned = owned;
  }
}

function isCount(value: unknown): boolean {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((s, i) => s === b[i]);
}
