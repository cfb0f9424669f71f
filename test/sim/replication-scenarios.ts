// The replication simulation's scenarios. Each builds a ReplicationSim from its seed, lets the cluster
// elect a metadata leader and publish its metadata, produces while it injects its faults, then heals
// everything and checks that every partition takes acks=all writes again, that every replica catches up and
// that the final logs hold every acknowledged record (ReplicationSim.finish). The invariants are checked by
// the harness as every step happens. `runScenario` runs one seed and turns any failure into a SimFailure
// naming the scenario, the seed, a trace tail and the replay command.
// Single-threaded; used by test/sim/replication-sim.test.ts and tools/replication-sim.ts.

import { SimFailure } from './raft-harness.js';
import {
  isReplicationFailure,
  ReplicationSim,
  type ReplicationSimOptions,
  type RunStats,
  roughNetwork,
  type TopicSpec,
} from './replication-harness.js';

export interface Scenario {
  readonly name: string;
  readonly claim: string;
  readonly options: Partial<ReplicationSimOptions>;
  readonly run: (sim: ReplicationSim) => void;
}

/** Long enough for a first metadata leader and every broker's first published metadata. */
const warmUpMs = 700;
/** Longer than any message delay plus an fsync: what a broker sent or started before a cut has landed. */
const isolationGraceMs = 60;

function randomLeader(sim: ReplicationSim): string {
  const pk = sim.rng.pick(sim.partitionKeys());
  return sim.leaderOf(pk);
}

function between(sim: ReplicationSim, min: number, max: number): number {
  return min + sim.rng.int(max - min + 1);
}

/** Kills the leader of a random partition (sometimes at its next Raft persist) and restarts it later. */
function killAndRestartLeader(sim: ReplicationSim, downMinMs: number, downMaxMs: number): void {
  const leader = randomLeader(sim);
  if (leader === '' || !sim.isUp(leader)) return;
  sim.kill(leader, sim.rng.chance(0.25));
  sim.runFor(between(sim, downMinMs, downMaxMs));
  sim.start(leader);
}

const uncleanTopics: readonly TopicSpec[] = [
  { name: 't', partitions: 2, replicationFactor: 3, minInsyncReplicas: 2, uncleanLeaderElection: false },
  { name: 'u', partitions: 2, replicationFactor: 3, minInsyncReplicas: 1, uncleanLeaderElection: true },
];

