// RaftHost: the shell that runs one pure `RaftNode` for real. It owns the node, its `FileStorage`, its
// `TcpTransport` and a tick timer, and carries out every Ready in the order raft.ts documents: send
// `messages`; persist the snapshot (and restore the state machine from it), the compaction, the entries and
// the hard state, each durable when its call returns; only then send `messagesAfterPersist`; apply
// `committedEntries` through the `apply` callback in index order; `advance`; then wake the `waitApplied`
// callers whose index is now applied, and tell the soft-state listeners if role, leader or term changed.
//
// Storage failures: a write or fsync of the Raft storage that fails with an I/O error (ENOSPC, EIO, EDQUOT, ...)
// never stops the process and never lets the node act on what it has not persisted. The Ready being persisted
// is kept, and the node steps out of the group until storage works again: it sends nothing that claims the
// unpersisted state (`messagesAfterPersist`), applies nothing, does not `advance`, steps no message (they are
// dropped, as if the network were cut) and takes no tick, and new proposals are refused at once with
// `storage_failed`. The rest of the Ready's persistence is retried from the step that failed, with capped,
// jittered exponential backoff; once it succeeds the Ready is finished as usual and the node carries on
// (a deposed leader learns its successor from the next message). `onStorageFault` hears of each failure and
// of the recovery. Any other exception (an assertion) is a bug and propagates.
//
// Membership: a fresh cluster's first node bootstraps alone (`initialVoters: [self]`); a node that joins later
// starts empty (`initialVoters: []`) and the leader, after `setPeer` for it, proposes `add_learner`, watches its
// `progress()` until it has caught up, then proposes `promote`. One change at a time: a second one while the
// first is uncommitted is refused with `conf_change_pending`.
//
// Invariants: the Ready loop never runs re-entrantly (a callback that proposes is served after the current
// Ready); entries reach `apply` exactly once per process lifetime, in index order without gaps, after a
// `restore` of the stored snapshot at start; a pending proposal (normal or conf) resolves exactly once, and
// so does every `waitApplied`. Pending proposals are bounded by the core's `uncommittedEntriesMax` plus entries
// committed but not yet applied; `waitApplied` callers by `appliedWaitersMax`; listeners by
// `softStateListenersMax`. Listeners run after a Ready is fully handled, so one that proposes is safe.
// Single-threaded: construct and call it from one thread (meant to be the control worker thread; a test may
// run several in one process). Storage I/O is synchronous and blocks that thread by design.
import { AssertionError, assert } from '../core/assert.js';
import {
  bootstrapEntries,
  defaultRaftLimits,
  type ProgressView,
  type RaftConfig,
  RaftNode,
  type RaftStatus,
  type Ready,
  type TransferResult,
} from '../core/raft/raft.js';
import type { ConfChange, Entry, Message, NodeId, RaftRole, Snapshot } from '../core/raft/types.js';
import type { Disk } from '../storage/disk.js';
import { FileStorage, type FileStorageRecovery } from './file-storage.js';
import {
  defaultTransportLimits,
  TcpTransport,
  type TransportConfig,
  type TransportStats,
} from './transport.js';

export type RaftTuning = Omit<RaftConfig, 'id' | 'storage' | 'random' | 'applied'>;
export type TransportTuning = Omit<TransportConfig, 'nodeId' | 'listenHost' | 'listenPort' | 'onMessage'>;

export interface RaftHostConfig {
  readonly id: NodeId;
  /** The node's own directory; nothing else may write in it. */
  readonly dir: string;
  readonly disk: Disk;
  readonly listenHost: string;
  /** 0 picks a free port (see `address()`); a restarted node passes its old port so peers find it again. */
  readonly listenPort: number;
  /** Every other node's `host:port`; more can be added later with `setPeer`. */
  readonly peers: Readonly<Record<NodeId, string>>;
  /** The voters of a fresh cluster, written only into an empty directory; empty for a node that joins later. */
  readonly initialVoters: readonly NodeId[];
  /** Wall-clock length of one Raft tick; election timeouts are counted in ticks. */
  readonly tickMs: number;
  /** Seeded uniform source in [0, 1) for election timeouts. */
  readonly random: () => number;
  /** Applies one committed entry to the state machine (conf entries included: their kind says which). */
  readonly apply: (entry: Entry) => void;
  /** Replaces the state machine with a snapshot's image (at start, and when a leader sends one). */
  readonly restore: (snapshot: Snapshot) => void;
  readonly raft?: Partial<RaftTuning>;
  readonly transport?: Partial<TransportTuning>;
  /** Callers waiting in `waitApplied` at once; one more is answered `false` at once. Default 4096. */
  readonly appliedWaitersMax?: number;
  /** Backoff of the retries of a failed storage write. */
  readonly storageRetry?: StorageRetry;
  /** Told about each failed storage write and about the recovery; called on the host's thread. */
  readonly onStorageFault?: (fault: StorageFault) => void;
}

