// One Raft node as a pure state machine (after etcd-io/raft): inputs are `step(message)`, `tick()`,
// `propose`, `proposeConfChange`, `transferLeadership` and `compact`; outputs are collected in a `Ready` that
// the shell takes with `ready()`, carries out (persist, send, apply) and acknowledges with `advance(ready)`.
// No I/O, no clock, no randomness of its own: election timeouts are drawn from the injected `random`.
//
// Safety rules this file keeps, each asserted or enforced by construction:
// - A node answers a vote or an append only after what the answer claims is durable: such messages go to
//   `Ready.messagesAfterPersist`, and so does every message of a Ready that changes term or vote.
// - The leader counts its own log for commit only up to what the shell has persisted (`advance`).
// - The leader commits by counting only entries of its current term (Raft §5.4.2, Figure 8).
// - Membership changes are single-server, take effect when appended (and are undone if that suffix is
//   truncated), and the leader accepts a new one only after the previous one committed and after it has
//   committed an entry of its own term (which closes the known single-server change hazard across leaders).
// - Pre-vote and check-quorum: a node that was partitioned away asks before raising its term, and voters that
//   heard from a leader within an election timeout refuse it; a leader that cannot hear a quorum for an
//   election timeout steps down.
// Called only from the thread that owns the node (the control thread, or a test); never re-entrant.

import { assert, unreachable } from '../assert.js';
import { RaftLog } from './log.js';
import { Progress, type ProgressState } from './progress.js';
import type { Storage } from './storage.js';
import {
  type AppendRequest,
  type AppendResponse,
  applyConfChange,
  type ConfChange,
  type ConfState,
  decodeConfChange,
  type Entry,
  encodeConfChange,
  type HardState,
  type Heartbeat,
  type InstallSnapshot,
  type Message,
  type NodeId,
  noNode,
  type RaftRole,
  type Snapshot,
  type SoftState,
  type VoteRequest,
  type VoteResponse,
} from './types.js';

export interface RaftConfig {
  readonly id: NodeId;
  readonly storage: Storage;
  /** Followers campaign after a random timeout in [electionTimeoutTicks, 2 * electionTimeoutTicks). */
  readonly electionTimeoutTicks: number;
  /** Must be well below the election timeout so that a few lost heartbeats do not start an election. */
  readonly heartbeatTimeoutTicks: number;
  /** A seeded uniform source in [0, 1) (e.g. `createPrng(seed).nextFloat` from ../prng.ts); the only randomness the node uses. */
  readonly random: () => number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  /** Bounds of one append message. */
  readonly appendEntriesMax: number;
  readonly appendBytesMax: number;
  /** Appends in flight per follower in replicate state: bounds the leader's send queue per peer. */
  readonly inflightAppendsMax: number;
  /** Proposals past this many uncommitted entries are refused with `queue_full`. */
  readonly uncommittedEntriesMax: number;
  /** Bytes of committed entries handed out by one Ready. */
  readonly applyBytesMax: number;
  /** Ticks a leader waits for an InstallSnapshot to be acknowledged before probing again. */
  readonly snapshotWaitTicksMax: number;
  /** Last index the application has already applied (on restart from a state machine that survived). */
  readonly applied?: number;
}

/** Defaults sized for a metadata log: small entries, a tick of ~100 ms in the shell. */
export const defaultRaftLimits = {
  electionTimeoutTicks: 10,
  heartbeatTimeoutTicks: 1,
  preVote: true,
  checkQuorum: true,
  appendEntriesMax: 64,
  appendBytesMax: 1 << 20,
  inflightAppendsMax: 16,
  uncommittedEntriesMax: 1024,
  applyBytesMax: 4 << 20,
  snapshotWaitTicksMax: 20,
} as const;

/** Every problem with a configuration, all at once (an empty list means valid). */
export function validateRaftConfig(config: RaftConfig): string[] {
  const problems: string[] = [];
  if (config.id === noNode) problems.push('id must be a non-empty string');
  if (!(config.heartbeatTimeoutTicks >= 1)) problems.push('heartbeatTimeoutTicks must be >= 1');
  if (!(config.electionTimeoutTicks > config.heartbeatTimeoutTicks)) {
    problems.push('electionTimeoutTicks must exceed heartbeatTimeoutTicks');
  }
  if (!(config.appendEntriesMax >= 1)) problems.push('appendEntriesMax must be >= 1');
  if (!(config.appendBytesMax >= 1)) problems.push('appendBytesMax must be >= 1');
  if (!(config.inflightAppendsMax >= 1)) problems.push('inflightAppendsMax must be >= 1');
  if (!(config.uncommittedEntriesMax >= 1)) problems.push('uncommittedEntriesMax must be >= 1');
  if (!(config.applyBytesMax >= 1)) problems.push('applyBytesMax must be >= 1');
  if (!(config.snapshotWaitTicksMax >= 1)) problems.push('snapshotWaitTicksMax must be >= 1');
  return problems;
}

