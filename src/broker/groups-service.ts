// Consumer groups on one node: the pure coordinator (src/core/groups) driven from the acceptor thread, its
// state kept in `<dataDir>/groups.json`, and the HTTP handlers of the group routes. A commit is answered, and
// recorded in the registry (seen by describe and offset fetches), only once a write of the state that holds it
// is durable (temp file, fsync, rename, fsync dir); until then it waits in `pendingCommits`, laid over the
// registry's snapshot by the writer. Commits that arrive while a write is in flight share the next write, so a
// burst of commits costs two writes, not one each.
// Membership changes are persisted by the same writer but nobody waits for them: members re-join after a
// restart anyway. A write that fails (a full disk) fails the commits waiting for it, and the writer retries
// every `persistRetryMs` until a write succeeds, so the state on disk catches up once space is back.
// In a cluster the metadata leader coordinates, offsets live in the metadata Raft log, and a commit is
// recorded in the registry (seen by describe and offset fetches) only once the log committed it: an offset
// read from the coordinator is never one its failover takes back.
// Runs on the acceptor (main) thread only.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type {
  ControlFailure,
  ControlReply,
  GroupCommand,
  GroupOffsets,
} from '../cluster/control-protocol.js';
import type { ErrorName } from '../core/errors.js';
import type { AssignorName } from '../core/groups/assignors.js';
import {
  type CommitResult,
  type DeleteGroupResult,
  defaultGroupConfig,
  type GroupConfig,
  GroupRegistry,
  type GroupsSnapshot,
} from '../core/groups/registry.js';
import type { CommittedOffset } from '../core/metadata/state-machine.js';
import { validateTopicName } from '../core/names.js';
import { objectBodyOrReply } from '../http/object-body.js';
import { isParamError, parseIntegerParam } from '../http/params.js';
import type { HttpRequest, Reply } from '../http/server.js';
import { writeFileAtomically } from '../runtime/atomic-file.js';

export interface GroupsServiceOptions {
  readonly dataDir: string;
  readonly sessionTimeoutMs: number;
  readonly tickIntervalMs: number;
  /** An empty group's offsets are deleted this long after its last commit; -1 (or absent) keeps them. */
  readonly offsetsRetentionMs?: number;
  /** Log end offsets for lag; undefined when the partition is unknown. */
  readonly logEndOffset: (topic: string, partition: number) => number | undefined;
  readonly topicExists: (topic: string) => boolean;
  /**
   * The high watermark as the partition's leader has it now (asked over the data link when the leader is
   * elsewhere); undefined when the partition is unknown or its leader did not answer.
   */
  readonly leaderHighWatermark?: (topic: string, partition: number) => Promise<number | undefined>;
  /** Every topic with its partition count, for a registry rebuilt when this node becomes the coordinator. */
  readonly topicPartitions?: () => Iterable<readonly [string, number]>;
  /**
   * With a cluster, committed offsets live in the metadata Raft log and the metadata leader coordinates every
   * group (membership in its memory, offsets proposed in its term). Without it, groups.json on this node.
   */
  readonly cluster?: GroupsCluster;
}

/** What the groups need of the control thread (ControlLink) in a cluster. */
export interface GroupsCluster {
  /** This node's coordinator term and the offsets it started from, or null when another node coordinates. */
  coordinatorTerm(): { readonly term: number; readonly groups: GroupOffsets } | null;
  groupCommand(term: number, command: GroupCommand): Promise<ControlReply>;
}

/** A commit or deletion the metadata log refused or may not have taken (`failure.indefinite`). */
export class GroupWriteError extends Error {
  override readonly name = 'GroupWriteError';
  constructor(readonly failure: ControlFailure) {
    super(failure.message);
  }
}

type Outcome = { kind: string } & Record<string, unknown>;

