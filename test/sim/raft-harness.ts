// Deterministic simulation of a Raft cluster: a seeded network (loss, delay and so reordering, duplication,
// partitions of any shape, one-way links), a simulated clock in milliseconds with a tick every `tickMs`,
// crashes and restarts with a simulated disk (a MemoryStorage per node holding only what a Ready was persisted
// into; a crash may fall between taking a Ready and persisting it), and a tiny state machine (a running hash
// of applied proposals, with snapshots of it). After every step (one delivery or one tick of one node,
// including the Ready it produced) it checks Election Safety, Log Matching, Leader Completeness, State Machine
// Safety and monotonic commit and applied indexes; a violation throws a SimFailure that carries the seed and
// a trace tail. Storage faults (a write or fsync that fails, as on a full disk) are injected at random steps
// of a Ready's persistence, before or after the step took effect (a failed fsync may or may not have made the
// bytes durable), or for a whole stretch of time on chosen nodes; the shell then does what RaftHost does: it
// keeps the Ready, drops every message and tick, refuses proposals, and retries the persistence from the
// failed step after a random delay. Single-threaded; no timers, no promises: the whole run is a plain loop.

import { AssertionError } from '../../src/core/assert.js';
import {
  bootstrapEntries,
  defaultRaftLimits,
  type RaftConfig,
  RaftNode,
  type Ready,
} from '../../src/core/raft/raft.js';
import { MemoryStorage } from '../../src/core/raft/storage.js';
import type { ConfChange, ConfState, Entry, Message, NodeId, Snapshot } from '../../src/core/raft/types.js';
import { SimRandom } from './raft-random.js';

export interface NetworkOptions {
  lossRate: number;
  duplicateRate: number;
  /** Each message is delayed uniformly in [delayMinMs, delayMaxMs]; a spread reorders messages. */
  delayMinMs: number;
  delayMaxMs: number;
}

export const reliableNetwork: NetworkOptions = {
  lossRate: 0,
  duplicateRate: 0,
  delayMinMs: 1,
  delayMaxMs: 3,
};
export const unreliableNetwork: NetworkOptions = {
  lossRate: 0.1,
  duplicateRate: 0.05,
  delayMinMs: 1,
  delayMaxMs: 25,
};

export interface SimOptions {
  voters: number;
  /** Extra nodes that exist (can be started) but are not members at bootstrap. */
  spares?: number;
  network?: NetworkOptions;
  tickMs?: number;
  /** Take a state-machine snapshot and compact once this many entries are applied past the last one. */
  compactEveryEntries?: number;
  /**
   * Chance that a node crashes between taking a Ready that changes its hard state or log and persisting it:
   * the moment where an answer sent too early would outlive what it claims.
   */
  crashBeforePersistRate?: number;
  /** When above 0, each Ready is persisted 1..persistDelayMaxMs ms after it is taken, not at once. */
  persistDelayMaxMs?: number;
  /** Chance that each persistence step with something to write fails (then the node stalls and retries). */
  storageFaultRate?: number;
  /** A stalled node retries its persistence 1..storageRetryMaxMs ms after a failure. */
  storageRetryMaxMs?: number;
  raft?: Partial<Omit<RaftConfig, 'id' | 'storage' | 'random'>>;
  trace?: boolean;
}

export class SimFailure extends Error {
  override readonly name = 'SimFailure';
}

/** The state machine: a running hash over applied proposal ids, plus how many were applied. */
interface Machine {
  hash: number;
  count: number;
  applied: number;
}

interface SimNode {
  readonly id: NodeId;
  readonly disk: MemoryStorage;
  readonly random: SimRandom;
  raft: RaftNode | undefined;
  machine: Machine;
  /** Highest commit seen in this incarnation and on disk. */
  commitSeen: number;
  crashBeforePersist: boolean;
  /** A Ready handed to the simulated disk whose write completes at `atMs` (asynchronous persistence). */
  pending: { rd: Ready; atMs: number } | undefined;
  /** A Ready whose persistence failed at `step`, retried at `retryAtMs`: the node is out of the group. */
  stalled: { rd: Ready; step: number; retryAtMs: number } | undefined;
  /** The disk refuses every write until this is cleared (a full disk). */
  diskFull: boolean;
  lastCompactedAt: number;
  incarnation: number;
}

interface TraceEvent {
  t: number;
  node: NodeId;
  what: string;
  msg: Message | undefined;
}

const traceTailLength = 40;
const traceRingSize = 64;