/**
 * The entries that bootstrap a fresh cluster: one `add_voter` per initial voter, all at term 1 and already
 * committed. Every initial member persists exactly these (and hard state {term: 1, vote: '', commit: n});
 * a node that joins later starts empty and receives them (or a snapshot) from the leader.
 */
export function bootstrapEntries(voters: readonly NodeId[]): Entry[] {
  assert(voters.length > 0, 'bootstrap needs at least one voter');
  return voters.map((nodeId, i) => ({
    index: i + 1,
    term: 1,
    kind: 'conf' as const,
    data: encodeConfChange({ op: 'add_voter', nodeId }),
  }));
}

export type ProposeResult =
  | { readonly kind: 'ok'; readonly index: number; readonly term: number }
  | { readonly kind: 'not_leader'; readonly leaderId: NodeId }
  | { readonly kind: 'transferring'; readonly leaderId: NodeId }
  | { readonly kind: 'queue_full'; readonly uncommitted: number }
  | { readonly kind: 'conf_change_pending' }
  | { readonly kind: 'invalid_conf_change'; readonly reason: string };

export type TransferResult =
  | { readonly kind: 'ok' }
  | { readonly kind: 'not_leader'; readonly leaderId: NodeId }
  | { readonly kind: 'not_a_voter' };

export type CompactResult =
  | { readonly kind: 'ok'; readonly snapshot: Snapshot }
  | { readonly kind: 'already_compacted' }
  | { readonly kind: 'not_applied'; readonly applied: number };

/**
 * What the shell must do, in this order: send `messages` (allowed right away); persist `hardState`,
 * `snapshot` (then restore the state machine from it), `compaction` (then drop entries up to its index) and
 * `entries` (truncating any stored suffix from entries[0].index on); only then send `messagesAfterPersist`;
 * apply `committedEntries` in order; call `advance(ready)`.
 */
export interface Ready {
  readonly softState: SoftState;
  /** Present when term, vote or commit changed since the last persisted hard state. */
  readonly hardState: HardState | undefined;
  readonly entries: readonly Entry[];
  /** A snapshot from the leader replacing the log and the state machine. */
  readonly snapshot: Snapshot | undefined;
  /** A snapshot taken locally by `compact`: persist it, then discard the entries it covers. */
  readonly compaction: Snapshot | undefined;
  readonly messages: readonly Message[];
  readonly messagesAfterPersist: readonly Message[];
  readonly committedEntries: readonly Entry[];
}

export interface RaftStatus {
  readonly id: NodeId;
  readonly term: number;
  readonly vote: NodeId;
  readonly role: RaftRole;
  readonly leaderId: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly conf: ConfState;
}

/** A copy of the leader's view of one member's log (see progress.ts); read-only, for the application. */
export interface ProgressView {
  /** Highest index known to match the leader's log. */
  readonly match: number;
  readonly next: number;
  readonly state: ProgressState;
  /** Heard from since the leader's last check-quorum round (one per election timeout). */
  readonly recentActive: boolean;
}

/** Messages whose content claims durable state: they wait for the persist of their Ready. */
function claimsDurableState(m: Message): boolean {
  return m.type === 'append_response' || (m.type === 'vote_response' && !m.preVote) || m.type === 'vote';
}

export class RaftNode {
  readonly id: NodeId;
  private readonly cfg: RaftConfig;
  private readonly log: RaftLog;

  private term = 0;
  private vote: NodeId = noNode;
  private role: RaftRole = 'follower';
  private lead: NodeId = noNode;

  /** Membership as of the last log index, the one at the snapshot, and every conf entry in between. */
  private conf: ConfState;
  private baseConf: ConfState;
  private confHistory: { index: number; conf: ConfState }[] = [];

  private readonly prs = new Map<NodeId, Progress>();
  private readonly votes = new Map<NodeId, boolean>();
  private electionElapsedTicks = 0;
  private heartbeatElapsedTicks = 0;
  private randomizedElectionTimeoutTicks = 0;
  private leadTransferee: NodeId = noNode;
  /** Index of the latest conf entry the leader appended; no new change until it commits. */
  private pendingConfIndex = 0;

