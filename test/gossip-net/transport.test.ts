// The gossip transport on real loopback sockets: garbage datagrams are counted and dropped without harming the
// socket, a push-pull request is answered on its own connection, and the stream bounds hold (frame length,
// connection count, the per-connection deadline, an unreachable peer).
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { ClusterTags, writeClusterTag } from '../../src/cluster/port.js';
import type { Packet } from '../../src/core/gossip/messages.js';
import { GossipTransport, parseAddress, type TransportKind } from '../../src/gossip/transport.js';

type Received = { from: string; packet: Packet; kind: TransportKind };
const opened: GossipTransport[] = [];
const sockets: Socket[] = [];

async function open(
  limits: Parameters<typeof GossipTransport.open>[0]['limits'] = {},
  onPacket: (r: Received, self: GossipTransport) => void = () => {},
): Promise<{ transport: GossipTransport; received: Received[] }> {
  const received: Received[] = [];
  let self: GossipTransport | undefined;
  const transport = await GossipTransport.open({
    host: '127.0.0.1',
    port: 0,
    limits,
    onPacket: (from, packet, kind) => {
      received.push({ from, packet, kind });
      onPacket({ from, packet, kind }, self!);
    },
  });
  self = transport;
  opened.push(transport);
  return { transport, received };
}

async function waitFor(what: string, deadlineMs: number, condition: () => boolean): Promise<void> {
  const startMs = Date.now();
  while (!condition()) {
    if (Date.now() - startMs > deadlineMs) assert.fail(`${what}: not within ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A raw connection that has written the gossip stream tag (unless `tagged` is false). */
function rawConnect(address: string, tagged = true): Promise<Socket> {
  const { host, port } = parseAddress(address)!;
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port }, () => resolve(socket));
    socket.on('error', reject);
    if (tagged) writeClusterTag(socket, ClusterTags.gossip);
    sockets.push(socket);
  });
}

const ping = (from: GossipTransport, seqNo: number): Packet => ({
  senderId: 'a',
  senderAddress: from.address,
  messages: [{ kind: 'ping', seqNo, targetId: 'b' }],
});

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(opened.splice(0).map((t) => t.close()));
});

describe('gossip transport', () => {
  it('binds UDP and TCP on one port and reports host:port', async () => {
    const { transport } = await open();
    assert.equal(transport.address, `127.0.0.1:${transport.port}`);
    assert.ok(transport.port > 0);
  });

  it('drops garbage datagrams, counts them, and still delivers the next good one with its source', async () => {
    const a = await open();
    const b = await open();
    const raw = createSocket('udp4');
    const target = parseAddress(b.transport.address)!;
    await new Promise<void>((resolve) =>
      raw.send(Buffer.of(1, 0xff, 0xff, 0xff), target.port, target.host, () => resolve()),
    );
    await new Promise<void>((resolve) =>
      raw.send(Buffer.alloc(0), target.port, target.host, () => resolve()),
    );
    raw.close();
    await waitFor('garbage seen', 2_000, () => b.transport.stats.datagramsIn === 2);
    assert.equal(b.transport.stats.malformedIn, 2);
    assert.equal(b.received.length, 0);
    a.transport.sendUdp(b.transport.address, ping(a.transport, 9));
    await waitFor('ping delivered', 2_000, () => b.received.length === 1);
    assert.deepEqual(b.received[0], { from: a.transport.address, packet: ping(a.transport, 9), kind: 'udp' });
  });

  it('answers a stream request on the same connection', async () => {
    const a = await open();
    const b = await open({}, (r, self) => {
      // What the agent does with a push-pull: reply to the sender's gossip address while handling it.
      self.sendStream(r.from, {
        senderId: 'b',
        senderAddress: self.address,
        messages: [{ kind: 'ack', seqNo: 5 }],
      });
    });
    a.transport.sendStream(b.transport.address, ping(a.transport, 5));
    await waitFor('reply delivered', 2_000, () => a.received.length === 1);
    assert.deepEqual(b.received, [
      { from: a.transport.address, packet: ping(a.transport, 5), kind: 'stream' },
    ]);
    assert.equal(a.received[0]!.from, b.transport.address);
    assert.equal(a.received[0]!.kind, 'stream');
    assert.deepEqual(a.received[0]!.packet.messages, [{ kind: 'ack', seqNo: 5 }]);
    // The reply went back on the request's connection: B never dialled A.
    assert.equal(b.transport.stats.streamsOut, 0);
    assert.equal(a.transport.stats.streamsIn, 0);
    await waitFor('connections closed', 2_000, () => a.transport.openStreams + b.transport.openStreams === 0);
  });

  it('closes a connection that announces a frame over the bound', async () => {
    const b = await open({ streamFrameBytesMax: 1024 });
    const socket = await rawConnect(b.transport.address);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1025, 0);
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write(header);
    await closed;
    assert.equal(b.transport.stats.streamsFailed, 1);
    assert.equal(b.received.length, 0);
  });

  it('refuses connections beyond the bound and ends idle ones at the deadline', async () => {
    const b = await open({ streamConnectionsMax: 2, streamTimeoutMs: 300 });
    await rawConnect(b.transport.address);
    await rawConnect(b.transport.address);
    await waitFor('two connections held', 2_000, () => b.transport.openStreams === 2);
    const third = await rawConnect(b.transport.address);
    await new Promise<void>((resolve) => third.on('close', () => resolve()));
    assert.equal(b.transport.stats.streamsRefused, 1);
    // A connection that never sends the tag is not a stream and is ended at the same deadline.
    const untagged = await rawConnect(b.transport.address, false);
    await new Promise<void>((resolve) => untagged.on('close', () => resolve()));
    assert.equal(b.transport.stats.streamsIn, 2);
    // The two silent connections hold their slots only until the per-connection deadline.
    await waitFor('idle connections ended', 3_000, () => b.transport.openStreams === 0);
    assert.equal(b.transport.stats.streamsFailed, 2);
  });

  it('counts a stream to an unreachable peer as failed without throwing', async () => {
    const a = await open({ streamTimeoutMs: 500 });
    const gone = await open();
    const goneAddress = gone.transport.address;
    await gone.transport.close();
    a.transport.sendStream(goneAddress, ping(a.transport, 1));
    await waitFor('failure counted', 2_000, () => a.transport.stats.streamsFailed === 1);
    await waitFor('connection released', 2_000, () => a.transport.openStreams === 0);
    a.transport.sendUdp('not-an-address', ping(a.transport, 2));
    assert.equal(a.transport.stats.sendErrors, 1);
  });

  it('tells a port nothing listens on (refused) from an open one', async () => {
    const a = await open();
    const b = await open();
    const closedAddress = b.transport.address;
    await b.transport.close();
    const probe = (address: string): Promise<boolean> =>
      new Promise((resolve) => a.transport.probeListening(address, 500, resolve));
    assert.equal(await probe(closedAddress), true, 'a closed port refuses');
    assert.equal(await probe(a.transport.address), false, 'an open port accepts');
  });
});
