// The group coordinator: every consumer group of the cluster, the partition counts of the topics they read,
// and the one entry point `apply(command)` through which all changes pass. Commands and results are plain
// values, so that the same commands can later travel through the Raft log and every replica reaches the same
// state; `toSnapshot()` / `fromSnapshot()` turn the whole state into a JSON-safe value and back, for the
// broker to persist committed offsets across restarts and for Raft snapshots.
//
// Validation and limits live here; the protocol lives in `group.ts`. Request problems (an empty id, a
// session timeout out of range, a full group) come back as values for the HTTP layer to map to status codes;
// a malformed command from the shell (a non-finite `nowMs`) is a bug and fails an assertion.
//
// Time: each command carries `nowMs`. The coordinator keeps `clockMs`, the largest time it has seen, and uses
// it whenever a command's time is earlier, because commands replayed from a log written by several leaders
// may carry clocks that disagree; time inside the state machine therefore never runs backwards.
//
// Pure and deterministic. Called from the control thread only.

import { assert, unreachable } from '../assert.js';
import { type AssignorName, isAssignorName } from './assignors.js';
import {
  ConsumerGroup,
  type GroupCommitResult,
  type GroupDescription,
  type GroupSnapshot,
  type LogEndOffsets,
  type MemberAnswer,
} from './group.js';
import { compareStrings } from './topic-partitions.js';

export interface GroupConfig {
  /** Groups the coordinator holds, counting empty groups that keep committed offsets. */
  readonly groupsMax: number;
  readonly membersPerGroupMax: number;
  readonly topicsPerMemberMax: number;
  /** Kafka's consumer default of 10 s: three missed heartbeats at the usual 3 s interval, plus slack. */
  readonly sessionTimeoutMsDefault: number;
  /** Kafka's group.min.session.timeout.ms is 6 s; lower values are allowed for tests and local use. */
  readonly sessionTimeoutMsMin: number;
  /** Kafka's group.max.session.timeout.ms is 30 min; a dead member holds its partitions this long at most. */
  readonly sessionTimeoutMsMax: number;
  /** Length of group ids, member ids and topic names. */
  readonly idCharsMax: number;
  /** Length of the free-form metadata stored with a committed offset (Kafka's offset.metadata.max.bytes). */
  readonly commitMetadataCharsMax: number;
  readonly defaultAssignor: AssignorName;
}

export const defaultGroupConfig: GroupConfig = {
  groupsMax: 10_000,
  membersPerGroupMax: 1_000,
  topicsPerMemberMax: 1_000,
  sessionTimeoutMsDefault: 10_000,
  sessionTimeoutMsMin: 1_000,
  sessionTimeoutMsMax: 1_800_000,
  idCharsMax: 249,
  commitMetadataCharsMax: 4_096,
  defaultAssignor: 'sticky',
};

/** Every problem with `config`, empty when it is valid. */
export function validateGroupConfig(config: GroupConfig): string[] {
  const problems: string[] = [];
  const positive = (name: keyof GroupConfig): void => {
    const value = config[name];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
      problems.push(`${name} must be a positive integer, got ${String(value)}`);
    }
  };
  positive('groupsMax');
  positive('membersPerGroupMax');
  positive('topicsPerMemberMax');
  positive('sessionTimeoutMsDefault');
  positive('sessionTimeoutMsMin');
  positive('sessionTimeoutMsMax');
  positive('idCharsMax');
  positive('commitMetadataCharsMax');
  if (config.sessionTimeoutMsMin > config.sessionTimeoutMsMax) {
    problems.push('sessionTimeoutMsMin must not exceed sessionTimeoutMsMax');
  }
  if (
    config.sessionTimeoutMsDefault < config.sessionTimeoutMsMin ||
    config.sessionTimeoutMsDefault > config.sessionTimeoutMsMax
  ) {
    problems.push('sessionTimeoutMsDefault must lie within [sessionTimeoutMsMin, sessionTimeoutMsMax]');
  }
  if (!isAssignorName(config.defaultAssignor))
    problems.push(`unknown defaultAssignor ${config.defaultAssignor}`);
  return problems;
}

