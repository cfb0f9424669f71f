// Consumer groups on real broker processes (compiled, `--threads 1` each, as TestCluster starts them): a
// single-node broker and a 3-node cluster, both running for the whole benchmark, each figure beside a baseline
// from the same run, because this machine is shared:
//   1. commits: `--committers` (default 20) clients, each committing standalone offsets (`POST
//      /consumer-groups/{g}/offsets/{t}/0`, its own group, offsets 1, 2, 3, ...) one after the other for
//      `--duration` s; on the single node, on a follower of the 3-node cluster (forwarded to the coordinator,
//      the metadata Raft leader) and on the coordinator itself. Baseline: the same clients reading a committed
//      offset (`GET` of the same route: HTTP, and forwarding on a follower, without the metadata log) on the
//      same node; one committer alone on the single node (does concurrency buy throughput?); and 1 s of
//      100 B appends each followed by fdatasync, on the filesystem of the brokers' data dirs (what one durable
//      write costs). Interleaved run by run (the order rotates); commits/s, latency p50/p99, medians of runs;
//   2. rebalance: `--members` (default 100) members registering at once on a topic of `--partitions`
//      (default 100) partitions, then each heartbeating every `--heartbeat-ms` (default 200): time from the
//      first register to the group described as stable (state 'stable', every partition owned by exactly one
//      member), polled every 20 ms at the coordinator, and to the members' own answers agreeing on it; on the
//      single node, and on the cluster with the members spread round-robin over the nodes. Baseline: one round
//      of the same members' heartbeats sent at once to the stable group, and the heartbeat interval;
//   3. delivery: a topic of 6 partitions (replication_factor 3 on the cluster, 1 on the single node) holding
//      `--records` (default 300,000) small records, read from the start by 6 WebSocket members of a new group
//      (`/ws/group`, offset_reset=earliest, a commit frame per owned partition every 200 ms, no permits: the
//      streams run on the socket's buffered-bytes flow control), spread round-robin over the nodes: distinct
//      records/s until every record arrived. Baseline: 6 plain `/ws/consume` sockets, one per partition, from
//      the earliest offset, on the same nodes. Also reported: duplicates (a partition that moves restarts from
//      the last commit), the last assignment frame, and the rate from it on (the group formed).
// The HTTP and WebSocket clients run here, in the benchmark's own process (the brokers are child processes);
// record frames are read for partition and offset only. Writes bench/results/groups-<iso>.json and .md and
// prints the table.
// Usage: node --import tsx bench/groups.ts [--quick] [--runs 3] [--duration 5] [--committers 20]
//        [--members 100] [--partitions 100] [--heartbeat-ms 200] [--records 300000]
// Not a test: the numbers depend on the machine and its load. Runs on the main thread of its own process.
import { execFileSync } from 'node:child_process';
import { closeSync, fdatasyncSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import WebSocket from 'ws';
import {
  agreedLeader,
  armWatchdog,
  type ClusterNode,
  describeMachine,
  intFlag,
  loadavgNow,
  median,
  percentile,
  startCluster,
  stopCluster,
  type TestCluster,
} from './lib/cluster.js';
import { type Answer, Failures, call as httpCall } from './lib/http.js';
import {
  baseOf,
  createReplicatedTopic,
  fullyInSync,
  partitionView,
  pollPartition,
  sleepMs,
} from './lib/replicas.js';
import { root } from './lib/servers.js';
import { report } from './lib/table.js';

const quick = process.argv.includes('--quick');
const runs = intFlag('runs', quick ? 1 : 3);
const durationS = intFlag('duration', quick ? 2 : 5);
const committers = intFlag('committers', 20);
const members = intFlag('members', 100);
const rebalancePartitions = intFlag('partitions', 100);
const heartbeatMs = intFlag('heartbeat-ms', 200);
const deliveryRecords = intFlag('records', quick ? 60_000 : 300_000);
/** Records in the commit topic's one partition: commits name offsets up to here (the high watermark). */
const commitTopicRecords = 100_000;
const deliveryPartitions = 6;
const deliveryMembers = 6;
const commitFrameIntervalMs = 200;
const describePollMs = 20;
const produceBatchRecords = 1000;
const produceWorkers = 4;
/** Bounds on every phase: beyond these the broker is broken, not slow. */
const requestTimeoutMs = 15_000;
const topicReadyWaitMs = 60_000;
const rebalanceWaitMs = 60_000;
/** After the group is described stable, how long the members' own answers may take to agree. */
const settleWaitMs = 5_000;
const deliveryWaitMs = 180_000;
/** The whole benchmark; past it everything started is killed and the process exits 1. */
const totalBudgetMs = (quick ? 12 : 40) * 60_000;

type Row = Record<string, unknown>;
const columns = ['scenario', 'per s', 'p50 ms', 'p99 ms', 'ms', 'vs baseline', 'errors', 'detail'] as const;
type Column = (typeof columns)[number];

/** Every column in the same order on every row, so that the table's columns read left to right as listed. */
function row(cells: Partial<Record<Column, string | number>>): Row {
  return Object.fromEntries(columns.map((c) => [c, cells[c]]));
}

// ------------------------------------------------------------------------------------------------------------
// HTTP and topics.

/** One request with this benchmark's deadline (see lib/http.ts). */
function call(
  base: string,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
  timeoutMs = requestTimeoutMs,
): Promise<Answer> {
  return httpCall(base, method, path, body, timeoutMs);
}

/** Creates the topic and waits until every partition has a leader, a full ISR, and `replicas` replicas. */
async function readyTopic(
  cluster: TestCluster,
  name: string,
  partitions: number,
  replicas: number,
): Promise<void> {
  const any = cluster.running()[0]!;
  await createReplicatedTopic(any, name, partitions, replicas);
  for (let p = 0; p < partitions; p++) {
    await pollPartition(`${name}-${p} to have a full ISR`, any, name, p, topicReadyWaitMs, 50, (v) =>
      fullyInSync(v) && v.replicas.length === replicas ? true : undefined,
    );
  }
}

/**
 * Appends `perPartition` records to every partition by batch produce to each partition's leader (one partition
 * per request, `produceWorkers` requests at a time), then waits until each partition's high watermark covers
 * them on a full ISR.
 */
async function preload(
  cluster: TestCluster,
  topic: string,
  partitions: number,
  perPartition: number,
): Promise<number> {
  const startedMs = performance.now();
  const any = cluster.running()[0]!;
  const jobs: { base: string; body: string }[] = [];
  for (let p = 0; p < partitions; p++) {
    const view = await partitionView(any, topic, p);
    if (view?.leader === null || view?.leader === undefined) throw new Error(`${topic}-${p} has no leader`);
    const base = baseOf(cluster.node(view.leader));
    for (let done = 0; done < perPartition; done += produceBatchRecords) {
      const count = Math.min(produceBatchRecords, perPartition - done);
      const records = Array.from({ length: count }, (_, i) => ({
        value: `r-${String(done + i).padStart(8, '0')}`,
        partition: p,
      }));
      jobs.push({ base, body: JSON.stringify({ records }) });
    }
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const job = jobs[next++]!;
      const response = await fetch(`${job.base}/topics/${topic}/records`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: job.body,
        signal: AbortSignal.timeout(30_000),
      });
      const text = await response.text();
      if (response.status !== 200 && response.status !== 201)
        throw new Error(`batch produce to ${topic} answered ${response.status}: ${text.slice(0, 300)}`);
      const answer = JSON.parse(text) as { offsets: { error_code?: number | null }[] };
      const failed = answer.offsets.find((o) => o.error_code !== undefined && o.error_code !== null);
      if (failed !== undefined) throw new Error(`batch produce refused a record: ${JSON.stringify(failed)}`);
    }
  };
  await Promise.all(Array.from({ length: produceWorkers }, worker));
  for (let p = 0; p < partitions; p++) {
    await pollPartition(`${topic}-${p} to hold ${perPartition} records`, any, topic, p, 60_000, 50, (v) =>
      fullyInSync(v) && v.high_watermark === perPartition ? true : undefined,
    );
  }
  return performance.now() - startedMs;
}

