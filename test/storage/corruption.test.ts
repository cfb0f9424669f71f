// Recovery on real files in a temp directory: a log whose last batch is cut at every byte position, or has
// one byte flipped, reopens with exactly the whole good batches before it, and appends continue after them.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BatchField } from '../../src/core/log/record-batch.js';
import { createPrng } from '../../src/core/prng.js';
import { RealDisk } from '../../src/storage/disk.js';
import { DEFAULT_LOG_CONFIG, type LogConfig, PartitionLog } from '../../src/storage/partition-log.js';
import { encodeBatches, type ModelRecord, randomRecord, readAll } from './helpers.js';

/**
 * Real files, but without the fsyncs: these tests damage the files themselves and reopen hundreds of
 * times, and what they check (recovery from the bytes on disk) does not depend on the syncs, which would
 * only make the run slow on a busy disk.
 */
class UnsyncedRealDisk extends RealDisk {
  override fdatasync(): void {}
  override fsync(): void {}
  override fsyncDir(): void {}
}

const disk = new UnsyncedRealDisk();
let root = '';

before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'storage-corruption-'));
});
after(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

interface Built {
  readonly files: Map<string, Buffer>;
  readonly batchStarts: number[];
  readonly lastSegmentFile: string;
  readonly lastBatchBase: number;
  readonly logEndOffset: number;
}

/** Writes batches, then leaves the directory as a crash (abandon) or a clean close would, and snapshots it. */
function build(dir: string, config: LogConfig, batchCount: number, clean: boolean): Built {
  const rng = createPrng(batchCount * 7 + (clean ? 1 : 0));
  const log = PartitionLog.open(dir, config, disk, 0);
  let lastBatchBase = 0;
  for (let b = 0; b < batchCount; b++) {
    const records: ModelRecord[] = [];
    for (let r = 0; r < 1 + (b % 3); r++) records.push(randomRecord(rng, 1000 + b, 30));
    const result = log.append(encodeBatches([records]), {
      assignOffsets: true,
      leaderEpoch: 1,
      nowMs: 1000 + b,
    });
    assert.equal(result.kind, 'ok');
    if (result.kind === 'ok') lastBatchBase = result.firstOffset;
  }
  log.flush();
  const logEndOffset = log.logEndOffset;
  const segments = log.segmentInfos();
  if (clean) log.close();
  else log.abandon();
  const files = new Map<string, Buffer>();
  for (const name of fs.readdirSync(dir)) files.set(name, fs.readFileSync(path.join(dir, name)));
  const lastSegmentFile = `${segments.at(-1)!.baseOffset.toString().padStart(20, '0')}.log`;
  // Batch starts of the last segment, from the bytes themselves.
  const bytes = files.get(lastSegmentFile)!;
  const batchStarts: number[] = [];
  for (let pos = 0; pos < bytes.length; pos += 12 + bytes.readInt32BE(pos + BatchField.batchLength)) {
    batchStarts.push(pos);
  }
  return { files, batchStarts, lastSegmentFile, lastBatchBase, logEndOffset };
}

function restore(dir: string, built: Built): void {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of built.files) fs.writeFileSync(path.join(dir, name), bytes);
}

/** Reopens and checks that the log ends exactly before the last batch and that appends continue there. */
function expectLastBatchDropped(dir: string, config: LogConfig, built: Built, context: string): void {
  const log = PartitionLog.open(dir, config, disk, 5000);
  assert.equal(log.logEndOffset, built.lastBatchBase, `${context}: log end`);
  const records = readAll(log, 0, 1 + (built.lastBatchBase % 700));
  assert.deepEqual(
    records.map((r) => r.offset),
    Array.from({ length: built.lastBatchBase }, (_, i) => i),
    `${context}: exactly the whole batches before the damaged one`,
  );
  const appended = log.append(
    encodeBatches([[{ timestampMs: 9, key: null, value: new Uint8Array([1]), headers: [] }]]),
    {
      assignOffsets: true,
      leaderEpoch: 2,
      nowMs: 5000,
    },
  );
  assert.deepEqual(appended, {
    kind: 'ok',
    firstOffset: built.lastBatchBase,
    lastOffset: built.lastBatchBase,
    batchCount: 1,
  });
  assert.equal(readAll(log, 0).length, built.lastBatchBase + 1, `${context}: the new record reads back`);
  log.abandon();
}

const variants: { name: string; config: LogConfig; batches: number; clean: boolean }[] = [
  {
    name: 'after a crash',
    config: { ...DEFAULT_LOG_CONFIG, indexIntervalBytes: 64 },
    batches: 12,
    clean: false,
  },
  {
    name: 'after a clean close',
    config: { ...DEFAULT_LOG_CONFIG, indexIntervalBytes: 64 },
    batches: 12,
    clean: true,
  },
  {
    name: 'in the last of several segments',
    config: { ...DEFAULT_LOG_CONFIG, segmentBytes: 700, maxBatchBytes: 600, indexIntervalBytes: 100 },
    batches: 20,
    clean: false,
  },
];

describe('a torn or corrupt last batch is dropped on reopen', () => {
  for (const variant of variants) {
    test(`cutting the last batch at every byte ${variant.name} leaves exactly the whole batches before it`, () => {
      const dir = path.join(root, `cut-${variant.batches}-${variant.clean}`);
      const built = build(dir, variant.config, variant.batches, variant.clean);
      const start = built.batchStarts.at(-1)!;
      const end = built.files.get(built.lastSegmentFile)!.length;
      assert.ok(end - start > 61, 'the last batch has a body');
      for (let cut = start; cut < end; cut++) {
        restore(dir, built);
        fs.truncateSync(path.join(dir, built.lastSegmentFile), cut);
        expectLastBatchDropped(dir, variant.config, built, `cut at ${cut}`);
      }
    });

    test(`flipping any protected byte of the last batch ${variant.name} drops it`, () => {
      const dir = path.join(root, `flip-${variant.batches}-${variant.clean}`);
      const built = build(dir, variant.config, variant.batches, variant.clean);
      const start = built.batchStarts.at(-1)!;
      const end = built.files.get(built.lastSegmentFile)!.length;
      for (let at = start; at < end; at++) {
        const field = at - start;
        // The leader epoch sits outside the CRC on purpose (the leader patches it in place), as in Kafka.
        if (field >= BatchField.partitionLeaderEpoch && field < BatchField.magic) continue;
        restore(dir, built);
        const file = path.join(dir, built.lastSegmentFile);
        const bytes = fs.readFileSync(file);
        bytes[at] = bytes[at]! ^ (1 << (at % 8));
        fs.writeFileSync(file, bytes);
        expectLastBatchDropped(dir, variant.config, built, `flip at ${at} (field byte ${field})`);
      }
    });
  }
});
