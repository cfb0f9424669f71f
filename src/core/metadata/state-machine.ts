// The cluster metadata state machine: what every node computes, identically, by applying the committed Raft
// log in order. It holds the broker registry, the topics with their configuration and per-partition replicas,
// leader, leader epoch and in-sync replicas, and the consumer groups' committed offsets.
//
// Invariants (asserted): entries are applied once each, in index order; apply is deterministic (no clock, no
// randomness, no I/O: everything a change needs, like a new topic's id, placement and creation time, is decided
// by the proposer and carried in the command; the topic sequence number is the one thing the state machine
// assigns, from its own counter); a command that is not valid against the current state changes nothing and
// yields a refusal value, so a stale or duplicated proposal is harmless. A partition's leader epoch and
// partition epoch only grow; its leader, when it has one, is always one of its in-sync replicas, which are
// always among its replicas, and the ISR is never empty.
//
// Partition changes are compare-and-set: a leader election names the partition epoch the controller saw, an ISR
// change names the leader epoch and partition epoch its leader saw; either applies only if they are current,
// so a deposed leader or a controller working from old state changes nothing. A clean election picks a member
// of the current ISR and may only drop members from it; an unclean one (only where the topic allows it) may
// pick any registered replica and leaves it alone in the ISR. An ISR change may add only brokers that are
// registered, unfenced and not shutting down.
// ACL bindings (Kafka's CreateAcls / DeleteAcls) are a set: creating one that exists changes nothing, every
// binding is valid (a proposal from any node is checked again here) and there are at most ACL_BINDINGS_MAX.
// Pure: no I/O; used by the control thread (and tests).
import type {
  BrokerRegistration,
  CreateTopicResult,
  DeleteTopicResult,
  MetadataSnapshot,
  PartitionAssignment,
  TopicConfigChanges,
  TopicMetadata,
} from '../../metadata/types.js';
import { assert } from '../assert.js';
import {
  ACL_BINDINGS_MAX,
  type AclBinding,
  type AclFilter,
  bindingKey,
  bindingProblem,
  filterMatches,
} from '../security/acl.js';

export interface CommittedOffset {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly metadata: string;
  readonly committedAtMs: number;
}

/** A leader chosen by the controller for one partition. */
export interface LeaderElection {
  readonly topicId: string;
  readonly topic: string;
  readonly partition: number;
  /** The partition epoch the controller saw: the election applies only if it is still current. */
  readonly expectedPartitionEpoch: number;
  /** The new leader, or '' to mark the partition offline. */
  readonly leader: string;
  readonly isr: readonly string[];
  /** Chosen outside the ISR (the topic allows unclean elections): records may be lost. */
  readonly unclean: boolean;
}

/** An ISR change asked for by a partition's leader (Kafka's AlterPartition). */
export interface IsrChange {
  readonly topicId: string;
  readonly topic: string;
  readonly partition: number;
  readonly leader: string;
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
  readonly isr: readonly string[];
}

/**
 * A partition moving to new replicas (Kafka's KIP-455): while it moves, the partition's replicas are the target
 * followed by the original replicas not in it; the new ones catch up outside the ISR and join it; then the
 * controller finishes the move: the replicas become the target, the ISR loses the others, and leadership moves
 * to the target's first replica if the leader is not in the target.
 */
export interface Reassignment {
  readonly topicId: string;
  readonly topic: string;
  readonly partition: number;
  readonly target: readonly string[];
  /** The replicas before the move, in their order: a cancel puts them back. */
  readonly original: readonly string[];
  readonly startedAtMs: number;
}

/** Start (target non-empty) or cancel (target empty) the move of one partition. */
export interface ReassignChange {
  readonly topicId: string;
  readonly topic: string;
  readonly partition: number;
  readonly target: readonly string[];
}

/** Finish one move whose target replicas are all in the ISR, from the partition epoch the controller saw. */
export interface FinishReassignment {
  readonly topicId: string;
  readonly topic: string;
  readonly partition: number;
  readonly expectedPartitionEpoch: number;
}