function u32Data(id: number): Uint8Array {
  const bytes = new Uint8Array(4);
  bytes[0] = id >>> 24;
  bytes[1] = (id >>> 16) & 0xff;
  bytes[2] = (id >>> 8) & 0xff;
  bytes[3] = id & 0xff;
  return bytes;
}

function dataId(data: Uint8Array): number {
  return ((data[0]! << 24) | (data[1]! << 16) | (data[2]! << 8) | data[3]!) >>> 0;
}

function mix(hash: number, id: number): number {
  return Math.imul(hash ^ id, 16777619) >>> 0;
}

function encodeMachine(m: Machine): Uint8Array {
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  view.setUint32(0, m.hash);
  view.setUint32(4, m.count);
  return out;
}

function decodeMachine(data: Uint8Array, applied: number): Machine {
  if (data.length === 0) return { hash: 2166136261, count: 0, applied };
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return { hash: view.getUint32(0), count: view.getUint32(4), applied };
}

export function describeMessage(m: Message): string {
  switch (m.type) {
    case 'vote':
      return `${m.preVote ? 'prevote' : 'vote'} t${m.term} last=${m.lastLogIndex}/t${m.lastLogTerm}${m.transfer ? ' transfer' : ''}`;
    case 'vote_response':
      return `${m.preVote ? 'prevote' : 'vote'}_resp t${m.term} ${m.granted ? 'granted' : 'rejected'}`;
    case 'append':
      return `app t${m.term} prev=${m.prevLogIndex}/t${m.prevLogTerm} n=${m.entries.length} commit=${m.commit}`;
    case 'append_response':
      return `app_resp t${m.term} ${m.success ? 'ok' : 'reject'} idx=${m.index} hint=${m.hintIndex}/t${m.hintTerm}`;
    case 'heartbeat':
      return `hb t${m.term} commit=${m.commit}`;
    case 'heartbeat_response':
      return `hb_resp t${m.term}`;
    case 'snapshot':
      return `snap t${m.term} idx=${m.snapshot.index}/t${m.snapshot.term}`;
    case 'timeout_now':
      return `timeout_now t${m.term}`;
  }
}

export class Sim {
  readonly rng: SimRandom;
  readonly ids: NodeId[];
  network: NetworkOptions;
  readonly tickMs: number;
  nowMs = 0;
  steps = 0;
  messagesSent = 0;
  /** Append rejections sent: what fast backtracking keeps small. */
  appendRejects = 0;
  lastProposeResult: ReturnType<RaftNode['propose']> | undefined = undefined;
  readonly messagesByType = new Map<string, number>();

  /** Nodes started at least once (members or joiners), which a final heal restarts. */
  readonly startedOnce = new Set<NodeId>();
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly raftOptions: Omit<RaftConfig, 'id' | 'storage' | 'random' | 'applied'>;
  private readonly compactEveryEntries: number;
  crashBeforePersistRate: number;
  private readonly persistDelayMaxMs: number;
  storageFaultRate: number;
  private readonly storageRetryMaxMs: number;
  /** Persistence steps that failed, and Readies that were finished after a stall. */
  storageFaults = 0;
  stallsRecovered = 0;
  // Timing wheel of in-flight messages: slot (deliverAt % size) holds messages due at that time.
  private readonly wheel: Message[][];
  private readonly blocked = new Set<string>();
  private readonly trace: boolean;
  private readonly ring: TraceEvent[] = [];
  private ringNext = 0;

  // Invariant bookkeeping.
  private readonly leaderByTerm = new Map<number, NodeId>();
  /** Log Matching: (index, term) -> the entry's data object and the term before it. */
  private readonly logRecord = new Map<number, { data: Uint8Array; prevTerm: number }>();
  /** State Machine Safety: what was applied at each index, and the machine hash right after it. */
  private readonly appliedTerm: number[] = [0];
  private readonly appliedData: (Uint8Array | undefined)[] = [undefined];
  private readonly machineHashAt: number[] = [2166136261];
  private nextProposalId = 1;
  /** Proposal id -> index it was accepted at (for liveness checks). */
  readonly accepted = new Map<number, number>();

