// The TCP transport on 127.0.0.1: a bounded queue that drops the oldest while a peer is down and delivers the
// rest in order once it is up, and untrusted input (no protocol tag, bad hello, garbage, forged sender,
// oversized frame) counted and refused without throwing.
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import { ClusterTags, writeClusterTag } from '../../src/cluster/port.js';
import type { Message } from '../../src/core/raft/types.js';
import { encodeMessage } from '../../src/raft/codec.js';
import { defaultTransportLimits, TcpTransport, type TransportConfig } from '../../src/raft/transport.js';

async function waitFor(what: string, cond: () => boolean, deadlineMs = 5_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function config(nodeId: string, port: number, onMessage: (m: Message) => void): TransportConfig {
  return {
    ...defaultTransportLimits,
    nodeId,
    listenHost: '127.0.0.1',
    listenPort: port,
    frameBytesMax: 1024,
    sendQueueFramesMax: 4,
    reconnectBackoffMinMs: 5,
    reconnectBackoffMaxMs: 40,
    onMessage,
  };
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

const heartbeat = (from: string, to: string, commit: number): Message => ({
  type: 'heartbeat',
  from,
  to,
  term: 1,
  commit,
});

test('while a peer is down its queue keeps only the newest frames, which arrive in order once it is up', async () => {
  const port = await freePort();
  const a = await TcpTransport.listen(config('a', 0, () => {}));
  const got: Message[] = [];
  let b: TcpTransport | undefined;
  try {
    a.setPeer('b', `127.0.0.1:${port}`);
    for (let i = 1; i <= 10; i++) assert.deepEqual(a.send(heartbeat('a', 'b', i)), { kind: 'queued' });
    const stats = a.stats().peers.b!;
    assert.equal(stats.queuedFrames, 4);
    assert.equal(stats.droppedFrames, 6);
    assert.deepEqual(a.send(heartbeat('a', 'zz', 1)), { kind: 'unknown_peer' });
    b = await TcpTransport.listen(config('b', port, (m) => got.push(m)));
    await waitFor('the queued frames', () => got.length === 4);
    assert.deepEqual(
      got.map((m) => (m.type === 'heartbeat' ? m.commit : -1)),
      [7, 8, 9, 10],
    );
    assert.ok(a.stats().peers.b!.connectAttempts >= 2, 'the sender redialled with backoff');
  } finally {
    await a.close();
    await b?.close();
  }
});

function rawFrame(kind: number, payload: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + payload.length);
  out.writeUInt32BE(1 + payload.length, 0);
  out[4] = kind;
  out.set(payload, 5);
  return out;
}

/** A raw connection that has written the Raft protocol tag (unless `tagged` is false). */
async function rawConnect(port: number, tagged = true): Promise<net.Socket> {
  const s = net.connect({ host: '127.0.0.1', port });
  s.on('error', () => {});
  if (tagged) writeClusterTag(s, ClusterTags.raft);
  await new Promise<void>((r) => s.once('connect', () => r()));
  return s;
}

test('garbage, forged senders and oversized frames are counted and refused, and good messages still flow', async () => {
  const got: Message[] = [];
  const b = await TcpTransport.listen(config('b', 0, (m) => got.push(m)));
  const port = Number(b.address().split(':').pop());
  const sockets: net.Socket[] = [];
  try {
    const s = await rawConnect(port);
    sockets.push(s);
    s.write(rawFrame(1, Buffer.concat([Buffer.from([1]), Buffer.from('a')])));
    s.write(rawFrame(2, Buffer.from([1, 2, 3, 4, 5])));
    s.write(rawFrame(2, encodeMessage(heartbeat('mallory', 'b', 1))));
    s.write(rawFrame(2, encodeMessage(heartbeat('a', 'not-b', 1))));
    s.write(rawFrame(2, encodeMessage(heartbeat('a', 'b', 42))));
    await waitFor('the good message', () => got.length === 1);
    assert.equal(got[0]!.type === 'heartbeat' && got[0]!.commit, 42);
    assert.equal(b.stats().rejectedInputs, 3);

    // A connection that does not start with a hello is closed.
    const noHello = await rawConnect(port);
    sockets.push(noHello);
    const closed1 = new Promise<void>((r) => noHello.once('close', () => r()));
    noHello.write(rawFrame(2, encodeMessage(heartbeat('a', 'b', 1))));
    await closed1;

    // A frame announcing more than frameBytesMax is refused before its bytes arrive.
    const big = await rawConnect(port);
    sockets.push(big);
    const closed2 = new Promise<void>((r) => big.once('close', () => r()));
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1_000_000, 0);
    big.write(header);
    await closed2;
    assert.equal(b.stats().rejectedInputs, 5);

    // A connection without the Raft tag never reaches the transport: a hello and a good message are ignored.
    const untagged = await rawConnect(port, false);
    sockets.push(untagged);
    const closed3 = new Promise<void>((r) => untagged.once('close', () => r()));
    untagged.write(rawFrame(1, Buffer.concat([Buffer.from([1]), Buffer.from('a')])));
    untagged.write(rawFrame(2, encodeMessage(heartbeat('a', 'b', 43))));
    await closed3;
    assert.equal(got.length, 1);
  } finally {
    for (const s of sockets) s.destroy();
    await b.close();
  }
});

test('a connection over which nothing comes back for silentPeerMs is redialled, and a redial by the peer redials ours', async () => {
  const silentPeerMs = 200;
  // A peer that accepts and reads but never answers: what a connection across a cut link looks like.
  const sockets: net.Socket[] = [];
  const mute = net.createServer((socket) => {
    sockets.push(socket);
    socket.on('data', () => {});
    socket.on('error', () => {});
  });
  await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
  const mutePort = (mute.address() as net.AddressInfo).port;
  const a = await TcpTransport.listen({ ...config('a', 0, () => {}), silentPeerMs });
  try {
    a.setPeer('b', `127.0.0.1:${mutePort}`);
    const sendUntil = Date.now() + 4 * silentPeerMs;
    while (Date.now() < sendUntil) {
      a.send(heartbeat('a', 'b', 1));
      await new Promise((r) => setTimeout(r, 20));
    }
    await waitFor('a redial of the silent connection', () => sockets.length >= 2);
    assert.ok(a.stats().peers.b!.silentResets >= 1);

    // A live peer that answers is never redialled for silence.
    const got: Message[] = [];
    const c = await TcpTransport.listen({ ...config('c', 0, (m) => got.push(m)), silentPeerMs });
    try {
      a.setPeer('c', c.address());
      c.setPeer('a', a.address());
      const until = Date.now() + 4 * silentPeerMs;
      while (Date.now() < until) {
        a.send(heartbeat('a', 'c', 1));
        c.send({ type: 'heartbeat_response', from: 'c', to: 'a', term: 1 });
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(a.stats().peers.c!.silentResets, 0);
      assert.ok(got.length > 0);
      // c dials a anew (as after c gave up on a path): a's older connection to c is redialled too.
      const before = a.stats().peers.c!.connectAttempts;
      c.removePeer('a');
      c.setPeer('a', a.address());
      await waitFor('a to redial its old connection to c', () => a.stats().peers.c!.connectAttempts > before);
    } finally {
      await c.close();
    }
  } finally {
    await a.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => mute.close(() => r()));
  }
});
