// PartitionLog behaviour beyond the model test: index and timestamp lookups against a brute-force model,
// rolling, retention, record deletion across reopen, the group-commit sync policy, read bounds, index
// rebuilds and the cost of recovery.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { floorSearch, OffsetIndex, TimeIndex } from '../../src/core/log/segment-index.js';
import { createPrng } from '../../src/core/prng.js';
import { RealDisk } from '../../src/storage/disk.js';
import { DEFAULT_LOG_CONFIG, type LogConfig, PartitionLog } from '../../src/storage/partition-log.js';
import { SimDisk } from '../../src/storage/sim-disk.js';
import { decodeAll, encodeBatches, type ModelRecord, randomRecord, readAll, testSeed } from './helpers.js';

let root = '';
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'storage-log-'));
});
after(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

const small: LogConfig = {
  ...DEFAULT_LOG_CONFIG,
  segmentBytes: 2000,
  maxBatchBytes: 1000,
  indexIntervalBytes: 150,
};

function record(timestampMs: number, valueBytes = 20): ModelRecord {
  return { timestampMs, key: null, value: new Uint8Array(valueBytes).fill(timestampMs & 0xff), headers: [] };
}

function appendOk(log: PartitionLog, records: ModelRecord[], nowMs = 0) {
  const result = log.append(encodeBatches([records]), { assignOffsets: true, leaderEpoch: 1, nowMs });
  assert.equal(result.kind, 'ok', JSON.stringify(result));
  return result.kind === 'ok' ? result : assert.fail('append failed');
}

/** Fills a log with random batches; returns each batch's [base, last] and every record's timestamp. */
function fill(log: PartitionLog, seed: number, batchCount: number) {
  const rng = createPrng(seed);
  const batches: { base: number; last: number }[] = [];
  const timestamps: number[] = [];
  let now = 10_000;
  for (let b = 0; b < batchCount; b++) {
    const records: ModelRecord[] = [];
    for (let r = 0; r < 1 + rng.nextInt(5); r++) {
      now += rng.nextInt(10);
      // Some records carry older timestamps, as producers' clocks allow.
      records.push(randomRecord(rng, rng.nextInt(6) === 0 ? now - rng.nextInt(200) : now, 60));
    }
    const result = appendOk(log, records, now);
    batches.push({ base: result.firstOffset, last: result.lastOffset });
    timestamps.push(...records.map((r) => r.timestampMs));
  }
  return { batches, timestamps };
}

test('the offset index floor lookup equals a linear floor search over the same entries', () => {
  const seed = testSeed();
  const rng = createPrng(seed);
  for (let round = 0; round < 50; round++) {
    const index = new OffsetIndex();
    const rels: number[] = [];
    let rel = 0;
    let pos = 0;
    for (let i = 0; i < rng.nextInt(200); i++) {
      rel += 1 + rng.nextInt(20);
      pos += 1 + rng.nextInt(500);
      index.append(rel, pos);
      rels.push(rel);
    }
    const decoded = OffsetIndex.decode(index.encode(0, index.count), pos + 1, rel + 1);
    assert.equal(decoded.count, index.count, `seed ${seed}: file round trip`);
    for (let q = -1; q <= rel + 2; q++) {
      let expected = -1;
      for (let i = 0; i < rels.length; i++) if (rels[i]! <= q) expected = i;
      assert.equal(index.floor(q), expected, `seed ${seed}: floor(${q})`);
      assert.equal(decoded.floor(q), expected, `seed ${seed}: decoded floor(${q})`);
    }
  }
  assert.equal(floorSearch(new Int32Array([1, 5, 9]), 3, 4), 0);
});

test('the time index finds the last entry older than a timestamp, and its file drops a bad tail', () => {
  const index = new TimeIndex();
  index.append(100, 3);
  index.append(150, 7);
  index.append(400, 20);
  assert.equal(index.lastBefore(100), -1);
  assert.equal(index.lastBefore(101), 0);
  assert.equal(index.lastBefore(400), 1);
  assert.equal(index.lastBefore(401), 2);
  const bytes = index.encode(0, 3);
  assert.equal(TimeIndex.decode(bytes.subarray(0, 30), 100).count, 2, 'a torn entry is dropped');
  assert.equal(TimeIndex.decode(bytes, 20).count, 2, 'entries beyond the trusted offset are dropped');
  const disordered = bytes.slice();
  disordered[12 + 7] = 50; // second entry's timestamp now below the first one
  assert.equal(TimeIndex.decode(disordered, 100).count, 1, 'a non-increasing entry ends the valid prefix');
});

test('reads locate the batch holding every offset, before and after reopen, across segments', () => {
  const seed = testSeed();
  const disk = new SimDisk();
  let log = PartitionLog.open('/d/t-0', small, disk, 0);
  const { batches } = fill(log, seed, 150);
  assert.ok(log.segmentCount > 3, 'several segments');
  for (let reopen = 0; reopen < 2; reopen++) {
    for (const batch of batches) {
      for (let offset = batch.base; offset <= batch.last; offset++) {
        const result = log.read(offset, 0);
        assert.equal(result.kind, 'ok');
        if (result.kind !== 'ok') continue;
        const all = decodeAll(result.bytes);
        assert.equal(all[0]!.offset, batch.base, `seed ${seed}: read(${offset}) starts at its batch`);
        assert.equal(all.at(-1)!.offset, batch.last, `seed ${seed}: read(${offset}, 0) returns one batch`);
        assert.equal(result.nextOffset, batch.last + 1);
      }
    }
    log.close();
    log = PartitionLog.open('/d/t-0', small, disk, 0);
  }
});

test('offsetForTimestamp returns the first offset whose timestamp is at or after the target', () => {
  const seed = testSeed();
  const disk = new SimDisk();
  let log = PartitionLog.open('/d/t-1', small, disk, 0);
  const { timestamps } = fill(log, seed, 120);
  const check = (logStart: number, context: string) => {
    const min = Math.min(...timestamps);
    const max = Math.max(...timestamps);
    for (let target = min - 2; target <= max + 2; target++) {
      const index = timestamps.findIndex((ts, offset) => offset >= logStart && ts >= target);
      assert.equal(
        log.offsetForTimestamp(target),
        index === -1 ? null : index,
        `seed ${seed} ${context}: ${target}`,
      );
    }
  };
  check(0, 'live');
  log.close();
  log = PartitionLog.open('/d/t-1', small, disk, 0);
  check(0, 'reopened');
  log.deleteRecordsBefore(37);
  check(37, 'after deleteRecordsBefore');
});

test('the log rolls by size and by age, and refuses batches and appends that cannot fit', () => {
  const disk = new SimDisk();
  const config: LogConfig = { ...small, segmentMs: 1000 };
  const log = PartitionLog.open('/d/t-2', config, disk, 0);
  appendOk(log, [record(0)], 0);
  appendOk(log, [record(10)], 10);
  assert.equal(log.segmentCount, 1);
  appendOk(log, [record(1000)], 1000);
  assert.equal(log.segmentCount, 2, 'a segment whose first record is segmentMs old rolls');
  for (let i = 0; i < 40; i++) appendOk(log, [record(1001, 100)], 1001);
  for (const segment of log.segmentInfos()) assert.ok(segment.sizeBytes <= config.segmentBytes);
  assert.ok(log.segmentCount >= 4, 'size-based rolls');
  const big = log.append(encodeBatches([[record(1, 1200)]]), {
    assignOffsets: true,
    leaderEpoch: 1,
    nowMs: 1,
  });
  assert.equal(big.kind, 'batch_too_large');
  const many = encodeBatches(Array.from({ length: 4 }, () => [record(1, 600)]));
  const tooMuch = log.append(many, { assignOffsets: true, leaderEpoch: 1, nowMs: 1 });
  assert.equal(tooMuch.kind, 'append_too_large');
  const end = log.logEndOffset;
  const torn = log.append(many.subarray(0, 100), { assignOffsets: true, leaderEpoch: 1, nowMs: 1 });
  assert.equal(torn.kind, 'malformed');
  assert.equal(log.logEndOffset, end, 'refused appends write nothing');
});

test('retention by bytes and by time deletes whole old segments, never the active one', () => {
  const disk = new SimDisk();
  const config: LogConfig = { ...small, retentionBytes: 3000, retentionMs: 5000 };
  const log = PartitionLog.open('/d/t-3', config, disk, 0);
  for (let i = 0; i < 60; i++) appendOk(log, [record(i * 100, 100)], i * 100);
  const before = log.segmentInfos();
  assert.ok(before.length >= 4);
  const byBytes = log.applyRetention(0);
  const after = log.segmentInfos();
  assert.ok(byBytes.deletedSegments > 0);
  assert.ok(log.sizeBytes >= 3000, 'byte retention keeps at least retentionBytes');
  assert.ok(log.sizeBytes - after[0]!.sizeBytes < 3000, 'and deletes every segment it can');
  assert.equal(log.logStartOffset, after[0]!.baseOffset);
  assert.equal(log.read(0, 100).kind, 'below_log_start');
  const byTime = log.applyRetention(1_000_000);
  assert.equal(log.segmentCount, 1, 'time retention leaves only the active segment');
  assert.ok(byTime.deletedSegments > 0);
  assert.equal(log.logStartOffset, log.segmentInfos()[0]!.baseOffset);
  assert.equal(readAll(log, log.logStartOffset).length, log.logEndOffset - log.logStartOffset);
});

test('deleteRecordsBefore persists across reopen on real files and deletes the segments below it', () => {
  const dir = path.join(root, 'orders-0');
  const disk = new RealDisk();
  let log = PartitionLog.open(dir, small, disk, 0);
  for (let i = 0; i < 50; i++) appendOk(log, [record(i, 100), record(i, 10)]);
  const segments = log.segmentInfos();
  const cut = segments[2]!.baseOffset + 1;
  assert.deepEqual(log.deleteRecordsBefore(cut), { kind: 'ok', logStartOffset: cut, deletedSegments: 2 });
  assert.ok(log.flushedOffset >= cut, 'records are durable before the log start passes them');
  log.abandon();
  log = PartitionLog.open(dir, small, disk, 0);
  assert.equal(log.logStartOffset, cut);
  assert.equal(log.segmentCount, segments.length - 2);
  assert.deepEqual(log.read(cut - 1, 100), { kind: 'below_log_start', logStartOffset: cut });
  assert.equal(readAll(log, cut)[0]!.offset, cut);
  assert.deepEqual(log.deleteRecordsBefore(log.logEndOffset + 1), {
    kind: 'offset_out_of_range',
    logEndOffset: log.logEndOffset,
  });
  log.delete();
  assert.equal(fs.existsSync(dir), false, 'delete removes the directory');
});

test('group commit: one write per append and one data sync per flush, however many appends it covers', () => {
  const disk = new SimDisk();
  const log = PartitionLog.open('/d/t-4', { ...DEFAULT_LOG_CONFIG, indexIntervalBytes: 100 }, disk, 0);
  const writesBefore = disk.writeCount;
  const syncsBefore = disk.syncCount;
  for (let i = 0; i < 10; i++) {
    const bytes = encodeBatches([[record(i)], [record(i), record(i)], [record(i)]]);
    const result = log.append(bytes, { assignOffsets: true, leaderEpoch: 4, nowMs: i });
    assert.deepEqual(result, { kind: 'ok', firstOffset: i * 4, lastOffset: i * 4 + 3, batchCount: 3 });
  }
  assert.equal(disk.writeCount - writesBefore, 10, 'one write call per append');
  assert.equal(disk.syncCount, syncsBefore, 'appending never syncs');
  assert.equal(log.flushedOffset, 0);
  log.flush();
  assert.equal(disk.syncCount - syncsBefore, 1, 'one fdatasync covers every append');
  assert.equal(log.flushedOffset, 40);
  log.flush();
  assert.equal(disk.syncCount - syncsBefore, 1, 'nothing new, no sync');
});

test('maybeFlush flushes at most once per syncIntervalMs', () => {
  const disk = new SimDisk();
  const log = PartitionLog.open('/d/t-5', { ...DEFAULT_LOG_CONFIG, syncIntervalMs: 1000 }, disk, 0);
  appendOk(log, [record(1)]);
  assert.equal(log.maybeFlush(500), null);
  assert.equal(log.flushedOffset, 0);
  assert.deepEqual(log.maybeFlush(1000), { kind: 'ok', fault: null });
  assert.equal(log.flushedOffset, 1);
  appendOk(log, [record(2)]);
  assert.equal(log.maybeFlush(1500), null);
  assert.deepEqual(log.maybeFlush(2000), { kind: 'ok', fault: null });
  assert.equal(log.flushedOffset, 2);
});

test('reads respect max bytes and the exclusive max offset, yet always return a whole first batch', () => {
  const disk = new SimDisk();
  const log = PartitionLog.open('/d/t-6', DEFAULT_LOG_CONFIG, disk, 0);
  appendOk(log, [record(1, 500), record(1, 500)]); // offsets 0-1, one big batch
  appendOk(log, [record(2, 10)]); // 2
  appendOk(log, [record(3, 10)]); // 3
  const tiny = log.read(1, 10);
  assert.equal(tiny.kind, 'ok');
  if (tiny.kind === 'ok') {
    assert.deepEqual(
      decodeAll(tiny.bytes, 1).map((r) => r.offset),
      [1],
      'one whole batch although it exceeds maxBytes',
    );
    assert.equal(tiny.nextOffset, 2);
  }
  const bounded = log.read(0, 1 << 20, 3);
  assert.ok(bounded.kind === 'ok' && bounded.nextOffset === 3, 'stops before the max offset');
  const target = new Uint8Array(1 << 16);
  const into = log.read(2, 1 << 20, Number.POSITIVE_INFINITY, target);
  assert.ok(into.kind === 'ok' && into.bytes.buffer === target.buffer, 'reads into the caller buffer');
  assert.deepEqual(log.read(4, 100), { kind: 'ok', bytes: new Uint8Array(0), nextOffset: 4 });
  assert.deepEqual(log.read(99, 100), { kind: 'ok', bytes: new Uint8Array(0), nextOffset: 99 });
});

test('missing index files of trusted segments are rebuilt and lookups stay exact', () => {
  const dir = path.join(root, 'rebuild-0');
  const disk = new RealDisk();
  let log = PartitionLog.open(dir, small, disk, 0);
  const { batches } = fill(log, 11, 80);
  log.close();
  for (const name of fs.readdirSync(dir)) if (name.endsWith('index')) fs.unlinkSync(path.join(dir, name));
  log = PartitionLog.open(dir, small, disk, 0);
  assert.equal(log.recovery.bytesTruncated, 0);
  for (const batch of batches) {
    const result = log.read(batch.last, 0);
    assert.ok(result.kind === 'ok' && decodeAll(result.bytes)[0]!.offset === batch.base);
  }
  log.close();
  const rebuilt = fs.readdirSync(dir).filter((n) => n.endsWith('.index'));
  assert.ok(
    rebuilt.some((n) => fs.statSync(path.join(dir, n)).size > 0),
    'index files written again',
  );
});

test('recovery after a clean close or a crash scans only the tail, not the whole log', () => {
  const disk = new SimDisk();
  const config: LogConfig = {
    ...DEFAULT_LOG_CONFIG,
    segmentBytes: 64 * 1024,
    maxBatchBytes: 16 * 1024,
    indexIntervalBytes: 4096,
  };
  let log = PartitionLog.open('/d/t-7', config, disk, 0);
  for (let i = 0; i < 2000; i++) appendOk(log, [record(i, 200), record(i, 200)]);
  log.close();
  const size = log.sizeBytes;
  log = PartitionLog.open('/d/t-7', config, disk, 0);
  assert.ok(size > 800_000);
  const perSegment = 4096 + 1000;
  assert.ok(log.recovery.bytesScanned <= log.segmentCount * perSegment, JSON.stringify(log.recovery));
  assert.equal(log.recovery.segmentsScanned, 1, 'only the active segment is verified');
  for (let i = 0; i < 100; i++) appendOk(log, [record(i, 200)]);
  log.flush();
  disk.crash(createPrng(1), { flipProbability: 0 });
  log = PartitionLog.open('/d/t-7', config, disk, 0);
  assert.equal(log.recovery.segmentsScanned, 1);
  assert.ok(log.recovery.bytesScanned <= log.segmentCount * perSegment + 64 * 1024);
});

test('reopening and closing an unchanged log sync nothing; after a kill recovery syncs what it read, which then survives a power loss', () => {
  const disk = new SimDisk();
  let log = PartitionLog.open('/d/t-8', small, disk, 0);
  for (let i = 0; i < 30; i++) appendOk(log, [record(i)]);
  log.close();
  const end = log.logEndOffset;
  let syncsBefore = disk.syncCount;
  log = PartitionLog.open('/d/t-8', small, disk, 0);
  assert.equal(disk.syncCount, syncsBefore, 'the checkpoint already covers the whole log');
  assert.equal(log.logEndOffset, end);
  // Opened and read, never written: closing has nothing to make durable either.
  assert.equal(readAll(log, 0).length, end);
  log.close();
  assert.equal(disk.syncCount, syncsBefore, 'closing an unchanged log syncs nothing');
  // Flushed but not checkpointed: closing moves the checkpoint, so the next open scans nothing new.
  log = PartitionLog.open('/d/t-8', small, disk, 0);
  appendOk(log, [record(50)]);
  log.flush();
  syncsBefore = disk.syncCount;
  log.close();
  assert.ok(disk.syncCount > syncsBefore, 'a log written since its checkpoint writes a new one on close');
  syncsBefore = disk.syncCount;
  log = PartitionLog.open('/d/t-8', small, disk, 0);
  assert.equal(disk.syncCount, syncsBefore);
  assert.equal(log.logEndOffset, end + 1);
  // A kill: records appended and written, never synced, and no close; the page cache keeps them.
  for (let i = 0; i < 3; i++) appendOk(log, [record(100 + i)]);
  syncsBefore = disk.syncCount;
  log = PartitionLog.open('/d/t-8', small, disk, 0);
  assert.ok(disk.syncCount > syncsBefore, 'recovery read records past the recovery point: it syncs them');
  assert.equal(log.logEndOffset, end + 4);
  // The power goes right after the reopen: what recovery served as durable is still there.
  disk.crash(createPrng(2), { flipProbability: 0 });
  log = PartitionLog.open('/d/t-8', small, disk, 0);
  assert.equal(log.logEndOffset, end + 4);
  assert.deepEqual(
    readAll(log, end).map((r) => r.timestampMs),
    [50, 100, 101, 102],
  );
});

test('the replication path keeps leader offsets, checks continuity and refuses a damaged batch', () => {
  const disk = new SimDisk();
  const leader = PartitionLog.open('/d/leader', DEFAULT_LOG_CONFIG, disk, 0);
  const follower = PartitionLog.open('/d/follower', DEFAULT_LOG_CONFIG, disk, 0);
  appendOk(leader, [record(1), record(2)]);
  appendOk(leader, [record(3)]);
  const fetched = leader.read(0, 1 << 20);
  assert.ok(fetched.kind === 'ok');
  if (fetched.kind !== 'ok') return;
  const damaged = fetched.bytes.slice();
  damaged[damaged.length - 1] = damaged[damaged.length - 1]! ^ 0x10;
  const refused = follower.append(damaged, { assignOffsets: false, leaderEpoch: -1, nowMs: 0 });
  assert.equal(refused.kind, 'malformed', 'a CRC mismatch from a leader is refused');
  assert.equal(follower.logEndOffset, 0, 'nothing of a refused append is written');
  const copy = fetched.bytes.slice();
  assert.deepEqual(follower.append(copy, { assignOffsets: false, leaderEpoch: -1, nowMs: 0 }), {
    kind: 'ok',
    firstOffset: 0,
    lastOffset: 2,
    batchCount: 2,
  });
  assert.deepEqual(follower.append(copy, { assignOffsets: false, leaderEpoch: -1, nowMs: 0 }), {
    kind: 'offset_mismatch',
    expectedOffset: 3,
    actualOffset: 0,
  });
  const replica = follower.read(0, 1 << 20);
  assert.ok(replica.kind === 'ok');
  if (replica.kind === 'ok')
    assert.deepEqual(replica.bytes, fetched.bytes, 'the follower holds the same bytes');
});
