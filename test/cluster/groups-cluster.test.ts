// One consumer group across a cluster of real broker processes (issue 13): three brokers, a topic of 6
// partitions with replication factor 3, and 6 members of one group connected round-robin to the three nodes,
// half over HTTP (register, heartbeat, consume, commit) and half over WebSocket (`/ws/group`, commit frames).
// A producer appends with acks=all throughout; one WebSocket member leaves and joins again; then the groups'
// coordinator (the metadata leader) is killed with SIGKILL, and its members go on through the other nodes, as
// clients behind a load balancer would. Checked: at every sampled moment each partition has at most one owner;
// the committed offsets sampled never go backwards; the group owns every partition again within the session
// timeout of the kill; in the end every acknowledged record was consumed at least once, from the committed
// offsets on (no gap).
// Then a checker in the style of Maelstrom's kafka workload runs on the same cluster: clients send, poll,
// commit and list committed offsets at random while a nemesis kills (SIGKILL) and restarts random brokers on a
// schedule drawn from a printed seed (GROUPS_CHECK_SEED replays one). It reports lost writes (acknowledged, not
// in the log at its offset), divergent offsets (two values seen at one offset), non-monotonic polls within one
// member's ownership of a partition, and committed offsets listed below an acknowledged commit.
// Every process started is killed by PID in `after`.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { createPrng } from '../../src/core/prng.js';
import { type ClusterNode, http, TestCluster, waitFor } from './processes.js';
import {
  emptyOutcomes,
  getJson,
  readThrough,
  sleep,
  startProducers,
  type WorkloadNode,
  waitFullyReplicated,
} from './replication-workload.js';

const topic = 'jobs';
const group = 'workers';
const partitions = 6;
const sessionTimeoutMs = 6_000;

let cluster: TestCluster;

before(async () => {
  cluster = await TestCluster.start(3, ['--session-timeout-ms', String(sessionTimeoutMs)]);
});
after(async () => {
  await cluster?.stopAll();
});

/** What every member saw: `partition:offset` consumed, and its successful commits. */
interface Seen {
  readonly consumed: Set<string>;
  readonly errors: Map<string, number>;
}

function note(seen: Seen, what: string): void {
  seen.errors.set(what, (seen.errors.get(what) ?? 0) + 1);
}

/** The base URL of the first running node from `start` on (a client behind a load balancer). */
function baseFrom(start: number): { base: string; index: number } | null {
  for (let k = 0; k < cluster.nodes.length; k++) {
    const index = (start + k) % cluster.nodes.length;
    const base = cluster.nodes[index]!.process?.base;
    if (base !== undefined) return { base, index };
  }
  return null;
}

async function post(base: string, path: string, body: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5_000),
  });
  return { status: response.status, body: await response.json() };
}

