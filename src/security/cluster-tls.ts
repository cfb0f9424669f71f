// Mutual TLS between nodes (--cluster-tls-cert-file, --cluster-tls-key-file, --cluster-tls-ca-file): every TCP
// connection of the cluster port (Raft, cluster RPC, gossip push-pull) and of the data link is `node:tls`,
// TLS 1.3 only, both sides presenting a certificate that must chain to the cluster CA (`requestCert` and
// `rejectUnauthorized` on the server, `rejectUnauthorized` on the client). The peer's host name is not checked:
// nodes dial the addresses gossip gives them, often bare IPs, and the cluster CA is what vouches for membership,
// so it must sign node certificates only. The cluster secret's handshake (cluster-auth.ts) still runs inside
// the TLS stream, and the secret alone guards gossip's UDP datagrams, which TLS cannot carry.
//
// Files: read and checked here (`loadClusterTlsMaterial`) at start-up and on SIGHUP, every problem named at
// once: unreadable or not PEM, an encrypted key, a key that is not the certificate's, a certificate that no CA
// of the CA file signed, or one whose extended key usage forbids serving or dialing.
// Reload: the acceptor thread receives SIGHUP, checks the files and only then bumps a generation counter in a
// SharedArrayBuffer (`announceClusterTlsReload`). Each thread's `ClusterTls` compares it with the generation it
// loaded before each dial and each accepted connection, re-reads the files when it moved, and from then on
// dials with the new client context and serves new connections with the new one (`tls.Server#setSecureContext`).
// Connections already open keep the certificates they were made with.
// Refusals: a handshake the server refuses is counted in the shared `broker_cluster_auth_failures_total`
// (reason `tls_certificate`: no certificate or one not from the cluster CA; `tls_handshake`: any other TLS
// failure, such as plain TCP on the port or no handshake within the deadline) and logged at most once per
// transport every 5 s; a dialer counts a server certificate it refuses. A peer that disconnects before its
// handshake is not counted: the gossip transport's port probes do exactly that.
// A `ClusterTls` belongs to the thread that made it (control thread, partition worker, or acceptor); the
// counters and the generation are shared by all of them.
import { X509Certificate } from 'node:crypto';
import * as net from 'node:net';
import {
  connect,
  createSecureContext,
  createServer,
  type SecureContext,
  type TLSSocket,
  type Server as TlsServer,
} from 'node:tls';
import { assert } from '../core/assert.js';
import type { AuthFailureReason, AuthTransport } from '../core/security/cluster-auth.js';
import { AuthFailureLog, type AuthWarn, countAuthFailure, createAuthStats } from './cluster-auth.js';
import { checkPemFiles } from './tls.js';

/** The three files; they travel to every thread in workerData. */
export interface ClusterTlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
}

/** What the files held once every check passed, and what the log says about the certificate. */
export interface ClusterTlsMaterial {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
  readonly subject: string;
  readonly validTo: string;
  readonly fingerprint256: string;
  /** The certificate is outside its validity period now: peers refuse it (warned about at start-up). */
  readonly outOfDate: boolean;
}

const serverAuthOid = '1.3.6.1.5.5.7.3.1';
const clientAuthOid = '1.3.6.1.5.5.7.3.2';
const pemCertificate = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Reads and checks the cluster TLS files. Throws an Error naming every problem found (see the file comment).
 */
export function loadClusterTlsMaterial(files: ClusterTlsFiles): ClusterTlsMaterial {
  const problems: string[] = [];
  const checked = checkPemFiles(
    {
      certFile: files.certFile,
      certWhat: 'cluster TLS certificate (--cluster-tls-cert-file)',
      keyFile: files.keyFile,
      keyWhat: 'cluster TLS private key (--cluster-tls-key-file)',
      caFile: files.caFile,
      caWhat: 'cluster CA (--cluster-tls-ca-file)',
    },
    problems,
  );
  if (checked !== null) {
    const leaf = checked.certificate;
    if (!signedByOneOf(leaf, checked.cas, intermediatesOf(checked.certText))) {
      problems.push(
        `the certificate ${files.certFile} (${oneLine(leaf.subject)}, issued by ${oneLine(leaf.issuer)}) was not signed by a CA of ${files.caFile}: the other nodes would refuse it`,
      );
    }
    const usages = leaf.keyUsage;
    if (usages !== undefined && (!usages.includes(serverAuthOid) || !usages.includes(clientAuthOid))) {
      problems.push(
        `the certificate ${files.certFile} must allow both serverAuth and clientAuth (extendedKeyUsage = serverAuth,clientAuth): a node accepts and dials connections with it`,
      );
    }
  }
  if (problems.length > 0 || checked === null) {
    throw new Error(`cluster TLS: ${problems.join('; ')}`);
  }
  const leaf = checked.certificate;
  assert(checked.caText !== null, 'the cluster CA file was read');
  const nowMs = Date.now();
  return {
    cert: checked.certText,
    key: checked.keyText,
    ca: checked.caText,
    subject: oneLine(leaf.subject),
    validTo: leaf.validTo,
    fingerprint256: leaf.fingerprint256,
    outOfDate: nowMs < Date.parse(leaf.validFrom) || nowMs > Date.parse(leaf.validTo),
  };
}

