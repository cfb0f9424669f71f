// The data link between nodes: a partition worker's TCP port that carries replica fetches between brokers and
// the requests an acceptor forwards to a partition's leader (produce, fetch, describe), in the same binary
// message layouts the rings carry (src/wire/messages.ts). `DataLinkServer` listens in a partition worker and
// hands each request frame to its handler; `DataLinkClient` is one pooled connection to one remote worker,
// with the same `send(kind, payloadBytes, encode, onResponse)` shape as the ring's WorkerLink, so a caller
// sends to a local worker or a remote one through one interface.
//
// Connection: the dialer first writes a hello, then frames flow both ways.
//
//   hello:  | 0 | 4 magic 'LBD1' | 4 | 2 node id length n (u16 LE) | 6 | n node id, UTF-8 |
//   frame:  | 0 | 4 length: bytes after this field, u32 LE, 5..frameBytesMax |
//           | 4 | 1 kind (the message kind; responses have the high bit set) |
//           | 5 | 4 correlation id, u32 LE: chosen by the client, echoed by the response |
//           | 9 | length - 5 payload bytes |
//
// With a cluster secret (`auth`) the hello is replaced by the handshake of core/security/cluster-auth.ts (tag
// 'LBD1' in the proofs): the client writes its client hello, the server answers with its hello and proof, the
// client checks it and writes its proof, then frames flow. The server hands nothing to its handler before the
// proof checks out, and ends a connection that has not completed the handshake within `handshakeTimeoutMs`; the
// client queues its calls until then (a failed handshake answers them `unreachable`: nothing was sent). Frames
// after the handshake carry no MAC: the connection is bound by the handshake, and the hot path stays as it was.
//
// With cluster TLS (`tls`, security/cluster-tls.ts) the connection is TLS 1.3 with a certificate from the
// cluster CA on both sides before the hello or the handshake: the server hands a connection to the above only
// once its TLS handshake passed (within `handshakeTimeoutMs`), and refusals are counted under `data_link`.
// Frames are then encrypted; the cost on replication throughput is measured by bench/replication.ts.
//
// Failures are values: a call that could not be sent is answered with kind `LinkFailureKind` and a one-byte
// payload `LinkFailure.unreachable` or `overloaded` (nothing reached the remote worker: a definite failure); a
// call whose connection ended, or whose deadline passed, after it was written is answered `lost` or
// `timed_out` (the remote worker may or may not have acted on it: an indefinite outcome). Every call is
// answered exactly once.
//
// Limits: frames above `frameBytesMax` are never sent, and one announced by the peer ends the connection
// before its bytes are buffered; a client holds at most `pendingMax` calls; a server connection stops reading
// while `responseBytesHighWater` bytes of answers wait on its socket or `inflightMax` requests are unanswered;
// a server holds at most `connectionsMax` connections. Malformed input ends the connection and is counted.
// Single-threaded: a server or client belongs to the thread that created it (a partition worker, or the
// acceptor for forwarded client requests).
import { createServer, type Server, type Socket } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import { assert } from '../core/assert.js';
import { type ClusterAuth, runHandshake } from '../security/cluster-auth.js';
import { type ClusterTls, dialCluster, readyEvent } from '../security/cluster-tls.js';

export const LinkFailureKind = 0x7f;
export const LinkFailure = {
  /** The remote worker could not be reached; nothing was sent. */
  unreachable: 1,
  /** Too many calls waiting on this link; nothing was sent. */
  overloaded: 2,
  /** The connection ended after the call was written: the remote worker may have acted on it. */
  lost: 3,
  /** No answer before the call's deadline: the remote worker may have acted on it, or may still. */
  timed_out: 4,
} as const;
export type LinkFailure = (typeof LinkFailure)[keyof typeof LinkFailure];

/** True when the remote side may have acted on the call (the client cannot know). */
export function linkFailureIndefinite(failure: number): boolean {
  return failure === LinkFailure.lost || failure === LinkFailure.timed_out;
}

export const DATA_LINK_DEFAULTS = {
  frameBytesMax: 32 * 1024 * 1024,
  pendingMax: 10_000,
  inflightMax: 4_096,
  responseBytesHighWater: 8 * 1024 * 1024,
  connectionsMax: 1_024,
  connectTimeoutMs: 2_000,
  /** A server connection that has not proven the cluster secret by then is closed. */
  handshakeTimeoutMs: 5_000,
  /** Back-off between dials after a failure, doubling up to the maximum. */
  redialMinMs: 50,
  redialMaxMs: 2_000,
} as const;

