// Model-based property test of the frame ring on one thread: random sequences of reserve/commit/cancel/
// publish/read/release with random frame sizes, checked step by step against a queue model. Small capacities
// and counters that start near 2^32 give many wrap-arounds of both the data area and the 32-bit counter words.
// Replay a failure with RING_MODEL_SEED=<seed> (and RING_MODEL_PATH=<path>) printed by fast-check.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { createRing, ReserveFailure, RingReader, RingWriter } from '../../src/ring/spsc-ring.js';

type Op =
  | { op: 'write'; payloadBytes: number; commitShortBy: number; kind: number; flags: number }
  | { op: 'cancel'; payloadBytes: number }
  | { op: 'publish' }
  | { op: 'read'; framesMax: number }
  | { op: 'release' };

interface ModelFrame {
  kind: number;
  flags: number;
  correlationId: number;
  payloadBytes: number;
  /** Bytes the frame takes from the ring, wrap skip included. */
  footprintBytes: number;
}

/** The ring as a queue: written independently of the implementation's index code on purpose. */
class RingModel {
  pending: ModelFrame[] = [];
  published: ModelFrame[] = [];
  consumed: ModelFrame[] = [];
  constructor(
    readonly capacityBytes: number,
    readonly payloadBytesMax: number,
    public headBytes: number,
    public tailBytes: number,
  ) {}

  /** Where a frame of `payloadBytes` would go: skip to the end first when it does not fit before the end. */
  placement(payloadBytes: number): { skipBytes: number; frameBytes: number; frameAt: number } {
    const frameBytes = Math.ceil((16 + payloadBytes) / 8) * 8;
    const at = this.headBytes % this.capacityBytes;
    const toEnd = this.capacityBytes - at;
    return frameBytes <= toEnd
      ? { skipBytes: 0, frameBytes, frameAt: at }
      : { skipBytes: toEnd, frameBytes, frameAt: 0 };
  }

  fits(payloadBytes: number): boolean {
    const { skipBytes, frameBytes } = this.placement(payloadBytes);
    return skipBytes + frameBytes <= this.capacityBytes - (this.headBytes - this.tailBytes);
  }
}

function fillPayload(bytes: Uint8Array, offset: number, length: number, correlationId: number): void {
  for (let i = 0; i < length; i++) bytes[offset + i] = (correlationId * 31 + i * 7) & 0xff;
}

function checkPayload(bytes: Uint8Array, offset: number, length: number, correlationId: number): void {
  for (let i = 0; i < length; i++) {
    const expected = (correlationId * 31 + i * 7) & 0xff;
    if (bytes[offset + i] !== expected) {
      assert.fail(`frame ${correlationId}: payload byte ${i} is ${bytes[offset + i]}, expected ${expected}`);
    }
  }
}

const totals = { wraps: 0, fulls: 0, tooLarge: 0, framesRead: 0 };

