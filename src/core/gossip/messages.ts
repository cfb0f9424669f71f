// The gossip wire vocabulary as plain values, and an upper bound on each value's encoded size. The shell encodes
// these with avsc (records of strings, longs, booleans and arrays; `kind` selects the union branch), so the
// types use nothing else. Invariant: `estimatePacketBytes` never under-estimates the avsc encoding of the
// schema below, which is what lets the core promise that a UDP packet fits `udpPacketBytesMax`.
// Pure: callable from any thread.
//
// Avro schema the shell registers (one union of records per message, zig-zag varint longs, strings as
// varint length + UTF-8 bytes, arrays as blocks: varint count, items, 0):
//
//   Packet      { senderId: string, senderAddress: string, messages: array<Message> }
//   Message     union of the records below, 1-byte branch index
//   ping        { seqNo: long, targetId: string }
//   ping_req    { seqNo: long, targetId: string, targetAddress: string, wantNack: boolean }
//   ack         { seqNo: long }
//   nack        { seqNo: long }
//   alive       { nodeId: string, address: string, incarnation: long, meta: MemberMeta }
//   suspect     { nodeId: string, incarnation: long, accuserId: string }
//   dead        { nodeId: string, incarnation: long, accuserId: string }   accuserId = nodeId: it left
//   push_pull   { join: boolean, isReply: boolean, states: array<PushPullState> }
//   MemberMeta  { httpHost: string, httpPort: int, clusterHost: string, clusterPort: int, rack: string,
//                 version: string, dataPorts: array<int>, kafkaPort: int }   kafkaPort since wire version 3
//   PushPullState { nodeId: string, address: string, incarnation: long, state: string, meta: MemberMeta }

export type MemberMeta = {
  readonly httpHost: string;
  readonly httpPort: number;
  readonly clusterHost: string;
  readonly clusterPort: number;
  /** Failure domain for rack-aware placement; empty when unknown. */
  readonly rack: string;
  /** Broker software version, so a rolling upgrade can be seen from the registry. */
  readonly version: string;
  /** The data-link ports of the broker's partition workers, one per worker (empty before they listen). */
  readonly dataPorts: readonly number[];
  /**
   * The port of the broker's Kafka listener (at `httpHost`); 0 when it has none; KAFKA_PORT_UNKNOWN in a
   * message that did not carry it (a version-2 packet, or a relay by a member that knows it only from those).
   */
  readonly kafkaPort: number;
};

/** A MemberMeta.kafkaPort that says nothing: the receiver keeps the port it knows (see GossipNode). */
export const KAFKA_PORT_UNKNOWN = -1;

export const MemberStates = {
  alive: 'alive',
  suspect: 'suspect',
  dead: 'dead',
  left: 'left',
} as const;
export type MemberStateName = (typeof MemberStates)[keyof typeof MemberStates];

export type PingMessage = { readonly kind: 'ping'; readonly seqNo: number; readonly targetId: string };
export type PingReqMessage = {
  readonly kind: 'ping_req';
  readonly seqNo: number;
  readonly targetId: string;
  readonly targetAddress: string;
  readonly wantNack: boolean;
};
export type AckMessage = { readonly kind: 'ack'; readonly seqNo: number };
export type NackMessage = { readonly kind: 'nack'; readonly seqNo: number };
export type AliveMessage = {
  readonly kind: 'alive';
  readonly nodeId: string;
  readonly address: string;
  readonly incarnation: number;
  readonly meta: MemberMeta;
};
export type SuspectMessage = {
  readonly kind: 'suspect';
  readonly nodeId: string;
  readonly incarnation: number;
  readonly accuserId: string;
};
export type DeadMessage = {
  readonly kind: 'dead';
  readonly nodeId: string;
  readonly incarnation: number;
  /** The member that declared it dead; equal to `nodeId` when the member left gracefully. */
  readonly accuserId: string;
};
export type PushPullState = {
  readonly nodeId: string;
  readonly address: string;
  readonly incarnation: number;
  readonly state: MemberStateName;
  readonly meta: MemberMeta;
};
export type PushPullMessage = {
  readonly kind: 'push_pull';
  readonly join: boolean;
  readonly isReply: boolean;
  readonly states: readonly PushPullState[];
};