/** A member over HTTP: register, heartbeat every 300 ms, consume its partitions from their committed offsets. */
function httpMember(id: string, nodeIndex: number, seen: Seen, running: () => boolean): Promise<void> {
  let node = nodeIndex;
  let generation = -1;
  const positions = new Map<number, number>();
  const assignmentsFrom = (body: any): number[] => (body.assignments?.[topic] ?? []) as number[];
  const adopt = async (base: string, owned: number[]) => {
    for (const p of [...positions.keys()]) if (!owned.includes(p)) positions.delete(p);
    for (const p of owned) {
      if (positions.has(p)) continue;
      const got = await getJson(base, `/consumer-groups/${group}/offsets/${topic}/${p}`);
      if (got.status === 200) positions.set(p, got.body.offset as number);
      else if (got.status === 404) positions.set(p, 0);
      else throw new Error(`committed offset of ${p}: ${got.status}`);
    }
  };
  return (async () => {
    let lastBeat = 0;
    while (running()) {
      const at = baseFrom(node);
      if (at === null) {
        await sleep(100);
        continue;
      }
      node = at.index;
      const base = at.base;
      try {
        if (generation < 0) {
          const joined = await post(base, `/consumer-groups/${group}/register`, {
            consumer_id: id,
            topics: [topic],
          });
          if (joined.status !== 200) {
            note(seen, `register ${joined.status}`);
            await sleep(200);
            continue;
          }
          generation = joined.body.generation;
          positions.clear();
          await adopt(base, assignmentsFrom(joined.body));
          lastBeat = Date.now();
        }
        if (Date.now() - lastBeat >= 300) {
          const beat = await post(base, `/consumer-groups/${group}/heartbeat`, { consumer_id: id });
          lastBeat = Date.now();
          if (beat.status === 404) {
            generation = -1; // the coordinator moved or the session expired: register again
            continue;
          }
          if (beat.status !== 200) {
            note(seen, `heartbeat ${beat.status}`);
            await sleep(100);
            continue;
          }
          generation = beat.body.generation;
          await adopt(base, assignmentsFrom(beat.body));
        }
        let idle = true;
        for (const [p, position] of positions) {
          const got = await getJson(
            base,
            `/topics/${topic}/partitions/${p}/consume?offset=${position}&limit=50`,
          );
          if (got.status !== 200) {
            note(seen, `consume ${got.status}`);
            continue;
          }
          const messages = got.body.messages as { offset: number }[];
          if (messages.length === 0) continue;
          idle = false;
          for (const m of messages) seen.consumed.add(`${p}:${m.offset}`);
          const next = messages[messages.length - 1]!.offset + 1;
          const committed = await post(base, `/consumer-groups/${group}/offsets/${topic}/${p}`, {
            offset: next,
            consumer_id: id,
            generation,
          });
          if (committed.status === 200) positions.set(p, next);
          else {
            note(seen, `commit ${committed.status}`);
            if (committed.status === 404) generation = -1;
            break;
          }
        }
        if (idle) await sleep(50);
      } catch (error) {
        // The node died under the request: go on through the next one.
        note(seen, `no answer: ${(error as Error).name}`);
        node = (node + 1) % cluster.nodes.length;
        await sleep(50);
      }
    }
    const at = baseFrom(node);
    if (at !== null && generation >= 0) {
      await post(at.base, `/consumer-groups/${group}/leave`, { consumer_id: id }).catch(() => undefined);
    }
  })();
}

/** A member over WebSocket: records pushed, each batch committed with a commit frame; reconnects elsewhere. */
function wsMember(id: string, nodeIndex: number, seen: Seen, running: () => boolean) {
  let node = nodeIndex;
  let socket: WebSocket | null = null;
  let paused = false;
  const connect = () => {
    const at = baseFrom(node);
    if (at === null || !running() || paused) return;
    node = at.index;
    const url = `${at.base.replace('http', 'ws')}/ws/group/${group}?topics=${topic}&offset_reset=earliest&consumer_id=${id}`;
    const ws = new WebSocket(url);
    socket = ws;
    const pending = new Map<number, number>();
    const timer = setInterval(() => {
      for (const [p, next] of pending) {
        ws.send(JSON.stringify({ type: 'commit', topic, partition: p, offset: next }));
      }
      pending.clear();
    }, 100);
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      if (frame.type === 'record') {
        seen.consumed.add(`${frame.partition}:${frame.offset}`);
        pending.set(frame.partition, frame.offset + 1);
      } else if (frame.type === 'error') {
        note(seen, `ws error ${frame.error_code}`);
      }
    });
    ws.on('error', () => note(seen, 'ws socket error'));
    ws.on('close', (code, reason) => {
      clearInterval(timer);
      if (socket !== ws) return;
      socket = null;
      if (code !== 1000) note(seen, `ws close ${code} ${reason.toString().slice(0, 80)}`);
      node = (node + 1) % cluster.nodes.length;
      setTimeout(connect, 100);
    });
  };
  connect();
  return {
    /** Leaves the group (closes the socket) until `rejoin`. */
    leave() {
      paused = true;
      const ws = socket;
      socket = null;
      ws?.close(1000);
    },
    rejoin() {
      paused = false;
      connect();
    },
    stop() {
      paused = true;
      const ws = socket;
      socket = null;
      ws?.close(1000);
    },
  };
}

