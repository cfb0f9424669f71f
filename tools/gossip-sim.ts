// Runner for long gossip simulation searches and single-seed replays: each seed is one mixed run (10% loss,
// kills, joins and 2 s pauses) checked for false positives, detection within 5 s and join propagation.
//   node --import tsx tools/gossip-sim.ts --seeds 50 [--members 500] [--start 1]
//   node --import tsx tools/gossip-sim.ts --seed N [--members 500]
// On the first failing seed it prints what failed and the replay command, and exits with status 1.
// Runs on the main thread of its own process.
import { runScenario } from '../test/sim/gossip-scenarios.js';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const members = flag('members', 500);
const single = process.argv.includes('--seed');
const start = single ? flag('seed', 1) : flag('start', 1);
const count = single ? 1 : flag('seeds', 20);
const detectionBudgetMs = 5000;

let worstDetectionMs = 0;
const started = performance.now();
for (let seed = start; seed < start + count; seed++) {
  const r = runScenario({
    members,
    seed,
    lossRate: 0.1,
    kills: 4,
    joins: 2,
    pauses: 4,
    pauseMs: 2000,
    spacingMs: 2000,
    settleMs: 40_000,
  });
  const problems: string[] = [];
  for (const e of r.falsePositives.slice(0, 5)) {
    problems.push(`false positive: ${e.observer} declared ${e.subject} failed at ${e.atMs.toFixed(0)} ms`);
  }
  for (const d of r.detectionMs)
    if (d > detectionBudgetMs) problems.push(`detection took ${d.toFixed(0)} ms`);
  for (const j of r.joinMs) if (!Number.isFinite(j)) problems.push('a join never reached every member');
  if (r.pausedSuspected !== 4) problems.push(`only ${r.pausedSuspected} of 4 paused members were suspected`);
  worstDetectionMs = Math.max(worstDetectionMs, ...r.detectionMs);
  if (problems.length > 0) {
    console.log(`seed ${seed} failed (${members} members):\n  ${problems.join('\n  ')}`);
    console.log(`replay: node --import tsx tools/gossip-sim.ts --seed ${seed} --members ${members}`);
    process.exit(1);
  }
  if (single) console.log(JSON.stringify({ ...r, falsePositives: r.falsePositives.length }, null, 2));
}
const seconds = ((performance.now() - started) / 1000).toFixed(1);
console.log(
  `${count} seeds from ${start} passed at ${members} members; worst detection ${worstDetectionMs.toFixed(0)} ms; ${seconds} s`,
);
