// Runner for long Raft simulation searches and single-seed replays.
//   node --import tsx tools/raft-sim.ts --seeds 10000 [--scenario name] [--start N]
//   node --import tsx tools/raft-sim.ts --scenario name --seed N [--trace]
// Seeds are spread round-robin over the chosen scenarios. On the first failure it prints the report (seed,
// trace tail, replay command) and exits with status 1. Runs on the main thread of its own process.

import { findScenario, runScenario, type Scenario, scenarios } from '../test/sim/raft-scenarios.js';

interface Args {
  seeds: number;
  start: number;
  scenario: string | undefined;
  seed: number | undefined;
  trace: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { seeds: 1000, start: 1, scenario: undefined, seed: undefined, trace: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    switch (flag) {
      case '--seeds':
        args.seeds = Number(value);
        i++;
        break;
      case '--start':
        args.start = Number(value);
        i++;
        break;
      case '--scenario':
        args.scenario = value;
        i++;
        break;
      case '--seed':
        args.seed = Number(value);
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

function replay(scenario: Scenario, seed: number, trace: boolean): number {
  const t0 = performance.now();
  try {
    const r = runScenario(scenario, seed, trace);
    const ms = (performance.now() - t0).toFixed(1);
    console.log(
      `${scenario.name} seed ${seed}: ok, ${r.steps} steps, ${r.simulatedMs} simulated ms, ${ms} ms`,
    );
    return 0;
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    return 1;
  }
}

function search(chosen: readonly Scenario[], seeds: number, start: number): number {
  const t0 = performance.now();
  const perScenario = new Map<string, { seeds: number; ms: number; steps: number }>();
  let lastReport = t0;
  for (let k = 0; k < seeds; k++) {
    const scenario = chosen[k % chosen.length]!;
    const seed = start + Math.floor(k / chosen.length);
    const s0 = performance.now();
    try {
      const r = runScenario(scenario, seed);
      const stats = perScenario.get(scenario.name) ?? { seeds: 0, ms: 0, steps: 0 };
      stats.seeds++;
      stats.steps += r.steps;
      stats.ms += performance.now() - s0;
      perScenario.set(scenario.name, stats);
    } catch (err) {
      console.error(err instanceof Error ? err.message : err);
      console.error(`failed after ${k} seeds`);
      return 1;
    }
    const now = performance.now();
    if (now - lastReport > 5_000) {
      lastReport = now;
      console.log(`${k + 1}/${seeds} seeds, ${((now - t0) / 1000).toFixed(1)} s`);
    }
  }
  const totalS = (performance.now() - t0) / 1000;
  for (const [name, s] of perScenario) {
    console.log(
      `${name.padEnd(30)} ${String(s.seeds).padStart(6)} seeds ${(s.ms / s.seeds).toFixed(2)} ms/seed`,
    );
  }
  console.log(`ok: ${seeds} seeds across ${chosen.length} scenarios in ${totalS.toFixed(1)} s`);
  return 0;
}

const args = parseArgs(process.argv.slice(2));
if (args.seed !== undefined) {
  if (args.scenario === undefined) throw new Error('--seed needs --scenario');
  process.exitCode = replay(findScenario(args.scenario), args.seed, args.trace);
} else {
  const chosen = args.scenario === undefined ? scenarios : [findScenario(args.scenario)];
  process.exitCode = search(chosen, args.seeds, args.start);
}