  constructor(
    readonly scenario: string,
    readonly seed: number,
    options: SimOptions,
  ) {
    this.rng = new SimRandom(seed);
    this.network = options.network ?? reliableNetwork;
    this.tickMs = options.tickMs ?? 10;
    this.trace = options.trace ?? false;
    this.compactEveryEntries = options.compactEveryEntries ?? 0;
    this.crashBeforePersistRate = options.crashBeforePersistRate ?? 0;
    this.persistDelayMaxMs = options.persistDelayMaxMs ?? 0;
    this.storageFaultRate = options.storageFaultRate ?? 0;
    this.storageRetryMaxMs = options.storageRetryMaxMs ?? 50;
    this.raftOptions = { ...defaultRaftLimits, ...options.raft };
    const wheelSize = 64;
    this.wheel = Array.from({ length: wheelSize }, () => []);
    const total = options.voters + (options.spares ?? 0);
    this.ids = Array.from({ length: total }, (_, i) => `n${i + 1}`);
    const voters = this.ids.slice(0, options.voters);
    // One set of bootstrap entries shared by every initial member, so identical entries are the same objects.
    const boot = bootstrapEntries(voters);
    for (const id of this.ids) {
      const disk = new MemoryStorage();
      if (voters.includes(id)) {
        disk.append(boot);
        disk.setHardState({ term: 1, vote: '', commit: boot.length });
      }
      const node: SimNode = {
        id,
        disk,
        random: this.rng.fork(),
        raft: undefined,
        machine: decodeMachine(new Uint8Array(0), 0),
        commitSeen: disk.hardState().commit,
        crashBeforePersist: false,
        pending: undefined,
        stalled: undefined,
        diskFull: false,
        lastCompactedAt: 0,
        incarnation: 0,
      };
      this.nodes.set(id, node);
      if (voters.includes(id)) this.start(id);
    }
    for (let i = 1; i <= boot.length; i++) {
      const e = boot[i - 1]!;
      this.logRecord.set(this.key(e.index, e.term), { data: e.data, prevTerm: i === 1 ? 0 : 1 });
    }
  }

  // ---- Cluster control ----

  /** Starts (or restarts) a node from what its disk holds. */
  start(id: NodeId): void {
    const n = this.node(id);
    if (n.raft !== undefined) return;
    this.startedOnce.add(id);
    const snap = n.disk.snapshot();
    n.machine = decodeMachine(snap.data, snap.index);
    if (snap.index > 0) this.checkSnapshotMachine(n, snap);
    n.incarnation++;
    n.crashBeforePersist = false;
    n.lastCompactedAt = snap.index;
    const random = n.random;
    n.raft = new RaftNode({ ...this.raftOptions, id, storage: n.disk, random: () => random.next() });
    this.note(id, `start #${n.incarnation} term=${n.disk.hardState().term} last=${n.disk.lastIndex()}`);
    this.drive(n);
  }

  /** Stops a node at once; with `beforePersist`, its next Ready is taken and sent but never persisted. */
  crash(id: NodeId, beforePersist = false): void {
    const n = this.node(id);
    if (n.raft === undefined) return;
    if (beforePersist) {
      n.crashBeforePersist = true;
      this.note(id, 'crash armed (before persist)');
      return;
    }
    n.raft = undefined;
    n.pending = undefined;
    n.stalled = undefined;
    this.note(id, 'crash');
  }

  /** Makes every write of `id`'s disk fail (a full disk) until called again with false. */
  setDiskFull(id: NodeId, full: boolean): void {
    this.node(id).diskFull = full;
    this.note(id, full ? 'disk full' : 'disk has space again');
  }

  /** Ends random storage faults and frees every full disk. */
  stopStorageFaults(): void {
    this.storageFaultRate = 0;
    for (const n of this.nodes.values()) n.diskFull = false;
    this.note('-', 'stop storage faults');
  }

  isStalled(id: NodeId): boolean {
    return this.node(id).stalled !== undefined;
  }

  /** Ends fault injection by crashes: armed crashes are cancelled and no random ones follow. */
  stopCrashing(): void {
    this.crashBeforePersistRate = 0;
    for (const n of this.nodes.values()) n.crashBeforePersist = false;
    this.note('-', 'stop crashing');
  }

  isUp(id: NodeId): boolean {
    return this.node(id).raft !== undefined;
  }

  raft(id: NodeId): RaftNode | undefined {
    return this.node(id).raft;
  }

  /** Blocks every link between different groups (nodes in no group are cut off from all). */
  partition(groups: readonly (readonly NodeId[])[]): void {
    this.blocked.clear();
    const groupOf = new Map<NodeId, number>();
    groups.forEach((g, i) => {
      for (const id of g) groupOf.set(id, i);
    });
    // A node named in no group is alone.
    this.ids.forEach((id, i) => {
      if (!groupOf.has(id)) groupOf.set(id, groups.length + i);
    });
    for (const a of this.ids) {
      for (const b of this.ids) {
        if (groupOf.get(a) !== groupOf.get(b)) this.blocked.add(`${a}>${b}`);
      }
    }
    this.note('-', `partition ${groups.map((g) => g.join(',')).join(' | ')}`);
  }

