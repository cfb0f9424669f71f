// One replica of one partition, as a pure state machine: what Kafka's Partition and its replica fetcher decide,
// with the I/O left to the shell (a partition worker, or the simulation). The shell tells it what the metadata
// says (`applyMetadata`), what its log did (`onLogChanged`), what followers asked (`onFollowerFetch`, on the
// leader) and what the leader answered (`onEpochAnswer`, `onFetchAnswer`, on a follower); it answers with
// values, and collects asynchronous outputs in a `ReplicaReady` (an ISR change to propose through Raft,
// acks=all requests the high watermark has released or failed).
//
// The rules it keeps, after Kafka's replication protocol with KIP-101/279 (truncation by leader epoch),
// KIP-497 (maximal ISR) and KIP-966 (strict min ISR), and Redpanda's fsync-before-report:
// - The high watermark is the minimum over the maximal ISR (committed ISR plus a proposed addition) of each
//   replica's DURABLE log end: the leader's flushed offset and each follower's fetch offset, which a follower
//   only advances after fsyncing. It never moves while the maximal ISR is smaller than min.insync.replicas, and
//   never moves back. An acks=all produce is answered once the high watermark passes it, so an acknowledged
//   record is on disk on at least min.insync.replicas replicas, every one of them in the ISR.
// - A follower truncates only to where the leader says its latest epoch ends (never to its own high
//   watermark), and the leader checks every fetch's last fetched epoch against its own epochs.
// - A leader offers followers only records it holds durably. A leader that crashes loses its unsynced tail and
//   may come back leading the same epoch (nothing bumps an epoch when a broker restarts faster than the
//   failure detector notices, or while the whole cluster is down); a follower that had fetched that tail
//   would then hold other records than the leader at the same offsets under the same epoch, which no epoch
//   check can tell apart. So every follower's records of an epoch stay a prefix of its leader's log.
// - A follower leaves the ISR after `replicaLagTimeMaxMs` without catching up; it is proposed back only once it
//   has fetched in the current epoch and its durable end has reached both the high watermark and the epoch's
//   start offset. ISR changes are proposed one at a time with the partition epoch they were based on; the
//   metadata applies them only if that epoch is still current (compare-and-set). So a proposed member counts
//   for the high watermark from its proposal until the metadata's partition epoch moves past it: neither a
//   timeout nor a lost or refused answer proves that a copy of the proposal will not still be applied. A
//   replica that leads from the first metadata its process sees cannot know what its previous process
//   proposed: it counts every replica until the partition epoch moves, and proposes its ISR unchanged.
// - A new leader exposes no high watermark until it has committed up to its epoch's start offset (everything
//   an earlier leader may have acknowledged), so a consumer never sees the high watermark go back.
// - A fetch naming a newer leader epoch tells the leader it has been deposed: it takes no more writes until
//   the metadata catches up. A fetch naming an older epoch is refused.
// Pure: no I/O, no clock (time is passed in), no randomness. Owned by one thread.
import { assert } from '../assert.js';
import type { EpochCache, EpochEndOffset } from './epoch-cache.js';

export interface ReplicaConfig {
  /** A follower that has not caught up for this long leaves the ISR (Kafka's replica.lag.time.max.ms). */
  readonly replicaLagTimeMaxMs: number;
  /** An ISR change not reflected in the metadata after this long is proposed again. */
  readonly isrProposalTimeoutMs: number;
  /** acks=all produce requests wait at most this long for the high watermark, then fail as indefinite. */
  readonly ackTimeoutMs: number;
  /** Pending acks=all requests per partition at most; more are refused before anything is appended. */
  readonly pendingAcksMax: number;
  /** Test-only: a deliberate bug, so that the simulation can show it catches it. Never set in production. */
  readonly plantedBug?: PlantedBug;
}

export type PlantedBug =
  /** A follower truncates to its own high watermark instead of asking the leader (the KIP-101 bug). */
  | 'truncate_to_local_hw'
  /** A follower reports its log end before fsyncing it. */
  | 'count_before_fsync'
  /** The high watermark advances while the ISR is smaller than min.insync.replicas. */
  | 'hw_below_min_isr';

export const DEFAULT_REPLICA_CONFIG: ReplicaConfig = {
  replicaLagTimeMaxMs: 10_000,
  isrProposalTimeoutMs: 5_000,
  ackTimeoutMs: 30_000,
  pendingAcksMax: 100_000,
};

