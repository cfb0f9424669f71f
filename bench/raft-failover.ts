// Leader failover on loopback with a 3-node cluster of real broker processes (from source, `--threads 1`).
// `--kills` times (default 5): find the leader every node agrees on, kill -9 it, and measure
//   - new-leader: from the kill until both survivors name the same new leader (status polled every
//     `--poll-ms`, default 20 ms, start to start);
//   - first create: from the kill until a topic creation on the survivor that does not lead (forwarded to the
//     new leader) answers 201, one attempt at a time with a fresh name, attempts `--poll-ms` apart;
//   - restart serving / catch-up: from restarting the killed node (its data dir, its old cluster port) until it
//     serves HTTP, and until its applied_index reaches the survivors' commit_index while it names the new leader.
// Before the next kill the cluster must again have 3 voters and an agreed leader on every node.
// Prints one row per kill plus p50 and max, and writes bench/results/raft-failover-<iso>.json and .md.
// Usage: node --import tsx bench/raft-failover.ts [--kills 5] [--poll-ms 20]
//        (through npm: npm run bench raft-failover -- --kills=5)
// Not a test: the numbers depend on the machine and its load. Runs on the main thread of its own process.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  agreed,
  agreedLeader,
  type ClusterNode,
  createTopic,
  describeMachine,
  intFlag,
  loadavgNow,
  median,
  pollStatuses,
  round,
  sleepMs,
  startCluster,
  stopCluster,
  type TestCluster,
} from './lib/cluster.js';
import { root } from './lib/servers.js';
import { report } from './lib/table.js';

const kills = intFlag('kills', 5);
const pollMs = intFlag('poll-ms', 20);
/** Bounds on each phase: beyond these the cluster is broken, not slow. */
const electionWaitMs = 30_000;
const createWaitMs = 30_000;
const catchUpWaitMs = 60_000;

/** A type alias, not an interface, so that it is a `Record<string, unknown>` for the table. */
type Row = {
  kill: number | 'p50' | 'max';
  killed: string;
  newLeader: string;
  newLeaderMs: number;
  firstCreateMs: number;
  createAttempts: number;
  restartServingMs: number;
  catchUpMs: number;
  loadavg1m: number | '';
};

interface KillDetail {
  kill: number;
  killed: string;
  newLeader: string;
  createdOn: string;
  oldTerm: number;
  newTerm: number;
  /** Raw, unrounded. */
  newLeaderMs: number;
  firstCreateMs: number;
  firstCreateAfterLeaderMs: number;
  createAttempts: number;
  failedCreates: string[];
  restartServingMs: number;
  catchUpMs: number;
  /** From restart until all 3 nodes again report 3 voters and the same leader (not in the table). */
  readyAgainMs: number;
  loadavg: number[];
}

async function measureKill(cluster: TestCluster, kill: number): Promise<KillDetail> {
  const oldLeaderId = await agreedLeader(cluster.nodes, 3, electionWaitMs);
  const oldLeader = cluster.node(oldLeaderId);
  const survivors = cluster.nodes.filter((n) => n !== oldLeader);
  const oldTerm = await pollStatuses(
    'the old term',
    [oldLeader],
    5_000,
    pollMs,
    (views) => views[0]?.raft.term,
  );

  const killedAtMs = performance.now();
  await cluster.kill(oldLeader, 'SIGKILL');
  const elected = await pollStatuses(
    'the survivors to agree on a new leader',
    survivors,
    electionWaitMs,
    pollMs,
    (views) => {
      const leader = agreed(survivors, views);
      return leader === undefined ? undefined : { leader, term: views[0]!.raft.term };
    },
  );
  const electedAtMs = performance.now();

  // Creation through the survivor that does not lead: it must find the new leader and forward to it.
  const target: ClusterNode = survivors.find((n) => n.id !== elected.leader) ?? survivors[0]!;
  const failedCreates: string[] = [];
  let attempts = 0;
  for (;;) {
    attempts++;
    const result = await createTopic(target, `failover-k${kill}-a${attempts}`, 10_000);
    if (result.status === 201) break;
    if (failedCreates.length < 10) failedCreates.push(`${result.status} ${result.body.slice(0, 200)}`);
    if (performance.now() - electedAtMs > createWaitMs) {
      throw new Error(
        `no successful create in ${createWaitMs} ms after the election: ${failedCreates.join('; ')}`,
      );
    }
    await sleepMs(pollMs);
  }
  const createdAtMs = performance.now();

  // Restart from the data dir on the old cluster port, then wait until it applied what the survivors committed.
  const restartAtMs = performance.now();
  await cluster.startNode(oldLeader);
  const servingAtMs = performance.now();
  const everyone = [oldLeader, ...survivors];
  await pollStatuses(`${oldLeaderId} to catch up`, everyone, catchUpWaitMs, pollMs, (views) => {
    const [mine, ...theirs] = views;
    const committed = Math.max(...theirs.map((v) => v.raft.commit_index));
    return mine !== undefined &&
      mine.raft.applied_index >= committed &&
      mine.raft.leader_id === elected.leader
      ? true
      : undefined;
  });
  const caughtUpAtMs = performance.now();
  await agreedLeader(cluster.nodes, 3, catchUpWaitMs, pollMs);
  const readyAtMs = performance.now();

  return {
    kill,
    killed: oldLeaderId,
    newLeader: elected.leader,
    createdOn: target.id,
    oldTerm,
    newTerm: elected.term,
    newLeaderMs: electedAtMs - killedAtMs,
    firstCreateMs: createdAtMs - killedAtMs,
    firstCreateAfterLeaderMs: createdAtMs - electedAtMs,
    createAttempts: attempts,
    failedCreates,
    restartServingMs: servingAtMs - restartAtMs,
    catchUpMs: caughtUpAtMs - restartAtMs,
    readyAgainMs: readyAtMs - restartAtMs,
    loadavg: loadavgNow(),
  };
}