/** Membership updates: what the broadcast queue disseminates on pings, acks and gossip packets. */
export type UpdateMessage = AliveMessage | SuspectMessage | DeadMessage;
export type GossipMessage =
  | PingMessage
  | PingReqMessage
  | AckMessage
  | NackMessage
  | UpdateMessage
  | PushPullMessage;

export type Packet = {
  readonly senderId: string;
  /** Where replies go; a member's gossip address as the shell understands it (for example `10.0.0.7:7946`). */
  readonly senderAddress: string;
  readonly messages: readonly GossipMessage[];
};

export const Transports = { udp: 'udp', stream: 'stream' } as const;
export type Transport = (typeof Transports)[keyof typeof Transports];

/** A packet to send. `udp` packets fit `udpPacketBytesMax`; `stream` packets (push-pull) go over TCP. */
export type Outgoing = { readonly to: string; readonly transport: Transport; readonly packet: Packet };

/** UTF-8 length of `text`, computed without a platform encoder so that the core stays pure. */
export function utf8Bytes(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff) {
      // A surrogate pair is one 4-byte code point.
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/** Bytes of a zig-zag varint (Avro int and long); integers up to 2^53 fit in at most 8 bytes. */
export function varintBytes(value: number): number {
  let zigzag = value >= 0 ? value * 2 : -value * 2 - 1;
  let bytes = 1;
  while (zigzag >= 128) {
    zigzag = Math.floor(zigzag / 128);
    bytes++;
  }
  return bytes;
}

function stringBytes(text: string): number {
  const length = utf8Bytes(text);
  return varintBytes(length) + length;
}

export function estimateMetaBytes(meta: MemberMeta): number {
  return (
    stringBytes(meta.httpHost) +
    varintBytes(meta.httpPort) +
    stringBytes(meta.clusterHost) +
    varintBytes(meta.clusterPort) +
    stringBytes(meta.rack) +
    stringBytes(meta.version) +
    arrayOfIntBytes(meta.dataPorts) +
    varintBytes(meta.kafkaPort)
  );
}

/** An Avro array of ints: one block (its count, the items) and the empty block that ends it. */
function arrayOfIntBytes(items: readonly number[]): number {
  let bytes = 1;
  if (items.length > 0) {
    bytes += varintBytes(items.length);
    for (const item of items) bytes += varintBytes(item);
  }
  return bytes;
}

/** Upper bound on the encoded size of one message, union branch index included. */
export function estimateMessageBytes(message: GossipMessage): number {
  const branch = 1;
  switch (message.kind) {
    case 'ping':
      return branch + varintBytes(message.seqNo) + stringBytes(message.targetId);
    case 'ping_req':
      return (
        branch +
        varintBytes(message.seqNo) +
        stringBytes(message.targetId) +
        stringBytes(message.targetAddress) +
        1
      );
    case 'ack':
    case 'nack':
      return branch + varintBytes(message.seqNo);
    case 'alive':
      return (
        branch +
        stringBytes(message.nodeId) +
        stringBytes(message.address) +
        varintBytes(message.incarnation) +
        estimateMetaBytes(message.meta)
      );
    case 'suspect':
    case 'dead':
      return (
        branch +
        stringBytes(message.nodeId) +
        varintBytes(message.incarnation) +
        stringBytes(message.accuserId)
      );
    case 'push_pull': {
      let bytes = branch + 2 + varintBytes(message.states.length) + 1;
      for (const s of message.states) {
        bytes +=
          stringBytes(s.nodeId) +
          stringBytes(s.address) +
          varintBytes(s.incarnation) +
          stringBytes(s.state) +
          estimateMetaBytes(s.meta);
      }
      return bytes;
    }
  }
}

/** Packet bytes before any message: the sender fields and the array's block count and terminator. */
export function estimatePacketOverheadBytes(
  senderId: string,
  senderAddress: string,
  messageCount: number,
): number {
  return stringBytes(senderId) + stringBytes(senderAddress) + varintBytes(messageCount) + 1;
}

export function estimatePacketBytes(packet: Packet): number {
  let bytes = estimatePacketOverheadBytes(packet.senderId, packet.senderAddress, packet.messages.length);
  for (const message of packet.messages) bytes += estimateMessageBytes(message);
  return bytes;
}
