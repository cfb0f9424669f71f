// Fuzz properties of the gossip and Raft wire codecs (issue 16), beyond the round trips of
// test/gossip-net/codec.test.ts and test/raft-net/codec.test.ts: larger random datagrams, random bytes behind a
// correct version byte (so that they reach the Avro decoder), and valid encodings mutated by flips,
// insertions, deletions and splices. The decoders never throw; garbage is a `{ ok: false }` value with a
// reason; whatever they accept is a well-formed message that re-encodes to an equal one.
// Pure; runs on the main thread of a test or of tools/fuzz.ts.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { GossipMessage, Packet } from '../../../src/core/gossip/messages.js';
import type { Message } from '../../../src/core/raft/types.js';
import { decodePacket, encodePacket, GOSSIP_WIRE_VERSION } from '../../../src/gossip/codec.js';
import { decodeMessage, encodeMessage, RAFT_WIRE_VERSION } from '../../../src/raft/codec.js';
import { type FuzzProperty, fuzzProperty } from './fuzz-support.js';

const id = fc.string({ minLength: 1, maxLength: 10 });
const n = fc.nat({ max: 2 ** 40 });
const raftArb: fc.Arbitrary<Message> = fc.oneof(
  fc.record({ type: fc.constant('heartbeat' as const), from: id, to: id, term: n, commit: n }),
  fc.record({
    type: fc.constant('vote' as const),
    from: id,
    to: id,
    term: n,
    lastLogIndex: n,
    lastLogTerm: n,
    preVote: fc.boolean(),
    transfer: fc.boolean(),
  }),
  fc.record({
    type: fc.constant('append' as const),
    from: id,
    to: id,
    term: n,
    prevLogIndex: n,
    prevLogTerm: n,
    entries: fc.array(
      fc.record({
        index: n,
        term: n,
        kind: fc.constantFrom('normal' as const, 'conf' as const),
        data: fc.uint8Array({ maxLength: 24 }),
      }),
      { maxLength: 4 },
    ),
    commit: n,
  }),
  fc.record({
    type: fc.constant('snapshot' as const),
    from: id,
    to: id,
    term: n,
    snapshot: fc.record({
      index: n,
      term: n,
      conf: fc.record({ voters: fc.array(id, { maxLength: 3 }), learners: fc.array(id, { maxLength: 2 }) }),
      data: fc.uint8Array({ maxLength: 24 }),
    }),
  }),
);

const text = fc.string({ maxLength: 12 });
const seqNo = fc.integer({ min: 0, max: 0x7fffffff });
const meta = fc.record({
  httpHost: text,
  httpPort: fc.integer({ min: 0, max: 65_535 }),
  clusterHost: text,
  clusterPort: fc.integer({ min: 0, max: 65_535 }),
  rack: text,
  version: text,
  dataPorts: fc.array(fc.integer({ min: 0, max: 65_535 }), { maxLength: 3 }),
  kafkaPort: fc.integer({ min: 0, max: 65_535 }),
});
const gossipMessageArb: fc.Arbitrary<GossipMessage> = fc.oneof(
  fc.record({ kind: fc.constant('ping' as const), seqNo, targetId: text }),
  fc.record({ kind: fc.constant('ack' as const), seqNo }),
  fc.record({ kind: fc.constant('alive' as const), nodeId: text, address: text, incarnation: n, meta }),
  fc.record({ kind: fc.constant('suspect' as const), nodeId: text, incarnation: n, accuserId: text }),
  fc.record({
    kind: fc.constant('push_pull' as const),
    join: fc.boolean(),
    isReply: fc.boolean(),
    states: fc.array(
      fc.record({
        nodeId: text,
        address: text,
        incarnation: n,
        state: fc.constantFrom('alive' as const, 'suspect' as const, 'dead' as const, 'left' as const),
        meta,
      }),
      { maxLength: 3 },
    ),
  }),
);
const packetArb: fc.Arbitrary<Packet> = fc.record({
  senderId: text,
  senderAddress: text,
  messages: fc.array(gossipMessageArb, { maxLength: 5 }),
});

type Mutation =
  | { readonly kind: 'flip'; readonly at: number; readonly xor: number }
  | { readonly kind: 'insert'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: 'delete'; readonly at: number; readonly length: number }
  | { readonly kind: 'set'; readonly at: number; readonly value: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 9 }),
  }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 9 }) }),
  // Avro lengths and counts are zigzag varints: 0xff.. bytes make huge ones, 0x01 a negative one.
  fc.record({
    kind: fc.constant('set' as const),
    at: fc.nat(),
    value: fc.constantFrom(0x00, 0x01, 0x7f, 0x80, 0xff),
  }),
);

