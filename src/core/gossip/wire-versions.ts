// Which gossip wire version to send to each peer, so that members of an older build (wire version 2 only) and
// of this one (2 and 3) form one membership during a rolling upgrade: an older member drops a version-3
// packet whole, so sending it one would look like a dead member to it and fence the sender.
//
// The rules, per peer gossip address:
// - UDP (probes, acks, piggybacked gossip; a lost one counts against the peer) goes in the version the peer
//   last sent us, and in version 2 while it has sent nothing: a datagram is never a guess.
// - A stream request (join, periodic push-pull) is the probe: it goes in our highest version unless the peer
//   last sent us version 3 (then 3) or a version-3 request to it ended without an answer within the last
//   `probeRetryMs` (then 2: an older build closes the connection on a packet it cannot decode). The join and
//   push-pull retry anyway, so a failed probe costs one round, and a failed push-pull is no failure signal.
// - A stream reply goes in the version of the request it answers (the shell does that; not decided here).
// - "Last sent us" rather than "highest ever": a member that is rolled back to an older build at the same
//   address sends version 2 again and is answered in it at once. Two members of this build that know nothing
//   of each other talk version 2 until the first push-pull between them (version 3), then 3 both ways, since
//   each has last heard 3 from the other.
// A peer of this build thus gets version 3 (Kafka ports included) from its first stream exchange on, and an
// older one never gets a version-3 datagram.
//
// Invariants: at most `entriesMax` peers are remembered (the least recently heard from is forgotten first, and
// is then treated as unknown: version 2 over UDP, a probe over streams); versions are 2 or 3, and never above
// `versionMax`. Pure: no clock (times are passed in), no I/O; one instance per transport, on its thread.
import { assert } from '../assert.js';

export type WireVersion = 2 | 3;
export const WIRE_VERSION_BASE: WireVersion = 2;

interface Peer {
  /** The version of the last packet received from the peer; null when none was (only a failed probe). */
  heard: WireVersion | null;
  /** Until when stream requests to it go in version 2 after a version-3 request went unanswered. */
  probeFailedUntilMs: number;
}

export class PeerWireVersions {
  private readonly peers = new Map<string, Peer>();

  constructor(
    /** The highest version this member speaks (3; 2 simulates an older build in tests). */
    readonly versionMax: WireVersion,
    readonly entriesMax: number,
    readonly probeRetryMs: number,
  ) {
    assert(entriesMax > 0, 'PeerWireVersions needs room for one peer');
    assert(probeRetryMs >= 0, 'probeRetryMs must not be negative');
  }

  get size(): number {
    return this.peers.size;
  }

  /** A packet of `version` came from `address`. */
  observe(address: string, version: WireVersion): void {
    const known = this.peers.get(address);
    const heard = version > this.versionMax ? this.versionMax : version;
    if (known !== undefined) {
      this.peers.delete(address);
      known.heard = heard;
      // Version 3 from it: whatever failed before, it reads 3 now.
      if (heard === 3) known.probeFailedUntilMs = 0;
      this.peers.set(address, known);
      return;
    }
    this.insert(address, { heard, probeFailedUntilMs: 0 });
  }

  /** A stream request in version 3 to `address` was closed without an answer. */
  probeFailed(address: string, nowMs: number): void {
    const known = this.peers.get(address);
    if (known !== undefined) {
      known.probeFailedUntilMs = nowMs + this.probeRetryMs;
      return;
    }
    this.insert(address, { heard: null, probeFailedUntilMs: nowMs + this.probeRetryMs });
  }

  udpVersion(address: string): WireVersion {
    return this.peers.get(address)?.heard === 3 && this.versionMax === 3 ? 3 : WIRE_VERSION_BASE;
  }

  streamVersion(address: string, nowMs: number): WireVersion {
    if (this.versionMax === 2) return 2;
    const known = this.peers.get(address);
    if (known === undefined || known.heard === 3) return 3;
    return known.probeFailedUntilMs > nowMs ? WIRE_VERSION_BASE : 3;
  }

  private insert(address: string, peer: Peer): void {
    if (this.peers.size >= this.entriesMax) this.peers.delete(this.peers.keys().next().value as string);
    this.peers.set(address, peer);
    assert(this.peers.size <= this.entriesMax, 'PeerWireVersions over its bound');
  }
}
