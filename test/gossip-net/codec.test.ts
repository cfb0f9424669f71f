// The gossip wire codec: every message kind survives an encode/decode round trip in version 3, and in version 2
// less the Kafka ports (decoded as unknown); a node simulating an older build drops version 3; untrusted bytes
// (random garbage, truncations, a wrong version, trailing bytes, lying array counts, unknown member states)
// come back as `{ ok: false }` values, never as exceptions. fast-check prints the seed and path of a failure;
// pass them back to `fc.assert` to replay it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type GossipMessage,
  KAFKA_PORT_UNKNOWN,
  type MemberMeta,
  type Packet,
} from '../../src/core/gossip/messages.js';
import {
  decodePacket,
  encodeDatagram,
  encodePacket,
  GOSSIP_WIRE_VERSION,
  GOSSIP_WIRE_VERSION_V2,
} from '../../src/gossip/codec.js';

// Plain objects, as the decoder returns, so that deepEqual compares values and not prototypes.
const record = (<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }) =>
  fc.record(model, { noNullPrototype: true })) as typeof fc.record;
const text = fc.string({ maxLength: 40, unit: 'binary' });
const seqNo = fc.integer({ min: 0, max: 0x7fffffff });
// avsc encodes longs within ±(2^53 - 2), one short of the safe integers.
const incarnation = fc.nat({ max: Number.MAX_SAFE_INTEGER - 1 });
const metaArb: fc.Arbitrary<MemberMeta> = record({
  httpHost: text,
  httpPort: fc.integer({ min: 0, max: 65_535 }),
  clusterHost: text,
  clusterPort: fc.integer({ min: 0, max: 65_535 }),
  rack: text,
  version: text,
  dataPorts: fc.array(fc.integer({ min: 0, max: 65_535 }), { maxLength: 8 }),
  // -1: unknown (a member known only through version-2 packets).
  kafkaPort: fc.integer({ min: -1, max: 65_535 }),
});

/** The packet as a version-2 packet decodes: every member's Kafka port unknown. */
function withoutKafkaPorts(packet: Packet): Packet {
  const meta = (m: MemberMeta): MemberMeta => ({ ...m, kafkaPort: KAFKA_PORT_UNKNOWN });
  return {
    ...packet,
    messages: packet.messages.map((m) => {
      if (m.kind === 'alive') return { ...m, meta: meta(m.meta) };
      if (m.kind === 'push_pull')
        return { ...m, states: m.states.map((s) => ({ ...s, meta: meta(s.meta) })) };
      return m;
    }),
  };
}

const byKind: Record<GossipMessage['kind'], fc.Arbitrary<GossipMessage>> = {
  ping: record({ kind: fc.constant('ping' as const), seqNo, targetId: text }),
  ping_req: record({
    kind: fc.constant('ping_req' as const),
    seqNo,
    targetId: text,
    targetAddress: text,
    wantNack: fc.boolean(),
  }),
  ack: record({ kind: fc.constant('ack' as const), seqNo }),
  nack: record({ kind: fc.constant('nack' as const), seqNo }),
  alive: record({
    kind: fc.constant('alive' as const),
    nodeId: text,
    address: text,
    incarnation,
    meta: metaArb,
  }),
  suspect: record({ kind: fc.constant('suspect' as const), nodeId: text, incarnation, accuserId: text }),
  dead: record({ kind: fc.constant('dead' as const), nodeId: text, incarnation, accuserId: text }),
  push_pull: record({
    kind: fc.constant('push_pull' as const),
    join: fc.boolean(),
    isReply: fc.boolean(),
    states: fc.array(
      record({
        nodeId: text,
        address: text,
        incarnation,
        state: fc.constantFrom('alive' as const, 'suspect' as const, 'dead' as const, 'left' as const),
        meta: metaArb,
      }),
      { maxLength: 8 },
    ),
  }),
};
const messageArb = fc.oneof(...Object.values(byKind));
const packetArb = (messages: fc.Arbitrary<GossipMessage>): fc.Arbitrary<Packet> =>
  record({ senderId: text, senderAddress: text, messages: fc.array(messages, { maxLength: 20 }) });

const samplePacket: Packet = {
  senderId: 'node-1',
  senderAddress: '127.0.0.1:7946',
  messages: [
    { kind: 'ping', seqNo: 7, targetId: 'node-2' },
    {
      kind: 'push_pull',
      join: true,
      isReply: false,
      states: [
        {
          nodeId: 'node-1',
          address: '127.0.0.1:7946',
          incarnation: 3,
          state: 'alive',
          meta: {
            httpHost: 'h',
            httpPort: 8080,
            clusterHost: 'c',
            clusterPort: 9000,
            rack: 'r1',
            version: '1',
            dataPorts: [],
            kafkaPort: 0,
          },
        },
      ],
    },
  ],
};