function run(capacityBytes: number, frameBytesMax: number, counterStartBytes: number, ops: Op[]): void {
  const buffer = createRing({ capacityBytes, frameBytesMax, counterStartBytes });
  const writer = new RingWriter(buffer);
  const reader = new RingReader(buffer);
  const start = counterStartBytes % 2 ** 32;
  const model = new RingModel(capacityBytes, writer.payloadBytesMax, start, start);
  let nextCorrelationId = 1;

  for (const step of ops) {
    switch (step.op) {
      case 'write': {
        const offset = writer.reserve(step.payloadBytes);
        if (step.payloadBytes > model.payloadBytesMax) {
          assert.equal(offset, ReserveFailure.tooLarge, 'an oversized payload is refused as tooLarge');
          totals.tooLarge++;
          break;
        }
        if (!model.fits(step.payloadBytes)) {
          assert.equal(
            offset,
            ReserveFailure.full,
            'reserve reports full exactly when the model has no room',
          );
          totals.fulls++;
          break;
        }
        const placement = model.placement(step.payloadBytes);
        assert.equal(
          offset,
          placement.frameAt + 16,
          'the payload sits right after the header at the model position',
        );
        const written = Math.max(0, step.payloadBytes - step.commitShortBy);
        const correlationId = nextCorrelationId++;
        fillPayload(writer.bytes, offset, written, correlationId);
        writer.commit(step.kind, correlationId, written, step.flags);
        if (placement.skipBytes > 0) totals.wraps++;
        const frameBytes = Math.ceil((16 + written) / 8) * 8;
        const footprintBytes = placement.skipBytes + frameBytes;
        model.headBytes += footprintBytes;
        model.pending.push({
          kind: step.kind,
          flags: step.flags,
          correlationId,
          payloadBytes: written,
          footprintBytes,
        });
        break;
      }
      case 'cancel': {
        const offset = writer.reserve(step.payloadBytes);
        if (offset >= 0) writer.cancel();
        else
          assert.equal(model.fits(step.payloadBytes), false, 'reserve refused although the model has room');
        break;
      }
      case 'publish': {
        const published = writer.publish();
        assert.equal(published, model.pending.length > 0, 'publish reports whether anything was pending');
        model.published.push(...model.pending);
        model.pending = [];
        break;
      }
      case 'read': {
        assert.equal(reader.hasFrames(), model.published.length > 0, 'hasFrames agrees with the model');
        const expectedCount = Math.min(step.framesMax, model.published.length);
        const seen: ModelFrame[] = [];
        const count = reader.drain((kind, correlationId, payloadOffset, payloadBytes, flags) => {
          checkPayload(reader.bytes, payloadOffset, payloadBytes, correlationId);
          seen.push({ kind, flags, correlationId, payloadBytes, footprintBytes: 0 });
        }, step.framesMax);
        assert.equal(count, expectedCount, 'drain visits min(framesMax, published) frames');
        const expected = model.published.splice(0, count);
        assert.deepEqual(
          seen,
          expected.map((f) => ({ ...f, footprintBytes: 0 })),
          'frames come out as written, in order',
        );
        model.consumed.push(...expected);
        totals.framesRead += count;
        break;
      }
      case 'release': {
        const released = reader.release();
        assert.equal(released, model.consumed.length > 0, 'release reports whether anything was consumed');
        for (const frame of model.consumed) model.tailBytes += frame.footprintBytes;
        model.consumed = [];
        const unreleased = [...model.pending, ...model.published];
        assert.equal(
          reader.stats().occupancyBytes,
          model.published.reduce((sum, f) => sum + f.footprintBytes, 0),
          `occupancy counts published, unreleased bytes (${unreleased.length} frames behind)`,
        );
        break;
      }
    }
  }
}

const opArb = (payloadBytesLimit: number): fc.Arbitrary<Op> =>
  fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        op: fc.constant('write' as const),
        payloadBytes: fc.oneof(
          { weight: 8, arbitrary: fc.integer({ min: 0, max: payloadBytesLimit }) },
          { weight: 1, arbitrary: fc.integer({ min: payloadBytesLimit + 1, max: payloadBytesLimit + 64 }) },
        ),
        commitShortBy: fc.oneof(
          { weight: 5, arbitrary: fc.constant(0) },
          { weight: 1, arbitrary: fc.nat(40) },
        ),
        kind: fc.integer({ min: 0, max: 0xffff }),
        flags: fc.integer({ min: 0, max: 0xffff }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ op: fc.constant('cancel' as const), payloadBytes: fc.nat(payloadBytesLimit) }),
    },
    { weight: 3, arbitrary: fc.constant({ op: 'publish' as const }) },
    {
      weight: 3,
      arbitrary: fc.record({ op: fc.constant('read' as const), framesMax: fc.integer({ min: 1, max: 8 }) }),
    },
    { weight: 2, arbitrary: fc.constant({ op: 'release' as const }) },
  );

const scenarioArb = fc
  .record({
    capacityBytes: fc.constantFrom(256, 512, 1024),
    frameShare: fc.constantFrom(4, 8),
    counterStartBytes: fc.constantFrom(0, 2 ** 32 - 8, 2 ** 32 - 1024, 2 ** 32 - 4096 + 136),
  })
  .chain(({ capacityBytes, frameShare, counterStartBytes }) => {
    const frameBytesMax = capacityBytes / frameShare;
    return fc.record({
      capacityBytes: fc.constant(capacityBytes),
      frameBytesMax: fc.constant(frameBytesMax),
      counterStartBytes: fc.constant(counterStartBytes),
      ops: fc.array(opArb(frameBytesMax - 16), { minLength: 1, maxLength: 400, size: 'max' }),
    });
  });

function replayOptions(): { seed?: number; path?: string } {
  const seed = process.env.RING_MODEL_SEED;
  const path = process.env.RING_MODEL_PATH;
  return { ...(seed === undefined ? {} : { seed: Number(seed) }), ...(path === undefined ? {} : { path }) };
}

