// The cluster secret on real loopback sockets: a node's cluster port (Raft, RPC, gossip) and a data-link server
// started with a secret let a peer holding the same secret through, and drop or disconnect everything else
// before it is decoded: untagged, wrongly tagged and replayed gossip datagrams; TCP clients without the secret
// or with another one, which get no Raft message, RPC call, gossip stream or data-link frame processed; and a
// connection that sends nothing, closed at the deadline. Every refusal is counted by transport.
import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import * as net from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { ClusterPort, ClusterTags, clusterTagBytes, openClusterConnection } from '../../src/cluster/port.js';
import { RpcClient, RpcServer } from '../../src/cluster/rpc.js';
import type { Packet } from '../../src/core/gossip/messages.js';
import type { Message } from '../../src/core/raft/types.js';
import { encodePacket } from '../../src/gossip/codec.js';
import { GossipTransport } from '../../src/gossip/transport.js';
import {
  DATA_LINK_DEFAULTS,
  DataLinkClient,
  DataLinkServer,
  LinkFailureKind,
} from '../../src/link/data-link.js';
import { encodeMessage } from '../../src/raft/codec.js';
import { defaultTransportLimits, TcpTransport } from '../../src/raft/transport.js';
import { ClusterAuth, readAuthStats } from '../../src/security/cluster-auth.js';

const secret = Buffer.from('the cluster secret of this test, 32 bytes or more');
const otherSecret = Buffer.from('a rogue secret that is also 32 bytes or longer!!');
const sniffTimeoutMs = 300;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function waitFor(what: string, cond: () => boolean, deadlineMs = 3_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (!cond()) {
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** One node's cluster port with Raft, RPC and gossip attached, as the control thread wires them. */
async function node(id: string, key: Buffer | null) {
  const auth = key === null ? undefined : new ClusterAuth({ nodeId: id, secret: key });
  const port = await ClusterPort.open({
    host: '127.0.0.1',
    port: 0,
    ...(auth === undefined ? {} : { auth }),
    limits: { sniffTimeoutMs },
  });
  const raftGot: Message[] = [];
  const rpcCalls: string[] = [];
  const gossipGot: Packet[] = [];
  const raft = await TcpTransport.listen({
    ...defaultTransportLimits,
    nodeId: id,
    listenHost: '127.0.0.1',
    listenPort: 0,
    clusterPort: port,
    reconnectBackoffMinMs: 5,
    reconnectBackoffMaxMs: 40,
    onMessage: (m) => raftGot.push(m),
  });
  const rpcServer = RpcServer.attach(port, async (method, payload) => {
    rpcCalls.push(method);
    return payload;
  });
  const rpc = new RpcClient({}, auth);
  let gossip: GossipTransport | undefined;
  gossip = await GossipTransport.open({
    host: '127.0.0.1',
    port: 0,
    clusterPort: port,
    onPacket: (from, packet, kind) => {
      gossipGot.push(packet);
      // Push-pull: answer a stream request on its own connection.
      if (kind === 'stream' && packet.messages[0]?.kind === 'ping')
        gossip?.sendStream(from, ping(id, port, 2));
    },
  });
  cleanups.push(async () => {
    await rpc.close();
    await gossip?.close();
    await rpcServer.close();
    await raft.close();
    await port.close();
  });
  return { id, auth, port, raft, rpc, gossip, raftGot, rpcCalls, gossipGot };
}

const ping = (senderId: string, port: ClusterPort, seqNo: number): Packet => ({
  senderId,
  senderAddress: port.address(),
  messages: [{ kind: 'ping', seqNo, targetId: 'b' }],
});

const heartbeat = (from: string, to: string, commit: number): Message => ({
  type: 'heartbeat',
  from,
  to,
  term: 1,
  commit,
});

function udpSocket(): Promise<UdpSocket> {
  const socket = createSocket('udp4');
  cleanups.push(() => socket.close());
  return new Promise((resolve) => socket.bind(0, '127.0.0.1', () => resolve(socket)));
}

function sendUdp(socket: UdpSocket, bytes: Uint8Array, port: number): Promise<void> {
  return new Promise((resolve) => socket.send(bytes, port, '127.0.0.1', () => resolve()));
}

/** A raw TCP connection; resolves with it and a promise of its close. */
async function raw(port: number): Promise<{ socket: net.Socket; closed: Promise<void> }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  cleanups.push(() => socket.destroy());
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return { socket, closed };
}

function raftFrame(kind: number, payload: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + payload.length);
  out.writeUInt32BE(1 + payload.length, 0);
  out[4] = kind;
  out.set(payload, 5);
  return out;
}

