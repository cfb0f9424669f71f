// Moves of partitions between this node's partition workers, and the balancer that decides them
// (issue 14: "when workers are skewed in load, the node moves partitions between its workers"):
//   GET  /admin/workers          each worker's load and the placement of every partition held here
//   POST /admin/workers/moves    {"topic","partition","worker"}: move one partition by hand
//   POST /admin/workers/balance  one balancing round now (what the timer runs), over the load since the last look
// and, every --worker-balance-interval, a round of the pure plan (src/core/worker-balance.ts) over the load
// each partition's requests put on its worker (counted by the router: request bytes and requests sent to a
// local worker since the last round).
//
// A move, one at a time, driven from here (the acceptor sees every request, so it alone can hold them):
//   1. the router holds the partition's new requests, in order, in a bounded queue (overflow: 503);
//   2. `release` to the old worker: it completes the partition's acks=all requests (forwarded produces are
//      refused as not-leader meanwhile and retried by their sender), answers its long polls with what there is,
//      answers its followers' parked fetches, flushes, fsyncs and closes the log, and hands back the leader's
//      high watermark and epoch start; from then on it answers data-link requests for it with MOVED;
//   3. `adopt` to the new worker: it opens the log, becomes leader (or follower) from the metadata it has, and
//      carries the high watermark on, so consumers see no step back; the other workers learn the new owner;
//   4. the router points the partition at the new worker and releases what it held, in order.
// Nothing is lost or reordered: requests before the hold are in the old worker's ring ahead of `release`, and
// the held ones reach the new worker before any later one. If `release` fails (acks=all requests still
// waiting after 10 s) nothing moved and the held requests go to the old worker.
//
// Other nodes are not told: a follower fetching, or an acceptor forwarding, to the old worker's port gets a
// MOVED answer naming the new worker, learns it (core/ownership.ts LearnedPlacements) and sends again there.
// Publishing the table through the Raft metadata instead would make every move a metadata write and change the
// registration and gossip codecs, for a table that is only a hint: the worker that answers checks ownership
// anyway. The placement is not persisted: after a restart every partition starts on its hashed worker (for any
// --threads) and the balancer recomputes from the load it measures; a stale entry another node learned costs
// one MOVED answer (and is forgotten when the ports change).
// Runs on the acceptor (main) thread only.
import { assert } from '../core/assert.js';
import { workerOf } from '../core/ownership.js';
import {
  type BalanceConfig,
  type BalancePlan,
  DEFAULT_BALANCE_CONFIG,
  type PartitionLoad,
  partitionCost,
  planWorkerMoves,
} from '../core/worker-balance.js';
import { objectBodyOrReply } from '../http/object-body.js';
import type { HttpRequest, Reply } from '../http/server.js';
import type { ControlAnswer, ControlRequest, Handover } from '../messages/control.js';
import type { PartitionRoute, PartitionRouter } from './router.js';
import type { WorkerLink } from './worker-link.js';
import { StatSlot } from './worker-stats.js';

export interface WorkerMovesOptions {
  readonly nodeId: string;
  readonly router: PartitionRouter;
  readonly links: readonly WorkerLink[];
  /** Each worker's shared stats (worker-stats.ts). */
  readonly stats: readonly Float64Array[];
  /** A JSON control request to one local worker, through its ring. */
  readonly control: (link: WorkerLink, request: ControlRequest) => Promise<ControlAnswer>;
  /** 0: no automatic rounds. */
  readonly intervalMs: number;
  readonly tolerancePercent: number;
  readonly movesMax: number;
  readonly log: {
    info(fields: Record<string, unknown>, message: string): void;
    warn(fields: Record<string, unknown>, message: string): void;
  };
  /**
   * The extra acceptor threads (--acceptor-threads), which route requests too: a move holds the partition on
   * each of them as well, and tells them where it ended. Absent with one acceptor.
   */
  readonly peers?: {
    hold(key: number): Promise<void>;
    moved(key: number, to: number | null, hashed: boolean): void;
    /** The partition's requests and request bytes routed by the extra acceptors (cumulative). */
    countsOf(key: number): { requests: number; bytes: number };
  } | null;
}

