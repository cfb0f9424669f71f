// Model-based test of PartitionLog over the crashable SimDisk: random appends, reads, rolls, flushes,
// truncations, record deletions, retention, crashes (torn writes, bit flips, lost directory entries) and
// reopens, checked against an in-memory model after every step. Replay a failure with SEED=<seed>.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { writeInt64 } from '../../src/core/log/record-batch.js';
import { createPrng, type Prng } from '../../src/core/prng.js';
import { SegmentIndexCache } from '../../src/storage/index-cache.js';
import { DEFAULT_LOG_CONFIG, type LogConfig, PartitionLog } from '../../src/storage/partition-log.js';
import { SimDisk, SimulatedCrash } from '../../src/storage/sim-disk.js';
import {
  assertSameRecord,
  decodeAll,
  encodeBatches,
  type ModelRecord,
  randomRecord,
  readAll,
  type StoredRecord,
  testSeed,
} from './helpers.js';

const DIR = '/data/orders-3';
const RUNS = Number(process.env.RUNS ?? 40);
const STEPS = Number(process.env.STEPS ?? 250);

interface ModelBatch {
  readonly baseOffset: number;
  readonly records: readonly StoredRecord[];
}

class Model {
  batches: ModelBatch[] = [];
  logStart = 0;

  get logEnd(): number {
    const last = this.batches[this.batches.length - 1];
    return last === undefined ? this.logStart : last.baseOffset + last.records.length;
  }

  records(from: number, to: number): StoredRecord[] {
    const out: StoredRecord[] = [];
    for (const batch of this.batches)
      for (const r of batch.records) if (r.offset >= from && r.offset < to) out.push(r);
    return out;
  }

  /** Base offset of the batch holding `offset`. */
  batchStartOf(offset: number): number {
    const batch = this.batches.find(
      (b) => offset >= b.baseOffset && offset < b.baseOffset + b.records.length,
    );
    assert.ok(batch !== undefined, `model has no batch holding ${offset}`);
    return batch.baseOffset;
  }

  isBatchBoundary(offset: number): boolean {
    return offset === this.logEnd || this.batches.some((b) => b.baseOffset === offset);
  }

  truncate(end: number): void {
    this.batches = this.batches.filter((b) => b.baseOffset < end);
    assert.equal(this.logEnd <= end || this.batches.length === 0, true);
  }

  clone(): Model {
    const copy = new Model();
    copy.batches = [...this.batches];
    copy.logStart = this.logStart;
    return copy;
  }
}

/** What an operation interrupted by a crash point may have left behind. */
interface InFlight {
  /** Batches an interrupted append may have written. */
  appended: ModelBatch[];
  /** Records below this must survive whatever happens. */
  durableFloor: number;
  /** Which log start offsets the interrupted operation may have left. */
  allowedLogStart: (logStart: number, candidate: Model) => boolean;
}

function randomConfig(rng: Prng): LogConfig {
  return {
    ...DEFAULT_LOG_CONFIG,
    segmentBytes: 1500 + rng.nextInt(4500),
    segmentMs: rng.nextInt(2) === 0 ? 200 + rng.nextInt(400) : DEFAULT_LOG_CONFIG.segmentMs,
    indexIntervalBytes: 1 + rng.nextInt(600),
    syncIntervalMs: rng.nextInt(2) === 0 ? 0 : 20,
    retentionBytes: rng.nextInt(2) === 0 ? -1 : 2000 + rng.nextInt(6000),
    retentionMs: rng.nextInt(2) === 0 ? -1 : 300 + rng.nextInt(600),
    maxBatchBytes: 1000,
  };
}

