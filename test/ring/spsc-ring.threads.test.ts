// Two real threads on one ring: millions of seeded frames of random sizes through a small ring (many
// wrap-arounds, a full ring often), with a sequence number and a checksum verified on every frame, in both
// directions, plus a request/response echo through a ring pair shaped like the acceptor/partition worker loop,
// and three writer threads into three rings read by one ring set (a partition worker with three acceptors).
// Replay with RING_THREADS_SEED=<seed> (printed on failure); RING_THREADS_FRAMES scales the frame counts.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import type { Worker } from 'node:worker_threads';
import {
  createDoorbell,
  createRing,
  createRingPair,
  ReserveFailure,
  RingReader,
  RingSet,
  RingWriter,
} from '../../src/ring/spsc-ring.js';
import { spawnThread } from '../../src/runtime/threads.js';
import {
  checkTestPayload,
  ECHO_STOP_KIND,
  nextPayloadBytes,
  Prng,
  type RingPeerData,
  TEST_FRAME_KIND,
  writeTestPayload,
} from './fixtures/frames.js';

const seed = Number(process.env.RING_THREADS_SEED ?? (Math.random() * 2 ** 32) >>> 0);
const framesScale = Number(process.env.RING_THREADS_FRAMES ?? 1);
/** Bound on any single wait in these tests: a healthy run never waits more than milliseconds. */
const waitMs = 10_000;

function peer(data: RingPeerData): Worker {
  return spawnThread('test/ring/fixtures/ring-peer', data);
}

/** The worker's first message, or its error: a failed assertion in the worker fails the test. */
async function firstMessage<T>(worker: Worker): Promise<T> {
  const [message] = (await Promise.race([
    once(worker, 'message'),
    once(worker, 'error').then(([e]) => Promise.reject(e)),
  ])) as [T];
  return message;
}

function withSeed(message: string): string {
  return `${message} (replay with RING_THREADS_SEED=${seed})`;
}

test('a worker writes millions of random-size frames through a small ring and the main thread reads them all in order, intact', {
  timeout: 60_000,
}, async (t) => {
  t.diagnostic(`seed ${seed}`);
  const frames = Math.round(2_000_000 * framesScale);
  const ring = createRing({ capacityBytes: 4096, frameBytesMax: 1024 });
  const reader = new RingReader(ring);
  const worker = peer({ mode: 'write', ring, frames, seed, batchFramesMax: 32 });
  try {
    const writerDone = firstMessage<{ stats: ReturnType<RingWriter['stats']> }>(worker);
    const sizes = new Prng(seed);
    let framesRead = 0;
    let problem: string | null = null;
    while (framesRead < frames && problem === null) {
      const waited = await reader.waitAsync(waitMs);
      if (waited !== 'ready') {
        const c = new Int32Array(ring, 0, 64);
        assert.fail(
          withSeed(
            `stalled after ${framesRead} frames: head ${c[16]} readerSleeping ${c[17]} tail ${c[32]} writerWaiting ${c[33]} reader ${JSON.stringify(reader.stats())}`,
          ),
        );
      }
      // A bounded batch per wake-up, as the acceptor drains its response ring.
      let batchFrames = 0;
      while (batchFrames < 256 && reader.next()) {
        const expectedLength = nextPayloadBytes(sizes, reader.payloadBytesMax);
        problem = checkTestPayload(
          reader.bytes,
          reader.view,
          reader.payloadOffset,
          reader.payloadBytes,
          framesRead,
          expectedLength,
        );
        if (problem !== null) break;
        assert.equal(reader.kind, TEST_FRAME_KIND);
        assert.equal(reader.correlationId, framesRead);
        framesRead++;
        batchFrames++;
      }
      reader.release();
    }
    // A wake-up the runtime dropped is caught by the reader's bounded sleeps and counted (see waitAsync).
    t.diagnostic(`missed wake-ups ${reader.stats().missedWakes}`);
    assert.equal(problem, null, withSeed(problem ?? ''));
    assert.equal(framesRead, frames);
    assert.equal(reader.hasFrames(), false, 'nothing beyond the last frame');
    const { stats } = await writerDone;
    assert.equal(stats.framesPublished, frames);
    assert.ok(stats.fullEvents > 1000, `the ring should fill up often, it filled ${stats.fullEvents} times`);
    // Batching: far fewer notifies than frames.
    assert.ok(
      stats.notifiesSent < frames / 10,
      `too many notifies: ${stats.notifiesSent} for ${frames} frames`,
    );
  } finally {
    await worker.terminate();
  }
});

