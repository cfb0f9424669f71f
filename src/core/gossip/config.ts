// Configuration of the SWIM/Lifeguard gossip core: the defaults, the formulas behind them, and validation that
// reports every problem at once. Two profiles: `MEMBERLIST_LAN_PROFILE` carries hashicorp/memberlist's
// DefaultLANConfig numbers unchanged (for comparison and for clusters that prefer its pace), and
// `GOSSIP_DEFAULTS` is the broker's profile, tuned so that a killed broker is declared dead everywhere within
// 5 s at 500 members and within 6 s at 4, while a broker paused for 2 s is not, at any size.
// Pure: callable from any thread.

/** The randomness the core consumes; a seeded PRNG in simulation, a CSPRNG-seeded one in production. */
export interface Random {
  /** Uniform integer in [0, n); n >= 1. */
  nextInt(n: number): number;
  /** Uniform float in [0, 1). */
  nextFloat(): number;
}

export interface GossipConfig {
  /** Time between two failure-detector probes of this member, before awareness scaling. */
  readonly probeIntervalMs: number;
  /** Wait for a direct ack before asking `indirectChecks` peers to probe; before awareness scaling. */
  readonly probeTimeoutMs: number;
  /** How many peers relay a ping-req when the direct ping went unanswered. */
  readonly indirectChecks: number;
  /** Time between two gossip rounds that push pending broadcasts to `gossipNodes` random peers. */
  readonly gossipIntervalMs: number;
  readonly gossipNodes: number;
  /** Dead members still receive gossip this long, so a member falsely declared dead learns it and refutes. */
  readonly gossipToTheDeadMs: number;
  /** Each broadcast is sent retransmitMult * ceil(log10(N + 1)) times before it is dropped. */
  readonly retransmitMult: number;
  /**
   * Minimum suspicion timeout: max(suspicionTimeoutFloorMs, suspicionMult * max(1, log10 N) * probeIntervalMs).
   * Also sets the confirmations that bring a timer down to it: K = min(suspicionMult - 2, members that could
   * confirm).
   */
  readonly suspicionMult: number;
  /**
   * Maximum suspicion timeout (no confirmations yet): the larger of the minimum and suspicionMaxTimeoutMult *
   * the log-scaled minimum before the floor.
   */
  readonly suspicionMaxTimeoutMult: number;
  /**
   * Lower bound of the minimum suspicion timeout, whatever N: the pause a member must survive plus the time
   * its refutation needs to reach its accusers. Binds where log10(N) is small; 0 disables it.
   */
  readonly suspicionTimeoutFloorMs: number;
  /** Local health score ceiling: timeouts and the probe interval stretch up to this many times. */
  readonly awarenessMaxMultiplier: number;
  /** Full-state anti-entropy exchange with one random peer, scaled up past 32 members. 0 disables it. */
  readonly pushPullIntervalMs: number;
  /** A dead or left member is forgotten this long after its last state change; its id may then rejoin. */
  readonly deadReclaimMs: number;
  /**
   * Every this many ms (scaled up past 32 members like push-pull), a full-state exchange with one random
   * member that is not alive here: one held dead or left, one forgotten within `reconnectTimeoutMs`, or a
   * peer address the shell supplies (`setReconnectPeers`). This is what merges two sides of a partition that
   * outlasted `deadReclaimMs`, when neither remembers the other. 0 disables it.
   */
  readonly reconnectIntervalMs: number;
  /** A forgotten member stays a reconnect candidate this long after it was forgotten. */
  readonly reconnectTimeoutMs: number;
  /** Safe UDP payload: no datagram the core emits exceeds this estimated encoded size. */
  readonly udpPacketBytesMax: number;
  /** Upper bound on the member list, dead members included; alive messages beyond it are dropped. */
  readonly membersMax: number;
  /**
   * Ping a suspect every third of the minimum suspicion timeout, carrying the accusation. A live suspect that
   * already refuted answers with its current alive, so a member that missed the refutation broadcast (each
   * member misses a given broadcast with probability about e^-(transmissions * (1 - loss)), about 2e-5 at 10%
   * loss) is repaired before its timer fires. An addition to memberlist; false reproduces memberlist.
   */
  readonly verifySuspicions: boolean;
  /** Upper bound on ping-reqs being relayed for other members at once; beyond it requests are ignored. */
  readonly relaysMax: number;
}

