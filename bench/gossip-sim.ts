// Gossip at 10, 100 and 500 members on the deterministic simulation: the minimum suspicion timeout at that
// size, detection time of killed members (p50, p99 of the time until every live member marks them dead),
// false positives at 0% and 10% packet loss and with 2.5 s pauses (10% loss, the paused member running its
// late timers before its backlog, as Node does), the time for a member restarted under its id to be alive
// everywhere again, join propagation, traffic per member per second, and the wall time of each simulation.
// Prints a table and writes JSON to bench/results/gossip-sim-<iso>.json. Run: node --import tsx bench/gossip-sim.ts
// Options: --profile memberlist (memberlist's LAN numbers instead of the broker's defaults), --sizes 10,100.
import { mkdirSync, writeFileSync } from 'node:fs';
import {
  GOSSIP_DEFAULTS,
  type GossipConfig,
  MEMBERLIST_LAN_PROFILE,
  suspicionTimeoutMinMs,
} from '../src/core/gossip/config.js';
import { percentile, runScenario, type ScenarioResult } from '../test/sim/gossip-scenarios.js';

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const profile = option('profile') ?? 'broker';
const config: GossipConfig = profile === 'memberlist' ? MEMBERLIST_LAN_PROFILE : GOSSIP_DEFAULTS;
const sizes = (option('sizes') ?? '10,100,500').split(',').map(Number);
// Long enough for the slowest detection the profile allows (memberlist's 1 s probe interval needs ~15 s).
const settleMs = profile === 'memberlist' ? 40_000 : 8000;
// More seeds where runs are cheap; every seed kills up to 6 members and adds 2.
const seedsFor = (members: number): number => (members <= 10 ? 8 : members <= 100 ? 4 : 2);

type Row = {
  members: number;
  seeds: number;
  suspicionMinMs: number;
  detectionP50Ms: number;
  detectionP99Ms: number;
  detectionLossP99Ms: number;
  falsePositives0: number;
  falsePositives10: number;
  falsePositivesPause: number;
  restartP99Ms: number;
  suspicionsPerMemberSec10: number;
  joinP99Ms: number;
  udpPacketsPerMemberSec: number;
  udpBytesPerMemberSec: number;
  udpPacketsPerMemberSec10: number;
  udpBytesPerMemberSec10: number;
  streamBytesPerMemberSec: number;
  simWallMs: number;
};

const rows: Row[] = [];
for (const members of sizes) {
  const clean: ScenarioResult[] = [];
  const lossy: ScenarioResult[] = [];
  const paused: ScenarioResult[] = [];
  for (let s = 0; s < seedsFor(members); s++) {
    const seed = 1000 * members + s;
    // At most a fifth of the cluster: killing most of a small cluster measures something else.
    const kills = Math.max(1, Math.min(6, Math.floor(members / 5)));
    clean.push(
      runScenario({ members, seed, lossRate: 0, kills, joins: 2, spacingMs: 1000, settleMs, config }),
    );
    lossy.push(
      runScenario({
        members,
        seed,
        lossRate: 0.1,
        kills,
        joins: 2,
        spacingMs: 1000,
        settleMs: 20_000,
        config,
      }),
    );
    // Two 2.5 s pauses and one kill-and-restart (after 7 s, at incarnation 0) at 10% loss.
    paused.push(
      runScenario({
        members,
        seed,
        lossRate: 0.1,
        kills: 0,
        joins: 0,
        pauses: 2,
        pauseMs: 2500,
        resumeOrder: 'timers_first',
        restarts: 1,
        restartAfterMs: settleMs,
        settleMs,
        config,
      }),
    );
  }
  const mean = (runs: ScenarioResult[], f: (r: ScenarioResult) => number): number =>
    runs.reduce((sum, r) => sum + f(r), 0) / runs.length;
  const detection = clean.flatMap((r) => r.detectionMs);
  rows.push({
    members,
    seeds: clean.length,
    suspicionMinMs: suspicionTimeoutMinMs(config, members),
    detectionP50Ms: percentile(detection, 50),
    detectionP99Ms: percentile(detection, 99),
    detectionLossP99Ms: percentile(
      lossy.flatMap((r) => r.detectionMs),
      99,
    ),
    falsePositives0: clean.reduce((n, r) => n + r.falsePositives.length, 0),
    falsePositives10: lossy.reduce((n, r) => n + r.falsePositives.length, 0),
    falsePositivesPause: paused.reduce((n, r) => n + r.falsePositives.length, 0),
    restartP99Ms: percentile(
      paused.flatMap((r) => r.restartMs),
      99,
    ),
    suspicionsPerMemberSec10: mean(lossy, (r) => r.suspectEvents / r.members / (r.simMs / 1000)),
    joinP99Ms: percentile(
      [...clean, ...lossy].flatMap((r) => r.joinMs),
      99,
    ),
    udpPacketsPerMemberSec: mean(clean, (r) => r.traffic.udpPacketsPerSec),
    udpBytesPerMemberSec: mean(clean, (r) => r.traffic.udpBytesPerSec),
    udpPacketsPerMemberSec10: mean(lossy, (r) => r.traffic.udpPacketsPerSec),
    udpBytesPerMemberSec10: mean(lossy, (r) => r.traffic.udpBytesPerSec),
    streamBytesPerMemberSec: mean(clean, (r) => r.traffic.streamBytesPerSec),
    simWallMs: [...clean, ...lossy, ...paused].reduce((sum, r) => sum + r.wallMs, 0),
  });
}

const columns: [string, (r: Row) => string][] = [
  ['members', (r) => String(r.members)],
  ['seeds', (r) => String(r.seeds)],
  ['min susp ms', (r) => String(r.suspicionMinMs)],
  ['detect p50 ms', (r) => r.detectionP50Ms.toFixed(0)],
  ['detect p99 ms', (r) => r.detectionP99Ms.toFixed(0)],
  ['p99 @10% ms', (r) => r.detectionLossP99Ms.toFixed(0)],
  ['FP 0%', (r) => String(r.falsePositives0)],
  ['FP 10%', (r) => String(r.falsePositives10)],
  ['FP 2.5s pause', (r) => String(r.falsePositivesPause)],
  ['restart p99 ms', (r) => r.restartP99Ms.toFixed(0)],
  ['join p99 ms', (r) => r.joinP99Ms.toFixed(0)],
  ['udp pkt/s', (r) => r.udpPacketsPerMemberSec.toFixed(1)],
  ['udp B/s', (r) => r.udpBytesPerMemberSec.toFixed(0)],
  ['pkt/s @10%', (r) => r.udpPacketsPerMemberSec10.toFixed(1)],
  ['B/s @10%', (r) => r.udpBytesPerMemberSec10.toFixed(0)],
  ['push-pull B/s', (r) => r.streamBytesPerMemberSec.toFixed(0)],
  ['wall ms', (r) => r.simWallMs.toFixed(0)],
];
const cells = [columns.map(([h]) => h), ...rows.map((r) => columns.map(([, f]) => f(r)))];
const widths = columns.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
console.log(`gossip simulation, profile ${profile}; traffic is sent per member per second`);
for (const row of cells) console.log(row.map((c, i) => c.padStart(widths[i]!)).join('  '));

const iso = new Date().toISOString().replace(/[:.]/g, '-');
const url = new URL(`./results/gossip-sim-${iso}.json`, import.meta.url);
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(url, `${JSON.stringify({ profile, config, node: process.version, rows }, null, 2)}\n`);
console.log(`wrote ${url.pathname}`);