// ------------------------------------------------------------------------------------------------------------
// 1. Commits per second and their latency.

interface LoadRun {
  readonly okPerS: number;
  readonly ok: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly failures: Record<string, number>;
  readonly failureSamples: string[];
  /** Commits that named an offset from the start again because the client reached the high watermark. */
  readonly wrapped: number;
  readonly loadavg1m: number;
}

/**
 * `clients` closed loops, each sending one request after the other for `durationS` s; `send(client, n)` makes
 * the client's n-th request. Latency of the successful requests, client side (fetch to the end of the body).
 */
async function closedLoop(
  clients: number,
  send: (client: number, n: number) => Promise<Answer>,
  wraps: () => number,
): Promise<LoadRun> {
  const latenciesMs: number[] = [];
  const failures = new Failures();
  const startedMs = performance.now();
  const endMs = startedMs + durationS * 1000;
  const loop = async (client: number): Promise<void> => {
    for (let n = 0; performance.now() < endMs; n++) {
      const sentMs = performance.now();
      const answer = await send(client, n);
      if (answer.kind === '') latenciesMs.push(performance.now() - sentMs);
      else {
        failures.note(answer.kind, answer.text);
        await sleepMs(20);
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, i) => loop(i)));
  const elapsedS = (performance.now() - startedMs) / 1000;
  latenciesMs.sort((a, b) => a - b);
  return {
    okPerS: latenciesMs.length / elapsedS,
    ok: latenciesMs.length,
    p50Ms: percentile(latenciesMs, 0.5),
    p99Ms: percentile(latenciesMs, 0.99),
    maxMs: latenciesMs[latenciesMs.length - 1] ?? Number.NaN,
    failures: failures.byKind,
    failureSamples: failures.samples,
    wrapped: wraps(),
    loadavg1m: loadavgNow()[0] ?? Number.NaN,
  };
}