  private msgs: Message[] = [];
  private msgsAfterPersist: Message[] = [];
  private pendingCompaction: Snapshot | undefined = undefined;
  private persistedHard: HardState;
  /** The soft state last handed out, so a role or leader change alone still makes a Ready. */
  private reportedLead: NodeId = noNode;
  private reportedRole: RaftRole = 'follower';
  private readyOutstanding = false;

  constructor(config: RaftConfig) {
    const problems = validateRaftConfig(config);
    assert(problems.length === 0, `invalid raft config: ${problems.join('; ')}`);
    this.cfg = config;
    this.id = config.id;
    this.log = new RaftLog(config.storage);
    const hard = config.storage.hardState();
    assert(hard.commit <= this.log.lastIndex(), `stored commit ${hard.commit} beyond the stored log`);
    this.term = hard.term;
    this.vote = hard.vote;
    this.log.commitTo(hard.commit);
    if (config.applied !== undefined) this.log.appliedTo(config.applied);
    this.persistedHard = hard;
    this.baseConf = config.storage.snapshot().conf;
    this.conf = this.baseConf;
    // Rebuild the membership from the conf entries still in the stored log.
    const first = this.log.firstIndex();
    const last = this.log.lastIndex();
    for (let i = first; i <= last; ) {
      const chunk = config.storage.entries(i, last + 1, Number.MAX_SAFE_INTEGER);
      for (const e of chunk) this.noteAppended(e);
      i += chunk.length;
    }
    this.becomeFollower(this.term, noNode);
  }

  // ---- Inputs ----

  /**
   * Starts an election now instead of waiting for the election timeout (etcd's MsgHup), e.g. when a node is
   * the only voter. Ignored on a leader and on a node that cannot vote. Always safe: it is what a timeout does.
   */
  campaignNow(): void {
    if (this.role === 'leader' || !this.isPromotable()) return;
    this.electionElapsedTicks = 0;
    this.campaign(this.cfg.preVote ? 'pre' : 'election');
  }

  tick(): void {
    if (this.role === 'leader') {
      this.tickLeader();
      return;
    }
    this.electionElapsedTicks++;
    if (this.isPromotable() && this.electionElapsedTicks >= this.randomizedElectionTimeoutTicks) {
      this.electionElapsedTicks = 0;
      this.campaign(this.cfg.preVote ? 'pre' : 'election');
    }
  }

  propose(data: Uint8Array): ProposeResult {
    const refused = this.refuseProposal();
    if (refused !== undefined) return refused;
    return this.appendAsLeader('normal', data);
  }

  proposeConfChange(change: ConfChange): ProposeResult {
    const refused = this.refuseProposal();
    if (refused !== undefined) return refused;
    const ownTermCommitted = this.log.term(this.log.committed) === this.term;
    if (this.pendingConfIndex > this.log.committed || !ownTermCommitted)
      return { kind: 'conf_change_pending' };
    const next = applyConfChange(this.conf, change);
    if (typeof next === 'string') return { kind: 'invalid_conf_change', reason: next };
    return this.appendAsLeader('conf', encodeConfChange(change));
  }

  transferLeadership(to: NodeId): TransferResult {
    if (this.role !== 'leader') return { kind: 'not_leader', leaderId: this.lead };
    if (!this.conf.voters.includes(to)) return { kind: 'not_a_voter' };
    if (to === this.id) {
      this.leadTransferee = noNode;
      return { kind: 'ok' };
    }
    this.leadTransferee = to;
    // The transfer must finish within an election timeout or it is abandoned (see tickLeader).
    this.electionElapsedTicks = 0;
    const pr = this.prs.get(to)!;
    if (pr.match === this.log.lastIndex())
      this.send({ type: 'timeout_now', from: this.id, to, term: this.term });
    else this.sendAppend(to, true);
    return { kind: 'ok' };
  }

  /**
   * The application has a snapshot of its state machine at `index` (<= applied): the next Ready carries it
   * as `compaction` so the shell stores it and drops the log up to it.
   */
  compact(index: number, data: Uint8Array): CompactResult {
    if (index > this.log.applied) return { kind: 'not_applied', applied: this.log.applied };
    if (index < this.log.firstIndex() || (this.pendingCompaction?.index ?? 0) >= index) {
      return { kind: 'already_compacted' };
    }
    const term = this.log.term(index);
    assert(term !== undefined, `compact(${index}) has no term`);
    this.pendingCompaction = { index, term, conf: this.confAt(index), data };
    return { kind: 'ok', snapshot: this.pendingCompaction };
  }

