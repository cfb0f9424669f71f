// Plans of partition moves, as pure functions of the current placement: draining a broker before it is retired
// (decommission) and evening out replicas over the brokers (balance, e.g. after a broker joins). Sticky, as
// Kafka's reassignment tools and Cruise Control aim for: a plan changes one replica of a partition at a time and
// makes the fewest moves that reach its goal; the first replica (the preferred leader) is kept where possible.
// A balance also evens out preferred leaders by reordering replica lists. For a topic created rack-aware, no move
// lowers the number of racks a partition's replicas span while it spans fewer than it could (Kafka's rack-aware
// assignment keeps each partition over min(replication factor, racks) racks): a decommission picks a broker in
// a rack the partition lacks first, and refuses when only a move that narrows the spread is left; a balance
// skips such moves. A topic that is not rack-aware, or brokers without racks, are planned by counts alone.
// Pure: no I/O, no clock; the admin routes call it on the acceptor thread and submit the moves to the metadata
// leader, whose state machine checks each one again.

export interface PlacedPartition {
  readonly topic: string;
  readonly topicId: string;
  readonly partition: number;
  readonly replicas: readonly string[];
  /** Created with rack awareness: its moves keep its replicas spread over racks. */
  readonly rackAware?: boolean;
}

/** Each broker's rack ('' when it has none). Brokers not in the map have none. */
export type Racks = ReadonlyMap<string, string>;

/** Distinct racks among `replicas`; a broker without a rack counts as a rack of its own. */
function rackSpread(replicas: readonly string[], racks: Racks): number {
  return new Set(replicas.map((id) => racks.get(id) || `\u0000${id}`)).size;
}

/**
 * Whether replacing `from` with `to` in a partition's replicas keeps its rack spread where rack awareness asks
 * for one: never narrower than now, unless it already spans every rack it could.
 */
function keepsRackSpread(
  p: PlacedPartition,
  replicas: readonly string[],
  from: string,
  to: string,
  racks: Racks,
): boolean {
  if (p.rackAware !== true || racks.size === 0) return true;
  const after = replicas.map((id) => (id === from ? to : id));
  return rackSpread(after, racks) >= rackSpread(replicas, racks);
}

export interface PlannedMove {
  readonly topic: string;
  readonly topicId: string;
  readonly partition: number;
  readonly from: readonly string[];
  readonly to: readonly string[];
}

export type Plan =
  | { readonly kind: 'ok'; readonly moves: PlannedMove[] }
  | { readonly kind: 'error'; readonly reason: string };

function byCountThenId(counts: ReadonlyMap<string, number>) {
  return (a: string, b: string) => counts.get(a)! - counts.get(b)! || (a < b ? -1 : a > b ? 1 : 0);
}

function replicaCounts(
  partitions: readonly PlacedPartition[],
  brokers: readonly string[],
): Map<string, number> {
  const counts = new Map(brokers.map((id) => [id, 0]));
  for (const p of partitions) {
    for (const id of p.replicas) if (counts.has(id)) counts.set(id, counts.get(id)! + 1);
  }
  return counts;
}

/**
 * Every replica on `victim` goes to the broker among `brokers` (the live ones, victim excluded) that holds the
 * fewest replicas and none of that partition; refused when some partition has nowhere to go.
 */
export function planDecommission(
  partitions: readonly PlacedPartition[],
  brokers: readonly string[],
  victim: string,
  racks: Racks = new Map(),
): Plan {
  const others = brokers.filter((id) => id !== victim);
  const counts = replicaCounts(partitions, others);
  const moves: PlannedMove[] = [];
  for (const p of partitions) {
    if (!p.replicas.includes(victim)) continue;
    const free = others.filter((id) => !p.replicas.includes(id));
    const candidates = free
      .filter((id) => keepsRackSpread(p, p.replicas, victim, id, racks))
      .sort(byCountThenId(counts));
    const chosen = candidates[0];
    if (chosen === undefined) {
      return {
        kind: 'error',
        reason:
          free.length === 0
            ? `${p.topic}-${p.partition} cannot leave ${victim}: every other live broker already holds it (replicas ${p.replicas.join(', ')})`
            : `${p.topic}-${p.partition} is rack-aware and cannot leave ${victim} without spanning fewer racks: no live broker in a rack it lacks (replicas ${p.replicas.join(', ')})`,
      };
    }
    counts.set(chosen, counts.get(chosen)! + 1);
    moves.push({ ...p, from: p.replicas, to: p.replicas.map((id) => (id === victim ? chosen : id)) });
  }
  return { kind: 'ok', moves };
}