interface FsyncRun {
  readonly perS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/**
 * Baseline for one durable write: appends of 100 bytes, each followed by fdatasync, to one file in `dir` (the
 * filesystem of the brokers' data dirs), one after the other for `ms`. Blocks this thread; the brokers idle.
 */
function fsyncLoop(dir: string, ms: number): FsyncRun {
  const path = join(dir, 'fsync-baseline');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(100, 120);
  const latenciesMs: number[] = [];
  const startedMs = performance.now();
  try {
    while (performance.now() - startedMs < ms) {
      const t = performance.now();
      writeSync(fd, chunk);
      fdatasyncSync(fd);
      latenciesMs.push(performance.now() - t);
    }
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
  const elapsedS = (performance.now() - startedMs) / 1000;
  latenciesMs.sort((a, b) => a - b);
  return {
    perS: latenciesMs.length / elapsedS,
    p50Ms: percentile(latenciesMs, 0.5),
    p99Ms: percentile(latenciesMs, 0.99),
  };
}

type Target = 'single' | 'follower' | 'coordinator';
type What = 'commit' | 'read' | 'serial';
/** `serial`: one committer alone, on the single node: does concurrency buy throughput? */
type CommitKey = `${Target}-${'commit' | 'read'}` | 'single-serial';
const targets: readonly Target[] = ['single', 'follower', 'coordinator'];
const targetLabels: Record<Target, string> = {
  single: '1 node',
  follower: '3 nodes, sent to a follower (forwarded to the coordinator)',
  coordinator: '3 nodes, sent to the coordinator',
};
const commitTopic = 'commit-topic';

interface CommitPhase {
  readonly nodes: Record<Target, string>;
  readonly raw: Record<CommitKey, LoadRun[]>;
  readonly fsync: FsyncRun[];
}

async function measureCommits(
  single: TestCluster,
  cluster: TestCluster,
  coordinator: string,
): Promise<CommitPhase> {
  const coordinatorNode = cluster.node(coordinator);
  const followerNode = cluster.nodes.find((n) => n.id !== coordinator)!;
  const nodeOf: Record<Target, ClusterNode> = {
    single: single.nodes[0]!,
    follower: followerNode,
    coordinator: coordinatorNode,
  };
  await readyTopic(single, commitTopic, 1, 1);
  await readyTopic(cluster, commitTopic, 1, 3);
  const loadSingleMs = await preload(single, commitTopic, 1, commitTopicRecords);
  const loadClusterMs = await preload(cluster, commitTopic, 1, commitTopicRecords);
  console.log(
    `commits: ${commitTopicRecords} records loaded in ${Math.round(loadSingleMs)} ms (1 node), ${Math.round(loadClusterMs)} ms (3 nodes, RF 3); coordinator ${coordinator}, follower ${followerNode.id}`,
  );
  // The groups the read baseline asks for, one per client, committed once beforehand (the same groups on
  // both targets of the cluster: a follower forwards, so both read the coordinator's registry).
  for (const [label, node] of [
    ['single', nodeOf.single],
    ['cluster', coordinatorNode],
  ] as const) {
    for (let i = 0; i < committers; i++) {
      const answer = await call(baseOf(node), 'POST', `/consumer-groups/read-${i}/offsets/${commitTopic}/0`, {
        offset: 1,
      });
      if (answer.kind !== '') throw new Error(`commit for the read baseline on ${label}: ${answer.text}`);
    }
  }
  const keys: CommitKey[] = [
    ...targets.flatMap((t) => [`${t}-commit` as const, `${t}-read` as const]),
    'single-serial',
  ];
  const raw = Object.fromEntries(keys.map((k) => [k, []])) as unknown as Record<CommitKey, LoadRun[]>;
  const fsync: FsyncRun[] = [];
  const fsyncDir = dirname(single.nodes[0]!.dataDir);
  for (let run = 0; run < runs; run++) {
    const f = fsyncLoop(fsyncDir, 1000);
    fsync.push(f);
    console.log(
      `  run ${run + 1} fsync baseline: ${Math.round(f.perS)}/s, p50 ${f.p50Ms.toFixed(2)} ms, p99 ${f.p99Ms.toFixed(2)} ms`,
    );
    const order = [...keys.slice(run % keys.length), ...keys.slice(0, run % keys.length)];
    for (const key of order) {
      const [target, what] = key.split('-') as [Target, What];
      const base = baseOf(nodeOf[target]);
      let wrapped = 0;
      const result =
        what !== 'read'
          ? await closedLoop(
              what === 'serial' ? 1 : committers,
              (client, n) => {
                // Offsets go up by one per request; past the high watermark they start again from 1.
                if (n + 1 > commitTopicRecords) wrapped++;
                const offset = (n % commitTopicRecords) + 1;
                return call(
                  base,
                  'POST',
                  `/consumer-groups/c-${key}-r${run}-${client}/offsets/${commitTopic}/0`,
                  {
                    offset,
                  },
                );
              },
              () => wrapped,
            )
          : await closedLoop(
              committers,
              (client) => call(base, 'GET', `/consumer-groups/read-${client}/offsets/${commitTopic}/0`),
              () => 0,
            );
      raw[key].push(result);
      const failed = Object.values(result.failures).reduce((n, v) => n + v, 0);
      console.log(
        `  run ${run + 1} ${key}: ${Math.round(result.okPerS)}/s, p50 ${result.p50Ms.toFixed(1)} ms, p99 ${result.p99Ms.toFixed(1)} ms, failures ${failed}${failed > 0 ? ` ${JSON.stringify(result.failures)}` : ''}, load ${result.loadavg1m}`,
      );
      for (const sample of result.failureSamples.slice(0, 3)) console.log(`    ${sample}`);
      await sleepMs(300);
    }
  }
  return { nodes: { single: nodeOf.single.id, follower: followerNode.id, coordinator }, raw, fsync };
}

function commitRows(phase: CommitPhase): Row[] {
  const { raw } = phase;
  const med = (key: CommitKey, field: 'okPerS' | 'p50Ms' | 'p99Ms'): number =>
    median(raw[key].map((r) => r[field]));
  const fails = (key: CommitKey): number =>
    raw[key].reduce((n, r) => n + Object.values(r.failures).reduce((m, v) => m + v, 0), 0);
  const perRun = (a: CommitKey, b: CommitKey): string =>
    raw[a].map((r, i) => (r.okPerS / raw[b][i]!.okPerS).toFixed(2)).join(' / ');
  const ratio = (a: CommitKey, b: CommitKey): string => (med(a, 'okPerS') / med(b, 'okPerS')).toFixed(2);
  const fsyncPerS = median(phase.fsync.map((f) => f.perS));
  const rows: Row[] = [];
  rows.push(
    row({
      scenario:
        "baseline: 100 B append + fdatasync, one after the other for 1 s, on the brokers' data filesystem",
      'per s': Math.round(fsyncPerS),
      'p50 ms': median(phase.fsync.map((f) => f.p50Ms)).toFixed(2),
      'p99 ms': median(phase.fsync.map((f) => f.p99Ms)).toFixed(2),
      detail: `runs: ${phase.fsync.map((f) => `${Math.round(f.perS)}/s p99 ${f.p99Ms.toFixed(2)}`).join(' / ')}`,
    }),
  );
  rows.push(
    row({
      scenario: `commit, 1 committer alone x ${durationS} s: 1 node`,
      'per s': Math.round(med('single-serial', 'okPerS')),
      'p50 ms': med('single-serial', 'p50Ms').toFixed(1),
      'p99 ms': med('single-serial', 'p99Ms').toFixed(1),
      'vs baseline': `${committers} committers get ${ratio('single-commit', 'single-serial')}x its throughput (runs ${perRun('single-commit', 'single-serial')})`,
      errors: fails('single-serial'),
      detail: `runs: ${raw['single-serial'].map((r) => `${Math.round(r.okPerS)}/s p99 ${r.p99Ms.toFixed(1)}`).join(' / ')}`,
    }),
  );
  for (const target of targets) {
    const commit: CommitKey = `${target}-commit`;
    const read: CommitKey = `${target}-read`;
    const wrapped = raw[commit].reduce((n, r) => n + r.wrapped, 0);
    rows.push(
      row({
        scenario: `commit, ${committers} committers x ${durationS} s: ${targetLabels[target]}`,
        'per s': Math.round(med(commit, 'okPerS')),
        'p50 ms': med(commit, 'p50Ms').toFixed(1),
        'p99 ms': med(commit, 'p99Ms').toFixed(1),
        'vs baseline': `${ratio(commit, read)} of reads (runs ${perRun(commit, read)}); ${(med(commit, 'okPerS') / fsyncPerS).toFixed(3)} of sequential fdatasyncs${target === 'single' ? '' : `; ${ratio(commit, 'single-commit')} of 1 node (runs ${perRun(commit, 'single-commit')})`}`,
        errors: fails(commit),
        detail: `node ${phase.nodes[target]}; runs: ${raw[commit].map((r) => `${Math.round(r.okPerS)}/s p99 ${r.p99Ms.toFixed(1)} max ${r.maxMs.toFixed(0)} load ${r.loadavg1m}`).join(' / ')}${wrapped > 0 ? `; ${wrapped} commits wrapped to offset 1` : ''}`,
      }),
    );
    rows.push(
      row({
        scenario: `baseline: read of a committed offset (GET), same clients: ${targetLabels[target]}`,
        'per s': Math.round(med(read, 'okPerS')),
        'p50 ms': med(read, 'p50Ms').toFixed(1),
        'p99 ms': med(read, 'p99Ms').toFixed(1),
        errors: fails(read),
        detail: `runs: ${raw[read].map((r) => `${Math.round(r.okPerS)}/s p99 ${r.p99Ms.toFixed(1)}`).join(' / ')}`,
      }),
    );
  }
  rows.push(
    row({
      scenario: 'commit: follower (forwarded) / coordinator',
      'per s': ratio('follower-commit', 'coordinator-commit'),
      'p99 ms': (med('follower-commit', 'p99Ms') / med('coordinator-commit', 'p99Ms')).toFixed(2),
      detail: `throughput per run ${perRun('follower-commit', 'coordinator-commit')}; p50 ${(med('follower-commit', 'p50Ms') / med('coordinator-commit', 'p50Ms')).toFixed(2)}`,
    }),
  );
  return rows;
}

// ------------------------------------------------------------------------------------------------------------
// 2. Rebalance of `members` members joining at once.

interface MemberView {
  readonly consumer_id: string;
  readonly assignments: Record<string, number[]>;
  readonly target: Record<string, number[]>;
}

interface GroupView {
  readonly state: string;
  readonly generation: number;
  readonly members: MemberView[];
}

/** Every partition owned by exactly one member and nothing else owned; undefined when so, else why not. */
function ownershipProblem(
  owned: readonly (Record<string, readonly number[]> | undefined)[],
  topic: string,
  partitions: number,
): string | undefined {
  const owners = new Uint16Array(partitions);
  for (const assignments of owned) {
    if (assignments === undefined) return 'a member has no answer yet';
    for (const [t, list] of Object.entries(assignments)) {
      if (t !== topic) return `owns a partition of ${t}`;
      for (const p of list) {
        if (p < 0 || p >= partitions) return `owns partition ${p}`;
        owners[p]!++;
      }
    }
  }
  for (let p = 0; p < partitions; p++) if (owners[p] !== 1) return `partition ${p} has ${owners[p]} owners`;
  return undefined;
}

interface RebalanceRun {
  readonly group: string;
  /** First register sent to the first describe (at the coordinator) answering stable. */
  readonly stableMs: number;
  /** First register sent to the first moment every member's latest answer agreed (one generation, every partition once). */
  readonly settledMs: number;
  readonly registerP50Ms: number;
  readonly registerP99Ms: number;
  readonly registerMaxMs: number;
  /** The last register answered, from the first sent. */
  readonly allRegisteredMs: number;
  readonly generation: number;
  readonly heartbeats: number;
  /** Time for one heartbeat from every member sent at once to the stable group, all answered. */
  readonly heartbeatRoundMs: number;
  readonly heartbeatRoundP99Ms: number;
  readonly failures: Record<string, number>;
  readonly failureSamples: string[];
  /** Describe answers seen: [ms since the first register, state, generation, members]. */
  readonly describes: [number, string, number, number][];
  readonly loadavg1m: number;
}

async function rebalanceRun(
  bases: readonly string[],
  describeBase: string,
  group: string,
  topic: string,
): Promise<RebalanceRun> {
  const failures = new Failures();
  const latest: (
    | { generation: number; rebalance: boolean; assignments: Record<string, number[]> }
    | undefined
  )[] = new Array(members).fill(undefined);
  const registerMs: number[] = [];
  let heartbeats = 0;
  let stop = false;
  let settledAtMs = Number.NaN;
  let lastRegisteredAtMs = Number.NaN;
  const checkSettled = (): void => {
    if (!Number.isNaN(settledAtMs)) return;
    const first = latest[0];
    if (first === undefined) return;
    for (const answer of latest) {
      // A `rebalance: true` answer carries the member's new assignment too; it only asks for a heartbeat soon.
      if (answer === undefined || answer.generation !== first.generation) return;
    }
    if (
      ownershipProblem(
        latest.map((a) => a?.assignments),
        topic,
        rebalancePartitions,
      ) === undefined
    )
      settledAtMs = performance.now();
  };
  const adopt = (member: number, text: string): void => {
    const body = JSON.parse(text) as {
      generation: number;
      rebalance?: boolean;
      assignments: Record<string, number[]>;
    };
    latest[member] = {
      generation: body.generation,
      rebalance: body.rebalance === true,
      assignments: body.assignments,
    };
    checkSettled();
  };
  const registerBody = (member: number) => ({ consumer_id: `m${member}`, topics: [topic] });
  const startMs = performance.now();
  const member = async (i: number): Promise<void> => {
    const base = bases[i % bases.length]!;
    for (;;) {
      const sentMs = performance.now();
      const answer = await call(base, 'POST', `/consumer-groups/${group}/register`, registerBody(i));
      if (answer.kind === '') {
        registerMs.push(performance.now() - sentMs);
        lastRegisteredAtMs = performance.now();
        adopt(i, answer.text);
        break;
      }
      failures.note(`register ${answer.kind}`, answer.text);
      if (stop) return;
      await sleepMs(heartbeatMs);
    }
    let nextMs = performance.now() + heartbeatMs;
    while (!stop) {
      const waitMs = nextMs - performance.now();
      if (waitMs > 0) await sleepMs(waitMs);
      if (stop) break;
      // Every heartbeatMs, start to start; a late answer moves the next one, never bunches them.
      nextMs = Math.max(nextMs + heartbeatMs, performance.now());
      heartbeats++;
      const answer = await call(base, 'POST', `/consumer-groups/${group}/heartbeat`, {
        consumer_id: `m${i}`,
      });
      if (answer.kind === '') adopt(i, answer.text);
      else {
        failures.note(`heartbeat ${answer.kind}`, answer.text);
        if (answer.status === 404) {
          const again = await call(base, 'POST', `/consumer-groups/${group}/register`, registerBody(i));
          if (again.kind === '') adopt(i, again.text);
          else failures.note(`register ${again.kind}`, again.text);
        }
      }
    }
  };
  const loops = Array.from({ length: members }, (_, i) => member(i));
  const describes: [number, string, number, number][] = [];
  let stableAtMs = Number.NaN;
  try {
    const deadlineMs = startMs + rebalanceWaitMs;
    let last = '';
    while (Number.isNaN(stableAtMs)) {
      if (performance.now() > deadlineMs)
        throw new Error(
          `${group}: not stable after ${rebalanceWaitMs} ms; last describe ${last.slice(0, 2000)}`,
        );
      const polledMs = performance.now();
      const answer = await call(describeBase, 'GET', `/consumer-groups/${group}`);
      if (answer.kind === '') {
        last = answer.text;
        const view = JSON.parse(answer.text) as GroupView;
        const atMs = performance.now();
        const previous = describes[describes.length - 1];
        if (
          previous === undefined ||
          previous[1] !== view.state ||
          previous[2] !== view.generation ||
          previous[3] !== view.members.length
        )
          describes.push([Math.round(atMs - startMs), view.state, view.generation, view.members.length]);
        if (
          view.state === 'stable' &&
          view.members.length === members &&
          ownershipProblem(
            view.members.map((m) => m.assignments),
            topic,
            rebalancePartitions,
          ) === undefined
        )
          stableAtMs = atMs;
      } else if (answer.status !== 404) failures.note(`describe ${answer.kind}`, answer.text);
      const leftMs = describePollMs - (performance.now() - polledMs);
      if (Number.isNaN(stableAtMs) && leftMs > 0) await sleepMs(leftMs);
    }
    // The members learn it from their answers, at most a heartbeat interval later.
    const settleDeadlineMs = performance.now() + settleWaitMs;
    while (Number.isNaN(settledAtMs) && performance.now() < settleDeadlineMs) await sleepMs(5);
  } finally {
    stop = true;
    await Promise.all(loops);
  }
  // Baseline: one heartbeat of every member sent at once, to the group as it is now (stable, nothing moves).
  const roundStartMs = performance.now();
  const roundMs: number[] = [];
  await Promise.all(
    Array.from({ length: members }, async (_, i) => {
      const sentMs = performance.now();
      const answer = await call(bases[i % bases.length]!, 'POST', `/consumer-groups/${group}/heartbeat`, {
        consumer_id: `m${i}`,
      });
      if (answer.kind === '') roundMs.push(performance.now() - sentMs);
      else failures.note(`round heartbeat ${answer.kind}`, answer.text);
    }),
  );
  const heartbeatRoundMs = performance.now() - roundStartMs;
  const finalView = JSON.parse(
    (await call(describeBase, 'GET', `/consumer-groups/${group}`)).text,
  ) as GroupView;
  // Every member leaves, so that the group is empty before the next run.
  await Promise.all(
    Array.from({ length: members }, async (_, i) => {
      const answer = await call(bases[i % bases.length]!, 'POST', `/consumer-groups/${group}/leave`, {
        consumer_id: `m${i}`,
      });
      if (answer.kind !== '') failures.note(`leave ${answer.kind}`, answer.text);
    }),
  );
  registerMs.sort((a, b) => a - b);
  roundMs.sort((a, b) => a - b);
  return {
    group,
    stableMs: stableAtMs - startMs,
    settledMs: settledAtMs - startMs,
    registerP50Ms: percentile(registerMs, 0.5),
    registerP99Ms: percentile(registerMs, 0.99),
    registerMaxMs: registerMs[registerMs.length - 1] ?? Number.NaN,
    allRegisteredMs: lastRegisteredAtMs - startMs,
    generation: finalView.generation,
    heartbeats,
    heartbeatRoundMs,
    heartbeatRoundP99Ms: percentile(roundMs, 0.99),
    failures: failures.byKind,
    failureSamples: failures.samples,
    describes,
    loadavg1m: loadavgNow()[0] ?? Number.NaN,
  };
}

type RebalanceKey = 'single' | 'cluster';
const rebalanceTopic = 'rebalance-topic';

async function measureRebalance(
  single: TestCluster,
  cluster: TestCluster,
  coordinator: string,
): Promise<Record<RebalanceKey, RebalanceRun[]>> {
  // The group protocol does not touch the data: replication factor 1 on both keeps the cluster quiet.
  await readyTopic(single, rebalanceTopic, rebalancePartitions, 1);
  await readyTopic(cluster, rebalanceTopic, rebalancePartitions, 1);
  const raw: Record<RebalanceKey, RebalanceRun[]> = { single: [], cluster: [] };
  for (let run = 0; run < runs; run++) {
    const order: RebalanceKey[] = run % 2 === 0 ? ['single', 'cluster'] : ['cluster', 'single'];
    for (const key of order) {
      const result =
        key === 'single'
          ? await rebalanceRun(
              [baseOf(single.nodes[0]!)],
              baseOf(single.nodes[0]!),
              `rb-single-r${run}`,
              rebalanceTopic,
            )
          : await rebalanceRun(
              cluster.nodes.map(baseOf),
              baseOf(cluster.node(coordinator)),
              `rb-cluster-r${run}`,
              rebalanceTopic,
            );
      raw[key].push(result);
      const failed = Object.values(result.failures).reduce((n, v) => n + v, 0);
      console.log(
        `  run ${run + 1} ${key}: stable ${Math.round(result.stableMs)} ms, members agree ${Math.round(result.settledMs)} ms, generation ${result.generation}, ${result.heartbeats} heartbeats, registers p50 ${result.registerP50Ms.toFixed(1)} p99 ${result.registerP99Ms.toFixed(1)} ms, heartbeat round ${Math.round(result.heartbeatRoundMs)} ms, failures ${failed}${failed > 0 ? ` ${JSON.stringify(result.failures)}` : ''}, load ${result.loadavg1m}`,
      );
      console.log(
        `    describes: ${result.describes.map((d) => `${d[0]}ms ${d[1]} g${d[2]} ${d[3]}m`).join(', ')}`,
      );
      for (const sample of result.failureSamples.slice(0, 3)) console.log(`    ${sample}`);
      await sleepMs(500);
    }
  }
  return raw;
}

function rebalanceRows(raw: Record<RebalanceKey, RebalanceRun[]>): Row[] {
  const rows: Row[] = [];
  const med = (key: RebalanceKey, field: keyof RebalanceRun): number =>
    median(raw[key].map((r) => r[field] as number));
  const labels: Record<RebalanceKey, string> = {
    single: '1 node',
    cluster: '3 nodes, members round-robin over the nodes',
  };
  for (const key of ['single', 'cluster'] as const) {
    const failed = raw[key].reduce((n, r) => n + Object.values(r.failures).reduce((m, v) => m + v, 0), 0);
    rows.push(
      row({
        scenario: `rebalance: ${members} members register at once (${rebalancePartitions} partitions), heartbeat every ${heartbeatMs} ms: ${labels[key]}; ms = first register -> described stable`,
        ms: Math.round(med(key, 'stableMs')),
        'p50 ms': med(key, 'registerP50Ms').toFixed(1),
        'p99 ms': med(key, 'registerP99Ms').toFixed(1),
        'vs baseline': `${(med(key, 'stableMs') / heartbeatMs).toFixed(1)} heartbeat intervals; ${(med(key, 'stableMs') / med(key, 'heartbeatRoundMs')).toFixed(1)} heartbeat rounds${key === 'cluster' ? `; ${(med('cluster', 'stableMs') / med('single', 'stableMs')).toFixed(2)} of 1 node` : ''}`,
        errors: failed,
        detail: `p50/p99 = register latency; runs (stable / members agree / all registered, ms): ${raw[key].map((r) => `${Math.round(r.stableMs)} / ${Math.round(r.settledMs)} / ${Math.round(r.allRegisteredMs)}`).join(' ; ')}; generation ${raw[key].map((r) => r.generation).join('/')}; heartbeats ${raw[key].map((r) => r.heartbeats).join('/')}; load ${raw[key].map((r) => r.loadavg1m).join('/')}`,
      }),
    );
    rows.push(
      row({
        scenario: `baseline: one heartbeat of each of the ${members} members sent at once to the stable group: ${labels[key]}`,
        ms: Math.round(med(key, 'heartbeatRoundMs')),
        'p99 ms': med(key, 'heartbeatRoundP99Ms').toFixed(1),
        detail: `ms = all answered; runs ${raw[key].map((r) => Math.round(r.heartbeatRoundMs)).join(' / ')}`,
      }),
    );
  }
  return rows;
}

// ------------------------------------------------------------------------------------------------------------
// 3. Records delivered to a 6-member group, against plain consume sockets.

interface DeliveryRun {
  readonly records: number;
  readonly duplicates: number;
  /** Sockets opened to the last distinct record received. */
  readonly allMs: number;
  readonly recordsPerS: number;
  readonly firstRecordMs: number;
  /** Group only: sockets opened to every member holding its final (non-empty) assignment, and the generation. */
  readonly assignedMs: number;
  /**
   * Group only: distinct records/s from the last assignment frame to the last record, when by then every
   * member owned a partition (the group had formed before the end); NaN otherwise.
   */
  readonly formedPerS: number;
  /** Records received before the last assignment frame (delivered while the group was still forming). */
  readonly beforeFormedRecords: number;
  readonly assignmentFrames: number;
  /** Group only: members that had an assignment frame (possibly empty) when the last record arrived. */
  readonly membersAssigned: number;
  readonly generation: number;
  readonly commitsAnswered: number;
  readonly errorFrames: Record<string, number>;
  readonly errorSamples: string[];
  /** Group only: every assignment frame before the last record: [ms since the sockets opened, member, generation, partitions]. */
  readonly assignments: [number, string, number, number[]][];
  readonly closes: string[];
  readonly loadavg1m: number;
}

/** Reads `"name":<integer>` from a frame without parsing the rest. */
function intField(text: string, name: string): number {
  const at = text.indexOf(`"${name}":`);
  if (at < 0) return Number.NaN;
  let i = at + name.length + 3;
  let value = 0;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) break;
    value = value * 10 + (c - 48);
  }
  return value;
}