test('the main thread writes millions of random-size frames without blocking and a worker reads them all with waitSync', {
  timeout: 60_000,
}, async (t) => {
  t.diagnostic(`seed ${seed}`);
  const frames = Math.round(1_000_000 * framesScale);
  const ring = createRing({ capacityBytes: 4096, frameBytesMax: 1024 });
  const writer = new RingWriter(ring);
  const worker = peer({ mode: 'read', ring, frames, seed });
  try {
    const readerDone = firstMessage<{ framesRead: number; problem: string | null }>(worker);
    const sizes = new Prng(seed);
    const content = new Prng(seed ^ 0x5bd1e995);
    let eventLoopTurns = 0;
    for (let sequence = 0; sequence < frames; sequence++) {
      const length = nextPayloadBytes(sizes, writer.payloadBytesMax);
      let offset = writer.reserve(length);
      while (offset === ReserveFailure.full) {
        assert.equal(
          await writer.waitForSpace(length, waitMs),
          'ready',
          withSeed(`no space after ${sequence} frames`),
        );
        eventLoopTurns++;
        offset = writer.reserve(length);
      }
      writeTestPayload(writer.bytes, writer.view, offset, length, sequence, content);
      writer.commit(TEST_FRAME_KIND, sequence);
      if ((sequence & 63) === 63) writer.publish();
    }
    writer.publish();
    const { framesRead, problem } = await readerDone;
    assert.equal(problem, null, withSeed(problem ?? ''));
    assert.equal(framesRead, frames);
    assert.ok(
      eventLoopTurns > 1000,
      `the writer should have waited for space often, it waited ${eventLoopTurns} times`,
    );
    assert.ok(writer.stats().fullEvents >= eventLoopTurns);
  } finally {
    await worker.terminate();
  }
});

test('every request sent through a ring pair gets its echo back with the same correlation id and payload', {
  timeout: 60_000,
}, async (t) => {
  t.diagnostic(`seed ${seed}`);
  const requestsTotal = Math.round(300_000 * framesScale);
  const rings = createRingPair({ capacityBytes: 8192, frameBytesMax: 1024 });
  const requests = new RingWriter(rings.requests);
  const responses = new RingReader(rings.responses);
  const worker = peer({
    mode: 'echo',
    requests: rings.requests,
    responses: rings.responses,
    batchFramesMax: 64,
  });
  try {
    const workerDone = firstMessage<{ answered: number }>(worker);
    // Responses are checked against a regenerated stream: the echo must preserve order, ids and bytes.
    const checkSizes = new Prng(seed);
    let answered = 0;
    let problem: string | null = null;
    const receiving = (async () => {
      while (answered < requestsTotal && problem === null) {
        assert.equal(await responses.waitAsync(waitMs), 'ready', withSeed(`no response after ${answered}`));
        while (responses.next()) {
          const expectedLength = nextPayloadBytes(checkSizes, responses.payloadBytesMax);
          problem = checkTestPayload(
            responses.bytes,
            responses.view,
            responses.payloadOffset,
            responses.payloadBytes,
            answered,
            expectedLength,
          );
          if (problem === null && responses.correlationId !== answered)
            problem = `response ${answered}: id ${responses.correlationId}`;
          if (problem === null && responses.kind !== TEST_FRAME_KIND + 1)
            problem = `response ${answered}: kind ${responses.kind}`;
          if (problem !== null) break;
          answered++;
        }
        responses.release();
      }
    })();
    // The acceptor's shape: encode requests straight into the ring, publish once per event-loop turn.
    const sizes = new Prng(seed);
    const content = new Prng(seed ^ 0x5bd1e995);
    for (let sequence = 0; sequence < requestsTotal; sequence++) {
      const length = nextPayloadBytes(sizes, requests.payloadBytesMax);
      let offset = requests.reserve(length);
      while (offset === ReserveFailure.full) {
        assert.equal(
          await requests.waitForSpace(length, waitMs),
          'ready',
          withSeed(`no request space at ${sequence}`),
        );
        offset = requests.reserve(length);
      }
      writeTestPayload(requests.bytes, requests.view, offset, length, sequence, content);
      requests.commit(TEST_FRAME_KIND, sequence);
      if ((sequence & 15) === 15) {
        requests.publish();
        await new Promise(setImmediate);
      }
    }
    requests.publish();
    await receiving;
    assert.equal(problem, null, withSeed(problem ?? ''));
    assert.equal(answered, requestsTotal);
    let offset = requests.reserve(0);
    while (offset === ReserveFailure.full) {
      await requests.waitForSpace(0, waitMs);
      offset = requests.reserve(0);
    }
    requests.commit(ECHO_STOP_KIND, 0);
    requests.publish();
    assert.equal((await workerDone).answered, requestsTotal);
  } finally {
    await worker.terminate();
  }
});