export type DataLinkLimits = { -readonly [K in keyof typeof DATA_LINK_DEFAULTS]: number };

const MAGIC = 0x3144424c; // 'LBD1' read as u32 LE
/** The protocol tag the handshake's proofs are bound to. */
const authTag = 'LBD1';
const helloFixedBytes = 6;
const frameHeaderBytes = 9;
const nodeIdBytesMax = 256;

/** Called with a frame's payload in place; the bytes are valid only during the call. */
export type FrameHandler = (kind: number, view: DataView, bytes: Buffer, at: number, length: number) => void;
/** Writes a payload of the announced size at `at`. */
export type FrameEncoder = (bytes: Buffer, view: DataView, at: number) => void;

export type LinkSendOutcome = 'sent' | 'queued' | 'overloaded' | 'too_large';

/**
 * Splits a byte stream into frames. Bytes are gathered in one growing buffer, so a frame is handed to its
 * handler in one piece however the socket cut it.
 */
class FrameReader {
  private buffer: Buffer = Buffer.allocUnsafe(64 * 1024);
  private view = new DataView(this.buffer.buffer, this.buffer.byteOffset, this.buffer.byteLength);
  private filled = 0;

  constructor(private readonly frameBytesMax: number) {}

  /** Adds `chunk` and calls `onFrame` for every whole frame. Returns false (and stops) on a malformed frame. */
  push(
    chunk: Buffer,
    onFrame: (
      kind: number,
      correlationId: number,
      view: DataView,
      bytes: Buffer,
      at: number,
      length: number,
    ) => void,
  ): boolean {
    this.append(chunk);
    let at = 0;
    while (this.filled - at >= 4) {
      const length = this.view.getUint32(at, true);
      if (length < 5 || length > this.frameBytesMax) return false;
      if (this.filled - at < 4 + length) {
        this.reserve(4 + length);
        break;
      }
      const kind = this.buffer[at + 4]!;
      const correlationId = this.view.getUint32(at + 5, true);
      onFrame(kind, correlationId, this.view, this.buffer, at + frameHeaderBytes, length - 5);
      at += 4 + length;
    }
    this.consume(at);
    return true;
  }

  /** Takes `n` bytes from the front if that many are buffered (for the hello); null otherwise. */
  take(n: number): Buffer | null {
    if (this.filled < n) return null;
    const out = Buffer.from(this.buffer.subarray(0, n));
    this.consume(n);
    return out;
  }

  peekUint16(at: number): number | null {
    return this.filled >= at + 2 ? this.view.getUint16(at, true) : null;
  }

  appendOnly(chunk: Buffer): void {
    this.append(chunk);
  }

  private append(chunk: Buffer): void {
    this.reserve(this.filled + chunk.byteLength);
    chunk.copy(this.buffer, this.filled);
    this.filled += chunk.byteLength;
  }

  private reserve(bytes: number): void {
    if (bytes <= this.buffer.byteLength) return;
    const next = Buffer.allocUnsafe(Math.max(bytes, this.buffer.byteLength * 2));
    this.buffer.copy(next, 0, 0, this.filled);
    this.buffer = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength);
  }

  private consume(n: number): void {
    if (n === 0) return;
    this.buffer.copy(this.buffer, 0, n, this.filled);
    this.filled -= n;
  }
}

