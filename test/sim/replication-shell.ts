// The partition-worker shell of the replication protocol, as the simulation runs it: what a real partition
// worker does around each PartitionReplica core (produce, the follower's fetch loop, the leader's answers,
// flushes, ISR proposals, reconciling roles from metadata snapshots), with the log, the network, the fsync
// and the clock left to a host. It is kept apart from the cluster harness so that it can be read side by side
// with the real shell: every decision is the core's; this class only carries decisions out, in the order
// the protocol needs.
//
// The rules it keeps (each one a line a real shell must also have):
// - Produce: `canAppend` first; a refusal is definite and nothing is appended. Otherwise one batch stamped
//   with the replica's `leaderEpoch`, `onLogChanged`, and for acks=all `awaitHighWatermark`; the flush runs
//   in the background and reports the new durable end with `onLogChanged`. acks=all is answered from
//   `ready().acks` ('ok' only when the high watermark passed it; 'lost_leadership'/'timed_out' are
//   indefinite); acks=1 once the leader's own flush covers the record.
// - ISR proposals from `ready().isrProposal` go to the metadata leader; a refusal or no answer in time is
//   `proposalFailed`.
// - Follower: `nextPlan()`; `truncate` cuts the log (and its epoch cache) and asks again; `epoch_query` and
//   `fetch` go to the leader, one request in flight per partition, retried after a timeout when lost. A
//   fetch whose offset is below the log end (the core waits for unsynced records to become durable) is not
//   sent: the flush completion asks again. Records are appended verbatim when the answer starts at the log
//   end (anything else is a stale or duplicated answer and is dropped); the answer itself
//   (`onFetchAnswer(records)`, which carries the leader's high watermark) is applied once the flush that
//   covers them has completed. Other answers are applied at once and their LogAction carried out.
// - Leader: a fetch is decided by `onFollowerFetch`; `read` sends up to `fetchBatchesMax` batches from the
//   offset up to the decision's `toOffset` (the leader's durable end, not the high watermark) with the high
//   watermark and log start. A fetch with nothing to read waits (long poll) until a flush makes more durable,
//   the high watermark moves, or `fetchWaitMaxMs` passes.
//   Epoch queries are answered with `epochEndOffset` only by an acting leader of the epoch the follower
//   names (anything else could hand out another log's offsets).
// - Metadata: every new snapshot is reconciled partition by partition with `applyMetadata`; a change of
//   role or epoch drops the follower's request in flight and answers parked fetches as fenced; a replica
//   that leaves a partition deletes its log.
// Single-threaded; one instance per broker incarnation, called only by the simulation's event loop.

import type { IsrChange } from '../../src/core/metadata/state-machine.js';
import type { EpochEndOffset } from '../../src/core/replication/epoch-cache.js';
import {
  type FetchAnswer,
  type FollowerFetch,
  type IsrProposal,
  type LogAction,
  PartitionReplica,
  type ReplicaConfig,
} from '../../src/core/replication/partition-replica.js';
import type { MetadataSnapshot, PartitionAssignment } from '../../src/metadata/types.js';
import { type SimBatch, SimLog } from './sim-log.js';

export type ShellMessage =
  | {
      readonly kind: 'produce';
      readonly pk: string;
      /** One batch of records (unique values). */
      readonly values: readonly number[];
      readonly acksAll: boolean;
      readonly reqId: number;
    }
  | {
      readonly kind: 'produce_answer';
      readonly reqId: number;
      readonly outcome: 'ok' | 'definite' | 'indefinite';
      readonly offset: number;
      readonly reason: string;
    }
  | { readonly kind: 'fetch'; readonly pk: string; readonly reqId: number; readonly fetch: FollowerFetch }
  | {
      readonly kind: 'fetch_answer';
      readonly pk: string;
      readonly reqId: number;
      readonly fromOffset: number;
      readonly answer: FetchAnswer;
      readonly batches: readonly SimBatch[];
    }
  | {
      readonly kind: 'epoch_query';
      readonly pk: string;
      readonly reqId: number;
      readonly leaderEpoch: number;
      readonly epoch: number;
    }
  | {
      readonly kind: 'epoch_answer';
      readonly pk: string;
      readonly reqId: number;
      readonly askedEpoch: number;
      /** null: the broker asked is not the acting leader of the epoch the follower named. */
      readonly answer: EpochEndOffset | null;
    }
  | { readonly kind: 'alter_isr'; readonly pk: string; readonly reqId: number; readonly change: IsrChange }
  | {
      readonly kind: 'alter_isr_answer';
      readonly pk: string;
      readonly reqId: number;
      readonly outcome: 'applied' | 'refused';
    };

