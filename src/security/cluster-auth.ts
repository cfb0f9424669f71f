// The cluster secret at work: reads it (`--cluster-secret-file`), derives one key per use with HKDF-SHA256,
// and runs the pure handshake and datagram checks of core/security/cluster-auth.ts over real sockets with real
// randomness and clocks. Also owns the failure counters (`broker_cluster_auth_failures_total{transport,reason}`,
// cluster TLS counting its refusals there too),
// kept in a SharedArrayBuffer so that the control thread, the partition workers and the acceptor all count
// into the one figure the acceptor exports, and the rate-limited warning logged for each failure.
//
// A `ClusterAuth` is made per thread from the same secret bytes (they travel in workerData); its counters are
// shared, everything else (replay guard, log limiter) belongs to the thread that made it.
import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { assert } from '../core/assert.js';
import {
  AcceptorHandshake,
  type AuthFailureReason,
  type AuthTransport,
  authFailureReasons,
  authStatSlot,
  authTransports,
  DialerHandshake,
  GOSSIP_TRAILER_BYTES,
  GossipReplayGuard,
  type HandshakeStep,
  KeyLabels,
  type Mac,
  NODE_ID_BYTES_MAX,
  NONCE_BYTES,
  openDatagram,
  SECRET_BYTES_MIN,
  sealDatagram,
} from '../core/security/cluster-auth.js';

export { GOSSIP_TRAILER_BYTES };

/**
 * Reads a secret file: its bytes, less trailing line ends (what `openssl rand -base64 48 > file` and editors
 * leave). Throws an Error naming the file when it cannot be read or holds fewer than 32 bytes.
 */
export function readClusterSecretFile(path: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new Error(
      `cannot read the cluster secret (--cluster-secret-file) ${path}: ${(error as Error).message}`,
    );
  }
  let end = bytes.length;
  while (end > 0 && (bytes[end - 1] === 0x0a || bytes[end - 1] === 0x0d)) end--;
  if (end < SECRET_BYTES_MIN) {
    throw new Error(
      `the cluster secret ${path} holds ${end} bytes; at least ${SECRET_BYTES_MIN} are needed (generate one with: openssl rand -base64 48 > ${path})`,
    );
  }
  return Buffer.from(bytes.subarray(0, end));
}

/** Counter slots, one per (transport, reason) (`authStatSlot`); Int32 so any thread may `Atomics.add`. */
export function createAuthStats(): SharedArrayBuffer {
  return new SharedArrayBuffer(
    authTransports.length * authFailureReasons.length * Int32Array.BYTES_PER_ELEMENT,
  );
}

/** Reads the failure counts by transport, every reason together (any thread). */
export function readAuthStats(buffer: SharedArrayBuffer): Record<AuthTransport, number> {
  const view = new Int32Array(buffer);
  const out = {} as Record<AuthTransport, number>;
  for (const t of authTransports) {
    out[t] = authFailureReasons.reduce((sum, r) => sum + Atomics.load(view, authStatSlot(t, r)), 0);
  }
  return out;
}

/** Reads one (transport, reason) count (any thread). */
export function readAuthStat(
  buffer: SharedArrayBuffer,
  transport: AuthTransport,
  reason: AuthFailureReason,
): number {
  return Atomics.load(new Int32Array(buffer), authStatSlot(transport, reason));
}

/** Adds one failure to the shared counters (any thread). */
export function countAuthFailure(
  buffer: SharedArrayBuffer,
  transport: AuthTransport,
  reason: AuthFailureReason,
): void {
  Atomics.add(new Int32Array(buffer), authStatSlot(transport, reason), 1);
}

export type AuthWarn = (fields: Record<string, unknown>, message: string) => void;

/** Gossip replay window: clocks of the cluster's nodes must agree this well. */
export const GOSSIP_REPLAY_WINDOW_MS = 30_000;
/** Distinct datagrams remembered inside the window: 30 s at ~1,000 datagrams/s. */
export const GOSSIP_SEEN_TAGS_MAX = 32_768;
/** At most one warning per transport per this interval; the others are counted into the next one. */
const warnIntervalMs = 5_000;

export type ClusterAuthOptions = {
  readonly nodeId: string;
  readonly secret: Uint8Array;
  /** Shared failure counters (`createAuthStats`); a private buffer when absent. */
  readonly stats?: SharedArrayBuffer;
  readonly warn?: AuthWarn;
  /** Wall clock in ms, for gossip freshness. */
  readonly nowMs?: () => number;
};

export class ClusterAuth {
  readonly nodeId: string;
  readonly stats: SharedArrayBuffer;
  readonly #counts: Int32Array;
  readonly #handshakeMac: Mac;
  readonly #gossipMac: Mac;
  readonly #guard = new GossipReplayGuard(GOSSIP_REPLAY_WINDOW_MS, GOSSIP_SEEN_TAGS_MAX);
  readonly #log: AuthFailureLog;
  readonly #nowMs: () => number;