function oneLine(name: string): string {
  return name.replaceAll('\n', ', ');
}

/** The certificates after the leaf in a chain file. */
function intermediatesOf(certText: string): X509Certificate[] {
  return (certText.match(pemCertificate) ?? []).slice(1).flatMap((pem) => {
    try {
      return [new X509Certificate(pem)];
    } catch {
      return [];
    }
  });
}

/** Whether `leaf` chains, through the intermediates given with it, to one of `cas`. */
function signedByOneOf(
  leaf: X509Certificate,
  cas: readonly X509Certificate[],
  intermediates: readonly X509Certificate[],
): boolean {
  let current = leaf;
  for (let depth = 0; depth <= intermediates.length; depth++) {
    if (cas.some((ca) => current.checkIssued(ca) && current.verify(ca.publicKey))) return true;
    const next = intermediates.find((i) => current.checkIssued(i) && current.verify(i.publicKey));
    if (next === undefined) return false;
    current = next;
  }
  return false;
}

/**
 * Bytes the TCP connection under a server-side TLS socket received: 0 for a peer that never sent a hello.
 * Node keeps that connection as the TLS socket's `_parent` (not in its typings, present since Node 0.11); when
 * it is missing, the failure is counted as if a hello had come.
 */
function rawBytesRead(socket: TLSSocket): number {
  const parent = (socket as TLSSocket & { _parent?: net.Socket | null })._parent;
  return parent instanceof net.Socket ? parent.bytesRead : 1;
}

/** The reload generation shared by every thread (Int32 at index 0). */
export function createClusterTlsReload(): SharedArrayBuffer {
  return new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT);
}

/** Tells every thread's `ClusterTls` to re-read the files; call it once they have been checked. */
export function announceClusterTlsReload(reload: SharedArrayBuffer): void {
  // Each thread loads the generation before its next dial or accept; no ordering with other memory is needed.
  Atomics.add(new Int32Array(reload), 0, 1);
}

/**
 * Why a server-side handshake failed: `tls_certificate` when this side refused the peer's certificate (or got
 * none), `tls_handshake` for any other failure, a peer that sent a hello and then left included (a node of
 * another CA does that: it refuses this node's certificate first); null for a peer that left without sending
 * a byte (a port probe). `bytesRead`: what the raw connection had received.
 */
