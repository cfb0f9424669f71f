// The per-worker segment descriptor cache (issue 10, item 6): however many partitions a worker serves, it never
// holds more real descriptors than its bound, the logs behind it read back exactly what they wrote, a
// descriptor with unsynced writes is synced before it is closed for room, and a sync that fails then reaches
// the log that owns the file at its next flush.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
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

function valueAt(log: PartitionLog, offset: number): string | null {
  const result = log.read(offset, 1);
  assert.equal(result.kind, 'ok');
  let found: string | null = null;
  if (result.kind === 'ok') {
    forEachRecord(
      result.bytes,
      (r) => {
        if (r.offset === offset) found = new TextDecoder().decode(r.value!);
      },
      { fromOffset: offset, crc32 },
    );
  }
  return found;
}

describe('the segment descriptor cache', () => {
  test('never holds more real descriptors than its bound, and reports each change of their number, while 60 partitions are written, read, rolled and reopened', () => {
    const sim = new SimDisk();
    sim.mkdir('/data');
    const capacity = 9;
    // The count the worker publishes for the connection guard: reported at every change, never at a turn's end.
    let reported = -1;
    let reports = 0;
    const cache = new DescriptorCache(sim, capacity, (open) => {
      reported = open;
      reports++;
    });
    const rng = createPrng(3);
    const logs: PartitionLog[] = [];
    const model: string[][] = [];
    for (let p = 0; p < 60; p++) {
      logs.push(PartitionLog.open(`/data/t-${p}`, config, cache, 0));
      model.push([]);
      assert.ok(sim.openDescriptors <= capacity, `after opening partition ${p}: ${sim.openDescriptors}`);
      assert.equal(reported, cache.openDescriptors, `the reported count after opening partition ${p}`);
    }
    for (let step = 0; step < 4000; step++) {
      const p = rng.nextInt(logs.length);
      const log = logs[p]!;
      const action = rng.nextInt(10);
      if (action < 5) {
        const value = `p${p}-${model[p]!.length}-${'v'.repeat(rng.nextInt(80))}`;
        assert.equal(append(log, value), model[p]!.length);
        model[p]!.push(value);
        if (rng.nextInt(2) === 0) assert.equal(log.flush().kind, 'ok');
      } else if (action < 9 && model[p]!.length > 0) {
        const offset = rng.nextInt(model[p]!.length);
        assert.equal(valueAt(log, offset), model[p]![offset], `partition ${p} offset ${offset}`);
      } else {
        // Close cleanly and reopen: the recovery reads go through the cache as well.
        assert.equal(log.close(), null);
        logs[p] = PartitionLog.open(`/data/t-${p}`, config, cache, 0);
      }
      cache.assertBound();
      assert.ok(sim.openDescriptors <= capacity, `step ${step}: ${sim.openDescriptors} real descriptors`);
      assert.equal(reported, cache.openDescriptors, `step ${step}: the reported count is the real one`);
      assert.equal(reported, sim.openDescriptors, `step ${step}: every real descriptor is the cache's`);
    }
    assert.ok(reports > cache.evictions, 'opens, evictions and closes were each reported');
    assert.ok(cache.evictions > 1000, `descriptors were recycled (${cache.evictions} evictions)`);
    assert.ok(cache.openFiles > 60 * 3, 'every log holds its files open through virtual descriptors');
    for (let p = 0; p < logs.length; p++) {
      for (let offset = 0; offset < model[p]!.length; offset++) {
        assert.equal(valueAt(logs[p]!, offset), model[p]![offset]);
      }
    }
  });

  test('an unsynced descriptor is synced before it is closed for room; a failed sync is thrown by the next one', () => {
    const sim = new SimDisk();
    sim.mkdir('/data');
    const cache = new DescriptorCache(sim, 2);
    const f1 = cache.open('/data/f1', true);
    cache.write(f1, new Uint8Array([1, 2, 3]), 0);
    cache.open('/data/f2', true);
    const syncs = sim.syncCount;
    cache.open('/data/f3', true); // room is made by closing f1, the least recently used
    assert.equal(sim.syncCount, syncs + 1, 'the dirty descriptor was synced before it was closed');
    sim.crash(createPrng(1), { keepDirOpProbability: 1 });
    assert.deepEqual([...sim.fileBytes('/data/f1')], [1, 2, 3], 'so its bytes survive a power loss');

    const sim2 = new SimDisk();
    sim2.mkdir('/data');
    const cache2 = new DescriptorCache(sim2, 2);
    const g1 = cache2.open('/data/g1', true);
    cache2.write(g1, new Uint8Array([9]), 0);
    cache2.open('/data/g2', true);
    sim2.failSyncs(1, 'EIO');
    cache2.open('/data/g3', true);
    assert.throws(() => cache2.fdatasync(g1), /EIO/, 'the failure of the forced sync reaches the owner');
    cache2.fdatasync(g1);
  });

  test('a log whose segment descriptor failed its forced sync learns it at its next flush and cuts back', () => {
    const sim = new SimDisk();
    sim.mkdir('/data');
    const cache = new DescriptorCache(sim, 3);
    const log = PartitionLog.open('/data/a-0', config, cache, 0);
    append(log, 'synced');
    assert.equal(log.flush().kind, 'ok');
    append(log, 'unsynced');
    // Three more files push the log's three descriptors out, its segment file last (it was used last).
    cache.open('/data/x', true);
    cache.open('/data/y', true);
    sim.failSyncs(1, 'EIO');
    cache.open('/data/z', true);
    const flushed = log.flush();
    assert.equal(flushed.kind, 'storage_failed');
    if (flushed.kind === 'storage_failed') {
      assert.equal(flushed.fault.code, 'EIO');
      assert.equal(flushed.definite, true);
    }
    assert.equal(log.logEndOffset, 1, 'the record whose sync failed is gone; the synced one stays');
    assert.equal(valueAt(log, 0), 'synced');
    log.close();
  });
});