describe('cluster secret on the cluster port', () => {
  it('a peer with the same secret gets Raft messages, RPC calls, gossip datagrams and streams through', async () => {
    const a = await node('a', secret);
    const b = await node('b', secret);
    a.raft.setPeer('b', b.port.address());
    a.raft.send(heartbeat('a', 'b', 7));
    await waitFor('the heartbeat', () => b.raftGot.length === 1);
    const answer = await a.rpc.call(b.port.address(), 'echo', Buffer.from('hi'), { timeoutMs: 2_000 });
    assert.equal(Buffer.from(answer).toString(), 'hi');
    a.gossip.sendUdp(b.port.address(), ping('a', a.port, 1));
    await waitFor('the datagram', () => b.gossipGot.length === 1);
    const outcome = await new Promise((resolve) =>
      a.gossip.sendStream(b.port.address(), ping('a', a.port, 5), resolve),
    );
    assert.deepEqual(outcome, { ok: true });
    assert.equal(b.gossipGot.length, 2, 'the stream request arrived');
    assert.equal(a.gossipGot.length, 1, 'and its answer came back');
    assert.deepEqual(readAuthStats(b.auth!.stats), {
      gossip_udp: 0,
      gossip_stream: 0,
      raft: 0,
      rpc: 0,
      data_link: 0,
      cluster_port: 0,
    });
  });

  it('a Raft hello must name the node that proved itself in the handshake', async () => {
    const b = await node('b', secret);
    const socket = net.connect({ host: '127.0.0.1', port: b.port.port });
    socket.on('error', () => {});
    cleanups.push(() => socket.destroy());
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    // Holds the secret as node x, then claims to be a, then to be x.
    const x = new ClusterAuth({ nodeId: 'x', secret });
    openClusterConnection(socket, ClusterTags.raft, x, (opened) => {
      assert.ok(opened.ok);
      socket.write(raftFrame(1, Buffer.concat([Buffer.from([1]), Buffer.from('a')])));
      socket.write(raftFrame(2, encodeMessage(heartbeat('a', 'b', 1))));
    });
    await closed;
    const honest = net.connect({ host: '127.0.0.1', port: b.port.port });
    honest.on('error', () => {});
    cleanups.push(() => honest.destroy());
    openClusterConnection(honest, ClusterTags.raft, x, (opened) => {
      assert.ok(opened.ok);
      honest.write(raftFrame(1, Buffer.concat([Buffer.from([1]), Buffer.from('x')])));
      honest.write(raftFrame(2, encodeMessage(heartbeat('x', 'b', 2))));
    });
    await waitFor('the honest heartbeat', () => b.raftGot.length === 1);
    assert.equal(b.raftGot[0]!.type === 'heartbeat' && b.raftGot[0]!.commit, 2);
    assert.equal(b.raft.stats().rejectedInputs, 1);
  });

  it('gossip datagrams without a valid, fresh tag are dropped before decoding and counted', async () => {
    const a = await node('a', secret);
    const b = await node('b', secret);
    const rogue = await node('r', otherSecret);
    const capture = await udpSocket();
    const captured: Buffer[] = [];
    capture.on('message', (bytes) => captured.push(bytes));
    // Untagged: a well-formed packet from a node without the secret.
    await sendUdp(capture, encodePacket(ping('x', b.port, 1)), b.port.port);
    // Tagged under another secret.
    rogue.gossip.sendUdp(b.port.address(), ping('r', rogue.port, 2));
    // A genuine datagram of `a`, captured on the way and delivered twice: the copy is a replay.
    a.gossip.sendUdp(`127.0.0.1:${capture.address().port}`, ping('a', a.port, 3));
    await waitFor('the capture', () => captured.length === 1);
    await sendUdp(capture, captured[0]!, b.port.port);
    await sendUdp(capture, captured[0]!, b.port.port);
    await waitFor('three refusals', () => b.gossip.stats.authFailures === 3);
    assert.equal(b.gossipGot.length, 1, 'only the first delivery of the genuine datagram');
    assert.equal(b.gossipGot[0]!.messages[0]!.kind === 'ping' && b.gossipGot[0]!.messages[0]!.seqNo, 3);
    assert.equal(b.gossip.stats.malformedIn, 0, 'nothing reached the decoder');
    assert.equal(readAuthStats(b.auth!.stats).gossip_udp, 3);
  });

  it('TCP clients without the secret get no Raft, RPC or gossip stream processed and are disconnected', async () => {
    const b = await node('b', secret);
    const rogue = await node('r', otherSecret);
    const plain = await node('p', null);
    const target = b.port.address();

    // A raw Raft dialer: its tag, hello and a heartbeat, exactly as a node without the secret writes them.
    const raftDialer = await raw(b.port.port);
    raftDialer.socket.write(
      Buffer.concat([
        clusterTagBytes(ClusterTags.raft),
        raftFrame(1, Buffer.concat([Buffer.from([1]), Buffer.from('a')])),
        raftFrame(2, encodeMessage(heartbeat('a', 'b', 9))),
      ]),
    );
    await raftDialer.closed;
    // Raft transports of a node without the secret and of one with another secret.
    rogue.raft.setPeer('b', target);
    rogue.raft.send(heartbeat('r', 'b', 1));
    plain.raft.setPeer('b', target);
    plain.raft.send(heartbeat('p', 'b', 1));
    // RPC clients of both, and gossip streams of both.
    for (const outsider of [rogue, plain]) {
      await assert.rejects(outsider.rpc.call(target, 'echo', Buffer.from('x'), { timeoutMs: 1_000 }));
      const outcome = await new Promise<{ ok: boolean }>((resolve) =>
        outsider.gossip.sendStream(target, ping(outsider.id, outsider.port, 1), resolve),
      );
      assert.equal(outcome.ok, false);
    }
    // A connection that writes its tag and then nothing is closed at the deadline.
    const silent = await raw(b.port.port);
    silent.socket.write(clusterTagBytes(ClusterTags.rpc));
    const silentAtMs = performance.now();
    await silent.closed;
    assert.ok(performance.now() - silentAtMs < sniffTimeoutMs + 1_000, 'closed within the deadline');

    // raw Raft dialer, rogue, plain; rogue RPC, plain RPC, the silent one; rogue and plain gossip streams.
    await waitFor('every refusal counted', () => {
      const c = readAuthStats(b.auth!.stats);
      return c.raft >= 3 && c.rpc >= 3 && c.gossip_stream >= 2;
    });
    assert.deepEqual(b.raftGot, [], 'no Raft message processed');
    assert.deepEqual(b.rpcCalls, [], 'no RPC handler ran');
    assert.deepEqual(b.gossipGot, [], 'no gossip packet delivered');
    assert.equal(b.port.stats().routed.RFT1 + b.port.stats().routed.RPC1 + b.port.stats().routed.GSP1, 0);
    assert.equal(rogue.rpcCalls.length + plain.rpcCalls.length, 0);
  });
});

