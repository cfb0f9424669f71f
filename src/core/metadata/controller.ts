// The cluster controller as a pure decision: from the metadata, the gossip view of the members, the Raft
// configuration and the time, what to change. It runs on the metadata Raft leader, whose shell proposes each
// decision and asks again once it is applied; every decision is compare-and-set on the state it was made from
// (partition epochs, registry contents), so deciding twice from the same state, or from stale state, changes
// nothing twice.
//
// What it decides, in order:
// 1. The broker registry follows gossip: a live member is registered (or re-registered when its addresses,
//    rack, version or data ports changed), a registered broker that gossip holds dead, or has not heard of for
//    `absentFenceMs`, is fenced, and a fenced broker that is alive again is unfenced.
// 2. Partition leadership (Kafka's controller, with KIP-966's rule that the last ISR is kept):
//    - a partition whose leader is dead, fenced or shutting down gets a new leader from its ISR, preferring the
//      replica order, with its dead members dropped from the ISR; when no ISR member is alive it is marked
//      offline (leader '', ISR kept) unless the topic allows an unclean election, which picks any live replica
//      and leaves it alone in the ISR; a leader that is shutting down with nobody to take over keeps leading;
//    - a live leader's ISR loses members that are dead, fenced or shutting down (never below the leader);
//    - the preferred (first) replica gets leadership back once it has been in the ISR and live for
//      `preferredLeaderDelayMs` (at once after `electPreferredLeadersNow`, an operator's request).
// 3. Raft membership: live registered brokers join as learners, caught-up learners live for `learnerSettleMs`
//    are promoted while fewer than `raftVoters` vote (to an even count only with a second one ready), and a
//    voter gone for `voterReplaceAfterMs` gives its seat to such a learner.
//    At most one membership change at a time.
// 4. Partition moves (reassignments): a move whose new replicas have all joined the ISR is finished.
//
// "Live" means: registered, not fenced, not shutting down, and alive or suspect in gossip (this node always).
// Pure: no I/O, no clock (time is an input), no randomness. Owned by the control thread (or the simulation).

import type {
  BrokerRegistration,
  MetadataSnapshot,
  PartitionAssignment,
  TopicMetadata,
} from '../../metadata/types.js';
import type { ConfChange } from '../raft/types.js';
import type { FinishReassignment, IsrChange, LeaderElection, MetadataCommand } from './state-machine.js';

export type GossipState = 'alive' | 'suspect' | 'dead' | 'left';

/** A member as gossip sees it, with what it advertises. */
export interface MemberView {
  readonly id: string;
  readonly state: GossipState;
  readonly httpHost: string;
  readonly httpPort: number;
  readonly clusterHost: string;
  readonly clusterPort: number;
  readonly rack: string;
  readonly version: string;
  readonly dataPorts: readonly number[];
  /** The port of the member's Kafka listener; 0 when it has none. */
  readonly kafkaPort: number;
}

export interface RaftView {
  readonly voters: readonly string[];
  readonly learners: readonly string[];
  readonly commit: number;
  /** The leader's view of each member's replicated log (Raft's match index). */
  readonly match: ReadonlyMap<string, number>;
  /** A membership change is proposed and not yet applied. */
  readonly confChangePending: boolean;
}

export interface ControllerInput {
  readonly nowMs: number;
  readonly metadata: MetadataSnapshot;
  readonly members: readonly MemberView[];
  readonly raft: RaftView;
}

export interface ControllerConfig {
  /** This node: the controller runs on the Raft leader. */
  readonly self: string;
  readonly raftVoters: number;
  readonly voterReplaceAfterMs: number;
  /** A registered broker that gossip has not heard of for this long is fenced. */
  readonly absentFenceMs: number;
  /** The preferred replica is made leader again after being in the ISR and live this long. */
  readonly preferredLeaderDelayMs: number;
  /**
   * A learner votes only after it has been a live learner this long (and is caught up): a broker killed right
   * after it joined must not be the second of two voters (absent: 0).
   */
  readonly learnerSettleMs?: number;
  /** Bounds one elect_leaders or alter_isr command, so a Raft entry stays small. */
  readonly partitionChangesPerCommandMax: number;
  /** Test-only: elect a leader from outside the ISR, so the simulation can show it catches that. */
  readonly plantedBug?: 'elect_outside_isr';
}