export interface ShellConfig {
  readonly replica: ReplicaConfig;
  /** A fetch with nothing to read waits this long at most for records or a high watermark change. */
  readonly fetchWaitMaxMs: number;
  readonly fetchBatchesMax: number;
  /** A follower's request without an answer after this long is considered lost. */
  readonly requestTimeoutMs: number;
  /** After an answer saying the leader is not (yet) leading the follower's epoch. */
  readonly retryBackoffMs: number;
  /** An ISR proposal without an answer after this long has failed (for all the shell knows). */
  readonly isrRequestTimeoutMs: number;
}

/** What the shell reports, so that the simulation can check its invariants as things happen. */
export interface ShellObserver {
  leaderAppended(broker: string, pk: string, log: SimLog, batch: SimBatch): void;
  followerAppended(broker: string, pk: string, log: SimLog, batches: readonly SimBatch[]): void;
  /** The log was truncated or reset. */
  logCut(broker: string, pk: string, log: SimLog): void;
  /** An 'ok' answer is about to be sent for a produce whose batch starts at `baseOffset`. */
  answeredOk(
    broker: string,
    pk: string,
    baseOffset: number,
    values: readonly number[],
    epoch: number,
    acksAll: boolean,
  ): void;
  /** A definite refusal is about to be sent: nothing was appended for `values`. */
  refused(broker: string, values: readonly number[]): void;
  /** Anything about the replica may have changed (role, high watermark); called before its acks go out. */
  replicaTouched(broker: string, part: ShellPartition): void;
  note(broker: string, what: string): void;
}

export interface ShellHost {
  readonly nowMs: number;
  newId(): number;
  send(to: string, message: ShellMessage): void;
  /** Runs `onFlushDone(pk)` after a simulated fsync. */
  scheduleFlush(pk: string): void;
  /** The metadata Raft leader as this broker knows it, or '' when it knows none. */
  metadataLeader(): string;
  readonly observer: ShellObserver;
}

interface ProduceWaiter {
  readonly client: string;
  readonly reqId: number;
  readonly values: readonly number[];
  /** Where the request's batch starts. */
  readonly offset: number;
  readonly epoch: number;
}

export interface ShellPartition {
  readonly pk: string;
  readonly topic: string;
  readonly topicId: string;
  readonly partition: number;
  readonly replica: PartitionReplica;
  readonly log: SimLog;
  /** The assignment last applied (the snapshot's own object, so an unchanged partition is skipped). */
  assignment: PartitionAssignment | null;
  // Follower side.
  inflight: { readonly reqId: number; readonly sentAtMs: number } | null;
  retryAtMs: number;
  /** A records answer whose appended batches await their flush; applied when it completes. */
  heldAnswer: FetchAnswer | null;
  // Leader side.
  readonly parked: Map<
    string,
    { readonly reqId: number; readonly fromOffset: number; readonly untilMs: number }
  >;
  readonly ackWaiters: Map<number, ProduceWaiter>;
  readonly acks1: ProduceWaiter[];
  isrInFlight: { readonly reqId: number; readonly proposal: IsrProposal; readonly untilMs: number } | null;
}

export function partitionKey(topic: string, partition: number): string {
  return `${topic}/${partition}`;
}

export class ReplicaShell {
  readonly parts = new Map<string, ShellPartition>();
  private nextAckId = 1;

  constructor(
    readonly self: string,
    private readonly host: ShellHost,
    /** The broker's simulated disk: partition logs by key, surviving this shell. */
    private readonly disk: Map<string, SimLog>,
    private readonly config: ShellConfig,
  ) {}

  // ------------------------------------------------------------------------------------------------------
  // Metadata.

