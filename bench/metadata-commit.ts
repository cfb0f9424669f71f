// Metadata commit latency on loopback: client-side latency of topic creation (`POST /topics/<name>` with `{}`,
// one Raft commit each) on the Raft leader of a 3-node cluster, on a follower of it (forwarded to the leader
// over the cluster RPC, answered once the follower applied the entry), and on a 1-node cluster as the
// baseline; then the same leader and the 1-node cluster with `--in-flight` (default 16) creations at once for
// throughput. Every broker is a real process started from source with `--threads 1`.
// The scenarios are interleaved in rounds of `--round` creations, the order rotating each round, so machine
// noise and the growing topic count hit every scenario alike. The whole measurement (fresh clusters included)
// is repeated `--runs` times; the table has one row per run and scenario plus the median over runs.
// Prints the table and writes bench/results/metadata-commit-<iso>.json (raw percentiles, per-request samples,
// the machine and its load average at start and end) and .md.
// Usage: node --import tsx bench/metadata-commit.ts [--count 300] [--runs 3] [--round 50] [--in-flight 16]
//        [--warmup 20]; through npm: npm run bench metadata-commit -- --count=300 (the `=` form)
// Not a test: the numbers depend on the machine and its load. Runs on the main thread of its own process.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  agreedLeader,
  type ClusterNode,
  createTopic,
  describeMachine,
  intFlag,
  loadavgNow,
  median,
  percentile,
  round,
  startCluster,
  statusOf,
  stopCluster,
  type TestCluster,
} from './lib/cluster.js';
import { root } from './lib/servers.js';
import { report } from './lib/table.js';

const count = intFlag('count', 300);
const runs = intFlag('runs', 3);
const roundSize = intFlag('round', 50);
const inFlight = intFlag('in-flight', 16);
const warmup = intFlag('warmup', 20);
/** A run with more failed creations than this is aborted: its latencies would not describe commits. */
const errorsMax = 10;

type ScenarioName = 'leader' | 'follower' | 'single-node' | 'leader concurrent' | 'single-node concurrent';
const scenarioNames: readonly ScenarioName[] = [
  'leader',
  'follower',
  'single-node',
  'leader concurrent',
  'single-node concurrent',
];

interface Samples {
  readonly latenciesMs: number[];
  /** Wall time of the chunks of this scenario, summed. */
  wallMs: number;
  errors: number;
  firstError: string;
}

interface RunDetail {
  run: number;
  loadavgStart: number[];
  loadavgEnd: number[];
  leaderId: string;
  followerId: string;
  /** Rounds after which the leader of the 3-node cluster was another node than before. */
  leaderChanges: number;
  scenarios: Record<string, Record<string, number | number[]>>;
}

/** A type alias, not an interface, so that it is a `Record<string, unknown>` for the table. */
type Row = {
  run: number | 'median';
  scenario: ScenarioName;
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  creationsPerS: number;
  errors: number;
};

interface Target {
  node: ClusterNode;
  concurrent: boolean;
}

/** Creates `names` on the node, one at a time or `inFlight` at a time, and adds what it measured. */
async function runChunk(target: Target, names: readonly string[], into: Samples): Promise<void> {
  const one = async (name: string): Promise<void> => {
    const result = await createTopic(target.node, name);
    if (result.status === 201) {
      into.latenciesMs.push(result.latencyMs);
    } else {
      into.errors++;
      if (into.firstError === '') into.firstError = `${name}: ${result.status} ${result.body.slice(0, 300)}`;
      if (into.errors > errorsMax)
        throw new Error(`more than ${errorsMax} failed creations: ${into.firstError}`);
    }
  };
  const startedMs = performance.now();
  if (!target.concurrent) {
    for (const name of names) await one(name);
  } else {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < names.length) await one(names[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(inFlight, names.length) }, worker));
  }
  into.wallMs += performance.now() - startedMs;
}