/** A partition as the metadata describes it. */
export interface PartitionView {
  readonly leader: string;
  readonly leaderEpoch: number;
  /** Bumped by every leader or ISR change: what an ISR proposal is compared against. */
  readonly partitionEpoch: number;
  readonly replicas: readonly string[];
  readonly isr: readonly string[];
  readonly minInsyncReplicas: number;
}

export type ReplicaRole = 'leader' | 'follower' | 'none';

/** An ISR change the leader asks the metadata to make; applies only if `partitionEpoch` is still current. */
export interface IsrProposal {
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
  readonly isr: readonly string[];
}

export interface AckOutcome {
  readonly id: number;
  /** 'ok': the high watermark passed the request; otherwise its outcome is unknown to the client. */
  readonly kind: 'ok' | 'lost_leadership' | 'timed_out';
}

export interface ReplicaReady {
  readonly isrProposal: IsrProposal | null;
  readonly acks: readonly AckOutcome[];
  /** The high watermark consumers may read below moved (or became servable). */
  readonly highWatermarkChanged: boolean;
}

/** Why the leader cannot take a produce now; nothing is appended for any of these. */
export type AppendRefusal =
  | { readonly kind: 'not_leader'; readonly leader: string }
  | { readonly kind: 'not_enough_replicas'; readonly isr: number; readonly minInsyncReplicas: number }
  | { readonly kind: 'too_many_pending' };

/** What a follower's fetch asks of the leader. */
export interface FollowerFetch {
  readonly replicaId: string;
  /** The leader epoch the follower believes current. */
  readonly leaderEpoch: number;
  /** The follower's durable log end: where to read from, and what it holds on disk. */
  readonly fetchOffset: number;
  /** The epoch of the follower's last record (-1 for an empty log): checked for divergence. */
  readonly lastFetchedEpoch: number;
}

/** The leader's decision on a follower fetch. */
export type FetchDecision =
  /**
   * Read from `fromOffset` up to `toOffset` (exclusive: the leader's durable end; nothing when `fromOffset`
   * is at or past it); send `highWatermark` and `logStartOffset`.
   */
  | {
      readonly kind: 'read';
      readonly fromOffset: number;
      readonly toOffset: number;
      readonly highWatermark: number;
      readonly logStartOffset: number;
    }
  /** The follower's log parts from the leader's before `fetchOffset`: it must truncate to `endOffset`. */
  | { readonly kind: 'diverging'; readonly epoch: number; readonly endOffset: number }
  /** The fetch offset is below the leader's log start: the follower starts over there. */
  | { readonly kind: 'out_of_range'; readonly logStartOffset: number; readonly logEndOffset: number }
  /** The follower's epoch is older than the leader's: it must learn the new metadata first. */
  | { readonly kind: 'fenced_epoch'; readonly leaderEpoch: number }
  /** The follower names an epoch newer than this replica's: this replica is no longer (or not yet) leader. */
  | { readonly kind: 'not_leader'; readonly leaderEpoch: number };

/** What a follower should do next: ask its leader something, cut its own log first, or wait. */
export type FollowerPlan =
  | {
      readonly kind: 'epoch_query';
      readonly leader: string;
      readonly leaderEpoch: number;
      readonly epoch: number;
    }
  /**
   * Cut the log and its epoch cache at `offset` (possibly the log end, to drop epochs recorded there without
   * records), report it with onLogChanged, then ask for the next plan.
   */
  | { readonly kind: 'truncate'; readonly offset: number }
  | ({ readonly kind: 'fetch'; readonly leader: string } & Omit<FollowerFetch, 'replicaId'>)
  | { readonly kind: 'idle' };

/** The leader's answer to a fetch, as the follower sees it (records are appended by the shell first). */
export type FetchAnswer =
  | { readonly kind: 'records'; readonly highWatermark: number; readonly logStartOffset: number }
  | { readonly kind: 'diverging'; readonly epoch: number; readonly endOffset: number }
  | { readonly kind: 'out_of_range'; readonly logStartOffset: number; readonly logEndOffset: number }
  | { readonly kind: 'fenced_epoch'; readonly leaderEpoch: number }
  | { readonly kind: 'not_leader'; readonly leaderEpoch: number };