async function deliveryRun(
  kind: 'group' | 'consume',
  bases: readonly string[],
  topic: string,
  group: string,
  perPartition: number,
): Promise<DeliveryRun> {
  const total = perPartition * deliveryPartitions;
  const seen = Array.from({ length: deliveryPartitions }, () => new Uint8Array(perPartition));
  let distinct = 0;
  let duplicates = 0;
  let firstRecordAtMs = Number.NaN;
  let doneAtMs = Number.NaN;
  let assignmentFrames = 0;
  let commitsAnswered = 0;
  let generation = 0;
  const errorFrames = new Failures();
  const closes: string[] = [];
  const owned: number[][] = Array.from({ length: deliveryMembers }, () => []);
  const lastAssignmentAtMs: number[] = new Array(deliveryMembers).fill(Number.NaN);
  let distinctAtLastAssignment = 0;
  const assignmentLog: [number, string, number, number[]][] = [];
  /** Every member owned a partition when the last record arrived. */
  let formedAtDone = false;
  const positions: Map<number, number>[] = Array.from({ length: deliveryMembers }, () => new Map());
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const sockets: WebSocket[] = [];
  const timers: NodeJS.Timeout[] = [];
  const startMs = performance.now();
  const onRecord = (member: number, partition: number, offset: number): void => {
    if (Number.isNaN(firstRecordAtMs)) firstRecordAtMs = performance.now();
    const bits = seen[partition];
    if (bits === undefined || offset < 0 || offset >= perPartition) {
      errorFrames.note('record outside the load', `partition ${partition} offset ${offset}`);
      return;
    }
    if (bits[offset] === 1) duplicates++;
    else {
      bits[offset] = 1;
      distinct++;
    }
    if (kind === 'group') positions[member]!.set(partition, offset + 1);
    if (distinct === total && Number.isNaN(doneAtMs)) {
      doneAtMs = performance.now();
      formedAtDone = owned.every((o) => o.length > 0);
      finish();
    }
  };
  const count = kind === 'group' ? deliveryMembers : deliveryPartitions;
  try {
    for (let i = 0; i < count; i++) {
      const wsBase = bases[i % bases.length]!.replace('http', 'ws');
      const url =
        kind === 'group'
          ? `${wsBase}/ws/group/${group}?topics=${topic}&offset_reset=earliest&consumer_id=w${i}`
          : `${wsBase}/ws/consume/${topic}?partition=${i}&offset=earliest`;
      const ws = new WebSocket(url, { perMessageDeflate: false });
      sockets.push(ws);
      // The handler is attached before the handshake ends: frames can arrive in the same read as its answer.
      ws.on('message', (data: WebSocket.RawData) => {
        const text = (data as Buffer).toString('utf8');
        if (kind === 'consume') {
          if (text.startsWith('{"partition":'))
            return onRecord(i, intField(text, 'partition'), intField(text, 'offset'));
          return errorFrames.note('consume frame', text);
        }
        if (text.startsWith('{"type":"record"'))
          return onRecord(i, intField(text, 'partition'), intField(text, 'offset'));
        const frame = JSON.parse(text) as {
          type?: string;
          generation?: number;
          assignments?: Record<string, number[]>;
          error_code?: number;
          message?: string;
        };
        if (frame.type === 'assignment') {
          assignmentFrames++;
          generation = Math.max(generation, frame.generation ?? 0);
          owned[i] = frame.assignments?.[topic] ?? [];
          for (const p of positions[i]!.keys()) if (!owned[i]!.includes(p)) positions[i]!.delete(p);
          // Frames after the last record (the sockets are closing) say nothing about the delivery.
          if (Number.isNaN(doneAtMs)) {
            lastAssignmentAtMs[i] = performance.now();
            distinctAtLastAssignment = distinct;
            assignmentLog.push([
              Math.round(lastAssignmentAtMs[i]! - startMs),
              `w${i}@${bases[i % bases.length]!.replace('http://', '')}`,
              frame.generation ?? 0,
              owned[i]!,
            ]);
          }
        } else if (frame.type === 'committed') commitsAnswered++;
        else errorFrames.note(`${frame.type ?? 'frame'} ${frame.error_code ?? ''}`.trim(), text);
      });
      ws.on('error', (error) => errorFrames.note('socket error', String(error)));
      ws.on('close', (code, reason) => {
        if (Number.isNaN(doneAtMs)) closes.push(`socket ${i}: ${code} ${reason.toString('utf8')}`);
      });
      if (kind === 'group') {
        // What a consumer does: commit where it got to, per owned partition, every commitFrameIntervalMs.
        const timer = setInterval(() => {
          if (ws.readyState !== WebSocket.OPEN) return;
          for (const [partition, offset] of positions[i]!) {
            ws.send(JSON.stringify({ type: 'commit', topic, partition, offset }));
          }
          positions[i]!.clear();
        }, commitFrameIntervalMs);
        timers.push(timer);
      }
    }
    let deadline: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      deadline = setTimeout(() => resolve('timeout'), deliveryWaitMs);
    });
    const outcome = await Promise.race([finished.then(() => 'done' as const), timeout]);
    clearTimeout(deadline);
    if (outcome === 'timeout')
      throw new Error(
        `${kind} ${group}: ${distinct} of ${total} records after ${deliveryWaitMs} ms; closes ${JSON.stringify(closes)}; errors ${JSON.stringify(errorFrames.byKind)}`,
      );
  } finally {
    for (const timer of timers) clearInterval(timer);
    await Promise.all(
      sockets.map(
        (ws) =>
          new Promise<void>((resolve) => {
            if (ws.readyState === WebSocket.CLOSED) return resolve();
            ws.once('close', () => resolve());
            ws.close(1000);
            setTimeout(() => {
              ws.terminate();
              resolve();
            }, 3_000).unref();
          }),
      ),
    );
  }
  const allMs = doneAtMs - startMs;
  const assignedAtMs = lastAssignmentAtMs.filter((t) => !Number.isNaN(t));
  const assignedMs = assignedAtMs.length === 0 ? Number.NaN : Math.max(...assignedAtMs) - startMs;
  const formed = kind === 'group' && formedAtDone && assignedMs < allMs;
  return {
    records: distinct,
    duplicates,
    allMs,
    recordsPerS: distinct / (allMs / 1000),
    firstRecordMs: firstRecordAtMs - startMs,
    assignedMs,
    formedPerS: formed ? (total - distinctAtLastAssignment) / ((allMs - assignedMs) / 1000) : Number.NaN,
    beforeFormedRecords: kind === 'group' ? distinctAtLastAssignment : 0,
    assignmentFrames,
    membersAssigned: kind === 'group' ? assignedAtMs.length : 0,
    generation,
    commitsAnswered,
    errorFrames: errorFrames.byKind,
    errorSamples: errorFrames.samples,
    assignments: assignmentLog,
    closes,
    loadavg1m: loadavgNow()[0] ?? Number.NaN,
  };
}

