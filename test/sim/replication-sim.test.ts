// The replication simulation in CI: every scenario over a block of seeds (300 by default, which keeps the whole
// suite within its 10 minutes; a long run sets REPLICATION_SIM_SEEDS, and REPLICATION_SIM_SEED_START shifts the
// block), with the figures of the negative
// controls reported, and each planted bug caught within a bounded number of seeds. A failing seed fails its
// test with the report from runScenario: scenario, seed, violation, trace tail and the replay command.
// The seeds run in blocks on worker threads, one per core up to two (the CI machine's), so that the file
// takes half the time; the workers are terminated when the file ends, whatever happened.

import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { after, describe, test } from 'node:test';
import type { Worker } from 'node:worker_threads';
import { spawnThread } from '../../src/runtime/threads.js';
import type { ReplicationSimOptions } from './replication-harness.js';
import {
  addTotals,
  emptyTotals,
  findScenario,
  runScenario,
  type ScenarioTotals,
  scenarios,
} from './replication-scenarios.js';
import type { BlockResult, SeedBlock } from './replication-sim-worker.js';

const seedsPerScenario = Number(process.env.REPLICATION_SIM_SEEDS ?? 300);
const seedStart = Number(process.env.REPLICATION_SIM_SEED_START ?? 1);
const seedsPerBlock = 50;
const workerCount = Math.max(1, Math.min(2, availableParallelism()));

type ScenarioResult = { readonly totals: ScenarioTotals } | { readonly failure: string };

/** Hands blocks of seeds to the workers as they finish the previous one, and sums them up per scenario. */
class SeedPool {
  private readonly queue: SeedBlock[] = [];
  private readonly blocks = new Map<number, SeedBlock>();
  private readonly workers: Worker[] = [];
  private readonly outcomes = new Map<
    string,
    { left: number; totals: ScenarioTotals; failure: string | null; done: (r: ScenarioResult) => void }
  >();
  private readonly results = new Map<string, Promise<ScenarioResult>>();

  constructor(names: readonly string[], fromSeed: number, seeds: number, workers: number) {
    let id = 0;
    for (const scenario of names) {
      let left = 0;
      for (let s = fromSeed; s < fromSeed + seeds; s += seedsPerBlock) {
        const block: SeedBlock = {
          id: id++,
          scenario,
          fromSeed: s,
          toSeed: Math.min(s + seedsPerBlock, fromSeed + seeds),
        };
        this.queue.push(block);
        this.blocks.set(block.id, block);
        left++;
      }
      this.results.set(
        scenario,
        new Promise((done) =>
          this.outcomes.set(scenario, { left, totals: emptyTotals(), failure: null, done }),
        ),
      );
    }
    for (let i = 0; i < workers; i++) {
      const worker = spawnThread('test/sim/replication-sim-worker', null);
      worker.on('message', (r: BlockResult) => {
        this.settle(r);
        this.feed(worker);
      });
      worker.on('error', (err) => {
        for (const o of this.outcomes.values())
          if (o.left > 0) o.done({ failure: `worker failed: ${err.message}` });
      });
      this.workers.push(worker);
      this.feed(worker);
    }
  }