export type GroupCommand =
  | {
      readonly kind: 'join';
      readonly groupId: string;
      readonly memberId: string;
      readonly topics: readonly string[];
      /** Defaults to `sessionTimeoutMsDefault`. */
      readonly sessionTimeoutMs?: number | undefined;
      /** The assignor the member asks for; the first member of an empty group chooses for all. */
      readonly assignor?: string | undefined;
      readonly nowMs: number;
    }
  | {
      readonly kind: 'heartbeat';
      readonly groupId: string;
      readonly memberId: string;
      readonly nowMs: number;
    }
  | { readonly kind: 'leave'; readonly groupId: string; readonly memberId: string; readonly nowMs: number }
  | {
      readonly kind: 'commit';
      readonly groupId: string;
      /** Both absent for a standalone client, both present for a member. */
      readonly memberId?: string | undefined;
      readonly generation?: number | undefined;
      readonly topic: string;
      readonly partition: number;
      readonly offset: number;
      readonly metadata?: string | undefined;
      /**
       * Checks the commit as it would be made, without recording it: a cluster's coordinator records an
       * offset (`record_offsets`) only once the metadata log holds it, so nobody reads an offset a failover
       * could take back.
       */
      readonly checkOnly?: boolean | undefined;
      readonly nowMs: number;
    }
  /**
   * Offsets already durable elsewhere (the metadata log): recorded as they are, with no check of members or
   * generations, since the log holds them whatever the group looks like now. Partitions the topic no longer
   * has are skipped, as a shrinking topic drops them.
   */
  | {
      readonly kind: 'record_offsets';
      readonly groupId: string;
      /** The same entries a group's snapshot holds. */
      readonly offsets: GroupSnapshot['offsets'];
      readonly nowMs: number;
    }
  | { readonly kind: 'tick'; readonly nowMs: number }
  /** The metadata layer reports a topic's partition count; 0 means the topic was deleted. */
  | {
      readonly kind: 'set_topic_partitions';
      readonly topic: string;
      readonly partitionCount: number;
      readonly nowMs: number;
    }
  /** Kafka's DeleteGroups: drops an empty group and its committed offsets. */
  | { readonly kind: 'delete_group'; readonly groupId: string; readonly nowMs: number };

export type InvalidRequest = { readonly kind: 'invalid_request'; readonly reason: string };
export type UnknownGroup = { readonly kind: 'unknown_group' };
export type UnknownMember = { readonly kind: 'unknown_member' };

export type JoinResult =
  | ({
      readonly kind: 'ok';
      readonly groupId: string;
      readonly memberId: string;
      readonly sessionTimeoutMs: number;
    } & MemberAnswer)
  | InvalidRequest
  | { readonly kind: 'too_many_groups'; readonly groupsMax: number }
  | { readonly kind: 'group_full'; readonly membersPerGroupMax: number }
  | { readonly kind: 'inconsistent_assignor'; readonly assignor: AssignorName };

export type HeartbeatResult = ({ readonly kind: 'ok' } & MemberAnswer) | UnknownGroup | UnknownMember;

export type LeaveResult = { readonly kind: 'ok'; readonly generation: number } | UnknownGroup | UnknownMember;

export type CommitResult =
  | GroupCommitResult
  | InvalidRequest
  | UnknownGroup
  | { readonly kind: 'unknown_partition' }
  | { readonly kind: 'too_many_groups'; readonly groupsMax: number };

export type TickResult = {
  readonly kind: 'ok';
  readonly evicted: ReadonlyArray<{ readonly groupId: string; readonly memberId: string }>;
};

export type SetTopicPartitionsResult = { readonly kind: 'ok' } | InvalidRequest;

export type DeleteGroupResult =
  | { readonly kind: 'ok' }
  | UnknownGroup
  | { readonly kind: 'group_has_members'; readonly generation: number };

export interface GroupCommandResults {
  readonly join: JoinResult;
  readonly heartbeat: HeartbeatResult;
  readonly leave: LeaveResult;
  readonly commit: CommitResult;
  readonly record_offsets: { readonly kind: 'ok' };
  readonly tick: TickResult;
  readonly set_topic_partitions: SetTopicPartitionsResult;
  readonly delete_group: DeleteGroupResult;
}

export type GroupCommandResult<C extends GroupCommand = GroupCommand> = GroupCommandResults[C['kind']];

/** The whole coordinator state as a JSON-safe value. */
export interface GroupsSnapshot {
  readonly version: 1;
  readonly clockMs: number;
  readonly topics: ReadonlyArray<{ readonly topic: string; readonly partitionCount: number }>;
  readonly groups: readonly GroupSnapshot[];
}