export type MetadataCommand =
  | { readonly kind: 'register_broker'; readonly broker: BrokerRegistration }
  | { readonly kind: 'fence_broker'; readonly brokerId: string; readonly fenced: boolean }
  | { readonly kind: 'set_broker_shutting_down'; readonly brokerId: string; readonly shuttingDown: boolean }
  | { readonly kind: 'unregister_broker'; readonly brokerId: string }
  | { readonly kind: 'create_topic'; readonly topic: TopicMetadata }
  | { readonly kind: 'delete_topic'; readonly name: string }
  | { readonly kind: 'elect_leaders'; readonly elections: readonly LeaderElection[] }
  | { readonly kind: 'alter_isr'; readonly changes: readonly IsrChange[] }
  | { readonly kind: 'commit_offsets'; readonly group: string; readonly offsets: readonly CommittedOffset[] }
  | { readonly kind: 'delete_group'; readonly group: string }
  /**
   * An idempotent producer id for a client (POST /producers): the id is the Raft index this entry is applied
   * at, unique in the cluster for ever without any state to keep.
   */
  | { readonly kind: 'allocate_producer_id' }
  | {
      readonly kind: 'alter_topic_config';
      readonly name: string;
      /** The topic the proposer saw: a topic deleted and re-created under the name meanwhile is not altered. */
      readonly topicId: string;
      readonly changes: TopicConfigChanges;
    }
  | {
      readonly kind: 'reassign_partitions';
      readonly changes: readonly ReassignChange[];
      readonly nowMs: number;
    }
  | { readonly kind: 'finish_reassignments'; readonly changes: readonly FinishReassignment[] }
  /** Adds ACL bindings (those already present are skipped); all or nothing when one is invalid. */
  | { readonly kind: 'create_acls'; readonly acls: readonly AclBinding[] }
  /** Removes every binding the filter matches. */
  | { readonly kind: 'delete_acls'; readonly filter: AclFilter }
  /** More partitions for a topic (Kafka's CreatePartitions: increase only); the new ones numbered on. */
  | {
      readonly kind: 'add_partitions';
      readonly name: string;
      readonly topicId: string;
      readonly partitions: readonly PartitionAssignment[];
    };

/** What became of one election or ISR change of a batch. */
export interface PartitionChangeOutcome {
  readonly topic: string;
  readonly partition: number;
  /** null when applied; otherwise why nothing changed. */
  readonly refusal: string | null;
  /** The partition epoch after the command (unchanged when refused; -1 for an unknown partition). */
  readonly partitionEpoch: number;
}

export type ApplyResult =
  | { readonly kind: 'noop' }
  | { readonly kind: 'registered'; readonly broker: BrokerRegistration }
  | { readonly kind: 'broker_updated'; readonly broker: BrokerRegistration }
  | { readonly kind: 'unknown_broker'; readonly brokerId: string }
  | { readonly kind: 'broker_in_use'; readonly brokerId: string; readonly topics: readonly string[] }
  | { readonly kind: 'unregistered'; readonly brokerId: string }
  | CreateTopicResult
  | DeleteTopicResult
  | { readonly kind: 'invalid'; readonly reason: string }
  | { readonly kind: 'partitions_changed'; readonly outcomes: readonly PartitionChangeOutcome[] }
  | { readonly kind: 'committed'; readonly count: number }
  /** allocate_producer_id: the producer id is the index the command was applied at. */
  | { readonly kind: 'producer_id_allocated' }
  | { readonly kind: 'group_deleted'; readonly existed: boolean }
  | { readonly kind: 'altered'; readonly topic: TopicMetadata }
  | { readonly kind: 'acls_created'; readonly created: readonly AclBinding[] }
  | { readonly kind: 'acls_deleted'; readonly deleted: readonly AclBinding[] };

/** Everything the state machine holds, as plain values: what a Raft snapshot stores. */
export interface MetadataImage {
  readonly appliedIndex: number;
  /** The sequence number the next created topic gets. */
  readonly nextTopicSeq: number;
  readonly brokers: readonly BrokerRegistration[];
  readonly topics: readonly TopicMetadata[];
  readonly groups: readonly { readonly group: string; readonly offsets: readonly CommittedOffset[] }[];
  /** Moves in progress (empty in images written before moves existed). */
  readonly reassignments: readonly Reassignment[];
  /** ACL bindings (empty in images written before ACLs existed). */
  readonly acls: readonly AclBinding[];
}

