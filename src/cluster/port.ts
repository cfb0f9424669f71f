// The cluster port: one port number (`--cluster-port`) serving every node-to-node protocol. It owns a TCP
// server and a udp4 socket bound to the same number. UDP carries SWIM datagrams only, so the socket is handed
// as is to the gossip transport. TCP carries several protocols, told apart by a tag the dialer writes first:
//
//   offset  size  field
//   0       4     protocol tag, ASCII: 'RFT1' Raft, 'GSP1' gossip push-pull stream, 'RPC1' cluster RPC
//   4       ...   the protocol's own byte stream (see raft/transport.ts, gossip/transport.ts, cluster/rpc.ts)
//
// The port reads the tag, then hands the socket and the bytes that came after the tag in the same reads to the
// handler registered for it; from then on the connection belongs to that handler. The trailing digit is the
// protocol's version: a new incompatible framing gets a new tag, so an old node refuses it at the door.
//
// Invariants and limits: at most `connectionsMax` TCP connections are open (Node drops the rest, counted);
// at most `sniffingConnectionsMax` of them are still waiting for their tag, each for at most `sniffTimeoutMs`
// from accept (an absolute deadline, so trickling one byte at a time does not extend it); a connection with an
// unknown tag, a tag without a handler, or no tag in time is destroyed and counted. One handler per tag.
// `close()` ends every connection the port accepted, handed off or not, so that the port number is free again
// once it resolves. Bad input never throws out of a socket handler.
// With a cluster secret (`auth`), every tagged connection must pass the mutual challenge-response of
// core/security/cluster-auth.ts right after its tag and within the same sniff deadline before anything reaches
// its handler; `head` is then what followed the handshake. A connection that fails it is destroyed and counted
// (`authFailures`, and the shared `broker_cluster_auth_failures_total`), so an outsider cannot get one byte
// processed by Raft, RPC or gossip. Dialers authenticate with `openClusterConnection`.
// With cluster TLS (`tls`), the server is a `node:tls` server requiring a certificate from the cluster CA, and
// the tag is read from the decrypted stream of a connection whose TLS handshake passed (within the same
// `sniffTimeoutMs`, enforced by the TLS server as its handshake timeout); refused handshakes are counted by
// security/cluster-tls.ts under `cluster_port`. Dialers dial with `dialCluster` and write once `readyEvent`.
// Single-threaded: call it only from the thread that owns the cluster sockets (the control thread, or a test);
// handlers run on that thread.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import { assert } from '../core/assert.js';
import type { AuthTransport } from '../core/security/cluster-auth.js';
import { type ClusterAuth, type HandshakeOutcome, runHandshake } from '../security/cluster-auth.js';
import type { ClusterTls } from '../security/cluster-tls.js';

export const ClusterTags = {
  raft: 'RFT1',
  gossip: 'GSP1',
  rpc: 'RPC1',
} as const;
export type ClusterTag = (typeof ClusterTags)[keyof typeof ClusterTags];

/** The failure counter's label for each tag's connections. */
export const tagTransports: Readonly<Record<ClusterTag, AuthTransport>> = {
  RFT1: 'raft',
  GSP1: 'gossip_stream',
  RPC1: 'rpc',
};

/** Length of every tag in bytes. */
export const CLUSTER_TAG_BYTES = 4;

const tagList: readonly ClusterTag[] = Object.values(ClusterTags);
const tagBuffers: ReadonlyMap<ClusterTag, Buffer> = new Map(tagList.map((t) => [t, Buffer.from(t, 'ascii')]));

/** The 4 bytes of `tag`, to prefix what a dialer writes. The buffer is shared: do not modify it. */
export function clusterTagBytes(tag: ClusterTag): Buffer {
  const bytes = tagBuffers.get(tag);
  assert(bytes !== undefined && bytes.length === CLUSTER_TAG_BYTES, `unknown cluster tag ${tag}`);
  return bytes;
}

/**
 * Writes the tag as the first bytes of a dialed connection; call it right after `net.connect`, before any
 * other write (Node buffers writes made before the connection is established). Returns `socket.write`'s result.
 */
export function writeClusterTag(socket: Socket, tag: ClusterTag): boolean {
  return socket.write(clusterTagBytes(tag));
}

const noBytes = Buffer.alloc(0);

/**
 * Opens a dialed connection for `tag`: writes the tag and, with a cluster secret, the client hello, then calls
 * `ready` once: at once (with no bytes) without a secret, or when the acceptor has proven it holds the secret
 * and this side's proof is written, with whatever bytes followed. Until `ready` the caller must write nothing.
 * A failed handshake destroys the socket, is counted, and is reported through `ready`; the caller's connect
 * timeout bounds a silent acceptor. Call it right after `net.connect`.
 */