  /** Cuts `id` off from everyone, keeping other cuts. */
  isolate(id: NodeId): void {
    for (const other of this.ids) {
      if (other === id) continue;
      this.blocked.add(`${id}>${other}`);
      this.blocked.add(`${other}>${id}`);
    }
    this.note(id, 'isolate');
  }

  /** Reconnects `id` with everyone, keeping other cuts. */
  reconnect(id: NodeId): void {
    for (const other of this.ids) {
      this.blocked.delete(`${id}>${other}`);
      this.blocked.delete(`${other}>${id}`);
    }
    this.note(id, 'reconnect');
  }

  /** Drops messages from `from` to `to` only. */
  blockOneWay(from: NodeId, to: NodeId): void {
    this.blocked.add(`${from}>${to}`);
    this.note(from, `block one way to ${to}`);
  }

  heal(): void {
    this.blocked.clear();
    this.note('-', 'heal');
  }

  // ---- Running ----

  /** Advances simulated time by `ms`, delivering messages and ticking nodes. */
  runFor(ms: number): void {
    const end = this.nowMs + ms;
    while (this.nowMs < end) this.stepMs();
  }

  /** Runs until `cond` holds, checking after every simulated millisecond; fails after `deadlineMs`. */
  runUntil(what: string, deadlineMs: number, cond: () => boolean): void {
    const end = this.nowMs + deadlineMs;
    while (!cond()) {
      if (this.nowMs >= end) this.fail(`liveness: ${what} did not happen within ${deadlineMs} ms`);
      this.stepMs();
    }
  }

  private stepMs(): void {
    this.nowMs++;
    for (const id of this.ids) {
      const n = this.nodes.get(id)!;
      const stall = n.stalled;
      if (stall === undefined || stall.retryAtMs > this.nowMs) continue;
      n.stalled = undefined;
      if (this.finishReady(n, stall.rd, stall.step)) {
        this.stallsRecovered++;
        this.note(id, 'storage works again');
        this.drive(n);
      }
    }
    if (this.persistDelayMaxMs > 0) {
      for (const id of this.ids) {
        const n = this.nodes.get(id)!;
        if (n.pending === undefined || n.pending.atMs > this.nowMs) continue;
        const { rd } = n.pending;
        n.pending = undefined;
        if (this.finishReady(n, rd)) this.drive(n);
      }
    }
    const slot = this.nowMs % this.wheel.length;
    const msgs = this.wheel[slot]!;
    if (msgs.length > 0) {
      // Every delay is shorter than the wheel, so everything in this slot is due now, in send order.
      this.wheel[slot] = [];
      for (const m of msgs) this.deliver(m);
    }
    if (this.nowMs % this.tickMs === 0) {
      for (const id of this.ids) {
        const n = this.nodes.get(id)!;
        // A stalled node takes no tick: an election it started could not be persisted.
        if (n.raft === undefined || n.stalled !== undefined) continue;
        n.raft.tick();
        this.steps++;
        this.drive(n);
      }
    }
  }

  private deliver(m: Message): void {
    const n = this.nodes.get(m.to);
    if (n?.raft === undefined) return;
    if (this.blocked.has(`${m.from}>${m.to}`)) return;
    // A node whose storage fails steps nothing: as if its network were cut.
    if (n.stalled !== undefined) return;
    if (this.trace) this.note(m.to, 'recv', m);
    else this.record(m.to, 'recv', m);
    n.raft.step(m);
    this.steps++;
    this.drive(n);
  }

  private send(m: Message): void {
    this.messagesSent++;
    this.messagesByType.set(m.type, (this.messagesByType.get(m.type) ?? 0) + 1);
    if (m.type === 'append_response' && !m.success) this.appendRejects++;
    const net = this.network;
    if (this.blocked.has(`${m.from}>${m.to}`) || this.rng.chance(net.lossRate)) return;
    const copies = this.rng.chance(net.duplicateRate) ? 2 : 1;
    for (let c = 0; c < copies; c++) {
      const delay = net.delayMinMs + this.rng.int(net.delayMaxMs - net.delayMinMs + 1);
      if (delay >= this.wheel.length) throw new Error('delay beyond the timing wheel');
      const at = this.nowMs + Math.max(1, delay);
      const slot = at % this.wheel.length;
      this.wheel[slot]!.push(m);
    }
  }