/** A commit the writer has not made durable yet: settled by the first write that starts after it. */
interface PersistWaiter {
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/** After a failed write the writer tries again this often while there is state to persist. */
const persistRetryMs = 1000;

export class GroupsService {
  private persisting: Promise<void> | null = null;
  private dirty = false;
  private waiters: PersistWaiter[] = [];
  private timer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Why the last write of groups.json failed, or null once a write succeeded again (for /health). */
  persistFailure: string | null = null;
  /** Called after every tick that evicted members, and after joins and leaves (WebSocket members react). */
  onMembershipChange: (groupId: string) => void = () => undefined;

  /** Groups whose offsets expired and were deleted since the start (for tests and logs). */
  expiredCount = 0;
  private expiring = false;
  private nextExpiryCheckMs = 0;
  /** The metadata term this node coordinates the groups in (cluster only); 0 while another node does. */
  private term = 0;
  /**
   * One node: `group NUL topic NUL partition` → a commit accepted but not yet in a successful write of the groups
   * file (the newest per partition). Bounded by the partitions a group may commit, times the groups.
   */
  private readonly pendingCommits = new Map<string, CommittedOffset & { readonly group: string }>();
  /** Numbers the cluster's offset writes in the order they were proposed (the log commits them in it). */
  private commitSequence = 0;
  /**
   * `group NUL topic NUL partition` → the newest write recorded there, so an older write whose answer came
   * late never overwrites a newer one. Cleared with the registry at each coordinator term.
   */
  private readonly recordedSequence = new Map<string, number>();

  private constructor(
    public registry: GroupRegistry,
    private readonly options: GroupsServiceOptions,
    private readonly config: GroupConfig,
  ) {}

  static async open(options: GroupsServiceOptions): Promise<GroupsService> {
    const config = {
      ...defaultGroupConfig,
      sessionTimeoutMsDefault: options.sessionTimeoutMs,
      sessionTimeoutMsMin: Math.min(defaultGroupConfig.sessionTimeoutMsMin, options.sessionTimeoutMs),
    };
    let registry = new GroupRegistry(config);
    if (options.cluster === undefined) {
      try {
        const text = await readFile(join(options.dataDir, 'groups.json'), 'utf8');
        registry = GroupRegistry.fromSnapshot(JSON.parse(text) as GroupsSnapshot, config);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
    const service = new GroupsService(registry, options, config);
    service.coordinatorChanged();
    service.timer = setInterval(() => service.tick(), options.tickIntervalMs);
    service.timer.unref();
    return service;
  }

  /** True where the groups are coordinated: always on one node; on the metadata leader in a cluster. */
  get coordinates(): boolean {
    return this.options.cluster === undefined || this.term > 0;
  }

  /**
   * Follows the control thread's word on who coordinates. Becoming the coordinator (a new term) starts a fresh
   * registry from the committed offsets of the metadata log: members re-join, as Kafka's do after a
   * coordinator moves. Losing it empties the registry; requests are forwarded to the new coordinator.
   */
  coordinatorChanged(): void {
    const cluster = this.options.cluster;
    if (cluster === undefined) return;
    const now = cluster.coordinatorTerm();
    const term = now?.term ?? 0;
    if (term === this.term) return;
    const before = this.registry.listGroups();
    this.term = term;
    const nowMs = Date.now();
    const snapshot: GroupsSnapshot = {
      version: 1,
      clockMs: nowMs,
      topics: [...(this.options.topicPartitions?.() ?? [])].map(([topic, partitionCount]) => ({
        topic,
        partitionCount,
      })),
      groups: (now?.groups ?? []).map((g) => ({
        groupId: g.group,
        generation: 0,
        assignor: this.config.defaultAssignor,
        members: [],
        offsets: g.offsets.map((o) => ({
          topic: o.topic,
          partition: o.partition,
          offset: o.offset,
          metadata: o.metadata,
          commitTimestampMs: o.committedAtMs,
        })),
      })),
    };
    this.registry = GroupRegistry.fromSnapshot(snapshot, this.config);
    this.recordedSequence.clear();
    // Members held by WebSockets here learn at their next heartbeat; tell them now.
    for (const groupId of before) this.onMembershipChange(groupId);
  }

  setTopicPartitions(topic: string, partitionCount: number): void {
    this.registry.setTopicPartitions(topic, partitionCount, Date.now());
    this.markDirty();
  }

  async close(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    await this.persistNow().catch(() => undefined);
    this.closed = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
  }

  private tick(): void {
    const nowMs = Date.now();
    this.expireOffsets(nowMs);
    const result = this.registry.tick(nowMs);
    if (result.evicted.length > 0) {
      this.markDirty();
      for (const groupId of new Set(result.evicted.map((e) => e.groupId))) this.onMembershipChange(groupId);
    }
  }

  /** Deletes, durably, the groups whose offsets expired (only where the groups are coordinated). */
  private expireOffsets(nowMs: number): void {
    const retentionMs = this.options.offsetsRetentionMs ?? -1;
    if (retentionMs < 0 || !this.coordinates || this.expiring || nowMs < this.nextExpiryCheckMs) return;
    // A scan reads every offset: at most every minute, and often enough for a short retention.
    this.nextExpiryCheckMs = nowMs + Math.min(60_000, Math.max(1_000, retentionMs / 4));
    const expired = this.registry.expiredGroups(nowMs, retentionMs);
    if (expired.length === 0) return;
    this.expiring = true;
    void (async () => {
      for (const groupId of expired) {
        // A failed write leaves the offsets where they were (the log, or memory and the file's next write).
        const result = await this.deleteGroup(groupId, nowMs).catch(() => null);
        if (result?.kind === 'ok') this.expiredCount++;
      }
    })().finally(() => {
      this.expiring = false;
    });
  }

  // ------------------------------------------------------------------------------------------------------
  // Persistence.

  private markDirty(): void {
    // In a cluster only offsets are kept (in the metadata log); membership lives in the coordinator's memory.
    if (this.options.cluster !== undefined) return;
    this.dirty = true;
    if (this.persisting === null && this.retryTimer === null) this.persisting = this.writeLoop();
  }

  /**
   * Resolves once the state as it is now is durable; rejects if the write that would have made it so failed.
   * Always asks for a write: the registry changes on commits without telling this service, so "nothing is
   * dirty" is no proof that the current state is on disk.
   */
  persistNow(): Promise<void> {
    if (this.options.cluster !== undefined) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.markDirty();
    });
  }