export const DEFAULT_CONTROLLER_TIMINGS = {
  absentFenceMs: 10_000,
  preferredLeaderDelayMs: 5_000,
  learnerSettleMs: 2_000,
  partitionChangesPerCommandMax: 2_000,
} as const;

export type ControllerAction =
  | { readonly kind: 'propose'; readonly command: MetadataCommand }
  | { readonly kind: 'conf_change'; readonly change: ConfChange };

export class Controller {
  /** When each member was first seen gone (dead, left or absent) by this controller. */
  private readonly goneSinceMs = new Map<string, number>();
  /** When each learner was first seen live as a learner (promotion waits `learnerSettleMs` from then). */
  private readonly learnerSinceMs = new Map<string, number>();
  /** When each partition's preferred replica was first seen able to take leadership back. */
  private readonly preferredReadySinceMs = new Map<string, number>();

  /** Set by an operator's preferred-leader election: the next decision skips the delay. */
  private preferredNow = false;

  constructor(private readonly config: ControllerConfig) {}

  /** The next decision moves every partition's leadership to its preferred replica where it can, at once. */
  electPreferredLeadersNow(): void {
    this.preferredNow = true;
  }

  decide(input: ControllerInput): ControllerAction[] {
    const actions: ControllerAction[] = [];
    const gossip = new Map(input.members.map((m) => [m.id, m]));
    this.trackGone(input, gossip);
    for (const command of this.registryChanges(input, gossip)) actions.push({ kind: 'propose', command });
    const live = (id: string): boolean => this.isLive(id, input.metadata.brokers, gossip);
    const reachable = (id: string): boolean => this.isReachable(id, input.metadata.brokers, gossip);
    const { elections, isrChanges } = this.partitionChanges(input, live, reachable);
    const max = this.config.partitionChangesPerCommandMax;
    for (let i = 0; i < elections.length; i += max) {
      actions.push({
        kind: 'propose',
        command: { kind: 'elect_leaders', elections: elections.slice(i, i + max) },
      });
    }
    for (let i = 0; i < isrChanges.length; i += max) {
      actions.push({
        kind: 'propose',
        command: { kind: 'alter_isr', changes: isrChanges.slice(i, i + max) },
      });
    }
    const finishes = this.finishedMoves(input, live);
    for (let i = 0; i < finishes.length; i += max) {
      actions.push({
        kind: 'propose',
        command: { kind: 'finish_reassignments', changes: finishes.slice(i, i + max) },
      });
    }
    const change = this.membershipChange(input, live);
    if (change !== null) actions.push({ kind: 'conf_change', change });
    this.preferredNow = false;
    return actions;
  }

  /**
   * Moves whose target replicas have all joined the ISR: finished (the replicas become the target). A leader
   * outside the target hands over to the target's first replica, which must be live.
   */
  private finishedMoves(input: ControllerInput, live: (id: string) => boolean): FinishReassignment[] {
    const out: FinishReassignment[] = [];
    for (const move of input.metadata.reassignments ?? []) {
      const t = input.metadata.topics.get(move.topic);
      const p = t !== undefined && t.topicId === move.topicId ? t.partitions[move.partition] : undefined;
      if (p === undefined || p.leader === '' || !live(p.leader)) continue;
      if (!move.target.every((id) => p.isr.includes(id))) continue;
      if (!move.target.includes(p.leader) && !live(move.target[0]!)) continue;
      out.push({
        topicId: move.topicId,
        topic: move.topic,
        partition: move.partition,
        expectedPartitionEpoch: p.partitionEpoch,
      });
    }
    return out;
  }

  // ------------------------------------------------------------------------------------------------------

  private trackGone(input: ControllerInput, gossip: ReadonlyMap<string, MemberView>): void {
    const ids = new Set([...input.metadata.brokers.keys(), ...gossip.keys(), ...input.raft.voters]);
    for (const id of ids) {
      const m = gossip.get(id);
      const here = id === this.config.self || m?.state === 'alive' || m?.state === 'suspect';
      if (here) this.goneSinceMs.delete(id);
      else if (!this.goneSinceMs.has(id)) this.goneSinceMs.set(id, input.nowMs);
    }
  }