/** What the shell must do to the local log after an answer from the leader. */
export type LogAction =
  | { readonly kind: 'none' }
  /**
   * Cut the log at `offset` and the epoch cache with it (`truncateFromEnd(offset)`). `offset` may be the log
   * end: then no record goes, only epochs recorded at the end without records.
   */
  | { readonly kind: 'truncate'; readonly offset: number }
  /** Drop everything and continue at `offset` (the leader's log start is past this log's end). */
  | { readonly kind: 'reset'; readonly offset: number };

interface FollowerProgress {
  /** Durable log end the follower reported with its last fetch; -1 until it fetched in this epoch. */
  durableEnd: number;
  lastFetchMs: number;
  lastCaughtUpMs: number;
  /** The leader's durable end at the follower's previous fetch (Kafka's lastFetchLeaderLogEndOffset). */
  lastFetchLeaderEnd: number;
}

interface PendingAck {
  readonly id: number;
  /** The request is acknowledged once the high watermark reaches this (one past its last record). */
  readonly endOffset: number;
  readonly deadlineMs: number;
}

interface PendingIsr {
  readonly proposal: IsrProposal;
  readonly proposedAtMs: number;
}

export class PartitionReplica {
  private roleNow: ReplicaRole = 'none';
  private view: PartitionView | null = null;
  private logStart = 0;
  private logEnd = 0;
  private durableEnd = 0;
  private hw = 0;
  /** Leader: the log end when it became leader of this epoch; its high watermark is served from there on. */
  private epochStart = 0;
  /** Leader: a fetch named a newer epoch, so another replica leads now; refuses writes until told so. */
  private deposed = false;
  private readonly followers = new Map<string, FollowerProgress>();
  private pendingIsr: PendingIsr | null = null;
  /**
   * Leader: members that proposals based on partition epoch `proposedAtPartitionEpoch` would add to the ISR.
   * Any of those proposals may still be applied while the metadata stays at that epoch, whatever became of
   * its answer, so these members count for the high watermark until the metadata moves past it.
   */
  private proposedAdditions: string[] = [];
  private proposedAtPartitionEpoch = -1;
  private proposalOut: IsrProposal | null = null;
  private readonly acks: PendingAck[] = [];
  private acksHead = 0;
  private readonly acksOut: AckOutcome[] = [];
  private hwChanged = false;
  /** Follower: true until the leader has said where this replica's latest epoch ends. */
  private needsTruncation = false;

  constructor(
    readonly self: string,
    readonly epochs: EpochCache,
    private readonly config: ReplicaConfig,
    log: {
      readonly logStartOffset: number;
      readonly logEndOffset: number;
      readonly durableEndOffset: number;
    },
  ) {
    this.setLog(log.logStartOffset, log.logEndOffset, log.durableEndOffset);
  }

  get role(): ReplicaRole {
    return this.roleNow;
  }

  get leaderEpoch(): number {
    return this.view?.leaderEpoch ?? -1;
  }

  get leader(): string {
    return this.view?.leader ?? '';
  }

  /** The committed ISR as the metadata says. */
  get isr(): readonly string[] {
    return this.view?.isr ?? [];
  }

  get logStartOffset(): number {
    return this.logStart;
  }

  get logEndOffset(): number {
    return this.logEnd;
  }

  get durableEndOffset(): number {
    return this.durableEnd;
  }

  /** This replica's high watermark: computed on the leader, learned from the leader on a follower. */
  get highWatermark(): number {
    return this.hw;
  }

  /**
   * The high watermark consumers may read below, or -1 while it cannot be served: a leader that has not yet
   * committed its epoch's start offset, a deposed leader, or a replica that is not the leader.
   */
  get servableHighWatermark(): number {
    if (this.roleNow !== 'leader' || this.deposed) return -1;
    return this.hw >= this.epochStart ? this.hw : -1;
  }

  /** Leader: the log end when this epoch's leadership began; the high watermark is served from there on. */
  get epochStartOffset(): number {
    return this.epochStart;
  }