export function openClusterConnection(
  socket: Socket,
  tag: ClusterTag,
  auth: ClusterAuth | undefined,
  ready: (outcome: HandshakeOutcome) => void,
): void {
  if (auth === undefined) {
    socket.write(clusterTagBytes(tag));
    ready({ ok: true, peerId: '', rest: noBytes });
    return;
  }
  const handshake = auth.dialer(tag);
  socket.write(Buffer.concat([clusterTagBytes(tag), handshake.start()]));
  runHandshake(socket, handshake, noBytes, (outcome) => {
    if (!outcome.ok && outcome.reason !== 'closed during the handshake') {
      auth.failed(
        tagTransports[tag],
        outcome.reason,
        `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`,
      );
    }
    ready(outcome);
  });
}

/**
 * Receives a connection whose tag matched. `head` holds the bytes read after the tag (possibly empty): they are
 * the start of the protocol's stream. The handler must attach its 'data' listener before returning, since the
 * socket keeps flowing; it owns the socket from then on (timeouts, errors, destroy). With a cluster secret,
 * `provenPeerId` is the node id the dialer proved in the handshake.
 */
export type TagHandler = (socket: Socket, head: Buffer, provenPeerId?: string) => void;

export type ClusterPortLimits = {
  /** Deadline from accept to a complete tag; a LAN dialer writes it with its first segment. */
  readonly sniffTimeoutMs: number;
  /** Connections accepted but not yet tagged; beyond it new ones are destroyed at once. */
  readonly sniffingConnectionsMax: number;
  /**
   * Open TCP connections of every protocol together: the sum of what the handlers allow (Raft inbound 64,
   * gossip streams 64, RPC inbound 256) plus the sniffing ones, with room to spare.
   */
  readonly connectionsMax: number;
};

export const CLUSTER_PORT_DEFAULTS: ClusterPortLimits = {
  sniffTimeoutMs: 5_000,
  sniffingConnectionsMax: 64,
  connectionsMax: 1_024,
};

export type TagRouterStats = {
  /** Connections accepted (handed to the sniffer, whatever became of them). */
  accepted: number;
  /** Connections Node dropped because `connectionsMax` were open. */
  dropped: number;
  /** Connections destroyed because `sniffingConnectionsMax` were waiting for their tag. */
  sniffRefused: number;
  sniffTimeouts: number;
  /** A tag outside `ClusterTags`. */
  unknownTags: number;
  /** A known tag for which no handler was registered. */
  unhandledTags: number;
  /** Tagged connections closed for a missing or wrong cluster-secret proof (or none in time). */
  authFailures: number;
  /** Connections handed to each tag's handler. */
  routed: Record<ClusterTag, number>;
  /** Connections open right now, and how many of them are still waiting for their tag. */
  open: number;
  sniffing: number;
};

export type ClusterPortStats = TagRouterStats & {
  /** Errors reported by the UDP socket (e.g. ICMP unreachable on some systems). */
  udpErrors: number;
};

/**
 * Reads the tag of each connection a TCP server accepts and routes it to the registered handler. Used by
 * `ClusterPort`, and on its own by a transport that listens on a port of its own (tests, single-protocol use).
 */
