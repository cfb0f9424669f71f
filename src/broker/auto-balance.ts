// The automatic balance after a broker joins (Redpanda's partition_autobalancing_mode=node_add; Kafka leaves it
// to an operator's kafka-reassign-partitions run): with `--auto-balance node-add`, a broker that registers for
// the first time gets its share of replicas and preferred leaderships without anyone asking, through the same
// plan as `POST /admin/rebalance` (rack-aware where topics are). Every node watches the registry; the one that
// is the metadata Raft leader when the joins have settled submits the plan, the others drop theirs, and the
// state machine refuses any move a racing submitter already made. A plan waits while moves are in progress or
// while a joined broker is not yet live, up to a bound, and is then given up with a warning (the operator's
// route still works).
// With `--auto-balance continuous` it also handles a broker that left without being decommissioned: one fenced
// (dead to gossip) for `--node-down-timeout` is taken as gone, and the metadata leader moves its replicas to live
// brokers by the plan of a decommission (new replicas copy from the partitions' leaders; the dead broker is
// already out of every ISR, so no move takes a partition below min ISR). A broker that comes back before that
// keeps its replicas; one that comes back after finds them moved and drops its copies. Each node tracks when it
// saw a broker fenced, so a new metadata leader picks the work up (its own clock starts at its first sight).
// Thread: the acceptor (main) thread, called from metadata snapshots and its own timers.
import type { AutoBalanceMode } from '../config/config.js';
import type { MetadataSnapshot } from '../metadata/types.js';

export interface AutoBalancerOptions {
  readonly mode: AutoBalanceMode;
  readonly nodeId: string;
  /** Whether this node is the metadata Raft leader now. */
  readonly isLeader: () => boolean;
  readonly snapshot: () => MetadataSnapshot;
  /** Submits the balance plan (MoveAdmin.balanceNow). */
  readonly balance: () => Promise<{ started: number; refused: number } | { problem: string }>;
  /** Submits the plan that moves every replica off `brokerId` (MoveAdmin.drainNow); continuous mode only. */
  readonly drain: (brokerId: string) => Promise<{ started: number; refused: number } | { problem: string }>;
  /** Continuous mode: how long a broker stays fenced before its replicas move. */
  readonly nodeDownTimeoutMs: number;
  readonly log: (level: 'info' | 'warn', message: string) => void;
  /** Quiet time after the last join before the plan is made. */
  readonly settleMs: number;
  /** Attempts (each `settleMs` apart) while moves are in progress or a joined broker is not live yet. */
  readonly attemptsMax: number;
  /** The clock the down-broker timeout is measured on (ms); `Date.now` unless a test drives it. */
  readonly nowMs?: (() => number) | undefined;
}

export class AutoBalancer {
  /** Broker ids registered in the last snapshot seen; null before the first one. */
  private known: Set<string> | null = null;
  /** Joined brokers the next plan is for. Bounded by the registry's size. */
  private readonly joined = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private attempts = 0;
  private stopped = false;
  /** Plans submitted by this node (for tests and the log). */
  plansSubmitted = 0;
  /** Continuous mode: brokers seen fenced, and since when (this node's clock, ms). Bounded by the registry. */
  private readonly downSinceMs = new Map<string, number>();
  /** Down brokers whose drain this node submitted (or found impossible): not tried again while they stay down. */
  private readonly drained = new Set<string>();
  private downTimer: NodeJS.Timeout | null = null;
  private draining = false;
  /** Drain plans submitted by this node (for tests and the log). */
  drainsSubmitted = 0;

  constructor(private readonly options: AutoBalancerOptions) {}

  /** A new metadata snapshot: notes brokers registered for the first time. */
  onSnapshot(snapshot: MetadataSnapshot): void {
    if (this.options.mode === 'off' || this.stopped) return;
    const ids = new Set(snapshot.brokers.keys());
    const before = this.known;
    this.known = ids;
    if (this.options.mode === 'continuous') this.trackDown(snapshot, before);
    // The first snapshot is the cluster as it was: nothing in it joined now.
    if (before === null) return;
    let fresh = false;
    for (const id of ids) {
      if (!before.has(id) && id !== this.options.nodeId) {
        this.joined.add(id);
        fresh = true;
      }
    }
    if (fresh) {
      this.attempts = 0;
      this.schedule();
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.downTimer !== null) clearInterval(this.downTimer);
    this.downTimer = null;
  }