export const scenarios: readonly Scenario[] = [
  {
    name: 'leader_kills',
    claim:
      'leaders killed and restarted: no acknowledged record lost, replicas agree below the high watermark',
    options: {},
    run(sim) {
      sim.runFor(warmUpMs);
      sim.startProducing();
      for (let i = 0; i < 4; i++) {
        sim.runFor(between(sim, 150, 500));
        killAndRestartLeader(sim, 100, 800);
      }
      sim.runFor(300);
      sim.finish();
    },
  },
  {
    name: 'leader_pauses',
    claim:
      'a leader paused past the failure timeout resumes with stale state and acknowledges nothing wrongly',
    options: { acksAllRate: 0.8 },
    run(sim) {
      sim.runFor(warmUpMs);
      sim.startProducing();
      for (let i = 0; i < 3; i++) {
        sim.runFor(between(sim, 150, 500));
        const leader = randomLeader(sim);
        if (leader === '' || !sim.isUp(leader)) continue;
        sim.pause(leader);
        sim.runFor(between(sim, 250, 1_000));
        sim.resume(leader);
      }
      sim.runFor(300);
      sim.finish();
    },
  },
  {
    name: 'leader_isolated',
    claim:
      'a leader cut off from the other brokers keeps taking writes that are never acknowledged as acks=all',
    options: { acksAllRate: 0.7 },
    run(sim) {
      sim.runFor(warmUpMs);
      sim.startProducing();
      for (let i = 0; i < 3; i++) {
        sim.runFor(between(sim, 150, 400));
        const leader = randomLeader(sim);
        if (leader === '') continue;
        sim.isolate(leader);
        // What was in flight when the link went (fetches, a flush) may still release earlier requests; after
        // that the cut-off leader, which keeps appending, must acknowledge no acks=all request at all.
        sim.runFor(isolationGraceMs);
        const acked = sim.ackedAllCount(leader);
        sim.runFor(between(sim, 300, 1_200));
        if (sim.ackedAllCount(leader) !== acked) {
          sim.fail(`${leader}, cut off from every other broker, acknowledged acks=all requests`);
        }
        sim.heal();
      }
      sim.runFor(300);
      sim.finish();
    },
  },
  {
    name: 'lagging_followers',
    claim: 'followers cut off from their leader or paused leave the ISR and rejoin once caught up',
    options: { acksAllRate: 0.9 },
    run(sim) {
      sim.runFor(warmUpMs);
      sim.startProducing();
      for (let i = 0; i < 4; i++) {
        sim.runFor(between(sim, 100, 400));
        const pk = sim.rng.pick(sim.partitionKeys());
        const leader = sim.leaderOf(pk);
        if (leader === '') continue;
        const followers = sim.replicasOf(pk).filter((id) => id !== leader);
        const lagging = sim.rng.chance(0.4) ? followers : [sim.rng.pick(followers)];
        const how = sim.rng.int(3);
        for (const f of lagging) {
          if (how === 0) sim.pause(f);
          else if (how === 1) sim.cutDataLink(leader, f);
          else sim.kill(f);
        }
        sim.runFor(between(sim, 200, 1_000));
        for (const f of lagging) {
          sim.resume(f);
          sim.start(f);
        }
        sim.heal();
      }
      sim.runFor(300);
      sim.finish();
    },
  },
  {
    name: 'all_killed',
    claim: 'every broker killed at once and restarted in any order loses no acknowledged record',
    options: {},
    run(sim) {
      sim.runFor(warmUpMs);
      sim.startProducing();
      for (let round = 0; round < 2; round++) {
        sim.runFor(between(sim, 200, 700));
        for (const id of sim.ids) sim.kill(id, sim.rng.chance(0.2));
        sim.runFor(between(sim, 20, 200));
        for (const id of sim.ids) sim.kill(id);
        const order = [...sim.ids];
        for (let i = order.length - 1; i > 0; i--) {
          const j = sim.rng.int(i + 1);
          [order[i], order[j]] = [order[j]!, order[i]!];
        }
        for (const id of order) {
          sim.runFor(between(sim, 0, 250));
          sim.start(id);
        }
      }
      sim.runFor(300);
      sim.finish();
    },
  },
  {
    name: 'rolling_restart',
    claim: 'a controlled shutdown moves leadership away first, and a rolling restart loses nothing',
    options: { acksAllRate: 0.9 },
    run(sim) {
      sim.runFor(warmUpMs);
      sim.startProducing();
      for (const id of sim.ids) {
        sim.runFor(between(sim, 100, 400));
        sim.setShuttingDown(id, true);
        // The controller hands leadership to an in-sync replica (one that can take over) and takes the broker
        // out of every ISR; SIGKILL follows after a drain period, whether it finished or not.
        sim.runUntilOrAt(sim.nowMs + 1_000, () => sim.ledBy(id).length === 0);
        sim.kill(id);
        sim.runFor(between(sim, 100, 600));
        sim.start(id);
        sim.setShuttingDown(id, false);
      }
      sim.runFor(300);
      sim.finish();
    },
  },
  {
    name: 'random_faults',
    claim:
      'kills, pauses, partitions of any shape (one-way too) and a lossy, duplicating, reordering network',
    options: { network: roughNetwork, acksAllRate: 0.85 },
    run(sim) {
      sim.runFor(warmUpMs);
      sim.startProducing();
      for (let i = 0; i < 12; i++) {
        sim.runFor(between(sim, 50, 350));
        const id = sim.rng.pick(sim.ids);
        switch (sim.rng.int(8)) {
          case 0:
            sim.kill(id, sim.rng.chance(0.3));
            break;
          case 1:
            sim.start(id);
            break;
          case 2:
            sim.pause(id);
            break;
          case 3:
            sim.resume(id);
            break;
          case 4: {
            const shuffled = [...sim.ids].sort(() => sim.rng.next() - 0.5);
            const cut = 1 + sim.rng.int(shuffled.length - 1);
            sim.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
            break;
          }
          case 5: {
            const other = sim.rng.pick(sim.ids.filter((x) => x !== id));
            sim.cutDataLink(id, other);
            break;
          }
          case 6: {
            const other = sim.rng.pick(sim.ids.filter((x) => x !== id));
            sim.cutOneWay(id, other);
            break;
          }
          default:
            sim.heal();
            for (const x of sim.ids) sim.resume(x);
        }
      }
      sim.runFor(300);
      sim.finish();
    },
  },
  {
    name: 'five_brokers',
    claim:
      'five brokers, RF 3: two replicas of a partition down at once hold acks=all back by strict min ISR',
    options: {
      brokers: 5,
      topics: [
        {
          name: 't',
          partitions: 5,
          replicationFactor: 3,
          minInsyncReplicas: 2,
          uncleanLeaderElection: false,
        },
      ],
      acksAllRate: 0.9,
    },
    run(sim) {
      sim.runFor(warmUpMs);
      sim.startProducing();
      for (let i = 0; i < 3; i++) {
        sim.runFor(between(sim, 150, 500));
        const pk = sim.rng.pick(sim.partitionKeys());
        const leader = sim.leaderOf(pk);
        if (leader === '') continue;
        const followers = sim.replicasOf(pk).filter((id) => id !== leader);
        const down = sim.rng.chance(0.5) ? followers : [leader, sim.rng.pick(followers)];
        for (const id of down) {
          if (sim.rng.chance(0.5)) sim.kill(id);
          else sim.cutDataLink(leader, id);
        }
        sim.runFor(between(sim, 300, 1_200));
        sim.heal();
        for (const id of down) sim.start(id);
      }
      sim.runFor(300);
      sim.finish();
    },
  },
  {
    name: 'unclean_election',
    claim: 'with unclean election allowed, acknowledged records are lost only after an unclean election',
    options: { topics: uncleanTopics, acksAllRate: 0.8 },
    run(sim) {
      sim.runFor(warmUpMs);
      sim.startProducing();
      for (let i = 0; i < 4; i++) {
        sim.runFor(between(sim, 150, 400));
        const pk = sim.rng.pick(sim.partitionKeys());
        const leader = sim.leaderOf(pk);
        if (leader === '') continue;
        // Shrink the ISR to the leader by cutting its followers' data links, then kill the leader.
        for (const f of sim.replicasOf(pk)) if (f !== leader) sim.cutDataLink(leader, f);
        sim.runFor(between(sim, 300, 900));
        sim.kill(leader);
        sim.heal();
        sim.runFor(between(sim, 200, 800));
        sim.start(leader);
      }
      sim.runFor(300);
      sim.finish();
    },
  },
  {
    name: 'acks1_control',
    claim: 'negative control: with acks=1 and leader kills, acknowledged records can be lost (counted)',
    options: { acksAllRate: 0 },
    run(sim) {
      sim.runFor(warmUpMs);
      sim.startProducing();
      for (let i = 0; i < 4; i++) {
        sim.runFor(between(sim, 150, 500));
        killAndRestartLeader(sim, 100, 600);
      }
      sim.runFor(300);
      sim.finish();
    },
  },
];

