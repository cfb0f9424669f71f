// The operators' routes for partition moves (issue: reassignment and balancing):
//   POST   /admin/reassignments                 an explicit plan, like kafka-reassign-partitions.sh (dry run too)
//   DELETE /admin/reassignments                 cancels moves in progress (all, or the partitions named)
//   POST   /admin/rebalance                     applies the balance plan (replicas evened out over live brokers)
//   POST   /admin/brokers/{id}/decommission     moves every replica off a broker
//   GET    /admin/brokers/{id}/decommission     how many replicas the broker still holds, and whether it is empty
//   GET    /admin/assignment-plan               the current placement, the balance plan, and moves in progress
//   POST   /admin/preferred-leader-election     leadership back to the preferred replicas now
// Plans come from the pure planner (core/metadata/rebalance.ts); each move is checked again and started by the
// metadata leader's state machine, and finished by the controller once its new replicas are in the ISR.
// Runs on the acceptor (main) thread only.

import {
  type PlacedPartition,
  type Plan,
  planBalance,
  planDecommission,
} from '../core/metadata/rebalance.js';
import type { ReassignChange, Reassignment } from '../core/metadata/state-machine.js';
import { objectBodyOrReply } from '../http/object-body.js';
import type { HttpRequest, Reply } from '../http/server.js';
import type { MetadataSnapshot } from '../metadata/types.js';

export interface MoveAdminOptions {
  readonly snapshot: () => MetadataSnapshot;
  /** Brokers that can take replicas now: registered, not fenced, not shutting down, alive in gossip. */
  readonly liveBrokers: () => readonly string[];
  readonly reassign: (changes: readonly ReassignChange[]) => Promise<readonly (string | null)[]>;
  /** Asks the controller to move leaderships to the preferred replicas now. */
  readonly electPreferredLeaders: () => Promise<void>;
  /** Each replica's distance behind the leader, for moves in progress (null when the leader cannot say). */
  /** Records each replica is behind its leader, and the leader's average stored bytes per record. */
  readonly replicaLag: (
    topic: string,
    partition: number,
  ) => Promise<{ readonly behind: Record<string, number>; readonly bytesPerRecord: number } | null>;
}

/** A plan larger than this is refused: one Raft entry carries it. */
const movesPerRequestMax = 10_000;

export class MoveAdmin {
  constructor(private readonly options: MoveAdminOptions) {}

  /** `POST /admin/reassignments` `{"partitions":[{"topic","partition","replicas"}], "dry_run"?}`. */
  reassign(request: HttpRequest, reply: Reply): void {
    const body = objectBodyOrReply(request, reply);
    if (body === null) return;
    const list = body.partitions;
    if (!Array.isArray(list) || list.length === 0 || list.length > movesPerRequestMax) {
      return reply.error(
        'bad_request',
        `partitions must be a non-empty array of at most ${movesPerRequestMax} {"topic","partition","replicas"}`,
      );
    }
    const snapshot = this.options.snapshot();
    const changes: ReassignChange[] = [];
    for (const [i, entry] of list.entries()) {
      const e = entry as Record<string, unknown>;
      const t = typeof e?.topic === 'string' ? snapshot.topics.get(e.topic) : undefined;
      if (t === undefined)
        return reply.error('unknown_topic', `partitions[${i}]: no topic ${JSON.stringify(e?.topic)}`);
      if (typeof e.partition !== 'number' || t.partitions[e.partition] === undefined) {
        return reply.error(
          'unknown_partition',
          `partitions[${i}]: topic '${t.name}' has no partition ${String(e.partition)}`,
        );
      }
      const replicas = e.replicas;
      if (!Array.isArray(replicas) || replicas.some((id) => typeof id !== 'string')) {
        return reply.error('bad_request', `partitions[${i}].replicas must be an array of broker ids`);
      }
      if (replicas.length !== t.replicationFactor || new Set(replicas).size !== replicas.length) {
        return reply.error(
          'bad_request',
          `partitions[${i}].replicas must name ${t.replicationFactor} different brokers (the replication factor)`,
        );
      }
      for (const id of replicas as string[]) {
        if (!snapshot.brokers.has(id))
          return reply.error('unknown_broker', `partitions[${i}]: no broker ${id}`);
      }
      changes.push({
        topicId: t.topicId,
        topic: t.name,
        partition: e.partition,
        target: replicas as string[],
      });
    }
    this.submit(reply, changes, body.dry_run === true, 'reassignment');
  }