  constructor(options: ClusterAuthOptions) {
    assert(options.secret.length >= SECRET_BYTES_MIN, 'cluster secret below 32 bytes');
    const idBytes = Buffer.byteLength(options.nodeId, 'utf8');
    assert(idBytes >= 1 && idBytes <= NODE_ID_BYTES_MAX, 'node id must be 1..255 bytes for the handshake');
    this.nodeId = options.nodeId;
    this.stats = options.stats ?? createAuthStats();
    this.#counts = new Int32Array(this.stats);
    this.#handshakeMac = macWith(derive(options.secret, KeyLabels.handshake));
    this.#gossipMac = macWith(derive(options.secret, KeyLabels.gossip));
    this.#log = new AuthFailureLog(options.warn ?? (() => {}));
    this.#nowMs = options.nowMs ?? Date.now;
  }

  acceptor(tag: string): AcceptorHandshake {
    return new AcceptorHandshake({
      tag,
      selfId: this.nodeId,
      nonce: randomBytes(NONCE_BYTES),
      mac: this.#handshakeMac,
    });
  }

  dialer(tag: string): DialerHandshake {
    return new DialerHandshake({
      tag,
      selfId: this.nodeId,
      nonce: randomBytes(NONCE_BYTES),
      mac: this.#handshakeMac,
    });
  }

  /** A datagram to send: the packet with its sent-at and tag. */
  seal(packet: Uint8Array): Buffer {
    const sealed = sealDatagram(packet, this.#nowMs(), this.#gossipMac);
    return Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  }

  /** The packet inside an authentic, fresh datagram not seen before; undefined (counted, logged) otherwise. */
  open(bytes: Uint8Array, from: string): Uint8Array | undefined {
    const opened = openDatagram(bytes, this.#gossipMac);
    if (!opened.ok) {
      this.failed('gossip_udp', opened.reason === 'short' ? 'no tag' : 'bad tag', from);
      return undefined;
    }
    const verdict = this.#guard.check(opened.sentAtMs, opened.tag, this.#nowMs());
    if (verdict !== 'fresh') {
      this.failed('gossip_udp', `${verdict} datagram`, from);
      return undefined;
    }
    return opened.packet;
  }

  /** Counts one failure and logs it, at most once per transport per 5 s (with how many were not logged). */
  failed(transport: AuthTransport, reason: string, remote: string): void {
    Atomics.add(this.#counts, authStatSlot(transport, 'secret'), 1);
    this.#log.note(transport, reason, remote);
  }
}

/**
 * The warning logged for refused peers, at most one line per transport per 5 s, carrying how many were not
 * logged since the last one: an outsider hammering a port cannot flood the log. Owned by one thread.
 */
export class AuthFailureLog {
  readonly #warn: AuthWarn;
  readonly #lastWarnMs = new Map<AuthTransport, number>();
  readonly #suppressed = new Map<AuthTransport, number>();

  constructor(warn: AuthWarn) {
    this.#warn = warn;
  }

  note(transport: AuthTransport, reason: string, remote: string): void {
    const nowMs = performance.now();
    const last = this.#lastWarnMs.get(transport);
    if (last !== undefined && nowMs - last < warnIntervalMs) {
      this.#suppressed.set(transport, (this.#suppressed.get(transport) ?? 0) + 1);
      return;
    }
    this.#lastWarnMs.set(transport, nowMs);
    const suppressed = this.#suppressed.get(transport) ?? 0;
    this.#suppressed.set(transport, 0);
    this.#warn(
      { transport, reason, remote, notLoggedSinceLast: suppressed },
      'cluster authentication failed: message dropped or connection closed',
    );
  }
}

function derive(secret: Uint8Array, label: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), label, 32));
}

function macWith(key: Buffer): Mac {
  return (data) => createHmac('sha256', key).update(data).digest();
}

export type HandshakeOutcome =
  | { readonly ok: true; readonly peerId: string; readonly rest: Buffer }
  | { readonly ok: false; readonly reason: string };

/**
 * Runs one side of the handshake on `socket`: feeds it `head` and then what arrives, writes what it says to,
 * and calls `done` once, with the bytes after the handshake on success. Its 'data' listener is removed before
 * `done` runs, so the protocol attaches its own. On failure the socket is destroyed before `done` runs. Time
 * bounds are the caller's (the port's sniff deadline, a connect timeout). For a dialer, `handshake.start()`
 * must have been written already.
 */
export function runHandshake(
  socket: Socket,
  handshake: { push(chunk: Uint8Array): HandshakeStep },
  head: Uint8Array,
  done: (outcome: HandshakeOutcome) => void,
): void {
  let finished = false;
  const finish = (outcome: HandshakeOutcome): void => {
    if (finished) return;
    finished = true;
    socket.off('data', onData);
    socket.off('close', onClose);
    if (!outcome.ok) socket.destroy();
    done(outcome);
  };
  const onData = (chunk: Buffer): void => {
    if (finished) return;
    const step = handshake.push(chunk);
    if (step.kind === 'failed') return finish({ ok: false, reason: step.reason });
    if (step.send !== undefined && !socket.destroyed) socket.write(step.send);
    if (step.kind === 'done') {
      finish({
        ok: true,
        peerId: step.peerId,
        rest: Buffer.from(step.rest.buffer, step.rest.byteOffset, step.rest.byteLength),
      });
    }
  };
  const onClose = (): void => finish({ ok: false, reason: 'closed during the handshake' });
  socket.on('data', onData);
  socket.on('close', onClose);
  if (head.length > 0) onData(Buffer.from(head.buffer, head.byteOffset, head.byteLength));
}