export type MoveResult =
  | { readonly kind: 'moved'; readonly from: number; readonly to: number; readonly tookMs: number }
  | { readonly kind: 'refused'; readonly message: string };

interface Rates {
  readonly bytesPerS: number;
  readonly requestsPerS: number;
}

/** A partition moved by the balancer stays put for this many rounds. */
const cooldownRounds = 3;
/** `adopt` and `placement` are retried this long when a worker's ring refuses them (it is badly overloaded). */
const adoptRetryMs = 5_000;

export class WorkerMoves {
  private busy = false;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  /** When each partition last moved (ms since epoch): moved ones cool down before the balancer moves them again. */
  private readonly movedAtMs = new Map<number, number>();
  /** The balancer's window (from one round to the next), and the admin route's own when no timer runs. */
  private readonly balanceLoad: LoadSampler;
  private readonly lookLoad: LoadSampler;
  private lastRound: {
    readonly atMs: number;
    readonly plan: BalancePlan;
    readonly moved: number;
    readonly refused: number;
  } | null = null;
  private movesDone = 0;
  private readonly config: BalanceConfig;

  constructor(private readonly options: WorkerMovesOptions) {
    this.config = {
      ...DEFAULT_BALANCE_CONFIG,
      tolerance: options.tolerancePercent / 100,
      movesMax: options.movesMax,
    };
    const peerCounts = options.peers ?? null;
    this.balanceLoad = new LoadSampler(options.router, options.stats, peerCounts);
    this.lookLoad = new LoadSampler(options.router, options.stats, peerCounts);
  }

  start(): void {
    if (this.options.intervalMs <= 0 || this.options.links.length < 2) return;
    this.timer = setInterval(() => {
      void this.round().catch((error: unknown) =>
        this.options.log.warn({ err: error }, 'worker balance round failed'),
      );
    }, this.options.intervalMs);
    this.timer.unref();
  }

  /** No more rounds; a move in progress stops waiting for workers that are shutting down. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Routes of the partitions with a replica on this node. */
  private localRoutes(): PartitionRoute[] {
    const out: PartitionRoute[] = [];
    for (const topic of this.options.router.allTopics()) {
      for (const p of topic.partitions) if (p.replicas.includes(this.options.nodeId)) out.push(p);
    }
    return out;
  }

  /** One balancing round: sample, plan, carry the moves out one after another. */
  async round(): Promise<BalancePlan | null> {
    if (this.busy) return null;
    const nowMs = Date.now();
    this.balanceLoad.sample(nowMs);
    const loads: PartitionLoad[] = [];
    for (const route of this.localRoutes()) {
      const rates = this.balanceLoad.rates.get(route.key);
      if (rates === undefined) continue;
      loads.push({ key: route.key, worker: route.link.workerIndex, ...rates });
    }
    const pinned = new Set<number>();
    const cooldownMs = cooldownRounds * this.options.intervalMs;
    for (const [key, at] of this.movedAtMs) {
      if (nowMs - at < cooldownMs) pinned.add(key);
      else this.movedAtMs.delete(key);
    }
    const plan = planWorkerMoves(loads, this.options.links.length, this.config, pinned);
    let moved = 0;
    let refused = 0;
    for (const m of plan.moves) {
      const route = this.options.router.routeByKey(m.key);
      if (route === undefined) continue;
      const result = await this.move(route, m.to, 'balance');
      if (result.kind === 'moved') moved++;
      else refused++;
    }
    this.lastRound = { atMs: nowMs, plan, moved, refused };
    if (plan.moves.length > 0) {
      this.options.log.info(
        {
          loads_before: plan.loadsBefore.map(Math.round),
          loads_after: plan.loadsAfter.map(Math.round),
          moved,
          refused,
        },
        'worker balance round moved partitions between workers',
      );
    }
    return plan;
  }

