// The gossip network shell: SWIM datagrams over UDP and push-pull streams over TCP, both on one port number:
// the node's shared cluster port (`clusterPort` option: this transport listens on its UDP socket and registers
// the gossip tag for TCP) or, without one, a cluster port of its own that it opens and closes. Addresses are
// `host:port` strings (IPv4 or a host name; the gossip address of a member).
//
// Stream protocol: the initiator's protocol tag, then one request and at most one response per connection,
// each one frame:
//
//   offset  size  field
//   0       4     protocol tag 'GSP1' (cluster/port.ts), initiator to responder only, before the request
//
//   frame (the request, then the response):
//   0       4     payload length in bytes, u32 big-endian, 1..streamFrameBytesMax
//   4       n     an encoded packet (codec.ts)
//
// The initiator connects, writes the tag and its frame and waits for one frame back or the end of the connection; the
// responder reads one frame, hands it to `onPacket`, writes the reply the handler sends to the initiator's
// gossip address during that call (if any) and ends the connection. Anything else (a second frame, a length
// over the bound, silence past `streamTimeoutMs`) ends the connection.
//
// Invariants: nothing received is trusted: decode failures and protocol violations are counted and dropped,
// never thrown out of a socket handler; at most `streamConnectionsMax` stream connections (both directions)
// are open, each buffering at most one frame and living at most `streamTimeoutMs`; a datagram sent is at most
// `udpPacketBytesMax` bytes (asserted). After `close()` nothing is delivered and nothing is sent; a shared
// cluster port is left open (only this transport's listeners and tag are removed), an own one is closed.
// With a cluster secret (the cluster port's `auth`, or `options.auth` on an own port) every datagram carries the
// trailer of core/security/cluster-auth.ts (sent-at and a 16-byte HMAC tag; so a datagram on the wire is up to
// `udpPacketBytesMax` + 24 bytes) and one without a valid, fresh, unseen tag is dropped before it is decoded
// (counted in `stats.authFailures` and the shared failure counter); streams open with the handshake
// (cluster/port.ts `openClusterConnection`), and the responder's port checks it before this transport sees them.
// Wire versions: each packet is encoded in the version its recipient speaks (src/core/gossip/wire-versions.ts:
// datagrams in the version the peer last sent, stream requests probe version 3 unless that failed lately, a
// stream reply in its request's version), learned from the version of every packet received, keyed by the
// sender's claimed gossip address (and the datagram's source address, when it differs).
// Called from the thread that owns the gossip agent (the control thread); callbacks run on that thread.
import type { RemoteInfo } from 'node:dgram';
import { createConnection, type Socket } from 'node:net';
import { ClusterPort, ClusterTags, openClusterConnection, type TagHandler } from '../cluster/port.js';
import { assert } from '../core/assert.js';
import type { Packet } from '../core/gossip/messages.js';
import { PeerWireVersions, type WireVersion } from '../core/gossip/wire-versions.js';
import type { ClusterAuth } from '../security/cluster-auth.js';
import { type ClusterTls, dialCluster, readyEvent } from '../security/cluster-tls.js';
import { decodePacket, encodeDatagram, encodePacket, GOSSIP_WIRE_VERSION } from './codec.js';

export type TransportKind = 'udp' | 'stream';

/** How an outbound stream ended: with the peer's response frame, or without one (and why). */
export type StreamOutcome = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export type TransportLimits = {
  /** Largest datagram sent; the core's packet budget, so it must equal the gossip config's. */
  readonly udpPacketBytesMax: number;
  /** Largest stream frame payload accepted or sent: a push-pull of membersMax members must fit. */
  readonly streamFrameBytesMax: number;
  /** Bounds a stream connection from connect to its last byte: the connect timeout and the exchange's. */
  readonly streamTimeoutMs: number;
  /** Open stream connections, inbound and outbound together; beyond it new ones are refused. */
  readonly streamConnectionsMax: number;
};

export const TRANSPORT_DEFAULTS: TransportLimits = {
  udpPacketBytesMax: 1400,
  // A push-pull entry is about 60 bytes plus ids, addresses and metadata: 4096 members of up to 1 KiB each.
  streamFrameBytesMax: 4 * 1024 * 1024,
  // Generous next to a LAN round trip, short next to the 30 s push-pull interval, so a stuck peer cannot hold
  // a connection slot for long.
  streamTimeoutMs: 5_000,
  // Push-pull runs once per interval per member plus joins: a handful at a time is normal, 64 is a storm.
  streamConnectionsMax: 64,
};