type DeliveryKey = 'group-single' | 'consume-single' | 'group-cluster' | 'consume-cluster';
const deliveryTopic = 'delivery-topic';

async function measureDelivery(
  single: TestCluster,
  cluster: TestCluster,
): Promise<{ loadMs: Record<'single' | 'cluster', number>; raw: Record<DeliveryKey, DeliveryRun[]> }> {
  const perPartition = Math.ceil(deliveryRecords / deliveryPartitions);
  await readyTopic(single, deliveryTopic, deliveryPartitions, 1);
  await readyTopic(cluster, deliveryTopic, deliveryPartitions, 3);
  const loadMs = {
    single: await preload(single, deliveryTopic, deliveryPartitions, perPartition),
    cluster: await preload(cluster, deliveryTopic, deliveryPartitions, perPartition),
  };
  console.log(
    `delivery: ${perPartition * deliveryPartitions} records loaded in ${Math.round(loadMs.single)} ms (1 node), ${Math.round(loadMs.cluster)} ms (3 nodes, RF 3)`,
  );
  const raw: Record<DeliveryKey, DeliveryRun[]> = {
    'group-single': [],
    'consume-single': [],
    'group-cluster': [],
    'consume-cluster': [],
  };
  const keys: DeliveryKey[] = ['group-single', 'consume-single', 'group-cluster', 'consume-cluster'];
  for (let run = 0; run < runs; run++) {
    const order = [...keys.slice(run % keys.length), ...keys.slice(0, run % keys.length)];
    for (const key of order) {
      const [kind, where] = key.split('-') as ['group' | 'consume', 'single' | 'cluster'];
      const bases = (where === 'single' ? single : cluster).nodes.map(baseOf);
      const result = await deliveryRun(kind, bases, deliveryTopic, `dl-${where}-r${run}`, perPartition);
      raw[key].push(result);
      const errors = Object.values(result.errorFrames).reduce((n, v) => n + v, 0);
      console.log(
        `  run ${run + 1} ${key}: ${Math.round(result.recordsPerS)} records/s, all in ${Math.round(result.allMs)} ms, first after ${Math.round(result.firstRecordMs)} ms, duplicates ${result.duplicates}${kind === 'group' ? `, ${result.membersAssigned} members assigned, last assignment ${Math.round(result.assignedMs)} ms (${result.beforeFormedRecords} records before it, then ${Math.round(result.formedPerS)}/s), generation ${result.generation}, ${result.assignmentFrames} assignment frames, ${result.commitsAnswered} commits answered` : ''}, error frames ${errors}${errors > 0 ? ` ${JSON.stringify(result.errorFrames)}` : ''}, load ${result.loadavg1m}`,
      );
      for (const close of result.closes) console.log(`    early close: ${close}`);
      for (const sample of result.errorSamples.slice(0, 3)) console.log(`    ${sample}`);
      if (kind === 'group')
        console.log(
          `    assignment frames: ${result.assignments.map(([ms, member, g, parts]) => `${ms}ms ${member} g${g} [${parts.join(',')}]`).join(', ')}`,
        );
      await sleepMs(500);
    }
  }
  return { loadMs, raw };
}

