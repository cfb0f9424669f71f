// TCP between Raft nodes. Each node accepts on one port and keeps one outgoing connection per peer, used only
// for sending; what arrives on accepted connections is delivered to `onMessage`. Two one-way connections per
// pair of nodes keep the design free of the "who dials whom" tie-break.
//
// The accepting side is either the node's shared cluster port (`clusterPort` in the config: Raft registers its
// tag there and the port's number is the address) or, without one, a TCP server of the transport's own on
// `listenHost:listenPort` that expects the same tag. Either way a dialed connection starts with the tag:
//
//   offset  size  field
//   0       4     protocol tag 'RFT1' (cluster/port.ts), once per connection, dialer to acceptor
//   4       ...   frames, as below
//
// Frame (after the tag, every frame):
//   offset  size  field
//   0       4     payload length in bytes, u32 big-endian, at most `frameBytesMax`
//   4       1     frame kind: 1 hello, 2 raft message
//   5       n     hello: hello version u8 = 1, then the sender's node id in UTF-8
//                 raft message: the bytes of `encodeMessage` (codec.ts, which carries its own version byte)
// The first frame on a connection is the dialer's hello; a connection whose first frame is anything else, a
// frame over the bound, or a hello from an unknown version is closed. A connection with another tag or none
// never reaches this transport (the port closes it).
//
// Invariants and limits: each peer's queue of frames not yet handed to its socket holds at most
// `sendQueueFramesMax`; when full the oldest frame is dropped (Raft retransmits what matters). Nothing more
// is written to a socket while it reports backpressure. Reconnects back off exponentially from
// `reconnectBackoffMinMs` to `reconnectBackoffMaxMs`. Accepted connections are capped by
// `inboundConnectionsMax`.
//
// A connection can be dead without closing: across a cut link TCP retransmits with exponential backoff and only
// gives up after many minutes, so after the link heals the old connection may stay silent for tens of seconds
// more. Raft answers every message a live peer receives (appends, heartbeats, votes all get responses), so
// an outgoing connection over which frames went out for `silentPeerMs` without a single message coming back
// from that peer is presumed dead and redialled; and a fresh inbound connection from a peer means the peer
// redialled us (perhaps because our messages stopped reaching it), so our connection to it, if older than
// `silentPeerMs`, is redialled too.
//
// A message whose `from` differs from the connection's hello, or whose `to` is not
// this node, is dropped and counted. Bad input never throws out of a socket handler; only a failed assertion
// inside `onMessage` (a bug in the node) does, and that is meant to stop the process. `close()` never closes a
// shared cluster port: it unregisters the tag and ends this transport's own connections.
// With a cluster secret (the shared port's `auth`, or `auth` here with an own server) both directions open with
// the handshake of core/security/cluster-auth.ts: the acceptor's port checks it before `accept` sees a byte,
// and the dialer writes its hello frame and messages only once the acceptor has proven the secret too; a hello
// naming another node than the one that proved itself is refused.
// Single-threaded: call it only from the thread that owns the Raft node (the control worker, or a test).
import * as net from 'node:net';
import {
  type ClusterPort,
  ClusterTags,
  openClusterConnection,
  type TagHandler,
  TagRouter,
} from '../cluster/port.js';
import { assert } from '../core/assert.js';
import type { Message, NodeId } from '../core/raft/types.js';
import type { ClusterAuth } from '../security/cluster-auth.js';
import { type ClusterTls, dialCluster, readyEvent } from '../security/cluster-tls.js';
import { decodeMessage, encodeMessage } from './codec.js';

export interface TransportConfig {
  readonly nodeId: NodeId;
  /** Ignored when `clusterPort` is given. */
  readonly listenHost: string;
  /** 0 picks a free port; `address()` tells which. Ignored when `clusterPort` is given. */
  readonly listenPort: number;
  /**
   * The node's shared cluster port: when given, Raft connections are accepted there (tag 'RFT1') instead of
   * on a server of the transport's own, `address()` is the port's, and `close()` leaves the port open.
   */
  readonly clusterPort?: ClusterPort;
  /** The cluster secret with an own server; with `clusterPort`, the port's is used. */
  readonly auth?: ClusterAuth;
  /** Cluster TLS with an own server; with `clusterPort`, the port's is used. */
  readonly tls?: ClusterTls;
  readonly frameBytesMax: number;
  readonly sendQueueFramesMax: number;
  readonly reconnectBackoffMinMs: number;
  readonly reconnectBackoffMaxMs: number;
  /** A dial that has not connected within this time is abandoned and retried with backoff. */
  readonly connectTimeoutMs: number;
  /** Frames sent this long with nothing heard back from the peer: the connection is redialled. */
  readonly silentPeerMs: number;
  readonly inboundConnectionsMax: number;
  readonly onMessage: (m: Message) => void;
}