export type TransportOptions = {
  /** Interface to bind, e.g. `127.0.0.1` or `0.0.0.0`; with `clusterPort`, only the default advertise host. */
  readonly host: string;
  /** 0 lets the system choose a port free for both UDP and TCP; with `clusterPort`, 0 or the port's number. */
  readonly port: number;
  /** The host others should use to reach this member; defaults to `host`. */
  readonly advertiseHost?: string;
  /**
   * The node's shared cluster port: when given, datagrams come and go on its UDP socket and push-pull streams
   * arrive through its gossip tag; nothing is bound, and `close()` detaches without closing the port.
   */
  readonly clusterPort?: ClusterPort;
  readonly limits?: Partial<TransportLimits>;
  /** The cluster secret, when this transport opens a port of its own; a shared port brings its own. */
  readonly auth?: ClusterAuth;
  /** Cluster TLS for the push-pull streams, when this transport opens a port of its own. */
  readonly tls?: ClusterTls;
  /** A decoded packet and the gossip address of its sender (UDP source, or the stream's claimed sender). */
  readonly onPacket: (from: string, packet: Packet, kind: TransportKind) => void;
  /**
   * The highest wire version spoken; 2 makes this member behave as a build before version 3 (it sends only
   * version 2 and drops version 3), for tests of mixed-version clusters. Default: GOSSIP_WIRE_VERSION.
   */
  readonly wireVersionMax?: WireVersion;
};

/** Peers whose wire version is remembered: far more than members, so a live member is never forgotten. */
const PEER_VERSIONS_MAX = 16_384;
/**
 * After a version-3 stream request went unanswered, stream requests to that peer go in version 2 this long.
 * An older member is usually upgraded by a restart, after which it sends version 3 itself (which clears this).
 */
const PROBE_RETRY_MS = 60_000;

export type TransportStats = {
  datagramsIn: number;
  datagramsOut: number;
  /** Datagrams and frames whose bytes did not decode to a packet. */
  malformedIn: number;
  /** Datagrams dropped for a missing, wrong, stale or replayed cluster-secret tag. */
  authFailures: number;
  streamsIn: number;
  streamsOut: number;
  /** Connections refused or not opened because `streamConnectionsMax` were open. */
  streamsRefused: number;
  /** Streams that ended badly: connect failures, timeouts, oversized or extra frames, resets. */
  streamsFailed: number;
  /** Sends that failed locally (an unresolvable address, a socket error). */
  sendErrors: number;
};

