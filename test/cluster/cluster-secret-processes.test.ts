// Three real broker processes started with one --cluster-secret-file, and outsiders that try to get in: a 4th
// broker with another secret seeding through n1, and this test itself sending a gossip `alive` for a made-up
// member over UDP, a Raft vote request at term 1000 in a voter's name over TCP, a cluster-RPC `delete_topic`
// of the test's topic (without a secret and with the wrong one), and data-link frames to every partition
// worker. None of them shows up in /cluster/status, the Raft term and leader, the topic and its records are
// as they were, and every transport's refusals are counted on /metrics. A 4th broker with the right secret
// then joins like any other.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ClusterTags, clusterTagBytes } from '../../src/cluster/port.js';
import { RpcClient } from '../../src/cluster/rpc.js';
import type { Packet } from '../../src/core/gossip/messages.js';
import { encodePacket } from '../../src/gossip/codec.js';
import { DATA_LINK_DEFAULTS, DataLinkClient, LinkFailureKind } from '../../src/link/data-link.js';
import { encodeAdminRequest } from '../../src/metadata/codec.js';
import { encodeMessage } from '../../src/raft/codec.js';
import { ClusterAuth } from '../../src/security/cluster-auth.js';
import {
  type ClusterNode,
  freeClusterPorts,
  http,
  killRaw,
  type RawBroker,
  spawnRaw,
  statusOf,
  TestCluster,
  waitFor,
} from './processes.js';

const transports = ['gossip_udp', 'gossip_stream', 'raft', 'rpc', 'data_link'] as const;

async function authFailures(node: ClusterNode): Promise<Record<string, number>> {
  const response = await fetch(`${node.process!.base}/metrics`, { signal: AbortSignal.timeout(3_000) });
  const text = await response.text();
  const out: Record<string, number> = {};
  for (const t of transports) {
    const match = new RegExp(
      `^broker_cluster_auth_failures_total\\{transport="${t}",reason="secret"\\} (\\d+)`,
      'm',
    ).exec(text);
    out[t] = match === null ? 0 : Number(match[1]);
  }
  return out;
}

function raftFrame(kind: number, payload: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + payload.length);
  out.writeUInt32BE(1 + payload.length, 0);
  out[4] = kind;
  out.set(payload, 5);
  return out;
}

