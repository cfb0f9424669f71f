// The Raft simulation scenarios: the MIT 6.5840 Raft lab list (elections, agreement, persistence, Figure 8,
// churn, snapshots) plus membership changes, pre-vote with check-quorum and leadership transfer. Each scenario
// builds a Sim from its seed, drives faults and proposals, and states its liveness claims with deadlines; the
// safety invariants are checked by the harness after every step. `runScenario` runs one seed and turns any
// failure into a SimFailure naming the scenario, the seed, a trace tail and the replay command.
// Single-threaded; used by the tests under test/sim, tools/raft-sim.ts and bench/raft-sim.ts.

import type { ConfChange, ConfState, NodeId } from '../../src/core/raft/types.js';
import {
  isSimFailure,
  type NetworkOptions,
  reliableNetwork,
  Sim,
  SimFailure,
  type SimOptions,
} from './raft-harness.js';

export interface Scenario {
  readonly name: string;
  readonly claim: string;
  readonly options: SimOptions;
  readonly run: (sim: Sim) => void;
}

const lossyNetwork: NetworkOptions = { lossRate: 0.05, duplicateRate: 0.02, delayMinMs: 1, delayMaxMs: 10 };
/** A fixed delay keeps every link first-in first-out, like one TCP connection. */
const fifoNetwork: NetworkOptions = { lossRate: 0, duplicateRate: 0, delayMinMs: 2, delayMaxMs: 2 };
const figure8Network: NetworkOptions = { lossRate: 0.1, duplicateRate: 0.05, delayMinMs: 1, delayMaxMs: 40 };

// With 10 ms ticks and a 10-tick election timeout, a follower campaigns 100-200 ms after losing its leader;
// pre-vote adds one round trip. These deadlines leave room for a few split votes.
const electionDeadlineMs = 2_000;
const lossyElectionDeadlineMs = 5_000;

function check(sim: Sim, cond: boolean, what: string): void {
  if (!cond) sim.fail(what);
}

function followersOf(sim: Sim, leader: NodeId): NodeId[] {
  return sim.liveIds().filter((id) => id !== leader);
}

/** Applies one membership change through whoever leads, retrying across refusals and leader changes. */
function changeConf(sim: Sim, change: ConfChange, deadlineMs: number): void {
  const end = sim.nowMs + deadlineMs;
  while (sim.nowMs < end) {
    const leader = sim.stableLeader();
    if (leader === undefined) {
      sim.runFor(sim.tickMs);
      continue;
    }
    const result = sim.proposeConfChangeAt(leader, change);
    if (result.kind === 'ok') {
      const waitUntil = Math.min(end, sim.nowMs + 1_500);
      while (sim.nowMs < waitUntil && sim.appliedMax() < result.index) sim.runFor(1);
      // Applied somewhere, so committed. The entry at that index is ours only if a node that applied it holds
      // it with our term: the proposing leader's own log is no proof, it may have been deposed with the entry
      // still in it while a new leader committed another entry at that index.
      const appliedBy = sim.liveIds().find((id) => (sim.raft(id)?.status().applied ?? 0) >= result.index);
      if (appliedBy !== undefined) {
        const term = sim.raft(appliedBy)!.termAt(result.index);
        if (term === result.term) return;
        // Compacted away: the membership that node applied tells whether the change took effect.
        if (term === undefined && confShows(sim.raft(appliedBy)!.status().conf, change)) return;
      }
      continue;
    }
    if (result.kind === 'invalid_conf_change' && alreadyApplied(sim, leader, change)) return;
    sim.runFor(sim.tickMs);
  }
  sim.fail(`liveness: conf change ${change.op} ${change.nodeId} not done within ${deadlineMs} ms`);
}

function alreadyApplied(sim: Sim, leader: NodeId, change: ConfChange): boolean {
  const status = sim.raft(leader)?.status();
  if (status === undefined || status.commit < status.lastIndex) return false;
  return confShows(status.conf, change);
}

/** Whether `conf` is what `change` leads to for its node. */
function confShows(conf: ConfState, change: ConfChange): boolean {
  const { voters, learners } = conf;
  switch (change.op) {
    case 'add_voter':
    case 'promote':
      return voters.includes(change.nodeId);
    case 'add_learner':
      return learners.includes(change.nodeId);
    case 'remove':
      return !voters.includes(change.nodeId) && !learners.includes(change.nodeId);
  }
}