export class GossipTransport {
  readonly limits: TransportLimits;
  readonly stats: TransportStats = {
    datagramsIn: 0,
    datagramsOut: 0,
    malformedIn: 0,
    authFailures: 0,
    streamsIn: 0,
    streamsOut: 0,
    streamsRefused: 0,
    streamsFailed: 0,
    sendErrors: 0,
  };
  readonly #port: ClusterPort;
  /** True when this transport opened `#port` itself and so closes it. */
  readonly #ownsPort: boolean;
  readonly #auth: ClusterAuth | undefined;
  readonly #onPacket: TransportOptions['onPacket'];
  readonly #streams = new Set<Socket>();
  readonly #onMessage = (bytes: Buffer, rinfo: RemoteInfo): void => this.#onDatagram(bytes, rinfo);
  // A UDP socket error (for example ICMP port unreachable on some systems) is a network condition: count it.
  readonly #onUdpError = (): void => {
    this.stats.sendErrors++;
  };
  readonly #onStream: TagHandler = (socket, head) => this.#onConnection(socket, head);
  /** The inbound stream whose request is being handled, so a reply to its sender goes back on it. */
  #replyTo:
    | { readonly address: string; readonly socket: Socket; readonly version: WireVersion; replied: boolean }
    | undefined;
  readonly #versions: PeerWireVersions;
  #closed = false;
  /** This member's gossip address, `advertiseHost:port`. */
  readonly address: string;
  readonly port: number;

  private constructor(
    port: ClusterPort,
    ownsPort: boolean,
    options: TransportOptions,
    limits: TransportLimits,
  ) {
    this.#port = port;
    this.#auth = port.auth;
    this.#ownsPort = ownsPort;
    this.port = port.port;
    this.address = `${options.advertiseHost ?? options.host}:${port.port}`;
    this.#onPacket = options.onPacket;
    this.limits = limits;
    this.#versions = new PeerWireVersions(
      options.wireVersionMax ?? GOSSIP_WIRE_VERSION,
      PEER_VERSIONS_MAX,
      PROBE_RETRY_MS,
    );
    port.udp.on('message', this.#onMessage);
    port.udp.on('error', this.#onUdpError);
    port.register(ClusterTags.gossip, this.#onStream);
  }

  /**
   * Attaches to `options.clusterPort`, or binds a cluster port of its own (UDP and TCP on one port number) and
   * attaches to that.
   */
  static async open(options: TransportOptions): Promise<GossipTransport> {
    const limits = { ...TRANSPORT_DEFAULTS, ...options.limits };
    assert(limits.udpPacketBytesMax >= 512, 'udpPacketBytesMax below 512');
    assert(limits.streamFrameBytesMax >= 1 && limits.streamFrameBytesMax < 2 ** 32, 'streamFrameBytesMax');
    assert(limits.streamTimeoutMs >= 1 && limits.streamConnectionsMax >= 1, 'stream limits must be positive');
    const shared = options.clusterPort;
    if (shared !== undefined) {
      assert(
        options.port === 0 || options.port === shared.port,
        `gossip port ${options.port} differs from the cluster port ${shared.port}`,
      );
      return new GossipTransport(shared, false, options, limits);
    }
    // Alone on its port, the stream bounds are the port's: an untagged connection is a stream that failed to
    // start, held no longer than a stream may live.
    const own = await ClusterPort.open({
      host: options.host,
      port: options.port,
      ...(options.auth === undefined ? {} : { auth: options.auth }),
      ...(options.tls === undefined ? {} : { tls: options.tls }),
      limits: {
        sniffTimeoutMs: limits.streamTimeoutMs,
        sniffingConnectionsMax: limits.streamConnectionsMax,
        connectionsMax: 2 * limits.streamConnectionsMax,
      },
    });
    return new GossipTransport(own, true, options, limits);
  }

  get closed(): boolean {
    return this.#closed;
  }

  get openStreams(): number {
    return this.#streams.size;
  }

  /** Sends one datagram; delivery is best effort, as SWIM expects. */
  sendUdp(to: string, packet: Packet): void {
    if (this.#closed) return;
    const target = parseAddress(to);
    if (target === undefined) {
      this.stats.sendErrors++;
      return;
    }
    const encoded = encodeDatagram(packet, this.limits.udpPacketBytesMax, this.#versions.udpVersion(to));
    const bytes = this.#auth === undefined ? encoded : this.#auth.seal(encoded);
    this.stats.datagramsOut++;
    this.#port.udp.send(bytes, target.port, target.host, (error) => {
      if (error) this.stats.sendErrors++;
    });
  }

  /**
   * Sends a packet over a stream: as the reply on the inbound stream from `to` being handled right now, or
   * as the request of a new connection whose response frame (if any) is delivered through `onPacket`.
   * `onOutcome`, for a new connection only, is called once when it ends: `ok` once the response frame was
   * delivered, otherwise with the reason (refused, unreachable, timed out, closed without an answer, or not
   * sent at all); it never runs after `close()`.
   */
  sendStream(to: string, packet: Packet, onOutcome?: (outcome: StreamOutcome) => void): void {
    let settled = false;
    const settle = (outcome: StreamOutcome): void => {
      if (settled || onOutcome === undefined) return;
      settled = true;
      if (!this.#closed) onOutcome(outcome);
    };
    if (this.#closed) return;
    const pending = this.#replyTo;
    const reply = pending !== undefined && pending.address === to && !pending.replied;
    // A reply in its request's version; a request in what the peer speaks, or version 3 as a probe.
    const version = reply ? pending.version : this.#versions.streamVersion(to, performance.now());
    const frame = this.#frame(packet, version);
    if (frame === undefined) {
      settle({ ok: false, reason: 'the packet exceeds the stream frame bound' });
      return;
    }
    if (reply) {
      pending.replied = true;
      pending.socket.end(frame);
      return;
    }
    const target = parseAddress(to);
    if (target === undefined) {
      this.stats.sendErrors++;
      settle({ ok: false, reason: `${JSON.stringify(to)} is not a host:port address` });
      return;
    }
    if (this.#streams.size >= this.limits.streamConnectionsMax) {
      this.stats.streamsRefused++;
      settle({ ok: false, reason: `${this.limits.streamConnectionsMax} gossip streams already open` });
      return;
    }
    this.stats.streamsOut++;
    const socket = dialCluster(this.#port.tls, target.host, target.port, 'gossip_stream');
    this.#track(socket);
    const closedUnanswered = 'the connection closed without an answer';
    let failure = closedUnanswered;
    let requestSent = false;
    let answered = false;
    socket.on('error', (error: NodeJS.ErrnoException) => {
      failure = error.code ?? error.message;
    });
    socket.on('timeout', () => {
      failure = `no answer within ${this.limits.streamTimeoutMs} ms`;
    });
    socket.on('close', () => {
      // A peer that closes on a version-3 request without a word is taken for an older build (it drops
      // what it cannot decode): requests to it go in version 2 for a while.
      if (requestSent && !answered && failure === closedUnanswered && version === 3 && !this.#closed) {
        this.#versions.probeFailed(to, performance.now());
        failure = `${closedUnanswered} (to version 3: version 2 next, in case it is an older build)`;
      }
      settle({ ok: false, reason: failure });
    });
    socket.once(readyEvent(socket), () => {
      openClusterConnection(socket, ClusterTags.gossip, this.#auth, (opened) => {
        if (!opened.ok) {
          failure = `cluster authentication failed (${opened.reason})`;
          return;
        }
        socket.write(frame);
        requestSent = true;
        this.#readResponse(
          to,
          socket,
          opened.rest,
          (outcome) => {
            answered ||= outcome.ok;
            settle(outcome);
          },
          (reason) => {
            failure = reason;
          },
        );
      });
    });
  }

  #readResponse(
    to: string,
    socket: Socket,
    head: Buffer,
    settle: (outcome: StreamOutcome) => void,
    setFailure: (reason: string) => void,
  ): void {
    readOneFrame(socket, head, this.limits.streamFrameBytesMax, (result) => {
      if (result.kind === 'frame') {
        // The response comes from the member we dialled: its gossip address is the one we used.
        this.#deliver(to, result.payload, 'stream');
        settle({ ok: true });
        socket.end();
      } else if (result.kind === 'bad') {
        this.stats.streamsFailed++;
        setFailure(`a bad answer (${result.reason})`);
        socket.destroy();
      }
    });
  }

  /**
   * Asks whether anything listens on `to`'s TCP port: connects and closes at once, sending nothing. Calls
   * `onResult(true)` only when the connection was refused (ECONNREFUSED: the host answered that no process
   * listens there); a connection, a timeout or any other failure is `false`, since a paused process and a cut
   * network look like that too. Never calls back after `close()`.
   */
  probeListening(to: string, timeoutMs: number, onResult: (refused: boolean) => void): void {
    const target = parseAddress(to);
    if (this.#closed || target === undefined) return;
    let refused = false;
    const socket = createConnection({ host: target.host, port: target.port });
    socket.setTimeout(timeoutMs, () => socket.destroy());
    socket.on('connect', () => socket.destroy());
    socket.on('error', (error: NodeJS.ErrnoException) => {
      refused = error.code === 'ECONNREFUSED';
    });
    socket.on('close', () => {
      if (!this.#closed) onResult(refused);
    });
  }

  /**
   * Closes every stream at once and stops receiving; pending sends are abandoned. An own cluster port is
   * closed; a shared one is only detached from (its UDP listeners removed, the gossip tag unregistered).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const socket of this.#streams) socket.destroy();
    this.#streams.clear();
    this.#port.unregister(ClusterTags.gossip, this.#onStream);
    this.#port.udp.off('message', this.#onMessage);
    this.#port.udp.off('error', this.#onUdpError);
    if (this.#ownsPort) await this.#port.close();
  }

  #frame(packet: Packet, version: WireVersion): Buffer | undefined {
    const payload = encodePacket(packet, version);
    if (payload.length > this.limits.streamFrameBytesMax) {
      // The member list outgrew the frame bound: a configuration mismatch, reported by the counter.
      this.stats.sendErrors++;
      return undefined;
    }
    const frame = Buffer.allocUnsafe(4 + payload.length);
    frame.writeUInt32BE(payload.length, 0);
    payload.copy(frame, 4);
    return frame;
  }

  #onDatagram(bytes: Buffer, rinfo: RemoteInfo): void {
    if (this.#closed) return;
    this.stats.datagramsIn++;
    const from = `${rinfo.address}:${rinfo.port}`;
    if (this.#auth === undefined) {
      this.#deliver(from, bytes, 'udp');
      return;
    }
    // Checked before a byte is decoded: the decoder never sees what an outsider sent.
    const packet = this.#auth.open(bytes, from);
    if (packet === undefined) {
      this.stats.authFailures++;
      return;
    }
    this.#deliver(from, packet, 'udp');
  }

  /** An inbound stream whose tag was read; `head` is what followed the tag in the same reads. */
  #onConnection(socket: Socket, head: Buffer): void {
    if (this.#closed || this.#streams.size >= this.limits.streamConnectionsMax) {
      this.stats.streamsRefused++;
      socket.destroy();
      return;
    }
    this.stats.streamsIn++;
    this.#track(socket);
    readOneFrame(socket, head, this.limits.streamFrameBytesMax, (result) => {
      if (result.kind !== 'frame') {
        if (result.kind === 'bad') this.stats.streamsFailed++;
        socket.destroy();
        return;
      }
      const decoded = decodePacket(result.payload, this.#versions.versionMax);
      if (!decoded.ok) {
        this.stats.malformedIn++;
        socket.destroy();
        return;
      }
      // The peer's source port is ephemeral; its gossip address is the one it claims, as with a UDP ping.
      const from = decoded.packet.senderAddress;
      this.#versions.observe(from, decoded.version);
      const pending = { address: from, socket, version: decoded.version, replied: false };
      this.#replyTo = pending;
      try {
        this.#onPacket(from, decoded.packet, 'stream');
      } finally {
        this.#replyTo = undefined;
      }
      if (!pending.replied) socket.end();
    });
  }

  #deliver(from: string, bytes: Uint8Array, kind: TransportKind): void {
    if (this.#closed) return;
    const decoded = decodePacket(bytes, this.#versions.versionMax);
    if (!decoded.ok) {
      this.stats.malformedIn++;
      return;
    }
    // Replies may go to the source address or to the claimed one: both learn the version.
    this.#versions.observe(decoded.packet.senderAddress, decoded.version);
    if (from !== decoded.packet.senderAddress) this.#versions.observe(from, decoded.version);
    this.#onPacket(from, decoded.packet, kind);
  }

  /** Counts the connection against the bound and ends it at the deadline whatever state it is in. */
  #track(socket: Socket): void {
    this.#streams.add(socket);
    socket.setNoDelay(true);
    socket.setTimeout(this.limits.streamTimeoutMs, () => {
      this.stats.streamsFailed++;
      socket.destroy();
    });
    socket.on('error', () => {
      this.stats.streamsFailed++;
    });
    socket.on('close', () => {
      this.#streams.delete(socket);
    });
  }
}

type FrameResult =
  | { readonly kind: 'frame'; readonly payload: Buffer }
  | { readonly kind: 'ended' }
  | { readonly kind: 'bad'; readonly reason: string };

/**
 * Reads exactly one length-prefixed frame from `socket`, starting with the bytes in `head` (already read from
 * it), buffering at most 4 + frameBytesMax bytes, and calls `done` once: with the frame, with `ended` when the
 * peer closed before sending any byte, or with `bad`. `done` may run before this returns when `head` holds it.
 */
function readOneFrame(
  socket: Socket,
  head: Buffer,
  frameBytesMax: number,
  done: (result: FrameResult) => void,
): void {
  const chunks: Buffer[] = [];
  let buffered = 0;
  let expected = -1;
  let finished = false;
  const finish = (result: FrameResult): void => {
    if (finished) return;
    finished = true;
    socket.off('data', onData);
    done(result);
  };
  const onData = (chunk: Buffer): void => {
    chunks.push(chunk);
    buffered += chunk.length;
    if (expected < 0 && buffered >= 4) {
      const head = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      expected = head.readUInt32BE(0);
      if (expected < 1 || expected > frameBytesMax) {
        finish({ kind: 'bad', reason: `frame length ${expected}` });
        return;
      }
    }
    if (expected < 0 || buffered < 4 + expected) return;
    if (buffered > 4 + expected) {
      finish({ kind: 'bad', reason: 'bytes after the frame' });
      return;
    }
    finish({ kind: 'frame', payload: Buffer.concat(chunks).subarray(4) });
  };
  socket.on('data', onData);
  socket.on('end', () => finish(buffered === 0 ? { kind: 'ended' } : { kind: 'bad', reason: 'short frame' }));
  socket.on('close', () => finish({ kind: 'ended' }));
  if (head.length > 0) onData(head);
}

/** Splits `host:port` (the last colon separates the port); undefined when it is not a usable address. */
export function parseAddress(address: string): { host: string; port: number } | undefined {
  const colon = address.lastIndexOf(':');
  if (colon <= 0) return undefined;
  const port = Number(address.slice(colon + 1));
  if (!Number.isInteger(port) || port < 1 || port > 65_535) return undefined;
  return { host: address.slice(0, colon), port };
}
