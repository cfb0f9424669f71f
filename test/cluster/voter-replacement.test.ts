// Four brokers with three Raft voters: the fourth follows as a learner. A voter killed and gone for
// --raft-voter-replace-after gives its seat to the caught-up learner, the group keeps committing, and the dead
// broker, once restarted, rejoins as a learner.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { http, type StatusView, statusOf, TestCluster, waitFor } from './processes.js';

describe('voter replacement, four real processes', { timeout: 120_000 }, () => {
  let cluster: TestCluster;

  before(async () => {
    cluster = await TestCluster.start(4, ['--raft-voter-replace-after', '2s']);
  });
  after(async () => {
    await cluster?.stopAll();
  });

  async function leaderView(): Promise<StatusView> {
    return waitFor('a leader with three voters and a learner', 20_000, async () => {
      for (const node of cluster.running()) {
        const s = await statusOf(node);
        if (s?.raft.role === 'leader' && s.raft.voters.length === 3 && s.raft.learners.length === 1) return s;
      }
      return undefined;
    });
  }

  test('three vote and the fourth is a learner', async () => {
    const view = await leaderView();
    assert.equal(new Set([...view.raft.voters, ...view.raft.learners]).size, 4);
  });

  test('a voter gone for good is replaced by the learner; it rejoins as a learner after a restart', async () => {
    const before = await leaderView();
    const learner = before.raft.learners[0]!;
    const victimId = before.raft.voters.find((id) => id !== before.node_id)!;
    const victim = cluster.node(victimId);
    await cluster.kill(victim);
    const leaderNode = cluster.node(before.node_id);
    const replaced = await waitFor(`${learner} to take ${victimId}'s seat`, 20_000, async () => {
      const s = await statusOf(leaderNode);
      return s?.raft.voters.includes(learner) && !s.raft.voters.includes(victimId) ? s : undefined;
    });
    assert.equal(replaced.raft.voters.length, 3);
    const created = await http(cluster.node(learner), 'POST', '/topics/after-replacement', {});
    assert.equal(created.status, 201, JSON.stringify(created.json));

    await cluster.startNode(victim);
    const rejoined = await waitFor(`${victimId} to rejoin as a learner`, 20_000, async () => {
      const s = await statusOf(leaderNode);
      return s?.raft.learners.includes(victimId) ? s : undefined;
    });
    assert.equal(rejoined.raft.voters.length, 3);
    await waitFor(`${victimId} to catch up`, 10_000, async () => {
      const topics = (await http(victim, 'GET', '/topics')).json.topics as string[];
      return topics.includes('after-replacement') ? true : undefined;
    });
  });
});
