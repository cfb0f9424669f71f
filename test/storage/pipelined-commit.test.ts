// The pipelined group commit at the storage layer (issue 12): a partition log appended to while its data sync
// runs off the thread. A sync vouches only for what was written before it began; a failed one cuts the log
// back past the later appends too; a roll during the sync is safe when it succeeds and breaks the log when it
// fails (the error may have reached that sync alone); cuts and closes wait for the sync (asserted); and the
// descriptor cache keeps a syncing descriptor open under eviction pressure, still dirty if written meanwhile.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AssertionError } from '../../src/core/assert.js';
import { forEachRecord } from '../../src/core/log/record-batch.js';
import { createPrng } from '../../src/core/prng.js';
import { crc32 } from '../../src/storage/crc.js';
import { DescriptorCache } from '../../src/storage/descriptor-cache.js';
import { DEFAULT_LOG_CONFIG, type LogConfig, PartitionLog } from '../../src/storage/partition-log.js';
import { SimDisk } from '../../src/storage/sim-disk.js';
import { appendValue as append } from './helpers.js';

const config: LogConfig = {
  ...DEFAULT_LOG_CONFIG,
  segmentBytes: 600,
  maxBatchBytes: 300,
  indexIntervalBytes: 100,
};

function values(log: PartitionLog): string[] {
  const out: string[] = [];
  for (let offset = log.logStartOffset; offset < log.logEndOffset; offset++) {
    const result = log.read(offset, 1);
    assert.equal(result.kind, 'ok');
    if (result.kind !== 'ok') continue;
    forEachRecord(
      result.bytes,
      (r) => {
        if (r.offset === offset) out.push(new TextDecoder().decode(r.value!));
      },
      { fromOffset: offset, crc32 },
    );
  }
  return out;
}

function setUp(capacity = 64): { disk: SimDisk; cache: DescriptorCache; log: PartitionLog } {
  const disk = new SimDisk();
  disk.mkdir('/data');
  const cache = new DescriptorCache(disk, capacity);
  return { disk, cache, log: PartitionLog.open('/data/p0', config, cache, 1) };
}

describe('a partition log appended to while its sync runs', () => {
  test('the sync vouches for what came before it; the next one for the rest; a power loss keeps both', async () => {
    const { disk, cache, log } = setUp();
    append(log, 'a');
    append(log, 'b');
    const first = log.flushStart();
    assert.equal(log.syncing, true);
    const running = cache.fdatasyncEach([first.fd!]);
    append(log, 'c'); // the next batch, written while the first sync runs
    const errors = await running;
    assert.equal(log.flushFinish(first, errors[0]).kind, 'ok');
    assert.equal(log.syncing, false);
    assert.equal(log.flushedOffset, 2, 'durable up to where the sync began, not to the end');
    assert.equal(log.logEndOffset, 3);
    const second = log.flushStart();
    assert.equal(log.flushFinish(second, (await cache.fdatasyncEach([second.fd!]))[0]).kind, 'ok');
    assert.equal(log.flushedOffset, 3);
    disk.crash(createPrng(1));
    const reopened = PartitionLog.open('/data/p0', config, new DescriptorCache(disk, 8), 2);
    assert.deepEqual(values(reopened), ['a', 'b', 'c']);
  });

  test('an append written during a sync is not durable by it: a power loss before the next sync may drop it', async () => {
    const { disk, cache, log } = setUp();
    append(log, 'a');
    const first = log.flushStart();
    const running = cache.fdatasyncEach([first.fd!]);
    append(log, 'b');
    assert.equal(log.flushFinish(first, (await running)[0]).kind, 'ok');
    assert.equal(log.flushedOffset, 1);
    // SimDisk's crash drops every unsynced write: only what the sync vouched for is left.
    disk.crash(createPrng(2));
    const reopened = PartitionLog.open('/data/p0', config, new DescriptorCache(disk, 8), 2);
    assert.deepEqual(values(reopened).slice(0, 1), ['a']);
    assert.ok(reopened.logEndOffset <= 2);
  });

  test('a failed sync cuts the log back to its last durable end, past the appends made during it', async () => {
    const { disk, cache, log } = setUp();
    append(log, 'durable');
    assert.equal(log.flush().kind, 'ok');
    append(log, 'x');
    const pending = log.flushStart();
    disk.failSyncs(1, 'EIO');
    const running = cache.fdatasyncEach([pending.fd!]);
    append(log, 'y');
    append(log, 'z');
    const errors = await running;
    assert.ok(errors[0] !== undefined);
    const result = log.flushFinish(pending, errors[0]);
    assert.equal(result.kind, 'storage_failed');
    if (result.kind === 'storage_failed') assert.equal(result.definite, true);
    assert.equal(log.logEndOffset, 1, 'the synced-in-flight and the later records are gone');
    assert.equal(log.flushedOffset, 1);
    assert.deepEqual(values(log), ['durable']);
    // The log goes on from the cut.
    append(log, 'after');
    assert.equal(log.flush().kind, 'ok');
    assert.deepEqual(values(log), ['durable', 'after']);
    log.close();
  });

  test('a roll during the sync: a success counts, the rolled segment stays durable', async () => {
    const { disk, cache, log } = setUp();
    append(log, 'first');
    const pending = log.flushStart();
    const running = cache.fdatasyncEach([pending.fd!]);
    const before = log.segmentCount;
    let n = 0;
    while (log.segmentCount === before) append(log, `fill-${n++}-${'.'.repeat(80)}`);
    assert.equal(log.flushFinish(pending, (await running)[0]).kind, 'ok');
    assert.ok(log.flushedOffset >= 1);
    assert.equal(log.flush().kind, 'ok');
    assert.equal(log.flushedOffset, log.logEndOffset);
    const expected = values(log);
    disk.crash(createPrng(3));
    const reopened = PartitionLog.open('/data/p0', config, new DescriptorCache(disk, 8), 2);
    assert.deepEqual(values(reopened), expected);
  });

  test('a roll during a sync that fails: the log is broken (indefinite), nothing later is trusted', async () => {
    const { disk, cache, log } = setUp();
    append(log, 'first');
    const pending = log.flushStart();
    disk.failSyncs(1, 'EIO');
    const running = cache.fdatasyncEach([pending.fd!]);
    const errors = await running;
    // The roll's own sync of the old segment succeeds (the error was reported to the other sync).
    const before = log.segmentCount;
    let n = 0;
    while (log.segmentCount === before) append(log, `fill-${n++}-${'.'.repeat(80)}`);
    const result = log.flushFinish(pending, errors[0]);
    assert.equal(result.kind, 'storage_failed');
    if (result.kind === 'storage_failed') assert.equal(result.definite, false);
    assert.notEqual(log.broken, null);
  });

  test('cuts, resets, retention and close wait for the sync: called during one, they are bugs (asserted)', async () => {
    const { cache, log } = setUp();
    append(log, 'a');
    append(log, 'b');
    const pending = log.flushStart();
    assert.throws(() => log.truncateTo(1), AssertionError);
    assert.throws(() => log.resetTo(5), AssertionError);
    assert.throws(() => log.applyRetention(Date.now()), AssertionError);
    assert.throws(() => log.deleteRecordsBefore(1), AssertionError);
    assert.throws(() => log.close(), AssertionError);
    assert.throws(() => log.flushStart(), AssertionError);
    assert.equal(log.flushFinish(pending, (await cache.fdatasyncEach([pending.fd!]))[0]).kind, 'ok');
    assert.equal(log.truncateTo(1).kind, 'ok');
    assert.equal(log.close(), null);
  });
});