/** Applies `mutations` to a copy of `bytes`; the version byte (0) is kept so that the body is what is tested. */
function mutate(bytes: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let out = Buffer.from(bytes);
  for (const m of mutations) {
    const at = out.length <= 1 ? 1 : 1 + (m.at % (out.length - 1));
    if (m.kind === 'flip' && at < out.length) out[at] = out[at]! ^ m.xor;
    else if (m.kind === 'set' && at < out.length) out[at] = m.value;
    else if (m.kind === 'insert') out = Buffer.concat([out.subarray(0, at), m.bytes, out.subarray(at)]);
    else if (m.kind === 'delete') out = Buffer.concat([out.subarray(0, at), out.subarray(at + m.length)]);
  }
  return new Uint8Array(out);
}

function checkRaft(bytes: Uint8Array): void {
  const result = decodeMessage(bytes);
  if (!result.ok) {
    assert.ok(typeof result.reason === 'string' && typeof result.detail === 'string', 'a failure value');
    return;
  }
  assert.deepEqual(decodeMessage(encodeMessage(result.message)), result, 'an accepted message re-encodes');
}

function checkGossip(bytes: Uint8Array): void {
  const result = decodePacket(bytes);
  if (!result.ok) {
    assert.ok(typeof result.reason === 'string' && typeof result.detail === 'string', 'a failure value');
    return;
  }
  assert.deepEqual(decodePacket(encodePacket(result.packet)), result, 'an accepted packet re-encodes');
}

const bodyBytes = fc.uint8Array({ maxLength: 600 });

export const codecProperties: readonly FuzzProperty[] = [
  fuzzProperty('Raft: random frames, with or without the right version byte, never throw', 300, () =>
    fc.property(bodyBytes, fc.boolean(), (bytes, versioned) => {
      const frame = versioned ? new Uint8Array([RAFT_WIRE_VERSION, ...bytes]) : bytes;
      if (!versioned && bytes[0] !== RAFT_WIRE_VERSION) assert.equal(decodeMessage(frame).ok, false);
      checkRaft(frame);
    }),
  ),
  fuzzProperty('Raft: mutated valid messages never throw, and what is accepted re-encodes', 300, () =>
    fc.property(raftArb, fc.array(mutationArb, { minLength: 1, maxLength: 4 }), (message, mutations) => {
      checkRaft(mutate(encodeMessage(message), mutations));
    }),
  ),
  fuzzProperty('Raft: two valid messages spliced together are refused or decode cleanly', 300, () =>
    fc.property(raftArb, raftArb, fc.nat(), fc.nat(), (a, b, cutA, cutB) => {
      const x = encodeMessage(a);
      const y = encodeMessage(b);
      checkRaft(Buffer.concat([x.subarray(0, cutA % (x.length + 1)), y.subarray(cutB % (y.length + 1))]));
      assert.equal(decodeMessage(Buffer.concat([x, y])).ok, false, 'bytes after a message are refused');
    }),
  ),
  fuzzProperty('gossip: random datagrams, with or without the right version byte, never throw', 300, () =>
    fc.property(bodyBytes, fc.boolean(), (bytes, versioned) => {
      const frame = versioned ? new Uint8Array([GOSSIP_WIRE_VERSION, ...bytes]) : bytes;
      if (!versioned && bytes[0] !== GOSSIP_WIRE_VERSION) assert.equal(decodePacket(frame).ok, false);
      checkGossip(frame);
    }),
  ),
  fuzzProperty('gossip: mutated valid packets never throw, and what is accepted re-encodes', 300, () =>
    fc.property(packetArb, fc.array(mutationArb, { minLength: 1, maxLength: 4 }), (packet, mutations) => {
      checkGossip(mutate(encodePacket(packet), mutations));
    }),
  ),
  fuzzProperty('gossip: two valid packets spliced together are refused or decode cleanly', 300, () =>
    fc.property(packetArb, packetArb, fc.nat(), fc.nat(), (a, b, cutA, cutB) => {
      const x = encodePacket(a);
      const y = encodePacket(b);
      checkGossip(Buffer.concat([x.subarray(0, cutA % (x.length + 1)), y.subarray(cutB % (y.length + 1))]));
      assert.equal(decodePacket(Buffer.concat([x, y])).ok, false, 'bytes after a packet are refused');
    }),
  ),
];