const offsetsPerGroupMax = 100_000;

export class MetadataStateMachine {
  private applied = 0;
  private brokers = new Map<string, BrokerRegistration>();
  private topics = new Map<string, TopicMetadata>();
  private nextTopicSeq = 1;
  private readonly groups = new Map<string, Map<string, CommittedOffset>>();
  /** Moves in progress, by `topicId:partition`. */
  private readonly moves = new Map<string, Reassignment>();
  /** ACL bindings by bindingKey, in creation order; replaced whole on a change (the view shares it). */
  private acls: ReadonlyMap<string, AclBinding> = new Map();
  private aclList: readonly AclBinding[] = [];
  /** The view handed out by `snapshot()`; rebuilt lazily after a change to topics or brokers. */
  private view: MetadataSnapshot | null = null;

  static fromImage(image: MetadataImage): MetadataStateMachine {
    const sm = new MetadataStateMachine();
    sm.applied = image.appliedIndex;
    sm.nextTopicSeq = image.nextTopicSeq;
    for (const b of image.brokers) sm.brokers.set(b.id, b);
    for (const t of image.topics) {
      checkTopic(t);
      assert(
        t.topicSeq < sm.nextTopicSeq,
        `topic ${t.name} has sequence ${t.topicSeq} >= ${sm.nextTopicSeq}`,
      );
      sm.topics.set(t.name, t);
    }
    for (const g of image.groups) {
      sm.groups.set(g.group, new Map(g.offsets.map((o) => [offsetKey(o.topic, o.partition), o])));
    }
    for (const r of image.reassignments) sm.moves.set(moveKey(r.topicId, r.partition), r);
    for (const b of image.acls)
      assert(bindingProblem(b) === null, `image holds an invalid ACL ${JSON.stringify(b)}`);
    sm.setAcls(image.acls);
    return sm;
  }

  get appliedIndex(): number {
    return this.applied;
  }

  /** Applies the normal entry at `index`; `command` undefined stands for an empty entry (a leader's first). */
  apply(index: number, command: MetadataCommand | undefined): ApplyResult {
    assert(index > this.applied, `metadata entry ${index} applied after ${this.applied}`);
    this.applied = index;
    if (command === undefined) return { kind: 'noop' };
    const result = this.applyCommand(command);
    if (
      command.kind !== 'commit_offsets' &&
      command.kind !== 'delete_group' &&
      command.kind !== 'allocate_producer_id'
    )
      this.view = null;
    return result;
  }

  /** Records that a non-metadata entry (a membership change) was applied at `index`. */
  skip(index: number): void {
    assert(index > this.applied, `entry ${index} skipped after ${this.applied}`);
    this.applied = index;
  }

  /** The topics and brokers as of the last applied entry; the same object until the next change. */
  snapshot(): MetadataSnapshot {
    this.view ??= {
      version: this.applied,
      topics: new Map(this.topics),
      brokers: new Map(this.brokers),
      reassignments: [...this.moves.values()],
      acls: this.aclList,
    };
    return this.view;
  }

  broker(id: string): BrokerRegistration | undefined {
    return this.brokers.get(id);
  }

  topic(name: string): TopicMetadata | undefined {
    return this.topics.get(name);
  }

  committedOffsets(group: string): readonly CommittedOffset[] {
    return [...(this.groups.get(group)?.values() ?? [])];
  }

  groupIds(): string[] {
    return [...this.groups.keys()].sort();
  }

  image(): MetadataImage {
    return {
      appliedIndex: this.applied,
      nextTopicSeq: this.nextTopicSeq,
      brokers: [...this.brokers.values()],
      topics: [...this.topics.values()],
      groups: [...this.groups].map(([group, offsets]) => ({ group, offsets: [...offsets.values()] })),
      reassignments: [...this.moves.values()],
      acls: this.aclList,
    };
  }

  aclBindings(): readonly AclBinding[] {
    return this.aclList;
  }