  /** `DELETE /admin/reassignments` with an optional `{"partitions":[{"topic","partition"}]}`. */
  cancel(request: HttpRequest, reply: Reply): void {
    const text = request.body?.toString('utf8') ?? '';
    let named: { topic: string; partition: number }[] | null = null;
    if (text.trim() !== '') {
      const body = objectBodyOrReply(request, reply);
      if (body === null) return;
      if (!Array.isArray(body.partitions)) return reply.error('bad_request', 'partitions must be an array');
      named = body.partitions as { topic: string; partition: number }[];
    }
    const moving = this.options.snapshot().reassignments ?? [];
    const chosen = moving.filter(
      (m) => named === null || named.some((n) => n?.topic === m.topic && n?.partition === m.partition),
    );
    const changes = chosen.map((m) => ({
      topicId: m.topicId,
      topic: m.topic,
      partition: m.partition,
      target: [],
    }));
    if (changes.length === 0) return reply.json(200, JSON.stringify({ cancelled: [], refused: [] }));
    this.options.reassign(changes).then(
      (refusals) => {
        const cancelled = changes.filter((_c, i) => refusals[i] === null).map(ref);
        const refused = changes
          .map((c, i) => ({ ...ref(c), reason: refusals[i] }))
          .filter((c) => c.reason !== null);
        reply.json(200, JSON.stringify({ cancelled, refused }));
      },
      (error: unknown) => reply.error('no_leader', `the cancel was not made: ${(error as Error).message}`),
    );
  }

  /** `POST /admin/rebalance` `{"dry_run"?}`: the balance plan, applied. */
  rebalance(request: HttpRequest, reply: Reply): void {
    const body = objectBodyOrReply(request, reply, true);
    if (body === null) return;
    const plan = planBalance(this.placed(), this.options.liveBrokers(), this.racks());
    this.submitPlan(reply, plan, body.dry_run === true, 'rebalance');
  }

  /**
   * The balance plan over the live brokers, submitted without a request (the automatic balance after a broker
   * joins): how many moves started, how many the metadata refused, or why there is no plan.
   */
  async balanceNow(): Promise<{ started: number; refused: number } | { problem: string }> {
    return this.submitNow(planBalance(this.placed(), this.options.liveBrokers(), this.racks()));
  }

  /**
   * The decommission plan of `brokerId` over the live brokers, submitted without a request (a broker down past
   * --node-down-timeout with --auto-balance continuous).
   */
  async drainNow(brokerId: string): Promise<{ started: number; refused: number } | { problem: string }> {
    return this.submitNow(
      planDecommission(this.placed(), this.options.liveBrokers(), brokerId, this.racks()),
    );
  }

  private async submitNow(plan: Plan): Promise<{ started: number; refused: number } | { problem: string }> {
    if (plan.kind === 'error') return { problem: plan.reason };
    if (plan.moves.length === 0) return { started: 0, refused: 0 };
    const changes = plan.moves.map((m) => ({
      topicId: m.topicId,
      topic: m.topic,
      partition: m.partition,
      target: m.to,
    }));
    const refusals = await this.options.reassign(changes);
    const refused = refusals.filter((r) => r !== null).length;
    return { started: refusals.length - refused, refused };
  }