function toRow(d: KillDetail): Row {
  return {
    kill: d.kill,
    killed: d.killed,
    newLeader: d.newLeader,
    newLeaderMs: Math.round(d.newLeaderMs),
    firstCreateMs: Math.round(d.firstCreateMs),
    createAttempts: d.createAttempts,
    restartServingMs: Math.round(d.restartServingMs),
    catchUpMs: Math.round(d.catchUpMs),
    loadavg1m: d.loadavg[0] ?? Number.NaN,
  };
}

function summary(kind: 'p50' | 'max', details: readonly KillDetail[]): Row {
  const of = (pick: (d: KillDetail) => number): number => {
    const values = details.map(pick);
    return Math.round(kind === 'p50' ? median(values) : Math.max(...values));
  };
  return {
    kill: kind,
    killed: '',
    newLeader: '',
    newLeaderMs: of((d) => d.newLeaderMs),
    firstCreateMs: of((d) => d.firstCreateMs),
    createAttempts: of((d) => d.createAttempts),
    restartServingMs: of((d) => d.restartServingMs),
    catchUpMs: of((d) => d.catchUpMs),
    loadavg1m: kind === 'p50' ? round(median(details.map((d) => d.loadavg[0] ?? Number.NaN)), 2) : '',
  };
}

async function main(): Promise<void> {
  const machine = describeMachine();
  console.log(
    `raft-failover: ${kills} kills, polling every ${pollMs} ms; ${machine.cpus} cpus, load ${machine.loadavgStart.join(' ')}`,
  );
  const details: KillDetail[] = [];
  let cluster: TestCluster | undefined;
  try {
    cluster = await startCluster(3);
    await agreedLeader(cluster.nodes, 3, electionWaitMs);
    for (let kill = 1; kill <= kills; kill++) {
      const d = await measureKill(cluster, kill);
      details.push(d);
      console.log(
        `kill ${kill}: ${d.killed} killed, ${d.newLeader} leads after ${Math.round(d.newLeaderMs)} ms ` +
          `(term ${d.oldTerm} -> ${d.newTerm}), first create ${Math.round(d.firstCreateMs)} ms, ` +
          `caught up ${Math.round(d.catchUpMs)} ms after restart`,
      );
    }
  } finally {
    await stopCluster(cluster);
  }
  machine.loadavgEnd = loadavgNow();
  console.log(
    `load average at start ${machine.loadavgStart.join(' ')}, at end ${machine.loadavgEnd.join(' ')}`,
  );
  const rows: Row[] = [...details.map(toRow), summary('p50', details), summary('max', details)];
  const iso = new Date().toISOString().replace(/[:.]/g, '-');
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  report(join(root, 'bench/results', `raft-failover-${iso}`), rows, {
    machine,
    config: {
      kills,
      pollMs,
      threads: 1,
      raft: 'broker defaults: 50 ms tick, 12 election ticks (randomized 12..23), heartbeat every tick',
    },
    kills: details,
  });
}

await main();