  private setAcls(bindings: readonly AclBinding[]): void {
    const map = new Map<string, AclBinding>();
    for (const b of bindings) map.set(bindingKey(b), b);
    assert(map.size === bindings.length, 'duplicate ACL bindings');
    assert(map.size <= ACL_BINDINGS_MAX, `${map.size} ACL bindings, more than ${ACL_BINDINGS_MAX}`);
    this.acls = map;
    this.aclList = [...map.values()];
  }

  private applyCommand(c: MetadataCommand): ApplyResult {
    switch (c.kind) {
      case 'register_broker': {
        const old = this.brokers.get(c.broker.id);
        const broker: BrokerRegistration = {
          ...c.broker,
          registeredAtMs: old?.registeredAtMs ?? c.broker.registeredAtMs,
        };
        this.brokers.set(broker.id, broker);
        return old === undefined ? { kind: 'registered', broker } : { kind: 'broker_updated', broker };
      }
      case 'fence_broker': {
        const old = this.brokers.get(c.brokerId);
        if (old === undefined) return { kind: 'unknown_broker', brokerId: c.brokerId };
        const broker = { ...old, fenced: c.fenced };
        this.brokers.set(broker.id, broker);
        return { kind: 'broker_updated', broker };
      }
      case 'set_broker_shutting_down': {
        const old = this.brokers.get(c.brokerId);
        if (old === undefined) return { kind: 'unknown_broker', brokerId: c.brokerId };
        const broker = { ...old, shuttingDown: c.shuttingDown };
        this.brokers.set(broker.id, broker);
        return { kind: 'broker_updated', broker };
      }
      case 'unregister_broker': {
        if (!this.brokers.has(c.brokerId)) return { kind: 'unknown_broker', brokerId: c.brokerId };
        const using = [...this.topics.values()]
          .filter((t) => t.partitions.some((p) => p.replicas.includes(c.brokerId)))
          .map((t) => t.name);
        if (using.length > 0) return { kind: 'broker_in_use', brokerId: c.brokerId, topics: using };
        this.brokers.delete(c.brokerId);
        return { kind: 'unregistered', brokerId: c.brokerId };
      }
      case 'create_topic': {
        const t = c.topic;
        const existing = this.topics.get(t.name);
        if (existing !== undefined) {
          return sameSettings(existing, t)
            ? { kind: 'exists_same', topic: existing }
            : { kind: 'exists_different', topic: existing };
        }
        const problem = topicProblem(t, this.brokers);
        if (problem !== null) return { kind: 'invalid', reason: problem };
        const created: TopicMetadata = { ...t, topicSeq: this.nextTopicSeq++ };
        this.topics.set(t.name, created);
        return { kind: 'created', topic: created };
      }
      case 'delete_topic': {
        const t = this.topics.get(c.name);
        if (t === undefined) return { kind: 'unknown' };
        this.topics.delete(c.name);
        for (const offsets of this.groups.values()) {
          for (const [key, o] of offsets) if (o.topic === c.name) offsets.delete(key);
        }
        for (const [key, move] of this.moves) if (move.topicId === t.topicId) this.moves.delete(key);
        return { kind: 'deleted', topic: t };
      }
      case 'elect_leaders':
        return {
          kind: 'partitions_changed',
          outcomes: c.elections.map((e) => this.changePartition(e, (t, p) => this.electionProblem(t, p, e))),
        };
      case 'alter_isr':
        return {
          kind: 'partitions_changed',
          outcomes: c.changes.map((change) =>
            this.changePartition(change, (_t, p) => this.isrProblem(p, change)),
          ),
        };
      case 'commit_offsets': {
        let offsets = this.groups.get(c.group);
        for (const o of c.offsets) {
          const t = this.topics.get(o.topic);
          if (t === undefined || o.partition >= t.numPartitions) {
            return { kind: 'invalid', reason: `unknown partition ${o.topic}-${o.partition}` };
          }
        }
        if (offsets === undefined) {
          offsets = new Map();
          this.groups.set(c.group, offsets);
        }
        if (offsets.size + c.offsets.length > offsetsPerGroupMax) {
          return {
            kind: 'invalid',
            reason: `group ${c.group} would hold more than ${offsetsPerGroupMax} offsets`,
          };
        }
        for (const o of c.offsets) offsets.set(offsetKey(o.topic, o.partition), o);
        return { kind: 'committed', count: c.offsets.length };
      }
      case 'delete_group':
        return { kind: 'group_deleted', existed: this.groups.delete(c.group) };
      case 'allocate_producer_id':
        return { kind: 'producer_id_allocated' };
      case 'alter_topic_config': {
        const t = this.topics.get(c.name);
        if (t === undefined || t.topicId !== c.topicId) return { kind: 'unknown' };
        const problem = configChangesProblem(c.changes, t.replicationFactor);
        if (problem !== null) return { kind: 'invalid', reason: problem };
        const altered: TopicMetadata = {
          ...t,
          config: {
            ...t.config,
            retentionMs: c.changes.retentionMs ?? t.config.retentionMs,
            retentionBytes: c.changes.retentionBytes ?? t.config.retentionBytes,
            minInsyncReplicas: c.changes.minInsyncReplicas ?? t.config.minInsyncReplicas,
            segmentBytes: c.changes.segmentBytes ?? t.config.segmentBytes,
          },
        };
        this.topics.set(t.name, altered);
        return { kind: 'altered', topic: altered };
      }
      case 'add_partitions': {
        const t = this.topics.get(c.name);
        if (t === undefined || t.topicId !== c.topicId) return { kind: 'unknown' };
        if (c.partitions.length === 0) return { kind: 'invalid', reason: 'no partitions to add' };
        const grown: TopicMetadata = {
          ...t,
          numPartitions: t.numPartitions + c.partitions.length,
          partitions: [...t.partitions, ...c.partitions],
        };
        const problem = topicProblem(grown, this.brokers);
        if (problem !== null) return { kind: 'invalid', reason: problem };
        this.topics.set(t.name, grown);
        return { kind: 'altered', topic: grown };
      }
      case 'reassign_partitions':
        return {
          kind: 'partitions_changed',
          outcomes: c.changes.map((change) => this.reassign(change, c.nowMs)),
        };
      case 'create_acls': {
        for (const b of c.acls) {
          const problem = bindingProblem(b);
          if (problem !== null) return { kind: 'invalid', reason: `${problem}: ${JSON.stringify(b)}` };
        }
        const created: AclBinding[] = [];
        const next = new Map(this.acls);
        for (const b of c.acls) {
          const key = bindingKey(b);
          if (next.has(key)) continue;
          next.set(key, b);
          created.push(b);
        }
        if (next.size > ACL_BINDINGS_MAX) {
          return {
            kind: 'invalid',
            reason: `the cluster would hold more than ${ACL_BINDINGS_MAX} ACL bindings`,
          };
        }
        if (created.length > 0) this.setAcls([...next.values()]);
        return { kind: 'acls_created', created };
      }
      case 'delete_acls': {
        const deleted = this.aclList.filter((b) => filterMatches(c.filter, b));
        if (deleted.length > 0) this.setAcls(this.aclList.filter((b) => !filterMatches(c.filter, b)));
        return { kind: 'acls_deleted', deleted };
      }
      case 'finish_reassignments':
        return {
          kind: 'partitions_changed',
          outcomes: c.changes.map((change) => this.finishMove(change)),
        };
    }
  }