async function measureRun(run: number): Promise<{ rows: Row[]; detail: RunDetail }> {
  const loadavgStart = loadavgNow();
  let three: TestCluster | undefined;
  let single: TestCluster | undefined;
  try {
    three = await startCluster(3);
    single = await startCluster(1);
    let leaderId = await agreedLeader(three.nodes, 3, 30_000);
    await agreedLeader(single.nodes, 1, 30_000);
    const leader = three.node(leaderId);
    const follower = three.nodes.find((n) => n.id !== leaderId)!;
    const targets: Record<ScenarioName, Target> = {
      leader: { node: leader, concurrent: false },
      follower: { node: follower, concurrent: false },
      'single-node': { node: single.nodes[0]!, concurrent: false },
      'leader concurrent': { node: leader, concurrent: true },
      'single-node concurrent': { node: single.nodes[0]!, concurrent: true },
    };
    console.log(`run ${run}: leader ${leaderId}, follower ${follower.id}, load ${loadavgStart.join(' ')}`);

    // Warm-up outside the measurement: JIT, HTTP keep-alive connections, the follower's RPC connection.
    for (const name of scenarioNames) {
      const names = Array.from({ length: warmup }, (_, i) => `warm-r${run}-${slug(name)}-${i}`);
      await runChunk(targets[name], names, { latenciesMs: [], wallMs: 0, errors: 0, firstError: '' });
    }

    const samples = new Map<ScenarioName, Samples>(
      scenarioNames.map((n) => [n, { latenciesMs: [], wallMs: 0, errors: 0, firstError: '' }]),
    );
    let leaderChanges = 0;
    const rounds = Math.ceil(count / roundSize);
    for (let r = 0; r < rounds; r++) {
      const size = Math.min(roundSize, count - r * roundSize);
      const order = scenarioNames.map((_, i) => scenarioNames[(i + r) % scenarioNames.length]!);
      for (const name of order) {
        const names = Array.from(
          { length: size },
          (_, i) => `bench-r${run}-${slug(name)}-${r * roundSize + i}`,
        );
        await runChunk(targets[name], names, samples.get(name)!);
      }
      // A leader change would mix forwarded and local commits in one row; count it so the reader knows.
      const view = await statusOf(leader);
      if (view === null || view.raft.leader_id !== leaderId) {
        leaderChanges++;
        leaderId = await agreedLeader(three.nodes, 3, 30_000);
        console.log(`run ${run}: leader changed to ${leaderId} during round ${r + 1}`);
      }
    }

    const rows: Row[] = [];
    const scenarios: RunDetail['scenarios'] = {};
    for (const name of scenarioNames) {
      const s = samples.get(name)!;
      const sorted = [...s.latenciesMs].sort((a, b) => a - b);
      const raw = {
        count: sorted.length,
        errors: s.errors,
        p50Ms: percentile(sorted, 0.5),
        p90Ms: percentile(sorted, 0.9),
        p99Ms: percentile(sorted, 0.99),
        maxMs: sorted[sorted.length - 1] ?? Number.NaN,
        meanMs: sorted.reduce((a, b) => a + b, 0) / sorted.length,
        wallMs: s.wallMs,
        creationsPerS: (sorted.length / s.wallMs) * 1000,
      };
      scenarios[name] = { ...raw, samplesMs: s.latenciesMs.map((v) => round(v, 2)) };
      if (s.errors > 0) console.log(`run ${run} ${name}: ${s.errors} failed, first: ${s.firstError}`);
      rows.push({
        run,
        scenario: name,
        count: raw.count,
        p50Ms: round(raw.p50Ms),
        p90Ms: round(raw.p90Ms),
        p99Ms: round(raw.p99Ms),
        maxMs: round(raw.maxMs),
        creationsPerS: Math.round(raw.creationsPerS),
        errors: raw.errors,
      });
    }
    const detail: RunDetail = {
      run,
      loadavgStart,
      loadavgEnd: loadavgNow(),
      leaderId: leader.id,
      followerId: follower.id,
      leaderChanges,
      scenarios,
    };
    return { rows, detail };
  } finally {
    await stopCluster(single);
    await stopCluster(three);
  }
}

function slug(name: ScenarioName): string {
  return name.replaceAll(' ', '-');
}

async function main(): Promise<void> {
  const machine = describeMachine();
  console.log(
    `metadata-commit: ${count} creations per scenario, ${runs} runs, rounds of ${roundSize}, ` +
      `${inFlight} in flight for the concurrent rows; ${machine.cpus} cpus, load ${machine.loadavgStart.join(' ')}`,
  );
  const rows: Row[] = [];
  const details: RunDetail[] = [];
  for (let run = 1; run <= runs; run++) {
    const { rows: runRows, detail } = await measureRun(run);
    rows.push(...runRows);
    details.push(detail);
  }
  for (const name of scenarioNames) {
    const of = rows.filter((r) => r.scenario === name);
    const med = (pick: (r: Row) => number, digits = 1) => round(median(of.map(pick)), digits);
    rows.push({
      run: 'median',
      scenario: name,
      count: med((r) => r.count, 0),
      p50Ms: med((r) => r.p50Ms),
      p90Ms: med((r) => r.p90Ms),
      p99Ms: med((r) => r.p99Ms),
      maxMs: med((r) => r.maxMs),
      creationsPerS: med((r) => r.creationsPerS, 0),
      errors: of.reduce((a, r) => a + r.errors, 0),
    });
  }
  machine.loadavgEnd = loadavgNow();
  console.log(
    `load average at start ${machine.loadavgStart.join(' ')}, at end ${machine.loadavgEnd.join(' ')}`,
  );
  const iso = new Date().toISOString().replace(/[:.]/g, '-');
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  report(join(root, 'bench/results', `metadata-commit-${iso}`), rows, {
    machine,
    config: { count, runs, roundSize, inFlight, warmup, threads: 1, body: '{}' },
    runs: details,
  });
}

await main();
