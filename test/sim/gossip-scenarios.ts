// Scripted cluster runs on the gossip simulation, shared by the simulation tests and the benchmark: a warm
// cluster, then kills, joins, pauses and restarts on a fixed schedule, then measurements. Victims are chosen from the
// seed, so one seed names one run exactly. Single-threaded.
import { GOSSIP_DEFAULTS, type GossipConfig } from '../../src/core/gossip/config.js';
import {
  GossipSim,
  type RecordedEvent,
  SeededRandom,
  type SimOptions,
  type Traffic,
} from './gossip-harness.js';

export type ScenarioOptions = {
  readonly members: number;
  readonly seed: number;
  readonly lossRate: number;
  /** Members killed one every `spacingMs`, the first at `warmupMs`. */
  readonly kills: number;
  /** Members added (joining through a random live seed) one every `spacingMs`. */
  readonly joins: number;
  /** Members paused for `pauseMs`, one every 3 s. */
  readonly pauses?: number;
  readonly pauseMs?: number;
  /** Which runs first when a paused member resumes: its socket backlog or its late timers. */
  readonly resumeOrder?: SimOptions['resumeOrder'];
  /**
   * Members killed one every `spacingMs` (after the plain kills), each restarted under the same id
   * `restartAfterMs` later (default 7 s, once everyone declared it dead), joining through a random member.
   */
  readonly restarts?: number;
  readonly restartAfterMs?: number;
  /** Simulated time after the last scripted action, for detection and convergence to complete. */
  readonly settleMs?: number;
  readonly spacingMs?: number;
  readonly config?: GossipConfig;
  /** Called with the finished simulation, for tools that dig into one run. */
  readonly inspect?: (sim: GossipSim, killed: readonly string[]) => void;
};

export type ScenarioResult = {
  readonly members: number;
  readonly seed: number;
  readonly lossRate: number;
  /** Per killed member: time until every live member that knew it recorded it failed. */
  readonly detectionMs: number[];
  /** Per joined member: time until every other live member recorded it joined. */
  readonly joinMs: number[];
  /** Per restarted member: time from its restart until every other running member holds it alive. */
  readonly restartMs: number[];
  readonly falsePositives: RecordedEvent[];
  /** Paused members that some member suspected: proof that a pause was long enough to matter. */
  readonly pausedSuspected: number;
  /** Suspect events about members never killed nor paused; with no packet loss, each is a wrong accusation. */
  readonly healthySuspected: number;
  readonly suspectEvents: number;
  readonly traffic: Traffic;
  readonly simMs: number;
  readonly wallMs: number;
};

const WARMUP_MS = 1000;

export function runScenario(options: ScenarioOptions): ScenarioResult {
  const started = performance.now();
  const spacingMs = options.spacingMs ?? 1500;
  const pauseMs = options.pauseMs ?? 2000;
  const pauses = options.pauses ?? 0;
  const restarts = options.restarts ?? 0;
  const restartAfterMs = options.restartAfterMs ?? 7000;
  const sim = new GossipSim({
    members: options.members,
    seed: options.seed,
    lossRate: options.lossRate,
    config: options.config ?? GOSSIP_DEFAULTS,
    ...(options.resumeOrder === undefined ? {} : { resumeOrder: options.resumeOrder }),
  });
  const script = new SeededRandom(options.seed ^ 0x5c41e7);
  // Distinct members for each role, drawn from the seed.
  const pool = Array.from({ length: options.members }, (_, i) => sim.idOf(i));
  const draw = (): string => {
    const i = script.nextInt(pool.length);
    const [id] = pool.splice(i, 1);
    return id!;
  };
  const actions: { atMs: number; run: () => void }[] = [];
  const killed: string[] = [];
  const joined: { id: string; atMs: number }[] = [];
  const paused: string[] = [];
  const restarted: { id: string; atMs: number }[] = [];
  for (let i = 0; i < options.kills; i++) {
    const victim = draw();
    actions.push({
      atMs: WARMUP_MS + i * spacingMs,
      run: () => {
        sim.kill(victim);
        killed.push(victim);
      },
    });
  }
  for (let i = 0; i < options.joins; i++) {
    const atMs = WARMUP_MS + spacingMs / 2 + i * spacingMs;
    actions.push({
      atMs,
      run: () => {
        const live = sim.liveIds().filter((id) => sim.status(id) === 'up');
        const seed = live[script.nextInt(live.length)]!;
        joined.push({ id: sim.addMember(seed), atMs });
      },
    });
  }
  for (let i = 0; i < restarts; i++) {
    const victim = draw();
    const killAtMs = WARMUP_MS + (options.kills + i) * spacingMs;
    actions.push({
      atMs: killAtMs,
      run: () => {
        sim.kill(victim);
        killed.push(victim);
      },
    });
    actions.push({
      atMs: killAtMs + restartAfterMs,
      run: () => {
        const live = sim.liveIds().filter((id) => sim.status(id) === 'up');
        sim.restart(victim, live[script.nextInt(live.length)]!);
        restarted.push({ id: victim, atMs: killAtMs + restartAfterMs });
      },
    });
  }
  for (let i = 0; i < pauses; i++) {
    const member = draw();
    actions.push({
      atMs: WARMUP_MS + 200 + i * 3000,
      run: () => {
        sim.pause(member, pauseMs);
        paused.push(member);
      },
    });
  }
  actions.sort((a, b) => a.atMs - b.atMs);
  sim.runUntil(WARMUP_MS);
  sim.resetTraffic();
  for (const action of actions) {
    sim.runUntil(action.atMs);
    action.run();
  }
  const lastActionMs = actions.at(-1)?.atMs ?? WARMUP_MS;
  const endMs = lastActionMs + (pauses > 0 ? pauseMs : 0) + (options.settleMs ?? 8000);
  sim.runUntil(endMs);
  options.inspect?.(sim, killed);
  const pausedSet = new Set(paused);
  const suspectedPaused = new Set(
    sim.events.filter((e) => e.kind === 'suspect' && pausedSet.has(e.subject)).map((e) => e.subject),
  );
  const killedSet = new Set(killed);
  const healthySuspected = sim.events.filter(
    (e) => e.kind === 'suspect' && !pausedSet.has(e.subject) && !killedSet.has(e.subject),
  ).length;
  return {
    members: options.members,
    seed: options.seed,
    lossRate: options.lossRate,
    detectionMs: killed.map((id) => sim.detectionMs(id)),
    joinMs: joined.map((j) => sim.joinPropagationMs(j.id, j.atMs)),
    restartMs: restarted.map((r) => sim.aliveAgainMs(r.id, r.atMs)),
    falsePositives: sim.falsePositives(),
    pausedSuspected: suspectedPaused.size,
    healthySuspected,
    suspectEvents: sim.countEvents('suspect'),
    traffic: sim.trafficPerMember(endMs - WARMUP_MS),
    simMs: endMs,
    wallMs: performance.now() - started,
  };
}

/** Nearest-rank percentile of `values` (p in (0, 100]); NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
