// Registers one node:test test per Raft simulation scenario, each running a block of seeds (500 by default;
// RAFT_SIM_SEEDS and RAFT_SIM_SEED_START widen or shift the block). A failing seed fails its test with the
// report from runScenario: scenario, seed, trace tail and the replay command.
// Used by test/sim/raft-*.test.ts only.

import { test } from 'node:test';
import { findScenario, runScenario } from './raft-scenarios.js';

export const seedsPerScenario = Number(process.env.RAFT_SIM_SEEDS ?? 500);
const seedStart = Number(process.env.RAFT_SIM_SEED_START ?? 1);

export function testScenario(name: string): void {
  const scenario = findScenario(name);
  test(`${name}: ${scenario.claim} (${seedsPerScenario} seeds)`, () => {
    for (let seed = seedStart; seed < seedStart + seedsPerScenario; seed++) runScenario(scenario, seed);
  });
}