/** Reconnects and restarts everyone and checks that the cluster agrees again. */
function healAndAgree(sim: Sim, deadlineMs: number): void {
  sim.heal();
  sim.network = reliableNetwork;
  sim.stopCrashing();
  sim.stopStorageFaults();
  for (const id of sim.ids) if (!sim.isUp(id) && sim.startedOnce.has(id)) sim.start(id);
  sim.waitForLeader(deadlineMs);
  sim.agree(
    deadlineMs,
    sim.liveIds().filter((id) => isVoterOrLearner(sim, id)),
  );
  sim.checkLogsFully();
}

function isVoterOrLearner(sim: Sim, id: NodeId): boolean {
  const leader = sim.stableLeader();
  const conf = leader === undefined ? undefined : sim.raft(leader)?.status().conf;
  return conf === undefined || conf.voters.includes(id) || conf.learners.includes(id);
}

export const scenarios: readonly Scenario[] = [
  {
    name: 'initial_election',
    claim: 'a fresh cluster elects one leader and keeps it while nothing fails',
    options: { voters: 3 },
    run(sim) {
      const leader = sim.waitForLeader(electionDeadlineMs);
      const term = sim.raft(leader)!.status().term;
      sim.runFor(2_000);
      check(sim, sim.stableLeader() === leader, 'the leader changed without any failure');
      for (const id of sim.ids)
        check(sim, sim.raft(id)!.status().term === term, `${id} moved past term ${term}`);
    },
  },
  {
    name: 're_election',
    claim: 'a new leader is elected when the leader is cut off, and none without a majority',
    options: { voters: 3 },
    run(sim) {
      const first = sim.waitForLeader(electionDeadlineMs);
      sim.isolate(first);
      sim.waitForLeader(electionDeadlineMs, [first]);
      sim.reconnect(first);
      const third = sim.waitForLeader(electionDeadlineMs);
      sim.isolate(third);
      sim.isolate(followersOf(sim, third)[0]!);
      // Check-quorum makes the cut-off leader step down; nobody can win an election alone.
      sim.runFor(1_000);
      check(
        sim,
        sim.leaders().length === 0,
        `a leader exists without a majority: ${sim.leaders().join(',')}`,
      );
      sim.heal();
      sim.waitForLeader(electionDeadlineMs);
    },
  },
  {
    name: 'many_elections',
    claim: 'seven nodes keep electing a leader while random minorities are cut off',
    options: { voters: 7 },
    run(sim) {
      sim.waitForLeader(electionDeadlineMs);
      for (let round = 0; round < 6; round++) {
        sim.heal();
        const cut = new Set<NodeId>();
        while (cut.size < 3) cut.add(sim.rng.pick(sim.ids));
        for (const id of cut) sim.isolate(id);
        sim.waitForLeader(electionDeadlineMs);
        sim.runFor(sim.rng.int(300));
      }
      sim.heal();
      sim.waitForLeader(electionDeadlineMs);
    },
  },
  {
    name: 'basic_agreement',
    claim: 'every proposal commits on all five nodes in order',
    options: { voters: 5 },
    run(sim) {
      sim.waitForLeader(electionDeadlineMs);
      for (let i = 0; i < 8; i++) sim.agree(1_000);
    },
  },
  {
    name: 'follower_failure',
    claim: 'agreement continues without a failed follower, which catches up after it returns',
    options: { voters: 3 },
    run(sim) {
      const leader = sim.waitForLeader(electionDeadlineMs);
      sim.agree(1_000);
      const gone = followersOf(sim, leader)[sim.rng.int(2)]!;
      sim.isolate(gone);
      const rest = sim.ids.filter((id) => id !== gone);
      for (let i = 0; i < 4; i++) sim.agree(electionDeadlineMs, rest);
      sim.reconnect(gone);
      sim.agree(electionDeadlineMs);
    },
  },
  {
    name: 'no_agreement_without_majority',
    claim: 'nothing commits while three of five followers are cut off; agreement resumes after healing',
    options: { voters: 5 },
    run(sim) {
      const leader = sim.waitForLeader(electionDeadlineMs);
      sim.agree(1_000);
      const followers = followersOf(sim, leader);
      for (const id of followers.slice(0, 3)) sim.isolate(id);
      const before = sim.appliedMax();
      const pid = sim.proposeAt(leader);
      check(sim, pid !== undefined, 'the leader refused a proposal');
      sim.runFor(1_500);
      check(sim, !sim.isApplied(pid!), 'a proposal committed without a majority');
      check(sim, sim.appliedMax() === before, 'something was applied without a majority');
      sim.heal();
      sim.agree(3_000);
    },
  },
  {
    name: 'concurrent_proposals',
    claim: 'a burst of proposals all commit, and past the uncommitted bound the leader answers queue_full',
    options: { voters: 3, raft: { uncommittedEntriesMax: 32 } },
    run(sim) {
      const leader = sim.waitForLeader(electionDeadlineMs);
      sim.agree(1_000);
      const pids: number[] = [];
      let full = 0;
      for (let i = 0; i < 40; i++) {
        const pid = sim.proposeAt(leader);
        if (pid !== undefined) pids.push(pid);
        else if (sim.lastProposeResult?.kind === 'queue_full') full++;
        else sim.fail(`unexpected refusal ${sim.lastProposeResult?.kind}`);
      }
      check(sim, pids.length === 32 && full === 8, `accepted ${pids.length}, queue_full ${full}`);
      sim.runUntil('the burst to commit on all nodes', 2_000, () =>
        pids.every(
          (pid) =>
            sim.isApplied(pid) && sim.ids.every((id) => sim.appliedIndex(id) >= sim.accepted.get(pid)!),
        ),
      );
    },
  },
  {
    name: 'rejoin_partitioned_leader',
    claim: 'a partitioned leader that rejoins drops its uncommitted entries and follows',
    options: { voters: 3 },
    run(sim) {
      const first = sim.waitForLeader(electionDeadlineMs);
      sim.agree(1_000);
      sim.isolate(first);
      for (let i = 0; i < 3; i++) sim.proposeAt(first);
      const second = sim.waitForLeader(electionDeadlineMs, [first]);
      sim.agree(electionDeadlineMs, followersOf(sim, first));
      const third = sim.ids.find((id) => id !== first && id !== second)!;
      sim.partition([[first, third], [second]]);
      sim.waitForLeader(electionDeadlineMs, [second]);
      sim.agree(
        electionDeadlineMs,
        sim.ids.filter((id) => id !== second),
      );
      sim.heal();
      sim.agree(electionDeadlineMs);
    },
  },
  {
    name: 'backup_wrong_entries',
    claim: 'followers with many wrong entries are brought in line with few rejected appends',
    options: { voters: 5 },
    run(sim) {
      const first = sim.waitForLeader(electionDeadlineMs);
      sim.agree(1_000);
      const [f1, a, b, c] = followersOf(sim, first) as [NodeId, NodeId, NodeId, NodeId];
      sim.partition([
        [first, f1],
        [a, b, c],
      ]);
      for (let i = 0; i < 50; i++) sim.proposeAt(first);
      sim.runFor(200);
      const second = sim.waitForLeader(electionDeadlineMs, [first, f1]);
      for (let i = 0; i < 50; i++) sim.proposeAt(second);
      sim.agree(electionDeadlineMs, [a, b, c]);
      const other = [a, b, c].find((id) => id !== second)!;
      const third = [a, b, c].find((id) => id !== second && id !== other)!;
      sim.partition([[first, f1], [second, third], [other]]);
      for (let i = 0; i < 50; i++) sim.proposeAt(second);
      sim.runFor(200);
      const rejectsBefore = sim.appendRejects;
      sim.partition([
        [first, f1, other],
        [second, third],
      ]);
      sim.waitForLeader(lossyElectionDeadlineMs, [second, third]);
      sim.agree(electionDeadlineMs, [first, f1, other]);
      sim.heal();
      sim.agree(electionDeadlineMs);
      const rejects = sim.appendRejects - rejectsBefore;
      // Without term hints every wrong entry costs a rejected probe: over 150 here.
      check(sim, rejects <= 40, `catching up took ${rejects} rejected appends`);
    },
  },
  {
    name: 'rpc_count',
    claim: 'ten agreements on an idle healthy cluster cost a bounded number of messages',
    options: { voters: 3, network: fifoNetwork },
    run(sim) {
      const leader = sim.waitForLeader(electionDeadlineMs);
      sim.agree(1_000);
      const term = sim.raft(leader)!.status().term;
      const sentBefore = sim.messagesSent;
      const startMs = sim.nowMs;
      const pids: number[] = [];
      for (let i = 0; i < 10; i++) pids.push(sim.proposeAt(leader)!);
      sim.runUntil('ten proposals to apply everywhere', 1_000, () =>
        pids.every(
          (pid) =>
            sim.isApplied(pid) && sim.ids.every((id) => sim.appliedIndex(id) >= sim.accepted.get(pid)!),
        ),
      );
      const ticks = Math.ceil((sim.nowMs - startMs) / sim.tickMs) + 1;
      // Per follower: one append and one answer per proposal, plus a heartbeat round trip per tick.
      const bound = 10 * 2 * 2 + ticks * 2 * 2 + 8;
      const sent = sim.messagesSent - sentBefore;
      check(sim, sent <= bound, `${sent} messages for 10 agreements (bound ${bound})`);
      check(sim, sim.raft(leader)!.status().term === term, 'the term changed during a healthy run');
    },
  },
  {
    name: 'persistence',
    claim: 'committed entries survive crashes of any node, including between a Ready and its persist',
    options: { voters: 5 },
    run(sim) {
      sim.waitForLeader(electionDeadlineMs);
      for (let round = 0; round < 6; round++) {
        sim.agree(lossyElectionDeadlineMs);
        const leader = sim.stableLeader();
        const victim = leader !== undefined && sim.rng.chance(0.5) ? leader : sim.rng.pick(sim.liveIds());
        sim.crash(victim, sim.rng.chance(0.5));
        sim.agree(
          lossyElectionDeadlineMs,
          sim.liveIds().filter((id) => id !== victim),
        );
        sim.crash(victim);
        sim.runFor(sim.rng.int(200));
        sim.start(victim);
      }
      for (const id of sim.ids) sim.crash(id);
      for (const id of sim.ids) sim.start(id);
      sim.waitForLeader(lossyElectionDeadlineMs);
      sim.agree(lossyElectionDeadlineMs);
      sim.checkLogsFully();
    },
  },
  {
    name: 'figure8',
    claim:
      'leaders crashing right after proposing never make a previous-term entry look committed (Figure 8)',
    // One entry per append, so a new leader's followers acknowledge old-term entries before its own.
    options: { voters: 5, raft: { appendEntriesMax: 1 } },
    run(sim) {
      sim.waitForLeader(electionDeadlineMs);
      for (let round = 0; round < 120; round++) {
        // Skip the quiet time while nobody leads: the interesting moments are right after an election.
        const quietUntil = sim.nowMs + 1_000;
        while (sim.leaders().length === 0 && sim.nowMs < quietUntil) sim.runFor(1);
        for (const id of sim.leaders()) sim.proposeAt(id);
        sim.runFor(sim.rng.chance(0.1) ? sim.rng.int(500) : sim.rng.int(15));
        const leaders = sim.leaders();
        if (leaders.length > 0 && sim.rng.chance(0.5)) {
          const victim = sim.rng.pick(leaders);
          sim.crash(victim, sim.rng.chance(0.3));
          sim.crash(victim);
        }
        if (sim.liveIds().length < 3) sim.start(sim.rng.pick(sim.ids.filter((id) => !sim.isUp(id))));
      }
      healAndAgree(sim, 10_000);
    },
  },
  {
    name: 'crash_before_persist',
    claim: 'crashes between a Ready and its persist never let a vote or an acknowledgement outlive the disk',
    options: {
      voters: 5,
      network: { lossRate: 0.02, duplicateRate: 0.02, delayMinMs: 1, delayMaxMs: 30 },
      crashBeforePersistRate: 0.05,
      persistDelayMaxMs: 5,
      raft: { preVote: false, checkQuorum: false },
    },
    run(sim) {
      for (let round = 0; round < 150; round++) {
        for (const id of sim.leaders()) sim.proposeAt(id);
        sim.runFor(1 + sim.rng.int(40));
        for (const id of sim.ids) if (!sim.isUp(id) && sim.rng.chance(0.7)) sim.start(id);
      }
      healAndAgree(sim, 10_000);
    },
  },
  {
    name: 'figure8_unreliable',
    claim:
      'with leaders cut off and crashing on a lossy, reordering network, safety holds and the cluster recovers',
    options: { voters: 5, network: figure8Network, persistDelayMaxMs: 4 },
    run(sim) {
      sim.waitForLeader(lossyElectionDeadlineMs);
      for (let round = 0; round < 60; round++) {
        for (const id of sim.leaders()) {
          const n = 1 + sim.rng.int(3);
          for (let i = 0; i < n; i++) sim.proposeAt(id);
        }
        sim.runFor(sim.rng.chance(0.1) ? sim.rng.int(800) : sim.rng.int(80));
        const leaders = sim.leaders();
        if (leaders.length > 0 && sim.rng.chance(0.5)) {
          const victim = sim.rng.pick(leaders);
          if (sim.rng.chance(0.5)) sim.isolate(victim);
          else {
            sim.crash(victim, sim.rng.chance(0.5));
            sim.crash(victim);
          }
        }
        const reachable = sim.ids.filter((id) => sim.isUp(id));
        if (reachable.length < 3 || sim.rng.chance(0.3)) {
          const down = sim.ids.filter((id) => !sim.isUp(id));
          const id = down.length > 0 ? sim.rng.pick(down) : sim.rng.pick(sim.ids);
          sim.start(id);
          sim.reconnect(id);
        }
      }
      healAndAgree(sim, 10_000);
    },
  },
  {
    name: 'unreliable_churn',
    claim:
      'under crashes, restarts, partitions of every shape and one-way links, safety holds and the cluster recovers',
    options: { voters: 5, network: lossyNetwork, persistDelayMaxMs: 3 },
    run(sim) {
      sim.waitForLeader(lossyElectionDeadlineMs);
      for (let round = 0; round < 80; round++) {
        const action = sim.rng.int(7);
        const id = sim.rng.pick(sim.ids);
        if (action === 0) sim.crash(id, sim.rng.chance(0.5));
        else if (action === 1) sim.start(id);
        else if (action === 2) sim.isolate(id);
        else if (action === 3) sim.reconnect(id);
        else if (action === 4) sim.blockOneWay(id, sim.rng.pick(sim.ids.filter((x) => x !== id)));
        else if (action === 5) {
          const shuffled = [...sim.ids].sort(() => sim.rng.next() - 0.5);
          const cut = 1 + sim.rng.int(shuffled.length - 1);
          sim.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
        } else sim.heal();
        for (const leader of sim.leaders()) {
          const n = sim.rng.int(4);
          for (let i = 0; i < n; i++) sim.proposeAt(leader);
        }
        sim.runFor(20 + sim.rng.int(300));
      }
      healAndAgree(sim, 10_000);
    },
  },
  {
    name: 'storage_faults',
    claim:
      'writes and fsyncs that fail at any step of a Ready (before or after taking effect), retried later, with crashes, partitions and compaction, never break safety, and the cluster recovers',
    options: {
      voters: 5,
      network: lossyNetwork,
      storageFaultRate: 0.05,
      storageRetryMaxMs: 80,
      compactEveryEntries: 15,
    },
    run(sim) {
      sim.waitForLeader(lossyElectionDeadlineMs);
      for (let round = 0; round < 80; round++) {
        const action = sim.rng.int(8);
        const id = sim.rng.pick(sim.ids);
        if (action === 0) sim.crash(id, sim.rng.chance(0.5));
        else if (action === 1) sim.start(id);
        else if (action === 2) sim.isolate(id);
        else if (action === 3) sim.reconnect(id);
        else if (action === 4) sim.setDiskFull(id, !sim.isStalled(id) && sim.rng.chance(0.7));
        else if (action === 5) sim.setDiskFull(id, false);
        else if (action === 6) sim.heal();
        for (const leader of sim.leaders()) {
          const n = sim.rng.int(4);
          for (let i = 0; i < n; i++) sim.proposeAt(leader);
        }
        sim.runFor(20 + sim.rng.int(300));
      }
      check(sim, sim.storageFaults > 0, 'no storage fault was injected');
      healAndAgree(sim, 10_000);
    },
  },
  {
    name: 'disk_full',
    claim:
      'a node whose disk is full stays out of the group; the others commit without it, nothing commits while a majority is full, and everyone catches up once space is back',
    options: { voters: 3, compactEveryEntries: 10 },
    run(sim) {
      const leader = sim.waitForLeader(electionDeadlineMs);
      sim.agree(1_000);
      // The leader or a follower fills its disk while proposals keep coming.
      const full = sim.rng.chance(0.5) ? leader : sim.rng.pick(followersOf(sim, leader));
      sim.setDiskFull(full, true);
      for (let i = 0; i < 5; i++) sim.proposeAt(sim.stableLeader() ?? leader);
      const others = sim.ids.filter((id) => id !== full);
      sim.agree(lossyElectionDeadlineMs, others);
      check(sim, sim.isStalled(full), 'the node with a full disk is not stalled');
      // A second full disk: no majority can persist anything, so nothing more commits.
      const second = sim.rng.pick(others);
      sim.setDiskFull(second, true);
      const before = sim.appliedMax();
      const survivor = others.find((id) => id !== second)!;
      for (let i = 0; i < 20; i++) {
        sim.proposeAt(survivor);
        sim.runFor(25);
      }
      check(sim, sim.appliedMax() === before, 'something committed while a majority of disks were full');
      sim.setDiskFull(full, false);
      sim.setDiskFull(second, false);
      sim.waitForLeader(lossyElectionDeadlineMs);
      sim.agree(lossyElectionDeadlineMs);
      check(sim, sim.stallsRecovered > 0, 'no stalled node recovered');
      sim.checkLogsFully();
    },
  },
  {
    name: 'snapshot_install',
    claim: 'a follower that fell behind a compacted log catches up through InstallSnapshot',
    options: { voters: 3, compactEveryEntries: 10 },
    run(sim) {
      const leader = sim.waitForLeader(electionDeadlineMs);
      sim.agree(1_000);
      const lagging = followersOf(sim, leader)[sim.rng.int(2)]!;
      sim.isolate(lagging);
      const rest = sim.ids.filter((id) => id !== lagging);
      for (let i = 0; i < 30; i++) sim.proposeAt(sim.stableLeader() ?? leader);
      sim.agree(electionDeadlineMs, rest);
      if (sim.rng.chance(0.5)) {
        // A crash right after compacting must restart from the snapshot.
        const victim = sim.rng.pick(rest);
        sim.crash(victim);
        sim.start(victim);
      }
      sim.reconnect(lagging);
      sim.agree(electionDeadlineMs);
      check(sim, (sim.messagesByType.get('snapshot') ?? 0) > 0, 'no InstallSnapshot was sent');
      check(
        sim,
        sim.raft(lagging)!.status().firstIndex > 1,
        'the lagging follower did not install a snapshot',
      );
    },
  },
  {
    name: 'snapshot_churn',
    claim: 'with frequent compaction, crashes and a lossy network, snapshots keep every node consistent',
    options: { voters: 5, network: lossyNetwork, compactEveryEntries: 6, persistDelayMaxMs: 3 },
    run(sim) {
      sim.waitForLeader(lossyElectionDeadlineMs);
      for (let round = 0; round < 60; round++) {
        for (const leader of sim.leaders()) {
          const n = 1 + sim.rng.int(5);
          for (let i = 0; i < n; i++) sim.proposeAt(leader);
        }
        const id = sim.rng.pick(sim.ids);
        const action = sim.rng.int(4);
        if (action === 0) sim.crash(id, sim.rng.chance(0.5));
        else if (action === 1) sim.start(id);
        else if (action === 2) sim.isolate(id);
        else sim.reconnect(id);
        if (sim.liveIds().length < 3) sim.start(sim.rng.pick(sim.ids.filter((x) => !sim.isUp(x))));
        sim.runFor(50 + sim.rng.int(300));
      }
      healAndAgree(sim, 10_000);
    },
  },
  {
    name: 'membership',
    claim:
      'a learner is added, catches up, is promoted and a voter is removed, one change at a time, under faults',
    options: { voters: 3, spares: 2, network: lossyNetwork, compactEveryEntries: 12 },
    run(sim) {
      sim.waitForLeader(lossyElectionDeadlineMs);
      sim.agree(lossyElectionDeadlineMs);
      const [n4, n5] = [sim.ids[3]!, sim.ids[4]!];
      sim.start(n4);
      changeConf(sim, { op: 'add_learner', nodeId: n4 }, 10_000);
      sim.agree(lossyElectionDeadlineMs, [n4, ...sim.ids.slice(0, 3)]);
      check(sim, sim.raft(n4)!.status().role === 'follower', 'a learner campaigned');
      // With both other voters cut off, the leader and the learner are no majority: nothing may commit.
      const leader = sim.waitForLeader(lossyElectionDeadlineMs);
      sim.partition([[leader, n4], sim.ids.filter((id) => id !== leader && id !== n4)]);
      const pid = sim.proposeAt(leader);
      sim.runFor(500);
      if (pid !== undefined) {
        // Entries below the proposal may have reached a majority before the cut; the proposal cannot.
        // (The majority side may elect its own leader and commit other entries at that index.)
        const index = sim.accepted.get(pid)!;
        check(sim, !sim.isApplied(pid), 'an entry committed with a minority of voters and a learner');
        check(
          sim,
          sim.raft(leader)!.status().commit < index,
          'the cut-off leader counted the learner to commit',
        );
      }
      sim.heal();
      changeConf(sim, { op: 'promote', nodeId: n4 }, 10_000);
      // A follower crash while the cluster has four voters.
      const victim = sim.rng.pick(sim.ids.slice(0, 3));
      sim.crash(victim, sim.rng.chance(0.5));
      sim.crash(victim);
      sim.agree(lossyElectionDeadlineMs, sim.liveIds());
      sim.start(victim);
      // Remove one of the founders, possibly the leader itself.
      const removed = sim.rng.chance(0.5)
        ? (sim.stableLeader() ?? sim.ids[0]!)
        : sim.rng.pick(sim.ids.slice(0, 3));
      changeConf(sim, { op: 'remove', nodeId: removed }, 10_000);
      sim.crash(removed);
      sim.start(n5);
      changeConf(sim, { op: 'add_learner', nodeId: n5 }, 10_000);
      changeConf(sim, { op: 'promote', nodeId: n5 }, 10_000);
      const members = sim.ids.filter((id) => id !== removed);
      sim.network = reliableNetwork;
      sim.agree(lossyElectionDeadlineMs, members);
      const finalLeader = sim.waitForLeader(lossyElectionDeadlineMs);
      const conf = sim.raft(finalLeader)!.status().conf;
      check(
        sim,
        conf.voters.length === 4 && !conf.voters.includes(removed),
        `voters ${conf.voters.join(',')}`,
      );
      sim.runUntil('every member to know the final membership', 2_000, () =>
        members.every((id) => sim.raft(id)!.status().conf.voters.join() === conf.voters.join()),
      );
      sim.checkLogsFully();
    },
  },
  {
    name: 'membership_churn',
    claim:
      'random single-server changes (including removing the leader) under crashes and partitions stay safe',
    options: { voters: 3, spares: 2, network: lossyNetwork, compactEveryEntries: 10, persistDelayMaxMs: 2 },
    run(sim) {
      for (const id of sim.ids) sim.start(id);
      sim.waitForLeader(lossyElectionDeadlineMs);
      for (let round = 0; round < 40; round++) {
        const leader = sim.leaders()[0];
        if (leader !== undefined) {
          const { voters, learners } = sim.raft(leader)!.status().conf;
          const outsiders = sim.ids.filter((id) => !voters.includes(id) && !learners.includes(id));
          const options: ConfChange[] = [
            ...outsiders.map((nodeId) => ({ op: 'add_learner' as const, nodeId })),
            ...outsiders.map((nodeId) => ({ op: 'add_voter' as const, nodeId })),
            ...learners.map((nodeId) => ({ op: 'promote' as const, nodeId })),
            ...learners.map((nodeId) => ({ op: 'remove' as const, nodeId })),
            ...(voters.length > 2 ? voters.map((nodeId) => ({ op: 'remove' as const, nodeId })) : []),
          ];
          if (options.length > 0) sim.proposeConfChangeAt(leader, sim.rng.pick(options));
          for (let i = sim.rng.int(3); i > 0; i--) sim.proposeAt(leader);
        }
        const id = sim.rng.pick(sim.ids);
        const action = sim.rng.int(6);
        if (action === 0) sim.crash(id, sim.rng.chance(0.5));
        else if (action === 1) sim.isolate(id);
        else if (action === 2) sim.reconnect(id);
        else for (const down of sim.ids) if (!sim.isUp(down)) sim.start(down);
        sim.runFor(20 + sim.rng.int(250));
      }
      healAndAgree(sim, 10_000);
    },
  },
  {
    name: 'prevote_check_quorum',
    claim:
      'a node returning from a partition does not depose the leader, and a leader cut off from a quorum steps down',
    options: { voters: 5 },
    run(sim) {
      const leader = sim.waitForLeader(electionDeadlineMs);
      sim.agree(1_000);
      const term = sim.raft(leader)!.status().term;
      const loner = followersOf(sim, leader)[sim.rng.int(4)]!;
      sim.isolate(loner);
      sim.runFor(3_000);
      check(
        sim,
        sim.raft(loner)!.status().term === term,
        'an isolated node raised its term despite pre-vote',
      );
      sim.reconnect(loner);
      sim.runFor(1_000);
      check(sim, sim.stableLeader() === leader, 'the returning node deposed the leader');
      check(sim, sim.raft(leader)!.status().term === term, 'the returning node forced a new term');
      // A one-way cut: the node cannot hear the leader but can reach everyone. The others' leader lease
      // refuses its pre-votes, so it never raises the term.
      sim.blockOneWay(leader, loner);
      sim.runFor(2_000);
      check(sim, sim.stableLeader() === leader, 'a node that cannot hear the leader deposed it');
      check(
        sim,
        sim.raft(leader)!.status().term === term,
        'a node that cannot hear the leader forced a new term',
      );
      sim.heal();
      sim.agree(1_000);
      // Leader and one follower on the minority side: the leader must step down within two election timeouts.
      const buddy = followersOf(sim, leader)[0]!;
      sim.partition([[leader, buddy], followersOf(sim, leader).filter((id) => id !== buddy)]);
      const electionTimeoutMs = 10 * sim.tickMs;
      sim.runUntil(
        'the cut-off leader to step down',
        2 * electionTimeoutMs + sim.tickMs,
        () => sim.raft(leader)!.status().role !== 'leader',
      );
      sim.waitForLeader(electionDeadlineMs, [leader, buddy]);
      sim.heal();
      sim.agree(electionDeadlineMs);
    },
  },
  {
    name: 'leadership_transfer',
    claim: 'leadership moves to the chosen voter faster than an election, even when it first has to catch up',
    options: { voters: 3 },
    run(sim) {
      const leader = sim.waitForLeader(electionDeadlineMs);
      sim.agree(1_000);
      const target = followersOf(sim, leader)[sim.rng.int(2)]!;
      check(sim, sim.transferAt(leader, target).kind === 'ok', 'transfer refused');
      const pid = sim.proposeAt(leader);
      check(
        sim,
        pid === undefined && sim.lastProposeResult?.kind === 'transferring',
        'proposal during transfer',
      );
      // Faster than the smallest election timeout (100 ms): no election timer was involved.
      sim.runUntil('the target to lead', 60, () => sim.stableLeader() === target);
      sim.agree(1_000);
      const lagging = followersOf(sim, target)[sim.rng.int(2)]!;
      sim.isolate(lagging);
      for (let i = 0; i < 20; i++) sim.proposeAt(target);
      sim.agree(
        1_000,
        sim.ids.filter((id) => id !== lagging),
      );
      sim.reconnect(lagging);
      check(sim, sim.transferAt(target, lagging).kind === 'ok', 'transfer to a lagging follower refused');
      sim.runUntil('the lagging target to catch up and lead', 100, () => sim.stableLeader() === lagging);
      sim.agree(1_000);
    },
  },
];