describe('cluster secret, three real processes and outsiders', { timeout: 90_000 }, () => {
  let cluster: TestCluster;
  let dir: string;
  let secretPath: string;
  let roguePath: string;
  let dataPorts: number[];
  let rogue: RawBroker | undefined;
  const records = ['r0', 'r1', 'r2'];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'broker-secret-'));
    secretPath = join(dir, 'secret');
    roguePath = join(dir, 'rogue-secret');
    // As the README says: openssl rand -base64 48 > secret (64 characters and a newline).
    await writeFile(secretPath, `${randomBytes(48).toString('base64')}\n`);
    await writeFile(roguePath, `${randomBytes(48).toString('base64')}\n`);
    dataPorts = await freeClusterPorts(3);
    const secretArgs = ['--cluster-secret-file', secretPath];
    cluster = await TestCluster.start(1, [...secretArgs, '--data-port', String(dataPorts[0])]);
    for (const id of ['n2', 'n3']) {
      cluster.nodes.push({ id, dataDir: join(dir, id), clusterPort: 0, process: null });
    }
    await Promise.all(
      [1, 2].map((i) =>
        cluster.startNode(cluster.nodes[i]!, [...secretArgs, '--data-port', String(dataPorts[i])]),
      ),
    );
  });
  after(async () => {
    if (rogue !== undefined) await killRaw(rogue);
    await cluster?.stopAll();
    await rm(dir, { recursive: true, force: true });
  });

  async function agreed(count: number) {
    return waitFor(`${count} alive members, one leader, 3 voters`, 20_000, async () => {
      const views = await Promise.all(cluster.running().map((n) => statusOf(n)));
      if (views.some((v) => v === null)) return undefined;
      const leader = views[0]!.raft.leader_id;
      const ok = views.every(
        (v) =>
          v!.members.filter((m) => m.state === 'alive').length === count &&
          v!.raft.leader_id === leader &&
          leader !== null &&
          v!.raft.voters.length === 3,
      );
      return ok ? views.map((v) => v!) : undefined;
    });
  }

  async function readAll(node: ClusterNode): Promise<string[]> {
    const got = await http(node, 'GET', '/topics/precious/partitions/0/consume?offset=0&limit=100');
    assert.equal(got.status, 200, JSON.stringify(got.json));
    return (got.json.messages as { value: string }[]).map((m) => m.value);
  }

  test('a secret file that is short or cannot be read stops the start, named', async () => {
    const shortPath = join(dir, 'short');
    await writeFile(shortPath, 'only 16 bytes!!\n');
    for (const [path, reason] of [
      [shortPath, /holds 15 bytes; at least 32 are needed/],
      [join(dir, 'missing'), /cannot read the cluster secret/],
    ] as const) {
      const broker = spawnRaw(['--data-dir', join(dir, 'refused'), '--cluster-secret-file', path]);
      assert.equal(await broker.exited, 1);
      assert.match(broker.output(), reason);
    }
  });

  test('the three nodes with the secret form a cluster and replicate a topic', async () => {
    await agreed(3);
    const created = await http(cluster.nodes[0]!, 'POST', '/topics/precious', {
      num_partitions: 1,
      replication_factor: 3,
    });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    for (const value of records) {
      const produced = await http(cluster.nodes[0]!, 'POST', '/topics/precious/produce', {
        value,
        partition: 0,
      });
      assert.equal(produced.status, 201, JSON.stringify(produced.json));
    }
    // Replication runs over the authenticated data link: every replica catches up.
    await waitFor('every replica in the ISR', 15_000, async () => {
      const got = await http(cluster.nodes[0]!, 'GET', '/topics/precious');
      const p = (got.json.partitions as { isr: string[]; high_watermark: number }[] | undefined)?.[0];
      return p !== undefined && p.isr.length === 3 && p.high_watermark === 3 ? true : undefined;
    });
    for (const node of cluster.nodes) assert.deepEqual(await readAll(node), records);
  });

  test('outsiders never join, change nothing, and are counted on every transport', async () => {
    const before = await agreed(3);
    const leaderBefore = before[0]!.raft.leader_id;
    const termBefore = Math.max(...before.map((v) => v.raft.term));
    const [n1, n2, n3] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];

    // A 4th broker with another secret, seeding through n1.
    rogue = spawnRaw([
      '--node-id',
      'rogue',
      '--data-dir',
      join(dir, 'rogue'),
      '--cluster-port',
      '0',
      '--threads',
      '1',
      '--seeds',
      `127.0.0.1:${n1.clusterPort}`,
      '--cluster-secret-file',
      roguePath,
    ]);

    // Gossip: an `alive` for a made-up member, and a ping, with no tag.
    const udp = createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', () => resolve()));
    const meta = {
      httpHost: '127.0.0.1',
      httpPort: 1,
      clusterHost: '127.0.0.1',
      clusterPort: udp.address().port,
      rack: '',
      version: '0.1.0',
      dataPorts: [],
      kafkaPort: 0,
    };
    const packet: Packet = {
      senderId: 'mallory',
      senderAddress: `127.0.0.1:${udp.address().port}`,
      messages: [
        {
          kind: 'alive',
          nodeId: 'mallory',
          address: `127.0.0.1:${udp.address().port}`,
          incarnation: 1,
          meta,
        },
        { kind: 'ping', seqNo: 1, targetId: 'n1' },
      ],
    };
    for (const node of cluster.nodes) {
      await new Promise<void>((resolve) =>
        udp.send(encodePacket(packet), node.clusterPort, '127.0.0.1', () => resolve()),
      );
    }
    udp.close();

    // Raft: a vote request at term 1000 in voter n2's name, exactly as a node without the secret sends it.
    for (const node of [n1, n3]) {
      const socket = net.connect({ host: '127.0.0.1', port: node.clusterPort });
      socket.on('error', () => {});
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.write(
        Buffer.concat([
          clusterTagBytes(ClusterTags.raft),
          raftFrame(1, Buffer.concat([Buffer.from([1]), Buffer.from('n2')])),
          raftFrame(
            2,
            encodeMessage({
              type: 'vote',
              from: 'n2',
              to: node.id,
              term: 1000,
              lastLogIndex: 1_000_000,
              lastLogTerm: 999,
              preVote: false,
              transfer: true,
            }),
          ),
        ]),
      );
      await closed;
    }

    // Cluster RPC: delete the topic, without a secret and with the wrong one.
    const wrongAuth = new ClusterAuth({ nodeId: 'n2', secret: Buffer.from('x'.repeat(48)) });
    for (const client of [new RpcClient(), new RpcClient({}, wrongAuth)]) {
      for (const node of cluster.nodes) {
        await assert.rejects(
          client.call(
            `127.0.0.1:${node.clusterPort}`,
            'metadata.admin',
            encodeAdminRequest({ kind: 'delete_topic', name: 'precious' }),
            { timeoutMs: 2_000 },
          ),
          (error: { code?: string }) => error.code !== 'remote',
        );
      }
      await client.close();
    }

    // Data link: a frame to every partition worker, without a secret and with the wrong one.
    for (const auth of [undefined, wrongAuth]) {
      for (const port of dataPorts.slice(0, 3)) {
        const client = new DataLinkClient(
          '127.0.0.1',
          port,
          'n2',
          { ...DATA_LINK_DEFAULTS },
          undefined,
          auth,
        );
        const kind = await new Promise<number>((resolve) => {
          client.send(
            1,
            4,
            (out, _view, at) => {
              out.writeUInt32LE(0, at);
            },
            (k) => resolve(k),
            2_000,
          );
        });
        client.close();
        assert.equal(kind, LinkFailureKind, 'a link without the secret gets only a failure');
      }
    }

    // Every transport's refusals are counted, the rogue broker's join attempts among them.
    const counted = await waitFor('refusals on every transport', 15_000, async () => {
      const all = await Promise.all(cluster.nodes.map((n) => authFailures(n)));
      const sum = Object.fromEntries(transports.map((t) => [t, all.reduce((s, c) => s + c[t]!, 0)]));
      return transports.every((t) => sum[t]! > 0) ? sum : undefined;
    });
    console.log(`refusals counted: ${JSON.stringify(counted)}`);

    const after = await agreed(3);
    for (const view of after) {
      const names = view.members.map((m) => m.node_id).sort();
      assert.deepEqual(names, ['n1', 'n2', 'n3'], `${view.node_id} lists only the members with the secret`);
      assert.deepEqual([...view.raft.voters].sort(), ['n1', 'n2', 'n3']);
      assert.ok(view.raft.term < 1000, `${view.node_id} is at term ${view.raft.term}`);
    }
    assert.equal(after[0]!.raft.leader_id, leaderBefore, 'the leader did not change');
    assert.ok(Math.max(...after.map((v) => v.raft.term)) === termBefore, 'no new term');
    const topics = await http(n2, 'GET', '/topics/precious');
    assert.equal(topics.status, 200, 'the topic is still there');
    for (const node of cluster.nodes) assert.deepEqual(await readAll(node), records);
    assert.doesNotMatch(rogue.output(), /broker serving/, 'the rogue broker never got a metadata leader');
    assert.match(rogue.output(), /cluster authentication failed/, 'the rogue saw the cluster refuse it');
    await killRaw(rogue);
    rogue = undefined;
  });

  test('a 4th broker with the right secret joins like any other', async () => {
    const n4: ClusterNode = { id: 'n4', dataDir: join(dir, 'n4'), clusterPort: 0, process: null };
    cluster.nodes.push(n4);
    // Its data port is picked at its start (0, the default): a port found free when the suite began may have
    // been taken by another test's socket by now.
    await cluster.startNode(n4, ['--cluster-secret-file', secretPath]);
    await agreed(4);
  });
});