export interface StorageRetry {
  /** Wait before the first retry; each later one doubles, up to `maxMs`, scaled by 1 +/- `jitter`. */
  readonly initialMs: number;
  readonly maxMs: number;
  readonly jitter: number;
}

/**
 * A full disk is usually fixed by someone deleting files, which the node cannot observe: it probes. 2 s at
 * most between probes means the node rejoins within about 2 s of space coming back, at the cost of one small
 * failing write every 2 s while it does not.
 */
export const defaultStorageRetry: StorageRetry = { initialMs: 50, maxMs: 2_000, jitter: 0.2 };

/** The step of a Ready's persistence, in the order they run. */
export type PersistStep = 'snapshot' | 'compaction' | 'entries' | 'hard_state';
const persistSteps: readonly PersistStep[] = ['snapshot', 'compaction', 'entries', 'hard_state'];

export type StorageFault =
  | {
      readonly kind: 'failed';
      /** The errno code (ENOSPC, EIO, ...) and the error's message. */
      readonly code: string;
      readonly message: string;
      readonly step: PersistStep;
      /** Failures since the storage last worked, this one included. */
      readonly failures: number;
      readonly retryInMs: number;
    }
  | { readonly kind: 'recovered'; readonly stalledMs: number; readonly failures: number };

/** The storage's failure while the node is out of the group, for status and refusals. */
export interface StorageStall {
  readonly code: string;
  readonly message: string;
  readonly sinceMs: number;
  readonly failures: number;
}

/** An I/O error from the file system (it carries an errno code), as opposed to a bug. */
export function isStorageError(error: unknown): error is NodeJS.ErrnoException {
  return (
    error instanceof Error &&
    !(error instanceof AssertionError) &&
    typeof (error as NodeJS.ErrnoException).code === 'string'
  );
}

/**
 * Bounds `waitApplied` callers: a follower holds one per forwarded write it has not answered yet, and the
 * writes in flight are already bounded by the leader's `uncommittedEntriesMax` (1024 by default) per client
 * burst; four times that leaves room for several bursts without letting a stuck follower grow without end.
 */
const defaultAppliedWaitersMax = 4096;
/** Listeners are the few parts of one process that publish Raft status; more than this is a leak. */
const softStateListenersMax = 16;

export type ProposeOutcome =
  | { readonly kind: 'applied'; readonly index: number; readonly term: number }
  | { readonly kind: 'not_leader'; readonly leaderId: NodeId }
  | { readonly kind: 'transferring'; readonly leaderId: NodeId }
  | { readonly kind: 'queue_full'; readonly uncommitted: number }
  /** Another entry was applied at the proposal's index: a leader change discarded it. Safe to retry. */
  | { readonly kind: 'superseded'; readonly index: number }
  /** A snapshot replaced the log past the proposal, or the host stopped: it may or may not have committed. */
  | { readonly kind: 'outcome_unknown'; readonly index: number }
  /** This node's Raft storage is failing: nothing was proposed. */
  | { readonly kind: 'storage_failed'; readonly stall: StorageStall };

export type ConfChangeOutcome =
  | ProposeOutcome
  /** The previous change has not committed yet, or this leader has not committed an entry of its term: retry later. */
  | { readonly kind: 'conf_change_pending' }
  /** The change does not apply to the current membership (already a member, not a learner, last voter, ...). */
  | { readonly kind: 'invalid'; readonly reason: string };

/** What the control thread publishes about this node's place in the cluster. */
export interface RaftSoftStatus {
  readonly role: RaftRole;
  readonly leaderId: NodeId;
  readonly term: number;
}

export type SoftStateListener = (s: RaftSoftStatus) => void;