  private partitionOf(ref: { topicId: string; topic: string; partition: number }) {
    const t = this.topics.get(ref.topic);
    const p = t !== undefined && t.topicId === ref.topicId ? t.partitions[ref.partition] : undefined;
    return t === undefined || p === undefined ? undefined : { t, p };
  }

  private setPartition(t: TopicMetadata, next: PartitionAssignment): void {
    checkPartition(t.name, next);
    const partitions = t.partitions.map((q) => (q.partition === next.partition ? next : q));
    this.topics.set(t.name, { ...t, partitions });
  }

  /** Starts or cancels one partition's move. */
  private reassign(change: ReassignChange, nowMs: number): PartitionChangeOutcome {
    const found = this.partitionOf(change);
    const outcome = (refusal: string | null, epoch: number) => partitionOutcome(change, refusal, epoch);
    if (found === undefined) return outcome('unknown partition', -1);
    const { t, p } = found;
    const key = moveKey(change.topicId, change.partition);
    const moving = this.moves.get(key);
    if (change.target.length === 0) {
      if (moving === undefined) return outcome('no move in progress', p.partitionEpoch);
      if (p.leader !== '' && !moving.original.includes(p.leader)) {
        return outcome(
          `the leadership already moved to ${p.leader}, a new replica: the move can only finish`,
          p.partitionEpoch,
        );
      }
      const isr = p.isr.filter((id) => moving.original.includes(id));
      this.setPartition(t, {
        ...p,
        replicas: [...moving.original],
        isr,
        partitionEpoch: p.partitionEpoch + 1,
      });
      this.moves.delete(key);
      return outcome(null, p.partitionEpoch + 1);
    }
    if (moving !== undefined) {
      return outcome('a move of this partition is in progress: cancel it first', p.partitionEpoch);
    }
    const target = change.target;
    if (target.length !== t.replicationFactor) {
      return outcome(
        `the new replicas must number the replication factor ${t.replicationFactor}, got ${target.length}`,
        p.partitionEpoch,
      );
    }
    if (new Set(target).size !== target.length) return outcome('a broker is listed twice', p.partitionEpoch);
    for (const id of target) {
      const broker = this.brokers.get(id);
      if (broker === undefined) return outcome(`broker ${id} is not registered`, p.partitionEpoch);
      if (!p.replicas.includes(id) && (broker.fenced || broker.shuttingDown)) {
        return outcome(`broker ${id} is fenced or shutting down`, p.partitionEpoch);
      }
    }
    if (target.every((id, i) => p.replicas[i] === id)) return outcome(null, p.partitionEpoch);
    const replicas = [...target, ...p.replicas.filter((id) => !target.includes(id))];
    this.setPartition(t, { ...p, replicas, partitionEpoch: p.partitionEpoch + 1 });
    this.moves.set(key, {
      topicId: change.topicId,
      topic: change.topic,
      partition: change.partition,
      target: [...target],
      original: [...p.replicas],
      startedAtMs: nowMs,
    });
    return outcome(null, p.partitionEpoch + 1);
  }