  /** Handles every Ready of `n`, as a shell would, checking invariants along the way. */
  private drive(n: SimNode): void {
    for (;;) {
      const raft = n.raft;
      if (raft === undefined || n.pending !== undefined || n.stalled !== undefined || !raft.hasReady())
        return;
      const rd = raft.ready();
      this.checkLeader(n, rd);
      this.checkCommitDurable(n, rd);
      // Checked as handed out, while the node's log still holds the entry before them.
      if (rd.entries.length > 0) this.checkEntries(n, rd.entries);
      for (const m of rd.messages) this.send(m);
      if (this.persistDelayMaxMs > 0) {
        // Asynchronous persistence, as a shell with a background fsync does: the node keeps stepping
        // messages and ticks until the write completes and `advance` is called.
        n.pending = { rd, atMs: this.nowMs + 1 + this.rng.int(this.persistDelayMaxMs) };
        return;
      }
      if (!this.finishReady(n, rd)) return;
    }
  }

  /**
   * Persists (from `fromStep` on), sends, applies and advances one Ready; false if the node crashed instead
   * or a persistence step failed (the node is then stalled until a retry gets the rest through).
   */
  private finishReady(n: SimNode, rd: Ready, fromStep = 0): boolean {
    const raft = n.raft!;
    const risky = rd.hardState !== undefined || rd.entries.length > 0;
    if (n.crashBeforePersist || (risky && this.rng.chance(this.crashBeforePersistRate))) {
      n.raft = undefined;
      n.pending = undefined;
      this.note(n.id, `crash before persist (lost ${rd.entries.length} entries)`);
      return false;
    }
    for (let step = fromStep; step < persistStepCount; step++) {
      if (!hasPersistWork(rd, step)) continue;
      const fails = n.diskFull || this.rng.chance(this.storageFaultRate);
      if (!fails) {
        this.persistStep(n, rd, step);
        continue;
      }
      // A failed write or fsync may still have reached the disk: then the retry repeats an effect already
      // durable, which every step must tolerate.
      const tookEffect = !n.diskFull && this.rng.chance(0.5);
      if (tookEffect) this.persistStep(n, rd, step);
      this.storageFaults++;
      n.stalled = { rd, step, retryAtMs: this.nowMs + 1 + this.rng.int(this.storageRetryMaxMs) };
      this.note(n.id, `storage fault at step ${step}${tookEffect ? ' (after it took effect)' : ''}`);
      return false;
    }
    for (const m of rd.messagesAfterPersist) this.send(m);
    this.apply(n, rd.committedEntries);
    raft.advance(rd);
    this.maybeCompact(n);
    return true;
  }

  /** One step of a Ready's persistence, in RaftHost's order: snapshot, compaction, entries, hard state. */
  private persistStep(n: SimNode, rd: Ready, step: number): void {
    switch (step) {
      case 0: {
        const s = rd.snapshot!;
        this.checkSnapshotRecord(n, s);
        n.disk.applySnapshot(s);
        if (s.index > n.machine.applied) {
          n.machine = decodeMachine(s.data, s.index);
          this.checkSnapshotMachine(n, s);
        }
        return;
      }
      case 1:
        n.disk.compact(rd.compaction!);
        return;
      case 2:
        n.disk.append(rd.entries);
        return;
      case 3: {
        const hs = rd.hardState!;
        if (hs.commit < n.commitSeen)
          this.fail(`${n.id} commit went back from ${n.commitSeen} to ${hs.commit}`);
        n.commitSeen = hs.commit;
        n.disk.setHardState(hs);
        return;
      }
    }
  }

  private apply(n: SimNode, entries: readonly Entry[]): void {
    for (const e of entries) {
      if (e.index !== n.machine.applied + 1) {
        this.fail(`${n.id} applied ${e.index} after ${n.machine.applied}: applied index not contiguous`);
      }
      if (e.kind === 'normal' && e.data.length > 0) {
        n.machine.hash = mix(n.machine.hash, dataId(e.data));
        n.machine.count++;
      }
      n.machine.applied = e.index;
      const seenTerm = this.appliedTerm[e.index];
      if (seenTerm === undefined) {
        if (e.index !== this.appliedTerm.length) this.fail(`first apply of ${e.index} skips an index`);
        this.appliedTerm.push(e.term);
        this.appliedData.push(e.data);
        this.machineHashAt.push(n.machine.hash);
      } else if (seenTerm !== e.term || this.appliedData[e.index] !== e.data) {
        this.fail(
          `State Machine Safety: ${n.id} applied t${e.term} at ${e.index}, another node applied t${seenTerm}`,
        );
      } else if (this.machineHashAt[e.index] !== n.machine.hash) {
        this.fail(`State Machine Safety: ${n.id} machine differs after ${e.index}`);
      }
    }
  }