interface GroupView {
  readonly members: { consumer_id: string; assignments: Record<string, number[]> }[];
  readonly offsets: { topic: string; partition: number; offset: number }[];
}

async function describeThroughAny(): Promise<GroupView | null> {
  const at = baseFrom(0);
  if (at === null) return null;
  const got = await getJson(at.base, `/consumer-groups/${group}`).catch(() => null);
  return got?.status === 200 ? (got.body as GroupView) : null;
}

test('one group over three nodes: single owners, monotonic commits, re-forms after the coordinator dies, nothing skipped', async () => {
  const first = cluster.nodes[0]!;
  const created = await http(first, 'POST', `/topics/${topic}`, {
    num_partitions: partitions,
    replication_factor: 3,
    config: { min_insync_replicas: 2 },
  });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  for (const node of cluster.nodes) {
    await waitFor(`${node.id} to route ${topic}`, 10_000, async () =>
      (await http(node, 'GET', `/topics/${topic}`)).status === 200 ? true : undefined,
    );
  }
  const workload: WorkloadNode[] = cluster.nodes.map((n) => ({
    id: n.id,
    base: () => n.process?.base ?? null,
  }));
  const outcomes = emptyOutcomes();
  const producers = startProducers(workload, topic, partitions, 'all', outcomes, 'g');

  const seen: Seen = { consumed: new Set(), errors: new Map() };
  let running = true;
  const httpLoops = [0, 2, 4].map((i) => httpMember(`m${i}`, i % 3, seen, () => running));
  const wsMembers = [1, 3, 5].map((i) => wsMember(`m${i}`, i % 3, seen, () => running));

  // Sampling: single owners and committed offsets that never go backwards, through any live node.
  const highestCommitted = new Map<number, number>();
  const violations: string[] = [];
  let samples = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const view = await describeThroughAny();
      if (view !== null) {
        samples++;
        const owners = new Map<number, string>();
        for (const m of view.members) {
          for (const p of m.assignments[topic] ?? []) {
            const other = owners.get(p);
            if (other !== undefined) violations.push(`partition ${p} owned by ${other} and ${m.consumer_id}`);
            owners.set(p, m.consumer_id);
          }
        }
        for (const o of view.offsets) {
          if (o.topic !== topic) continue;
          const before = highestCommitted.get(o.partition) ?? 0;
          if (o.offset < before)
            violations.push(`partition ${o.partition} committed ${o.offset} after ${before}`);
          highestCommitted.set(o.partition, Math.max(before, o.offset));
        }
      }
      await sleep(100);
    }
  })();

  const allOwned = async (what: string, timeoutMs: number) =>
    waitFor(what, timeoutMs, async () => {
      const view = await describeThroughAny();
      if (view === null) return undefined;
      const owned = new Set(view.members.flatMap((m) => m.assignments[topic] ?? []));
      return owned.size === partitions && view.members.length === 6 ? true : undefined;
    });
  try {
    await allOwned('the six members to own the six partitions', 20_000);
    await sleep(800);
    // A member leaves and joins again.
    wsMembers[0]!.leave();
    await sleep(600);
    wsMembers[0]!.rejoin();
    await allOwned('the group to re-form after a member came back', 10_000);
    await sleep(600);

    // The coordinator is the metadata leader.
    const leaderId = (await http(first, 'GET', '/cluster/status')).json.raft as { leader_id: string };
    const coordinator: ClusterNode = cluster.node(leaderId.leader_id);
    const killedAt = performance.now();
    await cluster.kill(coordinator);
    await allOwned('the group to re-form after the coordinator was killed', sessionTimeoutMs);
    const reformedMs = performance.now() - killedAt;
    console.log(
      `# the group owned every partition again ${reformedMs.toFixed(0)} ms after kill -9 of ${coordinator.id}`,
    );
    await sleep(1_200);
  } finally {
    await producers.stop();
  }

  // Every acknowledged record is consumed: the members drain what is left.
  const acked = [...outcomes.acked.values()];
  assert.ok(acked.length > 100, `only ${acked.length} records acknowledged`);
  const missing = () => acked.filter((a) => !seen.consumed.has(`${a.partition}:${a.offset}`));
  await waitFor('the members to consume every acknowledged record', 20_000, async () =>
    missing().length === 0 ? true : undefined,
  );
  running = false;
  for (const member of wsMembers) member.stop();
  await Promise.all(httpLoops);
  sampling = false;
  await sampler;

  console.log(
    `# ${acked.length} acknowledged, ${seen.consumed.size} consumed offsets, ${samples} samples; member errors: ${JSON.stringify([...seen.errors])}`,
  );
  assert.deepEqual(violations, []);
  assert.ok(samples > 20, `only ${samples} samples of the group`);
  assert.deepEqual(missing(), []);
  // The commits reached far: every partition's committed offset is past most of what was produced.
  for (let p = 0; p < partitions; p++)
    assert.ok((highestCommitted.get(p) ?? 0) > 0, `nothing committed on ${p}`);
});

