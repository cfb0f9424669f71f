// The cluster secret's wire formats and decisions, without the cryptography's implementation: the mutual
// challenge-response that opens every TCP connection between nodes (Raft, cluster RPC, gossip push-pull, the
// data link), the tag and freshness trailer of every gossip datagram, and the replay guard that datagrams go
// through. The HMAC is injected (`Mac`, bound to its key by the shell in src/security/cluster-auth.ts, which
// also derives the keys with HKDF and draws the nonces), so this file stays pure and its tests are exact.
//
// TCP handshake, after the dialer's 4-byte protocol tag (cluster/port.ts) where the protocol has one:
//
//   client hello (dialer -> acceptor)
//   offset  size  field
//   0       4     magic 'CAU1'
//   4       32    client nonce, random
//   36      1     dialer node id length n, 1..255
//   37      n     dialer node id, UTF-8
//
//   server hello (acceptor -> dialer)
//   0       4     magic 'CAU1'
//   4       32    server nonce, random
//   36      1     acceptor node id length m, 1..255
//   37      m     acceptor node id, UTF-8
//   37+m    32    server proof = HMAC(k, 'acceptor' ‖ tag ‖ client nonce ‖ server nonce ‖ m ‖ acceptor id)
//
//   client proof (dialer -> acceptor), then the protocol's own bytes may follow at once
//   0       32    client proof = HMAC(k, 'dialer' ‖ tag ‖ client nonce ‖ server nonce ‖ n ‖ dialer id)
//
// k is the handshake key (HKDF of the secret, label `KeyLabels.handshake`). The role label stops a proof from
// being reflected back to the node that made it; the tag stops a proof made for one protocol from opening
// another; both nonces make every proof fresh, so a recorded handshake cannot be replayed. The acceptor hands
// nothing to the protocol before the client proof checks out, and a connection that fails any step is closed.
//
// Gossip datagram: the packet's bytes (gossip/codec.ts), then a trailer.
//   0       p     the encoded packet
//   p       8     the sender's wall clock when sent, ms since the epoch, float64 big-endian
//   p+8     16    tag = HMAC(g, packet ‖ sent-at)[0..16), g the gossip key (label `KeyLabels.gossip`)
//
// Replay: a datagram is accepted only when its sent-at is within `replayWindowMs` of the receiver's clock and
// its tag has not been seen within that window (a bounded set, `GossipReplayGuard`). A packet captured and
// replayed later is stale; replayed at once it is a duplicate. So a dead member cannot be brought back, nor an
// old incarnation's state restored, by replaying its datagrams. The cost: nodes' clocks must agree within the
// window (NTP does far better), and a node that sees more than `seenTagsMax` datagrams in a window forgets the
// oldest tags early (a replay of those within the window would be accepted; SWIM's incarnation order makes a
// replay of a message already applied a no-op).
//
// Invariants: parsing never reads past what it was given and never throws on input; every length is bounded
// (a hello is at most 292 bytes, so a peer cannot make the acceptor buffer more before it is proven).
// Pure: no clock, no randomness, no I/O; a handshake or guard object belongs to the thread that made it.
import { assert } from '../assert.js';

/** HMAC-SHA256 under a key the caller bound; returns 32 bytes. */
export type Mac = (data: Uint8Array) => Uint8Array;

export const SECRET_BYTES_MIN = 32;
export const NONCE_BYTES = 32;
export const PROOF_BYTES = 32;
export const NODE_ID_BYTES_MAX = 255;
export const GOSSIP_TAG_BYTES = 16;
export const GOSSIP_SENT_AT_BYTES = 8;
/** Bytes a gossip datagram grows by: sent-at and tag. */
export const GOSSIP_TRAILER_BYTES = GOSSIP_SENT_AT_BYTES + GOSSIP_TAG_BYTES;
/** Handshake magic 'CAU1'. */
export const HANDSHAKE_MAGIC = Uint8Array.of(0x43, 0x41, 0x55, 0x31);
const helloFixedBytes = 4 + NONCE_BYTES + 1;
export const HELLO_BYTES_MAX = helloFixedBytes + NODE_ID_BYTES_MAX + PROOF_BYTES;

/** HKDF `info` labels: one key per use, so a MAC made for one can never pass for another. */
export const KeyLabels = {
  handshake: 'lbroker cluster-auth v1 tcp-handshake',
  gossip: 'lbroker cluster-auth v1 gossip-datagram',
} as const;