/**
 * Evens out the replicas over `brokers` until the fullest holds at most one more than the emptiest: each step
 * moves one replica from the fullest broker to the emptiest that lacks that partition, preferring a replica that
 * is not the partition's first (so leadership stays). Replicas on brokers not listed are left where they are.
 */
export function planBalance(
  partitions: readonly PlacedPartition[],
  brokers: readonly string[],
  racks: Racks = new Map(),
): Plan {
  if (brokers.length === 0) return { kind: 'error', reason: 'no live brokers' };
  const counts = replicaCounts(partitions, brokers);
  const current = new Map(partitions.map((p) => [`${p.topicId}:${p.partition}`, [...p.replicas]]));
  const moved = new Set<string>();
  for (let step = 0; step < partitions.length * 4; step++) {
    const order = [...brokers].sort(byCountThenId(counts));
    const emptiest = order[0]!;
    const fullest = order[order.length - 1]!;
    if (counts.get(fullest)! - counts.get(emptiest)! <= 1) break;
    let best: { key: string; index: number } | null = null;
    for (const p of partitions) {
      const key = `${p.topicId}:${p.partition}`;
      const replicas = current.get(key)!;
      const index = replicas.indexOf(fullest);
      if (index < 0 || replicas.includes(emptiest) || moved.has(key)) continue;
      if (!keepsRackSpread(p, replicas, fullest, emptiest, racks)) continue;
      if (best === null || (best.index === 0 && index > 0)) best = { key, index };
      if (index > 0) break;
    }
    if (best === null) break;
    const replicas = current.get(best.key)!;
    replicas[best.index] = emptiest;
    moved.add(best.key);
    counts.set(fullest, counts.get(fullest)! - 1);
    counts.set(emptiest, counts.get(emptiest)! + 1);
  }
  balanceLeaders(partitions, brokers, current);
  const moves: PlannedMove[] = [];
  for (const p of partitions) {
    const to = current.get(`${p.topicId}:${p.partition}`)!;
    if (to.some((id, i) => id !== p.replicas[i])) moves.push({ ...p, from: p.replicas, to });
  }
  return { kind: 'ok', moves };
}

/**
 * Evens out preferred leaders (first replicas) over `brokers` by reordering replica lists in `current` (no
 * replica moves): a partition led by the broker with the most leaderships gets the one with the fewest, if that
 * one is among its replicas, as its first replica. The controller then hands leadership over (it restores
 * preferred leaders by itself, or at once on POST /admin/preferred-leader-election).
 */
function balanceLeaders(
  partitions: readonly PlacedPartition[],
  brokers: readonly string[],
  current: Map<string, string[]>,
): void {
  const leads = new Map(brokers.map((id) => [id, 0]));
  for (const replicas of current.values()) {
    const first = replicas[0]!;
    if (leads.has(first)) leads.set(first, leads.get(first)! + 1);
  }
  for (let step = 0; step < partitions.length; step++) {
    const order = [...brokers].sort(byCountThenId(leads));
    let swapped = false;
    // The most loaded leader gives one leadership to the least loaded broker that holds a replica of it.
    for (let hi = order.length - 1; hi > 0 && !swapped; hi--) {
      const fullest = order[hi]!;
      for (let lo = 0; lo < hi && !swapped; lo++) {
        const emptiest = order[lo]!;
        if (leads.get(fullest)! - leads.get(emptiest)! <= 1) break;
        for (const replicas of current.values()) {
          const index = replicas.indexOf(emptiest);
          if (replicas[0] !== fullest || index <= 0) continue;
          replicas.splice(index, 1);
          replicas.unshift(emptiest);
          leads.set(fullest, leads.get(fullest)! - 1);
          leads.set(emptiest, leads.get(emptiest)! + 1);
          swapped = true;
          break;
        }
      }
    }
    if (!swapped) return;
  }
}