export class GroupRegistry {
  private readonly groups = new Map<string, ConsumerGroup>();
  private readonly partitionCounts = new Map<string, number>();
  private clockMs = 0;

  constructor(readonly config: GroupConfig = defaultGroupConfig) {
    const problems = validateGroupConfig(config);
    assert(problems.length === 0, `invalid group config: ${problems.join('; ')}`);
  }

  /** The single entry point for changes; the methods below are shorthands that build the command. */
  apply<C extends GroupCommand>(command: C): GroupCommandResult<C> {
    assert(Number.isFinite(command.nowMs), `command ${command.kind} without a finite nowMs`);
    this.clockMs = Math.max(this.clockMs, command.nowMs);
    const result = this.dispatch(command);
    return result as GroupCommandResult<C>;
  }

  join(
    groupId: string,
    memberId: string,
    topics: readonly string[],
    nowMs: number,
    sessionTimeoutMs?: number,
    assignor?: string,
  ): JoinResult {
    return this.apply({ kind: 'join', groupId, memberId, topics, sessionTimeoutMs, assignor, nowMs });
  }

  heartbeat(groupId: string, memberId: string, nowMs: number): HeartbeatResult {
    return this.apply({ kind: 'heartbeat', groupId, memberId, nowMs });
  }

  leave(groupId: string, memberId: string, nowMs: number): LeaveResult {
    return this.apply({ kind: 'leave', groupId, memberId, nowMs });
  }

  /** `memberId` and `generation` both undefined for a standalone client. */
  commit(
    groupId: string,
    memberId: string | undefined,
    generation: number | undefined,
    topic: string,
    partition: number,
    offset: number,
    nowMs: number,
    metadata?: string,
    checkOnly?: boolean,
  ): CommitResult {
    return this.apply({
      kind: 'commit',
      groupId,
      memberId,
      generation,
      topic,
      partition,
      offset,
      metadata,
      checkOnly,
      nowMs,
    });
  }

  tick(nowMs: number): TickResult {
    return this.apply({ kind: 'tick', nowMs });
  }

  setTopicPartitions(topic: string, partitionCount: number, nowMs: number): SetTopicPartitionsResult {
    return this.apply({ kind: 'set_topic_partitions', topic, partitionCount, nowMs });
  }

  describe(groupId: string, logEndOffsets?: LogEndOffsets): GroupDescription | undefined {
    return this.groups.get(groupId)?.describe(logEndOffsets);
  }

  /** Group ids in ascending order. */
  listGroups(): string[] {
    return [...this.groups.keys()].sort(compareStrings);
  }

  /**
   * Groups whose committed offsets have expired at `nowMs` (Kafka's offsets.retention.minutes): no members,
   * and the newest commit older than `retentionMs`. The caller deletes them (delete_group) durably.
   */
  expiredGroups(nowMs: number, retentionMs: number): string[] {
    if (retentionMs < 0) return [];
    return this.listGroups().filter((groupId) => {
      const group = this.groups.get(groupId)!;
      return group.memberCount === 0 && group.lastCommitMs > 0 && nowMs - group.lastCommitMs >= retentionMs;
    });
  }

  /** The committed offset of one partition, for a consumer that resumes. */
  committedOffset(groupId: string, topic: string, partition: number): number | undefined {
    return this.groups.get(groupId)?.committed(topic, partition)?.offset;
  }

  toSnapshot(): GroupsSnapshot {
    return {
      version: 1,
      clockMs: this.clockMs,
      topics: [...this.partitionCounts.keys()]
        .sort(compareStrings)
        .map((topic) => ({ topic, partitionCount: this.partitionCounts.get(topic)! })),
      groups: this.listGroups().map((groupId) => this.groups.get(groupId)!.toSnapshot()),
    };
  }

  static fromSnapshot(snapshot: GroupsSnapshot, config: GroupConfig = defaultGroupConfig): GroupRegistry {
    assert(snapshot.version === 1, `unknown groups snapshot version ${String(snapshot.version)}`);
    const registry = new GroupRegistry(config);
    registry.clockMs = snapshot.clockMs;
    for (const { topic, partitionCount } of snapshot.topics)
      registry.partitionCounts.set(topic, partitionCount);
    for (const groupSnapshot of snapshot.groups) {
      assert(!registry.groups.has(groupSnapshot.groupId), `snapshot repeats group ${groupSnapshot.groupId}`);
      registry.groups.set(groupSnapshot.groupId, ConsumerGroup.fromSnapshot(groupSnapshot));
    }
    return registry;
  }