function runScenario(seed: number): void {
  const rng = createPrng(seed);
  const config = randomConfig(rng);
  const disk = new SimDisk();
  let model = new Model();
  let nowMs = 1_000;
  // A third of the runs keep every index in memory; the others share a thread-like index cache that drops
  // sealed segments' indexes as soon as it may (budget 0) or past a few hundred bytes, so reads, time
  // lookups, truncations and retention also run over indexes read back from their files.
  const cacheKind = seed % 3;
  const openOptions = {
    recoveryCheckpointIntervalBytes: 200 + rng.nextInt(3000),
    ...(cacheKind === 0 ? {} : { indexCache: new SegmentIndexCache(cacheKind === 1 ? 0 : 300) }),
  };
  let log = PartitionLog.open(DIR, config, disk, nowMs, openOptions);

  const checkWholeLog = (context: string) => {
    assert.equal(log.logStartOffset, model.logStart, `${context}: log start`);
    assert.equal(log.logEndOffset, model.logEnd, `${context}: log end`);
    const actual = readAll(log, model.logStart, 1 + rng.nextInt(3000));
    const expected = model.records(model.logStart, model.logEnd);
    assert.equal(actual.length, expected.length, `${context}: record count`);
    for (let i = 0; i < expected.length; i++) assertSameRecord(actual[i]!, expected[i]!, context);
  };

  const reopenAfterCrash = (inFlight: InFlight, context: string) => {
    const candidate = model.clone();
    candidate.batches.push(...inFlight.appended);
    let report = disk.crash(rng);
    // Recovery itself may be cut short by another power loss.
    for (let attempt = 0; ; attempt++) {
      if (attempt < 3 && rng.nextInt(3) === 0) disk.armCrash(1 + rng.nextInt(12));
      try {
        log = PartitionLog.open(DIR, config, disk, nowMs, openOptions);
        disk.disarmCrash();
        break;
      } catch (error) {
        if (!(error instanceof SimulatedCrash)) throw error;
        report = disk.crash(rng);
      }
    }
    const end = log.logEndOffset;
    const start = log.logStartOffset;
    const ctx = `${context} after crash ${JSON.stringify(report)} recovery ${JSON.stringify(log.recovery)}`;
    assert.ok(
      end >= inFlight.durableFloor,
      `${ctx}: lost durable records (end ${end} < ${inFlight.durableFloor})`,
    );
    assert.ok(
      inFlight.allowedLogStart(start, candidate),
      `${ctx}: log start ${start} (model ${model.logStart})`,
    );
    candidate.logStart = start;
    if (end === start) {
      // An empty log (recovery found its end below its start): nothing of the model remains readable.
      candidate.batches = candidate.batches.filter((b) => b.baseOffset + b.records.length <= start);
      if (candidate.logEnd !== start) candidate.batches = [];
    } else {
      assert.ok(
        end <= candidate.logEnd && candidate.isBatchBoundary(end),
        `${ctx}: end ${end} is not a prefix`,
      );
      candidate.truncate(end);
    }
    model = candidate;
    checkWholeLog(ctx);
  };

  for (let step = 0; step < STEPS; step++) {
    nowMs += rng.nextInt(30);
    const roll = rng.nextInt(100);
    const context = `step ${step} (op ${roll})`;
    const logStartBefore = model.logStart;
    const inFlight: InFlight = {
      appended: [],
      durableFloor: log.flushedOffset,
      allowedLogStart: (logStart) => logStart === logStartBefore,
    };
    if (rng.nextInt(12) === 0) disk.armCrash(1 + rng.nextInt(12));
    try {
      runStep(roll, context, inFlight);
      disk.disarmCrash();
    } catch (error) {
      if (!(error instanceof SimulatedCrash)) throw error;
      reopenAfterCrash(inFlight, context);
    }
  }
  checkWholeLog('end');
  log.delete();

  function runStep(roll: number, context: string, inFlight: InFlight): void {
    const logStartBefore = model.logStart;
    if (roll < 40) {
      // Append 1-3 batches of 1-6 records; timestamps mostly rising, sometimes out of order.
      const batches: ModelRecord[][] = [];
      const batchCount = 1 + rng.nextInt(3);
      for (let b = 0; b < batchCount; b++) {
        const records: ModelRecord[] = [];
        const recordCount = 1 + rng.nextInt(6);
        for (let r = 0; r < recordCount; r++) {
          records.push(randomRecord(rng, nowMs - (rng.nextInt(5) === 0 ? rng.nextInt(500) : 0), 120));
        }
        batches.push(records);
      }
      const bytes = encodeBatches(batches);
      const sizes: number[] = [];
      for (let pos = 0, b = 0; b < batches.length; b++) {
        const size = 12 + new DataView(bytes.buffer, bytes.byteOffset).getInt32(pos + 8);
        sizes.push(size);
        pos += size;
      }
      const replication = rng.nextInt(4) === 0;
      if (replication) {
        let base = model.logEnd;
        for (let pos = 0, b = 0; b < batches.length; b++) {
          writeInt64(bytes, pos, base);
          base += batches[b]!.length;
          pos += sizes[b]!;
        }
      }
      let pendingOffset = model.logEnd;
      inFlight.appended = batches.map((records) => {
        const baseOffset = pendingOffset;
        pendingOffset += records.length;
        return { baseOffset, records: records.map((r, i) => ({ ...r, offset: baseOffset + i })) };
      });
      const result = log.append(bytes, { assignOffsets: !replication, leaderEpoch: 7, nowMs });
      if (sizes.some((s) => s > config.maxBatchBytes)) {
        assert.equal(result.kind, 'batch_too_large', context);
      } else if (bytes.length > config.segmentBytes) {
        assert.equal(result.kind, 'append_too_large', context);
      } else {
        assert.equal(result.kind, 'ok', `${context}: ${JSON.stringify(result)}`);
        if (result.kind !== 'ok') return;
        assert.equal(result.firstOffset, model.logEnd, `${context}: appends continue at the log end`);
        let offset = result.firstOffset;
        for (const records of batches) {
          model.batches.push({
            baseOffset: offset,
            records: records.map((r, i) => ({ ...r, offset: offset + i })),
          });
          offset += records.length;
        }
        assert.equal(result.lastOffset, offset - 1, context);
      }
      inFlight.appended = [];
      if (rng.nextInt(8) === 0 && model.logEnd !== 0) {
        const stale = log.append(encodeBatches([[randomRecord(rng, nowMs, 10)]]), {
          assignOffsets: false,
          leaderEpoch: 7,
          nowMs,
        });
        assert.equal(stale.kind, 'offset_mismatch', `${context}: stale replica batch`);
      }
    } else if (roll < 60) {
      const from = model.logStart - 2 + rng.nextInt(model.logEnd - model.logStart + 5);
      const maxBytes = rng.nextInt(2500);
      const boundaries = model.batches.map((b) => b.baseOffset).filter((o) => o > from);
      const upper =
        rng.nextInt(3) === 0 && boundaries.length > 0
          ? boundaries[rng.nextInt(boundaries.length)]!
          : Number.POSITIVE_INFINITY;
      const result = log.read(from, maxBytes, upper);
      if (from < model.logStart) {
        assert.deepEqual(result, { kind: 'below_log_start', logStartOffset: model.logStart }, context);
        return;
      }
      assert.equal(result.kind, 'ok', context);
      if (result.kind !== 'ok') return;
      const end = Math.min(model.logEnd, upper);
      if (from >= end) {
        assert.equal(result.bytes.length, 0, `${context}: reads at or past the end are empty`);
        return;
      }
      const records = decodeAll(result.bytes, from, upper);
      assert.ok(records.length > 0, `${context}: a read below the end returns at least one record`);
      const expected = model.records(from, Math.min(result.nextOffset, end));
      assert.equal(records.length, expected.length, `${context}: read ${from}`);
      for (let i = 0; i < expected.length; i++) assertSameRecord(records[i]!, expected[i]!, context);
      if (records.length > 0 && result.bytes.length > maxBytes) {
        assert.equal(
          decodeAll(result.bytes).at(-1)!.offset - model.batchStartOf(from) + 1,
          model.batches.find((b) => b.baseOffset === model.batchStartOf(from))!.records.length,
          `${context}: only a single first batch may exceed maxBytes`,
        );
      }
    } else if (roll < 68) {
      if (config.syncIntervalMs === 0 || rng.nextInt(2) === 0) log.flush();
      else log.maybeFlush(nowMs);
      if (config.syncIntervalMs === 0) assert.equal(log.flushedOffset, log.logEndOffset, context);
    } else if (roll < 74) {
      const target = nowMs - rng.nextInt(800);
      const expected = model.records(model.logStart, model.logEnd).find((r) => r.timestampMs >= target);
      assert.equal(
        log.offsetForTimestamp(target),
        expected?.offset ?? null,
        `${context}: offsetForTimestamp`,
      );
    } else if (roll < 78) {
      const offset = model.logStart + rng.nextInt(model.logEnd - model.logStart + 1);
      const end = offset >= model.logEnd ? model.logEnd : model.batchStartOf(offset);
      inFlight.durableFloor = Math.min(inFlight.durableFloor, end);
      inFlight.allowedLogStart = (s) => s === logStartBefore || s === Math.min(logStartBefore, end);
      const result = log.truncateTo(offset);
      assert.deepEqual(result, { kind: 'ok', logEndOffset: end }, context);
      if (offset < model.logEnd) {
        assert.equal(log.flushedOffset, log.logEndOffset, `${context}: a truncation is durable`);
      }
      model.truncate(end);
      model.logStart = Math.min(model.logStart, end);
    } else if (roll < 81) {
      const offset = model.logStart + rng.nextInt(model.logEnd - model.logStart + 1);
      inFlight.allowedLogStart = (s) => s === logStartBefore || s === Math.max(logStartBefore, offset);
      const result = log.deleteRecordsBefore(offset);
      assert.equal(result.kind, 'ok', context);
      model.logStart = Math.max(model.logStart, offset);
      assert.equal(log.logStartOffset, model.logStart, context);
    } else if (roll < 85) {
      const sizeBefore = log.sizeBytes;
      inFlight.allowedLogStart = (s, candidate) =>
        s === logStartBefore || (s > logStartBefore && candidate.isBatchBoundary(s));
      const result = log.applyRetention(nowMs);
      assert.equal(log.sizeBytes, sizeBefore - result.deletedBytes, context);
      if (result.deletedSegments > 0) {
        assert.ok(
          result.logStartOffset >= model.logStart && model.isBatchBoundary(result.logStartOffset),
          context,
        );
      }
      model.logStart = result.logStartOffset;
      const segments = log.segmentInfos();
      const oldest = segments[0]!;
      if (segments.length > 1 && config.retentionBytes >= 0) {
        assert.ok(
          log.sizeBytes - oldest.sizeBytes < config.retentionBytes,
          `${context}: byte retention kept extra`,
        );
      }
      if (segments.length > 1 && config.retentionMs >= 0) {
        assert.ok(
          oldest.maxTimestampMs >= nowMs - config.retentionMs,
          `${context}: time retention kept extra`,
        );
      }
      checkWholeLog(`${context} after retention`);
    } else if (roll < 93) {
      disk.disarmCrash();
      reopenAfterCrash(inFlight, context);
    } else if (roll < 96) {
      log.close();
      log = PartitionLog.open(DIR, config, disk, nowMs, openOptions);
      assert.equal(
        log.recovery.bytesTruncated,
        0,
        `${context}: a clean close loses nothing: ${log.recovery.reason}`,
      );
      checkWholeLog(`${context} after clean reopen`);
    } else {
      checkWholeLog(context);
    }
  }
}

test('after any crash the log holds a prefix of the model with every flushed record, and reads match the model', () => {
  const base = testSeed();
  const runs = process.env.SEED !== undefined ? 1 : RUNS;
  for (let run = 0; run < runs; run++) {
    const seed = (base + run) >>> 0;
    try {
      runScenario(seed);
    } catch (error) {
      console.error(`partition log model test failed: replay with SEED=${seed}`);
      throw error;
    }
  }
});