/** Defaults sized for Raft metadata traffic: appends bounded to 1 MiB by the core, snapshots below 16 MiB. */
export const defaultTransportLimits = {
  frameBytesMax: 16 << 20,
  sendQueueFramesMax: 1024,
  reconnectBackoffMinMs: 50,
  reconnectBackoffMaxMs: 2_000,
  connectTimeoutMs: 2_000,
  // Several election timeouts of the broker (0.6-1.2 s): a leader's heartbeats are answered every tick, so
  // silence this long is a dead path, not a slow peer.
  silentPeerMs: 3_000,
  inboundConnectionsMax: 64,
} as const;

export function validateTransportConfig(config: TransportConfig): string[] {
  const problems: string[] = [];
  if (config.nodeId === '') problems.push('nodeId must be non-empty');
  if (!(config.frameBytesMax >= 64 && config.frameBytesMax <= 0xffffffff)) {
    problems.push('frameBytesMax must be in [64, 2^32)');
  }
  if (!(config.sendQueueFramesMax >= 1)) problems.push('sendQueueFramesMax must be >= 1');
  if (!(config.reconnectBackoffMinMs >= 1)) problems.push('reconnectBackoffMinMs must be >= 1');
  if (!(config.reconnectBackoffMaxMs >= config.reconnectBackoffMinMs)) {
    problems.push('reconnectBackoffMaxMs must be >= reconnectBackoffMinMs');
  }
  if (!(config.connectTimeoutMs >= 1)) problems.push('connectTimeoutMs must be >= 1');
  if (!(config.silentPeerMs >= 1)) problems.push('silentPeerMs must be >= 1');
  if (!(config.inboundConnectionsMax >= 1)) problems.push('inboundConnectionsMax must be >= 1');
  return problems;
}

const FrameKinds = { hello: 1, message: 2 } as const;
const helloVersion = 1;
const frameHeaderBytes = 4;

export type SendResult =
  | { readonly kind: 'queued' }
  | { readonly kind: 'unknown_peer' }
  | { readonly kind: 'too_large'; readonly bytes: number };

export interface PeerStats {
  readonly address: string;
  readonly connected: boolean;
  readonly queuedFrames: number;
  readonly sentFrames: number;
  readonly droppedFrames: number;
  readonly connectAttempts: number;
  /** Connections redialled because the peer stayed silent (see `silentPeerMs`). */
  readonly silentResets: number;
}

export interface TransportStats {
  readonly peers: Readonly<Record<NodeId, PeerStats>>;
  readonly receivedMessages: number;
  /** Frames or connections refused: bad hello, undecodable message, wrong sender or recipient, over size. */
  readonly rejectedInputs: number;
  readonly unknownPeerSends: number;
  readonly inboundConnections: number;
}

function frame(kind: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(frameHeaderBytes + 1 + payload.length);
  out.writeUInt32BE(1 + payload.length, 0);
  out[frameHeaderBytes] = kind;
  out.set(payload, frameHeaderBytes + 1);
  return out;
}

/** Splits a byte stream into frame payloads; `undefined` from `next` means "need more bytes". */
class FrameReader {
  private chunks: Buffer[] = [];
  private bufferedBytes = 0;

  constructor(private readonly frameBytesMax: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bufferedBytes += chunk.length;
  }

  /** The next payload, undefined if incomplete, or 'too_large' when the stream announces an oversized frame. */
  next(): Buffer | undefined | 'too_large' {
    if (this.bufferedBytes < frameHeaderBytes) return undefined;
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    const buf = this.chunks[0]!;
    const length = buf.readUInt32BE(0);
    if (length > this.frameBytesMax || length < 1) return 'too_large';
    if (buf.length < frameHeaderBytes + length) return undefined;
    const payload = buf.subarray(frameHeaderBytes, frameHeaderBytes + length);
    const rest = buf.subarray(frameHeaderBytes + length);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.bufferedBytes = rest.length;
    return payload;
  }
}