  /** Finishes one move: every target replica is in the ISR; the others leave; a leader outside hands over. */
  private finishMove(change: FinishReassignment): PartitionChangeOutcome {
    const found = this.partitionOf(change);
    const outcome = (refusal: string | null, epoch: number) => partitionOutcome(change, refusal, epoch);
    if (found === undefined) return outcome('unknown partition', -1);
    const { t, p } = found;
    const key = moveKey(change.topicId, change.partition);
    const moving = this.moves.get(key);
    if (moving === undefined) return outcome('no move in progress', p.partitionEpoch);
    if (p.partitionEpoch !== change.expectedPartitionEpoch) {
      return outcome(
        `stale partition epoch ${change.expectedPartitionEpoch}, now ${p.partitionEpoch}`,
        p.partitionEpoch,
      );
    }
    const missing = moving.target.filter((id) => !p.isr.includes(id));
    if (missing.length > 0) return outcome(`${missing.join(', ')} not in the ISR yet`, p.partitionEpoch);
    const leaderStays = p.leader !== '' && moving.target.includes(p.leader);
    const leader = leaderStays ? p.leader : moving.target[0]!;
    const next: PartitionAssignment = {
      ...p,
      replicas: [...moving.target],
      isr: moving.target.filter((id) => p.isr.includes(id)),
      leader,
      leaderEpoch: leaderStays ? p.leaderEpoch : p.leaderEpoch + 1,
      partitionEpoch: p.partitionEpoch + 1,
    };
    this.setPartition(t, next);
    this.moves.delete(key);
    return outcome(null, next.partitionEpoch);
  }