/** Where an authentication failure happened, the `transport` label of the failure counter. */
export const authTransports = [
  'gossip_udp',
  'gossip_stream',
  'raft',
  'rpc',
  'data_link',
  // A TCP connection to the cluster port refused by cluster TLS, before its tag says which protocol it is.
  'cluster_port',
] as const;
export type AuthTransport = (typeof authTransports)[number];

/**
 * Why a peer was refused, the `reason` label of the failure counter: `secret` (no or a wrong cluster-secret
 * proof, a stale or replayed datagram), `tls_certificate` (cluster TLS: no certificate, or one that does not
 * chain to the cluster CA), `tls_handshake` (cluster TLS: any other failed handshake, e.g. plain TCP).
 */
export const authFailureReasons = ['secret', 'tls_certificate', 'tls_handshake'] as const;
export type AuthFailureReason = (typeof authFailureReasons)[number];

/** The counter slot of a (transport, reason) pair. */
export function authStatSlot(transport: AuthTransport, reason: AuthFailureReason): number {
  return authTransports.indexOf(transport) * authFailureReasons.length + authFailureReasons.indexOf(reason);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: false });
const roleLabels = { acceptor: encoder.encode('acceptor'), dialer: encoder.encode('dialer') } as const;

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Compares in time independent of where the first difference is (lengths are public). */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** The bytes a proof is the MAC of (see the table above). */
export function proofInput(
  role: 'acceptor' | 'dialer',
  tag: string,
  clientNonce: Uint8Array,
  serverNonce: Uint8Array,
  nodeId: Uint8Array,
): Uint8Array {
  assert(clientNonce.length === NONCE_BYTES && serverNonce.length === NONCE_BYTES, 'nonce length');
  return concat([
    roleLabels[role],
    encoder.encode(tag),
    clientNonce,
    serverNonce,
    Uint8Array.of(nodeId.length),
    nodeId,
  ]);
}

function encodeHello(nonce: Uint8Array, id: Uint8Array, proof?: Uint8Array): Uint8Array {
  assert(nonce.length === NONCE_BYTES, 'nonce length');
  assert(id.length >= 1 && id.length <= NODE_ID_BYTES_MAX, 'node id must be 1..255 bytes of UTF-8');
  return concat([HANDSHAKE_MAGIC, nonce, Uint8Array.of(id.length), id, proof ?? new Uint8Array(0)]);
}

type Hello =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'bad'; readonly reason: string }
  | { readonly kind: 'ok'; readonly nonce: Uint8Array; readonly id: Uint8Array; readonly end: number };

/** Reads a hello (without its proof) from the start of `bytes`. */
function parseHello(bytes: Uint8Array): Hello {
  const magicSeen = Math.min(bytes.length, HANDSHAKE_MAGIC.length);
  for (let i = 0; i < magicSeen; i++) {
    if (bytes[i] !== HANDSHAKE_MAGIC[i]) return { kind: 'bad', reason: 'no authentication hello' };
  }
  if (bytes.length < helloFixedBytes) return { kind: 'incomplete' };
  const idLength = bytes[helloFixedBytes - 1]!;
  if (idLength === 0) return { kind: 'bad', reason: 'empty node id' };
  const end = helloFixedBytes + idLength;
  if (bytes.length < end) return { kind: 'incomplete' };
  return {
    kind: 'ok',
    nonce: bytes.slice(4, 4 + NONCE_BYTES),
    id: bytes.slice(helloFixedBytes, end),
    end,
  };
}

/** One step of a handshake: bytes to write (if any), and where it stands. */
export type HandshakeStep =
  | { readonly kind: 'pending'; readonly send?: Uint8Array }
  | {
      readonly kind: 'done';
      readonly send?: Uint8Array;
      /** The peer's node id, as it proved it. */
      readonly peerId: string;
      /** Bytes received after the handshake: the start of the protocol's stream. */
      readonly rest: Uint8Array;
    }
  | { readonly kind: 'failed'; readonly reason: string };

export type HandshakeParams = {
  /** The protocol tag the connection was opened for ('RFT1', 'RPC1', 'GSP1', 'LBD1'). */
  readonly tag: string;
  readonly selfId: string;
  /** NONCE_BYTES fresh random bytes. */
  readonly nonce: Uint8Array;
  readonly mac: Mac;
};