  /** Asserts every group's invariants; for tests and for checks after restore. */
  checkInvariants(): void {
    for (const group of this.groups.values()) group.checkInvariants();
  }

  private dispatch(command: GroupCommand): GroupCommandResult {
    const nowMs = this.clockMs;
    switch (command.kind) {
      case 'join':
        return this.applyJoin(command, nowMs);
      case 'heartbeat': {
        const group = this.groups.get(command.groupId);
        if (group === undefined) return { kind: 'unknown_group' };
        if (!group.hasMember(command.memberId)) return { kind: 'unknown_member' };
        return { kind: 'ok', ...group.heartbeat(command.memberId, nowMs) };
      }
      case 'leave': {
        const group = this.groups.get(command.groupId);
        if (group === undefined) return { kind: 'unknown_group' };
        if (!group.hasMember(command.memberId)) return { kind: 'unknown_member' };
        group.leave(command.memberId, this.partitionCounts);
        const generation = group.generation;
        if (group.disposable) this.groups.delete(command.groupId);
        return { kind: 'ok', generation };
      }
      case 'commit':
        return this.applyCommit(command, nowMs);
      case 'record_offsets': {
        const problem = this.checkId('groupId', command.groupId);
        assert(problem === undefined, `record_offsets for a bad group id: ${problem?.reason}`);
        const group =
          this.groups.get(command.groupId) ?? new ConsumerGroup(command.groupId, this.config.defaultAssignor);
        for (const o of command.offsets) {
          if (o.partition >= (this.partitionCounts.get(o.topic) ?? 0)) continue;
          group.record(o.topic, o.partition, o.offset, o.metadata, o.commitTimestampMs);
        }
        if (!group.disposable) this.groups.set(command.groupId, group);
        return { kind: 'ok' };
      }
      case 'tick': {
        const evicted: Array<{ groupId: string; memberId: string }> = [];
        for (const groupId of this.listGroups()) {
          const group = this.groups.get(groupId)!;
          for (const memberId of group.evictExpired(nowMs, this.partitionCounts))
            evicted.push({ groupId, memberId });
          if (group.disposable) this.groups.delete(groupId);
        }
        return { kind: 'ok', evicted };
      }
      case 'set_topic_partitions': {
        const { topic, partitionCount } = command;
        const idProblem = this.checkId('topic', topic);
        if (idProblem !== undefined) return idProblem;
        if (!Number.isSafeInteger(partitionCount) || partitionCount < 0) {
          return { kind: 'invalid_request', reason: 'partitionCount must be a non-negative integer' };
        }
        if ((this.partitionCounts.get(topic) ?? 0) === partitionCount) return { kind: 'ok' };
        if (partitionCount === 0) this.partitionCounts.delete(topic);
        else this.partitionCounts.set(topic, partitionCount);
        for (const groupId of this.listGroups()) {
          const group = this.groups.get(groupId)!;
          group.topicChanged(topic, this.partitionCounts);
          if (group.disposable) this.groups.delete(groupId);
        }
        return { kind: 'ok' };
      }
      case 'delete_group': {
        const group = this.groups.get(command.groupId);
        if (group === undefined) return { kind: 'unknown_group' };
        if (group.memberCount > 0) return { kind: 'group_has_members', generation: group.generation };
        this.groups.delete(command.groupId);
        return { kind: 'ok' };
      }
      default:
        return unreachable(command, 'group command');
    }
  }