export function classifyTlsFailure(
  error: NodeJS.ErrnoException,
  socket: TLSSocket | undefined,
  bytesRead: number,
): AuthFailureReason | null {
  if (socket?.authorizationError) return 'tls_certificate';
  const code = error.code ?? '';
  if (code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE') return 'tls_certificate';
  if ((code === 'ECONNRESET' || code === 'EPIPE') && bytesRead === 0) return null;
  return 'tls_handshake';
}

/** What every thread needs to make its `ClusterTls`; travels in workerData. */
export type ClusterTlsShared = {
  readonly files: ClusterTlsFiles;
  readonly reload: SharedArrayBuffer;
};

export type ClusterTlsOptions = {
  readonly files: ClusterTlsFiles;
  /** `createClusterTlsReload`, shared by the threads; a private one when absent. */
  readonly reload?: SharedArrayBuffer;
  /** Shared failure counters (`createAuthStats`); a private buffer when absent. */
  readonly stats?: SharedArrayBuffer;
  readonly warn?: AuthWarn;
  /** Already loaded and checked by the caller (the acceptor thread at start-up); read from the files otherwise. */
  readonly material?: ClusterTlsMaterial;
};

/** The event a dialed socket emits once it may carry the protocol: after the TLS handshake for TLS. */
export function readyEvent(socket: net.Socket): 'connect' | 'secureConnect' {
  return 'encrypted' in socket ? 'secureConnect' : 'connect';
}

export class ClusterTls {
  readonly files: ClusterTlsFiles;
  readonly reload: SharedArrayBuffer;
  readonly stats: SharedArrayBuffer;
  readonly #generation: Int32Array;
  #loadedGeneration: number;
  #material: ClusterTlsMaterial;
  #clientContext: SecureContext;
  readonly #servers = new Set<TlsServer>();
  readonly #log: AuthFailureLog;
  readonly #warn: AuthWarn;

  constructor(options: ClusterTlsOptions) {
    this.files = options.files;
    this.reload = options.reload ?? createClusterTlsReload();
    this.stats = options.stats ?? createAuthStats();
    this.#generation = new Int32Array(this.reload);
    this.#loadedGeneration = Atomics.load(this.#generation, 0);
    this.#material = options.material ?? loadClusterTlsMaterial(options.files);
    this.#clientContext = this.#makeClientContext();
    this.#warn = options.warn ?? (() => {});
    this.#log = new AuthFailureLog(this.#warn);
  }

  /** The certificate in use, for the log. */
  get material(): ClusterTlsMaterial {
    return this.#material;
  }

  /**
   * Dials `host:port` over TLS with this node's certificate, refusing a server whose certificate does not
   * chain to the cluster CA (counted under `transport`). Write the protocol's first bytes on 'secureConnect'
   * (`readyEvent`).
   */
  connect(host: string, port: number, transport: AuthTransport): TLSSocket {
    this.refresh();
    const socket = connect({
      host,
      port,
      secureContext: this.#clientContext,
      minVersion: 'TLSv1.3',
      rejectUnauthorized: true,
      // Membership is what the cluster CA vouches for; peers are dialed by the addresses gossip carries.
      checkServerIdentity: () => undefined,
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (socket.authorizationError) this.#failed(transport, 'tls_certificate', error, `${host}:${port}`);
    });
    return socket;
  }

  /**
   * A TLS server requiring a client certificate from the cluster CA; listen to its 'secureConnection' for the
   * connections whose handshake passed. Refused handshakes are counted under `transport`; a handshake must
   * finish within `handshakeTimeoutMs` of the accept.
   */
  createServer(transport: AuthTransport, handshakeTimeoutMs: number): TlsServer {
    assert(handshakeTimeoutMs >= 1, 'a TLS handshake deadline of at least 1 ms');
    const server = createServer({
      ...this.#serverOptions(),
      handshakeTimeout: handshakeTimeoutMs,
      noDelay: true,
    });
    // Ahead of the TLS server's own listener, which wraps the socket with the context current at that moment.
    server.prependListener('connection', () => this.refresh());
    server.on('tlsClientError', (error: NodeJS.ErrnoException, socket: TLSSocket) => {
      const reason = classifyTlsFailure(error, socket, rawBytesRead(socket));
      if (reason === null) return;
      this.#failed(transport, reason, error, `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`);
    });
    server.on('close', () => this.#servers.delete(server));
    this.#servers.add(server);
    return server;
  }

  /** Re-reads the files if a reload was announced since they were last read. Any time, on the owning thread. */
  refresh(): void {
    const generation = Atomics.load(this.#generation, 0);
    if (generation === this.#loadedGeneration) return;
    this.#loadedGeneration = generation;
    try {
      this.#material = loadClusterTlsMaterial(this.files);
    } catch (error) {
      // The acceptor checked the files before announcing; they changed again since. Keep serving the old ones.
      this.#warn(
        { err: (error as Error).message },
        'cluster TLS reload failed in this thread; the previous certificates stay in use',
      );
      return;
    }
    this.#clientContext = this.#makeClientContext();
    for (const server of this.#servers) server.setSecureContext(this.#serverOptions());
  }

  #makeClientContext(): SecureContext {
    const m = this.#material;
    return createSecureContext({ cert: m.cert, key: m.key, ca: m.ca, minVersion: 'TLSv1.3' });
  }

  #serverOptions() {
    const m = this.#material;
    return {
      cert: m.cert,
      key: m.key,
      ca: m.ca,
      minVersion: 'TLSv1.3' as const,
      requestCert: true,
      rejectUnauthorized: true,
    };
  }

  #failed(transport: AuthTransport, reason: AuthFailureReason, error: Error, remote: string): void {
    countAuthFailure(this.stats, transport, reason);
    this.#log.note(transport, `${reason}: ${(error as NodeJS.ErrnoException).code ?? error.message}`, remote);
  }
}

/** A plain TCP dial, or a TLS one with cluster TLS on. */
export function dialCluster(
  tls: ClusterTls | undefined,
  host: string,
  port: number,
  transport: AuthTransport,
): net.Socket {
  return tls === undefined ? net.createConnection({ host, port }) : tls.connect(host, port, transport);
}