  /** Moves one partition to worker `to` of this node; one move at a time. */
  async move(route: PartitionRoute, to: number, why: 'balance' | 'admin'): Promise<MoveResult> {
    const { router, links, control } = this.options;
    assert(to >= 0 && to < links.length, `move to worker ${to} of ${links.length}`);
    const from = route.link.workerIndex;
    const name = `${route.topic}-${route.partition}`;
    if (from === to) return { kind: 'refused', message: `${name} is on worker ${to} already` };
    if (this.busy) return { kind: 'refused', message: 'another move between workers is in progress; retry' };
    if (this.stopped) return { kind: 'refused', message: 'this node is shutting down' };
    this.busy = true;
    const startedMs = performance.now();
    router.hold(route);
    let released = false;
    const peers = this.options.peers ?? null;
    try {
      // Every acceptor holds it before the old worker lets go: what each sent before is ahead of `release`.
      if (peers !== null) {
        try {
          await peers.hold(route.key);
        } catch (error) {
          return {
            kind: 'refused',
            message: `${name} stayed on worker ${from}: ${(error as Error).message}`,
          };
        }
      }
      const answer = await control(links[from]!, {
        op: 'release',
        topicSeq: route.topicSeq,
        partition: route.partition,
        toWorker: to,
      });
      if (!answer.ok) {
        return { kind: 'refused', message: `worker ${from} kept ${name}: ${answer.message}` };
      }
      released = true;
      const handover = ('handover' in answer ? answer.handover : null) ?? null;
      await this.tellUntilDone(links[to]!, {
        op: 'adopt',
        topicSeq: route.topicSeq,
        partition: route.partition,
        handover: handover as Handover | null,
      });
      for (const link of links) {
        if (link.workerIndex === from || link.workerIndex === to) continue;
        await this.tellUntilDone(link, {
          op: 'placement',
          topicSeq: route.topicSeq,
          partition: route.partition,
          worker: to,
        });
      }
      const hashed = to === workerOf(route.topicSeq, route.partition, links.length);
      if (hashed) router.placement.delete(route.key);
      else router.placement.set(route.key, to);
      peers?.moved(route.key, to, hashed);
      const held = route.held?.length ?? 0;
      router.releaseHold(route, links[to]!);
      this.movedAtMs.set(route.key, Date.now());
      this.movesDone++;
      const tookMs = performance.now() - startedMs;
      this.options.log.info(
        { topic: route.topic, partition: route.partition, from, to, why, took_ms: Math.round(tookMs), held },
        'partition moved between workers',
      );
      return { kind: 'moved', from, to, tookMs };
    } finally {
      // Not released: the old worker still holds it, and what waited goes there.
      if (!released) {
        router.releaseHold(route, null);
        peers?.moved(route.key, null, false);
      }
      this.busy = false;
    }
  }

