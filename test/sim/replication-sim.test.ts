// The replication simulation in CI: every scenario over a block of seeds (500 by default;
// REPLICATION_SIM_SEEDS and REPLICATION_SIM_SEED_START widen or shift it), with the figures of the negative
// controls reported, and each planted bug caught within a bounded number of seeds. A failing seed fails its
// test with the report from runScenario: scenario, seed, violation, trace tail and the replay command.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ReplicationSimOptions } from './replication-harness.js';
import { findScenario, runScenario, scenarios } from './replication-scenarios.js';

const seedsPerScenario = Number(process.env.REPLICATION_SIM_SEEDS ?? 500);
const seedStart = Number(process.env.REPLICATION_SIM_SEED_START ?? 1);

describe('replication simulation', () => {
  for (const scenario of scenarios) {
    test(`${scenario.name}: ${scenario.claim} (${seedsPerScenario} seeds)`, (t) => {
      let ackedAll = 0;
      let acked1 = 0;
      let uncleanElections = 0;
      let uncleanLosses = 0;
      let acks1Losses = 0;
      let acks1LossSeeds = 0;
      for (let seed = seedStart; seed < seedStart + seedsPerScenario; seed++) {
        const s = runScenario(scenario, seed);
        ackedAll += s.ackedAll;
        acked1 += s.acked1;
        uncleanElections += s.uncleanElections;
        uncleanLosses += s.uncleanLosses;
        acks1Losses += s.acks1Losses;
        if (s.acks1Losses > 0) acks1LossSeeds++;
      }
      t.diagnostic(
        `acknowledged: ${ackedAll} acks=all, ${acked1} acks=1; unclean elections ${uncleanElections}, ` +
          `acks=all records lost after them ${uncleanLosses}; acks=1 records lost ${acks1Losses} (in ${acks1LossSeeds} seeds)`,
      );
      assert.ok(ackedAll > 0, 'the scenario acknowledged acks=all writes');
      if (scenario.name === 'unclean_election') {
        assert.ok(uncleanElections > 0, 'the scenario reaches unclean elections');
        assert.ok(uncleanLosses > 0, 'and the checker sees (and counts) what they lose');
      }
      if (scenario.name === 'acks1_control') {
        // The negative control: acks=1 gives no such guarantee, and the checker must be able to see the loss.
        assert.ok(acks1Losses > 0, 'acks=1 records acknowledged by a killed leader can be lost');
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
