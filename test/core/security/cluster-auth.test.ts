// The cluster secret's pure core (src/core/security/cluster-auth.ts): the mutual challenge-response that opens
// node-to-node TCP connections and the tagged, fresh-only gossip datagrams. The MAC is the real HMAC-SHA256
// (the core takes it injected); nonces and clocks are fixed, so every run is the same.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import {
  AcceptorHandshake,
  DialerHandshake,
  GOSSIP_TRAILER_BYTES,
  GossipReplayGuard,
  type HandshakeStep,
  type Mac,
  NONCE_BYTES,
  openDatagram,
  sealDatagram,
} from '../../../src/core/security/cluster-auth.js';

const macOf =
  (key: string): Mac =>
  (data) =>
    createHmac('sha256', key).update(data).digest();
const right = macOf('the cluster secret, 32 bytes or more');
const wrong = macOf('some other secret of 32 bytes or more');
const nonce = (fill: number): Uint8Array => new Uint8Array(NONCE_BYTES).fill(fill);

function pair(tag: string, dialerMac: Mac, acceptorMac: Mac, fill = 1) {
  return {
    dialer: new DialerHandshake({ tag, selfId: 'node-a', nonce: nonce(fill), mac: dialerMac }),
    acceptor: new AcceptorHandshake({ tag, selfId: 'node-b', nonce: nonce(fill + 1), mac: acceptorMac }),
  };
}

/** Feeds `bytes` one byte at a time; returns the last step (every earlier one must be pending). */
function trickle(side: { push(chunk: Uint8Array): HandshakeStep }, bytes: Uint8Array): HandshakeStep[] {
  const steps: HandshakeStep[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const step = side.push(bytes.subarray(i, i + 1));
    steps.push(step);
    if (step.kind !== 'pending') break;
  }
  return steps;
}

function sent(steps: readonly HandshakeStep[]): Uint8Array {
  const parts = steps.flatMap((s) => (s.kind !== 'failed' && s.send !== undefined ? [s.send] : []));
  return Buffer.concat(parts);
}

test('both sides prove the secret however the bytes are cut, and pipelined protocol bytes come out intact', () => {
  const { dialer, acceptor } = pair('RFT1', right, right);
  const protocol = Buffer.from('the first raft frame');
  const toAcceptor = trickle(acceptor, dialer.start());
  assert.equal(toAcceptor.at(-1)?.kind, 'pending', 'the acceptor waits for the dialer proof');
  const serverHello = sent(toAcceptor);
  assert.ok(serverHello.length > 0, 'the acceptor answered the hello');
  const toDialer = trickle(dialer, serverHello);
  const done = toDialer.at(-1)!;
  assert.equal(done.kind, 'done');
  assert.equal(done.kind === 'done' && done.peerId, 'node-b');
  const proof = sent(toDialer);
  // The dialer's proof and its first frame arrive in one read.
  const last = acceptor.push(Buffer.concat([proof, protocol]));
  assert.equal(last.kind, 'done');
  assert.equal(last.kind === 'done' && last.peerId, 'node-a');
  assert.deepEqual(last.kind === 'done' && Buffer.from(last.rest), protocol);
});

test('a dialer without the secret is refused at its proof, and an acceptor without it at its own', () => {
  const outsider = pair('RPC1', wrong, right);
  const serverHello = outsider.acceptor.push(outsider.dialer.start());
  assert.equal(serverHello.kind, 'pending');
  const dialerView = outsider.dialer.push(
    serverHello.kind === 'pending' ? serverHello.send! : new Uint8Array(),
  );
  assert.deepEqual(dialerView, { kind: 'failed', reason: 'wrong acceptor proof' });
  // An outsider that ignores the acceptor's proof and sends 32 bytes of its own making is refused too.
  const forged = outsider.acceptor.push(wrong(Buffer.from('anything')));
  assert.deepEqual(forged, { kind: 'failed', reason: 'wrong dialer proof' });
  // An acceptor without the secret cannot pass itself off to a dialer that has it.
  const fake = pair('RPC1', right, wrong);
  const fakeHello = fake.acceptor.push(fake.dialer.start());
  assert.equal(
    fake.dialer.push(fakeHello.kind === 'pending' ? fakeHello.send! : new Uint8Array()).kind,
    'failed',
  );
});

