// Micro-benchmark of the SharedArrayBuffer frame ring between the main thread and a worker thread:
// - one-way throughput (main thread writes, worker reads with waitAsync) for 64 B and 1 KiB payloads at
//   publish batch sizes 1 and 64;
// - request/response round-trip latency (p50/p99) through a ring pair versus postMessage, in the same run.
// Prints a table and writes bench/results/ring-<iso>.json. Run: node --import tsx bench/ring.ts
// Environment knobs: RING_BENCH_ONE_WAY_MS (default 1500), RING_BENCH_ROUND_TRIPS (default 20000).
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import type { Worker } from 'node:worker_threads';
import { createRing, createRingPair, ReserveFailure, RingReader, RingWriter } from '../src/ring/spsc-ring.js';
import { spawnThread } from '../src/runtime/threads.js';
import type { BenchPeerData } from './fixtures/ring-peer.js';

/** Kind of the frame that ends a one-way run. */
const STOP_KIND = 0xffff;

const oneWayMs = Number(process.env.RING_BENCH_ONE_WAY_MS ?? 1500);
const roundTrips = Number(process.env.RING_BENCH_ROUND_TRIPS ?? 20_000);
const warmupRoundTrips = Math.min(2000, roundTrips);
const ringCapacityBytes = 256 * 1024;
/** A healthy run never goes this long without progress; a stall ends the run with the stage it stalled in. */
const stallMs = Number(process.env.RING_BENCH_STALL_MS ?? 10_000);

// One watchdog instead of a timeout on every wait: a finite timeout makes V8 schedule a delayed task per wait,
// which would be part of what is measured. Waits themselves are unbounded.
let progress = 0;
let stage = 'start';
let progressSeen = -1;
const watchdog = setInterval(() => {
  if (progress === progressSeen) {
    console.error(`stalled for ${stallMs} ms in ${stage} (progress ${progress})`);
    process.exit(2);
  }
  progressSeen = progress;
}, stallMs);

function peer(data: BenchPeerData): Worker {
  return spawnThread('bench/fixtures/ring-peer', data);
}

interface OneWayResult {
  payloadBytes: number;
  batchFrames: number;
  frames: number;
  seconds: number;
  framesPerSecond: number;
  megabytesPerSecond: number;
  fullEvents: number;
  notifiesSent: number;
  readerSleeps: number;
}

async function oneWay(payloadBytes: number, batchFrames: number): Promise<OneWayResult> {
  const requests = createRing({ capacityBytes: ringCapacityBytes });
  const writer = new RingWriter(requests);
  const worker = peer({ mode: 'count', requests, stopKind: STOP_KIND });
  try {
    await nextMessage(worker); // ready: the worker has loaded and attached, so its startup is not timed
    const payload = new Uint8Array(payloadBytes).fill(0xab);
    const startMs = performance.now();
    const endMs = startMs + oneWayMs;
    let frames = 0;
    while ((frames & 1023) !== 0 || performance.now() < endMs) {
      let offset = writer.reserve(payloadBytes);
      while (offset === ReserveFailure.full) {
        await writer.waitForSpace(payloadBytes);
        progress++;
        offset = writer.reserve(payloadBytes);
      }
      writer.bytes.set(payload, offset);
      writer.commit(1, frames);
      frames++;
      if (frames % batchFrames === 0) writer.publish();
    }
    let offset = writer.reserve(0);
    while (offset === ReserveFailure.full) {
      await writer.waitForSpace(0);
      offset = writer.reserve(0);
    }
    writer.commit(STOP_KIND, 0);
    writer.publish();
    const reply = await nextMessage<{ frames: number; stats: { sleeps: number } }>(worker);
    const seconds = (performance.now() - startMs) / 1000;
    if (reply.frames !== frames) throw new Error(`worker counted ${reply.frames} of ${frames} frames`);
    const stats = writer.stats();
    return {
      payloadBytes,
      batchFrames,
      frames,
      seconds,
      framesPerSecond: frames / seconds,
      megabytesPerSecond: (frames * payloadBytes) / seconds / 1e6,
      fullEvents: stats.fullEvents,
      notifiesSent: stats.notifiesSent,
      readerSleeps: reply.stats.sleeps,
    };
  } finally {
    await worker.terminate();
  }
}

interface Latency {
  p50Us: number;
  p99Us: number;
  meanUs: number;
}

function summarise(samplesMs: Float64Array): Latency {
  const sorted = Float64Array.from(samplesMs).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! * 1000;
  const meanUs = (sorted.reduce((sum, x) => sum + x, 0) / sorted.length) * 1000;
  return { p50Us: at(0.5), p99Us: at(0.99), meanUs };
}

/** The worker's next message. */
async function nextMessage<T>(worker: Worker): Promise<T> {
  const [message] = (await once(worker, 'message')) as [T];
  progress++;
  return message;
}