describe('gossip codec', () => {
  for (const [kind, arb] of Object.entries(byKind)) {
    it(`round-trips packets of ${kind} messages`, () => {
      fc.assert(
        fc.property(packetArb(arb), (packet) => {
          const bytes = encodePacket(packet);
          assert.equal(bytes[0], GOSSIP_WIRE_VERSION);
          assert.deepEqual(decodePacket(bytes), { ok: true, packet, version: 3 });
          const v2 = encodePacket(packet, GOSSIP_WIRE_VERSION_V2);
          assert.equal(v2[0], GOSSIP_WIRE_VERSION_V2);
          assert.deepEqual(decodePacket(v2), { ok: true, packet: withoutKafkaPorts(packet), version: 2 });
          assert.deepEqual(decodePacket(v2, 2), decodePacket(v2), 'an older build reads version 2');
        }),
        { numRuns: 200 },
      );
    });
  }

  it('round-trips packets mixing every kind', () => {
    fc.assert(
      fc.property(packetArb(messageArb), (packet) => {
        assert.deepEqual(decodePacket(encodePacket(packet)), { ok: true, packet, version: 3 });
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on random bytes, and whatever it accepts re-encodes to an equal packet', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          // Mostly well-formed heads, so that the decoder gets past the version byte and into the records.
          fc.uint8Array({ maxLength: 200 }).map((tail) => Uint8Array.of(GOSSIP_WIRE_VERSION, ...tail)),
        ),
        (bytes) => {
          const result = decodePacket(bytes);
          if (result.ok) assert.deepEqual(decodePacket(encodePacket(result.packet, result.version)), result);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('never throws on valid encodings with flipped bytes', () => {
    fc.assert(
      fc.property(packetArb(messageArb), fc.nat(), fc.integer({ min: 1, max: 255 }), (packet, at, xor) => {
        const bytes = Buffer.from(encodePacket(packet));
        const i = at % bytes.length;
        bytes[i] = bytes[i]! ^ xor;
        const result = decodePacket(bytes);
        if (result.ok) assert.deepEqual(decodePacket(encodePacket(result.packet, result.version)), result);
      }),
      { numRuns: 1000 },
    );
  });

  it('rejects every truncation of a valid packet and bytes after it', () => {
    const bytes = encodePacket(samplePacket);
    for (let length = 0; length < bytes.length; length++) {
      const result = decodePacket(bytes.subarray(0, length));
      assert.equal(result.ok, false, `prefix of ${length} bytes accepted`);
    }
    const longer = decodePacket(Buffer.concat([bytes, Buffer.of(0)]));
    assert.equal(longer.ok, false);
  });

  it('reads packets of version 2 (before the Kafka port) as members whose Kafka port is unknown', () => {
    // Bytes written by the version-2 codec, kept as captured.
    const v2 = Buffer.from(
      '02046e311c3132372e302e302e313a373934360208046e311c3132372e302e302e313a37393436060268a07e0263d08c01047231023102d28c010000',
      'hex',
    );
    const meta = {
      httpHost: 'h',
      httpPort: 8080,
      clusterHost: 'c',
      clusterPort: 9000,
      rack: 'r1',
      version: '1',
      dataPorts: [9001],
      kafkaPort: KAFKA_PORT_UNKNOWN,
    };
    const alive = { kind: 'alive', nodeId: 'n1', address: '127.0.0.1:7946', incarnation: 3, meta };
    const packet = { senderId: 'n1', senderAddress: '127.0.0.1:7946', messages: [alive] };
    assert.deepEqual(decodePacket(v2), { ok: true, packet, version: 2 });
    const withPort = { ...packet, messages: [{ ...alive, meta: { ...meta, kafkaPort: 9092 } }] };
    const encoded = encodePacket(withPort as Packet);
    assert.equal(encoded[0], GOSSIP_WIRE_VERSION);
    assert.deepEqual(decodePacket(encoded), { ok: true, packet: withPort, version: 3 });
    // Written in version 2 for an older peer: the same bytes as that build wrote.
    assert.deepEqual(encodePacket(withPort as Packet, GOSSIP_WIRE_VERSION_V2), v2);
  });

  it('a node speaking only version 2 drops version 3, as builds before it do', () => {
    const result = decodePacket(encodePacket(samplePacket), GOSSIP_WIRE_VERSION_V2);
    assert.equal(result.ok, false);
    assert.equal(!result.ok && result.reason, 'unknown_version');
  });

  it('rejects an unknown wire version', () => {
    const bytes = Buffer.from(encodePacket(samplePacket));
    bytes[0] = GOSSIP_WIRE_VERSION + 1;
    assert.deepEqual(decodePacket(bytes), {
      ok: false,
      reason: 'unknown_version',
      detail: `version ${GOSSIP_WIRE_VERSION + 1}`,
    });
  });

  it('rejects at once an array whose block count exceeds the datagram', () => {
    // Version, empty senderId, empty senderAddress, then a messages count of 2^31 (zig-zag varint) and nothing.
    const lying = Buffer.of(GOSSIP_WIRE_VERSION, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x10);
    const startMs = performance.now();
    const result = decodePacket(lying);
    assert.equal(result.ok, false);
    assert.ok(performance.now() - startMs < 100, 'a lying count must not be looped over');
  });

  it('rejects an unknown member state in a push-pull', () => {
    const packet = structuredClone(samplePacket) as unknown as {
      messages: { states?: { state: string }[] }[];
    };
    packet.messages[1]!.states![0]!.state = 'zombie';
    const result = decodePacket(encodePacket(packet as unknown as Packet));
    assert.equal(result.ok, false);
    assert.equal(result.ok === false && result.reason, 'invalid_field');
  });

  it('refuses to encode a datagram over the UDP budget', () => {
    const states = Array.from({ length: 40 }, (_, i) => ({ ...samplePacket.messages[1]!, nodeId: `n${i}` }));
    const big: Packet = { ...samplePacket, messages: states as GossipMessage[] };
    assert.ok(encodePacket(big).length > 512);
    assert.throws(() => encodeDatagram(big, 512), /exceeds udpPacketBytesMax/);
    assert.equal(encodeDatagram(samplePacket, 512).length, encodePacket(samplePacket).length);
  });
});
