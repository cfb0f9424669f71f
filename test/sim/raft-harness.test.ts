// The Raft simulation harness itself: runs replay exactly from their seed, and a failure reports the
// scenario, the seed, a trace tail and the replay command.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SimFailure } from './raft-harness.js';
import { findScenario, runScenario, type Scenario, scenarioNames } from './raft-scenarios.js';

test('the same seed replays the same run, step for step', () => {
  for (const name of scenarioNames) {
    const scenario = findScenario(name);
    const first = runScenario(scenario, 77);
    const second = runScenario(scenario, 77);
    assert.deepEqual(second, first, `${name} is not deterministic`);
  }
});

test('different seeds explore different runs', () => {
  const scenario = findScenario('unreliable_churn');
  const runs = new Set<string>();
  for (let seed = 1; seed <= 5; seed++) runs.add(JSON.stringify(runScenario(scenario, seed)));
  assert.ok(runs.size > 1, 'five seeds produced identical runs');
});

test('a failing seed reports the scenario, the seed, a trace tail and how to replay it', () => {
  const broken: Scenario = {
    name: 'deliberately_broken',
    claim: 'fails after electing a leader',
    options: { voters: 3 },
    run(sim) {
      sim.waitForLeader(2_000);
      sim.fail('stop here');
    },
  };
  assert.throws(
    () => runScenario(broken, 4242),
    (err: unknown) => {
      assert.ok(err instanceof SimFailure);
      assert.match(err.message, /scenario deliberately_broken, seed 4242/);
      assert.match(err.message, /stop here/);
      assert.match(err.message, /leader of term/);
      assert.match(err.message, /tools\/raft-sim\.ts --scenario deliberately_broken --seed 4242 --trace/);
      return true;
    },
  );
});

test('a liveness deadline that passes is reported as a failure', () => {
  const stuck: Scenario = {
    name: 'no_majority',
    claim: 'cannot elect with every node cut off',
    options: { voters: 3 },
    run(sim) {
      for (const id of sim.ids) sim.isolate(id);
      sim.waitForLeader(1_000);
    },
  };
  assert.throws(() => runScenario(stuck, 1), /liveness: a stable leader did not happen within 1000 ms/);
});
