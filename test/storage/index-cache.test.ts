// The index cache of sealed segments: its LRU and budget on fake holders, and a partition log whose sealed
// segments' indexes are dropped and read back, checked against a log that keeps them all (same records, same
// time lookups, truncation into a dropped segment, reopen, an index file damaged at rest).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { readInt32, readInt64, writeInt32, writeInt64 } from '../../src/core/log/record-batch.js';
import { OffsetIndex, TimeIndex } from '../../src/core/log/segment-index.js';
import { createPrng } from '../../src/core/prng.js';
import { RealDisk } from '../../src/storage/disk.js';
import { type DroppableIndexes, SegmentIndexCache } from '../../src/storage/index-cache.js';
import { DEFAULT_LOG_CONFIG, type LogConfig, PartitionLog } from '../../src/storage/partition-log.js';
import {
  assertSameRecord,
  encodeBatches,
  type ModelRecord,
  randomRecord,
  readAll,
  testSeed,
} from './helpers.js';

let root = '';
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'index-cache-'));
});
after(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

class Holder implements DroppableIndexes {
  dropped = false;
  constructor(
    readonly name: string,
    readonly indexBytes: number,
    private readonly droppable = true,
  ) {}
  dropIndexes(): boolean {
    if (!this.droppable) return false;
    this.dropped = true;
    return true;
  }
}

test('the index cache drops the least recently used indexes past its budget, never the one just admitted', () => {
  const cache = new SegmentIndexCache(250);
  const a = new Holder('a', 100);
  const b = new Holder('b', 100);
  const c = new Holder('c', 100);
  cache.admit(a);
  cache.admit(b);
  assert.equal(cache.residentBytes, 200);
  cache.touch(a); // b is now the least recently used
  cache.admit(c);
  assert.deepEqual([a.dropped, b.dropped, c.dropped], [false, true, false]);
  assert.equal(cache.residentBytes, 200);
  assert.equal(cache.drops, 1);
  const big = new Holder('big', 1000);
  cache.admit(big);
  assert.ok(a.dropped && c.dropped && !big.dropped, 'a holder over the whole budget stays, the others go');
  assert.equal(cache.residentBytes, 1000);
  assert.equal(cache.residentCount, 1);
  cache.forget(big);
  assert.equal(cache.residentBytes, 0);
});

test('indexes that cannot be read back are kept, and counted, past the budget', () => {
  const cache = new SegmentIndexCache(100);
  const pinned = new Holder('pinned', 80, false);
  const other = new Holder('other', 80);
  cache.admit(pinned);
  cache.admit(other);
  assert.equal(pinned.dropped, false);
  assert.equal(cache.residentBytes, 160);
  const third = new Holder('third', 10);
  cache.admit(third);
  assert.ok(other.dropped, 'the droppable one goes');
  assert.equal(cache.residentBytes, 90);
});

const small: LogConfig = {
  ...DEFAULT_LOG_CONFIG,
  segmentBytes: 2000,
  maxBatchBytes: 1000,
  indexIntervalBytes: 120,
};

function appendRandom(logs: PartitionLog[], seed: number, batchCount: number, startMs: number): number[] {
  const rng = createPrng(seed);
  const timestamps: number[] = [];
  let now = startMs;
  for (let b = 0; b < batchCount; b++) {
    const records: ModelRecord[] = [];
    for (let r = 0; r < 1 + rng.nextInt(4); r++) {
      now += 1 + rng.nextInt(10);
      records.push(randomRecord(rng, rng.nextInt(6) === 0 ? now - rng.nextInt(200) : now, 60));
      timestamps.push(records[records.length - 1]!.timestampMs);
    }
    const bytes = encodeBatches([records]);
    for (const log of logs) {
      const result = log.append(bytes, { assignOffsets: true, leaderEpoch: 1, nowMs: now });
      assert.equal(result.kind, 'ok', JSON.stringify(result));
    }
  }
  return timestamps;
}

function assertSameLogs(kept: PartitionLog, dropped: PartitionLog, seed: number, context: string): void {
  const rng = createPrng(seed ^ 0x5a5a);
  assert.equal(dropped.logEndOffset, kept.logEndOffset, `${context}: log end`);
  for (let i = 0; i < 60; i++) {
    const from = kept.logStartOffset + rng.nextInt(Math.max(1, kept.logEndOffset - kept.logStartOffset));
    const maxBytes = 1 + rng.nextInt(3000);
    const expected = readAll(kept, from, maxBytes);
    const actual = readAll(dropped, from, maxBytes);
    assert.equal(actual.length, expected.length, `${context}: records from ${from} (seed ${seed})`);
    for (let r = 0; r < expected.length; r++) assertSameRecord(actual[r]!, expected[r]!, context);
  }
}

function assertSameTimeLookups(kept: PartitionLog, dropped: PartitionLog, timestamps: number[], ctx: string) {
  const lo = Math.min(...timestamps) - 5;
  const hi = Math.max(...timestamps) + 5;
  for (let t = lo; t <= hi; t += 3) {
    assert.equal(
      dropped.offsetForTimestamp(t),
      kept.offsetForTimestamp(t),
      `${ctx}: offsetForTimestamp(${t})`,
    );
  }
}

test("sealed segments' indexes leave memory past the budget and are read back: reads, time lookups, truncation and reopen match a log that keeps them", () => {
  const seed = testSeed();
  const disk = new RealDisk();
  const keptDir = path.join(root, `kept-${seed}`);
  const droppedDir = path.join(root, `dropped-${seed}`);
  const cache = new SegmentIndexCache(0);
  const kept = PartitionLog.open(keptDir, small, disk, 0);
  let dropped = PartitionLog.open(droppedDir, small, disk, 0, { indexCache: cache });
  const timestamps = appendRandom([kept, dropped], seed, 400, 10_000);
  assert.ok(dropped.segmentCount > 10, `seed ${seed}: many segments (${dropped.segmentCount})`);
  assert.ok(cache.drops > 0, 'sealed indexes were dropped');
  assert.ok(cache.residentCount <= 1, `at most the last used stays resident, not ${cache.residentCount}`);

  assertSameLogs(kept, dropped, seed, `seed ${seed}`);
  assertSameTimeLookups(kept, dropped, timestamps, `seed ${seed}`);
  assert.ok(cache.loads > 0, 'dropped indexes were read back');
  assert.ok(cache.residentCount <= 1);

  // Cut both into an early sealed segment whose indexes are dropped, then append past the cut.
  const cut = Math.floor(kept.logEndOffset / 4);
  assert.equal(kept.truncateTo(cut).kind, 'ok');
  assert.equal(dropped.truncateTo(cut).kind, 'ok');
  const later = appendRandom([kept, dropped], seed + 1, 200, 50_000);
  assertSameLogs(kept, dropped, seed + 1, `seed ${seed} after truncation`);
  assertSameTimeLookups(kept, dropped, [...timestamps, ...later], `seed ${seed} after truncation`);

  // A clean reopen seals every segment but the last through recovery.
  dropped.close();
  dropped = PartitionLog.open(droppedDir, small, disk, 0, { indexCache: cache });
  assert.ok(cache.residentCount <= 1, 'after recovery only the last used stays resident');
  assertSameLogs(kept, dropped, seed + 2, `seed ${seed} after reopen`);
  kept.close();
  dropped.close();
  assert.equal(cache.residentCount, 0, 'closed logs leave nothing in the cache');
});

test('a dropped index file damaged at rest costs only speed: reads still find every record', () => {
  const seed = testSeed();
  const disk = new RealDisk();
  const keptDir = path.join(root, `kept-damage-${seed}`);
  const droppedDir = path.join(root, `dropped-damage-${seed}`);
  const cache = new SegmentIndexCache(0);
  const kept = PartitionLog.open(keptDir, small, disk, 0);
  const dropped = PartitionLog.open(droppedDir, small, disk, 0, { indexCache: cache });
  appendRandom([kept, dropped], seed, 300, 10_000);
  const rng = createPrng(seed);
  // Garbage over every sealed segment's offset index (all but the newest .index file).
  const indexFiles = fs
    .readdirSync(droppedDir)
    .filter((name) => name.endsWith('.index'))
    .sort();
  for (const name of indexFiles.slice(0, -1)) {
    const file = path.join(droppedDir, name);
    const bytes = fs.readFileSync(file);
    for (let i = 0; i < bytes.length; i++) if (rng.nextInt(3) === 0) bytes[i] = rng.nextInt(256);
    fs.writeFileSync(file, bytes);
  }
  assertSameLogs(kept, dropped, seed, `seed ${seed} with damaged index files`);
  kept.close();
  dropped.close();
});

/** The decoding rule written the slow, obvious way: entry by entry, stopping at the first one that breaks it. */
function referenceOffsetEntries(bytes: Uint8Array, logSizeBytes: number, limit: number): [number, number][] {
  const out: [number, number][] = [];
  for (let p = 0; p + 8 <= bytes.length; p += 8) {
    const rel = readInt32(bytes, p);
    const pos = readInt32(bytes, p + 4);
    const last = out[out.length - 1];
    if (rel < 0 || pos <= 0 || pos >= logSizeBytes || rel >= limit) break;
    if (last !== undefined && (rel <= last[0] || pos <= last[1])) break;
    out.push([rel, pos]);
  }
  return out;
}

function referenceTimeEntries(bytes: Uint8Array, limit: number): [number, number][] {
  const out: [number, number][] = [];
  for (let p = 0; p + 12 <= bytes.length; p += 12) {
    const ts = readInt64(bytes, p);
    const rel = readInt32(bytes, p + 8);
    const last = out[out.length - 1];
    if (!Number.isSafeInteger(ts) || rel <= 0 || rel >= limit) break;
    if (last !== undefined && (ts <= last[0] || rel <= last[1])) break;
    out.push([ts, rel]);
  }
  return out;
}

test('index files decode to the longest well-formed prefix, damaged or short ones included', () => {
  const seed = testSeed();
  const rng = createPrng(seed);
  for (let round = 0; round < 300; round++) {
    const n = rng.nextInt(200);
    const offsets = new Uint8Array(n * 8 + rng.nextInt(8));
    const times = new Uint8Array(n * 12 + rng.nextInt(12));
    let rel = 0;
    let pos = 0;
    let ts = 1_700_000_000_000;
    for (let i = 0; i < n; i++) {
      rel += 1 + rng.nextInt(50);
      pos += 1 + rng.nextInt(5000);
      ts += 1 + rng.nextInt(1000);
      writeInt32(offsets, i * 8, rel);
      writeInt32(offsets, i * 8 + 4, pos);
      writeInt64(times, i * 12, ts);
      writeInt32(times, i * 12 + 8, rel);
    }
    // Damage: a few random bytes, sometimes none.
    for (let k = rng.nextInt(4); k > 0 && n > 0; k--) {
      offsets[rng.nextInt(offsets.length)] = rng.nextInt(256);
      times[rng.nextInt(times.length)] = rng.nextInt(256);
    }
    const logSize = pos - rng.nextInt(3) * 1000 + 1;
    const limit = rel + 1 - rng.nextInt(2) * 60;
    const decoded = OffsetIndex.decode(offsets, logSize, limit);
    const expected = referenceOffsetEntries(offsets, logSize, limit);
    assert.equal(decoded.count, expected.length, `seed ${seed} round ${round}: offset entries`);
    for (let i = 0; i < expected.length; i++) {
      assert.equal(decoded.relativeOffsetAt(i), expected[i]![0]);
      assert.equal(decoded.positionAt(i), expected[i]![1]);
    }
    const decodedTimes = TimeIndex.decode(times, limit);
    const expectedTimes = referenceTimeEntries(times, limit);
    assert.equal(decodedTimes.count, expectedTimes.length, `seed ${seed} round ${round}: time entries`);
    for (let i = 0; i < expectedTimes.length; i++) {
      assert.equal(decodedTimes.timestampAt(i), expectedTimes[i]![0]);
      assert.equal(decodedTimes.relativeOffsetAt(i), expectedTimes[i]![1]);
    }
    // A decoded index keeps growing as an appended one does.
    if (decoded.count > 0) {
      decoded.append(
        decoded.relativeOffsetAt(decoded.count - 1) + 1,
        decoded.positionAt(decoded.count - 1) + 1,
      );
    }
  }
});