test('frames read equal frames written, in order, and full is reported exactly when the model has no room', () => {
  fc.assert(
    fc.property(scenarioArb, ({ capacityBytes, frameBytesMax, counterStartBytes, ops }) => {
      run(capacityBytes, frameBytesMax, counterStartBytes, ops);
    }),
    { numRuns: 1000, ...replayOptions() },
  );
  console.log('# ring model totals', JSON.stringify(totals));
  // The property is only as strong as the paths it took: make sure it wrapped, filled up and refused.
  assert.ok(totals.wraps > 3000, `too few wrap-arounds exercised: ${totals.wraps}`);
  assert.ok(totals.fulls > 3000, `too few full events exercised: ${totals.fulls}`);
  assert.ok(totals.tooLarge > 100, `too few oversized frames exercised: ${totals.tooLarge}`);
  assert.ok(totals.framesRead > 30_000, `too few frames read: ${totals.framesRead}`);
});

test('a ring refuses geometries that break its invariants, reporting every problem', () => {
  assert.throws(() => createRing({ capacityBytes: 1000 }), /power of two/);
  assert.throws(() => createRing({ capacityBytes: 1024, frameBytesMax: 512 }), /capacityBytes \/ 4/);
  assert.throws(
    () => createRing({ capacityBytes: 100, frameBytesMax: 7 }),
    /capacityBytes must be.*frameBytesMax/,
  );
});

test('each side of a ring can be attached only once', () => {
  const buffer = createRing({ capacityBytes: 1024 });
  new RingWriter(buffer);
  new RingReader(buffer);
  assert.throws(() => new RingWriter(buffer), /taken/);
  assert.throws(() => new RingReader(buffer), /taken/);
});

test('the blocking waits refuse to run on the main thread', () => {
  const buffer = createRing({ capacityBytes: 1024 });
  const writer = new RingWriter(buffer);
  const reader = new RingReader(buffer);
  assert.throws(() => reader.waitSync(0), /main thread/);
  assert.throws(() => writer.waitForSpaceSync(8, 0), /main thread/);
});

test('waitAsync times out on an empty ring and resolves ready once a batch is published', async () => {
  const buffer = createRing({ capacityBytes: 1024 });
  const writer = new RingWriter(buffer);
  const reader = new RingReader(buffer);
  assert.equal(await reader.waitAsync(0), 'timed-out');
  // Keep the event loop alive while the wait is pending: a pending Atomics.waitAsync is not a handle.
  const keepAlive = setInterval(() => {}, 1000);
  try {
    assert.equal(await reader.waitAsync(5), 'timed-out');
    const waiting = reader.waitAsync(10_000);
    const offset = writer.reserve(3);
    writer.bytes.set([1, 2, 3], offset);
    writer.commit(7, 42);
    assert.equal(writer.publish(), true);
    assert.equal(await waiting, 'ready');
    assert.equal(writer.stats().notifiesSent, 1, 'one notify woke the sleeping reader');
    assert.equal(reader.next(), true);
    assert.deepEqual([reader.kind, reader.correlationId, reader.payloadBytes], [7, 42, 3]);
    assert.deepEqual([...reader.bytes.subarray(reader.payloadOffset, reader.payloadOffset + 3)], [1, 2, 3]);
  } finally {
    clearInterval(keepAlive);
  }
});

test('waitForSpace resolves once the reader releases enough room', async () => {
  const buffer = createRing({ capacityBytes: 256 });
  const writer = new RingWriter(buffer);
  const reader = new RingReader(buffer);
  let written = 0;
  while (writer.reserve(40) >= 0) {
    writer.commit(1, written++);
  }
  assert.equal(writer.reserve(40), ReserveFailure.full);
  const keepAlive = setInterval(() => {}, 1000);
  try {
    assert.equal(await writer.waitForSpace(40, 5), 'timed-out', 'no room appears while nobody reads');
    const waiting = writer.waitForSpace(40, 10_000);
    assert.equal(reader.next(), true);
    reader.release();
    assert.equal(await waiting, 'ready');
    assert.equal(reader.stats().notifiesSent, 1, 'one notify woke the waiting writer');
    assert.ok(writer.reserve(40) >= 0);
  } finally {
    clearInterval(keepAlive);
  }
});