export interface RaftHostStatus extends RaftStatus {
  readonly address: string;
  readonly pendingProposals: number;
  readonly transport: TransportStats;
  readonly recovery: FileStorageRecovery;
  /** Set while the storage fails and the node is out of the group. */
  readonly storageStall: StorageStall | undefined;
  /** Messages dropped because they arrived while the storage was failing. */
  readonly droppedWhileStalled: number;
}

/** A Ready whose persistence failed at `step`, kept until a retry gets it through. */
interface Stalled {
  readonly rd: Ready;
  step: number;
  readonly sinceMs: number;
  failures: number;
  code: string;
  message: string;
  timer: NodeJS.Timeout | undefined;
}

interface PendingProposal {
  readonly term: number;
  readonly resolve: (outcome: ProposeOutcome) => void;
}

interface AppliedWaiter {
  readonly index: number;
  readonly timer: NodeJS.Timeout;
  readonly resolve: (applied: boolean) => void;
}

export class RaftHost {
  private readonly pending = new Map<number, PendingProposal>();
  private readonly timer: NodeJS.Timeout;
  /** Sorted by index, so the ones an apply satisfies are a prefix. */
  private readonly appliedWaiters: AppliedWaiter[] = [];
  private readonly appliedWaitersMax: number;
  private readonly softStateListeners = new Set<SoftStateListener>();
  private driving = false;
  private driveScheduled = false;
  private stopped = false;
  private applied: number;
  private role: RaftRole = 'follower';
  private leaderId: NodeId = '';
  private term: number;
  /** The soft status listeners last heard, to notify only on a change. */
  private notified: RaftSoftStatus;
  private stalled: Stalled | undefined;
  private droppedWhileStalled = 0;
  private readonly storageRetry: StorageRetry;

  private constructor(
    private readonly cfg: RaftHostConfig,
    private readonly storage: FileStorage,
    private readonly raft: RaftNode,
    private readonly transport: TcpTransport,
  ) {
    const snap = storage.snapshot();
    // The state machine lives in memory: rebuild it from the snapshot, then the node re-applies the log.
    if (snap.index > 0) cfg.restore(snap);
    this.applied = snap.index;
    this.appliedWaitersMax = cfg.appliedWaitersMax ?? defaultAppliedWaitersMax;
    this.storageRetry = cfg.storageRetry ?? defaultStorageRetry;
    assert(this.appliedWaitersMax >= 1, 'appliedWaitersMax must be >= 1');
    this.term = storage.hardState().term;
    this.notified = { role: this.role, leaderId: this.leaderId, term: this.term };
    for (const [id, address] of Object.entries(cfg.peers)) transport.setPeer(id, address);
    this.timer = setInterval(() => {
      // Out of the group while the storage fails: a tick could start an election it cannot persist.
      if (this.stopped || this.stalled !== undefined) return;
      this.raft.tick();
      this.drive();
    }, cfg.tickMs);
    // The only voter has nobody to wait for: it elects itself at once rather than after a timeout.
    const conf = raft.status().conf;
    if (conf.voters.length === 1 && conf.voters[0] === cfg.id) raft.campaignNow();
    this.drive();
  }

  /** Opens the storage (bootstrapping an empty one with `initialVoters`), binds the port and starts ticking. */
  static async start(config: RaftHostConfig): Promise<RaftHost> {
    assert(config.tickMs >= 1, 'tickMs must be >= 1');
    const storage = FileStorage.open(config.disk, config.dir);
    const fresh =
      storage.lastIndex() === 0 && storage.hardState().term === 0 && storage.snapshot().index === 0;
    if (fresh && config.initialVoters.length > 0) {
      const boot = bootstrapEntries(config.initialVoters);
      storage.append(boot);
      storage.setHardState({ term: 1, vote: '', commit: boot.length });
    }
    const raft = new RaftNode({
      ...defaultRaftLimits,
      ...config.raft,
      id: config.id,
      storage,
      random: config.random,
    });
    let host: RaftHost | undefined;
    let transport: TcpTransport;
    try {
      transport = await TcpTransport.listen({
        ...defaultTransportLimits,
        ...config.transport,
        nodeId: config.id,
        listenHost: config.listenHost,
        listenPort: config.listenPort,
        onMessage: (m) => host?.onMessage(m),
      });
    } catch (error) {
      storage.close();
      throw error;
    }
    host = new RaftHost(config, storage, raft, transport);
    return host;
  }

  /** The listening address as `host:port`. */
  address(): string {
    return this.transport.address();
  }