/** Bytes gathered until a step can be decided; bounded by the callers' checks on what they wait for. */
class Gather {
  #bytes: Uint8Array = new Uint8Array(0);

  add(chunk: Uint8Array): Uint8Array {
    this.#bytes = this.#bytes.length === 0 ? chunk.slice() : concat([this.#bytes, chunk]);
    return this.#bytes;
  }

  drop(n: number): void {
    this.#bytes = this.#bytes.slice(n);
  }
}

/** The accepting side: reads the client hello, answers with its own and its proof, checks the client proof. */
export class AcceptorHandshake {
  readonly #p: HandshakeParams;
  readonly #selfId: Uint8Array;
  readonly #gather = new Gather();
  #client: { readonly nonce: Uint8Array; readonly id: Uint8Array } | undefined;
  #over = false;

  constructor(params: HandshakeParams) {
    this.#p = params;
    this.#selfId = encoder.encode(params.selfId);
    assert(params.nonce.length === NONCE_BYTES, 'nonce length');
  }

  push(chunk: Uint8Array): HandshakeStep {
    assert(!this.#over, 'push after the handshake ended');
    const bytes = this.#gather.add(chunk);
    let send: Uint8Array | undefined;
    if (this.#client === undefined) {
      const hello = parseHello(bytes);
      if (hello.kind === 'bad') return this.#fail(hello.reason);
      if (hello.kind === 'incomplete') return { kind: 'pending' };
      this.#client = { nonce: hello.nonce, id: hello.id };
      this.#gather.drop(hello.end);
      const proof = this.#p.mac(
        proofInput('acceptor', this.#p.tag, hello.nonce, this.#p.nonce, this.#selfId),
      );
      send = encodeHello(this.#p.nonce, this.#selfId, proof);
    }
    return this.#finish(send);
  }

  #finish(send: Uint8Array | undefined): HandshakeStep {
    const client = this.#client;
    assert(client !== undefined, 'client hello read');
    const bytes = this.#gather.add(new Uint8Array(0));
    if (bytes.length < PROOF_BYTES)
      return send === undefined ? { kind: 'pending' } : { kind: 'pending', send };
    const expected = this.#p.mac(proofInput('dialer', this.#p.tag, client.nonce, this.#p.nonce, client.id));
    if (!constantTimeEqual(bytes.subarray(0, PROOF_BYTES), expected)) return this.#fail('wrong dialer proof');
    this.#over = true;
    return {
      kind: 'done',
      ...(send === undefined ? {} : { send }),
      peerId: decoder.decode(client.id),
      rest: bytes.slice(PROOF_BYTES),
    };
  }

  #fail(reason: string): HandshakeStep {
    this.#over = true;
    return { kind: 'failed', reason };
  }
}

/** The dialing side: `start()` is its hello; it checks the acceptor's proof and answers with its own. */
export class DialerHandshake {
  readonly #p: HandshakeParams;
  readonly #selfId: Uint8Array;
  readonly #gather = new Gather();
  #started = false;
  #over = false;

  constructor(params: HandshakeParams) {
    this.#p = params;
    this.#selfId = encoder.encode(params.selfId);
    assert(params.nonce.length === NONCE_BYTES, 'nonce length');
  }