/**
 * hashicorp/memberlist DefaultLANConfig: its numbers unchanged (UDPBufferSize 1400 is the packet budget), the
 * bounds memberlist lacks (members, relays, reclaim time) as in the broker's profile, and no verification
 * pings. With a 1 s probe interval its minimum suspicion timeout at N = 500 is 4 * log10(500) * 1 s = 10.8 s,
 * which is why the broker does not use it as its default.
 */
export const MEMBERLIST_LAN_PROFILE: GossipConfig = {
  probeIntervalMs: 1000,
  // Half the probe interval leaves the other half for the indirect round.
  probeTimeoutMs: 500,
  indirectChecks: 3,
  gossipIntervalMs: 200,
  gossipNodes: 3,
  gossipToTheDeadMs: 30_000,
  retransmitMult: 4,
  suspicionMult: 4,
  suspicionMaxTimeoutMult: 6,
  // memberlist has no floor; its minimum is already 4 * 1 s at small N.
  suspicionTimeoutFloorMs: 0,
  awarenessMaxMultiplier: 8,
  pushPullIntervalMs: 30_000,
  deadReclaimMs: 30_000,
  // memberlist has no reconnect of its own; serf's reconnect runs every 30 s and keeps failed members 24 h.
  reconnectIntervalMs: 30_000,
  reconnectTimeoutMs: 24 * 60 * 60 * 1000,
  udpPacketBytesMax: 1400,
  membersMax: 4096,
  relaysMax: 256,
  verifySuspicions: false,
};

/**
 * The broker's profile: memberlist's LAN structure with a faster clock, chosen by the simulation at 4 to 500
 * members (`bench/gossip-sim.ts`, `test/sim/gossip-sim.test.ts`). The two targets pull in opposite
 * directions: detection time is roughly
 *   first probe (about one probe interval) + probe interval + minimum suspicion timeout + dissemination,
 * and a member paused for P ms survives only if
 *   minimum suspicion timeout + its first probe (about one probe interval) > P + refutation spread.
 * With a 200 ms probe interval, Lifeguard's log-scaled minimum 5 * max(1, log10 N) * 200 ms is 2.7 s at
 * N = 500 but only 1 s at N <= 10, where a 2 s pause would be a death. The 3 s floor fixes the small end and
 * binds up to N = 1000: detection about 0.4 s + 3 s + 0.1-0.7 s, so 3.4-4.5 s from 4 to 500 members (under
 * the 5 s budget at 500 and the 6 s of a 4-member cluster), and pauses up to about 2.7 s survive.
 */