  /**
   * Leader, just created for a log another core of this broker led until now in the same epoch (a partition
   * moved between the node's workers): takes over that core's high watermark and epoch start, so consumers see
   * no step back and no pause. The high watermark never claims more than this log holds durably; followers
   * start unknown, which holds the watermark where it is until each fetches again.
   */
  continueLeadership(leaderEpoch: number, highWatermark: number, epochStartOffset: number): void {
    if (this.roleNow !== 'leader' || this.view!.leaderEpoch !== leaderEpoch || this.deposed) return;
    assert(
      epochStartOffset >= 0 && epochStartOffset <= this.logEnd,
      `epoch start ${epochStartOffset} past the log end ${this.logEnd}`,
    );
    this.epochStart = Math.min(this.epochStart, epochStartOffset);
    const hw = Math.min(highWatermark, this.durableEnd);
    if (hw > this.hw) {
      this.hw = hw;
      this.hwChanged = true;
    }
  }

  /** Leader: each follower's durable log end as last reported (-1 before its first fetch of this epoch). */
  followerEnds(): ReadonlyMap<string, number> {
    const out = new Map<string, number>();
    for (const [id, f] of this.followers) out.set(id, f.durableEnd);
    return out;
  }

  // ------------------------------------------------------------------------------------------------------
  // Inputs.

  /**
   * The metadata changed (or was first seen). Becomes leader, follower or neither as it says; a new leader
   * epoch on a leader restarts its follower tracking, fails its pending acks=all requests as indefinite when
   * leadership is lost, and records the epoch in the epoch cache at the log end.
   */
  applyMetadata(view: PartitionView, nowMs: number): void {
    assert(
      view.isr.every((id) => view.replicas.includes(id)),
      'the ISR is among the replicas',
    );
    const old = this.view;
    if (old !== null) {
      assert(
        view.leaderEpoch >= old.leaderEpoch,
        `leader epoch went back from ${old.leaderEpoch} to ${view.leaderEpoch}`,
      );
      if (view.leaderEpoch === old.leaderEpoch && view.partitionEpoch < old.partitionEpoch) return;
    }
    this.view = view;
    const role: ReplicaRole =
      view.leader === this.self ? 'leader' : view.replicas.includes(this.self) ? 'follower' : 'none';
    const newEpoch = old === null || old.leaderEpoch !== view.leaderEpoch;
    if (role === 'leader' && (newEpoch || this.roleNow !== 'leader')) {
      this.becomeLeader(nowMs);
    } else if (role !== 'leader') {
      if (this.roleNow === 'leader') this.failAllAcks('lost_leadership');
      this.followers.clear();
      this.deposed = false;
      if (role === 'follower' && (newEpoch || this.roleNow !== 'follower')) this.needsTruncation = true;
    }
    this.roleNow = role;
    if (this.pendingIsr !== null && view.partitionEpoch !== this.pendingIsr.proposal.partitionEpoch) {
      // The metadata moved past the epoch the proposal was based on: it was applied, or lost to another change.
      this.pendingIsr = null;
    }
    if (view.partitionEpoch !== this.proposedAtPartitionEpoch) {
      // No proposal based on an older partition epoch can apply any more: the committed ISR says it all.
      this.proposedAdditions = [];
      this.proposedAtPartitionEpoch = -1;
    }
    if (role === 'leader' && old === null && view.isr.length < view.replicas.length) {
      // Leading from the first metadata this process sees: an earlier process of this broker may have led
      // this epoch and proposed adding any replica at this partition epoch, a proposal that may be committed
      // (this node's metadata may lag) or still on its way. Every replica counts until the metadata moves past
      // this partition epoch, and the ISR proposed unchanged makes it move.
      this.propose(view.isr, nowMs);
      this.proposedAdditions = view.replicas.filter((id) => !view.isr.includes(id));
    }
    if (role === 'leader') {
      for (const id of view.replicas) {
        if (id !== this.self && !this.followers.has(id))
          this.followers.set(id, freshProgress(nowMs, this.durableEnd));
      }
      // A replica moved away is no follower any more: a fetch of its still on the way is refused (fenced), so it
      // can neither be proposed for the ISR nor hold the high watermark back.
      for (const id of this.followers.keys()) if (!view.replicas.includes(id)) this.followers.delete(id);
      this.proposedAdditions = this.proposedAdditions.filter((id) => view.replicas.includes(id));
      this.maybeAdvanceHighWatermark();
    }
  }