  /** Alive in gossip (or this node), whatever the registry says. */
  private isReachable(
    id: string,
    _brokers: ReadonlyMap<string, BrokerRegistration>,
    gossip: ReadonlyMap<string, MemberView>,
  ): boolean {
    if (id === this.config.self) return true;
    const state = gossip.get(id)?.state;
    return state === 'alive' || state === 'suspect';
  }

  private isLive(
    id: string,
    brokers: ReadonlyMap<string, BrokerRegistration>,
    gossip: ReadonlyMap<string, MemberView>,
  ): boolean {
    const b = brokers.get(id);
    if (b === undefined || b.fenced || b.shuttingDown) return false;
    return this.isReachable(id, brokers, gossip);
  }

  private registryChanges(
    input: ControllerInput,
    gossip: ReadonlyMap<string, MemberView>,
  ): MetadataCommand[] {
    const out: MetadataCommand[] = [];
    const registry = input.metadata.brokers;
    for (const m of gossip.values()) {
      if (m.httpPort === 0) continue;
      const known = registry.get(m.id);
      const alive = m.id === this.config.self || m.state === 'alive' || m.state === 'suspect';
      if (alive && (known === undefined || !sameAdvertised(known, m))) {
        out.push({
          kind: 'register_broker',
          broker: {
            id: m.id,
            httpHost: m.httpHost,
            httpPort: m.httpPort,
            clusterHost: m.clusterHost,
            clusterPort: m.clusterPort,
            rack: m.rack,
            version: m.version,
            dataPorts: [...m.dataPorts],
            kafkaPort: m.kafkaPort,
            fenced: false,
            shuttingDown: known?.shuttingDown ?? false,
            registeredAtMs: known?.registeredAtMs ?? input.nowMs,
          },
        });
      } else if (known !== undefined && known.fenced === alive) {
        out.push({ kind: 'fence_broker', brokerId: m.id, fenced: !alive });
      }
    }
    for (const b of registry.values()) {
      if (gossip.has(b.id) || b.fenced || b.id === this.config.self) continue;
      const since = this.goneSinceMs.get(b.id);
      if (since !== undefined && input.nowMs - since >= this.config.absentFenceMs) {
        out.push({ kind: 'fence_broker', brokerId: b.id, fenced: true });
      }
    }
    return out;
  }

  private partitionChanges(
    input: ControllerInput,
    live: (id: string) => boolean,
    reachable: (id: string) => boolean,
  ): { elections: LeaderElection[]; isrChanges: IsrChange[] } {
    const elections: LeaderElection[] = [];
    const isrChanges: IsrChange[] = [];
    const seenPreferred = new Set<string>();
    for (const t of input.metadata.topics.values()) {
      for (const p of t.partitions) {
        const election = this.electionFor(t, p, live, reachable);
        if (election !== null) {
          elections.push(election);
          continue;
        }
        if (p.leader === '') continue;
        const kept = p.isr.filter((id) => id === p.leader || live(id));
        if (kept.length < p.isr.length) {
          isrChanges.push({
            topicId: t.topicId,
            topic: t.name,
            partition: p.partition,
            leader: p.leader,
            leaderEpoch: p.leaderEpoch,
            partitionEpoch: p.partitionEpoch,
            isr: kept,
          });
          continue;
        }
        const preferred = this.preferredElection(t, p, live, input.nowMs, seenPreferred);
        if (preferred !== null) elections.push(preferred);
      }
    }
    for (const key of this.preferredReadySinceMs.keys()) {
      if (!seenPreferred.has(key)) this.preferredReadySinceMs.delete(key);
    }
    return { elections, isrChanges };
  }

  /** A new leader (or offline) for a partition whose leader cannot lead; null when it can. */
  private electionFor(
    t: TopicMetadata,
    p: PartitionAssignment,
    live: (id: string) => boolean,
    reachable: (id: string) => boolean,
  ): LeaderElection | null {
    if (p.leader !== '' && live(p.leader)) return null;
    const base = {
      topicId: t.topicId,
      topic: t.name,
      partition: p.partition,
      expectedPartitionEpoch: p.partitionEpoch,
    };
    const pool = this.config.plantedBug === 'elect_outside_isr' ? p.replicas : p.isr;
    const candidate = p.replicas.find((id) => id !== p.leader && pool.includes(id) && live(id));
    if (candidate !== undefined) {
      const isr = p.isr.filter((id) => live(id) || id === candidate);
      return {
        ...base,
        leader: candidate,
        isr: isr.includes(candidate) ? isr : [...isr, candidate],
        unclean: false,
      };
    }
    // A leader that is shutting down but still up keeps leading when nobody can take over.
    if (p.leader !== '' && reachable(p.leader)) return null;
    if (t.config.uncleanLeaderElection) {
      const any = p.replicas.find((id) => live(id));
      if (any !== undefined) return { ...base, leader: any, isr: [any], unclean: true };
    }
    return p.leader === '' ? null : { ...base, leader: '', isr: [...p.isr], unclean: false };
  }