class Peer {
  socket: net.Socket | undefined = undefined;
  connected = false;
  writable = true;
  queue: Buffer[] = [];
  attempts = 0;
  timer: NodeJS.Timeout | undefined = undefined;
  sentFrames = 0;
  droppedFrames = 0;
  connectAttempts = 0;
  silentResets = 0;
  connectedAtMs = 0;
  /** When a message from this peer last arrived (on any inbound connection). */
  lastHeardMs = 0;
  /** When the first frame since the peer was last heard from went out; undefined when none did. */
  unansweredSinceMs: number | undefined = undefined;

  constructor(
    readonly id: NodeId,
    readonly address: string,
  ) {}
}

function parseAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  const port = Number(address.slice(colon + 1));
  assert(colon > 0 && Number.isInteger(port) && port > 0 && port < 65536, `bad peer address '${address}'`);
  return { host: address.slice(0, colon), port };
}

/** Where inbound connections come from: the shared cluster port, or a server of this transport's own. */
type Acceptor =
  | { readonly kind: 'shared'; readonly port: ClusterPort; readonly handler: TagHandler }
  | { readonly kind: 'own'; readonly server: net.Server; readonly router: TagRouter };

export class TcpTransport {
  private readonly peers = new Map<NodeId, Peer>();
  private readonly inbound = new Set<net.Socket>();
  /** What a dialer writes once connected and authenticated: the hello frame (the tag goes before it). */
  private readonly greeting: Buffer;
  private readonly auth: ClusterAuth | undefined;
  private readonly tls: ClusterTls | undefined;
  private acceptor: Acceptor | undefined = undefined;
  private closed = false;
  private receivedMessages = 0;
  private rejectedInputs = 0;
  private unknownPeerSends = 0;
  private readonly silenceTimer: NodeJS.Timeout;

  private constructor(private readonly cfg: TransportConfig) {
    const id = Buffer.from(cfg.nodeId, 'utf8');
    const hello = frame(FrameKinds.hello, Buffer.concat([Buffer.from([helloVersion]), id]));
    this.greeting = hello;
    this.auth = cfg.clusterPort?.auth ?? cfg.auth;
    this.tls = cfg.clusterPort?.tls ?? cfg.tls;
    this.silenceTimer = setInterval(() => this.resetSilentPeers(), Math.max(1, cfg.silentPeerMs / 4));
    this.silenceTimer.unref();
  }

  /** Redials every connection that has carried frames for `silentPeerMs` with nothing heard back. */
  private resetSilentPeers(): void {
    const nowMs = performance.now();
    for (const peer of this.peers.values()) {
      const since = peer.unansweredSinceMs;
      if (!peer.connected || since === undefined || nowMs - since < this.cfg.silentPeerMs) continue;
      this.resetConnection(peer);
    }
  }

  /** Ends the peer's outgoing connection; its close handler redials with backoff. */
  private resetConnection(peer: Peer): void {
    peer.silentResets++;
    peer.unansweredSinceMs = undefined;
    peer.socket?.destroy();
  }

  /**
   * Starts accepting: on `config.clusterPort` when given (registering the Raft tag there), otherwise on a
   * server of its own bound to `listenHost:listenPort`; resolves once connections can arrive.
   */
  static async listen(config: TransportConfig): Promise<TcpTransport> {
    const problems = validateTransportConfig(config);
    assert(problems.length === 0, `invalid transport config: ${problems.join('; ')}`);
    const transport = new TcpTransport(config);
    const handler: TagHandler = (socket, head, provenPeerId) => transport.accept(socket, head, provenPeerId);
    if (config.clusterPort !== undefined) {
      config.clusterPort.register(ClusterTags.raft, handler);
      transport.acceptor = { kind: 'shared', port: config.clusterPort, handler };
      return transport;
    }
    const server = config.tls?.createServer('raft', config.connectTimeoutMs) ?? net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.listenPort, config.listenHost, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // Tagged connections beyond the inbound cap are refused by `accept`; the router bounds the untagged.
    const router = new TagRouter(
      server,
      {
        sniffTimeoutMs: config.connectTimeoutMs,
        sniffingConnectionsMax: config.inboundConnectionsMax,
        connectionsMax: 2 * config.inboundConnectionsMax,
      },
      config.auth,
    );
    router.register(ClusterTags.raft, handler);
    transport.acceptor = { kind: 'own', server, router };
    return transport;
  }