  /**
   * Makes a commit the registry accepted durable: the groups file on one node; in a cluster, the offset
   * proposed to the metadata log in this node's coordinator term (committed on a majority, fsynced).
   */
  commitDurably(
    group: string,
    topic: string,
    partition: number,
    offset: number,
    metadata: string,
    nowMs: number,
  ): Promise<void> {
    return this.commitAllDurably(group, [{ topic, partition, offset, metadata, committedAtMs: nowMs }]);
  }

  /**
   * Checks a commit without recording it: `commitAllDurably` records it once it is durable (in the groups file
   * on one node, in the metadata log in a cluster), so describe and offset fetches never show an offset that a
   * crash, or a failover of the coordinator, would take back.
   */
  tryCommit(
    group: string,
    memberId: string | undefined,
    generation: number | undefined,
    topic: string,
    partition: number,
    offset: number,
    nowMs: number,
    metadata?: string,
  ): CommitResult {
    return this.registry.commit(group, memberId, generation, topic, partition, offset, nowMs, metadata, true);
  }

  /**
   * Makes offsets that `tryCommit` accepted durable (several of one group in one write: an admin's reset, a
   * Kafka OffsetCommit). On one node they wait in `pendingCommits` and are recorded once a write of the groups
   * file that holds them succeeded (a failed write leaves them pending for the writer's retry). In a cluster
   * they are recorded once the metadata log committed them, unless a later write of the same partition was
   * recorded first or this node's coordinator term ended (a new term starts from the log itself).
   */
  async commitAllDurably(group: string, offsets: readonly CommittedOffset[]): Promise<void> {
    const cluster = this.options.cluster;
    if (cluster === undefined) {
      for (const o of offsets)
        this.pendingCommits.set(`${group}\u0000${o.topic}\u0000${o.partition}`, { group, ...o });
      return this.persistNow();
    }
    if (offsets.length === 0) return;
    const term = this.term;
    const sequence = ++this.commitSequence;
    await this.writeToLog(cluster, { kind: 'commit_offsets', group, offsets });
    if (this.term !== term) return;
    const recorded = offsets.filter((o) => {
      const key = `${group}\u0000${o.topic}\u0000${o.partition}`;
      if ((this.recordedSequence.get(key) ?? 0) > sequence) return false;
      this.recordedSequence.set(key, sequence);
      return true;
    });
    this.registry.apply({
      kind: 'record_offsets',
      groupId: group,
      offsets: recorded.map((o) => ({
        topic: o.topic,
        partition: o.partition,
        offset: o.offset,
        metadata: o.metadata,
        commitTimestampMs: o.committedAtMs,
      })),
      nowMs: Date.now(),
    });
  }