  reconcile(metadata: MetadataSnapshot): void {
    const now = this.host.nowMs;
    const seen = new Set<string>();
    for (const t of metadata.topics.values()) {
      for (const p of t.partitions) {
        if (!p.replicas.includes(this.self)) continue;
        const pk = partitionKey(t.name, p.partition);
        seen.add(pk);
        let part = this.parts.get(pk);
        if (part === undefined) {
          part = this.open(pk, t.name, t.topicId, p.partition);
          this.parts.set(pk, part);
        }
        if (part.assignment === p) continue;
        part.assignment = p;
        const roleBefore = part.replica.role;
        const epochBefore = part.replica.leaderEpoch;
        part.replica.applyMetadata(
          {
            leader: p.leader,
            leaderEpoch: p.leaderEpoch,
            partitionEpoch: p.partitionEpoch,
            replicas: p.replicas,
            isr: p.isr,
            minInsyncReplicas: t.config.minInsyncReplicas,
          },
          now,
        );
        if (part.replica.role !== roleBefore || part.replica.leaderEpoch !== epochBefore) {
          this.host.observer.note(
            this.self,
            `${pk} ${part.replica.role} of epoch ${part.replica.leaderEpoch} (leader ${p.leader || '-'}, isr ${p.isr.join(',')}, log ${part.log.logEndOffset})`,
          );
          this.roleChanged(part, roleBefore);
        }
        this.afterCore(part);
        this.drive(part);
      }
    }
    for (const [pk, part] of this.parts) {
      if (seen.has(pk)) continue;
      // No longer a replica: the log goes with it.
      this.parts.delete(pk);
      this.disk.delete(pk);
      for (const w of part.ackWaiters.values()) this.answer(w.client, w.reqId, 'indefinite', -1, 'removed');
      for (const w of part.acks1) this.answer(w.client, w.reqId, 'indefinite', -1, 'removed');
    }
  }

  private open(pk: string, topic: string, topicId: string, partition: number): ShellPartition {
    let log = this.disk.get(pk);
    if (log === undefined) {
      log = new SimLog();
      this.disk.set(pk, log);
    }
    const replica = new PartitionReplica(this.self, log.epochs, this.config.replica, {
      logStartOffset: log.logStartOffset,
      logEndOffset: log.logEndOffset,
      durableEndOffset: log.durableEndOffset,
    });
    return {
      pk,
      topic,
      topicId,
      partition,
      replica,
      log,
      assignment: null,
      inflight: null,
      retryAtMs: 0,
      heldAnswer: null,
      parked: new Map(),
      ackWaiters: new Map(),
      acks1: [],
      isrInFlight: null,
    };
  }

  /** A new role or epoch: requests of the old one are void. */
  private roleChanged(part: ShellPartition, roleBefore: string): void {
    part.inflight = null;
    part.retryAtMs = 0;
    part.heldAnswer = null;
    for (const [to, p] of part.parked) this.sendFenced(part, to, p.reqId, p.fromOffset);
    part.parked.clear();
    if (roleBefore === 'leader' && part.replica.role !== 'leader') {
      // acks=1 requests whose flush has not completed: their fate is no longer this replica's to tell.
      for (const w of part.acks1.splice(0))
        this.answer(w.client, w.reqId, 'indefinite', -1, 'lost_leadership');
    }
  }

  // ------------------------------------------------------------------------------------------------------
  // Produce.

  onProduce(client: string, m: Extract<ShellMessage, { kind: 'produce' }>): void {
    const part = this.parts.get(m.pk);
    const refusal =
      part === undefined ? { kind: 'not_leader' as const, leader: '' } : part.replica.canAppend(m.acksAll);
    if (part === undefined || refusal !== null) {
      this.host.observer.refused(this.self, m.values);
      this.answer(client, m.reqId, 'definite', -1, refusal?.kind ?? 'not_leader');
      return;
    }
    const epoch = part.replica.leaderEpoch;
    const batch = part.log.appendAsLeader(epoch, m.values);
    this.host.observer.leaderAppended(this.self, part.pk, part.log, batch);
    this.logChanged(part);
    const waiter: ProduceWaiter = {
      client,
      reqId: m.reqId,
      values: m.values,
      offset: batch.baseOffset,
      epoch,
    };
    if (m.acksAll) {
      const id = this.nextAckId++;
      part.ackWaiters.set(id, waiter);
      part.replica.awaitHighWatermark(id, batch.baseOffset + m.values.length, this.host.nowMs);
    } else {
      part.acks1.push(waiter);
    }
    this.flush(part);
    this.afterCore(part);
  }

