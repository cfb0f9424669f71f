// Two nodes, each with one ClusterPort on 127.0.0.1 serving Raft TCP, gossip UDP and push-pull TCP, and cluster
// RPC on the same number: Raft messages flow both ways, the gossip agents form a cluster (a join is a push-pull
// stream, probes are datagrams), RPC answers, and stopping the transports leaves the port serving the rest.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { ClusterPort } from '../../src/cluster/port.js';
import { RpcClient, RpcServer } from '../../src/cluster/rpc.js';
import { GOSSIP_DEFAULTS, type GossipConfig } from '../../src/core/gossip/config.js';
import type { Message } from '../../src/core/raft/types.js';
import { GossipAgent } from '../../src/gossip/agent.js';
import { defaultTransportLimits, TcpTransport } from '../../src/raft/transport.js';

const FAST: GossipConfig = {
  ...GOSSIP_DEFAULTS,
  probeIntervalMs: 50,
  probeTimeoutMs: 20,
  gossipIntervalMs: 20,
  suspicionMult: 4,
  pushPullIntervalMs: 1_000,
  deadReclaimMs: 60_000,
};

type Node = {
  readonly id: string;
  readonly port: ClusterPort;
  readonly raft: TcpTransport;
  readonly gossip: GossipAgent;
  readonly rpc: RpcServer;
  readonly received: Message[];
};

const started: Node[] = [];
const clients: RpcClient[] = [];

async function startNode(id: string, index: number, seeds: string[]): Promise<Node> {
  const port = await ClusterPort.open({ host: '127.0.0.1', port: 0 });
  const received: Message[] = [];
  const raft = await TcpTransport.listen({
    ...defaultTransportLimits,
    reconnectBackoffMinMs: 5,
    reconnectBackoffMaxMs: 40,
    nodeId: id,
    listenHost: 'ignored',
    listenPort: 1,
    clusterPort: port,
    onMessage: (m) => received.push(m),
  });
  const gossip = new GossipAgent({
    nodeId: id,
    host: '127.0.0.1',
    port: 0,
    clusterPort: port,
    config: FAST,
    seed: index + 1,
    meta: {
      httpHost: '127.0.0.1',
      httpPort: 8000 + index,
      clusterHost: '127.0.0.1',
      clusterPort: port.port,
      rack: 'r0',
      version: 'test',
      dataPorts: [],
      kafkaPort: 0,
    },
  });
  await gossip.start({ seeds });
  const rpc = RpcServer.attach(port, async (method, payload) =>
    Buffer.from(`${id}:${method}:${Buffer.from(payload).toString()}`),
  );
  const node = { id, port, raft, gossip, rpc, received };
  started.push(node);
  return node;
}

async function waitFor(what: string, deadlineMs: number, condition: () => boolean): Promise<void> {
  const startMs = Date.now();
  while (!condition()) {
    if (Date.now() - startMs > deadlineMs) assert.fail(`${what}: not within ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const heartbeat = (from: string, to: string, commit: number): Message => ({
  type: 'heartbeat',
  from,
  to,
  term: 1,
  commit,
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  for (const n of started.splice(0)) {
    await n.gossip.abort();
    await n.raft.close();
    await n.rpc.close();
    await n.port.close();
  }
});

describe('one cluster port per node', () => {
  it('serves Raft, gossip and RPC on one number, and outlives the transports attached to it', async () => {
    const a = await startNode('a', 0, []);
    const b = await startNode('b', 1, [a.gossip.address]);
    // Every protocol's address is the port's number.
    assert.equal(a.raft.address(), `127.0.0.1:${a.port.port}`);
    assert.equal(a.gossip.address, `127.0.0.1:${a.port.port}`);

    a.raft.setPeer('b', b.raft.address());
    b.raft.setPeer('a', a.raft.address());
    for (let i = 1; i <= 3; i++) a.raft.send(heartbeat('a', 'b', i));
    b.raft.send(heartbeat('b', 'a', 7));
    await waitFor('raft messages', 5_000, () => b.received.length === 3 && a.received.length === 1);
    assert.deepEqual(
      b.received.map((m) => (m.type === 'heartbeat' ? m.commit : -1)),
      [1, 2, 3],
    );

    await waitFor(
      'gossip members alive on both',
      5_000,
      () => a.gossip.member('b')?.state === 'alive' && b.gossip.member('a')?.state === 'alive',
    );
    // The join went over a push-pull stream and probes over datagrams, both through the shared port.
    assert.ok(a.port.stats().routed.GSP1 >= 1);
    await waitFor('datagrams both ways', 5_000, () => b.gossip.transportStats!.datagramsIn > 0);
    assert.equal(a.gossip.transportStats!.malformedIn, 0);

    const client = new RpcClient();
    clients.push(client);
    const answer = await client.call(b.port.address(), 'echo', Buffer.from('x'), { timeoutMs: 2_000 });
    assert.equal(Buffer.from(answer).toString(), 'b:echo:x');
    assert.deepEqual(b.port.stats().routed, { RFT1: 1, GSP1: b.port.stats().routed.GSP1, RPC1: 1 });
    assert.equal(b.port.stats().unknownTags + b.port.stats().unhandledTags, 0);

    // Stopping Raft and gossip on b detaches them and leaves the port (and RPC on it) running.
    await b.gossip.abort();
    await b.raft.close();
    assert.equal(b.port.closed, false);
    assert.equal(b.port.udp.listenerCount('message'), 0);
    const again = await client.call(b.port.address(), 'echo', Buffer.from('y'), { timeoutMs: 2_000 });
    assert.equal(Buffer.from(again).toString(), 'b:echo:y');
    // A Raft dial to b is now refused at the port: no handler for the tag.
    const unhandledBefore = b.port.stats().unhandledTags;
    a.raft.send(heartbeat('a', 'b', 4));
    await waitFor('raft tag unhandled on b', 5_000, () => b.port.stats().unhandledTags > unhandledBefore);
    // And a new Raft transport can attach to the same port again.
    const received: Message[] = [];
    const raft2 = await TcpTransport.listen({
      ...defaultTransportLimits,
      nodeId: 'b',
      listenHost: 'ignored',
      listenPort: 1,
      clusterPort: b.port,
      onMessage: (m) => received.push(m),
    });
    try {
      // Sent again until it arrives, as Raft does: a's connection that b's port refused may still be closing
      // when the first copy is sent, and a message sent on it is dropped (Raft tolerates loss).
      let sentAtMs = 0;
      await waitFor('raft after re-attach', 5_000, () => {
        if (received.some((m) => m.type === 'heartbeat' && m.commit === 5)) return true;
        if (performance.now() - sentAtMs >= 200) {
          a.raft.send(heartbeat('a', 'b', 5));
          sentAtMs = performance.now();
        }
        return false;
      });
    } finally {
      await raft2.close();
    }
  });
});