  /** The accepting address as `host:port`, for peers to dial. */
  address(): string {
    const acceptor = this.acceptor;
    assert(acceptor !== undefined, 'transport is not listening');
    if (acceptor.kind === 'shared') return acceptor.port.address();
    const a = acceptor.server.address();
    assert(a !== null && typeof a === 'object', 'transport is not listening');
    return `${a.address}:${a.port}`;
  }

  /** Adds or re-addresses a peer; a changed address drops the old connection and dials the new one. */
  setPeer(id: NodeId, address: string): void {
    assert(!this.closed, 'setPeer after close');
    assert(id !== this.cfg.nodeId, 'a node is not its own peer');
    parseAddress(address);
    const old = this.peers.get(id);
    if (old !== undefined && old.address === address) return;
    const peer = new Peer(id, address);
    if (old !== undefined) {
      peer.queue = old.queue;
      this.disposePeer(old);
    }
    this.peers.set(id, peer);
    this.dial(peer);
  }

  removePeer(id: NodeId): void {
    const peer = this.peers.get(id);
    if (peer === undefined) return;
    this.peers.delete(id);
    this.disposePeer(peer);
  }

  /** Queues `m` for its recipient; never blocks and never throws for expected conditions. */
  send(m: Message): SendResult {
    const peer = this.peers.get(m.to);
    if (peer === undefined || this.closed) {
      this.unknownPeerSends++;
      return { kind: 'unknown_peer' };
    }
    const bytes = frame(FrameKinds.message, encodeMessage(m));
    if (bytes.length - frameHeaderBytes > this.cfg.frameBytesMax) {
      peer.droppedFrames++;
      return { kind: 'too_large', bytes: bytes.length };
    }
    if (peer.queue.length >= this.cfg.sendQueueFramesMax) {
      // Raft tolerates loss; the newest message is the most useful one to keep.
      peer.queue.shift();
      peer.droppedFrames++;
    }
    peer.queue.push(bytes);
    this.flush(peer);
    return { kind: 'queued' };
  }

  stats(): TransportStats {
    const peers: Record<NodeId, PeerStats> = {};
    for (const p of this.peers.values()) {
      peers[p.id] = {
        address: p.address,
        connected: p.connected,
        queuedFrames: p.queue.length,
        sentFrames: p.sentFrames,
        droppedFrames: p.droppedFrames,
        connectAttempts: p.connectAttempts,
        silentResets: p.silentResets,
      };
    }
    return {
      peers,
      receivedMessages: this.receivedMessages,
      rejectedInputs: this.rejectedInputs,
      unknownPeerSends: this.unknownPeerSends,
      inboundConnections: this.inbound.size,
    };
  }

