// Throughput of the Raft simulation: for each scenario, seeds per second, simulation steps (message
// deliveries plus node ticks) per second, messages per second and simulated time per wall second. Prints a
// table and writes JSON to bench/results/raft-sim-<iso>.json.
// Run: node --import tsx bench/raft-sim.ts [--seeds 200]
// Not a test: the numbers depend on the machine and its load.

import { mkdirSync, writeFileSync } from 'node:fs';
import { runScenario, scenarios } from '../test/sim/raft-scenarios.js';

const seedsFlag = process.argv.indexOf('--seeds');
const seeds = seedsFlag >= 0 ? Number(process.argv[seedsFlag + 1]) : 200;

interface Row {
  scenario: string;
  seeds: number;
  wallMs: number;
  seedsPerS: number;
  stepsPerS: number;
  messagesPerS: number;
  simulatedSPerWallS: number;
  meanStepsPerSeed: number;
}

const rows: Row[] = [];
for (const scenario of scenarios) {
  // One warm-up seed outside the measurement so JIT compilation does not count.
  runScenario(scenario, 1_000_000);
  let steps = 0;
  let messages = 0;
  let simulatedMs = 0;
  const t0 = performance.now();
  for (let seed = 1; seed <= seeds; seed++) {
    const r = runScenario(scenario, seed);
    steps += r.steps;
    messages += r.messages;
    simulatedMs += r.simulatedMs;
  }
  const wallMs = performance.now() - t0;
  rows.push({
    scenario: scenario.name,
    seeds,
    wallMs: Math.round(wallMs),
    seedsPerS: Math.round((seeds / wallMs) * 1000),
    stepsPerS: Math.round((steps / wallMs) * 1000),
    messagesPerS: Math.round((messages / wallMs) * 1000),
    simulatedSPerWallS: Math.round(simulatedMs / wallMs),
    meanStepsPerSeed: Math.round(steps / seeds),
  });
}

const header = ['scenario', 'seeds/s', 'steps/s', 'msgs/s', 'sim s/wall s', 'steps/seed', 'wall ms'];
console.log([header[0]!.padEnd(30), ...header.slice(1).map((h) => h.padStart(12))].join(' '));
for (const r of rows) {
  const cells = [
    r.seedsPerS,
    r.stepsPerS,
    r.messagesPerS,
    r.simulatedSPerWallS,
    r.meanStepsPerSeed,
    r.wallMs,
  ];
  console.log([r.scenario.padEnd(30), ...cells.map((c) => String(c).padStart(12))].join(' '));
}
const totalSteps = rows.reduce((a, r) => a + r.meanStepsPerSeed * r.seeds, 0);
const totalMs = rows.reduce((a, r) => a + r.wallMs, 0);
console.log(
  `all scenarios: ${Math.round((totalSteps / totalMs) * 1000)} steps/s over ${rows.length * seeds} seeds`,
);

const iso = new Date().toISOString().replace(/[:.]/g, '-');
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
const url = new URL(`./results/raft-sim-${iso}.json`, import.meta.url);
writeFileSync(url, `${JSON.stringify({ node: process.version, seedsPerScenario: seeds, rows }, null, 2)}\n`);
console.log(`wrote ${url.pathname}`);