  /** `POST /admin/brokers/{id}/decommission` `{"dry_run"?}`. */
  decommission(request: HttpRequest, reply: Reply): void {
    const id = request.params[0] ?? '';
    const body = objectBodyOrReply(request, reply, true);
    if (body === null) return;
    if (!this.options.snapshot().brokers.has(id)) return reply.error('unknown_broker', `no broker ${id}`);
    const plan = planDecommission(this.placed(), this.options.liveBrokers(), id, this.racks());
    this.submitPlan(reply, plan, body.dry_run === true, 'decommission');
  }

  /**
   * `POST /admin/preferred-leader-election`: leadership back to each partition's first replica, at once, where
   * it is live and in the ISR (the controller also does it by itself 5 s after the replica is back).
   */
  electPreferred(_request: HttpRequest, reply: Reply): void {
    const pending = [...this.options.snapshot().topics.values()].flatMap((t) =>
      t.partitions
        .filter((p) => p.leader !== p.replicas[0])
        .map((p) => ({ topic: t.name, partition: p.partition, leader: p.leader, preferred: p.replicas[0] })),
    );
    this.options.electPreferredLeaders().then(
      () => reply.json(202, JSON.stringify({ requested: true, not_preferred: pending })),
      (error: unknown) =>
        reply.error('no_leader', `the election was not asked for: ${(error as Error).message}`),
    );
  }

  /** `GET /admin/brokers/{id}/decommission`: what the broker still holds. */
  decommissionStatus(request: HttpRequest, reply: Reply): void {
    const id = request.params[0] ?? '';
    const snapshot = this.options.snapshot();
    if (!snapshot.brokers.has(id)) return reply.error('unknown_broker', `no broker ${id}`);
    const held = this.placed().filter((p) => p.replicas.includes(id));
    const moving = (snapshot.reassignments ?? []).filter(
      (m) => m.original.includes(id) && !m.target.includes(id),
    );
    reply.json(
      200,
      JSON.stringify({
        broker: id,
        replicas: held.length,
        moving_away: moving.length,
        empty: held.length === 0,
        partitions: held.map((p) => ({ topic: p.topic, partition: p.partition })),
      }),
    );
  }

  /** `GET /admin/assignment-plan`: current placement, the balance plan, moves in progress with their lag. */
  plan(_request: HttpRequest, reply: Reply): void {
    const snapshot = this.options.snapshot();
    const placed = this.placed();
    const proposed = planBalance(placed, this.options.liveBrokers(), this.racks());
    const moving = snapshot.reassignments ?? [];
    const nowMs = performance.now();
    const seen = new Set<string>();
    Promise.all(moving.map((m) => this.progress(m, nowMs, seen))).then((moves) => {
      for (const key of this.firstSeen.keys()) if (!seen.has(key)) this.firstSeen.delete(key);
      reply.json(
        200,
        JSON.stringify({
          brokers: [...snapshot.brokers.keys()].sort(),
          live_brokers: [...this.options.liveBrokers()].sort(),
          current: [...snapshot.topics.values()].flatMap((t) =>
            t.partitions.map((p) => ({
              topic: t.name,
              partition: p.partition,
              replicas: p.replicas,
              leader: p.leader,
            })),
          ),
          proposed: proposed.kind === 'ok' ? proposed.moves.map(moveJson) : [],
          proposed_problem: proposed.kind === 'error' ? proposed.reason : null,
          moves,
        }),
      );
    });
  }

  /**
   * First sight of each new replica of a move in progress (key: topic id, partition, broker): records behind
   * then, and when. The average catch-up rate since then gives the ETA. Entries of finished moves are dropped
   * at each plan request, so the map holds at most the replicas being added.
   */
  private readonly firstSeen = new Map<string, { atMs: number; behind: number }>();