describe('the descriptor cache during a sync on the pool', () => {
  test('a syncing descriptor is never closed for room, and stays dirty when written meanwhile', async () => {
    const disk = new SimDisk();
    disk.mkdir('/data');
    // Three descriptors for six logs of three files each: every write by another log evicts something.
    const cache = new DescriptorCache(disk, 3);
    const logs: PartitionLog[] = [];
    for (let p = 0; p < 6; p++) logs.push(PartitionLog.open(`/data/p${p}`, config, cache, 1));
    const target = logs[0]!;
    append(target, 'synced');
    const pending = target.flushStart();
    const running = cache.fdatasyncEach([pending.fd!]);
    append(target, 'written-during-sync');
    // Pressure on the cache while the sync runs: every other log writes, evicting least recently used files.
    for (const [p, log] of logs.entries()) if (p > 0) append(log, `other-${p}`);
    cache.assertBound();
    const errors = await running; // asserts inside that the descriptor stayed open
    assert.equal(errors[0], undefined);
    assert.equal(target.flushFinish(pending, errors[0]).kind, 'ok');
    assert.equal(target.flushedOffset, 1);
    // Evict the target's files now: its unsynced write must be synced on the way out (it stayed dirty).
    for (let round = 0; round < 2; round++)
      for (const [p, log] of logs.entries()) if (p > 0) append(log, `more-${p}-${round}`);
    const evictionsBefore = cache.evictions;
    assert.ok(evictionsBefore > 0);
    disk.crash(createPrng(4));
    const reopened = PartitionLog.open('/data/p0', config, new DescriptorCache(disk, 8), 2);
    assert.deepEqual(values(reopened), ['synced', 'written-during-sync']);
  });

  test('closing a file whose sync runs is a bug (asserted)', async () => {
    const disk = new SimDisk();
    disk.mkdir('/data');
    const cache = new DescriptorCache(disk, 8);
    const fd = cache.open('/data/f', true);
    cache.write(fd, new Uint8Array([1, 2, 3]), 0);
    const running = cache.fdatasyncEach([fd]);
    assert.throws(() => cache.close(fd), AssertionError);
    await running;
    cache.close(fd);
  });
});