export class TagRouter {
  readonly #limits: ClusterPortLimits;
  readonly #handlers = new Map<ClusterTag, TagHandler>();
  readonly #connections = new Set<Socket>();
  readonly #sniffing = new Set<Socket>();
  readonly #stats = {
    accepted: 0,
    dropped: 0,
    sniffRefused: 0,
    sniffTimeouts: 0,
    unknownTags: 0,
    unhandledTags: 0,
    authFailures: 0,
  };
  readonly #routed: Record<ClusterTag, number> = { RFT1: 0, GSP1: 0, RPC1: 0 };
  readonly #auth: ClusterAuth | undefined;
  /** With cluster TLS: every raw TCP connection, through its handshake and after it, to end them on close. */
  readonly #rawSockets = new Set<Socket>();
  #closed = false;

  /** `server` may be a TLS server (`ClusterTls.createServer`): connections are then routed once secure. */
  constructor(server: Server | TlsServer, limits: ClusterPortLimits, auth?: ClusterAuth) {
    this.#auth = auth;
    assert(limits.sniffTimeoutMs >= 1, 'sniffTimeoutMs must be >= 1');
    assert(limits.sniffingConnectionsMax >= 1, 'sniffingConnectionsMax must be >= 1');
    assert(limits.connectionsMax >= limits.sniffingConnectionsMax, 'connectionsMax below sniffing bound');
    this.#limits = limits;
    server.maxConnections = limits.connectionsMax;
    if (isTlsServer(server)) {
      server.on('connection', (raw: Socket) => {
        if (this.#closed) return void raw.destroy();
        this.#rawSockets.add(raw);
        raw.on('close', () => this.#rawSockets.delete(raw));
      });
      server.on('secureConnection', (socket: Socket) => this.#onConnection(socket));
    } else {
      server.on('connection', (socket) => this.#onConnection(socket));
    }
    // Node closes connections beyond `maxConnections` itself, before 'connection'; count them.
    server.on('drop', () => this.#stats.dropped++);
    // After a successful listen a server error is a transient accept failure (e.g. EMFILE); Node keeps going.
    server.on('error', () => {});
  }

  /** Routes connections tagged `tag` to `handler`; one handler per tag at a time. */
  register(tag: ClusterTag, handler: TagHandler): void {
    assert(tagBuffers.has(tag), `unknown cluster tag ${tag}`);
    assert(!this.#handlers.has(tag), `a handler for ${tag} is already registered`);
    this.#handlers.set(tag, handler);
  }

  /**
   * Stops routing `tag`, if `handler` is the one registered (so a late close of an old owner cannot remove a
   * new one). Connections already handed over stay with their handler.
   */
  unregister(tag: ClusterTag, handler: TagHandler): void {
    if (this.#handlers.get(tag) === handler) this.#handlers.delete(tag);
  }

  stats(): TagRouterStats {
    return {
      ...this.#stats,
      routed: { ...this.#routed },
      open: this.#connections.size,
      sniffing: this.#sniffing.size,
    };
  }

  /** Destroys every connection accepted, handed off or not; nothing is routed afterwards. */
  destroyConnections(): void {
    this.#closed = true;
    for (const socket of this.#connections) socket.destroy();
    for (const raw of this.#rawSockets) raw.destroy();
    this.#connections.clear();
    this.#rawSockets.clear();
    this.#sniffing.clear();
  }

  #authFailed(tag: ClusterTag, reason: string, socket: Socket): void {
    this.#stats.authFailures++;
    this.#auth?.failed(tagTransports[tag], reason, remoteOf(socket));
  }

  #onConnection(socket: Socket): void {
    this.#stats.accepted++;
    socket.on('error', () => {});
    if (this.#closed || this.#sniffing.size >= this.#limits.sniffingConnectionsMax) {
      this.#stats.sniffRefused++;
      socket.destroy();
      return;
    }
    this.#connections.add(socket);
    this.#sniffing.add(socket);
    const chunks: Buffer[] = [];
    let buffered = 0;
    const stop = (): void => {
      clearTimeout(deadline);
      socket.off('data', onData);
      this.#sniffing.delete(socket);
    };
    let timedOut = false;
    const deadline = setTimeout(() => {
      timedOut = true;
      stop();
      this.#stats.sniffTimeouts++;
      // During a handshake the destroy ends it, and its failure is counted there.
      socket.destroy();
    }, this.#limits.sniffTimeoutMs);
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      buffered += chunk.length;
      if (buffered < CLUSTER_TAG_BYTES) return;
      socket.off('data', onData);
      const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      const tag = bytes.toString('latin1', 0, CLUSTER_TAG_BYTES);
      const handler = isClusterTag(tag) ? this.#handlers.get(tag) : undefined;
      const auth = this.#auth;
      if (handler === undefined || auth === undefined) {
        stop();
        if (!isClusterTag(tag)) {
          this.#stats.unknownTags++;
          socket.destroy();
        } else if (handler === undefined) {
          this.#stats.unhandledTags++;
          socket.destroy();
        } else {
          this.#routed[tag]++;
          handler(socket, bytes.subarray(CLUSTER_TAG_BYTES));
        }
        return;
      }
      // Still sniffing (counted, under the deadline) until the peer has proven it holds the secret.
      assert(isClusterTag(tag), 'a handler implies a known tag');
      runHandshake(socket, auth.acceptor(tag), bytes.subarray(CLUSTER_TAG_BYTES), (outcome) => {
        stop();
        if (!outcome.ok) {
          if (!this.#closed) this.#authFailed(tag, timedOut ? 'no proof in time' : outcome.reason, socket);
          return;
        }
        // The handler may have gone while the handshake ran.
        const current = this.#handlers.get(tag);
        if (current === undefined || this.#closed) {
          socket.destroy();
          return;
        }
        this.#routed[tag]++;
        current(socket, outcome.rest, outcome.peerId);
      });
    };
    socket.on('data', onData);
    socket.on('close', () => {
      stop();
      this.#connections.delete(socket);
    });
  }
}

function remoteOf(socket: Socket): string {
  return `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
}

function isTlsServer(server: Server | TlsServer): server is TlsServer {
  return 'setSecureContext' in server;
}

function isClusterTag(tag: string): tag is ClusterTag {
  return tagBuffers.has(tag as ClusterTag);
}

export type ClusterPortOptions = {
  /** Interface to bind, e.g. `127.0.0.1` or `0.0.0.0`. */
  readonly host: string;
  /** 0 lets the system choose a number free for both TCP and UDP. */
  readonly port: number;
  readonly limits?: Partial<ClusterPortLimits>;
  /** The cluster secret: every TCP connection must prove it before its handler sees a byte. */
  readonly auth?: ClusterAuth;
  /** Cluster TLS: every TCP connection is TLS with a certificate from the cluster CA, both ways. */
  readonly tls?: ClusterTls;
};

/** Binding attempts with port 0 before giving up: the TCP port the system picks may be taken for UDP. */
const BIND_ATTEMPTS_MAX = 16;

export class ClusterPort {
  /** The bound TCP address as the system reports it (the bound interface, not an advertised host). */
  readonly host: string;
  readonly port: number;
  /** The bound udp4 socket, for the gossip transport; the port closes it. */
  readonly udp: UdpSocket;
  readonly limits: ClusterPortLimits;
  /** The cluster secret, for the protocols on this port (datagram tags, dialers' handshakes). */
  readonly auth: ClusterAuth | undefined;
  /** Cluster TLS, for the dialers of the protocols on this port; undefined without it. */
  readonly tls: ClusterTls | undefined;
  readonly #server: Server | TlsServer;
  readonly #router: TagRouter;
  #udpErrors = 0;
  #closed = false;

  private constructor(
    server: Server | TlsServer,
    router: TagRouter,
    udp: UdpSocket,
    limits: ClusterPortLimits,
    auth: ClusterAuth | undefined,
    tls: ClusterTls | undefined,
  ) {
    this.auth = auth;
    this.tls = tls;
    const address = server.address();
    assert(address !== null && typeof address === 'object', 'cluster port server is not listening');
    assert(udp.address().port === address.port, 'UDP and TCP bound to different port numbers');
    this.host = address.address;
    this.port = address.port;
    this.udp = udp;
    this.limits = limits;
    this.#server = server;
    this.#router = router;
    // Without a listener a UDP error would throw; it is a network condition, counted.
    udp.on('error', () => this.#udpErrors++);
  }

  /** Binds TCP, then UDP on the same number; with port 0, retries another number when UDP's is taken. */
  static async open(options: ClusterPortOptions): Promise<ClusterPort> {
    const limits = { ...CLUSTER_PORT_DEFAULTS, ...options.limits };
    assert(Number.isInteger(options.port) && options.port >= 0 && options.port < 65_536, 'bad cluster port');
    const attempts = options.port === 0 ? BIND_ATTEMPTS_MAX : 1;
    let lastError: unknown;
    for (let attempt = 0; attempt < attempts; attempt++) {
      const server =
        options.tls === undefined
          ? createServer({ pauseOnConnect: false })
          : options.tls.createServer('cluster_port', limits.sniffTimeoutMs);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port: options.port, host: options.host, exclusive: true }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const address = server.address();
      assert(address !== null && typeof address === 'object', 'server is not listening');
      const udp = createSocket({ type: 'udp4', reuseAddr: false });
      try {
        await new Promise<void>((resolve, reject) => {
          udp.once('error', reject);
          udp.bind(address.port, options.host, () => {
            udp.off('error', reject);
            resolve();
          });
        });
      } catch (error) {
        lastError = error;
        udp.close();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
        continue;
      }
      const router = new TagRouter(server, limits, options.auth);
      return new ClusterPort(server, router, udp, limits, options.auth, options.tls);
    }
    throw lastError;
  }

  /** `host:port` of the bound interface. */
  address(): string {
    return `${this.host}:${this.port}`;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Routes TCP connections tagged `tag` to `handler`; one handler per tag at a time. */
  register(tag: ClusterTag, handler: TagHandler): void {
    assert(!this.#closed, 'register on a closed cluster port');
    this.#router.register(tag, handler);
  }

  /** Stops routing `tag` if `handler` is the registered one; its connections stay with it. */
  unregister(tag: ClusterTag, handler: TagHandler): void {
    this.#router.unregister(tag, handler);
  }

  stats(): ClusterPortStats {
    return { ...this.#router.stats(), udpErrors: this.#udpErrors };
  }

  /** Closes the listener and the UDP socket and ends every TCP connection; the number is free once resolved. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const serverClosed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#router.destroyConnections();
    await Promise.all([serverClosed, new Promise<void>((resolve) => this.udp.close(() => resolve()))]);
  }
}
