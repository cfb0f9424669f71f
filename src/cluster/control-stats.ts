// Figures the control thread publishes for /metrics without any message passing: a small Float64Array over a
// SharedArrayBuffer that the control thread writes with plain stores and the acceptor reads when scraped (the
// partition workers' stats buffers work the same way). Each slot has a single writer, the control thread, and
// a scrape tolerates a figure a moment old, so no ordering is needed beyond the eventual visibility of plain
// stores. Counters only grow; gauges are overwritten.
//
// Layout (Float64 slots):
//   0 .. E-1            cluster events by kind, in `clusterEventKinds` order (counters)
//   E                   Raft leader changes seen by this node: a new leader known, or the leader lost (counter)
//   E+1                 Raft storage writes that failed (counter)
//   E+2                 1 while this node's Raft storage is failing and the node is out of the group, else 0
//   E+3 .. E+6          gossip members by state: alive, suspect, dead, left (gauges, this node included)
//   E+7                 gossip join attempts, one per target per attempt (counter)
//   E+8                 gossip join attempts that failed (counter)
// Types and the writer are importable from any thread; the control thread writes, the acceptor reads.

/** Every cluster event the control thread logs and counts. */
export const clusterEventKinds = [
  'member_joined',
  'member_alive',
  'member_suspect',
  'member_dead',
  'member_left',
  'member_updated',
  'leader_elected',
  'leader_lost',
  'became_leader',
  'became_follower',
  'broker_registered',
  'broker_fenced',
  'broker_unfenced',
  'learner_added',
  'voter_added',
  'learner_promoted',
  'member_removed',
  'raft_storage_failed',
  'raft_storage_recovered',
  'gossip_joined',
  'partition_leader_elected',
  'partition_offline',
  'unclean_leader_election',
  'broker_shutting_down',
] as const;
export type ClusterEventKind = (typeof clusterEventKinds)[number];

export const gossipMemberStates = ['alive', 'suspect', 'dead', 'left'] as const;
export type GossipMemberState = (typeof gossipMemberStates)[number];

const eventSlots = clusterEventKinds.length;
export const ControlStatSlot = {
  leaderChanges: eventSlots,
  raftStorageFailures: eventSlots + 1,
  raftStorageStalled: eventSlots + 2,
  gossipMembers: eventSlots + 3,
  joinAttempts: eventSlots + 3 + gossipMemberStates.length,
  joinFailures: eventSlots + 4 + gossipMemberStates.length,
} as const;

export const controlStatsLength = ControlStatSlot.joinFailures + 1;

export function createControlStats(): SharedArrayBuffer {
  return new SharedArrayBuffer(controlStatsLength * Float64Array.BYTES_PER_ELEMENT);
}

/** The control thread's writer. */
export class ControlStatsWriter {
  readonly values: Float64Array;

  constructor(buffer: SharedArrayBuffer) {
    this.values = new Float64Array(buffer);
  }

  event(kind: ClusterEventKind): void {
    this.values[clusterEventKinds.indexOf(kind)]! += 1;
  }

  add(slot: number, value = 1): void {
    this.values[slot]! += value;
  }

  set(slot: number, value: number): void {
    this.values[slot] = value;
  }

  gossipMembers(counts: Readonly<Record<GossipMemberState, number>>): void {
    gossipMemberStates.forEach((state, i) => {
      this.values[ControlStatSlot.gossipMembers + i] = counts[state];
    });
  }
}