function frame(kind: number, correlationId: number, payloadBytes: number, encode: FrameEncoder): Buffer {
  const out = Buffer.allocUnsafe(frameHeaderBytes + payloadBytes);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint32(0, 5 + payloadBytes, true);
  out[4] = kind;
  view.setUint32(5, correlationId, true);
  encode(out, view, frameHeaderBytes);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Server.

/** One accepted connection; answers go back on it. */
export class LinkConnection {
  private inflight = 0;
  private paused = false;
  closed = false;
  /** The dialer's node id, from its hello ('' until then). */
  peer = '';

  constructor(
    readonly socket: Socket,
    private readonly limits: DataLinkLimits,
  ) {}

  /** Answers request `correlationId` with a payload of `payloadBytes` written by `encode`. */
  reply(kind: number, correlationId: number, payloadBytes: number, encode: FrameEncoder): void {
    assert(this.inflight > 0, 'a reply without a request');
    this.inflight--;
    if (this.closed) return;
    if (frameHeaderBytes + payloadBytes - 4 > this.limits.frameBytesMax) {
      // The answer cannot be sent: the caller sees the connection end, an indefinite outcome.
      this.socket.destroy();
      return;
    }
    this.socket.write(frame(kind, correlationId, payloadBytes, encode));
    this.maybeResume();
  }

  /** @internal Counts a request handed to the handler; pauses reading at the bounds. */
  accepted(): void {
    this.inflight++;
    this.maybePause();
  }

  private maybePause(): void {
    if (this.paused) return;
    if (
      this.inflight >= this.limits.inflightMax ||
      this.socket.writableLength >= this.limits.responseBytesHighWater
    ) {
      this.paused = true;
      this.socket.pause();
    }
  }

  /** @internal */
  maybeResume(): void {
    if (!this.paused || this.closed) return;
    if (
      this.inflight < this.limits.inflightMax &&
      this.socket.writableLength < this.limits.responseBytesHighWater
    ) {
      this.paused = false;
      this.socket.resume();
    }
  }
}

export interface DataLinkRequestHandler {
  /** A request frame: copy what is needed; answer now or later with `connection.reply`, exactly once. */
  onRequest(
    connection: LinkConnection,
    kind: number,
    correlationId: number,
    view: DataView,
    bytes: Buffer,
    at: number,
    length: number,
  ): void;
  /** A connection ended; requests it carried need no answer any more (replies are dropped). */
  onClose?(connection: LinkConnection): void;
}

export interface DataLinkServerStats {
  connections: number;
  malformed: number;
  refusedConnections: number;
  /** Connections closed for a missing or wrong cluster-secret proof, or none in time. */
  authFailures: number;
}

export class DataLinkServer {
  private readonly connections = new Set<LinkConnection>();
  /** Accepted connections still proving the cluster secret; they count against `connectionsMax` too. */
  private readonly handshaking = new Set<Socket>();
  /** With cluster TLS: every raw TCP connection, through its TLS handshake and after, to end them on close. */
  private readonly rawSockets = new Set<Socket>();
  readonly stats: DataLinkServerStats = {
    connections: 0,
    malformed: 0,
    refusedConnections: 0,
    authFailures: 0,
  };

  private constructor(
    private readonly server: Server | TlsServer,
    readonly port: number,
  ) {}

  static async listen(
    host: string,
    port: number,
    handler: DataLinkRequestHandler,
    limits: DataLinkLimits = { ...DATA_LINK_DEFAULTS },
    auth?: ClusterAuth,
    tls?: ClusterTls,
  ): Promise<DataLinkServer> {
    let self: DataLinkServer | null = null;
    let server: Server | TlsServer;
    if (tls === undefined) {
      server = createServer({ noDelay: true }, (socket) => self!.accept(socket, handler, limits, auth));
    } else {
      const tlsServer = tls.createServer('data_link', limits.handshakeTimeoutMs);
      // TLS handshakes in progress count against `connectionsMax` through Node's own bound.
      tlsServer.maxConnections = limits.connectionsMax;
      tlsServer.on('connection', (raw: Socket) => {
        self?.rawSockets.add(raw);
        raw.on('close', () => self?.rawSockets.delete(raw));
      });
      tlsServer.on('secureConnection', (socket: Socket) => self!.accept(socket, handler, limits, auth));
      tlsServer.on('error', () => undefined);
      server = tlsServer;
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    assert(address !== null && typeof address === 'object', 'a listening TCP server has an address');
    self = new DataLinkServer(server, address.port);
    return self;
  }

  private accept(
    socket: Socket,
    handler: DataLinkRequestHandler,
    limits: DataLinkLimits,
    auth: ClusterAuth | undefined,
  ): void {
    if (this.connections.size + this.handshaking.size >= limits.connectionsMax) {
      this.stats.refusedConnections++;
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    if (auth === undefined) {
      this.serve(socket, handler, limits, null, Buffer.alloc(0));
      return;
    }
    // Held against `connectionsMax` while it proves itself, so unproven connections are bounded too.
    this.handshaking.add(socket);
    let timedOut = false;
    const deadline = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, limits.handshakeTimeoutMs);
    runHandshake(socket, auth.acceptor(authTag), Buffer.alloc(0), (outcome) => {
      clearTimeout(deadline);
      this.handshaking.delete(socket);
      if (!outcome.ok) {
        this.stats.authFailures++;
        auth.failed(
          'data_link',
          timedOut ? 'no proof in time' : outcome.reason,
          `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`,
        );
        return;
      }
      this.serve(socket, handler, limits, outcome.peerId, outcome.rest);
    });
  }

  /** Serves frames on a connection: after the hello (`peer` null) or after the handshake (`peer` proven). */
  private serve(
    socket: Socket,
    handler: DataLinkRequestHandler,
    limits: DataLinkLimits,
    peer: string | null,
    head: Buffer,
  ): void {
    const connection = new LinkConnection(socket, limits);
    this.connections.add(connection);
    this.stats.connections = this.connections.size;
    const reader = new FrameReader(limits.frameBytesMax);
    let helloDone = peer !== null;
    if (peer !== null) connection.peer = peer;
    const malformed = () => {
      this.stats.malformed++;
      socket.destroy();
    };
    const onData = (chunk: Buffer): void => {
      if (connection.closed) return;
      if (!helloDone) {
        reader.appendOnly(chunk);
        const idLength = reader.peekUint16(4);
        if (idLength === null) return;
        if (idLength > nodeIdBytesMax) return malformed();
        const hello = reader.take(helloFixedBytes + idLength);
        if (hello === null) return;
        if (hello.readUInt32LE(0) !== MAGIC) return malformed();
        connection.peer = hello.toString('utf8', helloFixedBytes);
        helloDone = true;
        chunk = Buffer.alloc(0);
      }
      const ok = reader.push(chunk, (kind, correlationId, view, bytes, at, length) => {
        if (connection.closed) return;
        connection.accepted();
        handler.onRequest(connection, kind, correlationId, view, bytes, at, length);
      });
      if (!ok) malformed();
    };
    socket.on('data', onData);
    socket.on('drain', () => connection.maybeResume());
    socket.on('error', () => undefined);
    socket.on('close', () => {
      connection.closed = true;
      this.connections.delete(connection);
      this.stats.connections = this.connections.size;
      handler.onClose?.(connection);
    });
    if (head.length > 0) onData(head);
  }

  async close(): Promise<void> {
    for (const connection of this.connections) connection.socket.destroy();
    for (const socket of this.handshaking) socket.destroy();
    for (const raw of this.rawSockets) raw.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

// ---------------------------------------------------------------------------------------------------------
// Client.

interface PendingCall {
  readonly onResponse: FrameHandler;
  readonly deadlineMs: number;
  /** Written to the socket: a failure now is indefinite. */
  written: boolean;
}

interface QueuedCall {
  readonly correlationId: number;
  readonly bytes: Buffer;
}

const failureBytes = Buffer.alloc(1);
const failureView = new DataView(failureBytes.buffer, failureBytes.byteOffset, 1);

/** One pooled connection to one remote worker's data link. */
export class DataLinkClient {
  private socket: Socket | null = null;
  private connected = false;
  private readonly pending = new Map<number, PendingCall>();
  private readonly queue: QueuedCall[] = [];
  private nextCorrelationId = 1;
  private redialAtMs = 0;
  private redialDelayMs: number;
  private reader: FrameReader;
  private closed = false;
  private sweepTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly selfId: string,
    private readonly limits: DataLinkLimits = { ...DATA_LINK_DEFAULTS },
    private readonly nowMs: () => number = () => performance.now(),
    private readonly auth?: ClusterAuth,
    private readonly tls?: ClusterTls,
  ) {
    this.redialDelayMs = limits.redialMinMs;
    this.reader = new FrameReader(limits.frameBytesMax);
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Sends one call; `onResponse` runs exactly once, with the answer or with a `LinkFailureKind` frame.
   * `timeoutMs` bounds the wait for the answer once the call is accepted.
   */
  send(
    kind: number,
    payloadBytes: number,
    encode: FrameEncoder,
    onResponse: FrameHandler,
    timeoutMs: number,
  ): LinkSendOutcome {
    if (frameHeaderBytes - 4 + payloadBytes > this.limits.frameBytesMax) return 'too_large';
    if (this.closed || this.pending.size >= this.limits.pendingMax) return 'overloaded';
    const correlationId = this.allocateCorrelationId();
    const call: PendingCall = { onResponse, deadlineMs: this.nowMs() + timeoutMs, written: false };
    this.pending.set(correlationId, call);
    const bytes = frame(kind, correlationId, payloadBytes, encode);
    this.ensureSweep();
    if (this.connected && this.socket !== null) {
      call.written = true;
      this.socket.write(bytes);
      return 'sent';
    }
    this.queue.push({ correlationId, bytes });
    this.dial();
    return 'queued';
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.socket?.destroy();
    this.failAll(LinkFailure.unreachable, LinkFailure.lost);
  }

  private allocateCorrelationId(): number {
    for (;;) {
      const id = this.nextCorrelationId;
      this.nextCorrelationId = id === 0xffff_ffff ? 1 : id + 1;
      if (!this.pending.has(id)) return id;
    }
  }

  private dial(): void {
    if (this.socket !== null || this.closed) return;
    const now = this.nowMs();
    if (now < this.redialAtMs) {
      // Waiting out the back-off: the sweep dials again, or fails the queued calls at their deadlines.
      return;
    }
    const socket = dialCluster(this.tls, this.host, this.port, 'data_link');
    socket.setNoDelay(true);
    this.socket = socket;
    const connectTimer = setTimeout(
      () => socket.destroy(new Error('connect timeout')),
      this.limits.connectTimeoutMs,
    );
    socket.once(readyEvent(socket), () => {
      const auth = this.auth;
      if (auth === undefined) {
        const id = Buffer.from(this.selfId, 'utf8');
        const hello = Buffer.allocUnsafe(helloFixedBytes + id.byteLength);
        hello.writeUInt32LE(MAGIC, 0);
        hello.writeUInt16LE(id.byteLength, 4);
        id.copy(hello, helloFixedBytes);
        socket.write(hello);
        this.ready(socket, connectTimer);
        return;
      }
      // The connect timer runs on through the handshake; calls stay queued until it is done.
      const handshake = auth.dialer(authTag);
      socket.write(handshake.start());
      runHandshake(socket, handshake, Buffer.alloc(0), (outcome) => {
        if (!outcome.ok) {
          if (outcome.reason !== 'closed during the handshake') {
            auth.failed('data_link', outcome.reason, this.address);
          }
          return;
        }
        this.ready(socket, connectTimer);
        if (outcome.rest.length > 0) this.onData(socket, outcome.rest);
      });
    });
    socket.on('data', (chunk: Buffer) => {
      if (this.connected) this.onData(socket, chunk);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(connectTimer);
      const wasConnected = this.connected;
      this.socket = null;
      this.connected = false;
      // A frame cut by the close is dropped with its connection.
      this.reader = new FrameReader(this.limits.frameBytesMax);
      if (!wasConnected) {
        this.redialAtMs = this.nowMs() + this.redialDelayMs;
        this.redialDelayMs = Math.min(this.redialDelayMs * 2, this.limits.redialMaxMs);
      }
      // Calls written on this connection have unknown outcomes; queued ones were never sent.
      this.failAll(LinkFailure.unreachable, LinkFailure.lost);
    });
  }

  /** Connected (and authenticated): writes the queued calls; new ones are written at once from now on. */
  private ready(socket: Socket, connectTimer: NodeJS.Timeout): void {
    clearTimeout(connectTimer);
    this.connected = true;
    this.redialDelayMs = this.limits.redialMinMs;
    socket.cork();
    for (const queued of this.queue.splice(0)) {
      const call = this.pending.get(queued.correlationId);
      if (call === undefined) continue;
      call.written = true;
      socket.write(queued.bytes);
    }
    socket.uncork();
  }

  private onData(socket: Socket, chunk: Buffer): void {
    const ok = this.reader.push(chunk, (kind, correlationId, view, bytes, at, length) => {
      const call = this.pending.get(correlationId);
      if (call === undefined) return; // timed out already
      this.pending.delete(correlationId);
      call.onResponse(kind, view, bytes, at, length);
    });
    if (!ok) socket.destroy();
  }

  private failAll(unsent: LinkFailure, written: LinkFailure): void {
    const calls = [...this.pending];
    this.pending.clear();
    this.queue.length = 0;
    for (const [, call] of calls) answerFailure(call, call.written ? written : unsent);
  }

  private ensureSweep(): void {
    if (this.sweepTimer !== null) return;
    this.sweepTimer = setInterval(() => this.sweep(), 100);
    this.sweepTimer.unref();
  }

  private sweep(): void {
    const now = this.nowMs();
    for (const [id, call] of this.pending) {
      if (call.deadlineMs > now) continue;
      this.pending.delete(id);
      const queuedAt = this.queue.findIndex((q) => q.correlationId === id);
      if (queuedAt >= 0) this.queue.splice(queuedAt, 1);
      answerFailure(call, call.written ? LinkFailure.timed_out : LinkFailure.unreachable);
    }
    if (this.queue.length > 0) this.dial();
    if (this.pending.size === 0 && this.sweepTimer !== null) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = null;
    }
  }
}

function answerFailure(call: PendingCall, failure: LinkFailure): void {
  failureBytes[0] = failure;
  call.onResponse(LinkFailureKind, failureView, failureBytes, 0, 1);
}
