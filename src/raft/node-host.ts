// RaftHost: the shell that runs one pure `RaftNode` for real. It owns the node, its `FileStorage`, its
// `TcpTransport` and a tick timer, and carries out every Ready in the order raft.ts documents: send
// `messages`; persist the snapshot (and restore the state machine from it), the compaction, the entries and
// the hard state, each durable when its call returns; only then send `messagesAfterPersist`; apply
// `committedEntries` through the `apply` callback in index order; `advance`.
//
// Invariants: the Ready loop never runs re-entrantly (a callback that proposes is served after the current
// Ready); entries reach `apply` exactly once per process lifetime, in index order without gaps, after a
// `restore` of the stored snapshot at start; a pending proposal resolves exactly once. Pending proposals are
// bounded by the core's `uncommittedEntriesMax` plus entries committed but not yet applied.
// Single-threaded: construct and call it from one thread (meant to be the control worker thread; a test may
// run several in one process). Storage I/O is synchronous and blocks that thread by design.
import { assert } from '../core/assert.js';
import {
  bootstrapEntries,
  defaultRaftLimits,
  type RaftConfig,
  RaftNode,
  type RaftStatus,
  type Ready,
} from '../core/raft/raft.js';
import type { Entry, Message, NodeId, RaftRole, Snapshot } from '../core/raft/types.js';
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
}

export type ProposeOutcome =
  | { readonly kind: 'applied'; readonly index: number; readonly term: number }
  | { readonly kind: 'not_leader'; readonly leaderId: NodeId }
  | { readonly kind: 'transferring'; readonly leaderId: NodeId }
  | { readonly kind: 'queue_full'; readonly uncommitted: number }
  /** Another entry was applied at the proposal's index: a leader change discarded it. Safe to retry. */
  | { readonly kind: 'superseded'; readonly index: number }
  /** A snapshot replaced the log past the proposal, or the host stopped: it may or may not have committed. */
  | { readonly kind: 'outcome_unknown'; readonly index: number };

export interface RaftHostStatus extends RaftStatus {
  readonly address: string;
  readonly pendingProposals: number;
  readonly transport: TransportStats;
  readonly recovery: FileStorageRecovery;
}

interface PendingProposal {
  readonly term: number;
  readonly resolve: (outcome: ProposeOutcome) => void;
}

export class RaftHost {
  private readonly pending = new Map<number, PendingProposal>();
  private readonly timer: NodeJS.Timeout;
  private driving = false;
  private stopped = false;
  private appliedIndex: number;
  private role: RaftRole = 'follower';
  private leaderId: NodeId = '';

  private constructor(
    private readonly cfg: RaftHostConfig,
    private readonly storage: FileStorage,
    private readonly raft: RaftNode,
    private readonly transport: TcpTransport,
  ) {
    const snap = storage.snapshot();
    // The state machine lives in memory: rebuild it from the snapshot, then the node re-applies the log.
    if (snap.index > 0) cfg.restore(snap);
    this.appliedIndex = snap.index;
    for (const [id, address] of Object.entries(cfg.peers)) transport.setPeer(id, address);
    this.timer = setInterval(() => {
      if (this.stopped) return;
      this.raft.tick();
      this.drive();
    }, cfg.tickMs);
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

  setPeer(id: NodeId, address: string): void {
    this.transport.setPeer(id, address);
  }

  /**
   * Proposes `data` as a normal entry. Resolves once the entry is applied here (`applied`), or at once with
   * the refusal when this node cannot take it (`not_leader` with the leader it knows, `queue_full`, ...).
   */
  propose(data: Uint8Array): Promise<ProposeOutcome> {
    if (this.stopped) return Promise.resolve({ kind: 'not_leader', leaderId: '' });
    const result = this.raft.propose(data);
    switch (result.kind) {
      case 'ok': {
        const { index, term } = result;
        assert(!this.pending.has(index), `two pending proposals at index ${index}`);
        const promise = new Promise<ProposeOutcome>((resolve) => this.pending.set(index, { term, resolve }));
        this.drive();
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
    };
  }

  /** Stops ticking, closes every socket and the storage; pending proposals resolve as `outcome_unknown`. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    await this.transport.close();
    this.storage.close();
    for (const [index, p] of this.pending) p.resolve({ kind: 'outcome_unknown', index });
    this.pending.clear();
  }

  // ---- The Ready loop ----

  private onMessage(m: Message): void {
    if (this.stopped) return;
    this.raft.step(m);
    this.drive();
  }

  private drive(): void {
    if (this.driving) return;
    this.driving = true;
    try {
      while (!this.stopped && this.raft.hasReady()) this.handle(this.raft.ready());
    } finally {
      this.driving = false;
    }
  }

  private handle(rd: Ready): void {
    this.role = rd.softState.role;
    this.leaderId = rd.softState.leaderId;
    for (const m of rd.messages) this.transport.send(m);
    if (rd.snapshot !== undefined) {
      const s = rd.snapshot;
      this.storage.applySnapshot(s);
      if (s.index > this.appliedIndex) {
        this.cfg.restore(s);
        this.appliedIndex = s.index;
        for (const [index, p] of this.pending) {
          if (index > s.index) continue;
          p.resolve({ kind: 'outcome_unknown', index });
          this.pending.delete(index);
        }
      }
    }
    if (rd.compaction !== undefined) this.storage.compact(rd.compaction);
    // Entries before the hard state: a stored commit must never point past the stored log.
    this.storage.append(rd.entries);
    if (rd.hardState !== undefined) this.storage.setHardState(rd.hardState);
    for (const m of rd.messagesAfterPersist) this.transport.send(m);
    for (const e of rd.committedEntries) {
      assert(e.index === this.appliedIndex + 1, `applying ${e.index} after ${this.appliedIndex}`);
      this.cfg.apply(e);
      this.appliedIndex = e.index;
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
  }
}