async function roundTripsCompared(
  payloadBytes: number,
  blocking: boolean,
): Promise<{ ring: Latency; postMessage: Latency | null }> {
  const rings = createRingPair({ capacityBytes: ringCapacityBytes });
  const requests = new RingWriter(rings.requests);
  const responses = new RingReader(rings.responses);
  const worker = peer({ mode: 'echo', requests: rings.requests, responses: rings.responses, blocking });
  try {
    await nextMessage(worker); // ready: the worker has loaded and attached, so its startup is not timed
    const payload = new Uint8Array(payloadBytes).fill(0xcd);
    const ringOnce = async (id: number): Promise<void> => {
      const offset = requests.reserve(payloadBytes);
      if (offset < 0) throw new Error(`request ring refused a frame: ${offset}`);
      requests.bytes.set(payload, offset);
      requests.commit(1, id);
      requests.publish();
      while (!responses.next()) {
        await responses.waitAsync();
      }
      if (responses.correlationId !== id) throw new Error(`echo ${responses.correlationId} for ${id}`);
      responses.release();
    };
    let resolveReply: (() => void) | null = null;
    worker.on('message', () => {
      const resolve = resolveReply;
      resolveReply = null;
      resolve?.();
    });
    const postOnce = (): Promise<void> =>
      new Promise<void>((resolve) => {
        resolveReply = resolve;
        worker.postMessage(payload);
      });

    const measure = async (step: (i: number) => Promise<void>): Promise<Latency> => {
      for (let i = 0; i < warmupRoundTrips; i++) await step(i);
      const samplesMs = new Float64Array(roundTrips);
      for (let i = 0; i < roundTrips; i++) {
        const t0 = performance.now();
        await step(i);
        samplesMs[i] = performance.now() - t0;
        progress++;
      }
      return summarise(samplesMs);
    };
    const mid = (a: Latency, b: Latency): Latency => ({
      p50Us: (a.p50Us + b.p50Us) / 2,
      p99Us: (a.p99Us + b.p99Us) / 2,
      meanUs: (a.meanUs + b.meanUs) / 2,
    });
    // A worker blocked in Atomics.wait cannot answer postMessage: its ring is measured alone.
    if (blocking) return { ring: mid(await measure(ringOnce), await measure(ringOnce)), postMessage: null };
    // Interleave the two in halves so that a change in machine load affects both alike.
    const ringA = await measure(ringOnce);
    const postA = await measure(postOnce);
    const ringB = await measure(ringOnce);
    const postB = await measure(postOnce);
    return { ring: mid(ringA, ringB), postMessage: mid(postA, postB) };
  } finally {
    await worker.terminate();
  }
}

const fmt = (x: number, digits = 1): string => x.toFixed(digits);

const oneWayResults: OneWayResult[] = [];
for (const payloadBytes of [64, 1024]) {
  for (const batchFrames of [1, 64]) {
    stage = `one-way ${payloadBytes} B, batch ${batchFrames}`;
    oneWayResults.push(await oneWay(payloadBytes, batchFrames));
  }
}
stage = 'round trips, worker waits async';
const latency = await roundTripsCompared(64, false);
stage = 'round trips, worker blocks';
const blockingLatency = await roundTripsCompared(64, true);
clearInterval(watchdog);
const postMessageLatency = latency.postMessage!;

console.log(
  `ring one-way, main thread -> worker (${ringCapacityBytes / 1024} KiB ring, ${oneWayMs} ms per case)`,
);
console.log('payload B | batch | frames/s     | MB/s    | full events | notifies | reader sleeps');
for (const r of oneWayResults) {
  console.log(
    `${String(r.payloadBytes).padStart(9)} | ${String(r.batchFrames).padStart(5)} | ${fmt(r.framesPerSecond, 0).padStart(12)} | ${fmt(r.megabytesPerSecond).padStart(7)} | ${String(r.fullEvents).padStart(11)} | ${String(r.notifiesSent).padStart(8)} | ${String(r.readerSleeps).padStart(13)}`,
  );
}
console.log(`\nround trip main <-> worker, 64 B payload, ${roundTrips} x 2 samples each`);
console.log(`${'transport'.padEnd(34)} | p50 us | p99 us | mean us`);
for (const [name, l] of [
  ['ring pair (worker waits async)', latency.ring],
  ['postMessage', postMessageLatency],
  ['ring pair (worker blocks in wait)', blockingLatency.ring],
] as const) {
  console.log(
    `${name.padEnd(34)} | ${fmt(l.p50Us).padStart(6)} | ${fmt(l.p99Us).padStart(6)} | ${fmt(l.meanUs).padStart(7)}`,
  );
}
const ratio = {
  p50: postMessageLatency.p50Us / latency.ring.p50Us,
  p99: postMessageLatency.p99Us / latency.ring.p99Us,
};
console.log(`postMessage / ring: p50 x${fmt(ratio.p50, 2)}, p99 x${fmt(ratio.p99, 2)}`);

const iso = new Date().toISOString();
const resultsDir = new URL('./results/', import.meta.url);
mkdirSync(resultsDir, { recursive: true });
const file = new URL(`ring-${iso.replace(/[:.]/g, '-')}.json`, resultsDir);
writeFileSync(
  file,
  `${JSON.stringify(
    {
      benchmark: 'ring',
      at: iso,
      node: process.version,
      cpus: os.availableParallelism(),
      loadAverage: os.loadavg(),
      ringCapacityBytes,
      oneWayMs,
      roundTrips,
      oneWay: oneWayResults,
      roundTrip: {
        payloadBytes: 64,
        ring: latency.ring,
        postMessage: postMessageLatency,
        postMessageOverRing: ratio,
        ringWithBlockingWorker: blockingLatency.ring,
      },
    },
    null,
    2,
  )}\n`,
);
console.log(`\nwrote ${file.pathname}`);