function deliveryRows(raw: Record<DeliveryKey, DeliveryRun[]>): Row[] {
  const med = (key: DeliveryKey, field: keyof DeliveryRun): number =>
    median(raw[key].map((r) => r[field] as number));
  const perRun = (a: DeliveryKey, b: DeliveryKey): string =>
    raw[a].map((r, i) => (r.recordsPerS / raw[b][i]!.recordsPerS).toFixed(2)).join(' / ');
  const ratio = (a: DeliveryKey, b: DeliveryKey): string =>
    (med(a, 'recordsPerS') / med(b, 'recordsPerS')).toFixed(2);
  const rows: Row[] = [];
  const records = raw['group-single'][0]?.records ?? deliveryRecords;
  for (const where of ['single', 'cluster'] as const) {
    const group: DeliveryKey = `group-${where}`;
    const consume: DeliveryKey = `consume-${where}`;
    const label =
      where === 'single'
        ? '1 node, replication_factor 1'
        : '3 nodes, replication_factor 3, sockets round-robin over the nodes';
    const errors = (key: DeliveryKey): number =>
      raw[key].reduce(
        (n, r) => n + Object.values(r.errorFrames).reduce((m, v) => m + v, 0) + r.closes.length,
        0,
      );
    rows.push(
      row({
        scenario: `delivery: ${records} records to ${deliveryMembers} /ws/group members (${deliveryPartitions} partitions): ${label}; per s = distinct records/s`,
        'per s': Math.round(med(group, 'recordsPerS')),
        ms: Math.round(med(group, 'allMs')),
        'vs baseline': `${ratio(group, consume)} of plain consume (runs ${perRun(group, consume)})${where === 'cluster' ? `; ${ratio('group-cluster', 'group-single')} of 1 node` : ''}`,
        errors: errors(group),
        detail: `runs: ${raw[group].map((r) => `${Math.round(r.recordsPerS)}/s, ${r.duplicates} duplicates, first record ${Math.round(r.firstRecordMs)} ms, ${r.membersAssigned} of ${deliveryMembers} members assigned by then, last assignment frame ${Math.round(r.assignedMs)} ms (generation ${r.generation}; ${r.beforeFormedRecords} records before it, ${Number.isNaN(r.formedPerS) ? 'the group formed after the last record' : `${Math.round(r.formedPerS)}/s after`}), ${r.commitsAnswered} commits, load ${r.loadavg1m}`).join(' ; ')}`,
      }),
    );
    rows.push(
      row({
        scenario: `baseline: ${deliveryPartitions} /ws/consume sockets, one per partition, from earliest: ${label}`,
        'per s': Math.round(med(consume, 'recordsPerS')),
        ms: Math.round(med(consume, 'allMs')),
        'vs baseline': where === 'cluster' ? `${ratio('consume-cluster', 'consume-single')} of 1 node` : '',
        errors: errors(consume),
        detail: `runs: ${raw[consume].map((r) => `${Math.round(r.recordsPerS)}/s, first record ${Math.round(r.firstRecordMs)} ms, load ${r.loadavg1m}`).join(' ; ')}`,
      }),
    );
  }
  return rows;
}