  private becomeLeader(nowMs: number): void {
    const view = this.view!;
    this.deposed = false;
    this.needsTruncation = false;
    this.pendingIsr = null;
    this.proposedAdditions = [];
    this.proposedAtPartitionEpoch = -1;
    this.followers.clear();
    for (const id of view.replicas) {
      if (id !== this.self) this.followers.set(id, freshProgress(nowMs, this.durableEnd));
    }
    this.epochs.assign(view.leaderEpoch, this.logEnd);
    this.epochStart = this.logEnd;
    // The high watermark learned as a follower stays (it is <= every committed offset); it is not served until
    // it reaches the epoch start.
    this.hwChanged = true;
  }

  /** The local log changed: an append, a flush, a truncation or a move of the log start. */
  onLogChanged(logStartOffset: number, logEndOffset: number, durableEndOffset: number): void {
    this.setLog(logStartOffset, logEndOffset, durableEndOffset);
    if (this.roleNow === 'leader') this.maybeAdvanceHighWatermark();
    else if (this.hw > this.durableEnd) {
      // A follower's high watermark never claims more than it holds on disk.
      this.hw = this.durableEnd;
      this.hwChanged = true;
    }
  }

  private setLog(logStart: number, logEnd: number, durableEnd: number): void {
    assert(logStart <= logEnd && durableEnd <= logEnd, `log figures ${logStart} ${durableEnd} ${logEnd}`);
    this.logStart = logStart;
    this.logEnd = logEnd;
    this.durableEnd = Math.max(durableEnd, logStart);
  }

  /** Leader: can a produce with these acks be appended now? Checked before anything is written. */
  canAppend(acksAll: boolean): AppendRefusal | null {
    const view = this.view;
    if (this.roleNow !== 'leader' || view === null || this.deposed) {
      return { kind: 'not_leader', leader: this.deposed ? '' : (view?.leader ?? '') };
    }
    if (acksAll) {
      if (view.isr.length < view.minInsyncReplicas) {
        return {
          kind: 'not_enough_replicas',
          isr: view.isr.length,
          minInsyncReplicas: view.minInsyncReplicas,
        };
      }
      if (this.acks.length - this.acksHead >= this.config.pendingAcksMax) return { kind: 'too_many_pending' };
    }
    return null;
  }

  /**
   * Leader: an acks=all request whose records end (exclusive) at `endOffset` was appended; it is answered
   * through `ready().acks` once the high watermark reaches `endOffset`. Requests are registered in log order,
   * except an idempotent retry of an older batch (a duplicate): one ending below a request already waiting
   * waits with that one, which is later than needed and never earlier.
   */
  awaitHighWatermark(id: number, endOffset: number, nowMs: number): void {
    assert(this.roleNow === 'leader', 'only a leader waits for its high watermark');
    if (endOffset <= this.hw) {
      this.acksOut.push({ id, kind: 'ok' });
      return;
    }
    const last = this.acksHead === this.acks.length ? undefined : this.acks[this.acks.length - 1];
    const waitFor = last === undefined ? endOffset : Math.max(endOffset, last.endOffset);
    this.acks.push({ id, endOffset: waitFor, deadlineMs: nowMs + this.config.ackTimeoutMs });
  }

