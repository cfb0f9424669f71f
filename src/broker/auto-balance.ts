// The automatic balance after a broker joins (Redpanda's partition_autobalancing_mode=node_add; Kafka leaves it
// to an operator's kafka-reassign-partitions run): with `--auto-balance node-add`, a broker that registers for
// the first time gets its share of replicas and preferred leaderships without anyone asking, through the same
// plan as `POST /admin/rebalance` (rack-aware where topics are). Every node watches the registry; the one that
// is the metadata Raft leader when the joins have settled submits the plan, the others drop theirs, and the
// state machine refuses any move a racing submitter already made. A plan waits while moves are in progress or
// while a joined broker is not yet live, up to a bound, and is then given up with a warning (the operator's
// route still works).
// Thread: the acceptor (main) thread, called from metadata snapshots and its own timer.
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
  readonly log: (level: 'info' | 'warn', message: string) => void;
  /** Quiet time after the last join before the plan is made. */
  readonly settleMs: number;
  /** Attempts (each `settleMs` apart) while moves are in progress or a joined broker is not live yet. */
  readonly attemptsMax: number;
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

  constructor(private readonly options: AutoBalancerOptions) {}

  /** A new metadata snapshot: notes brokers registered for the first time. */
  onSnapshot(snapshot: MetadataSnapshot): void {
    if (this.options.mode === 'off' || this.stopped) return;
    const ids = new Set(snapshot.brokers.keys());
    const before = this.known;
    this.known = ids;
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