  /**
   * Deletes an empty group and its offsets. On one node the registry drops it at once and the groups file is
   * written; in a cluster it is dropped once the metadata log took the deletion (as commits are recorded), so
   * a failed write leaves the group as the log has it. A member joining while the deletion is proposed keeps
   * the group in the registry; the log has dropped its offsets then (the next coordinator starts without them).
   */
  async deleteGroup(group: string, nowMs: number): Promise<DeleteGroupResult> {
    const cluster = this.options.cluster;
    if (cluster === undefined) {
      const result = this.registry.apply({ kind: 'delete_group', groupId: group, nowMs });
      if (result.kind === 'ok') await this.persistNow();
      return result;
    }
    const described = this.registry.describe(group);
    if (described === undefined) return { kind: 'unknown_group' };
    if (described.members.length > 0) return { kind: 'group_has_members', generation: described.generation };
    const term = this.term;
    await this.writeToLog(cluster, { kind: 'delete_group', group });
    if (this.term === term) this.registry.apply({ kind: 'delete_group', groupId: group, nowMs });
    return { kind: 'ok' };
  }

  private async writeToLog(cluster: GroupsCluster, command: GroupCommand): Promise<void> {
    if (this.term === 0) {
      throw new GroupWriteError({
        kind: 'failed',
        error: 'not_coordinator',
        message: 'this node stopped coordinating the consumer groups; nothing was written',
        indefinite: false,
      });
    }
    const reply = await cluster.groupCommand(this.term, command);
    if (reply.kind === 'failed') throw new GroupWriteError(reply);
  }

  private async writeLoop(): Promise<void> {
    while (this.dirty) {
      this.dirty = false;
      const waiters = this.waiters;
      this.waiters = [];
      const captured = [...this.pendingCommits];
      const snapshot = withCommits(
        this.registry.toSnapshot(),
        captured.map(([, c]) => c),
        this.config.defaultAssignor,
      );
      try {
        await writeFileAtomically(this.options.dataDir, 'groups.json', JSON.stringify(snapshot));
      } catch (error) {
        // The state stays in memory and is written by a later attempt; the waiting commits are told now.
        const failure = error instanceof Error ? error : new Error(String(error));
        this.persistFailure = `groups.json could not be written: ${failure.message}`;
        for (const waiter of waiters) waiter.reject(failure);
        this.dirty = true;
        this.persisting = null;
        if (!this.closed) {
          this.retryTimer = setTimeout(() => {
            this.retryTimer = null;
            if (this.dirty && this.persisting === null) this.persisting = this.writeLoop();
          }, persistRetryMs);
          this.retryTimer.unref();
        }
        return;
      }
      this.persistFailure = null;
      // Durable now: recorded, and no longer pending unless a newer commit of the partition came meanwhile.
      for (const [key, commit] of captured) {
        if (this.pendingCommits.get(key) === commit) this.pendingCommits.delete(key);
        this.registry.apply({
          kind: 'record_offsets',
          groupId: commit.group,
          offsets: [
            {
              topic: commit.topic,
              partition: commit.partition,
              offset: commit.offset,
              metadata: commit.metadata,
              commitTimestampMs: commit.committedAtMs,
            },
          ],
          nowMs: Date.now(),
        });
      }
      for (const waiter of waiters) waiter.resolve();
    }
    this.persisting = null;
  }