  private maybeCompact(n: SimNode): void {
    const raft = n.raft;
    if (this.compactEveryEntries === 0 || raft === undefined) return;
    const applied = n.machine.applied;
    if (applied - n.lastCompactedAt < this.compactEveryEntries) return;
    const result = raft.compact(applied, encodeMachine(n.machine));
    n.lastCompactedAt = applied;
    // The compaction leaves in the node's next Ready, which the caller's drive loop picks up.
    if (result.kind === 'ok') this.note(n.id, `compact at ${applied}`);
  }

  // ---- Invariants ----

  private key(index: number, term: number): number {
    return index * 1_000_000 + term;
  }

  private checkLeader(n: SimNode, rd: Ready): void {
    if (rd.softState.role !== 'leader') return;
    const status = n.raft!.status();
    const term = status.term;
    const known = this.leaderByTerm.get(term);
    if (known === undefined) {
      this.leaderByTerm.set(term, n.id);
      this.note(n.id, `leader of term ${term}`);
      // Leader Completeness: every entry applied anywhere (so committed) is in the new leader's log.
      for (let i = status.firstIndex; i < this.appliedTerm.length; i++) {
        const mine = n.raft!.termAt(i);
        if (mine !== this.appliedTerm[i]) {
          this.fail(`Leader Completeness: leader ${n.id} of t${term} has t${mine} at committed ${i}`);
        }
      }
      if (status.firstIndex - 1 >= this.appliedTerm.length) {
        this.fail(`leader ${n.id} snapshot at ${status.firstIndex - 1} beyond anything applied`);
      }
    } else if (known !== n.id) {
      this.fail(`Election Safety: ${known} and ${n.id} are both leaders of term ${term}`);
    }
  }

  /**
   * A leader's commit must be backed by disks, not by promises: every newly committed entry is held by the
   * persisted log (or snapshot) of a majority of the voters the leader counts. This catches an
   * acknowledgement sent before its persist even when no later leader happens to expose the loss.
   */
  private checkCommitDurable(n: SimNode, rd: Ready): void {
    if (rd.softState.role !== 'leader' || rd.hardState === undefined) return;
    const from = n.disk.hardState().commit + 1;
    const to = rd.hardState.commit;
    if (to < from) return;
    const raft = n.raft!;
    const status = raft.status();
    for (let i = Math.max(from, status.firstIndex); i <= to; i++) {
      const term = raft.termAt(i);
      const majorityHolds = (voters: readonly NodeId[]): boolean => {
        let holders = 0;
        for (const v of voters) {
          const disk = this.nodes.get(v)?.disk;
          if (disk !== undefined && (disk.snapshot().index >= i || disk.term(i) === term)) holders++;
        }
        return holders >= Math.floor(voters.length / 2) + 1;
      };
      // The leader decided with its membership of that moment: the one in effect at some index from i to
      // its last entry (changes take effect when appended). One of them must have a majority holding i.
      const seen = new Set<ConfState>();
      let backed = false;
      for (let j = i; j <= status.lastIndex && !backed; j++) {
        const conf = raft.confAt(j);
        if (seen.has(conf)) continue;
        seen.add(conf);
        backed = majorityHolds(conf.voters);
      }
      if (!backed)
        this.fail(`commit durability: ${n.id} committed ${i}/t${term} without a majority of disks`);
    }
  }

  /** Log Matching, checked as logs grow: (index, term) names one entry and fixes the term before it. */
  private checkEntries(n: SimNode, entries: readonly Entry[]): void {
    let prevTerm = n.raft!.termAt(entries[0]!.index - 1);
    if (prevTerm === undefined) {
      const first = entries[0]!.index;
      prevTerm = first - 1 === n.disk.snapshot().index ? n.disk.snapshot().term : undefined;
      if (prevTerm === undefined) this.fail(`${n.id} appends ${first} without a term before it`);
    }
    for (const e of entries) {
      const k = this.key(e.index, e.term);
      const seen = this.logRecord.get(k);
      if (seen === undefined) {
        this.logRecord.set(k, { data: e.data, prevTerm: prevTerm! });
      } else if (seen.data !== e.data || seen.prevTerm !== prevTerm) {
        this.fail(`Log Matching: ${n.id} holds a different entry (or history) at ${e.index}/t${e.term}`);
      }
      prevTerm = e.term;
    }
  }