  private answer(
    client: string,
    reqId: number,
    outcome: 'ok' | 'definite' | 'indefinite',
    offset: number,
    reason: string,
  ): void {
    this.host.send(client, { kind: 'produce_answer', reqId, outcome, offset, reason });
  }

  // ------------------------------------------------------------------------------------------------------
  // The log and its flushes.

  private logChanged(part: ShellPartition): void {
    const log = part.log;
    part.replica.onLogChanged(log.logStartOffset, log.logEndOffset, log.durableEndOffset);
  }

  private flush(part: ShellPartition): void {
    if (part.log.startFlush()) this.host.scheduleFlush(part.pk);
  }

  onFlushDone(pk: string): void {
    const log = this.disk.get(pk);
    if (log === undefined) return;
    log.completeFlush();
    const part = this.parts.get(pk);
    if (part === undefined || part.log !== log) return;
    this.logChanged(part);
    if (part.acks1.length > 0 && part.replica.role === 'leader') {
      let done = 0;
      for (const w of part.acks1) {
        if (w.offset + w.values.length > log.durableEndOffset) break;
        done++;
        if (w.values.every((v, i) => log.valueAt(w.offset + i) === v)) {
          this.host.observer.answeredOk(this.self, pk, w.offset, w.values, w.epoch, false);
          this.answer(w.client, w.reqId, 'ok', w.offset, '');
        } else {
          this.answer(w.client, w.reqId, 'indefinite', -1, 'truncated');
        }
      }
      part.acks1.splice(0, done);
    }
    this.wakeParked(part, false);
    if (part.heldAnswer !== null && !log.flushInProgress) {
      const held = part.heldAnswer;
      part.heldAnswer = null;
      this.cut(part, part.replica.onFetchAnswer(held));
    }
    this.flush(part);
    this.afterCore(part);
    this.drive(part);
  }

  private cut(part: ShellPartition, action: LogAction): void {
    if (action.kind === 'none') return;
    if (action.kind === 'truncate') part.log.truncateTo(action.offset);
    else part.log.reset(action.offset);
    this.host.observer.note(this.self, `${part.pk} ${action.kind} to ${action.offset}`);
    this.host.observer.logCut(this.self, part.pk, part.log);
    this.logChanged(part);
  }

  // ------------------------------------------------------------------------------------------------------
  // Outputs of the core.

  private afterCore(part: ShellPartition): void {
    const replica = part.replica;
    this.host.observer.replicaTouched(this.self, part);
    if (replica.hasReady()) {
      const rd = replica.ready();
      for (const ack of rd.acks) {
        const w = part.ackWaiters.get(ack.id);
        if (w === undefined) continue;
        part.ackWaiters.delete(ack.id);
        if (ack.kind === 'ok') {
          this.host.observer.answeredOk(this.self, part.pk, w.offset, w.values, w.epoch, true);
          this.answer(w.client, w.reqId, 'ok', w.offset, '');
        } else {
          this.answer(w.client, w.reqId, 'indefinite', -1, ack.kind);
        }
      }
      if (rd.isrProposal !== null) this.proposeIsr(part, rd.isrProposal);
      if (rd.highWatermarkChanged) this.wakeParked(part, true);
    }
  }

  private proposeIsr(part: ShellPartition, proposal: IsrProposal): void {
    const to = this.host.metadataLeader();
    if (to === '') {
      part.replica.proposalFailed(proposal);
      return;
    }
    const reqId = this.host.newId();
    part.isrInFlight = { reqId, proposal, untilMs: this.host.nowMs + this.config.isrRequestTimeoutMs };
    this.host.observer.note(
      this.self,
      `${part.pk} proposes isr ${proposal.isr.join(',')} (pe ${proposal.partitionEpoch})`,
    );
    this.host.send(to, {
      kind: 'alter_isr',
      pk: part.pk,
      reqId,
      change: {
        topicId: part.topicId,
        topic: part.topic,
        partition: part.partition,
        leader: this.self,
        leaderEpoch: proposal.leaderEpoch,
        partitionEpoch: proposal.partitionEpoch,
        isr: proposal.isr,
      },
    });
  }