  // ------------------------------------------------------------------------------------------------------
  // Members held by a WebSocket: the same commands, without HTTP around them.

  joinMember(group: string, memberId: string, topics: readonly string[], sessionTimeoutMs?: number) {
    const result = this.registry.join(group, memberId, topics, Date.now(), sessionTimeoutMs);
    if (result.kind === 'ok') {
      this.markDirty();
      this.onMembershipChange(group);
    }
    return result;
  }

  heartbeatMember(group: string, memberId: string) {
    const result = this.registry.heartbeat(group, memberId, Date.now());
    if (result.kind === 'ok' && result.rebalance) this.markDirty();
    return result;
  }

  leaveMember(group: string, memberId: string): void {
    const result = this.registry.leave(group, memberId, Date.now());
    if (result.kind === 'ok') {
      this.markDirty();
      this.onMembershipChange(group);
    }
  }

  /** Commits for a member and resolves once the commit is durable (or with the coordinator's refusal). */
  async commitMember(
    group: string,
    memberId: string,
    generation: number,
    topic: string,
    partition: number,
    offset: number,
  ): Promise<{ kind: string } & Record<string, unknown>> {
    const nowMs = Date.now();
    const result = this.tryCommit(group, memberId, generation, topic, partition, offset, nowMs);
    if (result.kind !== 'ok') return result;
    await this.commitDurably(group, topic, partition, offset, '', nowMs);
    return result;
  }

  // ------------------------------------------------------------------------------------------------------
  // HTTP.

  register(request: HttpRequest, reply: Reply): void {
    const group = this.groupOrReply(request, reply);
    if (group === null) return;
    const body = objectBodyOrReply(request, reply);
    if (body === null) return;
    const consumerId = body.consumer_id;
    if (typeof consumerId !== 'string' || consumerId.length === 0) {
      return reply.error('bad_request', 'consumer_id must be a non-empty string');
    }
    const topics = body.topics;
    if (!Array.isArray(topics) || topics.length === 0 || topics.some((t) => typeof t !== 'string')) {
      return reply.error('bad_request', 'topics must be a non-empty array of topic names');
    }
    for (const topic of topics as string[]) {
      const problem = validateTopicName(topic);
      if (problem !== null) return reply.error('invalid_name', problem);
      if (!this.options.topicExists(topic))
        return reply.error('unknown_topic', `topic '${topic}' does not exist`);
    }
    let sessionTimeoutMs: number | undefined;
    if (body.session_timeout_ms !== undefined) {
      if (typeof body.session_timeout_ms !== 'number' || !Number.isSafeInteger(body.session_timeout_ms)) {
        return reply.error('bad_request', 'session_timeout_ms must be an integer of milliseconds');
      }
      sessionTimeoutMs = body.session_timeout_ms;
    }
    const assignor = body.assignor;
    if (assignor !== undefined && typeof assignor !== 'string') {
      return reply.error('bad_request', "assignor must be 'range', 'roundrobin' or 'sticky'");
    }
    const result = this.registry.join(
      group,
      consumerId,
      topics as string[],
      Date.now(),
      sessionTimeoutMs,
      assignor,
    );
    if (result.kind !== 'ok') return this.replyRefusal(reply, result);
    this.markDirty();
    this.onMembershipChange(group);
    reply.json(
      200,
      JSON.stringify({
        group,
        generation: result.generation,
        member_id: result.memberId,
        assignments: result.assignments,
        rebalance: result.rebalance,
        session_timeout_ms: result.sessionTimeoutMs,
      }),
    );
  }

  heartbeat(request: HttpRequest, reply: Reply): void {
    const member = this.memberOrReply(request, reply);
    if (member === null) return;
    const { group, consumerId } = member;
    const result = this.registry.heartbeat(group, consumerId, Date.now());
    if (result.kind !== 'ok') return this.replyRefusal(reply, result);
    if (result.rebalance) this.markDirty();
    reply.json(
      200,
      JSON.stringify({
        generation: result.generation,
        rebalance: result.rebalance,
        assignments: result.assignments,
      }),
    );
  }