describe('cluster secret on the data link', () => {
  async function server(limits = { ...DATA_LINK_DEFAULTS, handshakeTimeoutMs: sniffTimeoutMs }) {
    const auth = new ClusterAuth({ nodeId: 'b', secret });
    let handled = 0;
    const s = await DataLinkServer.listen(
      '127.0.0.1',
      0,
      {
        onRequest(connection, kind, correlationId, _view, bytes, at, length) {
          handled++;
          const copy = Buffer.from(bytes.subarray(at, at + length));
          connection.reply(kind | 0x80, correlationId, copy.length, (out, _v, to) => {
            copy.copy(out, to);
          });
        },
      },
      limits,
      auth,
    );
    cleanups.push(() => s.close());
    return { s, auth, handled: () => handled };
  }

  function call(client: DataLinkClient, payload: string): Promise<{ kind: number; payload: string }> {
    const bytes = Buffer.from(payload);
    return new Promise((resolve) => {
      client.send(
        3,
        bytes.length,
        (out, _v, at) => {
          bytes.copy(out, at);
        },
        (kind, _view, b, at, length) => resolve({ kind, payload: b.toString('utf8', at, at + length) }),
        2_000,
      );
    });
  }

  function client(port: number, key: Buffer | null): DataLinkClient {
    const auth = key === null ? undefined : new ClusterAuth({ nodeId: 'a', secret: key });
    const c = new DataLinkClient('127.0.0.1', port, 'a', { ...DATA_LINK_DEFAULTS }, undefined, auth);
    cleanups.push(() => c.close());
    return c;
  }

  it('a client with the secret is served; without it or with another one nothing is processed', async () => {
    const { s, auth, handled } = await server();
    assert.deepEqual(await call(client(s.port, secret), 'replica fetch'), {
      kind: 0x83,
      payload: 'replica fetch',
    });
    assert.equal(handled(), 1);
    const plain = await call(client(s.port, null), 'forged produce');
    assert.equal(plain.kind, LinkFailureKind, 'a client without the secret gets only a failure');
    const rogue = await call(client(s.port, otherSecret), 'forged produce');
    assert.equal(rogue.kind, LinkFailureKind, 'a client with another secret gets only a failure');
    // A connection that sends nothing is closed at the handshake deadline.
    const silent = await raw(s.port);
    await silent.closed;
    assert.equal(handled(), 1, 'no forged request reached the handler');
    await waitFor('three refusals', () => s.stats.authFailures === 3);
    assert.equal(readAuthStats(auth.stats).data_link, 3);
  });
});
