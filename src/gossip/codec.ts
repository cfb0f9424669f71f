// The gossip wire encoding: the avsc types of the packet and of every message (the schema documented in
// src/core/gossip/messages.ts, registered here and nowhere else), behind one version byte. Both versions are
// written and read: each packet is encoded in the version its recipient speaks (chosen by the transport from
// src/core/gossip/wire-versions.ts), and the version a packet came in is returned with it.
//
//   offset  size  field
//   0       1     wire version (2, or GOSSIP_WIRE_VERSION = 3)
//   1       n     Packet, Avro binary: senderId, senderAddress, messages (array of a union of records, the
//                 union's branch index naming the message kind)
//
// Invariants: `decodePacket` never throws, whatever the bytes (a datagram is untrusted input): garbage is a
// value `{ ok: false, reason }`; a packet it accepts has only safe integers, a known member state and no bytes
// left over, and encodes back to a packet equal to it. `encodeDatagram` never returns more than the budget.
// Pure functions with module-level immutable types: callable from any thread.
import type avro from 'avsc';
import { assert } from '../core/assert.js';
import {
  type GossipMessage,
  KAFKA_PORT_UNKNOWN,
  type MemberMeta,
  MemberStates,
  type Packet,
  type PushPullState,
} from '../core/gossip/messages.js';
import {
  type DecodeFailure,
  decodeVersioned,
  encodeVersioned,
  field,
  forUntrustedSchema,
  record,
} from '../wire/avsc-bounded.js';

/**
 * Raised when a schema changes; a member drops packets of versions it does not know. Version 3 added the Kafka
 * port to MemberMeta. Version 2 is still read and written: a version-2 packet carries no Kafka port, so its
 * members' kafkaPort decodes as KAFKA_PORT_UNKNOWN (the core keeps what it knew), and a peer of an older build
 * is sent version 2 (see wire-versions.ts), so a rolling upgrade from such a build fences nobody. In version 3
 * a kafkaPort of -1 is "unknown" too (a member known only through version-2 relays).
 */
export const GOSSIP_WIRE_VERSION = 3;
export const GOSSIP_WIRE_VERSION_V2 = 2;
export type GossipWireVersion = 2 | 3;

const memberMetaFieldsV2 = [
  field('httpHost', 'string'),
  field('httpPort', 'int'),
  field('clusterHost', 'string'),
  field('clusterPort', 'int'),
  field('rack', 'string'),
  field('version', 'string'),
  field('dataPorts', { type: 'array', items: 'int' }),
];

/** One record per message kind; the record's name is the `kind`, so the union branch names the message. */
const messageSchemasOf = (version: 2 | 3) => [
  record('ping', [field('seqNo', 'long'), field('targetId', 'string')]),
  record('ping_req', [
    field('seqNo', 'long'),
    field('targetId', 'string'),
    field('targetAddress', 'string'),
    field('wantNack', 'boolean'),
  ]),
  record('ack', [field('seqNo', 'long')]),
  record('nack', [field('seqNo', 'long')]),
  record('alive', [
    field('nodeId', 'string'),
    field('address', 'string'),
    field('incarnation', 'long'),
    field(
      'meta',
      record(
        'MemberMeta',
        version === 3 ? [...memberMetaFieldsV2, field('kafkaPort', 'int')] : memberMetaFieldsV2,
      ),
    ),
  ]),
  record('suspect', [field('nodeId', 'string'), field('incarnation', 'long'), field('accuserId', 'string')]),
  record('dead', [field('nodeId', 'string'), field('incarnation', 'long'), field('accuserId', 'string')]),
  record('push_pull', [
    field('join', 'boolean'),
    field('isReply', 'boolean'),
    field('states', {
      type: 'array',
      items: record('PushPullState', [
        field('nodeId', 'string'),
        field('address', 'string'),
        field('incarnation', 'long'),
        field('state', 'string'),
        field('meta', 'MemberMeta'),
      ]),
    }),
  ]),
];

const packetSchemaOf = (version: 2 | 3) =>
  record('Packet', [
    field('senderId', 'string'),
    field('senderAddress', 'string'),
    field('messages', { type: 'array', items: messageSchemasOf(version) }),
  ]);

/** The avsc type of a whole packet; exported for tests and tools that inspect captured bytes. */
export const packetType: avro.Type = forUntrustedSchema(packetSchemaOf(3));
/** Packets of version 2 (no Kafka port), still read. */
export const packetTypeV2: avro.Type = forUntrustedSchema(packetSchemaOf(2));

/** Encodes in `version` (version 2 leaves the Kafka port out: avsc writes only the schema's fields). */
export function encodePacket(packet: Packet, version: GossipWireVersion = GOSSIP_WIRE_VERSION): Buffer {
  const messages = packet.messages.map((m) => {
    const { kind, ...fields } = m;
    return { [kind]: fields };
  });
  return encodeVersioned(version, version === GOSSIP_WIRE_VERSION_V2 ? packetTypeV2 : packetType, {
    senderId: packet.senderId,
    senderAddress: packet.senderAddress,
    messages,
  });
}

/**
 * Encodes a packet for one UDP datagram. The core sizes UDP packets by an estimate that never under-counts
 * the encoding (less slack that covers the version byte), so a datagram over budget is a bug.
 */