/** What the checker's clients saw, and what they found wrong. */
interface History {
  readonly acked: Map<string, { partition: number; offset: number }>;
  /** `partition:offset` → the value every poll saw there. */
  readonly polled: Map<string, string>;
  /** Per partition, the highest commit acknowledged so far. */
  readonly committed: Map<number, number>;
  readonly anomalies: string[];
  readonly counts: Map<string, number>;
}

function tally(history: History, what: string): void {
  history.counts.set(what, (history.counts.get(what) ?? 0) + 1);
}

/** One checker client: a member of the group that sends, polls, commits and lists at random. */
async function checkerClient(
  id: string,
  topic2: string,
  group2: string,
  parts: number,
  seed: number,
  history: History,
  running: () => boolean,
): Promise<void> {
  const rng = createPrng(seed);
  let node = rng.nextInt(cluster.nodes.length);
  let generation = -1;
  /** Owned partitions → next offset to poll (this ownership stretch only). */
  const positions = new Map<number, number>();
  let sent = 0;
  const adopt = async (base: string, owned: number[]) => {
    for (const p of [...positions.keys()]) if (!owned.includes(p)) positions.delete(p);
    for (const p of owned) {
      if (positions.has(p)) continue;
      const got = await getJson(base, `/consumer-groups/${group2}/offsets/${topic2}/${p}`);
      if (got.status === 200) positions.set(p, got.body.offset as number);
      else if (got.status === 404) positions.set(p, 0);
      else throw new Error(`committed offset ${got.status}`);
    }
  };
  while (running()) {
    const at = baseFrom(node);
    if (at === null) {
      await sleep(50);
      continue;
    }
    node = at.index;
    const base = at.base;
    try {
      if (generation < 0) {
        const joined = await post(base, `/consumer-groups/${group2}/register`, {
          consumer_id: id,
          topics: [topic2],
        });
        if (joined.status !== 200) {
          tally(history, `register ${joined.status}`);
          await sleep(100);
          continue;
        }
        generation = joined.body.generation;
        positions.clear();
        await adopt(base, joined.body.assignments?.[topic2] ?? []);
      }
      const roll = rng.nextFloat();
      if (roll < 0.45) {
        // send
        const value = `${id}-${sent++}`;
        const partition = rng.nextInt(parts);
        const answer = await post(base, `/topics/${topic2}/produce?acks=all`, { value, partition });
        if (answer.status === 201) history.acked.set(value, { partition, offset: answer.body.offset });
        else tally(history, `send ${answer.status}`);
      } else if (roll < 0.6) {
        // heartbeat: the assignment may change, which starts new ownership stretches
        const beat = await post(base, `/consumer-groups/${group2}/heartbeat`, { consumer_id: id });
        if (beat.status === 404) generation = -1;
        else if (beat.status === 200) {
          generation = beat.body.generation;
          await adopt(base, beat.body.assignments?.[topic2] ?? []);
        } else tally(history, `heartbeat ${beat.status}`);
      } else if (roll < 0.9) {
        // poll and commit
        for (const [p, position] of positions) {
          const got = await getJson(
            base,
            `/topics/${topic2}/partitions/${p}/consume?offset=${position}&limit=20`,
          );
          if (got.status !== 200) {
            tally(history, `poll ${got.status}`);
            continue;
          }
          let expected = position;
          for (const m of got.body.messages as { offset: number; value: string }[]) {
            if (m.offset < expected)
              history.anomalies.push(`${id} polled ${p}:${m.offset} after ${expected - 1}`);
            expected = m.offset + 1;
            const key = `${p}:${m.offset}`;
            const before = history.polled.get(key);
            if (before !== undefined && before !== m.value) {
              history.anomalies.push(`offset ${key} held ${before} and then ${m.value}`);
            }
            history.polled.set(key, m.value);
          }
          if (expected === position) continue;
          positions.set(p, expected);
          const commit = await post(base, `/consumer-groups/${group2}/offsets/${topic2}/${p}`, {
            offset: expected,
            consumer_id: id,
            generation,
          });
          if (commit.status === 200) {
            history.committed.set(p, Math.max(history.committed.get(p) ?? 0, expected));
          } else {
            tally(history, `commit ${commit.status}`);
            if (commit.status === 404) generation = -1;
          }
        }
      } else {
        // list committed offsets: never below a commit acknowledged before the list was asked for
        const floor = new Map(history.committed);
        for (const [p, least] of floor) {
          const got = await getJson(base, `/consumer-groups/${group2}/offsets/${topic2}/${p}`);
          if (got.status !== 200) {
            tally(history, `list ${got.status}`);
            continue;
          }
          if (got.body.offset < least) {
            history.anomalies.push(
              `committed offset of ${p} listed as ${got.body.offset} after a commit of ${least}`,
            );
          }
        }
      }
    } catch (error) {
      tally(history, `no answer: ${(error as Error).name}`);
      node = (node + 1) % cluster.nodes.length;
      await sleep(30);
    }
  }
}