  step(m: Message): void {
    assert(m.to === this.id, `message for ${m.to} stepped into ${this.id}`);
    if (m.term > this.term) {
      if (m.type === 'vote' && !m.transfer) {
        const inLease =
          this.cfg.checkQuorum &&
          this.lead !== noNode &&
          this.electionElapsedTicks < this.cfg.electionTimeoutTicks;
        // A voter that hears from a live leader ignores candidates: this is what keeps a node returning from
        // a partition from deposing a healthy leader.
        if (inLease) return;
      }
      if (m.type === 'vote' && m.preVote) {
        // A pre-vote never changes anyone's term.
      } else if (m.type === 'vote_response' && m.preVote && m.granted) {
        // Granted pre-votes carry the term the pre-candidate would use; counted below.
      } else if (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, noNode);
      }
    } else if (m.term < this.term) {
      if ((this.cfg.checkQuorum || this.cfg.preVote) && (m.type === 'append' || m.type === 'heartbeat')) {
        // A stale leader that cannot hear the new term would otherwise keep its followers' pre-votes failing.
        this.send({ type: 'heartbeat_response', from: this.id, to: m.from, term: this.term });
      } else if (m.type === 'vote' && m.preVote) {
        this.send(this.voteResponse(m.from, this.term, false, true));
      }
      return;
    }