export function encodeDatagram(
  packet: Packet,
  udpPacketBytesMax: number,
  version: GossipWireVersion = GOSSIP_WIRE_VERSION,
): Buffer {
  // Version 2 is version 3 less one int per meta: the estimate for version 3 covers it.
  const bytes = encodePacket(packet, version);
  assert(
    bytes.length <= udpPacketBytesMax,
    `gossip datagram of ${bytes.length} bytes exceeds udpPacketBytesMax ${udpPacketBytesMax}`,
  );
  return bytes;
}

export type { DecodeFailure };

export type DecodeResult =
  | { readonly ok: true; readonly packet: Packet; readonly version: GossipWireVersion }
  | { readonly ok: false; readonly reason: DecodeFailure; readonly detail: string };

/**
 * Decodes a packet of version 2, or of version 3 unless `versionMax` is 2 (which simulates a node of an older
 * build in tests: it drops version 3 as such a build does).
 */
export function decodePacket(
  buf: Uint8Array,
  versionMax: GossipWireVersion = GOSSIP_WIRE_VERSION,
): DecodeResult {
  const v2 = buf[0] === GOSSIP_WIRE_VERSION_V2;
  const decoded = v2
    ? decodeVersioned(buf, GOSSIP_WIRE_VERSION_V2, packetTypeV2)
    : decodeVersioned(buf, versionMax, packetType);
  if (!decoded.ok) return decoded;
  return toPacket(decoded.raw, v2 ? GOSSIP_WIRE_VERSION_V2 : GOSSIP_WIRE_VERSION);
}

// --- from avsc values to the core's plain values -----------------------------------------------------------

type RawRecord = Record<string, unknown>;
class InvalidField extends Error {}

function toPacket(raw: unknown, version: GossipWireVersion): DecodeResult {
  try {
    const r = raw as RawRecord;
    const messages = (r.messages as RawRecord[]).map(toMessage);
    return {
      ok: true,
      packet: { senderId: r.senderId as string, senderAddress: r.senderAddress as string, messages },
      version,
    };
  } catch (error) {
    if (error instanceof InvalidField) return { ok: false, reason: 'invalid_field', detail: error.message };
    throw error;
  }
}

function toMessage(wrapped: RawRecord): GossipMessage {
  // A wrapped union value is an object with exactly one key: the branch (record) name.
  const [kind] = Object.keys(wrapped);
  const m = wrapped[kind!] as RawRecord;
  switch (kind) {
    case 'ping':
      return { kind, seqNo: seqNo(m.seqNo), targetId: m.targetId as string };
    case 'ping_req':
      return {
        kind,
        seqNo: seqNo(m.seqNo),
        targetId: m.targetId as string,
        targetAddress: m.targetAddress as string,
        wantNack: m.wantNack as boolean,
      };
    case 'ack':
    case 'nack':
      return { kind, seqNo: seqNo(m.seqNo) };
    case 'alive':
      return {
        kind,
        nodeId: m.nodeId as string,
        address: m.address as string,
        incarnation: incarnation(m.incarnation),
        meta: toMeta(m.meta as RawRecord),
      };
    case 'suspect':
    case 'dead':
      return {
        kind,
        nodeId: m.nodeId as string,
        incarnation: incarnation(m.incarnation),
        accuserId: m.accuserId as string,
      };
    case 'push_pull':
      return {
        kind,
        join: m.join as boolean,
        isReply: m.isReply as boolean,
        states: (m.states as RawRecord[]).map(toState),
      };
    default:
      throw new InvalidField(`unknown message kind ${String(kind)}`);
  }
}

function toState(s: RawRecord): PushPullState {
  const state = s.state as string;
  if (!Object.hasOwn(MemberStates, state)) throw new InvalidField(`unknown member state ${state}`);
  return {
    nodeId: s.nodeId as string,
    address: s.address as string,
    incarnation: incarnation(s.incarnation),
    state: state as PushPullState['state'],
    meta: toMeta(s.meta as RawRecord),
  };
}

function toMeta(m: RawRecord): MemberMeta {
  return {
    httpHost: m.httpHost as string,
    httpPort: port(m.httpPort),
    clusterHost: m.clusterHost as string,
    clusterPort: port(m.clusterPort),
    rack: m.rack as string,
    version: m.version as string,
    dataPorts: (m.dataPorts as unknown[]).map(port),
    // Absent from version-2 packets: not "no Kafka port" (0) but unknown, so that the core keeps what a
    // version-3 packet told it.
    kafkaPort: m.kafkaPort === undefined ? KAFKA_PORT_UNKNOWN : kafkaPort(m.kafkaPort),
  };
}

/** avsc reads an Avro int as a varint of any length, so the range is checked here: a TCP/UDP port. */
function port(value: unknown): number {
  const n = value as number;
  if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new InvalidField(`port ${n} out of range`);
  return n;
}

/** A port, or -1: unknown (a member this sender knows only through version-2 packets). */
function kafkaPort(value: unknown): number {
  return value === KAFKA_PORT_UNKNOWN ? KAFKA_PORT_UNKNOWN : port(value);
}

/** Sequence numbers are what the core emits: integers in [0, 2^31). */
function seqNo(value: unknown): number {
  const n = value as number;
  if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff) throw new InvalidField(`seqNo ${n} out of range`);
  return n;
}

/** Incarnations only grow from 0; a negative one is garbage (avsc already refuses unsafe integers). */
function incarnation(value: unknown): number {
  const n = value as number;
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidField(`incarnation ${n} out of range`);
  return n;
}