  leave(request: HttpRequest, reply: Reply): void {
    const member = this.memberOrReply(request, reply);
    if (member === null) return;
    const { group, consumerId } = member;
    const result = this.registry.leave(group, consumerId, Date.now());
    if (result.kind !== 'ok') return this.replyRefusal(reply, result);
    this.markDirty();
    this.onMembershipChange(group);
    reply.json(200, JSON.stringify({ group, left: consumerId, generation: result.generation }));
  }

  /** `POST /consumer-groups/{g}/topics/{t}/partitions/{p}/commit` and `POST /consumer-groups/{g}/offsets/{t}/{p}`. */
  commit(request: HttpRequest, reply: Reply): void {
    const group = this.groupOrReply(request, reply);
    if (group === null) return;
    const place = topicPartitionOrReply(request, reply);
    if (place === null) return;
    const { topic, partition } = place;
    const body = objectBodyOrReply(request, reply);
    if (body === null) return;
    const offset = body.offset;
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) {
      return reply.error('bad_request', 'offset must be a non-negative integer');
    }
    if (body.consumer_id !== undefined && typeof body.consumer_id !== 'string') {
      return reply.error('bad_request', 'consumer_id must be a string');
    }
    if (
      body.generation !== undefined &&
      (typeof body.generation !== 'number' || !Number.isSafeInteger(body.generation))
    ) {
      return reply.error('bad_request', 'generation must be an integer');
    }
    if (body.metadata !== undefined && typeof body.metadata !== 'string') {
      return reply.error('bad_request', 'metadata must be a string');
    }
    const consumerId = body.consumer_id as string | undefined;
    let generation = body.generation as number | undefined;
    if (consumerId !== undefined && generation === undefined) {
      // A member that names itself without a generation commits at the generation it last heard of.
      generation = this.registry.describe(group)?.members.find((m) => m.memberId === consumerId)?.generation;
      if (generation === undefined)
        return reply.error('unknown_group', `consumer '${consumerId}' is not in group '${group}'`);
    }
    if (consumerId === undefined && generation !== undefined) {
      return reply.error('bad_request', 'generation needs consumer_id');
    }
    const metadata = body.metadata as string | undefined;
    const commitChecked = (highWatermark: number | undefined) => {
      if (highWatermark === undefined) {
        return reply.error('unknown_partition', `topic '${topic}' has no partition ${partition}`);
      }
      if (offset > highWatermark) {
        return reply.error(
          'offset_out_of_range',
          `offset ${offset} is past the high watermark ${highWatermark} of ${topic}-${partition}`,
        );
      }
      const nowMs = Date.now();
      const result = this.tryCommit(group, consumerId, generation, topic, partition, offset, nowMs, metadata);
      if (result.kind !== 'ok') return this.replyRefusal(reply, result);
      this.commitDurably(group, topic, partition, offset, metadata ?? '', nowMs).then(
        () => reply.json(200, JSON.stringify({ group, topic, partition, offset, committed: true })),
        (error: unknown) => {
          const [name, message, indefinite] = persistFailureAnswer(error);
          reply.error(name, message, indefinite ? { indefinite: true } : {});
        },
      );
    };
    // This node's figure may be a follower's, a little behind the leader's: an offset past it is checked
    // against the leader's high watermark before it is refused.
    const local = this.options.logEndOffset(topic, partition);
    const ask = this.options.leaderHighWatermark;
    if ((local !== undefined && offset <= local) || ask === undefined) return commitChecked(local);
    ask(topic, partition).then(
      (leaders) => commitChecked(leaders ?? local),
      () => commitChecked(local),
    );
  }