  /**
   * Leader: a follower fetched. Records its durable log end (the fetch offset), checks its epoch and its log
   * against this leader's epochs, and decides what to send back. May advance the high watermark and propose
   * the follower back into the ISR.
   */
  onFollowerFetch(fetch: FollowerFetch, nowMs: number): FetchDecision {
    const view = this.view;
    if (view === null || this.roleNow !== 'leader' || this.deposed) {
      return { kind: 'not_leader', leaderEpoch: view?.leaderEpoch ?? -1 };
    }
    if (fetch.leaderEpoch > view.leaderEpoch) {
      // A newer leader exists: stop taking writes at once rather than wait for the metadata.
      this.deposed = true;
      this.failAllAcks('lost_leadership');
      this.hwChanged = true;
      return { kind: 'not_leader', leaderEpoch: view.leaderEpoch };
    }
    if (fetch.leaderEpoch < view.leaderEpoch) return { kind: 'fenced_epoch', leaderEpoch: view.leaderEpoch };
    const progress = this.followers.get(fetch.replicaId);
    if (progress === undefined) return { kind: 'fenced_epoch', leaderEpoch: view.leaderEpoch };
    if (fetch.fetchOffset < this.logStart) {
      return { kind: 'out_of_range', logStartOffset: this.logStart, logEndOffset: this.logEnd };
    }
    if (fetch.fetchOffset > 0 && fetch.lastFetchedEpoch >= 0) {
      // The follower's last record must be where this log has the same epoch (KIP-320's check).
      const end = this.epochs.endOffsetFor(fetch.lastFetchedEpoch, this.logEnd);
      if (end.epoch !== fetch.lastFetchedEpoch || end.endOffset < fetch.fetchOffset) {
        return { kind: 'diverging', epoch: end.epoch, endOffset: end.endOffset };
      }
    } else if (fetch.fetchOffset > this.logEnd) {
      return { kind: 'diverging', epoch: -1, endOffset: -1 };
    }
    // The fetch offset is durable on the follower: it counts toward the high watermark. A follower is offered
    // records only up to the leader's durable end, so reaching that is being caught up.
    if (fetch.fetchOffset >= this.durableEnd) progress.lastCaughtUpMs = nowMs;
    else if (fetch.fetchOffset >= progress.lastFetchLeaderEnd) progress.lastCaughtUpMs = progress.lastFetchMs;
    progress.lastFetchLeaderEnd = this.durableEnd;
    progress.lastFetchMs = nowMs;
    progress.durableEnd = Math.min(fetch.fetchOffset, this.logEnd);
    this.maybeExpandIsr(fetch.replicaId, nowMs);
    this.maybeAdvanceHighWatermark();
    return {
      kind: 'read',
      fromOffset: fetch.fetchOffset,
      toOffset: this.durableEnd,
      highWatermark: this.hw,
      logStartOffset: this.logStart,
    };
  }

  /** Leader: where `epoch` ends in this log (the answer to a follower's epoch query). */
  epochEndOffset(epoch: number): EpochEndOffset {
    return this.epochs.endOffsetFor(epoch, this.logEnd);
  }

  /** Time passes: shrinks the ISR of lagging followers, times out acks=all requests, retries a lost proposal. */
  tick(nowMs: number): void {
    while (this.acksHead < this.acks.length && this.acks[this.acksHead]!.deadlineMs <= nowMs) {
      // Requests time out in order of their deadlines, which follow their registration order.
      this.acksOut.push({ id: this.acks[this.acksHead]!.id, kind: 'timed_out' });
      this.acksHead++;
    }
    this.compactAcks();
    if (this.roleNow !== 'leader' || this.deposed) return;
    const view = this.view!;
    if (this.pendingIsr !== null) {
      if (nowMs - this.pendingIsr.proposedAtMs < this.config.isrProposalTimeoutMs) return;
      // No answer in time: another proposal may go out (its additions still count, see proposedAdditions).
      this.pendingIsr = null;
    }
    // A proposed member that stopped catching up is lagging too: proposing the ISR without it (possibly the
    // committed ISR unchanged) moves the partition epoch past the proposal that would have added it.
    // Runs for every led partition on every tick: nothing is allocated unless a member lags.
    const members = this.maximalIsr();
    let lagging: string[] | null = null;
    for (let i = 0; i < members.length; i++) {
      const id = members[i]!;
      if (id === this.self) continue;
      const f = this.followers.get(id);
      if (f !== undefined && nowMs - f.lastCaughtUpMs <= this.config.replicaLagTimeMaxMs) continue;
      if (lagging === null) lagging = [];
      lagging.push(id);
    }
    if (lagging !== null) {
      const out = lagging;
      this.propose(
        view.isr.filter((id) => !out.includes(id)),
        nowMs,
      );
    }
  }

  // ------------------------------------------------------------------------------------------------------
  // Follower.

