// Idempotent produce on a partition worker (issue 11): a retried batch is answered with its original offsets
// and never appended twice, in the same drained batch, afterwards, and after the worker restarts (the state is
// rebuilt from the log's batch headers); a gap in the sequence, an older epoch and an unknown producer are
// refused with nothing written. Runs a real PartitionWorker on a simulated disk.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Status } from '../../src/messages/status.js';
import { SimDisk } from '../../src/storage/sim-disk.js';
import { HostHarness } from './host-harness.js';

const pid = 42;
const as = (baseSequence: number, producerEpoch = 0, producerId = pid) => ({
  producerId,
  producerEpoch,
  baseSequence,
});

test('a retried idempotent batch gets its original offsets and is written once; gaps, old epochs and unknown producers are refused', async () => {
  const disk = new SimDisk();
  disk.mkdir('/data');
  const harness = new HostHarness(disk, '/data', { cleanShutdown: true });
  try {
    const { ref } = await harness.open('t', 0, 1 << 20);
    assert.equal((await harness.produce(ref, ['plain-0'])).baseOffset, 0);

    const first = await harness.produce(ref, ['a0', 'a1', 'a2'], as(0));
    assert.deepEqual([first.status, first.baseOffset, first.duplicate], [Status.Ok, 1, false]);
    const retry = await harness.produce(ref, ['a0', 'a1', 'a2'], as(0));
    assert.deepEqual([retry.status, retry.baseOffset, retry.duplicate], [Status.Ok, 1, true]);

    const next = await harness.produce(ref, ['a3'], as(3));
    assert.deepEqual([next.status, next.baseOffset, next.duplicate], [Status.Ok, 4, false]);

    const gap = await harness.produce(ref, ['a9'], as(9));
    assert.equal(gap.status, Status.OutOfOrderSequence);
    assert.equal(gap.detail, 4, 'the expected sequence is named');

    const unknown = await harness.produce(ref, ['x'], as(7, 0, 99));
    assert.equal(unknown.status, Status.UnknownProducer);

    // A new epoch starts over at 0 and fences the old one.
    const bumped = await harness.produce(ref, ['b0'], as(0, 1));
    assert.deepEqual([bumped.status, bumped.baseOffset], [Status.Ok, 5]);
    const zombie = await harness.produce(ref, ['a4'], as(4, 0));
    assert.equal(zombie.status, Status.FencedProducerEpoch);
    assert.equal(zombie.detail, 1);

    // The original and its retry in one drained batch: one copy.
    const [x, y] = await Promise.all([
      harness.produce(ref, ['b1', 'b2'], as(1, 1)),
      harness.produce(ref, ['b1', 'b2'], as(1, 1)),
    ]);
    assert.equal(x.status, Status.Ok);
    assert.equal(y.status, Status.Ok);
    assert.equal(x.baseOffset, y.baseOffset);
    assert.equal(x.duplicate !== y.duplicate, true, 'exactly one of the two was appended');

    const values = [...(await harness.readAll(ref)).values()];
    assert.deepEqual(values, ['plain-0', 'a0', 'a1', 'a2', 'a3', 'b0', 'b1', 'b2']);
  } finally {
    await harness.stop();
  }

  // After a restart the state is rebuilt from the log: retries are still recognized, sequences continue.
  const again = new HostHarness(disk, '/data', { cleanShutdown: false });
  try {
    const { ref } = await again.open('t', 0, 1 << 20);
    const retry = await again.produce(ref, ['b1', 'b2'], as(1, 1));
    assert.deepEqual([retry.status, retry.baseOffset, retry.duplicate], [Status.Ok, 6, true]);
    const older = await again.produce(ref, ['a0', 'a1', 'a2'], as(0, 0));
    assert.equal(older.status, Status.FencedProducerEpoch, 'the epoch survives the restart');
    const gap = await again.produce(ref, ['b9'], as(9, 1));
    assert.deepEqual([gap.status, gap.detail], [Status.OutOfOrderSequence, 3]);
    const next = await again.produce(ref, ['b3'], as(3, 1));
    assert.deepEqual([next.status, next.baseOffset, next.duplicate], [Status.Ok, 8, false]);
    assert.equal((await again.readAll(ref)).size, 9);
  } finally {
    await again.stop();
  }
});

test('the last five batches of a producer are recognized as duplicates, older ones are refused as out of order', async () => {
  const disk = new SimDisk();
  disk.mkdir('/data');
  const harness = new HostHarness(disk, '/data', { cleanShutdown: true });
  try {
    const { ref } = await harness.open('t', 0, 1 << 20);
    for (let s = 0; s < 8; s++) {
      assert.equal((await harness.produce(ref, [`v${s}`], as(s))).baseOffset, s);
    }
    for (let s = 3; s < 8; s++) {
      const retry = await harness.produce(ref, [`v${s}`], as(s));
      assert.deepEqual([retry.status, retry.baseOffset, retry.duplicate], [Status.Ok, s, true]);
    }
    const old = await harness.produce(ref, ['v2'], as(2));
    assert.equal(old.status, Status.OutOfOrderSequence);
    assert.equal((await harness.readAll(ref)).size, 8);
  } finally {
    await harness.stop();
  }
});
