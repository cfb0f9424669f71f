// The cluster port on 127.0.0.1: TCP and UDP bound to one number (port 0 included), each connection routed by
// its 4-byte tag with the bytes that followed it, unknown or missing tags dropped and counted, and close()
// freeing the number for a new port.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { ClusterPort, ClusterTags, clusterTagBytes, writeClusterTag } from '../../src/cluster/port.js';

const opened: ClusterPort[] = [];
const sockets: Socket[] = [];

async function openPort(
  port = 0,
  limits: Parameters<typeof ClusterPort.open>[0]['limits'] = {},
): Promise<ClusterPort> {
  const p = await ClusterPort.open({ host: '127.0.0.1', port, limits });
  opened.push(p);
  return p;
}

function rawConnect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => resolve(socket));
    socket.once('error', reject);
    sockets.push(socket);
  });
}

function closedPromise(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve();
    else socket.once('close', () => resolve());
  });
}

async function waitFor(what: string, deadlineMs: number, condition: () => boolean): Promise<void> {
  const startMs = Date.now();
  while (!condition()) {
    if (Date.now() - startMs > deadlineMs) assert.fail(`${what}: not within ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(opened.splice(0).map((p) => p.close()));
});

describe('cluster port', () => {
  it('binds TCP and UDP on the same system-chosen number', async () => {
    const p = await openPort();
    assert.ok(p.port > 0);
    assert.equal(p.udp.address().port, p.port);
    assert.equal(p.address(), `127.0.0.1:${p.port}`);
    // A datagram to the number reaches the UDP socket.
    const got = new Promise<Buffer>((resolve) => p.udp.once('message', (bytes) => resolve(bytes)));
    const raw = createSocket('udp4');
    raw.send(Buffer.from('hi'), p.port, '127.0.0.1');
    assert.equal((await got).toString(), 'hi');
    raw.close();
    // And a TCP connection to it is accepted by the port.
    const s = await rawConnect(p.port);
    writeClusterTag(s, ClusterTags.raft);
    await waitFor('connection accepted', 2_000, () => p.stats().accepted === 1);
  });

  it('routes each tag to its handler with the bytes that followed the tag', async () => {
    const p = await openPort();
    const seen: { tag: string; head: string; rest: string }[] = [];
    for (const tag of Object.values(ClusterTags)) {
      p.register(tag, (socket, head) => {
        const entry = { tag, head: head.toString(), rest: '' };
        seen.push(entry);
        socket.on('data', (chunk: Buffer) => {
          entry.rest += chunk.toString();
        });
      });
    }
    const raft = await rawConnect(p.port);
    raft.write(Buffer.concat([clusterTagBytes(ClusterTags.raft), Buffer.from('hello')]));
    const gossip = await rawConnect(p.port);
    // The tag split over two writes still counts.
    gossip.write('GS');
    await new Promise((resolve) => setTimeout(resolve, 20));
    gossip.write('P1');
    const rpc = await rawConnect(p.port);
    writeClusterTag(rpc, ClusterTags.rpc);
    await waitFor('three routed', 2_000, () => seen.length === 3);
    rpc.write('later');
    await waitFor('later bytes delivered', 2_000, () => seen.find((e) => e.tag === 'RPC1')?.rest === 'later');
    const byTag = new Map(seen.map((e) => [e.tag, e]));
    assert.equal(byTag.get('RFT1')!.head + byTag.get('RFT1')!.rest, 'hello');
    assert.equal(byTag.get('GSP1')!.head, '');
    assert.deepEqual(p.stats().routed, { RFT1: 1, GSP1: 1, RPC1: 1 });
    assert.equal(p.stats().sniffing, 0);
    assert.equal(p.stats().open, 3);
  });

  it('drops an unknown tag, a tag without a handler, and a connection silent past the deadline', async () => {
    const p = await openPort(0, { sniffTimeoutMs: 200 });
    let routed = 0;
    p.register(ClusterTags.raft, () => routed++);
    const unknown = await rawConnect(p.port);
    unknown.write('HTTP/1.1 GET /');
    await closedPromise(unknown);
    const unhandled = await rawConnect(p.port);
    writeClusterTag(unhandled, ClusterTags.rpc);
    await closedPromise(unhandled);
    const silent = await rawConnect(p.port);
    silent.write('RF');
    const startMs = Date.now();
    await closedPromise(silent);
    assert.ok(Date.now() - startMs >= 150, 'the silent connection was held until its deadline');
    const stats = p.stats();
    assert.equal(stats.unknownTags, 1);
    assert.equal(stats.unhandledTags, 1);
    assert.equal(stats.sniffTimeouts, 1);
    assert.equal(routed, 0);
    await waitFor('connections released', 2_000, () => p.stats().open === 0);
  });

  it('refuses connections beyond the bound on those still waiting for their tag', async () => {
    const p = await openPort(0, { sniffingConnectionsMax: 2, sniffTimeoutMs: 5_000 });
    await rawConnect(p.port);
    await rawConnect(p.port);
    await waitFor('two sniffing', 2_000, () => p.stats().sniffing === 2);
    const third = await rawConnect(p.port);
    await closedPromise(third);
    assert.equal(p.stats().sniffRefused, 1);
  });

  it('an unregistered tag stops routing, and only its own handler can unregister it', async () => {
    const p = await openPort();
    const first = () => {};
    const second = (socket: Socket) => socket.end();
    p.register(ClusterTags.rpc, first);
    assert.throws(() => p.register(ClusterTags.rpc, second), /already registered/);
    p.unregister(ClusterTags.rpc, first);
    p.register(ClusterTags.rpc, second);
    p.unregister(ClusterTags.rpc, first);
    const s = await rawConnect(p.port);
    writeClusterTag(s, ClusterTags.rpc);
    await closedPromise(s);
    assert.equal(p.stats().routed.RPC1, 1);
  });

  it('close ends handed-off connections and frees the number for TCP and UDP', async () => {
    const p = await openPort();
    p.register(ClusterTags.raft, (socket) => socket.on('data', () => {}));
    const s = await rawConnect(p.port);
    writeClusterTag(s, ClusterTags.raft);
    await waitFor('routed', 2_000, () => p.stats().routed.RFT1 === 1);
    const number = p.port;
    opened.splice(opened.indexOf(p), 1);
    await p.close();
    await closedPromise(s);
    const again = await openPort(number);
    assert.equal(again.port, number);
    assert.equal(again.udp.address().port, number);
  });

  it('a fixed number already taken fails to open', async () => {
    const p = await openPort();
    await assert.rejects(ClusterPort.open({ host: '127.0.0.1', port: p.port }), { code: 'EADDRINUSE' });
  });
});