  /** Applies one election or ISR change if `problem` finds none; the partition epoch always moves by one. */
  private changePartition(
    ref: LeaderElection | IsrChange,
    problem: (t: TopicMetadata, p: PartitionAssignment) => string | null,
  ): PartitionChangeOutcome {
    const t = this.topics.get(ref.topic);
    const p = t !== undefined && t.topicId === ref.topicId ? t.partitions[ref.partition] : undefined;
    if (t === undefined || p === undefined) {
      return { topic: ref.topic, partition: ref.partition, refusal: 'unknown partition', partitionEpoch: -1 };
    }
    const reason = problem(t, p);
    if (reason !== null) {
      return {
        topic: ref.topic,
        partition: ref.partition,
        refusal: reason,
        partitionEpoch: p.partitionEpoch,
      };
    }
    const election = 'expectedPartitionEpoch' in ref;
    const next: PartitionAssignment = {
      ...p,
      leader: election ? ref.leader : p.leader,
      leaderEpoch: election ? p.leaderEpoch + 1 : p.leaderEpoch,
      partitionEpoch: p.partitionEpoch + 1,
      isr: [...ref.isr],
    };
    checkPartition(t.name, next);
    const partitions = t.partitions.map((q) => (q.partition === ref.partition ? next : q));
    this.topics.set(t.name, { ...t, partitions });
    return { topic: ref.topic, partition: ref.partition, refusal: null, partitionEpoch: next.partitionEpoch };
  }

  private electionProblem(t: TopicMetadata, p: PartitionAssignment, e: LeaderElection): string | null {
    if (p.partitionEpoch !== e.expectedPartitionEpoch) {
      return `stale partition epoch ${e.expectedPartitionEpoch}, now ${p.partitionEpoch}`;
    }
    if (e.leader === '') {
      // Offline: the ISR stays what it was, so the last in-sync replicas are the ones a later election waits for.
      return sameMembers(e.isr, p.isr) ? null : 'an offline partition keeps its ISR';
    }
    const shape = isrShapeProblem(p, e.isr, e.leader);
    if (shape !== null) return shape;
    const broker = this.brokers.get(e.leader);
    if (broker === undefined || broker.fenced || broker.shuttingDown) {
      return `broker ${e.leader} is not registered, or fenced, or shutting down`;
    }
    if (e.unclean) {
      if (!t.config.uncleanLeaderElection) return `topic ${t.name} does not allow unclean leader election`;
      return e.isr.length === 1 ? null : 'an unclean leader is alone in its ISR';
    }
    if (!p.isr.includes(e.leader)) return `broker ${e.leader} is not in the ISR`;
    return e.isr.every((id) => p.isr.includes(id)) ? null : 'an election may only remove ISR members';
  }

  private isrProblem(p: PartitionAssignment, change: IsrChange): string | null {
    if (p.leader !== change.leader || p.leaderEpoch !== change.leaderEpoch) {
      return `not the leader of epoch ${p.leaderEpoch} (${p.leader})`;
    }
    if (p.partitionEpoch !== change.partitionEpoch) {
      return `stale partition epoch ${change.partitionEpoch}, now ${p.partitionEpoch}`;
    }
    const shape = isrShapeProblem(p, change.isr, change.leader);
    if (shape !== null) return shape;
    for (const id of change.isr) {
      if (p.isr.includes(id)) continue;
      const broker = this.brokers.get(id);
      if (broker === undefined || broker.fenced || broker.shuttingDown) {
        return `broker ${id} cannot join the ISR: not registered, or fenced, or shutting down`;
      }
    }
    return null;
  }
}

function partitionOutcome(
  ref: { readonly topic: string; readonly partition: number },
  refusal: string | null,
  partitionEpoch: number,
): PartitionChangeOutcome {
  return { topic: ref.topic, partition: ref.partition, refusal, partitionEpoch };
}

function moveKey(topicId: string, partition: number): string {
  return `${topicId}:${partition}`;
}

function offsetKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

