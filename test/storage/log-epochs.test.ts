// The log's leader-epoch cache and its checkpoint: epochs recorded from the batches appended (as leader or as
// follower), kept across a clean reopen, rebuilt from the batch headers after a crash, cut with truncations
// (also at the log end), moved with the log start, emptied by a reset, and seeded from the first batch of a log
// written before epochs were kept. Random crashes never leave a cache that disagrees with the batches.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BatchField, readInt32 } from '../../src/core/log/record-batch.js';
import { createPrng } from '../../src/core/prng.js';
import { EpochCache } from '../../src/core/replication/epoch-cache.js';
import {
  DEFAULT_LOG_CONFIG,
  EPOCHS_FILE,
  type LogConfig,
  PartitionLog,
} from '../../src/storage/partition-log.js';
import { SimDisk } from '../../src/storage/sim-disk.js';
import { encodeBatches, type ModelRecord, testSeed } from './helpers.js';

const small: LogConfig = {
  ...DEFAULT_LOG_CONFIG,
  segmentBytes: 2000,
  maxBatchBytes: 1000,
  indexIntervalBytes: 150,
};

function records(n: number, ts = 1): ModelRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    timestampMs: ts + i,
    key: null,
    value: new Uint8Array(30).fill(i),
    headers: [],
  }));
}

function appendAt(log: PartitionLog, epoch: number, n: number): void {
  const result = log.append(encodeBatches([records(n)]), {
    assignOffsets: true,
    leaderEpoch: epoch,
    nowMs: 0,
  });
  assert.equal(result.kind, 'ok');
}

/** The epochs the batches themselves carry, as (epoch, first offset of that epoch) pairs. */
function epochsInBatches(log: PartitionLog): { epoch: number; startOffset: number }[] {
  const out: { epoch: number; startOffset: number }[] = [];
  let offset = log.logStartOffset;
  while (offset < log.logEndOffset) {
    const read = log.read(offset, 1 << 20);
    assert.equal(read.kind, 'ok');
    if (read.kind !== 'ok') break;
    let pos = 0;
    while (pos < read.bytes.length) {
      const epoch = readInt32(read.bytes, pos + BatchField.partitionLeaderEpoch);
      const base = Number(new DataView(read.bytes.buffer, read.bytes.byteOffset + pos).getBigInt64(0));
      if (base >= offset && (out.at(-1)?.epoch ?? -1) < epoch) {
        out.push({ epoch, startOffset: Math.max(base, log.logStartOffset) });
      }
      pos += 12 + readInt32(read.bytes, pos + BatchField.batchLength);
    }
    offset = read.nextOffset;
  }
  return out;
}

test('epochs come from appended batches, survive a clean reopen, and follow truncations and resets', () => {
  const disk = new SimDisk();
  const epochs = new EpochCache();
  let log = PartitionLog.open('/d/e-0', small, disk, 0, { epochs });
  appendAt(log, 0, 3);
  appendAt(log, 0, 2);
  appendAt(log, 2, 4);
  appendAt(log, 5, 1);
  assert.deepEqual(epochs.entries(), [
    { epoch: 0, startOffset: 0 },
    { epoch: 2, startOffset: 5 },
    { epoch: 5, startOffset: 9 },
  ]);
  log.close();
  const reopened = new EpochCache();
  log = PartitionLog.open('/d/e-0', small, disk, 0, { epochs: reopened });
  assert.deepEqual(reopened.entries(), epochs.entries(), 'the same cache after a clean reopen');
  assert.equal(log.epochs, reopened, 'the log keeps the cache it was given');
  log.truncateTo(9);
  assert.deepEqual(reopened.entries(), [
    { epoch: 0, startOffset: 0 },
    { epoch: 2, startOffset: 5 },
  ]);
  // A leader that recorded its epoch at the log end and wrote nothing: cut without cutting records.
  reopened.assign(7, log.logEndOffset);
  log.truncateTo(log.logEndOffset);
  assert.equal(reopened.latestEpoch, 2);
  log.resetTo(40);
  assert.deepEqual([log.logStartOffset, log.logEndOffset, reopened.size], [40, 40, 0]);
  appendAt(log, 9, 2);
  log.close();
  const after = new EpochCache();
  log = PartitionLog.open('/d/e-0', small, disk, 0, { epochs: after });
  assert.deepEqual(after.entries(), [{ epoch: 9, startOffset: 40 }]);
  assert.deepEqual([log.logStartOffset, log.logEndOffset], [40, 42]);
});

test('a log without an epoch checkpoint (written before epochs were kept) is seeded from its first batch', () => {
  const disk = new SimDisk();
  let log = PartitionLog.open('/d/e-1', small, disk, 0);
  appendAt(log, 0, 5);
  log.close();
  disk.unlink(`/d/e-1/${EPOCHS_FILE}`);
  log = PartitionLog.open('/d/e-1', small, disk, 0);
  assert.deepEqual(log.epochs.entries(), [{ epoch: 0, startOffset: 0 }]);
});

test('after random crashes the epoch cache always agrees with the surviving batches', () => {
  const seed = testSeed();
  const rng = createPrng(seed);
  for (let round = 0; round < 60; round++) {
    const disk = new SimDisk();
    let log = PartitionLog.open('/d/e-2', small, disk, 0, { recoveryCheckpointIntervalBytes: 300 });
    let epoch = 0;
    for (let step = 0; step < 40; step++) {
      const r = rng.nextFloat();
      if (r < 0.2) epoch += 1 + rng.nextInt(2);
      if (r < 0.1 && log.logEndOffset > log.logStartOffset) {
        log.truncateTo(log.logStartOffset + rng.nextInt(log.logEndOffset - log.logStartOffset + 1));
      } else {
        appendAt(log, epoch, 1 + rng.nextInt(4));
      }
      if (rng.nextFloat() < 0.3) log.flush();
      if (rng.nextFloat() < 0.08) {
        log.abandon();
        disk.crash(rng, { flipProbability: 0 });
        log = PartitionLog.open('/d/e-2', small, disk, 0, { recoveryCheckpointIntervalBytes: 300 });
        epoch = Math.max(epoch, log.epochs.latestEpoch);
      }
      assert.deepEqual(
        log.epochs.entries(),
        epochsInBatches(log),
        `seed ${seed} round ${round} step ${step}`,
      );
    }
  }
});
