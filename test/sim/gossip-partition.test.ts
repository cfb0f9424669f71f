// Gossip heals after a network partition: members cut off from each other for longer than the dead-member
// reclaim time (so each side has forgotten the other entirely), or for less (each holds the other dead), find
// each other again once the network heals, through the periodic reconnect to members held dead, left or
// forgotten, and every member holds every other alive again within a few seconds. Proven on the deterministic
// simulation over many seeds, with and without packet loss, for one member cut off from two and for a 3 | 2
// split. Replay a seed with GOSSIP_SIM_SEED=<seed>.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GOSSIP_DEFAULTS } from '../../src/core/gossip/config.js';
import { GossipSim } from './gossip-harness.js';

const baseSeed = Number(process.env.GOSSIP_SIM_SEED ?? 20_251_010);
const SEEDS = 20;
/**
 * Longer than detection (about 4 s, more at 10% loss when a side shrinks to one or two members) plus the
 * reclaim time: the long partition lasts until each side forgot the other, at least this long.
 */
const LONG_PARTITION_MS = GOSSIP_DEFAULTS.deadReclaimMs + 10_000;
/** Bound on how long the long partition may wait for each side to forget the other. */
const FORGET_DEADLINE_MS = GOSSIP_DEFAULTS.deadReclaimMs + 40_000;
/** Long enough for each side to declare the other dead, short enough that neither has forgotten it. */
const SHORT_PARTITION_MS = 10_000;
/** The claim: after the heal, every member holds every other alive within this long. */
const REMERGE_BUDGET_MS = 5_000;

/** Every running member holds every other running member alive. */
function merged(sim: GossipSim): boolean {
  const ids = sim.liveIds();
  return ids.every((a) => ids.every((b) => a === b || sim.node(a).member(b)?.state === 'alive'));
}

/** Runs one partition-and-heal; returns the time from the heal until the views merged (Infinity if never). */
function partitionAndHeal(
  partitionMs: number,
  untilForgotten: boolean,
  members: number,
  seed: number,
  lossRate: number,
  groups: (ids: string[]) => string[][],
): { remergeMs: number; forgotten: boolean } {
  const sim = new GossipSim({ members, seed, lossRate });
  sim.runUntil(1000);
  const ids = sim.liveIds();
  const split = groups(ids);
  sim.partition(split);
  sim.runUntil(1000 + partitionMs);
  // Whether each side forgot the other: the case that never healed before the reconnect existed.
  const forgot = (): boolean =>
    split.every((group) =>
      group.every((a) => ids.every((b) => group.includes(b) || sim.node(a).member(b) === undefined)),
    );
  if (untilForgotten) sim.runUntilOr(forgot, 1000 + FORGET_DEADLINE_MS, 100);
  const forgotten = forgot();
  const healedAtMs = sim.nowMs;
  sim.heal();
  const ok = sim.runUntilOr(() => merged(sim), healedAtMs + REMERGE_BUDGET_MS + 20_000, 10);
  return { remergeMs: ok ? sim.nowMs - healedAtMs : Number.POSITIVE_INFINITY, forgotten };
}

describe('gossip after a network partition', () => {
  const cases = [
    {
      name: 'one of three members cut off',
      members: 3,
      groups: (ids: string[]) => [ids.slice(0, 2), ids.slice(2)],
    },
    {
      name: 'five members split 3 | 2',
      members: 5,
      groups: (ids: string[]) => [ids.slice(0, 3), ids.slice(3)],
    },
  ];
  const durations = [
    { name: 'longer than the reclaim time', ms: LONG_PARTITION_MS, forgotten: true },
    { name: 'shorter than the reclaim time', ms: SHORT_PARTITION_MS, forgotten: false },
  ];
  for (const c of cases) {
    for (const d of durations) {
      for (const lossRate of [0, 0.1]) {
        it(`${c.name} ${d.name}, ${lossRate * 100}% loss: every member holds every other alive within ${REMERGE_BUDGET_MS / 1000} s of the heal`, () => {
          const times: number[] = [];
          for (let i = 0; i < SEEDS; i++) {
            const seed = baseSeed + 1000 * c.members + 100 * lossRate * 10 + 50 * Number(d.forgotten) + i;
            const r = partitionAndHeal(d.ms, d.forgotten, c.members, seed, lossRate, c.groups);
            const detail = `seed ${seed} (GOSSIP_SIM_SEED=${baseSeed}), ${c.members} members, loss ${lossRate}, partition ${d.ms} ms`;
            assert.equal(r.forgotten, d.forgotten, `which side remembered what at the heal; ${detail}`);
            assert.ok(
              r.remergeMs <= REMERGE_BUDGET_MS,
              `views merged ${r.remergeMs} ms after the heal, budget ${REMERGE_BUDGET_MS}; ${detail}`,
            );
            times.push(r.remergeMs);
          }
          console.log(
            `# ${c.name} ${d.name}, loss ${lossRate}: re-merged after ${Math.max(...times)} ms at worst`,
          );
        });
      }
    }
  }
});