test('Maelstrom-style checker: send, poll, commit, list under random kills and restarts', async () => {
  const seed = Number(process.env.GROUPS_CHECK_SEED ?? Date.now() % 1_000_000);
  console.log(`# checker seed ${seed} (GROUPS_CHECK_SEED=${seed} replays the schedule)`);
  const rng = createPrng(seed);
  for (const node of cluster.nodes) if (node.process === null) await cluster.startNode(node);
  const topic2 = 'kv';
  const group2 = 'checkers';
  const parts = 4;
  const first = cluster.running()[0]!;
  const created = await http(first, 'POST', `/topics/${topic2}`, {
    num_partitions: parts,
    replication_factor: 3,
    config: { min_insync_replicas: 2 },
  });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  for (const node of cluster.nodes) {
    await waitFor(`${node.id} to route ${topic2}`, 10_000, async () =>
      (await http(node, 'GET', `/topics/${topic2}`)).status === 200 ? true : undefined,
    );
  }
  const history: History = {
    acked: new Map(),
    polled: new Map(),
    committed: new Map(),
    anomalies: [],
    counts: new Map(),
  };
  let running = true;
  const clients = [0, 1, 2, 3].map((i) =>
    checkerClient(`c${i}`, topic2, group2, parts, seed * 10 + i, history, () => running),
  );
  // The nemesis: kill -9 a random broker, restart it 1-2.5 s later; at most one down at a time (min ISR 2).
  const kills: string[] = [];
  const nemesisEndsAt = performance.now() + 7_000;
  while (performance.now() < nemesisEndsAt) {
    await sleep(1_000 + rng.nextInt(1_500));
    const victim = cluster.nodes[rng.nextInt(cluster.nodes.length)]!;
    kills.push(victim.id);
    await cluster.kill(victim);
    await sleep(1_000 + rng.nextInt(1_500));
    await cluster.startNode(victim);
  }
  await sleep(1_500);
  running = false;
  await Promise.all(clients);

  // The final log of every partition, read once every replica is back in the ISR.
  const nodes: WorkloadNode[] = cluster.nodes.map((n) => ({ id: n.id, base: () => n.process?.base ?? null }));
  const settled = await waitFullyReplicated(nodes, topic2, parts, 30_000);
  const log = new Map<string, string>();
  for (const p of settled) {
    const records = await readThrough(cluster.nodes[0]!.process!.base, topic2, p.partition, p.high_watermark);
    for (const r of records) log.set(`${p.partition}:${r.offset}`, r.value);
  }
  const lost: string[] = [];
  for (const [value, at] of history.acked) {
    if (log.get(`${at.partition}:${at.offset}`) !== value)
      lost.push(`${value} at ${at.partition}:${at.offset}`);
  }
  const diverged = [...history.polled].filter(([key, value]) => log.get(key) !== value).map(([key]) => key);
  const values = new Map<string, number>();
  for (const value of log.values()) values.set(value, (values.get(value) ?? 0) + 1);
  const duplicated = [...values].filter(([, n]) => n > 1).map(([v]) => v);
  console.log(
    `# checker: kills ${kills.join(',')}; ${history.acked.size} sends acknowledged, ${history.polled.size} offsets polled, commits up to ${JSON.stringify([...history.committed])}; refusals ${JSON.stringify([...history.counts])}`,
  );
  assert.ok(history.acked.size > 50, `only ${history.acked.size} sends acknowledged`);
  assert.ok(history.polled.size > 20, `only ${history.polled.size} offsets polled`);
  assert.ok(history.committed.size > 0, 'no commit acknowledged');
  assert.deepEqual(lost, [], 'lost writes');
  assert.deepEqual(diverged, [], 'polled values that differ from the log');
  assert.deepEqual(duplicated, [], 'values at two offsets');
  assert.deepEqual(history.anomalies, []);
});