  /**
   * Stops accepting, closes every connection of this transport and cancels every timer. A shared cluster port
   * stays open (only the Raft tag is unregistered); an own server is closed.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.silenceTimer);
    for (const peer of this.peers.values()) this.disposePeer(peer);
    this.peers.clear();
    for (const socket of this.inbound) socket.destroy();
    this.inbound.clear();
    const acceptor = this.acceptor;
    if (acceptor === undefined) return;
    if (acceptor.kind === 'shared') {
      acceptor.port.unregister(ClusterTags.raft, acceptor.handler);
      return;
    }
    const closed = new Promise<void>((resolve) => acceptor.server.close(() => resolve()));
    acceptor.router.destroyConnections();
    await closed;
  }

  // ---- Outgoing ----

  private dial(peer: Peer): void {
    if (this.closed || this.peers.get(peer.id) !== peer) return;
    const { host, port } = parseAddress(peer.address);
    peer.connectAttempts++;
    const socket = dialCluster(this.tls, host, port, 'raft');
    peer.socket = socket;
    socket.setNoDelay(true);
    socket.setTimeout(this.cfg.connectTimeoutMs, () => socket.destroy());
    socket.on(readyEvent(socket), () => {
      // The connect timeout runs on through the handshake: an acceptor that never proves itself is redialled.
      openClusterConnection(socket, ClusterTags.raft, this.auth, (opened) => {
        if (!opened.ok || peer.socket !== socket) return;
        socket.setTimeout(0);
        peer.connected = true;
        peer.writable = true;
        peer.attempts = 0;
        peer.connectedAtMs = performance.now();
        peer.unansweredSinceMs = undefined;
        socket.write(this.greeting);
        this.flush(peer);
      });
    });
    socket.on('drain', () => {
      peer.writable = true;
      this.flush(peer);
    });
    // Nothing is expected back on a sending connection; read and discard so the socket never stalls.
    socket.on('data', () => {});
    socket.on('error', () => {});
    socket.on('close', () => {
      if (peer.socket !== socket) return;
      peer.socket = undefined;
      peer.connected = false;
      if (this.closed || this.peers.get(peer.id) !== peer) return;
      const delayMs = Math.min(
        this.cfg.reconnectBackoffMaxMs,
        this.cfg.reconnectBackoffMinMs * 2 ** Math.min(peer.attempts, 30),
      );
      peer.attempts++;
      peer.timer = setTimeout(() => {
        peer.timer = undefined;
        this.dial(peer);
      }, delayMs);
    });
  }

  private flush(peer: Peer): void {
    const socket = peer.socket;
    if (socket === undefined || !peer.connected) return;
    while (peer.writable && peer.queue.length > 0) {
      const bytes = peer.queue.shift()!;
      peer.sentFrames++;
      peer.unansweredSinceMs ??= performance.now();
      peer.writable = socket.write(bytes);
    }
  }

  private disposePeer(peer: Peer): void {
    if (peer.timer !== undefined) clearTimeout(peer.timer);
    peer.timer = undefined;
    const socket = peer.socket;
    peer.socket = undefined;
    peer.connected = false;
    socket?.destroy();
  }

  // ---- Incoming ----

  /**
   * A peer dialled us anew: its connection to us broke, or it heard nothing from us for `silentPeerMs` (our
   * messages were lost on the way: one direction of a path can fail alone). Either way our own connection to
   * it, if it is older than that, probably crossed the same broken path, and a fresh one costs one dial.
   */
  private onHello(sender: NodeId): void {
    const peer = this.peers.get(sender);
    if (peer === undefined || !peer.connected) return;
    if (performance.now() - peer.connectedAtMs >= this.cfg.silentPeerMs) this.resetConnection(peer);
  }

  /** Takes an accepted connection whose tag was read; `head` is what followed the tag in the same reads. */
  private accept(socket: net.Socket, head: Buffer, provenPeerId: string | undefined): void {
    if (this.closed || this.inbound.size >= this.cfg.inboundConnectionsMax) {
      this.rejectedInputs++;
      socket.destroy();
      return;
    }
    this.inbound.add(socket);
    socket.setNoDelay(true);
    const reader = new FrameReader(this.cfg.frameBytesMax);
    let sender: NodeId | undefined;
    const reject = () => {
      this.rejectedInputs++;
      socket.destroy();
    };
    const onData = (chunk: Buffer): void => {
      reader.push(chunk);
      for (;;) {
        if (socket.destroyed) return;
        const payload = reader.next();
        if (payload === undefined) return;
        if (payload === 'too_large') return reject();
        const kind = payload[0];
        if (sender === undefined) {
          if (kind !== FrameKinds.hello || payload[1] !== helloVersion || payload.length < 3) return reject();
          sender = payload.toString('utf8', 2);
          // With a cluster secret the hello must name the node that proved itself in the handshake.
          if (provenPeerId !== undefined && sender !== provenPeerId) return reject();
          this.onHello(sender);
          continue;
        }
        if (kind !== FrameKinds.message) return reject();
        const decoded = decodeMessage(payload.subarray(1));
        if (!decoded.ok || decoded.message.from !== sender || decoded.message.to !== this.cfg.nodeId) {
          // One bad message is dropped, not the connection: the sender may simply run a newer schema.
          this.rejectedInputs++;
          continue;
        }
        this.receivedMessages++;
        const from = this.peers.get(sender);
        if (from !== undefined) {
          from.lastHeardMs = performance.now();
          from.unansweredSinceMs = undefined;
        }
        this.cfg.onMessage(decoded.message);
      }
    };
    socket.on('error', () => {});
    socket.on('close', () => this.inbound.delete(socket));
    socket.on('data', onData);
    // The bytes that arrived with the tag are the start of the frame stream.
    if (head.length > 0) onData(head);
  }
}