export const GOSSIP_DEFAULTS: GossipConfig = {
  // Five probes a second per member: each member is still probed about once per interval, so the load per
  // member stays constant in N (SWIM's point), and a dead member is first probed within about 200-400 ms.
  probeIntervalMs: 200,
  // LAN round trips are well under 10 ms; 80 ms leaves 120 ms of the interval for the indirect round, and
  // awareness stretches both when this member is the slow one.
  probeTimeoutMs: 80,
  // Two more relays than memberlist. A probe fails only if the direct round trip and every relay path
  // (4 legs) fail: at 10% loss 0.19 * 0.344^k, so 0.77% of probes with k = 3 and 0.09% with k = 5. Each
  // failed probe is a suspicion every member hears and the suspect must refute, so at 500 members k = 5 cuts
  // that churn (and the bytes it costs) about ninefold; the extra relays are only asked when a ping failed.
  indirectChecks: 5,
  // Twice memberlist's pace with the same fan-out: a broadcast reaches N = 500 members in about
  // log4(500) + ln(500)/3 = 6.6 rounds, so about 0.7 s; this is what lets a refutation beat the timer.
  gossipIntervalMs: 100,
  gossipNodes: 3,
  gossipToTheDeadMs: 30_000,
  // Every member that learns an update sends it T = retransmitMult * ceil(log10(N + 1)) times to random
  // members, so each member receives about T * (1 - loss) copies and misses the update with probability about
  // e^-(T * (1 - loss)). memberlist's 4 gives T = 12 at N = 500: 2e-5 per member at 10% loss, so about 1% of
  // deaths reach some member only through its own (slower) suspicion timer, which the 500-member simulation
  // showed as a 6 s detection tail. 6 gives T = 18: 9e-8 per member, for about 15% more gossip bytes.
  retransmitMult: 6,
  // One more than memberlist: the log-scaled minimum 5 * log10(N) * 200 ms is 2.7 s at N = 500 (the floor
  // below lifts it to 3 s) and sets the independent confirmations that shrink the timeout to the minimum to
  // K = min(suspicionMult - 2, confirmers) = 3, or 2 at N = 4, where only the two members that are neither
  // the accuser nor the suspect can confirm. memberlist's K = 0 at N - 2 < 3 would let one accuser (perhaps
  // the one with the bad link) declare a death after the bare minimum.
  suspicionMult: 5,
  // Without confirmations a lone accuser waits 6 * 2.7 s = 16 s at N = 500, time for the suspect to refute.
  // The multiple applies to the log-scaled minimum, not to the floor: at N <= 10 the maximum is 6 * 1 s = 6 s,
  // so a confirmation that cannot come (two of four members failing together) costs at most 3 s, and less as
  // K falls when a confirmer is itself suspected (see Suspicion.withdraw).
  suspicionMaxTimeoutMult: 6,
  // Floor = P + refutation spread = 2.5 s + 0.5 s. P is a 2 s stop of the process (a GC pause, a SIGSTOP,
  // a VM migration) with 25% margin; the spread is the time for the resumed member's refutation to reach
  // every accuser: one round trip when it answers the buddy-system pings buffered in its socket, a few 100 ms
  // gossip rounds when those were lost (10% loss), 0.7 s at N = 500. The first probe adds about 0.2 s of
  // slack. Simulated at 4 and 5 members: 2.5 s pauses never end in a death at 0% or 10% loss, 3 s pauses
  // sometimes do at 10% loss; a death meanwhile is seen everywhere within 4.5 s.
  suspicionTimeoutFloorMs: 3000,
  awarenessMaxMultiplier: 8,
  // Anti-entropy repairs what gossip missed; 30 s * (ceil(log2(N) - log2(32)) + 1) keeps the full-state
  // exchanges (the only messages whose size grows with N) at a constant bandwidth per member.
  pushPullIntervalMs: 30_000,
  deadReclaimMs: 30_000,
  // Healing after a partition takes about one reconnect interval (the first exchange across the healed cut)
  // plus the gossip rounds that spread what it merged (well under 1 s at small N), so 1 s heals within a few
  // seconds. The cost is one stream connection per interval per member, and only while some member or peer is
  // not alive: against a member that is really dead, a refused connection; the interval grows by one step
  // per doubling of N beyond 32 (like push-pull), so the attempts across the cluster stay about 32 per second.
  reconnectIntervalMs: 1_000,
  // serf's reconnect timeout: a member gone for a day is decommissioned, not partitioned. Forgotten members
  // are bounded by membersMax whatever the time.
  reconnectTimeoutMs: 24 * 60 * 60 * 1000,
  // 1400 bytes stays under a 1500-byte Ethernet MTU after IP (20-40) and UDP (8) headers with room to spare.
  udpPacketBytesMax: 1400,
  membersMax: 4096,
  relaysMax: 256,
  verifySuspicions: true,
};

export type ConfigProblem = { readonly field: keyof GossipConfig; readonly problem: string };

