// A fetch bounded by a count of records (an HTTP consume's `limit`): the partition worker reads and checks no
// batch whose base offset is past the offset it resolved plus the count, however many bytes `max_bytes` allows,
// so a consume of 100 single-record batches does not read a megabyte of them. Real worker thread, simulated disk.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FETCH_EARLIEST, fetchOffsetBound, fetchRecordsBound } from '../../src/messages/fetch.js';
import { Status } from '../../src/messages/status.js';
import { SimDisk } from '../../src/storage/sim-disk.js';
import { HostHarness } from './host-harness.js';

test('the records bound is read as an offset bound from the resolved offset, and no bound stays none', () => {
  assert.equal(fetchOffsetBound(fetchRecordsBound(100), 250), 350);
  assert.equal(fetchOffsetBound(fetchRecordsBound(1), 0), 1);
  assert.equal(fetchOffsetBound(42, 7), 42);
  assert.equal(fetchOffsetBound(-1, 7), Number.POSITIVE_INFINITY);
  assert.throws(() => fetchRecordsBound(0), /at least 1/);
});

test('a fetch bounded by 10 records reads 10 single-record batches, not the megabyte its max_bytes allows', {
  timeout: 30_000,
}, async () => {
  const harness = new HostHarness(new SimDisk());
  try {
    const { ref } = await harness.open('bounded', 0, 64 * 1024 * 1024);
    for (let i = 0; i < 300; i++) {
      const answer = await harness.produce(ref, [`v${i}`]);
      assert.equal(answer.status, Status.Ok);
    }
    const unbounded = await harness.fetch(ref, 0, 1 << 20);
    assert.equal(unbounded.records.size, 300, 'without a bound every batch within max_bytes comes back');
    const bounded = await harness.fetch(ref, 20, 1 << 20, fetchRecordsBound(10));
    assert.equal(bounded.status, Status.Ok);
    assert.deepEqual(
      [...bounded.records.keys()],
      Array.from({ length: 10 }, (_, i) => 20 + i),
    );
    assert.equal(bounded.records.get(29), 'v29');
    // From 'earliest', resolved by the worker: the bound counts from the resolved offset.
    const earliest = await harness.fetch(ref, FETCH_EARLIEST, 1 << 20, fetchRecordsBound(5));
    assert.equal(earliest.status, Status.Ok);
    assert.equal(earliest.records.size, 5);
    // A bound past the high watermark reads up to it.
    const tail = await harness.fetch(ref, 295, 1 << 20, fetchRecordsBound(100));
    assert.deepEqual([...tail.records.keys()], [295, 296, 297, 298, 299]);
  } finally {
    await harness.stop();
  }
});
