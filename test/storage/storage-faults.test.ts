// Storage faults on the write path of a partition log (issue 10, item 5), exhaustively over the simulated disk:
// the disk fills up at every mutating call of a workload in turn (segment data, a roll's new files, indexes,
// the checkpoint, retention), and an fsync fails at every sync in turn. After each fault: a failed append or
// flush is answered as a value, a definite failure leaves nothing of its records in the log (not even after a
// power loss), acknowledged records are never lost, the log keeps working once space is back, and offsets
// stay dense.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { forEachRecord } from '../../src/core/log/record-batch.js';
import { createPrng } from '../../src/core/prng.js';
import { crc32 } from '../../src/storage/crc.js';
import { DEFAULT_LOG_CONFIG, type LogConfig, PartitionLog } from '../../src/storage/partition-log.js';
import { SimDisk } from '../../src/storage/sim-disk.js';
import { encodeBatches, type ModelRecord } from './helpers.js';

const dir = '/data/t-0';
const config: LogConfig = {
  ...DEFAULT_LOG_CONFIG,
  segmentBytes: 700,
  maxBatchBytes: 300,
  indexIntervalBytes: 100,
  retentionBytes: 1800,
  retentionMs: -1,
};
const openOptions = { recoveryCheckpointIntervalBytes: 400 };

interface Model {
  /** Acknowledged records by offset: durable, never to be lost (unless retention deleted them). */
  readonly acked: Map<number, string>;
  /** Values whose append was refused definitely: never to be found in the log. */
  readonly refused: Set<string>;
  /** Values with an unknown outcome. */
  readonly unknown: Set<string>;
  /** Appended but not yet synced: [first offset, last offset, values]. */
  pending: { first: number; last: number; values: string[] }[];
  next: number;
}

const text = new TextDecoder();

function records(values: string[]): ModelRecord[] {
  return values.map((v) => ({
    timestampMs: 1000,
    key: null,
    value: new TextEncoder().encode(v),
    headers: [],
  }));
}

/** Every record the log serves, by offset. */
function contents(log: PartitionLog): Map<number, string> {
  const out = new Map<number, string>();
  let offset = log.logStartOffset;
  while (offset < log.logEndOffset) {
    const result = log.read(offset, 1 << 20);
    assert.equal(result.kind, 'ok', `read at ${offset}: ${JSON.stringify(result)}`);
    if (result.kind !== 'ok') break;
    const decoded = forEachRecord(
      result.bytes,
      (r) => {
        out.set(r.offset, text.decode(r.value!));
      },
      { fromOffset: offset, crc32 },
    );
    assert.equal(decoded.kind, 'ok');
    offset = result.nextOffset;
  }
  return out;
}

/** The log serves every acknowledged record still above the log start, densely, and no refused one. */
function check(log: PartitionLog, model: Model, context: string): void {
  const served = contents(log);
  const offsets = [...served.keys()];
  offsets.forEach((o, i) => {
    assert.equal(o, log.logStartOffset + i, `${context}: offsets are dense`);
  });
  for (const [offset, value] of model.acked) {
    if (offset < log.logStartOffset) continue;
    assert.equal(served.get(offset), value, `${context}: acknowledged offset ${offset}`);
  }
  for (const value of served.values()) {
    assert.ok(!model.refused.has(value), `${context}: refused value ${value} is in the log`);
  }
}

/** Settles pending appends after a flush: synced ones are acknowledged, the rest lost (definitely or not). */
function settle(log: PartitionLog, model: Model): void {
  for (const p of model.pending) {
    if (p.last < log.flushedOffset) {
      p.values.forEach((v, i) => {
        model.acked.set(p.first + i, v);
      });
    } else {
      for (const v of p.values) (log.broken === null ? model.refused : model.unknown).add(v);
    }
  }
  model.pending = [];
}

/**
 * The workload: appends of 1-3 records (sometimes two before one flush), a flush after each, and retention
 * every few steps. Returns the log in use at the end (it may have been reopened after breaking).
 */
function workload(
  disk: SimDisk,
  log: PartitionLog,
  model: Model,
  steps: number,
  context: string,
): PartitionLog {
  for (let step = 0; step < steps; step++) {
    if (log.broken !== null) break;
    const appends = step % 4 === 3 ? 2 : 1;
    for (let a = 0; a < appends; a++) {
      const values = Array.from(
        { length: 1 + ((step + a) % 3) },
        (_, i) => `v${model.next}-${i}-${'x'.repeat(30)}`,
      );
      model.next++;
      const result = log.append(encodeBatches([records(values)]), {
        assignOffsets: true,
        leaderEpoch: 0,
        nowMs: 1000,
      });
      if (result.kind === 'ok') {
        model.pending.push({ first: result.firstOffset, last: result.lastOffset, values });
      } else {
        assert.equal(result.kind, 'storage_failed', `${context}: append answered ${result.kind}`);
        if (result.kind !== 'storage_failed') continue;
        for (const v of values) (result.definite ? model.refused : model.unknown).add(v);
      }
    }
    log.flush();
    settle(log, model);
    if (log.broken === null) check(log, model, `${context}, step ${step}`);
    if (step % 5 === 4 && log.broken === null) log.applyRetention(10_000);
  }
  void disk;
  return log;
}