  private preferredElection(
    t: TopicMetadata,
    p: PartitionAssignment,
    live: (id: string) => boolean,
    nowMs: number,
    seen: Set<string>,
  ): LeaderElection | null {
    const preferred = p.replicas[0]!;
    if (p.leader === preferred || !p.isr.includes(preferred) || !live(preferred)) return null;
    const key = `${t.topicId}/${p.partition}`;
    seen.add(key);
    const since = this.preferredReadySinceMs.get(key);
    if (since === undefined && !this.preferredNow) {
      this.preferredReadySinceMs.set(key, nowMs);
      return null;
    }
    if (!this.preferredNow && nowMs - (since ?? nowMs) < this.config.preferredLeaderDelayMs) return null;
    this.preferredReadySinceMs.delete(key);
    return {
      topicId: t.topicId,
      topic: t.name,
      partition: p.partition,
      expectedPartitionEpoch: p.partitionEpoch,
      leader: preferred,
      isr: [...p.isr],
      unclean: false,
    };
  }

  private membershipChange(input: ControllerInput, live: (id: string) => boolean): ConfChange | null {
    const raft = input.raft;
    for (const id of this.learnerSinceMs.keys()) {
      if (!raft.learners.includes(id) || !live(id)) this.learnerSinceMs.delete(id);
    }
    for (const id of raft.learners) {
      if (live(id) && !this.learnerSinceMs.has(id)) this.learnerSinceMs.set(id, input.nowMs);
    }
    if (raft.confChangePending) return null;
    const members = new Set([...raft.voters, ...raft.learners]);
    for (const b of input.metadata.brokers.values()) {
      if (!members.has(b.id) && live(b.id)) return { op: 'add_learner', nodeId: b.id };
    }
    const caughtUp = (id: string) => (raft.match.get(id) ?? 0) >= raft.commit;
    const settleMs = this.config.learnerSettleMs ?? 0;
    const settled = (id: string) => input.nowMs - (this.learnerSinceMs.get(id) ?? input.nowMs) >= settleMs;
    const candidates = raft.learners.filter((id) => live(id) && caughtUp(id) && settled(id));
    // A promotion to an even number of voters waits for a second caught-up learner, promoted right after it:
    // two voters tolerate no failure and have two members that can stall the group (a learner promoted alone,
    // then killed, left a lone leader unable to commit anything, the next promotion included, until it came
    // back), so that window lasts one commit, not until another learner catches up.
    const evenAfter = (raft.voters.length + 1) % 2 === 0 && raft.voters.length + 1 < this.config.raftVoters;
    if (raft.voters.length < this.config.raftVoters && candidates.length >= (evenAfter ? 2 : 1)) {
      return { op: 'promote', nodeId: candidates[0]! };
    }
    if (candidates.length === 0) return null;
    for (const id of raft.voters) {
      if (id === this.config.self) continue;
      const since = this.goneSinceMs.get(id);
      if (since !== undefined && input.nowMs - since >= this.config.voterReplaceAfterMs) {
        return { op: 'remove', nodeId: id };
      }
    }
    return null;
  }
}

function sameAdvertised(b: BrokerRegistration, m: MemberView): boolean {
  return (
    b.httpHost === m.httpHost &&
    b.httpPort === m.httpPort &&
    b.clusterHost === m.clusterHost &&
    b.clusterPort === m.clusterPort &&
    b.rack === m.rack &&
    b.version === m.version &&
    b.kafkaPort === m.kafkaPort &&
    b.dataPorts.length === m.dataPorts.length &&
    b.dataPorts.every((port, i) => port === m.dataPorts[i])
  );
}
