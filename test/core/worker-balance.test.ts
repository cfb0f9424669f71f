// The plan that evens out load over a node's partition workers (src/core/worker-balance.ts): examples, then
// properties over random placements and loads: the largest worker load never grows, repeated rounds on a steady
// load reach a plan with no moves, that fixed point does not flap, pinned partitions and the move bound hold.
// Also the ownership override and what a node learns of another's (src/core/ownership.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { LearnedPlacements, ownerOf, partitionKey, workerOf } from '../../src/core/ownership.js';
import {
  type BalanceConfig,
  DEFAULT_BALANCE_CONFIG,
  type PartitionLoad,
  planWorkerMoves,
  workerLoads,
} from '../../src/core/worker-balance.js';

const config: BalanceConfig = { ...DEFAULT_BALANCE_CONFIG, minTotalCost: 0, requestCostBytes: 0 };

function load(key: number, worker: number, bytesPerS: number, requestsPerS = 0): PartitionLoad {
  return { key, worker, bytesPerS, requestsPerS };
}

function apply(
  loads: readonly PartitionLoad[],
  moves: readonly { key: number; to: number }[],
): PartitionLoad[] {
  const to = new Map(moves.map((m) => [m.key, m.to]));
  return loads.map((l) => ({ ...l, worker: to.get(l.key) ?? l.worker }));
}

test('four hot partitions on one of two workers: two move, and the workers end even', () => {
  const loads = [load(1, 0, 100), load(2, 0, 100), load(3, 0, 100), load(4, 0, 100), load(5, 1, 1)];
  const plan = planWorkerMoves(loads, 2, config);
  assert.equal(plan.moves.length, 2);
  assert.deepEqual(
    plan.moves.map((m) => [m.from, m.to]),
    [
      [0, 1],
      [0, 1],
    ],
  );
  assert.deepEqual(plan.loadsAfter, [200, 201]);
  assert.equal(plan.reason, 'balanced');
  // The same input gives the same plan (ties go to the smaller key).
  assert.deepEqual(planWorkerMoves(loads, 2, config).moves, plan.moves);
  assert.deepEqual(
    plan.moves.map((m) => m.key),
    [1, 2],
  );
});

test('within the tolerance nothing moves; an idle node and a single worker never move', () => {
  assert.equal(planWorkerMoves([load(1, 0, 110), load(2, 1, 90)], 2, config).reason, 'balanced');
  assert.equal(planWorkerMoves([load(1, 0, 110), load(2, 1, 90)], 2, config).moves.length, 0);
  const idle = planWorkerMoves([load(1, 0, 1000), load(2, 0, 1000)], 2, {
    ...config,
    minTotalCost: 1_000_000,
  });
  assert.equal(idle.reason, 'idle');
  assert.equal(idle.moves.length, 0);
  assert.equal(planWorkerMoves([load(1, 0, 1000)], 1, config).reason, 'single_worker');
});

test('one partition carrying everything stays: moving it would only change which worker is hot', () => {
  const plan = planWorkerMoves([load(1, 0, 1000), load(2, 0, 1)], 2, config);
  assert.equal(plan.reason, 'no_gain');
  assert.equal(plan.moves.length, 0);
});

test('requests count at requestCostBytes each: many small produces outweigh fewer large ones', () => {
  const weighted = { ...config, requestCostBytes: 1000 };
  const loads = [load(1, 0, 1000, 100), load(2, 0, 1000, 100), load(3, 1, 50_000, 1)];
  assert.deepEqual(workerLoads(loads, 2, weighted), [202_000, 51_000]);
  const plan = planWorkerMoves(loads, 2, weighted);
  assert.equal(plan.moves.length, 1);
  assert.equal(plan.moves[0]!.to, 1);
});

test('pinned partitions stay, and at most movesMax move per round', () => {
  const loads = [load(1, 0, 100), load(2, 0, 100), load(3, 0, 100), load(4, 0, 100)];
  const plan = planWorkerMoves(loads, 4, { ...config, movesMax: 2 }, new Set([1, 2]));
  assert.deepEqual(
    plan.moves.map((m) => m.key),
    [3, 4],
  );
  const bounded = planWorkerMoves(loads, 4, { ...config, movesMax: 1 });
  assert.equal(bounded.moves.length, 1);
  assert.equal(bounded.reason, 'moves_max');
});

const arbitraryLoads = fc
  .record({
    workers: fc.integer({ min: 1, max: 6 }),
    parts: fc.array(
      fc.record({
        worker: fc.nat(),
        bytesPerS: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 10_000_000 })),
        requestsPerS: fc.integer({ min: 0, max: 5_000 }),
      }),
      { maxLength: 40 },
    ),
    tolerance: fc.constantFrom(0, 0.05, 0.1, 0.25, 0.5),
    movesMax: fc.integer({ min: 1, max: 8 }),
  })
  .map(({ workers, parts, tolerance, movesMax }) => ({
    workers,
    loads: parts.map((p, i) => load(1000 + i, p.worker % workers, p.bytesPerS, p.requestsPerS)),
    config: { ...DEFAULT_BALANCE_CONFIG, tolerance, movesMax, minTotalCost: 0 },
  }));