  /** The client hello, to write right after the protocol tag. */
  start(): Uint8Array {
    assert(!this.#started, 'a handshake starts once');
    this.#started = true;
    return encodeHello(this.#p.nonce, this.#selfId);
  }

  push(chunk: Uint8Array): HandshakeStep {
    assert(this.#started && !this.#over, 'push before start or after the end');
    const bytes = this.#gather.add(chunk);
    const hello = parseHello(bytes);
    if (hello.kind === 'bad') return this.#fail(hello.reason);
    if (hello.kind === 'incomplete' || bytes.length < hello.end + PROOF_BYTES) return { kind: 'pending' };
    const expected = this.#p.mac(proofInput('acceptor', this.#p.tag, this.#p.nonce, hello.nonce, hello.id));
    if (!constantTimeEqual(bytes.subarray(hello.end, hello.end + PROOF_BYTES), expected)) {
      return this.#fail('wrong acceptor proof');
    }
    this.#over = true;
    const proof = this.#p.mac(proofInput('dialer', this.#p.tag, this.#p.nonce, hello.nonce, this.#selfId));
    return {
      kind: 'done',
      send: proof,
      peerId: decoder.decode(hello.id),
      rest: bytes.slice(hello.end + PROOF_BYTES),
    };
  }

  #fail(reason: string): HandshakeStep {
    this.#over = true;
    return { kind: 'failed', reason };
  }
}

// ---- Gossip datagrams -------------------------------------------------------------------------------------

/** A datagram to send: the packet, its sent-at, and the tag over both (the table above). */
export function sealDatagram(packet: Uint8Array, sentAtMs: number, mac: Mac): Uint8Array {
  assert(Number.isFinite(sentAtMs), 'sent-at must be finite');
  const out = new Uint8Array(packet.length + GOSSIP_TRAILER_BYTES);
  out.set(packet, 0);
  new DataView(out.buffer, out.byteOffset, out.byteLength).setFloat64(packet.length, sentAtMs, false);
  const tag = mac(out.subarray(0, packet.length + GOSSIP_SENT_AT_BYTES));
  out.set(tag.subarray(0, GOSSIP_TAG_BYTES), packet.length + GOSSIP_SENT_AT_BYTES);
  return out;
}

export type OpenedDatagram =
  | { readonly ok: true; readonly packet: Uint8Array; readonly sentAtMs: number; readonly tag: Uint8Array }
  | { readonly ok: false; readonly reason: 'short' | 'bad_tag' };

/** Checks a datagram's tag; the packet is a view into `bytes`. Freshness is the replay guard's to judge. */
export function openDatagram(bytes: Uint8Array, mac: Mac): OpenedDatagram {
  if (bytes.length <= GOSSIP_TRAILER_BYTES) return { ok: false, reason: 'short' };
  const packetEnd = bytes.length - GOSSIP_TRAILER_BYTES;
  const tagAt = packetEnd + GOSSIP_SENT_AT_BYTES;
  const expected = mac(bytes.subarray(0, tagAt)).subarray(0, GOSSIP_TAG_BYTES);
  const tag = bytes.subarray(tagAt);
  if (!constantTimeEqual(tag, expected)) return { ok: false, reason: 'bad_tag' };
  const sentAtMs = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getFloat64(
    packetEnd,
    false,
  );
  return { ok: true, packet: bytes.subarray(0, packetEnd), sentAtMs, tag };
}

export type ReplayVerdict = 'fresh' | 'stale' | 'future' | 'replayed';

/**
 * Accepts an authenticated datagram once, and only within `windowMs` of its sent-at. Remembers the tags it
 * accepted (at most `seenTagsMax`, the oldest forgotten first) until they fall out of the window.
 */
export class GossipReplayGuard {
  /** Tag (hex) -> the time it stops mattering; insertion order is arrival order. */
  readonly #seen = new Map<string, number>();
  forgottenEarly = 0;

  constructor(
    readonly windowMs: number,
    readonly seenTagsMax: number,
  ) {
    assert(windowMs >= 1 && seenTagsMax >= 1, 'replay window and bound must be positive');
  }

  check(sentAtMs: number, tag: Uint8Array, nowMs: number): ReplayVerdict {
    this.#expire(nowMs);
    if (!(sentAtMs >= nowMs - this.windowMs)) return 'stale';
    if (sentAtMs > nowMs + this.windowMs) return 'future';
    let key = '';
    for (const b of tag) key += b.toString(16).padStart(2, '0');
    if (this.#seen.has(key)) return 'replayed';
    if (this.#seen.size >= this.seenTagsMax) {
      const oldest = this.#seen.keys().next().value as string;
      this.#seen.delete(oldest);
      this.forgottenEarly++;
    }
    // A tag matters while its sent-at can still pass the window check.
    this.#seen.set(key, sentAtMs + this.windowMs);
    return 'fresh';
  }

  get size(): number {
    return this.#seen.size;
  }

  #expire(nowMs: number): void {
    for (const [key, untilMs] of this.#seen) {
      // Arrival order is not exactly expiry order (senders' clocks differ a little): stop at the first live one
      // and let the rest go on a later call; the bound holds regardless.
      if (untilMs >= nowMs) break;
      this.#seen.delete(key);
    }
  }
}