  result(scenario: string): Promise<ScenarioResult> {
    return this.results.get(scenario)!;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private feed(worker: Worker): void {
    for (;;) {
      const block = this.queue.shift();
      if (block === undefined) return;
      const o = this.outcomes.get(block.scenario)!;
      if (o.failure === null) {
        worker.postMessage(block);
        return;
      }
      // The scenario already failed: its other blocks are not worth running.
      this.settleBlock(o);
    }
  }

  private settle(r: BlockResult): void {
    const block = this.blocks.get(r.id)!;
    const o = this.outcomes.get(block.scenario)!;
    if ('failure' in r) o.failure ??= r.failure;
    else addTotals(o.totals, r.totals);
    this.settleBlock(o);
  }

  private settleBlock(o: {
    left: number;
    totals: ScenarioTotals;
    failure: string | null;
    done: (r: ScenarioResult) => void;
  }): void {
    o.left--;
    if (o.left === 0) o.done(o.failure === null ? { totals: o.totals } : { failure: o.failure });
  }
}

describe('replication simulation', () => {
  const pool = new SeedPool(
    scenarios.map((s) => s.name),
    seedStart,
    seedsPerScenario,
    workerCount,
  );
  after(() => pool.close());

  for (const scenario of scenarios) {
    test(`${scenario.name}: ${scenario.claim} (${seedsPerScenario} seeds)`, async (t) => {
      const r = await pool.result(scenario.name);
      if ('failure' in r) assert.fail(r.failure);
      const s = r.totals;
      assert.equal(s.seeds, seedsPerScenario);
      t.diagnostic(
        `acknowledged: ${s.ackedAll} acks=all, ${s.acked1} acks=1; unclean elections ${s.uncleanElections}, ` +
          `acks=all records lost after them ${s.uncleanLosses}; acks=1 records lost ${s.acks1Losses} (in ${s.acks1LossSeeds} seeds)`,
      );
      assert.ok(s.ackedAll > 0, 'the scenario acknowledged acks=all writes');
      if (scenario.name === 'unclean_election') {
        assert.ok(s.uncleanElections > 0, 'the scenario reaches unclean elections');
        assert.ok(s.uncleanLosses > 0, 'and the checker sees (and counts) what they lose');
      }
      if (scenario.name === 'acks1_control') {
        // The negative control: acks=1 gives no such guarantee, and the checker must be able to see the loss.
        assert.ok(s.acks1Losses > 0, 'acks=1 records acknowledged by a killed leader can be lost');
      }
    });
  }
});

interface PlantedCase {
  readonly options: Partial<ReplicationSimOptions>;
  readonly scenario: string;
  /** What the violation says: the invariant that catches this bug. */
  readonly caughtBy: RegExp;
}

const planted: readonly PlantedCase[] = [
  {
    options: { replicaBug: 'truncate_to_local_hw' },
    scenario: 'leader_kills',
    caughtBy: /ISR member \w+ lost acknowledged/,
  },
  {
    options: { replicaBug: 'count_before_fsync' },
    scenario: 'leader_kills',
    caughtBy: /acknowledges \d+@\d+ (durable on \d replicas|which ISR member \w+ does not hold durably)/,
  },
  {
    options: { replicaBug: 'hw_below_min_isr' },
    scenario: 'five_brokers',
    caughtBy: /below min\.insync\.replicas/,
  },
  {
    // The state machine refuses a clean election outside the ISR, so the bug cannot lose data here; what it
    // shows is a controller deciding against its own metadata, which invariant 7 catches.
    options: { controllerBug: 'elect_outside_isr' },
    scenario: 'random_faults',
    caughtBy: /invalid against its own metadata: .* is not in the ISR/,
  },
];

/** Each planted bug must be caught within this many seeds (they are caught in the first few). */
const plantedSeedsMax = 40;

describe('planted bugs are caught', () => {
  for (const c of planted) {
    const bug = c.options.replicaBug ?? c.options.controllerBug;
    test(`${bug} is caught in ${c.scenario} within ${plantedSeedsMax} seeds`, (t) => {
      const scenario = findScenario(c.scenario);
      for (let seed = 1; seed <= plantedSeedsMax; seed++) {
        try {
          runScenario(scenario, seed, c.options);
        } catch (err) {
          assert.ok(err instanceof Error);
          assert.match(err.message, c.caughtBy);
          t.diagnostic(`caught at seed ${seed}: ${err.message.split('\n')[0]}`);
          return;
        }
      }
      assert.fail(`${bug} went unnoticed for ${plantedSeedsMax} seeds of ${c.scenario}`);
    });
  }
});