/** Why a topic as proposed cannot exist, or null: its shape must hold and its replicas be registered brokers. */
function topicProblem(t: TopicMetadata, brokers: ReadonlyMap<string, BrokerRegistration>): string | null {
  if (t.partitions.length !== t.numPartitions) return 'partition list does not match num_partitions';
  const minIsr = t.config.minInsyncReplicas;
  if (!Number.isSafeInteger(minIsr) || minIsr < 1 || minIsr > t.replicationFactor) {
    return `min_insync_replicas ${t.config.minInsyncReplicas} must be between 1 and the replication factor ${t.replicationFactor}`;
  }
  for (const [i, p] of t.partitions.entries()) {
    if (p.partition !== i) return `partition ${i} is listed as ${p.partition}`;
    if (p.replicas.length !== t.replicationFactor) return `partition ${i} has ${p.replicas.length} replicas`;
    if (new Set(p.replicas).size !== p.replicas.length) return `partition ${i} lists a replica twice`;
    for (const id of p.replicas)
      if (!brokers.has(id)) return `partition ${i} is placed on unknown broker ${id}`;
    if (!p.isr.includes(p.leader) || !p.isr.every((id) => p.replicas.includes(id))) {
      return `partition ${i}: the leader must be in the ISR and the ISR among the replicas`;
    }
  }
  return null;
}

/** Why a config change cannot apply, or null. Checked here too, since a proposal may come from any node. */
/** A topic's segment size bounds (bytes): a segment holds at least one largest batch, and stays an int32 file. */
export const SEGMENT_BYTES_MIN = 1024 * 1024;
export const SEGMENT_BYTES_MAX = 1024 * 1024 * 1024;

function configChangesProblem(c: TopicConfigChanges, replicationFactor: number): string | null {
  const within = (v: number | null, min: number, max: number) =>
    v === null || (Number.isSafeInteger(v) && v >= min && v <= max);
  if (!within(c.retentionMs, -1, Number.MAX_SAFE_INTEGER)) return 'retention_ms must be -1 or more';
  if (!within(c.retentionBytes, -1, Number.MAX_SAFE_INTEGER)) return 'retention_bytes must be -1 or more';
  if (!within(c.segmentBytes, SEGMENT_BYTES_MIN, SEGMENT_BYTES_MAX)) {
    return `segment_bytes must be between ${SEGMENT_BYTES_MIN} and ${SEGMENT_BYTES_MAX}`;
  }
  if (!within(c.minInsyncReplicas, 1, replicationFactor)) {
    return `min_insync_replicas must be between 1 and the replication factor ${replicationFactor}`;
  }
  return null;
}

function checkTopic(t: TopicMetadata): void {
  assert(t.partitions.length === t.numPartitions, `topic ${t.name}: partitions do not match their count`);
  for (const p of t.partitions) checkPartition(t.name, p);
}

function checkPartition(topic: string, p: PartitionAssignment): void {
  assert(p.isr.length > 0, `${topic}-${p.partition} has an empty ISR`);
  assert(
    p.isr.every((id) => p.replicas.includes(id)),
    `${topic}-${p.partition}: ISR outside the replicas`,
  );
  assert(p.leader === '' || p.isr.includes(p.leader), `${topic}-${p.partition}: leader outside the ISR`);
}

/** Why `isr` with `leader` cannot be the partition's: the leader in it, no duplicates, only replicas. */
function isrShapeProblem(p: PartitionAssignment, isr: readonly string[], leader: string): string | null {
  if (!isr.includes(leader)) return 'the leader must be in the ISR';
  if (new Set(isr).size !== isr.length) return 'the ISR lists a replica twice';
  if (!isr.every((id) => p.replicas.includes(id))) return 'the ISR must be among the replicas';
  return null;
}

function sameMembers(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((id) => b.includes(id));
}

function sameSettings(a: TopicMetadata, b: TopicMetadata): boolean {
  return (
    a.numPartitions === b.numPartitions &&
    a.replicationFactor === b.replicationFactor &&
    a.rackAwareness === b.rackAwareness &&
    a.config.retentionMs === b.config.retentionMs &&
    a.config.retentionBytes === b.config.retentionBytes &&
    a.config.segmentBytes === b.config.segmentBytes &&
    a.config.minInsyncReplicas === b.config.minInsyncReplicas &&
    a.config.cleanupPolicy === b.config.cleanupPolicy &&
    a.config.uncleanLeaderElection === b.config.uncleanLeaderElection
  );
}