  private applyJoin(command: Extract<GroupCommand, { kind: 'join' }>, nowMs: number): JoinResult {
    const { groupId, memberId } = command;
    const config = this.config;
    const problem = this.checkId('groupId', groupId) ?? this.checkId('memberId', memberId);
    if (problem !== undefined) return problem;
    if (command.topics.length === 0) return { kind: 'invalid_request', reason: 'topics must not be empty' };
    if (command.topics.length > config.topicsPerMemberMax) {
      return { kind: 'invalid_request', reason: `at most ${config.topicsPerMemberMax} topics per member` };
    }
    for (const topic of command.topics) {
      const topicProblem = this.checkId('topic', topic);
      if (topicProblem !== undefined) return topicProblem;
    }
    const sessionTimeoutMs = command.sessionTimeoutMs ?? config.sessionTimeoutMsDefault;
    if (
      !Number.isSafeInteger(sessionTimeoutMs) ||
      sessionTimeoutMs < config.sessionTimeoutMsMin ||
      sessionTimeoutMs > config.sessionTimeoutMsMax
    ) {
      return {
        kind: 'invalid_request',
        reason: `sessionTimeoutMs must be an integer in [${config.sessionTimeoutMsMin}, ${config.sessionTimeoutMsMax}]`,
      };
    }
    if (command.assignor !== undefined && !isAssignorName(command.assignor)) {
      return { kind: 'invalid_request', reason: `unknown assignor ${command.assignor}` };
    }
    const topics = [...new Set(command.topics)].sort(compareStrings);

    let group = this.groups.get(groupId);
    if (group === undefined) {
      if (this.groups.size >= config.groupsMax)
        return { kind: 'too_many_groups', groupsMax: config.groupsMax };
      group = new ConsumerGroup(groupId, command.assignor ?? config.defaultAssignor);
    } else if (!group.hasMember(memberId)) {
      if (group.memberCount >= config.membersPerGroupMax) {
        return { kind: 'group_full', membersPerGroupMax: config.membersPerGroupMax };
      }
      // An empty group has no protocol yet: the first member chooses, as in Kafka's JoinGroup.
      if (group.memberCount === 0) group.assignor = command.assignor ?? config.defaultAssignor;
    }
    if (command.assignor !== undefined && command.assignor !== group.assignor) {
      return { kind: 'inconsistent_assignor', assignor: group.assignor };
    }
    this.groups.set(groupId, group);
    const answer = group.join(memberId, topics, sessionTimeoutMs, nowMs, this.partitionCounts);
    return { kind: 'ok', groupId, memberId, sessionTimeoutMs, ...answer };
  }

  private applyCommit(command: Extract<GroupCommand, { kind: 'commit' }>, nowMs: number): CommitResult {
    const { groupId, memberId, generation, topic, partition, offset } = command;
    const metadata = command.metadata ?? '';
    const problem = this.checkId('groupId', groupId) ?? this.checkId('topic', topic);
    if (problem !== undefined) return problem;
    if ((memberId === undefined) !== (generation === undefined)) {
      return { kind: 'invalid_request', reason: 'consumer id and generation come together or not at all' };
    }
    if (generation !== undefined && !Number.isSafeInteger(generation)) {
      return { kind: 'invalid_request', reason: 'generation must be an integer' };
    }
    if (!Number.isSafeInteger(offset) || offset < 0) {
      return { kind: 'invalid_request', reason: 'offset must be a non-negative integer' };
    }
    if (metadata.length > this.config.commitMetadataCharsMax) {
      return {
        kind: 'invalid_request',
        reason: `metadata longer than ${this.config.commitMetadataCharsMax}`,
      };
    }
    if (
      !Number.isSafeInteger(partition) ||
      partition < 0 ||
      partition >= (this.partitionCounts.get(topic) ?? 0)
    ) {
      return { kind: 'unknown_partition' };
    }
    let group = this.groups.get(groupId);
    if (group === undefined) {
      if (memberId !== undefined) return { kind: 'unknown_group' };
      if (this.groups.size >= this.config.groupsMax)
        return { kind: 'too_many_groups', groupsMax: this.config.groupsMax };
      group = new ConsumerGroup(groupId, this.config.defaultAssignor);
    }
    const member = memberId === undefined || generation === undefined ? undefined : { memberId, generation };
    const result = group.commit(
      member,
      topic,
      partition,
      offset,
      metadata,
      nowMs,
      command.checkOnly !== true,
    );
    if (result.kind === 'ok' && command.checkOnly !== true) this.groups.set(groupId, group);
    return result;
  }

  private checkId(what: string, id: string): InvalidRequest | undefined {
    if (typeof id !== 'string' || id.length === 0)
      return { kind: 'invalid_request', reason: `${what} is empty` };
    if (id.length > this.config.idCharsMax) {
      return { kind: 'invalid_request', reason: `${what} longer than ${this.config.idCharsMax}` };
    }
    return undefined;
  }
}