  onIsrAnswer(m: Extract<ShellMessage, { kind: 'alter_isr_answer' }>): void {
    const part = this.parts.get(m.pk);
    if (part === undefined || part.isrInFlight?.reqId !== m.reqId) return;
    const { proposal } = part.isrInFlight;
    part.isrInFlight = null;
    if (m.outcome === 'refused') part.replica.proposalFailed(proposal);
    this.afterCore(part);
  }

  // ------------------------------------------------------------------------------------------------------
  // Follower.

  private drive(part: ShellPartition): void {
    for (let cuts = 0; cuts < 4; cuts++) {
      if (part.replica.role !== 'follower' || part.inflight !== null) return;
      if (this.host.nowMs < part.retryAtMs) return;
      const plan = part.replica.nextPlan();
      switch (plan.kind) {
        case 'idle':
          return;
        case 'truncate':
          this.cut(part, { kind: 'truncate', offset: plan.offset });
          this.afterCore(part);
          continue;
        case 'epoch_query': {
          const reqId = this.host.newId();
          part.inflight = { reqId, sentAtMs: this.host.nowMs };
          this.host.send(plan.leader, {
            kind: 'epoch_query',
            pk: part.pk,
            reqId,
            leaderEpoch: plan.leaderEpoch,
            epoch: plan.epoch,
          });
          return;
        }
        case 'fetch': {
          // The core reports only durable records: until the flush completes it would ask again for what
          // this log already holds. The flush completion drives again.
          if (plan.fetchOffset < part.log.logEndOffset && part.log.flushInProgress) return;
          const reqId = this.host.newId();
          part.inflight = { reqId, sentAtMs: this.host.nowMs };
          this.host.send(plan.leader, {
            kind: 'fetch',
            pk: part.pk,
            reqId,
            fetch: {
              replicaId: this.self,
              leaderEpoch: plan.leaderEpoch,
              fetchOffset: plan.fetchOffset,
              lastFetchedEpoch: plan.lastFetchedEpoch,
            },
          });
          return;
        }
      }
    }
  }

  onFetchAnswer(m: Extract<ShellMessage, { kind: 'fetch_answer' }>): void {
    const part = this.parts.get(m.pk);
    if (part === undefined || part.inflight?.reqId !== m.reqId) return;
    part.inflight = null;
    const answer = m.answer;
    if (answer.kind === 'records') {
      if (m.fromOffset !== part.log.logEndOffset) {
        // Not where this log ends (an answer overtaken by a truncation, or a duplicate): useless.
        this.drive(part);
        return;
      }
      if (m.batches.length > 0) {
        part.log.appendBatches(m.batches);
        this.host.observer.followerAppended(this.self, part.pk, part.log, m.batches);
        this.logChanged(part);
        this.flush(part);
      }
      part.heldAnswer = answer;
      if (!part.log.flushInProgress) {
        part.heldAnswer = null;
        this.cut(part, part.replica.onFetchAnswer(answer));
      }
    } else {
      this.cut(part, part.replica.onFetchAnswer(answer));
      if (answer.kind === 'fenced_epoch' || answer.kind === 'not_leader') {
        part.retryAtMs = this.host.nowMs + this.config.retryBackoffMs;
      }
    }
    this.afterCore(part);
    this.drive(part);
  }

  onEpochAnswer(m: Extract<ShellMessage, { kind: 'epoch_answer' }>): void {
    const part = this.parts.get(m.pk);
    if (part === undefined || part.inflight?.reqId !== m.reqId) return;
    part.inflight = null;
    if (m.answer === null) part.retryAtMs = this.host.nowMs + this.config.retryBackoffMs;
    else this.cut(part, part.replica.onEpochAnswer(m.askedEpoch, m.answer));
    this.afterCore(part);
    this.drive(part);
  }

  // ------------------------------------------------------------------------------------------------------
  // Leader.