test('/ws/produce and /ws/consume on nodes that hold no replica of the partition', async () => {
  const first = cluster.nodes[0]!;
  for (const node of cluster.nodes) if (node.process === null) await cluster.startNode(node);
  const created = await http(first, 'POST', '/topics/solo', { num_partitions: 3, replication_factor: 1 });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const leaders = (created.json.partitions as { partition: number; leader: string }[]).map((p) => p.leader);
  // Partition 0 and two nodes that hold nothing of it.
  const [producerNode, consumerNode] = cluster.nodes.filter((n) => n.id !== leaders[0]);
  for (const node of [producerNode!, consumerNode!]) {
    await waitFor(`${node.id} to route solo`, 10_000, async () =>
      (await http(node, 'GET', '/topics/solo')).status === 200 ? true : undefined,
    );
  }
  const wsBase = (node: ClusterNode) => node.process!.base.replace('http', 'ws');
  const received: number[] = [];
  const consumer = new WebSocket(`${wsBase(consumerNode!)}/ws/consume/solo?partition=0&offset=earliest`);
  consumer.on('message', (data) => {
    const frame = JSON.parse(data.toString());
    if (typeof frame.offset === 'number') received.push(frame.offset);
  });
  await new Promise((resolve, reject) => {
    consumer.once('open', resolve);
    consumer.once('error', reject);
  });
  const producer = new WebSocket(`${wsBase(producerNode!)}/ws/produce/solo`);
  await new Promise((resolve, reject) => {
    producer.once('open', resolve);
    producer.once('error', reject);
  });
  const answers: any[] = [];
  producer.on('message', (data) => answers.push(JSON.parse(data.toString())));
  for (let i = 0; i < 20; i++) producer.send(JSON.stringify({ value: `w${i}`, partition: 0, context: i }));
  await waitFor('20 produce answers', 10_000, async () => (answers.length === 20 ? true : undefined));
  assert.ok(
    answers.every((a) => a.result === 'ok' && a.partition === 0),
    JSON.stringify(answers.slice(0, 3)),
  );
  await waitFor('20 records pushed', 10_000, async () => (received.length >= 20 ? true : undefined));
  assert.deepEqual(
    received.slice(0, 20),
    Array.from({ length: 20 }, (_, i) => i),
  );
  producer.close();
  consumer.close();
});