    if (m.type === 'vote') {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(m);
        return;
      case 'candidate':
      case 'pre_candidate':
        this.stepCandidate(m);
        return;
      case 'follower':
        this.stepFollower(m);
        return;
      default:
        unreachable(this.role, 'raft role');
    }
  }

  // ---- Output ----

  hasReady(): boolean {
    return (
      this.lead !== this.reportedLead ||
      this.role !== this.reportedRole ||
      this.msgs.length > 0 ||
      this.msgsAfterPersist.length > 0 ||
      this.log.unstable.length > 0 ||
      this.log.unstableSnapshot !== undefined ||
      this.pendingCompaction !== undefined ||
      this.hardStateChanged() ||
      this.log.applied < Math.min(this.log.committed, this.log.stableLastIndex())
    );
  }

  ready(): Ready {
    assert(!this.readyOutstanding, 'ready() called again before advance()');
    this.readyOutstanding = true;
    const hard = this.hardState();
    const hardChanged = this.hardStateChanged();
    let messages = this.msgs;
    let afterPersist = this.msgsAfterPersist;
    if (hard.term !== this.persistedHard.term || hard.vote !== this.persistedHard.vote) {
      // Anything sent under a term or vote that is not yet durable must wait for it.
      afterPersist = messages.concat(afterPersist);
      messages = [];
    }
    this.msgs = [];
    this.msgsAfterPersist = [];
    this.reportedLead = this.lead;
    this.reportedRole = this.role;
    return {
      softState: { leaderId: this.lead, role: this.role },
      hardState: hardChanged ? hard : undefined,
      entries: this.log.unstable.slice(),
      snapshot: this.log.unstableSnapshot,
      compaction: this.pendingCompaction,
      messages,
      messagesAfterPersist: afterPersist,
      committedEntries: this.log.nextCommittedEntries(this.cfg.applyBytesMax),
    };
  }

  /** The shell has carried out `rd`: everything in it is durable, sent and applied. */
  advance(rd: Ready): void {
    assert(this.readyOutstanding, 'advance() without ready()');
    this.readyOutstanding = false;
    if (rd.hardState !== undefined) this.persistedHard = rd.hardState;
    if (rd.snapshot !== undefined) {
      this.log.stableSnapshotTo(rd.snapshot.index);
    }
    if (rd.compaction !== undefined && this.pendingCompaction === rd.compaction) {
      this.pendingCompaction = undefined;
    }
    if (
      (rd.compaction !== undefined || rd.snapshot !== undefined) &&
      this.log.unstableSnapshot === undefined
    ) {
      // The stored snapshot is now the base of the log: membership before it is no longer needed.
      const base = this.log.storage.snapshot();
      this.baseConf = base.conf;
      this.confHistory = this.confHistory.filter((h) => h.index > base.index);
    }
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry !== undefined) this.log.stableTo(lastEntry.index, lastEntry.term);
    const lastApplied = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastApplied !== undefined) this.log.appliedTo(lastApplied.index);
    if (this.role === 'leader') {
      // The leader's own log counts toward commit only once durable.
      const self = this.prs.get(this.id);
      if (self?.maybeUpdate(this.log.stableLastIndex()) && this.maybeCommit()) {
        this.bcastAppend();
      }
    }
  }

  status(): RaftStatus {
    return {
      id: this.id,
      term: this.term,
      vote: this.vote,
      role: this.role,
      leaderId: this.lead,
      commit: this.log.committed,
      applied: this.log.applied,
      firstIndex: this.log.firstIndex(),
      lastIndex: this.log.lastIndex(),
      conf: this.conf,
    };
  }

  /**
   * On the leader, its view of every member's log (itself included, matched up to what it has persisted);
   * undefined on any other role. A copy: reading it changes nothing.
   */
  progress(): ReadonlyMap<NodeId, ProgressView> | undefined {
    if (this.role !== 'leader') return undefined;
    const views = new Map<NodeId, ProgressView>();
    for (const [id, pr] of this.prs) {
      views.set(id, { match: pr.match, next: pr.next, state: pr.state, recentActive: pr.recentActive });
    }
    return views;
  }

  /** The term of a log entry as this node holds it (undefined if compacted or absent); for checks. */
  termAt(index: number): number | undefined {
    return this.log.term(index);
  }

  // ---- Role changes ----

  private becomeFollower(term: number, lead: NodeId): void {
    if (term !== this.term) {
      assert(term > this.term, `term went back from ${this.term} to ${term}`);
      this.term = term;
      this.vote = noNode;
    }
    this.role = 'follower';
    this.lead = lead;
    this.resetTimers();
  }

  private becomePreCandidate(): void {
    assert(this.role !== 'leader', 'a leader cannot become a pre-candidate');
    this.role = 'pre_candidate';
    this.lead = noNode;
    this.votes.clear();
    this.resetTimers();
  }

  private becomeCandidate(): void {
    assert(this.role !== 'leader', 'a leader cannot become a candidate');
    this.term++;
    this.vote = this.id;
    this.role = 'candidate';
    this.lead = noNode;
    this.votes.clear();
    this.resetTimers();
  }

  private becomeLeader(): void {
    assert(this.role === 'candidate', 'only a candidate becomes leader');
    this.role = 'leader';
    this.lead = this.id;
    this.resetTimers();
    this.resetProgress();
    this.prs.get(this.id)?.maybeUpdate(this.log.stableLastIndex());
    // No membership change until this term has committed an entry (the empty one appended here).
    this.pendingConfIndex = this.log.lastIndex();
    this.appendAsLeader('normal', new Uint8Array(0));
  }

  private resetTimers(): void {
    this.electionElapsedTicks = 0;
    this.heartbeatElapsedTicks = 0;
    const span = this.cfg.electionTimeoutTicks;
    this.randomizedElectionTimeoutTicks = span + Math.floor(this.cfg.random() * span);
    this.leadTransferee = noNode;
  }

  private resetProgress(): void {
    this.prs.clear();
    for (const id of this.conf.voters) this.prs.set(id, this.newProgress());
    for (const id of this.conf.learners) this.prs.set(id, this.newProgress());
  }

  private newProgress(): Progress {
    const pr = new Progress(this.log.lastIndex() + 1, this.cfg.inflightAppendsMax);
    pr.recentActive = true;
    return pr;
  }

  private isPromotable(): boolean {
    return this.conf.voters.includes(this.id);
  }

  /** `pre` asks first without raising the term; `transfer` skips pre-vote and overrides voters' leases. */
  private campaign(kind: 'pre' | 'election' | 'transfer'): void {
    if (kind === 'pre') {
      this.becomePreCandidate();
      this.requestVotes(true, false);
    } else {
      this.becomeCandidate();
      this.requestVotes(false, kind === 'transfer');
    }
  }

  private requestVotes(preVote: boolean, transfer: boolean): void {
    const term = preVote ? this.term + 1 : this.term;
    this.votes.set(this.id, true);
    if (this.tallyWon()) {
      if (preVote) this.campaign('election');
      else this.becomeLeader();
      return;
    }
    const lastLogIndex = this.log.lastIndex();
    const lastLogTerm = this.log.lastTerm();
    for (const to of this.conf.voters) {
      if (to === this.id) continue;
      const m: VoteRequest = {
        type: 'vote',
        from: this.id,
        to,
        term,
        lastLogIndex,
        lastLogTerm,
        preVote,
        transfer,
      };
      this.send(m);
    }
  }

  private tallyWon(): boolean {
    let granted = 0;
    for (const id of this.conf.voters) if (this.votes.get(id) === true) granted++;
    return granted >= this.quorum();
  }

  private tallyLost(): boolean {
    let rejected = 0;
    for (const id of this.conf.voters) if (this.votes.get(id) === false) rejected++;
    return rejected >= this.quorum();
  }

  private quorum(): number {
    return Math.floor(this.conf.voters.length / 2) + 1;
  }

  // ---- Message handling ----

  private handleVoteRequest(m: VoteRequest): void {
    const canVote =
      this.vote === m.from ||
      (this.vote === noNode && this.lead === noNode) ||
      (m.preVote && m.term > this.term);
    if (canVote && this.log.isUpToDate(m.lastLogIndex, m.lastLogTerm)) {
      this.send(this.voteResponse(m.from, m.term, true, m.preVote));
      if (!m.preVote) {
        this.electionElapsedTicks = 0;
        this.vote = m.from;
      }
    } else {
      this.send(this.voteResponse(m.from, this.term, false, m.preVote));
    }
  }

  private voteResponse(to: NodeId, term: number, granted: boolean, preVote: boolean): VoteResponse {
    return { type: 'vote_response', from: this.id, to, term, granted, preVote };
  }

  private stepLeader(m: Message): void {
    const pr = this.prs.get(m.from);
    switch (m.type) {
      case 'append_response':
        if (pr === undefined) return;
        pr.recentActive = true;
        this.handleAppendResponse(m, pr);
        return;
      case 'heartbeat_response':
        if (pr === undefined) return;
        pr.recentActive = true;
        pr.heartbeatAnswered();
        // An empty append still probes: if an optimistic send was lost, the follower rejects it and the
        // leader falls back to its match index instead of waiting for a proposal that may never come.
        if (pr.match < this.log.lastIndex()) this.sendAppend(m.from, true);
        return;
      case 'vote_response':
      case 'timeout_now':
        return;
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        // Two leaders in one term would break Election Safety.
        assert(false, `leader ${this.id} got ${m.type} from ${m.from} in its own term ${this.term}`);
        return;
      case 'vote':
        return;
      default:
        unreachable(m, 'message type');
    }
  }

  private handleAppendResponse(m: AppendResponse, pr: Progress): void {
    if (!m.success) {
      let probe = m.hintIndex;
      if (m.hintTerm > 0) probe = this.log.findConflictByTerm(m.hintIndex, m.hintTerm);
      if (pr.maybeDecrTo(m.index, probe)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.sendAppend(m.from, false);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) {
      if (wasPaused && !pr.isPaused()) this.sendAppend(m.from, false);
      return;
    }
    if (pr.state === 'probe') pr.becomeReplicate();
    else if (pr.state === 'snapshot' && pr.match + 1 >= this.log.firstIndex()) {
      // The follower now holds enough to continue from the log (the snapshot landed, or it had caught up).
      pr.becomeProbe();
      pr.becomeReplicate();
    }
    if (this.maybeCommit()) {
      this.bcastAppend();
    } else {
      // Fill the window: send while there is something new and room in flight.
      let guard = this.cfg.inflightAppendsMax;
      while (guard-- > 0 && this.sendAppend(m.from, false)) {}
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.send({ type: 'timeout_now', from: this.id, to: m.from, term: this.term });
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'vote_response': {
        const mine = this.role === 'pre_candidate' ? m.preVote : !m.preVote;
        if (!mine) return;
        if (!this.votes.has(m.from)) this.votes.set(m.from, m.granted);
        if (this.tallyWon()) {
          if (this.role === 'pre_candidate') this.campaign('election');
          else this.becomeLeader();
        } else if (this.tallyLost()) {
          this.becomeFollower(this.term, noNode);
        }
        return;
      }
      case 'append':
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case 'snapshot':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case 'append_response':
      case 'heartbeat_response':
      case 'timeout_now':
      case 'vote':
        return;
      default:
        unreachable(m, 'message type');
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'append':
        this.electionElapsedTicks = 0;
        this.lead = m.from;
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.electionElapsedTicks = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case 'snapshot':
        this.electionElapsedTicks = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case 'timeout_now':
        // Campaign at once, skipping pre-vote: the leader asked for it.
        if (this.isPromotable()) this.campaign('transfer');
        return;
      case 'append_response':
      case 'heartbeat_response':
      case 'vote_response':
      case 'vote':
        return;
      default:
        unreachable(m, 'message type');
    }
  }

  private handleAppend(m: AppendRequest): void {
    const base = { type: 'append_response', from: this.id, to: m.from, term: this.term } as const;
    if (m.prevLogIndex < this.log.committed) {
      this.send({ ...base, success: true, index: this.log.committed, hintIndex: 0, hintTerm: 0 });
      return;
    }
    if (this.log.matchTerm(m.prevLogIndex, m.prevLogTerm)) {
      const conflict = this.log.findConflict(m.entries);
      if (conflict !== 0) {
        assert(conflict > this.log.committed, `conflict at ${conflict} with committed ${this.log.committed}`);
        this.appendToLog(m.entries.slice(conflict - (m.prevLogIndex + 1)));
      }
      const lastNew = m.prevLogIndex + m.entries.length;
      this.log.commitTo(Math.min(m.commit, lastNew));
      this.send({ ...base, success: true, index: lastNew, hintIndex: 0, hintTerm: 0 });
      return;
    }
    const hintIndex = this.log.findConflictByTerm(
      Math.min(m.prevLogIndex, this.log.lastIndex()),
      m.prevLogTerm,
    );
    const hintTerm = this.log.term(hintIndex) ?? 0;
    this.send({ ...base, success: false, index: m.prevLogIndex, hintIndex, hintTerm });
  }

  private handleHeartbeat(m: Heartbeat): void {
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.send({ type: 'heartbeat_response', from: this.id, to: m.from, term: this.term });
  }

  private handleSnapshot(m: InstallSnapshot): void {
    const s = m.snapshot;
    const base = { type: 'append_response', from: this.id, to: m.from, term: this.term } as const;
    if (s.index <= this.log.committed) {
      this.send({ ...base, success: true, index: this.log.committed, hintIndex: 0, hintTerm: 0 });
      return;
    }
    if (this.log.matchTerm(s.index, s.term)) {
      // We already hold the snapshot's last entry, so the log up to it matches: just commit.
      this.log.commitTo(s.index);
      this.send({ ...base, success: true, index: this.log.committed, hintIndex: 0, hintTerm: 0 });
      return;
    }
    this.log.restore(s);
    this.baseConf = s.conf;
    this.conf = s.conf;
    this.confHistory = [];
    this.send({ ...base, success: true, index: this.log.lastIndex(), hintIndex: 0, hintTerm: 0 });
  }

  // ---- Leader duties ----

  private tickLeader(): void {
    this.heartbeatElapsedTicks++;
    this.electionElapsedTicks++;
    if (this.electionElapsedTicks >= this.cfg.electionTimeoutTicks) {
      this.electionElapsedTicks = 0;
      if (this.cfg.checkQuorum) {
        let active = 0;
        for (const id of this.conf.voters) {
          const pr = this.prs.get(id);
          if (id === this.id || pr?.recentActive === true) active++;
        }
        for (const [id, pr] of this.prs) pr.recentActive = id === this.id;
        if (active < this.quorum()) {
          this.becomeFollower(this.term, noNode);
          return;
        }
      }
      // A transfer that did not finish within an election timeout is abandoned.
      this.leadTransferee = noNode;
    }
    for (const [id, pr] of this.prs) {
      if (id === this.id || pr.state !== 'snapshot') continue;
      if (++pr.snapshotWaitTicks >= this.cfg.snapshotWaitTicksMax) pr.becomeProbe();
    }
    if (this.heartbeatElapsedTicks >= this.cfg.heartbeatTimeoutTicks) {
      this.heartbeatElapsedTicks = 0;
      this.bcastHeartbeat();
    }
  }

  private refuseProposal(): ProposeResult | undefined {
    if (this.role !== 'leader') return { kind: 'not_leader', leaderId: this.lead };
    if (this.leadTransferee !== noNode) return { kind: 'transferring', leaderId: this.leadTransferee };
    const uncommitted = this.log.lastIndex() - this.log.committed;
    if (uncommitted >= this.cfg.uncommittedEntriesMax) return { kind: 'queue_full', uncommitted };
    return undefined;
  }

  private appendAsLeader(kind: 'normal' | 'conf', data: Uint8Array): ProposeResult {
    const index = this.log.lastIndex() + 1;
    this.appendToLog([{ index, term: this.term, kind, data }]);
    if (kind === 'conf') this.pendingConfIndex = index;
    this.bcastAppend();
    // A one-voter cluster commits once the entry is durable (see advance); nothing to wait for here.
    return { kind: 'ok', index, term: this.term };
  }

  /** Appends to the log and applies the membership changes it carries (effective on append). */
  private appendToLog(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    const hadHistory = this.confHistory.length;
    while (this.confHistory.length > 0 && this.confHistory[this.confHistory.length - 1]!.index >= first) {
      this.confHistory.pop();
    }
    if (this.confHistory.length !== hadHistory) this.conf = this.confAt(first - 1);
    this.log.append(entries);
    const before = this.conf;
    for (const e of entries) this.noteAppended(e);
    if (this.conf !== before || this.confHistory.length !== hadHistory) this.onConfChanged();
  }

  private noteAppended(e: Entry): void {
    if (e.kind !== 'conf') return;
    const next = applyConfChange(this.conf, decodeConfChange(e.data));
    assert(typeof next !== 'string', `invalid conf entry at ${e.index}: ${String(next)}`);
    this.conf = next;
    this.confHistory.push({ index: e.index, conf: next });
  }

  /**
   * The membership in effect once entry `index` is in the log (conf entries take effect when appended).
   * Meaningful from the snapshot index on; below it the snapshot's membership is returned.
   */
  confAt(index: number): ConfState {
    let conf = this.baseConf;
    for (const h of this.confHistory) {
      if (h.index > index) break;
      conf = h.conf;
    }
    return conf;
  }

  private onConfChanged(): void {
    if (this.role !== 'leader') return;
    for (const id of [...this.conf.voters, ...this.conf.learners]) {
      if (!this.prs.has(id)) this.prs.set(id, this.newProgress());
    }
    for (const id of [...this.prs.keys()]) {
      if (id !== this.id && !this.conf.voters.includes(id) && !this.conf.learners.includes(id))
        this.prs.delete(id);
    }
    if (this.leadTransferee !== noNode && !this.conf.voters.includes(this.leadTransferee)) {
      this.leadTransferee = noNode;
    }
    if (this.maybeCommit()) this.bcastAppend();
  }

  /** Advances commit to the highest index a quorum of voters holds, if it is of the current term. */
  private maybeCommit(): boolean {
    const matches: number[] = [];
    for (const id of this.conf.voters) matches.push(this.prs.get(id)?.match ?? 0);
    matches.sort((a, b) => b - a);
    const index = matches[this.quorum() - 1] ?? 0;
    if (index <= this.log.committed || this.log.term(index) !== this.term) return false;
    this.log.commitTo(index);
    // A leader removed from the voters hands over once its removal is committed.
    if (!this.conf.voters.includes(this.id) && this.pendingConfIndex <= index) {
      this.bcastAppend();
      this.becomeFollower(this.term, noNode);
      return false;
    }
    return true;
  }

  private bcastAppend(): void {
    for (const id of this.prs.keys()) if (id !== this.id) this.sendAppend(id, false);
  }

  private bcastHeartbeat(): void {
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue;
      const commit = Math.min(pr.match, this.log.committed);
      this.send({ type: 'heartbeat', from: this.id, to: id, term: this.term, commit });
    }
  }

  /** Sends the next append (or a snapshot) to `to`; returns whether a message went out. */
  private sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevLogIndex = pr.next - 1;
    const prevLogTerm = this.log.term(prevLogIndex);
    const lastIndex = this.log.lastIndex();
    const hi = Math.min(lastIndex + 1, pr.next + this.cfg.appendEntriesMax);
    const entries =
      prevLogTerm === undefined ? undefined : this.log.slice(pr.next, hi, this.cfg.appendBytesMax);
    if (prevLogTerm === undefined || entries === undefined) {
      // The follower needs entries we compacted away: send the snapshot instead.
      const snapshot = this.log.storage.snapshot();
      pr.becomeSnapshot(snapshot.index);
      this.send({ type: 'snapshot', from: this.id, to, term: this.term, snapshot });
      return true;
    }
    if (entries.length === 0 && !sendIfEmpty && pr.state === 'replicate') return false;
    const m: AppendRequest = {
      type: 'append',
      from: this.id,
      to,
      term: this.term,
      prevLogIndex,
      prevLogTerm,
      entries,
      commit: this.log.committed,
    };
    this.send(m);
    const last = entries[entries.length - 1];
    if (last !== undefined) pr.sentEntries(last.index);
    else if (pr.state === 'probe') pr.sentEntries(prevLogIndex);
    return true;
  }

  private send(m: Message): void {
    if (claimsDurableState(m)) this.msgsAfterPersist.push(m);
    else this.msgs.push(m);
  }

  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  private hardStateChanged(): boolean {
    const p = this.persistedHard;
    return p.term !== this.term || p.vote !== this.vote || p.commit !== this.log.committed;
  }
}
