// A follower worker's fetch session with one leader worker (Kafka's replica fetcher thread, one per pair of
// brokers; here one per pair of workers): the partitions this worker follows there, one replica-fetch request
// in flight for all of them at a time over a pooled data-link connection, and the answer queued for the
// worker's loop, which appends, fsyncs and only then reports the new durable end in the next request.
// A failed call (unreachable, lost, timed out) backs the session off; its partitions keep following.
// Runs on one partition worker thread; the data link calls back on the same thread.

import { DataLinkClient, type DataLinkLimits, LinkFailureKind } from '../link/data-link.js';
import { MessageKind } from '../messages/kinds.js';
import { type MovedEntry, readMovedAnswer } from '../messages/moved.js';
import {
  type ReplicaFetchRequest,
  type ReplicaRequestEntry,
  replicaFetchRequestBytes,
  writeReplicaFetchRequest,
} from '../messages/replica-fetch.js';
import type { ClusterAuth } from '../security/cluster-auth.js';
import type { ClusterTls } from '../security/cluster-tls.js';

/** What came back for one request, copied out of the socket's buffer. */
export interface SessionAnswer {
  readonly session: FetchSession;
  /** The entries the request carried, to match the answer's. */
  readonly asked: readonly ReplicaRequestEntry[];
  /** The answer's payload, or null when the call failed. */
  readonly payload: Buffer | null;
  readonly failure: number;
  /** The leader answered MOVED: these partitions are on other workers of its node now (nothing was served). */
  readonly moved?: readonly MovedEntry[];
}

export class FetchSession {
  /** Partition keys following the leader worker this session talks to. */
  readonly partitions = new Set<number>();
  inFlight = false;
  retryAtMs = 0;
  private readonly client: DataLinkClient;

  constructor(
    readonly leaderId: string,
    readonly host: string,
    readonly port: number,
    selfId: string,
    limits: DataLinkLimits,
    private readonly onAnswer: (answer: SessionAnswer) => void,
    auth?: ClusterAuth,
    tls?: ClusterTls,
  ) {
    this.client = new DataLinkClient(host, port, selfId, limits, undefined, auth, tls);
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  /** Sends one request; the answer (or failure) reaches `onAnswer` once. */
  send(request: ReplicaFetchRequest, timeoutMs: number): void {
    const bytes = replicaFetchRequestBytes(request.followerId, request.entries.length);
    this.inFlight = true;
    const outcome = this.client.send(
      MessageKind.ReplicaFetch,
      bytes,
      (out, view, at) => writeReplicaFetchRequest(out, view, at, request),
      (kind, view, payload, at, length) => {
        this.inFlight = false;
        if (kind === MessageKind.MovedAnswer) {
          const moved = readMovedAnswer(view, at, length);
          if (moved === null) {
            this.onAnswer({ session: this, asked: request.entries, payload: null, failure: 2 });
          } else {
            this.onAnswer({ session: this, asked: request.entries, payload: null, failure: 0, moved });
          }
        } else if (kind === LinkFailureKind) {
          this.onAnswer({ session: this, asked: request.entries, payload: null, failure: payload[at]! });
        } else {
          this.onAnswer({
            session: this,
            asked: request.entries,
            payload: Buffer.from(payload.subarray(at, at + length)),
            failure: 0,
          });
        }
      },
      timeoutMs,
    );
    if (outcome === 'overloaded' || outcome === 'too_large') {
      this.inFlight = false;
      this.onAnswer({ session: this, asked: request.entries, payload: null, failure: 2 });
    }
  }

  close(): void {
    this.client.close();
  }
}