  private checkSnapshotRecord(n: SimNode, s: Snapshot): void {
    const term = this.appliedTerm[s.index];
    if (term !== undefined && term !== s.term) {
      this.fail(`${n.id} got a snapshot at ${s.index}/t${s.term} but t${term} was applied there`);
    }
  }

  private checkSnapshotMachine(n: SimNode, s: Snapshot): void {
    const hash = this.machineHashAt[s.index];
    if (hash === undefined) this.fail(`${n.id} holds a snapshot at ${s.index} that nobody applied`);
    if (hash !== n.machine.hash) this.fail(`State Machine Safety: ${n.id} snapshot at ${s.index} differs`);
  }

  /** A full pairwise comparison of the durable logs (cheaper checks run every step; this one at the end). */
  checkLogsFully(): void {
    const disks = [...this.nodes.values()].map((n) => n.disk);
    for (let a = 0; a < disks.length; a++) {
      for (let b = a + 1; b < disks.length; b++) {
        const x = disks[a]!;
        const y = disks[b]!;
        const hi = Math.min(x.lastIndex(), y.lastIndex());
        const lo = Math.max(x.firstIndex(), y.firstIndex());
        let matchedFrom = -1;
        for (let i = hi; i >= lo; i--) {
          if (x.term(i) === y.term(i)) {
            matchedFrom = i;
            break;
          }
        }
        if (matchedFrom < lo) continue;
        const xs = x.entries(lo, matchedFrom + 1, Number.MAX_SAFE_INTEGER);
        const ys = y.entries(lo, matchedFrom + 1, Number.MAX_SAFE_INTEGER);
        for (let i = 0; i < xs.length; i++) {
          if (xs[i]!.term !== ys[i]!.term || xs[i]!.data !== ys[i]!.data) {
            this.fail(`Log Matching: logs differ at ${xs[i]!.index} below a common entry at ${matchedFrom}`);
          }
        }
      }
    }
  }

  // ---- Client side ----

  /** The node that a majority of the live voters it knows of follow, if any. */
  stableLeader(exclude: readonly NodeId[] = []): NodeId | undefined {
    for (const n of this.nodes.values()) {
      const raft = n.raft;
      if (raft === undefined || exclude.includes(n.id)) continue;
      const s = raft.status();
      if (s.role !== 'leader') continue;
      let following = 0;
      for (const v of s.conf.voters) {
        const r = this.nodes.get(v)?.raft?.status();
        if (r !== undefined && r.leaderId === n.id && r.term === s.term) following++;
      }
      if (following > s.conf.voters.length / 2) return n.id;
    }
    return undefined;
  }

  leaders(): NodeId[] {
    return this.ids.filter((id) => this.nodes.get(id)!.raft?.status().role === 'leader');
  }

  /** Runs until some node (not in `exclude`) leads a majority; returns it. */
  waitForLeader(deadlineMs: number, exclude: readonly NodeId[] = []): NodeId {
    this.runUntil('a stable leader', deadlineMs, () => this.stableLeader(exclude) !== undefined);
    return this.stableLeader(exclude)!;
  }

  /** Proposes a fresh value at `id`; returns the proposal id when accepted, undefined when refused. */
  proposeAt(id: NodeId): number | undefined {
    const raft = this.node(id).raft;
    // RaftHost refuses proposals while its storage fails.
    if (raft === undefined || this.node(id).stalled !== undefined) return undefined;
    const pid = this.nextProposalId++;
    const result = raft.propose(u32Data(pid));
    this.lastProposeResult = result;
    this.drive(this.node(id));
    if (result.kind !== 'ok') return undefined;
    this.accepted.set(pid, result.index);
    return pid;
  }

  proposeConfChangeAt(id: NodeId, change: ConfChange): ReturnType<RaftNode['proposeConfChange']> {
    const raft = this.node(id).raft;
    if (raft === undefined || this.node(id).stalled !== undefined)
      return { kind: 'not_leader', leaderId: '' };
    const result = raft.proposeConfChange(change);
    this.note(id, `propose ${change.op} ${change.nodeId}: ${result.kind}`);
    this.drive(this.node(id));
    return result;
  }

