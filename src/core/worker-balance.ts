// The plan that evens out load over a node's partition workers: given each partition's load (bytes/s and
// requests/s over the last window) and the worker that holds it now, the fewest moves that bring the hottest
// worker within a tolerance of the mean. Decides only; the acceptor's balancer (src/broker/worker-balancer.ts)
// measures the load and carries the moves out.
//
// The rules, and why:
// - One figure per partition, `cost = bytesPerS + requestsPerS * requestCostBytes`: a worker pays per byte
//   (copy, CRC, write) and per request (a frame, an answer, a share of an fsync), so a partition of many tiny
//   produces weighs more than its bytes say.
// - Nothing moves while the hottest worker is within `tolerance` of the mean, or while the node's total load is
//   below `minTotalCost` (noise on an idle node must not move partitions).
// - Each move goes from the hottest worker to the coldest one, and only when it lowers the larger of the two
//   by at least `minGainFraction` of the mean: a move that only swaps which worker is hottest is refused. Every
//   move accepted strictly lowers the sum of squared worker loads (moving l from h to c with W[c] + l < W[h]
//   changes it by 2l(W[c] + l - W[h]) < 0), so repeated rounds on a steady load end, and the largest worker load
//   never grows.
// - Sticky: the partition chosen is the one whose move leaves the two workers closest to each other; partitions
//   listed in `pinned` (moved recently, or moving now) stay put. At most `movesMax` moves per round.
// Pure: no I/O, no clock; callable from any thread.
import { assert } from './assert.js';

export interface PartitionLoad {
  /** The partition's key (core/ownership.ts partitionKey). */
  readonly key: number;
  /** The worker holding it now (0..workers-1). */
  readonly worker: number;
  readonly bytesPerS: number;
  readonly requestsPerS: number;
}

export interface BalanceConfig {
  /** The hottest worker may carry up to (1 + tolerance) x the mean before anything moves. */
  readonly tolerance: number;
  /** Moves planned per round at most. */
  readonly movesMax: number;
  /** What one request costs, in bytes' worth of work. */
  readonly requestCostBytes: number;
  /** Below this total cost (bytes/s' worth) the node is idle enough to leave as it is. */
  readonly minTotalCost: number;
  /** A move must lower the larger of its two workers' loads by at least this fraction of the mean. */
  readonly minGainFraction: number;
}

export const DEFAULT_BALANCE_CONFIG: BalanceConfig = {
  tolerance: 0.25,
  movesMax: 4,
  requestCostBytes: 1024,
  minTotalCost: 256 * 1024,
  minGainFraction: 0.05,
};

export interface WorkerMove {
  readonly key: number;
  readonly from: number;
  readonly to: number;
  /** The partition's cost (bytes/s' worth) that moves with it. */
  readonly cost: number;
}

export interface BalancePlan {
  /** Each worker's cost now, and after the moves. */
  readonly loadsBefore: readonly number[];
  readonly loadsAfter: readonly number[];
  readonly moves: readonly WorkerMove[];
  /** Why nothing (more) moves: 'balanced', 'idle', 'no_gain' (no move lowers the hottest enough), 'moves_max'. */
  readonly reason: 'balanced' | 'idle' | 'no_gain' | 'moves_max' | 'single_worker';
}

export function partitionCost(load: PartitionLoad, config: BalanceConfig): number {
  return load.bytesPerS + load.requestsPerS * config.requestCostBytes;
}

/** Each worker's total cost. */
export function workerLoads(
  loads: readonly PartitionLoad[],
  workers: number,
  config: BalanceConfig,
): number[] {
  const out = new Array<number>(workers).fill(0);
  for (const l of loads) {
    assert(l.worker >= 0 && l.worker < workers, `partition ${l.key} on worker ${l.worker} of ${workers}`);
    out[l.worker]! += partitionCost(l, config);
  }
  return out;
}

export function planWorkerMoves(
  loads: readonly PartitionLoad[],
  workers: number,
  config: BalanceConfig,
  pinned: ReadonlySet<number> = new Set(),
): BalancePlan {
  assert(workers >= 1, 'a node has at least one worker');
  assert(config.tolerance >= 0 && config.movesMax >= 0, 'balance config is non-negative');
  for (const l of loads) {
    assert(
      Number.isFinite(l.bytesPerS) &&
        l.bytesPerS >= 0 &&
        Number.isFinite(l.requestsPerS) &&
        l.requestsPerS >= 0,
      `partition ${l.key} has a load of ${l.bytesPerS} B/s, ${l.requestsPerS} req/s`,
    );
  }
  const before = workerLoads(loads, workers, config);
  const after = [...before];
  const done = (moves: WorkerMove[], reason: BalancePlan['reason']): BalancePlan => ({
    loadsBefore: before,
    loadsAfter: after,
    moves,
    reason,
  });
  if (workers === 1) return done([], 'single_worker');
  const total = before.reduce((a, b) => a + b, 0);
  if (total < config.minTotalCost) return done([], 'idle');
  const mean = total / workers;
  const minGain = config.minGainFraction * mean;
  // Where each partition is in this plan, and its cost; pinned ones are not candidates.
  const where = new Map<number, number>();
  const cost = new Map<number, number>();
  for (const l of loads) {
    assert(!where.has(l.key), `partition ${l.key} listed twice`);
    where.set(l.key, l.worker);
    cost.set(l.key, partitionCost(l, config));
  }
  const moves: WorkerMove[] = [];
  const moved = new Set<number>();
  for (;;) {
    let hot = 0;
    let cold = 0;
    for (let w = 1; w < workers; w++) {
      if (after[w]! > after[hot]!) hot = w;
      if (after[w]! < after[cold]!) cold = w;
    }
    if (after[hot]! <= mean * (1 + config.tolerance)) return done(moves, 'balanced');
    if (moves.length >= config.movesMax) return done(moves, 'moves_max');
    // The partition on the hottest worker whose move leaves the pair's larger load smallest.
    let best = -1;
    let bestPeak = after[hot]! - minGain;
    let bestCost = 0;
    for (const [key, w] of where) {
      if (w !== hot || pinned.has(key) || moved.has(key)) continue;
      const c = cost.get(key)!;
      if (c <= 0) continue;
      const peak = Math.max(after[hot]! - c, after[cold]! + c);
      // Ties go to the smaller key, so that the same input always gives the same plan.
      if (peak < bestPeak || (peak === bestPeak && best !== -1 && key < best)) {
        best = key;
        bestPeak = peak;
        bestCost = c;
      }
    }
    if (best === -1) return done(moves, 'no_gain');
    assert(after[cold]! + bestCost < after[hot]!, 'a move lowers the hottest worker below where it was');
    after[hot]! -= bestCost;
    after[cold]! += bestCost;
    where.set(best, cold);
    moved.add(best);
    moves.push({ key: best, from: hot, to: cold, cost: bestCost });
  }
}