/** What a block of seeds of one scenario adds up to. */
export interface ScenarioTotals {
  seeds: number;
  steps: number;
  simulatedMs: number;
  ackedAll: number;
  acked1: number;
  uncleanElections: number;
  uncleanLosses: number;
  acks1Losses: number;
  acks1LossSeeds: number;
}

export function emptyTotals(): ScenarioTotals {
  return {
    seeds: 0,
    steps: 0,
    simulatedMs: 0,
    ackedAll: 0,
    acked1: 0,
    uncleanElections: 0,
    uncleanLosses: 0,
    acks1Losses: 0,
    acks1LossSeeds: 0,
  };
}

export function addRun(totals: ScenarioTotals, s: RunStats): void {
  totals.seeds++;
  totals.steps += s.steps;
  totals.simulatedMs += s.simulatedMs;
  totals.ackedAll += s.ackedAll;
  totals.acked1 += s.acked1;
  totals.uncleanElections += s.uncleanElections;
  totals.uncleanLosses += s.uncleanLosses;
  totals.acks1Losses += s.acks1Losses;
  if (s.acks1Losses > 0) totals.acks1LossSeeds++;
}

export function addTotals(into: ScenarioTotals, from: ScenarioTotals): void {
  for (const key of Object.keys(into) as (keyof ScenarioTotals)[]) into[key] += from[key];
}

export function findScenario(name: string): Scenario {
  const s = scenarios.find((x) => x.name === name);
  if (s === undefined)
    throw new Error(`unknown scenario ${name} (known: ${scenarios.map((x) => x.name).join(', ')})`);
  return s;
}

export function replayHint(scenario: string, seed: number, extra = ''): string {
  return `replay: node --import tsx tools/replication-sim.ts --scenario ${scenario} --seed ${seed}${extra} --trace`;
}

/** Runs one seed; a failure becomes a SimFailure with the scenario, seed, trace tail and replay command. */
export function runScenario(
  scenario: Scenario,
  seed: number,
  overrides: Partial<ReplicationSimOptions> = {},
): RunStats {
  const sim = new ReplicationSim(scenario.name, seed, { ...scenario.options, ...overrides });
  try {
    scenario.run(sim);
    return sim.stats;
  } catch (err) {
    if (!isReplicationFailure(err)) throw err;
    const bugs = [overrides.replicaBug, overrides.controllerBug].filter((b) => b !== undefined);
    const extra = bugs.length > 0 ? ` --bug ${bugs.join(',')}` : '';
    const report = [
      `replication sim ${scenario.name} seed ${seed}: ${err.message}`,
      'trace tail:',
      ...sim.traceTail(),
      replayHint(scenario.name, seed, extra),
    ].join('\n');
    throw new SimFailure(report, { cause: err });
  }
}