  transferAt(id: NodeId, to: NodeId): ReturnType<RaftNode['transferLeadership']> {
    const raft = this.node(id).raft;
    if (raft === undefined) return { kind: 'not_leader', leaderId: '' };
    const result = raft.transferLeadership(to);
    this.note(id, `transfer to ${to}: ${result.kind}`);
    this.drive(this.node(id));
    return result;
  }

  /** Whether proposal `pid` has been applied (by any node; State Machine Safety makes that final). */
  isApplied(pid: number): boolean {
    const index = this.accepted.get(pid);
    if (index === undefined) return false;
    const data = this.appliedData[index];
    return data !== undefined && data.length === 4 && dataId(data) === pid;
  }

  /** Proposes at the current leader (retrying across leader changes) until one value is applied by `nodes`. */
  agree(deadlineMs: number, nodes: readonly NodeId[] = this.liveIds()): number {
    const end = this.nowMs + deadlineMs;
    for (;;) {
      const leader = this.stableLeader();
      const pid = leader === undefined ? undefined : this.proposeAt(leader);
      if (pid !== undefined) {
        const index = this.accepted.get(pid)!;
        const retryAt = Math.min(end, this.nowMs + 1000);
        while (this.nowMs < retryAt) {
          if (this.isApplied(pid) && nodes.every((id) => this.appliedIndex(id) >= index)) return pid;
          if (this.appliedTerm[index] !== undefined && !this.isApplied(pid)) break;
          this.stepMs();
        }
      } else {
        this.runFor(this.tickMs);
      }
      if (this.nowMs >= end) this.fail(`liveness: no agreement within ${deadlineMs} ms`);
    }
  }

  appliedIndex(id: NodeId): number {
    const n = this.node(id);
    return n.raft === undefined ? -1 : n.machine.applied;
  }

  liveIds(): NodeId[] {
    return this.ids.filter((id) => this.nodes.get(id)!.raft !== undefined);
  }

  /** Index of the highest entry applied anywhere. */
  appliedMax(): number {
    return this.appliedTerm.length - 1;
  }

  /** The leader recorded for `term`, if any (Election Safety keeps this to one). */
  leaderOfTerm(term: number): NodeId | undefined {
    return this.leaderByTerm.get(term);
  }

  // ---- Failure reporting ----

  private node(id: NodeId): SimNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  private record(node: NodeId, what: string, msg: Message | undefined): void {
    const ev: TraceEvent = { t: this.nowMs, node, what, msg };
    if (this.ring.length < traceRingSize) this.ring.push(ev);
    else this.ring[this.ringNext] = ev;
    this.ringNext = (this.ringNext + 1) % traceRingSize;
  }

  /** Records an event; with tracing on, prints it too. */
  note(node: NodeId, what: string, msg?: Message): void {
    this.record(node, what, msg);
    if (this.trace) console.log(formatEvent({ t: this.nowMs, node, what, msg }));
  }

  traceTail(): string[] {
    const ordered =
      this.ring.length < traceRingSize
        ? this.ring
        : [...this.ring.slice(this.ringNext), ...this.ring.slice(0, this.ringNext)];
    return ordered.slice(-traceTailLength).map(formatEvent);
  }

  fail(reason: string): never {
    throw new SimFailure(reason);
  }

  /** Runs `body` and turns any failure (invariant, liveness or a core assertion) into a replayable report. */
  static replayHint(scenario: string, seed: number): string {
    return `replay: node --import tsx tools/raft-sim.ts --scenario ${scenario} --seed ${seed} --trace`;
  }
}

const persistStepCount = 4;

function hasPersistWork(rd: Ready, step: number): boolean {
  switch (step) {
    case 0:
      return rd.snapshot !== undefined;
    case 1:
      return rd.compaction !== undefined;
    case 2:
      return rd.entries.length > 0;
    default:
      return rd.hardState !== undefined;
  }
}

function formatEvent(ev: TraceEvent): string {
  const msg = ev.msg === undefined ? '' : ` ${ev.msg.from}->${ev.msg.to} ${describeMessage(ev.msg)}`;
  return `${String(ev.t).padStart(7)}ms ${ev.node.padEnd(4)} ${ev.what}${msg}`;
}

/** Whether an error is one a simulation run reports with its seed (rather than a harness bug). */
export function isSimFailure(err: unknown): err is Error {
  return err instanceof SimFailure || err instanceof AssertionError;
}
