// Runner for long replication simulation searches and single-seed replays.
//   node --import tsx tools/replication-sim.ts --seeds 10000 [--scenario name[,name]] [--start N] [--bug name]
//   node --import tsx tools/replication-sim.ts --scenario name --seed N [--trace] [--bug name]
// Seeds are spread round-robin over the chosen scenarios. Every failing seed is printed with its report
// (seed, violation, trace tail, replay command); the search goes on, and a summary with the figures per
// scenario ends the run (exit status 1 if any seed failed). `--bug` plants one of the deliberate bugs
// (truncate_to_local_hw, count_before_fsync, hw_below_min_isr, elect_outside_isr).
// Runs on the main thread of its own process.

import type { PlantedBug } from '../src/core/replication/partition-replica.js';
import type { ReplicationSimOptions } from '../test/sim/replication-harness.js';
import {
  addRun,
  emptyTotals,
  findScenario,
  runScenario,
  type Scenario,
  type ScenarioTotals,
  scenarios,
} from '../test/sim/replication-scenarios.js';

interface Args {
  seeds: number;
  start: number;
  scenarios: readonly Scenario[];
  seed: number | undefined;
  trace: boolean;
  bug: string | undefined;
  stopAfterFailures: number;
}

const replicaBugs: readonly PlantedBug[] = ['truncate_to_local_hw', 'count_before_fsync', 'hw_below_min_isr'];

function parseArgs(argv: readonly string[]): Args {
  const args: Args = {
    seeds: 1000,
    start: 1,
    scenarios,
    seed: undefined,
    trace: false,
    bug: undefined,
    stopAfterFailures: 20,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1] ?? '';
    const number = (): number => {
      const n = Number(value);
      if (!Number.isSafeInteger(n) || n < 0)
        throw new Error(`${flag} needs a non-negative integer, got '${value}'`);
      i++;
      return n;
    };
    switch (flag) {
      case '--seeds':
        args.seeds = number();
        break;
      case '--start':
        args.start = number();
        break;
      case '--seed':
        args.seed = number();
        break;
      case '--max-failures':
        args.stopAfterFailures = number();
        break;
      case '--scenario':
        args.scenarios = value.split(',').map(findScenario);
        i++;
        break;
      case '--bug':
        args.bug = value;
        i++;
        break;
      case '--trace':
        args.trace = true;
        break;
      default:
        throw new Error(`unknown argument ${flag}`);
    }
  }
  return args;
}

function overridesFor(args: Args): Partial<ReplicationSimOptions> {
  const out: Partial<ReplicationSimOptions> = { trace: args.trace };
  if (args.bug === undefined) return out;
  if (args.bug === 'elect_outside_isr') out.controllerBug = 'elect_outside_isr';
  else if ((replicaBugs as readonly string[]).includes(args.bug)) out.replicaBug = args.bug as PlantedBug;
  else throw new Error(`unknown bug ${args.bug}`);
  return out;
}

function replay(scenario: Scenario, seed: number, args: Args): number {
  const t0 = performance.now();
  try {
    const s = runScenario(scenario, seed, overridesFor(args));
    const ms = performance.now() - t0;
    console.log(
      `${scenario.name} seed ${seed}: ok, ${s.steps} steps in ${ms.toFixed(1)} ms (${Math.round(s.steps / (ms / 1000))} steps/s), ` +
        `${s.simulatedMs} simulated ms; produced ${s.produced}, acked acks=all ${s.ackedAll}, acks=1 ${s.acked1}, ` +
        `definite ${s.definite}, indefinite ${s.indefinite}; elections ${s.elections} (unclean ${s.uncleanElections}), ` +
        `ISR changes ${s.isrChanges}; lost after unclean ${s.uncleanLosses}, acks=1 lost ${s.acks1Losses}`,
    );
    return 0;
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    return 1;
  }
}

/** A scenario's totals, with its failures and the time its seeds took. */
interface Totals extends ScenarioTotals {
  failures: number;
  ms: number;
}

function search(args: Args): number {
  const t0 = performance.now();
  const chosen = args.scenarios;
  const per = new Map<string, Totals>();
  const failing: string[] = [];
  let lastReport = t0;
  const overrides = overridesFor(args);
  for (let k = 0; k < args.seeds; k++) {
    const scenario = chosen[k % chosen.length]!;
    const seed = args.start + Math.floor(k / chosen.length);
    const totals = per.get(scenario.name) ?? { ...emptyTotals(), failures: 0, ms: 0 };
    per.set(scenario.name, totals);
    const s0 = performance.now();
    try {
      addRun(totals, runScenario(scenario, seed, overrides));
    } catch (err) {
      totals.seeds++;
      totals.failures++;
      failing.push(`${scenario.name}:${seed}`);
      console.error(err instanceof Error ? err.message : err);
      console.error('');
      if (failing.length >= args.stopAfterFailures) {
        console.error(`stopping after ${failing.length} failures`);
        break;
      }
    }
    totals.ms += performance.now() - s0;
    const now = performance.now();
    if (now - lastReport > 10_000) {
      lastReport = now;
      console.log(
        `${k + 1}/${args.seeds} seeds, ${failing.length} failing, ${((now - t0) / 1000).toFixed(0)} s`,
      );
    }
  }
  const totalS = (performance.now() - t0) / 1000;
  console.log(
    `${'scenario'.padEnd(20)} ${'seeds'.padStart(7)} ${'fail'.padStart(5)} ${'ms/seed'.padStart(8)} ${'steps/s'.padStart(9)} ` +
      `${'acked all'.padStart(10)} ${'acked 1'.padStart(9)} ${'unclean'.padStart(8)} ${'lost(uncl)'.padStart(10)} ${'lost(acks1)'.padStart(11)}`,
  );
  let seeds = 0;
  let failures = 0;
  let steps = 0;
  for (const [name, t] of per) {
    seeds += t.seeds;
    failures += t.failures;
    steps += t.steps;
    console.log(
      `${name.padEnd(20)} ${String(t.seeds).padStart(7)} ${String(t.failures).padStart(5)} ${(t.ms / t.seeds).toFixed(1).padStart(8)} ` +
        `${String(Math.round(t.steps / (t.ms / 1000))).padStart(9)} ${String(t.ackedAll).padStart(10)} ${String(t.acked1).padStart(9)} ` +
        `${String(t.uncleanElections).padStart(8)} ${String(t.uncleanLosses).padStart(10)} ${`${t.acks1Losses} (${t.acks1LossSeeds} seeds)`.padStart(11)}`,
    );
  }
  console.log(
    `${failures === 0 ? 'ok' : 'FAILED'}: ${seeds} seeds across ${per.size} scenarios (start ${args.start}) in ${totalS.toFixed(1)} s, ` +
      `${steps} steps, ${failures} failing${failing.length > 0 ? `: ${failing.join(' ')}` : ''}`,
  );
  return failures === 0 ? 0 : 1;
}

const args = parseArgs(process.argv.slice(2));
if (args.seed !== undefined) {
  if (args.scenarios.length !== 1) throw new Error('--seed needs exactly one --scenario');
  process.exitCode = replay(args.scenarios[0]!, args.seed, args);
} else {
  process.exitCode = search(args);
}