export const scenarioNames: readonly string[] = scenarios.map((s) => s.name);

export function findScenario(name: string): Scenario {
  const s = scenarios.find((x) => x.name === name);
  if (s === undefined) throw new Error(`unknown scenario ${name}; known: ${scenarioNames.join(', ')}`);
  return s;
}

export interface SeedResult {
  readonly steps: number;
  readonly simulatedMs: number;
  readonly messages: number;
}

/** Runs one seed of one scenario; a failure is rethrown as a SimFailure with the seed, trace tail and replay. */
export function runScenario(scenario: Scenario, seed: number, trace = false): SeedResult {
  const sim = new Sim(scenario.name, seed, { ...scenario.options, trace });
  try {
    scenario.run(sim);
  } catch (err) {
    if (!isSimFailure(err)) throw err;
    const lines = [
      `raft simulation failed: scenario ${scenario.name}, seed ${seed}, at ${sim.nowMs} ms`,
      `  ${err.name}: ${err.message}`,
      '  trace tail:',
      ...sim.traceTail().map((l) => `    ${l}`),
      `  ${Sim.replayHint(scenario.name, seed)}`,
    ];
    throw new SimFailure(lines.join('\n'), { cause: err });
  }
  return { steps: sim.steps, simulatedMs: sim.nowMs, messages: sim.messagesSent };
}