  private async progress(m: Reassignment, nowMs: number, seen: Set<string>) {
    const t = this.options.snapshot().topics.get(m.topic);
    const p = t?.partitions[m.partition];
    const adding = m.target.filter((id) => !m.original.includes(id));
    const lag = await this.options.replicaLag(m.topic, m.partition).catch(() => null);
    return {
      topic: m.topic,
      partition: m.partition,
      from: m.original,
      to: m.target,
      adding: adding.map((id) => {
        const behind = lag?.behind[id] ?? null;
        const key = `${m.topicId}:${m.partition}:${id}`;
        seen.add(key);
        let first = this.firstSeen.get(key);
        if (first === undefined && behind !== null) {
          first = { atMs: nowMs, behind };
          this.firstSeen.set(key, first);
        }
        // The net rate at which the replica closes the gap (the leader may still be taking writes).
        const elapsedS = first === undefined ? 0 : (nowMs - first.atMs) / 1000;
        const rate =
          first !== undefined && behind !== null && elapsedS >= 0.5
            ? (first.behind - behind) / elapsedS
            : null;
        const bytesPerRecord = lag?.bytesPerRecord ?? 0;
        return {
          broker: id,
          in_isr: p?.isr.includes(id) ?? false,
          records_behind: behind,
          // Estimates from the leader's average record size.
          bytes_left: behind === null ? null : Math.round(behind * bytesPerRecord),
          rate_bytes_per_s: rate === null ? null : Math.round(rate * bytesPerRecord),
          eta_ms:
            behind === 0
              ? 0
              : rate === null || rate <= 0 || behind === null
                ? null
                : Math.round((behind / rate) * 1000),
        };
      }),
      started_at: m.startedAtMs,
      elapsed_ms: Date.now() - m.startedAtMs,
    };
  }

  /** Each registered broker's rack, for rack-aware plans. */
  private racks(): Map<string, string> {
    return new Map([...this.options.snapshot().brokers.values()].map((b) => [b.id, b.rack]));
  }

  private placed(): PlacedPartition[] {
    const out: PlacedPartition[] = [];
    for (const t of this.options.snapshot().topics.values()) {
      for (const p of t.partitions) {
        out.push({
          topic: t.name,
          topicId: t.topicId,
          partition: p.partition,
          replicas: p.replicas,
          rackAware: t.rackAwareness,
        });
      }
    }
    return out;
  }

  private submitPlan(reply: Reply, plan: Plan, dryRun: boolean, what: string): void {
    if (plan.kind === 'error') return reply.error('conflict', `no ${what} plan: ${plan.reason}`);
    const changes = plan.moves.map((m) => ({
      topicId: m.topicId,
      topic: m.topic,
      partition: m.partition,
      target: m.to,
    }));
    this.submit(reply, changes, dryRun, what);
  }

  private submit(reply: Reply, changes: ReassignChange[], dryRun: boolean, what: string): void {
    const snapshot = this.options.snapshot();
    const from = (c: ReassignChange) => snapshot.topics.get(c.topic)?.partitions[c.partition]?.replicas ?? [];
    const listed = changes.map((c) => ({ ...ref(c), from: from(c), to: c.target }));
    if (dryRun || changes.length === 0) {
      return reply.json(200, JSON.stringify({ dry_run: dryRun, moves: listed, refused: [] }));
    }
    this.options.reassign(changes).then(
      (refusals) => {
        const started = listed.filter((_m, i) => refusals[i] === null);
        const refused = listed
          .map((m, i) => ({ ...m, reason: refusals[i] }))
          .filter((m) => m.reason !== null);
        reply.json(
          refused.length === 0 ? 202 : 200,
          JSON.stringify({ dry_run: false, moves: started, refused }),
        );
      },
      (error: unknown) =>
        reply.error('no_leader', `the ${what} was not started: ${(error as Error).message}`),
    );
  }
}

function ref(c: { topic: string; partition: number }) {
  return { topic: c.topic, partition: c.partition };
}

function moveJson(m: { topic: string; partition: number; from: readonly string[]; to: readonly string[] }) {
  return { topic: m.topic, partition: m.partition, from: m.from, to: m.to };
}