function emptyModel(): Model {
  return { acked: new Map(), refused: new Set(), unknown: new Set(), pending: [], next: 0 };
}

/** Mutating calls of the whole workload on a healthy disk, to arm a fault at each in turn. */
function cleanRunOps(): number {
  const disk = new SimDisk();
  disk.mkdir('/data');
  const log = PartitionLog.open(dir, config, disk, 0, openOptions);
  const before = disk.mutatingOps;
  workload(disk, log, emptyModel(), 30, 'clean run');
  assert.ok(log.segmentCount >= 2 && log.logStartOffset > 0, 'the workload rolls and deletes segments');
  return disk.mutatingOps - before;
}

/** After the fault: space back, the log (reopened if it broke) takes more writes; then a power loss. */
function afterFault(disk: SimDisk, log: PartitionLog, model: Model, context: string, seed: number): void {
  disk.freeSpace();
  disk.failSyncs(0);
  let current = log;
  if (current.broken !== null) {
    current.abandon();
    current = PartitionLog.open(dir, config, disk, 0, openOptions);
  }
  check(current, model, `${context}, after the fault`);
  const end = workload(disk, current, model, 6, `${context}, after the fault`);
  assert.equal(end.broken, null, `${context}: the log works again once space is back`);
  disk.crash(createPrng(seed));
  const reopened = PartitionLog.open(dir, config, disk, 0, openOptions);
  check(reopened, model, `${context}, after a power loss`);
  reopened.abandon();
}

describe('a disk that fills up, at every write of the workload in turn', () => {
  const ops = cleanRunOps();

  for (const code of ['ENOSPC', 'EDQUOT'] as const) {
    test(`${code} at any of the workload's mutating calls is a definite refusal that loses nothing acknowledged`, () => {
      let refusals = 0;
      for (let k = 1; k <= ops; k++) {
        const disk = new SimDisk();
        disk.mkdir('/data');
        const model = emptyModel();
        let log = PartitionLog.open(dir, config, disk, 0, openOptions);
        disk.armFull(k, code);
        log = workload(disk, log, model, 30, `${code} at op ${k}`);
        refusals += model.refused.size;
        // A full disk never makes an outcome unknown: every cut-back works without space.
        assert.equal(model.unknown.size, 0, `${code} at op ${k}: no indefinite outcome`);
        afterFault(disk, log, model, `${code} at op ${k}`, k);
      }
      assert.ok(refusals > 0, 'some appends were refused');
    });
  }
});

describe('an fsync that fails, at every sync of the workload in turn', () => {
  test('a failed data sync cuts the log back to its durable end: those records are refused, nothing acknowledged is lost', () => {
    const disk0 = new SimDisk();
    disk0.mkdir('/data');
    const log0 = PartitionLog.open(dir, config, disk0, 0, openOptions);
    const syncsBefore = disk0.syncCount;
    workload(disk0, log0, emptyModel(), 30, 'clean run');
    const syncs = disk0.syncCount - syncsBefore;
    let refusals = 0;
    for (let k = 0; k < syncs; k++) {
      const disk = new SimDisk();
      disk.mkdir('/data');
      const model = emptyModel();
      let log = PartitionLog.open(dir, config, disk, 0, openOptions);
      disk.failSyncs(1, 'EIO', k);
      log = workload(disk, log, model, 30, `EIO at sync ${k}`);
      refusals += model.refused.size;
      afterFault(disk, log, model, `EIO at sync ${k}`, 1000 + k);
    }
    assert.ok(refusals > 0, 'some appends lost their sync and were refused');
  });

  test('when the cut-back fails too, the log is broken, the outcome unknown, and recovery settles it', () => {
    const disk = new SimDisk();
    disk.mkdir('/data');
    const model = emptyModel();
    let log = PartitionLog.open(dir, config, disk, 0, openOptions);
    log = workload(disk, log, model, 3, 'before');
    // The data sync fails, and so does the fsync of the cut that should undo it.
    disk.failSyncs(2, 'EIO');
    const values = ['lost-or-not'];
    const appended = log.append(encodeBatches([records(values)]), {
      assignOffsets: true,
      leaderEpoch: 0,
      nowMs: 1,
    });
    assert.equal(appended.kind, 'ok');
    const flushed = log.flush();
    assert.equal(flushed.kind, 'storage_failed');
    if (flushed.kind === 'storage_failed') assert.equal(flushed.definite, false);
    assert.notEqual(log.broken, null);
    assert.equal(
      log.append(encodeBatches([records(['x'])]), { assignOffsets: true, leaderEpoch: 0, nowMs: 1 }).kind,
      'storage_failed',
    );
    for (const v of values) model.unknown.add(v);
    afterFault(disk, log, model, 'broken log', 7);
  });
});