  /**
   * A control request that must succeed once the old worker let go (the partition has no owner until it
   * does): retried while the worker's ring refuses it; a worker that never takes it is a broken node.
   */
  private async tellUntilDone(link: WorkerLink, request: ControlRequest): Promise<void> {
    const deadline = performance.now() + adoptRetryMs;
    for (;;) {
      try {
        const answer = await this.options.control(link, request);
        assert(answer.ok, `worker ${link.workerIndex} refused ${request.op}: ${JSON.stringify(answer)}`);
        return;
      } catch (error) {
        // Shutting down: the worker refuses requests after its shutdown frame, and the log is closed on disk.
        if (this.stopped) return;
        assert(
          performance.now() < deadline,
          `worker ${link.workerIndex} never took ${request.op}: ${String(error)}`,
        );
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  }

  // ------------------------------------------------------------------------------------------------------
  // Admin routes.

  /** `GET /admin/workers`. */
  describe(_request: HttpRequest, reply: Reply): void {
    // Without automatic rounds the rates are over the time since the previous look (at least a second).
    // With the timer, the rates of the last round's window; without, those since the previous look (>= 1 s).
    const window = this.timer === null ? this.lookLoad : this.balanceLoad;
    if (this.timer === null && Date.now() - window.sampledAtMs >= 1000) window.sample(Date.now());
    const workers = this.options.links.map((link, i) => ({
      worker: i,
      partitions: 0,
      led_partitions: 0,
      overrides: 0,
      bytes_per_s: 0,
      requests_per_s: 0,
      load: 0,
      appended_bytes_per_s: Math.round(window.appendedBytesPerS[i] ?? 0),
      appended_bytes: this.options.stats[i]![StatSlot.appendedBytes]!,
      appended_records: this.options.stats[i]![StatSlot.appendedRecords]!,
      open_logs: this.options.stats[i]![StatSlot.openLogs]!,
      queued_sends: link.queuedSends,
    }));
    const partitions = this.localRoutes().map((route) => {
      const worker = route.link.workerIndex;
      const rates = window.rates.get(route.key) ?? { bytesPerS: 0, requestsPerS: 0 };
      const load = partitionCost({ key: route.key, worker, ...rates }, this.config);
      const w = workers[worker]!;
      w.partitions++;
      if (route.leader === this.options.nodeId) w.led_partitions++;
      const hashed = workerOf(route.topicSeq, route.partition, this.options.links.length);
      if (hashed !== worker) w.overrides++;
      w.bytes_per_s += rates.bytesPerS;
      w.requests_per_s += rates.requestsPerS;
      w.load += load;
      return {
        topic: route.topic,
        partition: route.partition,
        worker,
        hashed_worker: hashed,
        leader: route.leader === this.options.nodeId,
        moving: route.held !== null,
        bytes_per_s: Math.round(rates.bytesPerS),
        requests_per_s: Math.round(rates.requestsPerS * 10) / 10,
      };
    });
    for (const w of workers) {
      w.bytes_per_s = Math.round(w.bytes_per_s);
      w.requests_per_s = Math.round(w.requests_per_s * 10) / 10;
      w.load = Math.round(w.load);
    }
    const last = this.lastRound;
    reply.json(
      200,
      JSON.stringify({
        node: this.options.nodeId,
        workers,
        partitions,
        balancer: {
          interval_ms: this.options.intervalMs,
          tolerance_percent: this.options.tolerancePercent,
          moves_max: this.options.movesMax,
          request_cost_bytes: this.config.requestCostBytes,
          rates_window_ms: window.windowMs,
          moves_done: this.movesDone,
          moving: this.busy,
          last_round:
            last === null
              ? null
              : {
                  at_ms: last.atMs,
                  reason: last.plan.reason,
                  loads_before: last.plan.loadsBefore.map(Math.round),
                  loads_after: last.plan.loadsAfter.map(Math.round),
                  moved: last.moved,
                  refused: last.refused,
                },
        },
      }),
    );
  }

  /** `POST /admin/workers/balance`: one round now. */
  balanceNow(_request: HttpRequest, reply: Reply): void {
    this.round().then(
      (plan) => {
        if (plan === null) return reply.error('conflict', 'a move between workers is in progress; retry');
        const last = this.lastRound!;
        reply.json(
          200,
          JSON.stringify({
            reason: plan.reason,
            loads_before: plan.loadsBefore.map(Math.round),
            loads_after: plan.loadsAfter.map(Math.round),
            moves: plan.moves.map((m) => {
              const route = this.options.router.routeByKey(m.key);
              return {
                topic: route?.topic ?? null,
                partition: route?.partition ?? null,
                from: m.from,
                to: m.to,
                cost: Math.round(m.cost),
              };
            }),
            moved: last.moved,
            refused: last.refused,
          }),
        );
      },
      (error: unknown) => reply.error('internal', `the balancing round failed: ${String(error)}`),
    );
  }

  /** `POST /admin/workers/moves` `{"topic","partition","worker"}`. */
  moveByHand(request: HttpRequest, reply: Reply): void {
    const body = objectBodyOrReply(request, reply);
    if (body === null) return;
    const unknown = Object.keys(body).filter((k) => k !== 'topic' && k !== 'partition' && k !== 'worker');
    if (unknown.length > 0) {
      return reply.error(
        'bad_request',
        `unknown field ${JSON.stringify(unknown[0]!.slice(0, 64))}; expected {"topic","partition","worker"}`,
      );
    }
    const { topic, partition, worker } = body;
    if (typeof topic !== 'string' || topic === '') {
      return reply.error('bad_request', 'topic must be a non-empty string');
    }
    if (!Number.isSafeInteger(partition) || (partition as number) < 0) {
      return reply.error('bad_request', 'partition must be an integer >= 0');
    }
    const workers = this.options.links.length;
    if (!Number.isSafeInteger(worker) || (worker as number) < 0 || (worker as number) >= workers) {
      return reply.error(
        'bad_request',
        `worker must be an integer from 0 to ${workers - 1} (this node has ${workers} partition workers)`,
      );
    }
    const t = this.options.router.topic(topic);
    if (t === undefined)
      return reply.error('unknown_topic', `no topic ${JSON.stringify(topic.slice(0, 249))}`);
    const route = t.partitions[partition as number];
    if (route === undefined) {
      return reply.error(
        'unknown_partition',
        `topic '${topic}' has ${t.partitions.length} partitions; there is no partition ${partition}`,
      );
    }
    if (!route.replicas.includes(this.options.nodeId)) {
      return reply.error(
        'conflict',
        `broker ${this.options.nodeId} holds no replica of ${topic}-${partition} (replicas: ${route.replicas.join(', ')}); ask a broker that does`,
      );
    }
    this.move(route, worker as number, 'admin').then(
      (result) => {
        if (result.kind === 'refused') return reply.error('conflict', result.message);
        reply.json(
          200,
          JSON.stringify({
            topic,
            partition,
            from: result.from,
            to: result.to,
            took_ms: Math.round(result.tookMs * 10) / 10,
          }),
        );
      },
      (error: unknown) => reply.error('internal', `the move failed: ${String(error)}`),
    );
  }
}

/**
 * Per-partition rates from the routers' counters (this acceptor's, plus the extra acceptor threads' as they last
 * posted them), and per-worker appended bytes from the shared stats, over the time between two calls of `sample`.
 */
class LoadSampler {
  sampledAtMs: number;
  /** How long the window of `rates` is (ms): between the last two samples. */
  windowMs = 0;
  private readonly sampled = new Map<number, { requests: number; bytes: number }>();
  private readonly sampledAppended: number[];
  rates = new Map<number, Rates>();
  readonly appendedBytesPerS: number[];

  constructor(
    private readonly router: PartitionRouter,
    private readonly stats: readonly Float64Array[],
    private readonly peers: { countsOf(key: number): { requests: number; bytes: number } } | null,
  ) {
    this.sampledAppended = stats.map(() => 0);
    this.appendedBytesPerS = stats.map(() => 0);
    this.sampledAtMs = 0;
    this.sample(Date.now());
  }

  /** Takes the counters now; the rates are over the time since the previous sample. */
  sample(nowMs: number): void {
    const elapsedS = (nowMs - this.sampledAtMs) / 1000;
    const first = this.sampledAtMs === 0;
    const rates = new Map<number, Rates>();
    for (const topic of this.router.allTopics()) {
      for (const p of topic.partitions) {
        // A partition created since the last sample counted from 0 (its route's counters start there).
        const before = this.sampled.get(p.key) ?? { requests: 0, bytes: 0 };
        const peers = this.peers?.countsOf(p.key);
        const requests = p.sentRequests + (peers?.requests ?? 0);
        const bytes = p.sentBytes + (peers?.bytes ?? 0);
        if (elapsedS > 0) {
          rates.set(p.key, {
            bytesPerS: Math.max(0, bytes - before.bytes) / elapsedS,
            requestsPerS: Math.max(0, requests - before.requests) / elapsedS,
          });
        }
        this.sampled.set(p.key, { requests, bytes });
      }
    }
    for (const key of this.sampled.keys()) {
      if (this.router.routeByKey(key) === undefined) this.sampled.delete(key);
    }
    for (const [i, stats] of this.stats.entries()) {
      const appended = stats[StatSlot.appendedBytes]!;
      if (!first && elapsedS > 0)
        this.appendedBytesPerS[i] = (appended - this.sampledAppended[i]!) / elapsedS;
      this.sampledAppended[i] = appended;
    }
    if (!first) {
      this.rates = rates;
      this.windowMs = nowMs - this.sampledAtMs;
    }
    this.sampledAtMs = nowMs;
  }
}