/** Every problem in `config`, empty when it is usable. */
export function validateGossipConfig(config: GossipConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  type NumericField = {
    [K in keyof GossipConfig]: GossipConfig[K] extends number ? K : never;
  }[keyof GossipConfig];
  const positiveInt = (field: NumericField, min: number): void => {
    const value = config[field];
    if (!Number.isInteger(value) || value < min)
      problems.push({ field, problem: `must be an integer >= ${min}` });
  };
  positiveInt('probeIntervalMs', 1);
  positiveInt('probeTimeoutMs', 1);
  positiveInt('indirectChecks', 0);
  positiveInt('gossipIntervalMs', 1);
  positiveInt('gossipNodes', 1);
  positiveInt('gossipToTheDeadMs', 0);
  positiveInt('retransmitMult', 1);
  positiveInt('suspicionMult', 1);
  positiveInt('suspicionMaxTimeoutMult', 1);
  positiveInt('suspicionTimeoutFloorMs', 0);
  positiveInt('awarenessMaxMultiplier', 1);
  positiveInt('pushPullIntervalMs', 0);
  positiveInt('deadReclaimMs', 0);
  positiveInt('reconnectIntervalMs', 0);
  positiveInt('reconnectTimeoutMs', 0);
  positiveInt('udpPacketBytesMax', 512);
  positiveInt('membersMax', 2);
  positiveInt('relaysMax', 1);
  if (config.probeTimeoutMs >= config.probeIntervalMs) {
    problems.push({
      field: 'probeTimeoutMs',
      problem: 'must be below probeIntervalMs to leave time for ping-req',
    });
  }
  return problems;
}

/** Lifeguard's log-scaled minimum before the floor: suspicionMult * max(1, log10 N) * probeIntervalMs. */
function suspicionTimeoutScaledMs(config: GossipConfig, memberCount: number): number {
  const scale = Math.max(1, Math.log10(Math.max(memberCount, 1)));
  return Math.round(config.suspicionMult * scale * config.probeIntervalMs);
}

/** Minimum suspicion timeout: max(floor, suspicionMult * max(1, log10 N) * probeIntervalMs); at least 1 ms. */
export function suspicionTimeoutMinMs(config: GossipConfig, memberCount: number): number {
  return Math.max(config.suspicionTimeoutFloorMs, suspicionTimeoutScaledMs(config, memberCount));
}

/**
 * Maximum suspicion timeout: max(minimum, suspicionMaxTimeoutMult * the log-scaled minimum). The floor is
 * not multiplied: it protects against pauses, which the minimum already covers, and multiplying it would hold
 * a death at small N for 6 * floor whenever a confirmation cannot come (two members failing at once).
 */
export function suspicionTimeoutMaxMs(config: GossipConfig, memberCount: number): number {
  return Math.max(
    suspicionTimeoutMinMs(config, memberCount),
    config.suspicionMaxTimeoutMult * suspicionTimeoutScaledMs(config, memberCount),
  );
}

/**
 * Lifeguard's K, the independent confirmations that bring a suspicion timer down to the minimum:
 * min(suspicionMult - 2, confirmers), where confirmers are the members that could still confirm (alive in
 * this member's view, the accuser excluded). memberlist uses K = 0 when N - 2 < suspicionMult - 2, which at
 * small N lets a single accuser declare a death after the minimum; capping K instead keeps the lone-accuser
 * wait while every possible confirmer can still shorten it.
 */
export function suspicionConfirmationsMax(config: GossipConfig, confirmers: number): number {
  return Math.max(0, Math.min(config.suspicionMult - 2, confirmers));
}

/** memberlist's retransmit limit: retransmitMult * ceil(log10(N + 1)). */
export function retransmitLimit(config: GossipConfig, memberCount: number): number {
  return config.retransmitMult * Math.ceil(Math.log10(memberCount + 1));
}

/** memberlist's pushPullScale: the interval grows by one step per doubling of N beyond 32 members. */
export function pushPullIntervalScaledMs(config: GossipConfig, memberCount: number): number {
  if (memberCount <= 32) return config.pushPullIntervalMs;
  const multiplier = Math.ceil(Math.log2(memberCount) - Math.log2(32)) + 1;
  return config.pushPullIntervalMs * multiplier;
}
