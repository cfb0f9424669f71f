// Replica placement for a new topic: which brokers hold each partition, the first one leading. Kafka's
// assignment (AdminUtils.assignReplicasToBrokers): the first replica of partition p goes to broker
// (startIndex + p) mod n, so leaders spread evenly; the followers sit at a shift from it that grows by one every
// n partitions, so the followers of one broker's leaders spread over the others too. With rack awareness the
// broker list is first interleaved by rack (a1, b1, c1, a2, b2, ...), and a follower is skipped while its rack,
// or the broker itself, already holds a replica of the partition and an unused rack or broker remains. When no
// broker has a rack, rack awareness places as if it were off (Kafka's behaviour).
// Pure: no I/O, no clock; the caller passes the start index (random in production, fixed in tests).
import type { CreateTopicRequest, TopicConfig } from '../../metadata/types.js';

export interface PlacementBroker {
  readonly id: string;
  /** Empty when unknown; with rack awareness every broker must have one, or none may. */
  readonly rack: string;
}

export type PlacementResult =
  | { readonly kind: 'ok'; readonly replicas: readonly (readonly string[])[] }
  | { readonly kind: 'error'; readonly reason: string };

/**
 * Replicas of `numPartitions` partitions, `replicationFactor` each, over `brokers` (any order: they are sorted
 * by id first so the result depends only on the set). `startIndex` picks where the first leader goes.
 */
export function assignReplicas(
  brokers: readonly PlacementBroker[],
  numPartitions: number,
  replicationFactor: number,
  rackAware: boolean,
  startIndex: number,
): PlacementResult {
  if (!(numPartitions >= 1)) return { kind: 'error', reason: 'num_partitions must be at least 1' };
  if (!(replicationFactor >= 1)) return { kind: 'error', reason: 'replication_factor must be at least 1' };
  if (replicationFactor > brokers.length) {
    return {
      kind: 'error',
      reason: `replication_factor ${replicationFactor} is larger than the ${brokers.length} available broker(s)`,
    };
  }
  const sorted = [...brokers].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  // As in Kafka: rack awareness over brokers none of which has a rack is plain placement (there is nothing to
  // spread over); only a mix of brokers with and without racks is refused, since no spread could be promised.
  const missing = sorted.filter((b) => b.rack === '').map((b) => b.id);
  const byRack = rackAware && missing.length < sorted.length;
  if (byRack && missing.length > 0) {
    return {
      kind: 'error',
      reason: `rack_awareness needs a rack on every broker or on none; ${missing.join(', ')} started without --rack`,
    };
  }
  const list = byRack ? interleaveByRack(sorted) : sorted;
  const n = list.length;
  const start = ((startIndex % n) + n) % n;
  const racks = new Set(list.map((b) => b.rack));
  const out: string[][] = [];
  let shift = start;
  for (let p = 0; p < numPartitions; p++) {
    if (p > 0 && p % n === 0) shift++;
    const first = (p + start) % n;
    const chosen = [list[first]!];
    if (!byRack) {
      for (let j = 0; j < replicationFactor - 1; j++) chosen.push(list[followerIndex(first, shift, j, n)]!);
    } else {
      const usedRacks = new Set([list[first]!.rack]);
      for (let k = 0; chosen.length < replicationFactor && k < n * n; k++) {
        const candidate = list[followerIndex(first, shift, k % (n - 1), n)]!;
        if (chosen.includes(candidate)) continue;
        // Prefer a rack not yet used; once every rack holds a replica, any unused broker will do.
        if (usedRacks.has(candidate.rack) && usedRacks.size < racks.size) continue;
        chosen.push(candidate);
        usedRacks.add(candidate.rack);
      }
    }
    out.push(chosen.map((b) => b.id));
  }
  return { kind: 'ok', replicas: out };
}

function followerIndex(first: number, shift: number, j: number, n: number): number {
  if (n === 1) return first;
  return (first + 1 + ((shift + j) % (n - 1))) % n;
}