  /**
   * Adds or re-addresses a peer. Any node may be added at any time, member or not yet: messages to a node
   * without an address are dropped (and retransmitted by Raft once it has one), so a leader calls this before
   * proposing `add_learner` for a joining node, and every member calls it for each node it learns of.
   */
  setPeer(id: NodeId, address: string): void {
    if (this.stopped) return;
    this.transport.setPeer(id, address);
  }

  /** Forgets a peer's address and closes its connection (after the node left the membership). */
  removePeer(id: NodeId): void {
    if (this.stopped) return;
    this.transport.removePeer(id);
  }

  /** Index of the last entry the state machine has applied (or the snapshot it was restored from). */
  get appliedIndex(): number {
    return this.applied;
  }

  /**
   * Resolves true once the state machine has applied `index` (at once if it already has), false after
   * `timeoutMs`, when the host stops, or at once when `appliedWaitersMax` callers are already waiting. A
   * follower answers a forwarded write only after this, so the writer can read its write here.
   */
  waitApplied(index: number, timeoutMs: number): Promise<boolean> {
    assert(Number.isInteger(index) && index >= 0, `waitApplied index ${index}`);
    assert(timeoutMs >= 0, `waitApplied timeoutMs ${timeoutMs}`);
    if (index <= this.applied) return Promise.resolve(true);
    if (this.stopped || this.appliedWaiters.length >= this.appliedWaitersMax) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const waiter: AppliedWaiter = {
        index,
        resolve,
        timer: setTimeout(() => {
          const at = this.appliedWaiters.indexOf(waiter);
          if (at >= 0) this.appliedWaiters.splice(at, 1);
          resolve(false);
        }, timeoutMs),
      };
      // Waits mostly arrive in index order: search from the end for the insertion point.
      let at = this.appliedWaiters.length;
      while (at > 0 && this.appliedWaiters[at - 1]!.index > index) at--;
      this.appliedWaiters.splice(at, 0, waiter);
    });
  }

  /**
   * Calls `listener` whenever role, leader or term changes, after the Ready that changed it is handled (not
   * at registration: `status()` has the current values). Returns the function that unregisters it.
   */
  onSoftStateChange(listener: SoftStateListener): () => void {
    assert(
      this.softStateListeners.size < softStateListenersMax,
      `more than ${softStateListenersMax} soft-state listeners`,
    );
    this.softStateListeners.add(listener);
    return () => {
      this.softStateListeners.delete(listener);
    };
  }

  /**
   * On the leader, each member's match index as the leader knows it (itself included), to tell when a
   * learner has caught up; undefined on a follower or candidate.
   */
  progress(): ReadonlyMap<NodeId, ProgressView> | undefined {
    if (this.stopped) return undefined;
    return this.raft.progress();
  }

  /**
   * Proposes `data` as a normal entry. Resolves once the entry is applied here (`applied`), or at once with
   * the refusal when this node cannot take it (`not_leader` with the leader it knows, `queue_full`, ...).
   */
  propose(data: Uint8Array): Promise<ProposeOutcome> {
    if (this.stopped) return Promise.resolve({ kind: 'not_leader', leaderId: '' });
    const stall = this.storageStall();
    if (stall !== undefined) return Promise.resolve({ kind: 'storage_failed', stall });
    const result = this.raft.propose(data);
    switch (result.kind) {
      case 'ok': {
        const { index, term } = result;
        assert(!this.pending.has(index), `two pending proposals at index ${index}`);
        const promise = new Promise<ProposeOutcome>((resolve) => this.pending.set(index, { term, resolve }));
        this.driveSoon();
        return promise;
      }
      case 'not_leader':
      case 'transferring':
        return Promise.resolve({ kind: result.kind, leaderId: result.leaderId });
      case 'queue_full':
        return Promise.resolve(result);
      case 'conf_change_pending':
      case 'invalid_conf_change':
        assert(false, `a normal proposal was refused as ${result.kind}`);
        throw new Error('unreachable');
    }
  }

  /**
   * Proposes a single-server membership change. Resolves once the conf entry is applied here (`applied`;
   * the change took effect in the core when appended), or at once with the refusal: `not_leader`,
   * `transferring`, `conf_change_pending` (retry later), `invalid`, `queue_full`. Like `propose`, it may
   * end `superseded` or `outcome_unknown` (check `status().conf` before retrying).
   */
  proposeConfChange(change: ConfChange): Promise<ConfChangeOutcome> {
    if (this.stopped) return Promise.resolve({ kind: 'not_leader', leaderId: '' });
    const stall = this.storageStall();
    if (stall !== undefined) return Promise.resolve({ kind: 'storage_failed', stall });
    const result = this.raft.proposeConfChange(change);
    switch (result.kind) {
      case 'ok': {
        const { index, term } = result;
        assert(!this.pending.has(index), `two pending proposals at index ${index}`);
        const promise = new Promise<ConfChangeOutcome>((resolve) =>
          this.pending.set(index, { term, resolve }),
        );
        this.drive();
        return promise;
      }
      case 'not_leader':
      case 'transferring':
        return Promise.resolve({ kind: result.kind, leaderId: result.leaderId });
      case 'queue_full':
      case 'conf_change_pending':
        return Promise.resolve(result);
      case 'invalid_conf_change':
        return Promise.resolve({ kind: 'invalid', reason: result.reason });
    }
  }

  /**
   * Asks the leader to hand leadership to voter `to`: it catches `to` up and tells it to campaign at once.
   * `ok` means the transfer started; proposals meanwhile get `transferring`, and a transfer that does not
   * finish within an election timeout is abandoned. Watch `onSoftStateChange` for the outcome.
   */
  transferLeadership(to: NodeId): TransferResult {
    if (this.stopped) return { kind: 'not_leader', leaderId: '' };
    const result = this.raft.transferLeadership(to);
    this.drive();
    return result;
  }

  /** Hands the core a snapshot of the state machine at `index` (<= applied) so the log before it is dropped. */
  compact(index: number, data: Uint8Array): ReturnType<RaftNode['compact']> {
    const result = this.raft.compact(index, data);
    this.drive();
    return result;
  }

  status(): RaftHostStatus {
    return {
      ...this.raft.status(),
      role: this.role,
      leaderId: this.leaderId,
      address: this.transport.address(),
      pendingProposals: this.pending.size,
      transport: this.transport.stats(),
      recovery: this.storage.recovery,
      storageStall: this.storageStall(),
      droppedWhileStalled: this.droppedWhileStalled,
    };
  }

  /** The storage failure keeping this node out of the group, if any. */
  storageStall(): StorageStall | undefined {
    const s = this.stalled;
    if (s === undefined) return undefined;
    return { code: s.code, message: s.message, sinceMs: s.sinceMs, failures: s.failures };
  }

  /**
   * Stops ticking, closes every socket and the storage; pending proposals resolve as `outcome_unknown`,
   * `waitApplied` callers as false; listeners are not called again.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.stalled?.timer);
    this.softStateListeners.clear();
    for (const w of this.appliedWaiters.splice(0)) {
      clearTimeout(w.timer);
      w.resolve(false);
    }
    await this.transport.close();
    this.storage.close();
    for (const [index, p] of this.pending) p.resolve({ kind: 'outcome_unknown', index });
    this.pending.clear();
  }

  // ---- The Ready loop ----

  private onMessage(m: Message): void {
    if (this.stopped) return;
    if (this.stalled !== undefined) {
      // The node cannot persist what an answer would claim: it is as if the network were cut.
      this.droppedWhileStalled++;
      return;
    }
    this.raft.step(m);
    this.drive();
  }

  /**
   * Group commit: proposals that arrive in one turn of the event loop (the requests queued while the last
   * Ready was being fsynced) are persisted and sent together by one drive after them, so concurrent commits
   * cost one fsync, not one each.
   */
  private driveSoon(): void {
    if (this.driveScheduled) return;
    this.driveScheduled = true;
    setImmediate(() => {
      this.driveScheduled = false;
      this.drive();
    });
  }

  private drive(): void {
    if (this.driving) return;
    this.driving = true;
    try {
      while (!this.stopped && this.stalled === undefined && this.raft.hasReady()) {
        const rd = this.raft.ready();
        for (const m of rd.messages) this.transport.send(m);
        if (!this.finish(rd, 0)) break;
        this.wakeAppliedWaiters();
        this.notifySoftState();
      }
    } finally {
      this.driving = false;
    }
  }

  /**
   * Persists `rd` from step `fromStep` on, then sends, applies and advances. On a storage error, keeps the
   * Ready as `stalled` (at the step that failed), arms a retry and returns false.
   */
  private finish(rd: Ready, fromStep: number): boolean {
    let step = fromStep;
    try {
      for (; step < persistSteps.length; step++) this.persistStep(rd, persistSteps[step]!);
    } catch (error) {
      if (!isStorageError(error)) throw error;
      this.onStorageError(rd, step, error);
      return false;
    }
    // Role, leader and term are reported once durable: a node whose storage fails is not "the leader" of a
    // term it could not write down.
    this.role = rd.softState.role;
    this.leaderId = rd.softState.leaderId;
    if (rd.hardState !== undefined) this.term = rd.hardState.term;
    for (const m of rd.messagesAfterPersist) this.transport.send(m);
    for (const e of rd.committedEntries) {
      assert(e.index === this.applied + 1, `applying ${e.index} after ${this.applied}`);
      this.cfg.apply(e);
      this.applied = e.index;
      const p = this.pending.get(e.index);
      if (p !== undefined) {
        this.pending.delete(e.index);
        p.resolve(
          p.term === e.term
            ? { kind: 'applied', index: e.index, term: e.term }
            : { kind: 'superseded', index: e.index },
        );
      }
    }
    this.raft.advance(rd);
    return true;
  }

  private persistStep(rd: Ready, step: PersistStep): void {
    switch (step) {
      case 'snapshot': {
        if (rd.snapshot === undefined) return;
        const s = rd.snapshot;
        this.storage.applySnapshot(s);
        if (s.index > this.applied) {
          this.cfg.restore(s);
          this.applied = s.index;
          for (const [index, p] of this.pending) {
            if (index > s.index) continue;
            p.resolve({ kind: 'outcome_unknown', index });
            this.pending.delete(index);
          }
        }
        return;
      }
      case 'compaction':
        if (rd.compaction !== undefined) this.storage.compact(rd.compaction);
        return;
      case 'entries':
        // Entries before the hard state: a stored commit must never point past the stored log.
        this.storage.append(rd.entries);
        return;
      case 'hard_state':
        if (rd.hardState !== undefined) this.storage.setHardState(rd.hardState);
        return;
    }
  }

  private onStorageError(rd: Ready, step: number, error: NodeJS.ErrnoException): void {
    const previous = this.stalled;
    const failures = (previous?.failures ?? 0) + 1;
    const r = this.storageRetry;
    const baseMs = Math.min(r.maxMs, r.initialMs * 2 ** (failures - 1));
    const retryInMs = Math.max(1, Math.round(baseMs * (1 - r.jitter + 2 * r.jitter * this.cfg.random())));
    const stall: Stalled = {
      rd,
      step,
      sinceMs: previous?.sinceMs ?? Date.now(),
      failures,
      code: error.code ?? 'EIO',
      message: error.message,
      timer: setTimeout(() => this.retryStalled(), retryInMs),
    };
    this.stalled = stall;
    this.cfg.onStorageFault?.({
      kind: 'failed',
      code: stall.code,
      message: stall.message,
      step: persistSteps[step]!,
      failures,
      retryInMs,
    });
  }

  private retryStalled(): void {
    const stall = this.stalled;
    if (this.stopped || stall === undefined) return;
    stall.timer = undefined;
    assert(!this.driving, 'a storage retry ran inside the Ready loop');
    this.driving = true;
    let done: boolean;
    try {
      done = this.finish(stall.rd, stall.step);
    } finally {
      this.driving = false;
    }
    if (!done) return;
    this.stalled = undefined;
    this.cfg.onStorageFault?.({
      kind: 'recovered',
      stalledMs: Date.now() - stall.sinceMs,
      failures: stall.failures,
    });
    this.wakeAppliedWaiters();
    this.notifySoftState();
    this.drive();
  }

  private wakeAppliedWaiters(): void {
    let done = 0;
    while (done < this.appliedWaiters.length && this.appliedWaiters[done]!.index <= this.applied) done++;
    if (done === 0) return;
    for (const w of this.appliedWaiters.splice(0, done)) {
      clearTimeout(w.timer);
      w.resolve(true);
    }
  }

  private notifySoftState(): void {
    const n = this.notified;
    if (n.role === this.role && n.leaderId === this.leaderId && n.term === this.term) return;
    const now: RaftSoftStatus = { role: this.role, leaderId: this.leaderId, term: this.term };
    this.notified = now;
    // A copy: a listener may unregister itself (or another) while being called.
    for (const listener of [...this.softStateListeners]) listener(now);
  }
}