  onFetch(from: string, m: Extract<ShellMessage, { kind: 'fetch' }>): void {
    const part = this.parts.get(m.pk);
    if (part === undefined) {
      this.host.send(from, {
        kind: 'fetch_answer',
        pk: m.pk,
        reqId: m.reqId,
        fromOffset: m.fetch.fetchOffset,
        answer: { kind: 'not_leader', leaderEpoch: -1 },
        batches: [],
      });
      return;
    }
    const decision = part.replica.onFollowerFetch(m.fetch, this.host.nowMs);
    if (decision.kind === 'read') {
      if (decision.fromOffset >= decision.toOffset) {
        part.parked.set(from, {
          reqId: m.reqId,
          fromOffset: decision.fromOffset,
          untilMs: this.host.nowMs + this.config.fetchWaitMaxMs,
        });
      } else {
        part.parked.delete(from);
        this.sendRecords(part, from, m.reqId, decision.fromOffset);
      }
    } else {
      part.parked.delete(from);
      this.host.send(from, {
        kind: 'fetch_answer',
        pk: m.pk,
        reqId: m.reqId,
        fromOffset: m.fetch.fetchOffset,
        answer: decision,
        batches: [],
      });
    }
    this.afterCore(part);
  }

  private sendRecords(part: ShellPartition, to: string, reqId: number, fromOffset: number): void {
    this.host.send(to, {
      kind: 'fetch_answer',
      pk: part.pk,
      reqId,
      fromOffset,
      answer: {
        kind: 'records',
        highWatermark: part.replica.highWatermark,
        logStartOffset: part.replica.logStartOffset,
      },
      batches: part.log.read(fromOffset, part.replica.durableEndOffset, this.config.fetchBatchesMax),
    });
  }

  private sendFenced(part: ShellPartition, to: string, reqId: number, fromOffset: number): void {
    this.host.send(to, {
      kind: 'fetch_answer',
      pk: part.pk,
      reqId,
      fromOffset,
      answer: { kind: 'fenced_epoch', leaderEpoch: part.replica.leaderEpoch },
      batches: [],
    });
  }

  /** Answers parked fetches: all of them (`all`), or those with durable records to read now. */
  private wakeParked(part: ShellPartition, all: boolean): void {
    if (part.parked.size === 0) return;
    const acting = part.replica.role === 'leader' && part.replica.canAppend(false) === null;
    for (const [to, p] of part.parked) {
      if (!all && p.fromOffset >= part.replica.durableEndOffset) continue;
      part.parked.delete(to);
      if (acting) this.sendRecords(part, to, p.reqId, p.fromOffset);
      else this.sendFenced(part, to, p.reqId, p.fromOffset);
    }
  }

  onEpochQuery(from: string, m: Extract<ShellMessage, { kind: 'epoch_query' }>): void {
    const part = this.parts.get(m.pk);
    const acting =
      part !== undefined &&
      part.replica.role === 'leader' &&
      part.replica.leaderEpoch === m.leaderEpoch &&
      part.replica.canAppend(false) === null;
    this.host.send(from, {
      kind: 'epoch_answer',
      pk: m.pk,
      reqId: m.reqId,
      askedEpoch: m.epoch,
      answer: acting ? part.replica.epochEndOffset(m.epoch) : null,
    });
  }

  // ------------------------------------------------------------------------------------------------------
  // Time.

  tick(): void {
    const now = this.host.nowMs;
    for (const part of this.parts.values()) {
      part.replica.tick(now);
      if (part.parked.size > 0) {
        const acting = part.replica.role === 'leader' && part.replica.canAppend(false) === null;
        for (const [to, p] of part.parked) {
          if (p.untilMs > now) continue;
          part.parked.delete(to);
          if (acting) this.sendRecords(part, to, p.reqId, p.fromOffset);
          else this.sendFenced(part, to, p.reqId, p.fromOffset);
        }
      }
      if (part.inflight !== null && now - part.inflight.sentAtMs >= this.config.requestTimeoutMs) {
        part.inflight = null;
      }
      if (part.isrInFlight !== null && now >= part.isrInFlight.untilMs) {
        part.replica.proposalFailed(part.isrInFlight.proposal);
        part.isrInFlight = null;
      }
      this.afterCore(part);
      this.drive(part);
    }
  }
}