  /** Notes which brokers are fenced now and since when; runs the down-broker check while any is. */
  private trackDown(snapshot: MetadataSnapshot, before: Set<string> | null): void {
    const nowMs = (this.options.nowMs ?? Date.now)();
    for (const [id, broker] of snapshot.brokers) {
      if (id === this.options.nodeId) continue;
      if (broker.fenced) {
        if (!this.downSinceMs.has(id)) this.downSinceMs.set(id, nowMs);
      } else {
        this.downSinceMs.delete(id);
        this.drained.delete(id);
      }
    }
    for (const id of [...this.downSinceMs.keys()]) {
      if (!snapshot.brokers.has(id)) {
        this.downSinceMs.delete(id);
        this.drained.delete(id);
      }
    }
    // A broker that registered may be where a refused drain can now go: try those again.
    if (before !== null && [...snapshot.brokers.keys()].some((id) => !before.has(id))) this.drained.clear();
    if (this.downSinceMs.size > 0 && this.downTimer === null) {
      const checkMs = Math.min(5_000, Math.max(50, Math.floor(this.options.nodeDownTimeoutMs / 4)));
      this.downTimer = setInterval(() => void this.checkDown(), checkMs);
      this.downTimer.unref?.();
    } else if (this.downSinceMs.size === 0 && this.downTimer !== null) {
      clearInterval(this.downTimer);
      this.downTimer = null;
    }
  }

  /** The metadata leader drains one broker that has been down past the timeout, when no move is running. */
  private async checkDown(): Promise<void> {
    if (this.stopped || this.draining || !this.options.isLeader()) return;
    const snapshot = this.options.snapshot();
    if ((snapshot.reassignments?.length ?? 0) > 0) return;
    const nowMs = (this.options.nowMs ?? Date.now)();
    for (const [id, sinceMs] of this.downSinceMs) {
      if (this.drained.has(id) || nowMs - sinceMs < this.options.nodeDownTimeoutMs) continue;
      const b = snapshot.brokers.get(id);
      if (b === undefined || !b.fenced) continue;
      this.drained.add(id);
      const held = replicasOn(snapshot, id);
      if (held === 0) continue;
      this.draining = true;
      const outcome = await this.options.drain(id).catch((error: unknown) => ({
        problem: (error as Error).message,
      }));
      this.draining = false;
      const downS = Math.round((nowMs - sinceMs) / 1000);
      if ('problem' in outcome) {
        this.options.log(
          'warn',
          `broker ${id} down for ${downS} s: its ${held} replica(s) cannot move (${outcome.problem}); tried again when a broker joins`,
        );
        return;
      }
      this.drainsSubmitted++;
      this.options.log(
        'warn',
        `broker ${id} down for ${downS} s (--node-down-timeout): moving its ${held} replica(s) to live brokers, ${outcome.started} move(s) started${outcome.refused > 0 ? `, ${outcome.refused} refused` : ''}`,
      );
      return; // one broker per check: the next waits for these moves to finish
    }
  }

  private schedule(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.fire();
    }, this.options.settleMs);
    this.timer.unref?.();
  }

  private async fire(): Promise<void> {
    if (this.stopped || this.joined.size === 0) return;
    if (!this.options.isLeader()) {
      this.joined.clear();
      return;
    }
    const snapshot = this.options.snapshot();
    const waiting = [...this.joined].filter((id) => {
      const b = snapshot.brokers.get(id);
      return b === undefined || b.fenced || b.shuttingDown || b.httpPort === 0;
    });
    const moving = snapshot.reassignments?.length ?? 0;
    if (waiting.length > 0 || moving > 0) {
      if (++this.attempts >= this.options.attemptsMax) {
        this.options.log(
          'warn',
          `automatic balance for ${[...this.joined].join(', ')} given up: ${waiting.length > 0 ? `${waiting.join(', ')} not live` : `${moving} move(s) still in progress`}; POST /admin/rebalance does it by hand`,
        );
        this.joined.clear();
        return;
      }
      this.schedule();
      return;
    }
    const brokers = [...this.joined].join(', ');
    this.joined.clear();
    const outcome = await this.options.balance().catch((error: unknown) => ({
      problem: (error as Error).message,
    }));
    if ('problem' in outcome) {
      this.options.log('warn', `automatic balance after ${brokers} joined: no plan (${outcome.problem})`);
      return;
    }
    this.plansSubmitted++;
    this.options.log(
      'info',
      `automatic balance after ${brokers} joined: ${outcome.started} move(s) started${outcome.refused > 0 ? `, ${outcome.refused} refused` : ''}`,
    );
  }
}

/** Replicas the metadata places on `brokerId`. */
function replicasOn(snapshot: MetadataSnapshot, brokerId: string): number {
  let count = 0;
  for (const topic of snapshot.topics.values()) {
    for (const p of topic.partitions) if (p.replicas.includes(brokerId)) count++;
  }
  return count;
}
