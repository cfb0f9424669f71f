// A worker thread of test/sim/replication-sim.test.ts: runs the blocks of seeds the test hands it, one at a
// time, and posts back each block's totals, or the report of its first failing seed. Started with
// spawnThread (through workers/bootstrap.mjs under tsx); owns nothing but the simulations it runs.

import { parentPort } from 'node:worker_threads';
import {
  addRun,
  emptyTotals,
  findScenario,
  runScenario,
  type ScenarioTotals,
} from './replication-scenarios.js';

export interface SeedBlock {
  readonly id: number;
  readonly scenario: string;
  readonly fromSeed: number;
  /** Exclusive. */
  readonly toSeed: number;
}

export type BlockResult =
  | { readonly id: number; readonly totals: ScenarioTotals }
  | { readonly id: number; readonly failure: string };

const port = parentPort;
if (port === null) throw new Error('replication-sim-worker runs in a worker thread');
port.on('message', (block: SeedBlock) => {
  const scenario = findScenario(block.scenario);
  const totals = emptyTotals();
  let result: BlockResult;
  try {
    for (let seed = block.fromSeed; seed < block.toSeed; seed++) addRun(totals, runScenario(scenario, seed));
    result = { id: block.id, totals };
  } catch (err) {
    result = { id: block.id, failure: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(result);
});
