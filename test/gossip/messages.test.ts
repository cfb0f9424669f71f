// The size estimate of gossip packets never under-estimates their avsc encoding (the schema documented in
// messages.ts), which is what makes the core's UDP budget a promise rather than a hope.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import avro from 'avsc';
import fc from 'fast-check';
import {
  estimatePacketBytes,
  type GossipMessage,
  type MemberMeta,
  type Packet,
  utf8Bytes,
  varintBytes,
} from '../../src/core/gossip/messages.js';

const meta = {
  type: 'record',
  name: 'MemberMeta',
  fields: [
    { name: 'httpHost', type: 'string' },
    { name: 'httpPort', type: 'int' },
    { name: 'clusterHost', type: 'string' },
    { name: 'clusterPort', type: 'int' },
    { name: 'rack', type: 'string' },
    { name: 'version', type: 'string' },
  ],
};
const record = (name: string, fields: [string, unknown][]) => ({
  type: 'record',
  name,
  fields: fields.map(([n, type]) => ({ name: n, type })),
});
const packetType = avro.Type.forSchema(
  record('Packet', [
    ['senderId', 'string'],
    ['senderAddress', 'string'],
    [
      'messages',
      {
        type: 'array',
        items: [
          record('ping', [
            ['seqNo', 'long'],
            ['targetId', 'string'],
          ]),
          record('ping_req', [
            ['seqNo', 'long'],
            ['targetId', 'string'],
            ['targetAddress', 'string'],
            ['wantNack', 'boolean'],
          ]),
          record('ack', [['seqNo', 'long']]),
          record('nack', [['seqNo', 'long']]),
          record('alive', [
            ['nodeId', 'string'],
            ['address', 'string'],
            ['incarnation', 'long'],
            ['meta', meta],
          ]),
          record('suspect', [
            ['nodeId', 'string'],
            ['incarnation', 'long'],
            ['accuserId', 'string'],
          ]),
          record('dead', [
            ['nodeId', 'string'],
            ['incarnation', 'long'],
            ['accuserId', 'string'],
          ]),
          record('push_pull', [
            ['join', 'boolean'],
            ['isReply', 'boolean'],
            [
              'states',
              {
                type: 'array',
                items: record('PushPullState', [
                  ['nodeId', 'string'],
                  ['address', 'string'],
                  ['incarnation', 'long'],
                  ['state', 'string'],
                  ['meta', 'MemberMeta'],
                ]),
              },
            ],
          ]),
        ],
      },
    ],
  ]) as avro.Schema,
  { wrapUnions: true },
);

function encodedBytes(packet: Packet): number {
  const messages = packet.messages.map((m) => {
    const { kind, ...fields } = m;
    return { [kind]: fields };
  });
  return packetType.toBuffer({ ...packet, messages }).length;
}

const text = fc.string({ maxLength: 40, unit: 'binary' });
const seqNo = fc.integer({ min: 0, max: 0x7fffffff });
const incarnation = fc.nat({ max: 2 ** 48 });
const metaArb: fc.Arbitrary<MemberMeta> = fc.record({
  httpHost: text,
  httpPort: fc.integer({ min: 0, max: 65_535 }),
  clusterHost: text,
  clusterPort: fc.integer({ min: 0, max: 65_535 }),
  rack: text,
  version: text,
  dataPorts: fc.array(fc.integer({ min: 0, max: 65_535 }), { maxLength: 8 }),
  kafkaPort: fc.integer({ min: 0, max: 65_535 }),
});
const messageArb: fc.Arbitrary<GossipMessage> = fc.oneof(
  fc.record({ kind: fc.constant('ping' as const), seqNo, targetId: text }),
  fc.record({
    kind: fc.constant('ping_req' as const),
    seqNo,
    targetId: text,
    targetAddress: text,
    wantNack: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('ack' as const), seqNo }),
  fc.record({ kind: fc.constant('nack' as const), seqNo }),
  fc.record({ kind: fc.constant('alive' as const), nodeId: text, address: text, incarnation, meta: metaArb }),
  fc.record({ kind: fc.constant('suspect' as const), nodeId: text, incarnation, accuserId: text }),
  fc.record({ kind: fc.constant('dead' as const), nodeId: text, incarnation, accuserId: text }),
  fc.record({
    kind: fc.constant('push_pull' as const),
    join: fc.boolean(),
    isReply: fc.boolean(),
    states: fc.array(
      fc.record({
        nodeId: text,
        address: text,
        incarnation,
        state: fc.constantFrom('alive' as const, 'suspect' as const, 'dead' as const, 'left' as const),
        meta: metaArb,
      }),
      { maxLength: 5 },
    ),
  }),
);

describe('gossip message size estimate', () => {
  it('is never below the avsc encoding of a packet', () => {
    fc.assert(
      fc.property(
        text,
        text,
        fc.array(messageArb, { maxLength: 200 }),
        (senderId, senderAddress, messages) => {
          const packet: Packet = { senderId, senderAddress, messages };
          assert.ok(estimatePacketBytes(packet) >= encodedBytes(packet));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('counts UTF-8 bytes and varint lengths as the encoder does', () => {
    assert.equal(utf8Bytes('abc'), 3);
    assert.equal(utf8Bytes('é'), 2);
    assert.equal(utf8Bytes('€'), 3);
    assert.equal(utf8Bytes('😀'), 4);
    assert.equal(varintBytes(63), 1);
    assert.equal(varintBytes(64), 2);
    assert.equal(varintBytes(-64), 1);
    assert.equal(varintBytes(2 ** 40), 6);
  });
});