describe('the group commit of many files through the cache', () => {
  for (const capacity of [8, 64]) {
    // With 8 descriptors for 20 logs the group is synced 4 files at a time (evicting the others, which syncs
    // them too); with 64 every file is open and the one failure injected is the group's 5th sync.
    const failing = capacity === 64;
    test(`${capacity} descriptors: every file synced within the bound${failing ? ', a failed sync cuts back its log alone' : ''}; durable after a power loss`, async () => {
      const disk = new SimDisk();
      disk.mkdir('/data');
      const cache = new DescriptorCache(disk, capacity);
      const logs: PartitionLog[] = [];
      for (let p = 0; p < 20; p++) logs.push(PartitionLog.open(`/data/p${p}`, config, cache, 1));
      for (let round = 0; round < 3; round++) {
        for (const [p, log] of logs.entries()) append(log, `r${round}-p${p}`);
        const pending = logs.map((log) => log.flushStart());
        assert.ok(
          pending.every((f) => f.fd !== null),
          'every log has unsynced data',
        );
        if (failing) disk.failSyncs(1, 'EIO', 4);
        const errors = await cache.fdatasyncEach(pending.map((f) => f.fd!));
        cache.assertBound();
        assert.deepEqual(
          errors.flatMap((e, p) => (e === undefined ? [] : [p])),
          failing ? [4] : [],
        );
        for (const [p, log] of logs.entries()) {
          const result = log.flushFinish(pending[p]!, errors[p]);
          assert.equal(result.kind, failing && p === 4 ? 'storage_failed' : 'ok', `log ${p}`);
          assert.equal(log.flushedOffset, log.logEndOffset, `log ${p}: durable to its end`);
        }
        if (failing) {
          assert.equal(logs[4]!.logEndOffset, round, 'the failed batch is cut away');
          append(logs[4]!, `r${round}-p4`);
          assert.equal(logs[4]!.flush().kind, 'ok');
        }
      }
      // Only what was synced survives a power loss, and that is everything.
      disk.crash(createPrng(3));
      for (let p = 0; p < 20; p++) {
        const log = PartitionLog.open(`/data/p${p}`, config, new DescriptorCache(disk, 8), 2);
        assert.equal(log.logEndOffset, 3, `log ${p} after the crash`);
        for (let round = 0; round < 3; round++) assert.equal(valueAt(log, round), `r${round}-p${p}`);
      }
    });
  }
});