test('bytes that are not a hello fail at the first wrong byte, before anything is buffered', () => {
  const { acceptor } = pair('RFT1', right, right);
  // A node without the secret starts with its protocol's own bytes (here a Raft hello frame's length).
  assert.deepEqual(acceptor.push(Uint8Array.of(0, 0)), { kind: 'failed', reason: 'no authentication hello' });
  const empty = pair('RFT1', right, right).acceptor;
  const hello = new Uint8Array(37);
  hello.set(Buffer.from('CAU1'));
  assert.deepEqual(empty.push(hello), { kind: 'failed', reason: 'empty node id' });
});

test('a proof is bound to its role, protocol and nonces: reflected, cross-protocol and replayed ones fail', () => {
  // Reflection: an outsider relays the acceptor's own proof back as the dialer's.
  const { dialer, acceptor } = pair('RFT1', right, right);
  const step = acceptor.push(dialer.start());
  const serverHello = step.kind === 'pending' ? step.send! : new Uint8Array();
  const acceptorProof = serverHello.subarray(serverHello.length - 32);
  assert.deepEqual(acceptor.push(acceptorProof), { kind: 'failed', reason: 'wrong dialer proof' });

  // A proof made for the Raft tag does not open an RPC connection with the same nonces.
  const raft = pair('RFT1', right, right, 7);
  const rpc = pair('RPC1', right, right, 7);
  const raftHello = raft.dialer.start();
  const raftServer = raft.acceptor.push(raftHello);
  const raftProof = raft.dialer.push(raftServer.kind === 'pending' ? raftServer.send! : new Uint8Array());
  rpc.acceptor.push(raftHello);
  assert.equal(
    rpc.acceptor.push(raftProof.kind === 'done' ? raftProof.send! : new Uint8Array()).kind,
    'failed',
  );

  // A whole recorded dialer side replayed to an acceptor with a fresh nonce fails.
  const recorded = pair('GSP1', right, right, 9);
  const hello = recorded.dialer.start();
  const answer = recorded.acceptor.push(hello);
  const proofStep = recorded.dialer.push(answer.kind === 'pending' ? answer.send! : new Uint8Array());
  const fresh = new AcceptorHandshake({ tag: 'GSP1', selfId: 'node-b', nonce: nonce(99), mac: right });
  assert.equal(fresh.push(hello).kind, 'pending');
  assert.equal(fresh.push(proofStep.kind === 'done' ? proofStep.send! : new Uint8Array()).kind, 'failed');
});

test('a gossip datagram opens only whole and under the right key', () => {
  const packet = Buffer.from('a SWIM ping from node-a');
  const sealed = sealDatagram(packet, 1_700_000_000_123, right);
  assert.equal(sealed.length, packet.length + GOSSIP_TRAILER_BYTES);
  const opened = openDatagram(sealed, right);
  assert.ok(opened.ok);
  assert.deepEqual(Buffer.from(opened.packet), packet);
  assert.equal(opened.sentAtMs, 1_700_000_000_123);
  assert.deepEqual(openDatagram(sealed, wrong), { ok: false, reason: 'bad_tag' });
  assert.deepEqual(openDatagram(packet.subarray(0, 10), right), { ok: false, reason: 'short' });
  for (let i = 0; i < sealed.length; i++) {
    const flipped = Uint8Array.from(sealed);
    flipped[i]! ^= 0x01;
    assert.equal(openDatagram(flipped, right).ok, false, `a flipped bit at byte ${i} is caught`);
  }
});

test('the replay guard takes a datagram once, inside its window only, and stays bounded', () => {
  const guard = new GossipReplayGuard(30_000, 3);
  const tag = (n: number): Uint8Array => new Uint8Array(16).fill(n);
  assert.equal(guard.check(100_000, tag(1), 100_000), 'fresh');
  assert.equal(guard.check(100_000, tag(1), 100_500), 'replayed', 'the same datagram again');
  assert.equal(guard.check(60_000, tag(2), 100_000), 'stale', 'sent 40 s ago');
  assert.equal(guard.check(140_000, tag(3), 100_000), 'future', 'sent 40 s from now');
  assert.equal(guard.check(Number.NaN, tag(4), 100_000), 'stale');
  assert.equal(guard.check(100_001, tag(5), 100_001), 'fresh');
  assert.equal(guard.check(100_002, tag(6), 100_002), 'fresh');
  assert.equal(guard.size, 3);
  assert.equal(guard.check(100_003, tag(7), 100_003), 'fresh', 'full: the oldest is forgotten');
  assert.equal(guard.size, 3);
  assert.equal(guard.forgottenEarly, 1);
  // Out of the window the captured datagram is stale, not merely forgotten.
  assert.equal(guard.check(100_000, tag(1), 200_000), 'stale');
  assert.equal(guard.size, 0, 'expired tags are dropped');
});