function interleaveByRack(sorted: readonly PlacementBroker[]): PlacementBroker[] {
  const byRack = new Map<string, PlacementBroker[]>();
  for (const b of sorted) {
    const list = byRack.get(b.rack);
    if (list === undefined) byRack.set(b.rack, [b]);
    else list.push(b);
  }
  const rackNames = [...byRack.keys()].sort();
  const out: PlacementBroker[] = [];
  for (let i = 0; out.length < sorted.length; i++) {
    for (const rack of rackNames) {
      const b = byRack.get(rack)![i];
      if (b !== undefined) out.push(b);
    }
  }
  return out;
}

/** A registered, unfenced broker that is not shutting down, with what gossip says of it now. */
export interface CandidateBroker extends PlacementBroker {
  /** Alive or suspect in gossip (this node always). */
  readonly alive: boolean;
  /** Alive, not even suspect (this node always). */
  readonly healthy: boolean;
}

export type TopicPlacement =
  | {
      readonly kind: 'ok';
      readonly partitions: readonly {
        readonly replicas: readonly string[];
        readonly isr: readonly string[];
      }[];
    }
  | { readonly kind: 'error'; readonly reason: string };

/**
 * A new topic's replicas over the registry's placeable brokers. Healthy brokers are used when there are
 * enough, then alive ones (a suspect may be dead already), then every registered one: a broker gossip has
 * just declared dead is not fenced yet, and clients counted it when they chose a default replication factor,
 * as Kafka's controller counts every unfenced broker. A healthy replica leads; replicas on brokers that are
 * not alive start outside the ISR and join it once caught up.
 */
export function placeTopic(
  brokers: readonly CandidateBroker[],
  numPartitions: number,
  replicationFactor: number,
  rackAware: boolean,
  startIndex: number,
): TopicPlacement {
  const alive = brokers.filter((b) => b.alive);
  const healthy = alive.filter((b) => b.healthy);
  const pool =
    healthy.length >= replicationFactor
      ? healthy
      : alive.length >= replicationFactor || healthy.length === 0
        ? alive
        : brokers;
  const placed = assignReplicas(pool, numPartitions, replicationFactor, rackAware, startIndex);
  if (placed.kind === 'error') return placed;
  const healthyIds = new Set(healthy.map((b) => b.id));
  const aliveIds = new Set(alive.map((b) => b.id));
  return {
    kind: 'ok',
    partitions: placed.replicas.map((replicas) => {
      const first = replicas.findIndex((id) => healthyIds.has(id));
      const ordered = first <= 0 ? replicas : [...replicas.slice(first), ...replicas.slice(0, first)];
      return { replicas: ordered, isr: ordered.filter((id) => aliveIds.has(id)) };
    }),
  };
}

/**
 * The replication factor and config a create is placed with. A replication factor the client gave is kept (and
 * refused later if too large); a defaulted one, which the asking node capped at the brokers it saw, is lowered
 * to the brokers the metadata leader can place on now, and a defaulted min_insync_replicas follows it (2 with
 * three or more replicas, else 1), as if the asking node had seen what the leader sees. A min_insync_replicas
 * the client gave is kept as given, and refused if it no longer fits.
 */
export function settleDefaultReplication(
  request: CreateTopicRequest,
  placeable: number,
): { readonly replicationFactor: number; readonly config: TopicConfig } {
  if (!request.replicationFactorDefaulted || request.replicationFactor <= placeable || placeable < 1) {
    return { replicationFactor: request.replicationFactor, config: request.config };
  }
  const replicationFactor = placeable;
  if (!request.minInsyncDefaulted) return { replicationFactor, config: request.config };
  const minInsyncReplicas = replicationFactor >= 3 ? 2 : 1;
  return { replicationFactor, config: { ...request.config, minInsyncReplicas } };
}