  /** `GET /consumer-groups/{g}/offsets/{t}/{p}`: 404 when nothing was committed (not 0). */
  fetchOffset(request: HttpRequest, reply: Reply): void {
    const group = this.groupOrReply(request, reply);
    if (group === null) return;
    const place = topicPartitionOrReply(request, reply);
    if (place === null) return;
    const { topic, partition } = place;
    const described = this.registry.describe(group);
    const entry = described?.offsets.find((o) => o.topic === topic && o.partition === partition);
    if (entry === undefined) {
      return reply.error('unknown_group', `group '${group}' has committed nothing for ${topic}-${partition}`);
    }
    reply.json(
      200,
      JSON.stringify({
        group,
        topic,
        partition,
        offset: entry.offset,
        metadata: entry.metadata,
        commit_timestamp: entry.commitTimestampMs,
      }),
    );
  }

  /** `GET /consumer-groups/{g}/offsets/{t}`: every partition with a commit, and lag. */
  fetchTopicOffsets(request: HttpRequest, reply: Reply): void {
    const group = this.groupOrReply(request, reply);
    if (group === null) return;
    const topic = request.params[1] ?? '';
    const problem = validateTopicName(topic);
    if (problem !== null) return reply.error('invalid_name', problem);
    const described = this.registry.describe(group, this.options.logEndOffset);
    if (described === undefined) return reply.error('unknown_group', `group '${group}' does not exist`);
    const offsets = described.offsets
      .filter((o) => o.topic === topic)
      .map((o) => ({ partition: o.partition, offset: o.offset, metadata: o.metadata, lag: o.lag ?? null }));
    reply.json(200, JSON.stringify({ group, topic, offsets }));
  }

  list(request: HttpRequest, reply: Reply): void {
    // With ACLs on, only the groups the principal may describe (Kafka's ListGroups).
    const visible = request.mayDescribe;
    const ids = this.registry.listGroups().filter((id) => visible === undefined || visible('group', id));
    const groups = ids.map((groupId) => {
      const d = this.registry.describe(groupId);
      return { group: groupId, state: d?.state ?? 'empty', members: d?.members.length ?? 0 };
    });
    reply.json(200, JSON.stringify({ groups, count: groups.length }));
  }

  describe(request: HttpRequest, reply: Reply): void {
    const group = this.groupOrReply(request, reply);
    if (group === null) return;
    const d = this.registry.describe(group, this.options.logEndOffset);
    if (d === undefined) return reply.error('unknown_group', `group '${group}' does not exist`);
    reply.json(
      200,
      JSON.stringify({
        group: d.groupId,
        state: d.state,
        generation: d.generation,
        assignor: d.assignor,
        members: d.members.map((m) => ({
          consumer_id: m.memberId,
          topics: m.topics,
          generation: m.generation,
          session_timeout_ms: m.sessionTimeoutMs,
          last_heartbeat: m.lastHeartbeatMs,
          assignments: m.assignments,
          target: m.target,
        })),
        offsets: d.offsets.map((o) => ({
          topic: o.topic,
          partition: o.partition,
          offset: o.offset,
          log_end_offset: this.options.logEndOffset(o.topic, o.partition) ?? null,
          lag: o.lag ?? null,
          owner: o.owner ?? null,
          metadata: o.metadata,
        })),
      }),
    );
  }

  // ------------------------------------------------------------------------------------------------------

  /** The group of the path and the consumer_id of the body, or an error answer. */
  private memberOrReply(request: HttpRequest, reply: Reply): { group: string; consumerId: string } | null {
    const group = this.groupOrReply(request, reply);
    if (group === null) return null;
    const body = objectBodyOrReply(request, reply);
    if (body === null) return null;
    if (typeof body.consumer_id !== 'string') {
      reply.error('bad_request', 'consumer_id must be a string');
      return null;
    }
    return { group, consumerId: body.consumer_id };
  }

  private groupOrReply(request: HttpRequest, reply: Reply): string | null {
    const group = request.params[0] ?? '';
    const problem = validateTopicName(group);
    if (problem !== null) {
      reply.error('invalid_name', problem.replace('topic name', 'group name'));
      return null;
    }
    return group;
  }

