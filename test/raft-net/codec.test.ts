// The Raft wire codec: every message type round-trips (fast-check), bytes are stable, and garbage of every
// kind (random bytes, truncations, bit flips, wrong version, huge array counts, invalid fields) is a value.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Entry, Message, MessageType, Snapshot } from '../../src/core/raft/types.js';
import { decodeMessage, encodeMessage, messageType, RAFT_WIRE_VERSION } from '../../src/raft/codec.js';

// Plain objects, as the decoder builds them, so that deepEqual compares prototypes too.
const rec = <T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }) => fc.record(model, { noNullPrototype: true });
const id = fc.string({ minLength: 1, maxLength: 12 });
// Avro longs are zigzag-encoded, so avsc keeps integers exact only below 2^52 (see wireIntegerMax).
const n = fc.nat({ max: 2 ** 52 - 1 });
const bytes = fc.uint8Array({ maxLength: 40 });
const entry: fc.Arbitrary<Entry> = rec({
  index: n,
  term: n,
  kind: fc.constantFrom('normal' as const, 'conf' as const),
  data: bytes,
});
const snapshot: fc.Arbitrary<Snapshot> = rec({
  index: n,
  term: n,
  conf: rec({ voters: fc.array(id, { maxLength: 5 }), learners: fc.array(id, { maxLength: 3 }) }),
  data: bytes,
});
const head = { from: id, to: id, term: n };

const messageArbs: Record<MessageType, fc.Arbitrary<Message>> = {
  vote: rec({
    type: fc.constant('vote' as const),
    ...head,
    lastLogIndex: n,
    lastLogTerm: n,
    preVote: fc.boolean(),
    transfer: fc.boolean(),
  }),
  vote_response: rec({
    type: fc.constant('vote_response' as const),
    ...head,
    granted: fc.boolean(),
    preVote: fc.boolean(),
  }),
  append: rec({
    type: fc.constant('append' as const),
    ...head,
    prevLogIndex: n,
    prevLogTerm: n,
    entries: fc.array(entry, { maxLength: 6 }),
    commit: n,
  }),
  append_response: rec({
    type: fc.constant('append_response' as const),
    ...head,
    success: fc.boolean(),
    index: n,
    hintIndex: n,
    hintTerm: n,
  }),
  heartbeat: rec({ type: fc.constant('heartbeat' as const), ...head, commit: n }),
  heartbeat_response: rec({ type: fc.constant('heartbeat_response' as const), ...head }),
  snapshot: rec({ type: fc.constant('snapshot' as const), ...head, snapshot }),
  timeout_now: rec({ type: fc.constant('timeout_now' as const), ...head }),
};
const anyMessage = fc.oneof(...Object.values(messageArbs));

for (const [type, arb] of Object.entries(messageArbs)) {
  test(`a ${type} message decodes to an equal message and re-encodes to the same bytes`, () => {
    fc.assert(
      fc.property(arb, (m) => {
        const encoded = encodeMessage(m);
        assert.equal(encoded[0], RAFT_WIRE_VERSION);
        const decoded = decodeMessage(encoded);
        assert.ok(decoded.ok, `decode failed: ${JSON.stringify(decoded)}`);
        assert.deepEqual(decoded.message, m);
        assert.deepEqual(encodeMessage(decoded.message), encoded);
      }),
      { numRuns: 200 },
    );
  });
}

test('decoded byte fields own their memory instead of aliasing the frame', () => {
  const m: Message = {
    type: 'append',
    from: 'a',
    to: 'b',
    term: 3,
    prevLogIndex: 1,
    prevLogTerm: 1,
    entries: [{ index: 2, term: 3, kind: 'normal', data: new Uint8Array([1, 2, 3]) }],
    commit: 1,
  };
  const frame = encodeMessage(m);
  const decoded = decodeMessage(frame);
  assert.ok(decoded.ok && decoded.message.type === 'append');
  frame.fill(0);
  assert.deepEqual([...decoded.message.entries[0]!.data], [1, 2, 3]);
});

test('random bytes, truncated frames and flipped bits decode to a failure value, never a throw', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (buf) => {
      const r = decodeMessage(buf);
      if (r.ok) assert.deepEqual(decodeMessage(encodeMessage(r.message)), r);
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(anyMessage, fc.nat(), fc.nat(7), (m, at, bit) => {
      const encoded = encodeMessage(m);
      const cut = encoded.subarray(0, at % encoded.length);
      const truncated = decodeMessage(cut);
      assert.equal(truncated.ok, false);
      const flipped = Buffer.from(encoded);
      const pos = at % flipped.length;
      flipped[pos] = flipped[pos]! ^ (1 << bit);
      const r = decodeMessage(flipped);
      // A flip may land on a value that is still valid; then it must be a well-formed message.
      if (r.ok) assert.deepEqual(decodeMessage(encodeMessage(r.message)).ok, true);
    }),
    { numRuns: 1000 },
  );
});

test('each kind of garbage is named: empty, unknown version, malformed, invalid field', () => {
  assert.equal(decodeMessage(new Uint8Array(0)).ok, false);
  const empty = decodeMessage(new Uint8Array(0));
  assert.ok(!empty.ok && empty.reason === 'empty');
  const good = encodeMessage({ type: 'heartbeat_response', from: 'a', to: 'b', term: 1 });
  const wrongVersion = Buffer.from(good);
  wrongVersion[0] = RAFT_WIRE_VERSION + 1;
  const v = decodeMessage(wrongVersion);
  assert.ok(!v.ok && v.reason === 'unknown_version');
  const trailing = decodeMessage(Buffer.concat([good, Buffer.from([0])]));
  assert.ok(!trailing.ok && trailing.reason === 'malformed');
  // An empty sender and a negative term are schema-valid Avro but not valid Raft.
  const noSender = Buffer.concat([
    Buffer.from([RAFT_WIRE_VERSION]),
    messageType.toBuffer({ heartbeat_response: { from: '', to: 'b', term: 1 } }),
  ]);
  const s = decodeMessage(noSender);
  assert.ok(!s.ok && s.reason === 'invalid_field');
  const negative = Buffer.concat([
    Buffer.from([RAFT_WIRE_VERSION]),
    messageType.toBuffer({ heartbeat: { from: 'a', to: 'b', term: -5, commit: 0 } }),
  ]);
  const t = decodeMessage(negative);
  assert.ok(!t.ok && t.reason === 'invalid_field');
});

test('an append claiming billions of entries in a few bytes is refused at once', () => {
  // Branch 2 (append), from 'a', to 'b', term 1, prevLogIndex 0, prevLogTerm 0, then an entry count of 2^31.
  const zigzag = (v: number) => {
    const out: number[] = [];
    let z = v * 2;
    while (z >= 0x80) {
      out.push((z % 0x80) | 0x80);
      z = Math.floor(z / 0x80);
    }
    out.push(z);
    return out;
  };
  const body = [
    ...zigzag(2),
    ...zigzag(1),
    97,
    ...zigzag(1),
    98,
    ...zigzag(1),
    ...zigzag(0),
    ...zigzag(0),
    ...zigzag(2 ** 31),
  ];
  const started = process.hrtime.bigint();
  const r = decodeMessage(Buffer.from([RAFT_WIRE_VERSION, ...body]));
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  assert.ok(!r.ok && r.reason === 'malformed' && r.detail.includes('array block count'), JSON.stringify(r));
  assert.ok(elapsedMs < 100, `took ${elapsedMs} ms`);
});