  /** Follower: what to ask the leader next. */
  nextPlan(): FollowerPlan {
    const view = this.view;
    if (this.roleNow !== 'follower' || view === null || view.leader === '') return { kind: 'idle' };
    if (this.needsTruncation) {
      if (this.logEnd === this.logStart || this.epochs.latestEpoch < 0) {
        // An empty log has nothing to truncate; a log without epochs asks from the start.
        this.needsTruncation = this.logEnd !== this.logStart;
        if (this.needsTruncation) {
          return { kind: 'epoch_query', leader: view.leader, leaderEpoch: view.leaderEpoch, epoch: 0 };
        }
        // An empty log may still hold an epoch it led without writing: it must go before records arrive.
        if (this.epochs.size > 0) return { kind: 'truncate', offset: this.logStart };
      } else if (this.config.plantedBug === 'truncate_to_local_hw') {
        // Planted bug: the pre-KIP-101 rule, truncating to this replica's own high watermark.
        this.needsTruncation = false;
        const offset = Math.max(this.logStart, Math.min(this.hw, this.logEnd));
        if (offset < this.logEnd) return { kind: 'truncate', offset };
      } else {
        return {
          kind: 'epoch_query',
          leader: view.leader,
          leaderEpoch: view.leaderEpoch,
          epoch: this.epochs.latestEpoch,
        };
      }
    }
    const fetchOffset = this.config.plantedBug === 'count_before_fsync' ? this.logEnd : this.durableEnd;
    return {
      kind: 'fetch',
      leader: view.leader,
      leaderEpoch: view.leaderEpoch,
      fetchOffset,
      lastFetchedEpoch: fetchOffset > this.logStart ? this.epochs.epochAt(fetchOffset - 1) : -1,
    };
  }

  /** Follower: the leader said where the epoch asked about ends. Returns what to do to the log. */
  onEpochAnswer(askedEpoch: number, answer: EpochEndOffset): LogAction {
    if (this.roleNow !== 'follower') return { kind: 'none' };
    this.needsTruncation = false;
    return this.truncationFor(askedEpoch, answer);
  }

  private truncationFor(askedEpoch: number, answer: EpochEndOffset): LogAction {
    if (answer.epoch < 0 || answer.endOffset < 0) {
      // The leader has no epoch at or before ours: nothing of this log can be trusted to match it.
      return this.logEnd > this.logStart || this.epochs.size > 0
        ? { kind: 'truncate', offset: this.logStart }
        : { kind: 'none' };
    }
    // KIP-279: when the leader's epoch is older than the one asked about, this log's own end of that older
    // epoch bounds the match too.
    const ownEnd =
      answer.epoch < askedEpoch ? this.epochs.endOffsetFor(answer.epoch, this.logEnd).endOffset : this.logEnd;
    const target = Math.max(this.logStart, Math.min(answer.endOffset, ownEnd < 0 ? this.logStart : ownEnd));
    // At the log end no record is cut, but an epoch this replica recorded there as a leader that wrote nothing
    // must leave the cache (Kafka's UnifiedLog.truncateTo does the same): the batches fetched next land at
    // that offset with an older epoch, and the cache would give them the newer one.
    const trailing = (this.epochs.entries().at(-1)?.startOffset ?? -1) >= target;
    return target < this.logEnd || trailing ? { kind: 'truncate', offset: target } : { kind: 'none' };
  }

  /**
   * Follower: the leader answered a fetch. For `records` the shell has already appended them (and called
   * `onLogChanged`); this takes the leader's high watermark. Returns what to do to the log.
   */
  onFetchAnswer(answer: FetchAnswer): LogAction {
    if (this.roleNow !== 'follower') return { kind: 'none' };
    switch (answer.kind) {
      case 'records': {
        const hw = Math.min(answer.highWatermark, this.durableEnd);
        if (hw > this.hw) {
          this.hw = hw;
          this.hwChanged = true;
        }
        return { kind: 'none' };
      }
      case 'diverging':
        return this.truncationFor(this.epochs.latestEpoch, {
          epoch: answer.epoch,
          endOffset: answer.endOffset,
        });
      case 'out_of_range':
        if (this.durableEnd < answer.logStartOffset) return { kind: 'reset', offset: answer.logStartOffset };
        // Past the leader's end: this log holds records the leader does not; find where they part.
        this.needsTruncation = true;
        return { kind: 'none' };
      case 'fenced_epoch':
      case 'not_leader':
        // One of the two has stale metadata; the next applyMetadata settles it.
        return { kind: 'none' };
    }
  }

  // ------------------------------------------------------------------------------------------------------
  // Outputs.

  hasReady(): boolean {
    return this.proposalOut !== null || this.acksOut.length > 0 || this.hwChanged;
  }

  ready(): ReplicaReady {
    const ready: ReplicaReady = {
      isrProposal: this.proposalOut,
      acks: this.acksOut.splice(0),
      highWatermarkChanged: this.hwChanged,
    };
    this.proposalOut = null;
    this.hwChanged = false;
    return ready;
  }