test('property: a plan never raises the largest worker load, moves only from the hottest, at most movesMax', () => {
  fc.assert(
    fc.property(arbitraryLoads, ({ workers, loads, config }) => {
      const plan = planWorkerMoves(loads, workers, config);
      assert.ok(plan.moves.length <= config.movesMax);
      assert.ok(Math.max(...plan.loadsAfter) <= Math.max(...plan.loadsBefore));
      // The loads after are what applying the moves gives.
      const after = workerLoads(apply(loads, plan.moves), workers, config);
      for (const [i, w] of after.entries()) {
        assert.ok(Math.abs(w - plan.loadsAfter[i]!) <= 1e-6 * Math.max(1, w));
      }
      // A partition moves at most once per round, never to where it is.
      assert.equal(new Set(plan.moves.map((m) => m.key)).size, plan.moves.length);
      for (const m of plan.moves) assert.notEqual(m.from, m.to);
    }),
    { numRuns: 300 },
  );
});

test('property: rounds on a steady load reach a plan with no moves, and stay there (no flapping)', () => {
  fc.assert(
    fc.property(arbitraryLoads, ({ workers, loads, config }) => {
      let current = loads;
      let peak = Math.max(...workerLoads(current, workers, config));
      let rounds = 0;
      // The sum of squared worker loads falls with every move, so this ends; 200 rounds is far beyond need.
      for (;;) {
        const plan = planWorkerMoves(current, workers, config);
        if (plan.moves.length === 0) break;
        rounds++;
        assert.ok(rounds <= 200, 'converges');
        current = apply(current, plan.moves);
        const next = Math.max(...workerLoads(current, workers, config));
        assert.ok(next <= peak, 'the largest worker load never grows between rounds');
        peak = next;
      }
      // The fixed point holds on the same input, again and again.
      for (let i = 0; i < 3; i++) assert.equal(planWorkerMoves(current, workers, config).moves.length, 0);
    }),
    { numRuns: 200 },
  );
});

test('property: a balanced result is within the tolerance, or no single move would lower the hottest enough', () => {
  fc.assert(
    fc.property(arbitraryLoads, ({ workers, loads, config }) => {
      const plan = planWorkerMoves(loads, workers, { ...config, movesMax: 1000 });
      const total = plan.loadsAfter.reduce((a, b) => a + b, 0);
      const mean = total / workers;
      const peak = Math.max(...plan.loadsAfter);
      if (plan.reason === 'balanced') assert.ok(peak <= mean * (1 + config.tolerance) + 1e-9);
      if (plan.reason === 'no_gain') assert.ok(peak > mean * (1 + config.tolerance));
    }),
    { numRuns: 300 },
  );
});

test('ownerOf: an override wins; one out of range (from more workers) falls back to the hash', () => {
  const overrides = new Map([
    [partitionKey(3, 1), 0],
    [partitionKey(3, 2), 7],
  ]);
  assert.equal(ownerOf(3, 1, 2, overrides), 0);
  assert.equal(workerOf(3, 1, 2), 0);
  assert.equal(ownerOf(3, 0, 2, overrides), workerOf(3, 0, 2));
  assert.equal(ownerOf(3, 2, 2, overrides), workerOf(3, 2, 2));
  assert.equal(ownerOf(3, 2, 8, overrides), 7);
});

test('LearnedPlacements: a learned move is followed until the broker restarts with other ports', () => {
  const learned = new LearnedPlacements(2);
  const b = { id: 'b', dataPorts: [10, 11] };
  assert.equal(learned.workerFor(b, 4, 0), workerOf(4, 0, 2));
  learned.learn(b, 4, 0, 1 - workerOf(4, 0, 2));
  assert.equal(learned.workerFor(b, 4, 0), 1 - workerOf(4, 0, 2));
  // The same ports in a new array are the same broker process.
  assert.equal(learned.workerFor({ id: 'b', dataPorts: [10, 11] }, 4, 0), 1 - workerOf(4, 0, 2));
  // A restart (other ports) forgets it.
  assert.equal(learned.workerFor({ id: 'b', dataPorts: [12, 13] }, 4, 0), workerOf(4, 0, 2));
  // Learning the hash owner removes the entry; the bound forgets the oldest.
  learned.learn(b, 4, 0, workerOf(4, 0, 2));
  assert.equal(learned.workerFor(b, 4, 0), workerOf(4, 0, 2));
  learned.learn(b, 5, 0, 1 - workerOf(5, 0, 2));
  learned.learn(b, 6, 0, 1 - workerOf(6, 0, 2));
  learned.learn(b, 7, 0, 1 - workerOf(7, 0, 2));
  assert.equal(learned.workerFor(b, 5, 0), workerOf(5, 0, 2));
  assert.equal(learned.workerFor(b, 7, 0), 1 - workerOf(7, 0, 2));
});
