// ACLs in a 3-node cluster of real broker processes (127.0.0.1, killed by PID): ACLs created through one node
// are enforced by every other (they travel in the metadata Raft log), their removal too; consumer-group
// requests reaching a node that does not coordinate the groups are forwarded with the client's Authorization,
// so the coordinator authorizes the same principal; a WebSocket group member on such a node joins through it.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { errors } from '../../src/core/errors.js';
import { type ClusterNode, http, TestCluster, waitFor } from '../cluster/processes.js';
import { authFiles, bearer, TOKENS } from './fixture.js';

let cluster: TestCluster;
let authDir = '';
const admin = bearer(TOKENS.admin);
const bob = bearer(TOKENS.bob);

before(async () => {
  const files = await authFiles();
  authDir = files.dir;
  cluster = await TestCluster.start(3, files.flags);
  const n1 = cluster.node('n1');
  // Created once every node knows the others: replicas on all three.
  await waitFor('a topic on three brokers', 15_000, async () => {
    const created = await http(n1, 'POST', '/topics/shared', { replication_factor: 3 }, admin);
    return created.status === 201 || created.status === 200 ? true : undefined;
  });
});

after(async () => {
  await cluster?.stopAll();
  if (authDir !== '') rmSync(authDir, { recursive: true, force: true });
});

const produceAs = (node: ClusterNode, headers: Record<string, string>) =>
  http(node, 'POST', '/topics/shared/produce', { value: 'v' }, headers);

test('an ACL created on one node is enforced on the others, and so is its removal', async () => {
  const [n1, n2, n3] = [cluster.node('n1'), cluster.node('n2'), cluster.node('n3')];
  for (const node of [n1, n2, n3]) {
    const refused = await produceAs(node, bob);
    assert.equal(refused.status, 403, `${node.id}: ${JSON.stringify(refused.json)}`);
    assert.equal(refused.json.error_code, errors.forbidden.code);
  }
  const granted = await http(
    n3,
    'POST',
    '/admin/acls',
    {
      acls: [
        { principal: 'bob', resource_type: 'topic', resource_name: 'shared', operation: 'all' },
        {
          principal: 'bob',
          resource_type: 'group',
          pattern_type: 'prefixed',
          resource_name: 'bob-',
          operation: 'read',
        },
      ],
    },
    admin,
  );
  assert.equal(granted.status, 201, JSON.stringify(granted.json));
  // Read-your-writes on the node that made the change; the others within moments.
  assert.equal((await produceAs(n3, bob)).status, 201);
  for (const node of [n1, n2]) {
    await waitFor(`bob allowed on ${node.id}`, 5000, async () =>
      (await produceAs(node, bob)).status === 201 ? true : undefined,
    );
  }
  const listed = await http(n1, 'GET', '/admin/acls?principal=bob', undefined, admin);
  assert.equal(listed.json.count, 2);

  // Group routes on every node: the coordinator (one of them) sees bob's own token and allows him.
  for (const node of [n1, n2, n3]) {
    const joined = await http(
      node,
      'POST',
      `/consumer-groups/bob-${node.id}/register`,
      { consumer_id: 'c', topics: ['shared'] },
      bob,
    );
    assert.equal(joined.status, 200, `${node.id}: ${JSON.stringify(joined.json)}`);
    const other = await http(node, 'GET', '/consumer-groups/someone-else', undefined, bob);
    assert.equal(other.status, 403, `${node.id}: ${JSON.stringify(other.json)}`);
  }
  // A WebSocket member on every node: joined through the coordinator with its ?token=.
  for (const node of [n1, n2, n3]) {
    const socket = new WebSocket(
      `${node.process!.base.replace('http', 'ws')}/ws/group/bob-ws?topics=shared&token=${TOKENS.bob}`,
    );
    const assignment = await new Promise<Record<string, unknown>>((resolve, reject) => {
      socket.on('message', (data) => {
        const frame = JSON.parse(data.toString()) as Record<string, unknown>;
        if (frame.type === 'assignment') resolve(frame);
      });
      socket.once('close', (code, reason) => reject(new Error(`${node.id}: closed ${code} ${reason}`)));
      socket.once('error', reject);
    });
    assert.equal(assignment.group, 'bob-ws');
    socket.close();
  }

  const removed = await http(n2, 'DELETE', '/admin/acls?principal=bob&resource_type=topic', undefined, admin);
  assert.equal(removed.json.count, 1);
  for (const node of [n1, n2, n3]) {
    await waitFor(`bob refused again on ${node.id}`, 5000, async () =>
      (await produceAs(node, bob)).status === 403 ? true : undefined,
    );
  }
});