  /**
   * The shell could not deliver the proposal, or the metadata leader refused it: another may be proposed. The
   * members it would have added still count for the high watermark until the metadata moves past its
   * partition epoch, since a lost or late answer does not prove it was not applied.
   */
  proposalFailed(proposal: IsrProposal): void {
    if (this.pendingIsr?.proposal === proposal) this.pendingIsr = null;
  }

  // ------------------------------------------------------------------------------------------------------
  // Leader internals.

  private maybeExpandIsr(id: string, nowMs: number): void {
    const view = this.view!;
    if (view.isr.includes(id) || !view.replicas.includes(id) || this.pendingIsr !== null) return;
    const f = this.followers.get(id)!;
    // A follower rejoins only with everything acknowledged so far, and everything of earlier epochs.
    if (f.durableEnd < this.hw || f.durableEnd < this.epochStart) return;
    this.propose([...view.isr, id], nowMs);
  }

  private propose(isr: readonly string[], nowMs: number): void {
    const view = this.view!;
    assert(isr.includes(this.self), 'a leader never proposes an ISR without itself');
    const proposal: IsrProposal = {
      leaderEpoch: view.leaderEpoch,
      partitionEpoch: view.partitionEpoch,
      isr: [...isr],
    };
    this.pendingIsr = { proposal, proposedAtMs: nowMs };
    this.proposalOut = proposal;
    if (this.proposedAtPartitionEpoch !== view.partitionEpoch) {
      this.proposedAdditions = [];
      this.proposedAtPartitionEpoch = view.partitionEpoch;
    }
    for (const id of isr) {
      if (!view.isr.includes(id) && !this.proposedAdditions.includes(id)) this.proposedAdditions.push(id);
    }
  }

  /**
   * The committed ISR plus every member a proposal based on the current partition epoch would add (KIP-497):
   * removals count only once committed, additions from the moment they are proposed.
   */
  private maximalIsr(): readonly string[] {
    const isr = this.view!.isr;
    if (this.proposedAdditions.length === 0) return isr;
    return [...isr, ...this.proposedAdditions.filter((id) => !isr.includes(id))];
  }

  private maybeAdvanceHighWatermark(): void {
    if (this.roleNow !== 'leader' || this.deposed) return;
    const view = this.view!;
    const isr = this.maximalIsr();
    if (isr.length < view.minInsyncReplicas && this.config.plantedBug !== 'hw_below_min_isr') return;
    let candidate = this.durableEnd;
    for (const id of isr) {
      if (id === this.self) continue;
      const f = this.followers.get(id);
      // A follower that has not fetched in this epoch holds the watermark where it is.
      if (f === undefined || f.durableEnd < 0) return;
      candidate = Math.min(candidate, f.durableEnd);
    }
    if (candidate <= this.hw) return;
    this.hw = candidate;
    this.hwChanged = true;
    while (this.acksHead < this.acks.length && this.acks[this.acksHead]!.endOffset <= this.hw) {
      this.acksOut.push({ id: this.acks[this.acksHead]!.id, kind: 'ok' });
      this.acksHead++;
    }
    this.compactAcks();
  }

  private failAllAcks(kind: AckOutcome['kind']): void {
    for (let i = this.acksHead; i < this.acks.length; i++) this.acksOut.push({ id: this.acks[i]!.id, kind });
    this.acks.length = 0;
    this.acksHead = 0;
  }

  private compactAcks(): void {
    if (this.acksHead === this.acks.length) {
      // Setting an array's length is a runtime call, even to what it is: only when something is there.
      if (this.acks.length !== 0) this.acks.length = 0;
      this.acksHead = 0;
    } else if (this.acksHead > 1024 && this.acksHead * 2 > this.acks.length) {
      this.acks.splice(0, this.acksHead);
      this.acksHead = 0;
    }
  }
}

function freshProgress(nowMs: number, leaderDurableEnd: number): FollowerProgress {
  // A new leader gives every follower a full lag interval to fetch before it may be shrunk out.
  return { durableEnd: -1, lastFetchMs: nowMs, lastCaughtUpMs: nowMs, lastFetchLeaderEnd: leaderDurableEnd };
}
