// Three broker processes form a metadata Raft group as the README says (the first alone, the others with
// --seeds); a topic created on a follower is visible on every node; kill -9 of the Raft leader gives a new
// leader within 3 s and topic creation works again; the killed node restarts from its data dir and catches up;
// the founder killed and restarted with the README's own command (no --seeds) rejoins gossip through the
// brokers its Raft state knows: everyone holds it alive and unfenced again and new topics use it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type ClusterNode, http, type StatusView, statusOf, TestCluster, waitFor } from './processes.js';

describe('three-node metadata Raft group, real processes', { timeout: 120_000 }, () => {
  let cluster: TestCluster;

  before(async () => {
    cluster = await TestCluster.start(3);
  });
  after(async () => {
    await cluster?.stopAll();
  });

  async function statuses(nodes: readonly ClusterNode[]): Promise<StatusView[] | undefined> {
    const all = await Promise.all(nodes.map((n) => statusOf(n)));
    return all.every((s) => s !== null) ? (all as StatusView[]) : undefined;
  }

  /** Every given node reports the same leader, which is one of them, and the same voters. */
  async function agreedLeader(nodes: readonly ClusterNode[], timeoutMs: number): Promise<string> {
    return waitFor('the nodes to agree on a leader', timeoutMs, async () => {
      const views = await statuses(nodes);
      if (views === undefined) return undefined;
      const leader = views[0]!.raft.leader_id;
      if (leader === null || !nodes.some((n) => n.id === leader)) return undefined;
      return views.every((v) => v.raft.leader_id === leader) ? leader : undefined;
    });
  }

  test('the three nodes become the three voters and agree on a leader', async () => {
    const views = await waitFor('three voters everywhere', 20_000, async () => {
      const v = await statuses(cluster.nodes);
      return v?.every((s) => s.raft.voters.length === 3 && s.raft.leader_id !== null) ? v : undefined;
    });
    for (const v of views) assert.deepEqual([...v.raft.voters].sort(), ['n1', 'n2', 'n3']);
    await agreedLeader(cluster.nodes, 5_000);
  });

  test('a topic created on a follower is visible on every node', async () => {
    const leader = await agreedLeader(cluster.nodes, 5_000);
    const follower = cluster.nodes.find((n) => n.id !== leader)!;
    const created = await http(follower, 'POST', '/topics/made-on-follower', { num_partitions: 3 });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    // Read-your-writes on the node that took the request: it answers once its own metadata holds the topic.
    const here = await http(follower, 'GET', '/topics/made-on-follower');
    assert.equal(here.status, 200);
    for (const node of cluster.nodes) {
      await waitFor(`the topic on ${node.id}`, 5_000, async () => {
        const got = await http(node, 'GET', '/topics');
        return (got.json.topics as string[]).includes('made-on-follower') ? true : undefined;
      });
    }
    // The partitions are spread over the brokers; each node serves the ones it leads and names the leader of
    // the others.
    const partitions = created.json.partitions as { partition: number; leader: string }[];
    assert.equal(partitions.length, 3);
    for (const p of partitions) assert.ok(['n1', 'n2', 'n3'].includes(p.leader));
    const p0 = partitions[0]!;
    const owner = cluster.node(p0.leader);
    const produced = await http(owner, 'POST', '/topics/made-on-follower/produce', {
      key: 'k',
      value: 'v',
      partition: p0.partition,
    });
    assert.equal(produced.status, 201, JSON.stringify(produced.json));
    const other = cluster.nodes.find((n) => n.id !== p0.leader)!;
    // Any node answers for any partition (asking its leader)...
    const forwarded = await http(other, 'GET', `/topics/made-on-follower/partitions/${p0.partition}`);
    assert.equal(forwarded.status, 200, JSON.stringify(forwarded.json));
    assert.equal(forwarded.json.high_watermark, 1);
    assert.equal(forwarded.json.leader, p0.leader);
    // ...and a client that asks for redirects is sent to the leader instead.
    const redirected = await http(
      other,
      'GET',
      `/topics/made-on-follower/partitions/${p0.partition}`,
      undefined,
      { 'x-redirect-to-leader': 'true' },
    );
    assert.equal(redirected.status, 503);
    assert.match(String(redirected.json.message), new RegExp(`led by broker ${p0.leader}`));
    assert.equal(redirected.json.leader, p0.leader);
    assert.equal(redirected.json.leader_url, owner.process!.base);
    assert.equal(redirected.headers.get('location'), owner.process!.base);
    const served = await http(owner, 'GET', `/topics/made-on-follower/partitions/${p0.partition}`);
    assert.equal(served.status, 200, JSON.stringify(served.json));
    assert.equal(served.json.high_watermark, 1);
    // A second create with the same settings is idempotent, with other settings a conflict.
    assert.equal(
      (await http(follower, 'POST', '/topics/made-on-follower', { num_partitions: 3 })).status,
      200,
    );
    assert.equal(
      (await http(follower, 'POST', '/topics/made-on-follower', { num_partitions: 4 })).status,
      409,
    );
  });

  test('kill -9 of the leader: a new leader within 3 s, topic creation works, the killed node catches up', async () => {
    const oldLeaderId = await agreedLeader(cluster.nodes, 5_000);
    const oldLeader = cluster.node(oldLeaderId);
    const survivors = cluster.nodes.filter((n) => n !== oldLeader);
    const killedAt = performance.now();
    await cluster.kill(oldLeader);
    const newLeader = await agreedLeader(survivors, 3_000);
    const electedMs = performance.now() - killedAt;
    assert.notEqual(newLeader, oldLeaderId);
    assert.ok(electedMs < 3_000, `new leader after ${electedMs.toFixed(0)} ms`);
    console.log(`# new leader ${newLeader} ${electedMs.toFixed(0)} ms after kill -9 of ${oldLeaderId}`);

    // Creation through either survivor works again, and lands only on live brokers.
    for (const [i, node] of survivors.entries()) {
      const created = await http(node, 'POST', `/topics/after-failover-${i}`, { num_partitions: 2 });
      assert.equal(created.status, 201, JSON.stringify(created.json));
      for (const p of created.json.partitions as { leader: string }[]) assert.notEqual(p.leader, oldLeaderId);
    }

    // The killed node restarts from its data dir, on its cluster port, and catches up.
    await cluster.startNode(oldLeader);
    await waitFor(`${oldLeaderId} to catch up`, 15_000, async () => {
      const [mine, theirs] = await Promise.all([statusOf(oldLeader), statusOf(survivors[0]!)]);
      if (mine === null || theirs === null) return undefined;
      return mine.raft.applied_index >= theirs.raft.commit_index && mine.raft.leader_id === newLeader
        ? true
        : undefined;
    });
    const topics = (await http(oldLeader, 'GET', '/topics')).json.topics as string[];
    for (const name of ['made-on-follower', 'after-failover-0', 'after-failover-1']) {
      assert.ok(topics.includes(name), `${name} on the restarted node: ${topics.join(',')}`);
    }
    // It votes again, and the whole group commits through it.
    const view = await waitFor('three voters again', 10_000, async () => {
      const v = await statusOf(oldLeader);
      return v !== null && v.raft.voters.length === 3 ? v : undefined;
    });
    assert.deepEqual([...view.raft.voters].sort(), ['n1', 'n2', 'n3']);
    const created = await http(oldLeader, 'POST', '/topics/after-restart', {});
    assert.equal(created.status, 201, JSON.stringify(created.json));
  });

  test('the founder restarted without --seeds rejoins gossip through its Raft peers and gets new partitions', async () => {
    const founder = cluster.node('n1');
    const others = cluster.nodes.filter((n) => n !== founder);
    await cluster.kill(founder);
    // The others declare it dead (and the leader fences it) before it comes back.
    await waitFor('n1 dead and fenced on the others', 15_000, async () => {
      const views = await Promise.all(others.map((n) => statusOf(n)));
      return views.every((v) => {
        const m = v?.members.find((x) => x.node_id === 'n1') as
          | { state: string; fenced?: boolean }
          | undefined;
        return m?.state === 'dead' && m.fenced === true;
      })
        ? true
        : undefined;
    });
    const restartedAt = performance.now();
    await cluster.startNode(founder); // the founder's command: no --seeds
    await waitFor('n1 and the others alive and unfenced in every view', 10_000, async () => {
      const views = await Promise.all(cluster.nodes.map((n) => statusOf(n)));
      return views.every(
        (v) =>
          v !== null && v.members.length === 3 && v.members.every((m) => m.state === 'alive' && !m.fenced),
      )
        ? true
        : undefined;
    });
    console.log(
      `# n1 back in every view ${(performance.now() - restartedAt).toFixed(0)} ms after its restart began`,
    );
    assert.match(founder.process!.output(), /"event":"gossip_joined"/);
    // Placement uses it again: six partitions over three live brokers give it two.
    const created = await http(others[0]!, 'POST', '/topics/after-founder-restart', { num_partitions: 6 });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    const leaders = (created.json.partitions as { leader: string }[]).map((p) => p.leader);
    assert.ok(leaders.includes('n1'), `no partition on the restarted founder: ${leaders.join(',')}`);
  });

  test('SIGTERM of the leader hands leadership over before it exits', async () => {
    const leaderId = await agreedLeader(cluster.nodes, 10_000);
    const leader = cluster.node(leaderId);
    const survivors = cluster.nodes.filter((n) => n !== leader);
    const child = leader.process!.child;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const stoppedAt = performance.now();
    await cluster.kill(leader, 'SIGTERM');
    assert.equal(await exited, 0);
    const next = await agreedLeader(survivors, 3_000);
    const ms = performance.now() - stoppedAt;
    console.log(`# leadership handed to ${next}; survivors agree ${ms.toFixed(0)} ms after SIGTERM`);
    const created = await http(survivors[0]!, 'POST', '/topics/after-handover', {});
    assert.equal(created.status, 201, JSON.stringify(created.json));
  });
});