  private replyRefusal(reply: Reply, result: Outcome): void {
    const [name, message] = refusal(result);
    reply.error(name, message);
  }
}

/** The topic and partition of `/consumer-groups/{g}/.../{t}/.../{p}` paths, or an error answer. */
function topicPartitionOrReply(
  request: HttpRequest,
  reply: Reply,
): { topic: string; partition: number } | null {
  const topic = request.params[1] ?? '';
  const problem = validateTopicName(topic);
  if (problem !== null) {
    reply.error('invalid_name', problem);
    return null;
  }
  const partition = parseIntegerParam('partition', request.params[2] ?? '', 0, 0x7fffffff);
  if (isParamError(partition)) {
    reply.error(partition.error, partition.message);
    return null;
  }
  return { topic, partition };
}

/**
 * The answer for a commit whose write failed. The commit is held in memory and a later write may still make it
 * durable, so its outcome is unknown to the client (indefinite): a retry of the same commit is harmless.
 */
export function persistFailureAnswer(error: unknown): [ErrorName, string, boolean] {
  if (error instanceof GroupWriteError) {
    const f = error.failure;
    if (f.error === 'not_coordinator' || f.error === 'no_leader') {
      return [
        'coordinator_not_available',
        `the commit could not be made durable: ${f.message}`,
        f.indefinite,
      ];
    }
    return ['internal', `the commit could not be made durable: ${f.message}`, f.indefinite];
  }
  const code = (error as NodeJS.ErrnoException).code;
  const detail = error instanceof Error ? error.message : String(error);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return [
      'storage_full',
      `the commit could not be made durable: the disk holding groups.json is full (${detail})`,
      true,
    ];
  }
  return ['internal', `the commit could not be made durable: ${detail}`, true];
}

/** The HTTP error for a coordinator refusal. */
export function refusal(result: Outcome): [ErrorName, string] {
  switch (result.kind) {
    case 'stale_generation':
      return [
        'conflict',
        `stale generation: the group is at generation ${String(result.current)}; heartbeat for the new assignment`,
      ];
    case 'not_owner':
      return ['conflict', 'this consumer does not own the partition in its generation'];
    case 'group_has_members':
      return [
        'conflict',
        'the group has active members: commit with the consumer_id and generation of a member',
      ];
    case 'unknown_member':
      return [
        'unknown_group',
        'the consumer is not a member of the group (it left or its session expired): register again',
      ];
    case 'unknown_group':
      return ['unknown_group', 'the group does not exist'];
    case 'unknown_partition':
      return ['unknown_partition', 'the partition does not exist'];
    case 'invalid_request':
      return ['bad_request', String(result.reason)];
    case 'too_many_groups':
      return ['bad_request', `the broker holds at most ${String(result.groupsMax)} groups`];
    case 'group_full':
      return ['bad_request', `a group holds at most ${String(result.membersPerGroupMax)} members`];
    case 'inconsistent_assignor':
      return ['conflict', `the group uses the ${String(result.assignor)} assignor`];
    default:
      return ['internal', `unexpected coordinator answer ${result.kind}`];
  }
}

/** The groups file's contents: the registry's snapshot with `commits` (accepted, not yet recorded) laid over it. */
function withCommits(
  snapshot: GroupsSnapshot,
  commits: readonly (CommittedOffset & { readonly group: string })[],
  assignor: AssignorName,
): GroupsSnapshot {
  if (commits.length === 0) return snapshot;
  const groups = new Map(snapshot.groups.map((g) => [g.groupId, g]));
  for (const c of commits) {
    const group = groups.get(c.group) ?? {
      groupId: c.group,
      generation: 0,
      assignor,
      members: [],
      offsets: [],
    };
    const offsets = group.offsets.filter((o) => o.topic !== c.topic || o.partition !== c.partition);
    offsets.push({
      topic: c.topic,
      partition: c.partition,
      offset: c.offset,
      metadata: c.metadata,
      commitTimestampMs: c.committedAtMs,
    });
    groups.set(c.group, { ...group, offsets });
  }
  return { ...snapshot, groups: [...groups.values()] };
}