test('three writer threads, one ring each, and one reader sleeping on their shared doorbell: every frame of every ring arrives in order, with no stall', {
  timeout: 60_000,
}, async (t) => {
  t.diagnostic(`seed ${seed}`);
  const frames = Math.round(60_000 * framesScale);
  const doorbell = createDoorbell();
  const rings = [0, 1, 2].map(() => createRing({ capacityBytes: 4096, frameBytesMax: 1024 }));
  const set = new RingSet(
    rings.map((ring) => new RingReader(ring)),
    doorbell,
  );
  const workers = rings.map((ring, i) =>
    peer({ mode: 'write', ring, frames, seed: seed + i, batchFramesMax: 16, doorbell, pauseMsMax: 3 }),
  );
  try {
    const done = workers.map((w) => firstMessage<{ stats: ReturnType<RingWriter['stats']> }>(w));
    const sizes = [0, 1, 2].map((i) => new Prng(seed + i));
    const read = [0, 0, 0];
    let problem: string | null = null;
    while (read.some((n) => n < frames) && problem === null) {
      if ((await set.waitAsync(waitMs)) !== 'ready') {
        assert.fail(withSeed(`stalled with ${read.join('/')} frames read of ${frames} each`));
      }
      for (let i = 0; i < 3 && problem === null; i++) {
        const reader = set.readers[i]!;
        let batch = 0;
        while (batch < 64 && reader.next()) {
          problem = checkTestPayload(
            reader.bytes,
            reader.view,
            reader.payloadOffset,
            reader.payloadBytes,
            read[i]!,
            nextPayloadBytes(sizes[i]!, reader.payloadBytesMax),
          );
          if (problem !== null) break;
          assert.equal(reader.correlationId, read[i]);
          read[i]!++;
          batch++;
        }
        reader.release();
      }
    }
    assert.equal(problem, null, withSeed(problem ?? ''));
    assert.deepEqual(read, [frames, frames, frames]);
    const stats = await Promise.all(done);
    // The reader slept and was woken through the doorbell (a dropped wake-up would cost a 25 ms slice, counted).
    t.diagnostic(`sleeps ${set.sleeps}, missed wake-ups ${set.missedWakes}`);
    assert.ok(set.sleeps > 10, `the reader should have slept often, it slept ${set.sleeps} times`);
    assert.ok(
      stats.some((s) => s.stats.notifiesSent > 0),
      'writers rang the doorbell',
    );
    assert.ok(set.missedWakes * 10 <= set.sleeps, `missed ${set.missedWakes} of ${set.sleeps} wake-ups`);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
});