// ------------------------------------------------------------------------------------------------------------

async function raftLeaderOf(cluster: TestCluster): Promise<string> {
  return agreedLeader(cluster.nodes, cluster.nodes.length, 30_000);
}

async function main(): Promise<void> {
  const timer = armWatchdog('groups bench', totalBudgetMs);
  const machine = describeMachine();
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  // The compiled broker, as production runs it (TestCluster's processes inherit this environment).
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
  process.env.BROKER_COMPILED = '1';
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
    cwd: root,
    encoding: 'utf8',
  }).trim();
  // Other work in progress in src/ is compiled into what runs; the JSON names it.
  const srcChanges = execFileSync('git', ['status', '--porcelain', 'src', 'workers'], {
    cwd: root,
    encoding: 'utf8',
  })
    .split('\n')
    .filter((l) => l !== '');
  console.log(
    `groups: ${runs} runs; commits ${committers} clients x ${durationS} s; rebalance ${members} members, ${rebalancePartitions} partitions, heartbeat ${heartbeatMs} ms; delivery ${deliveryRecords} records; ${machine.cpus} cpus, load ${machine.loadavgStart.join(' ')}; ${commit}${srcChanges.length > 0 ? ` (+${srcChanges.length} uncommitted src files)` : ''}`,
  );

  const rows: Row[] = [];
  let single: TestCluster | undefined;
  let cluster: TestCluster | undefined;
  let commits: CommitPhase | undefined;
  let rebalance: Record<RebalanceKey, RebalanceRun[]> | undefined;
  let delivery: Awaited<ReturnType<typeof measureDelivery>> | undefined;
  const coordinators: string[] = [];
  try {
    single = await startCluster(1);
    cluster = await startCluster(3);
    const coordinator = await raftLeaderOf(cluster);
    coordinators.push(coordinator);
    console.log(`cluster: coordinator (metadata leader) ${coordinator}`);
    commits = await measureCommits(single, cluster, coordinator);
    rows.push(...commitRows(commits));
    rebalance = await measureRebalance(single, cluster, await raftLeaderOf(cluster));
    rows.push(...rebalanceRows(rebalance));
    delivery = await measureDelivery(single, cluster);
    rows.push(...deliveryRows(delivery.raw));
    // The coordinator must not have moved (a move would make the figures meaningless).
    const after = await raftLeaderOf(cluster);
    coordinators.push(after);
    if (after !== coordinator) console.warn(`groups: the coordinator moved from ${coordinator} to ${after}`);
  } finally {
    await stopCluster(cluster);
    await stopCluster(single);
    clearTimeout(timer);
  }
  machine.loadavgEnd = loadavgNow();
  rows.push(
    row({
      scenario: 'load average (1, 5, 15 min) at start / end',
      detail: `${machine.loadavgStart.join(' ')} / ${machine.loadavgEnd.join(' ')}; ${machine.cpus} x ${machine.cpuModel}`,
    }),
  );
  const iso = new Date().toISOString().replace(/[:.]/g, '-');
  report(join(root, 'bench/results', `groups-${iso}`), rows, {
    commit,
    srcChanges,
    args: { quick, runs, durationS, committers, members, rebalancePartitions, heartbeatMs, deliveryRecords },
    machine,
    coordinators,
    commits,
    rebalance,
    delivery,
  });
}

await main();
