// Memory of segment indexes as a log grows: a PartitionLog (no broker, default log config: 128 MiB segments,
// an index entry per 4 KiB) takes `--gib` GiB of small batches (about 4 KiB each, so every batch gets an index
// entry: the worst case for index memory), once keeping every sealed segment's indexes in memory and once with a
// partition worker's index cache (INDEX_CACHE_BYTES_PER_WORKER). At every GiB it samples the sealed segments'
// index bytes in memory and the process's ArrayBuffer bytes (after a full collection with --expose-gc); then it times random and sequential 64 KiB reads over
// the whole log with each, since a dropped index is read back from its file when next used.
// Usage: node --expose-gc --import tsx bench/index-memory.ts [--gib 4] [--reads 20000] [--budget-mib 8]
// Writes bench/results/index-memory-<iso>.json/.md. The data lives under .tmp/ and is removed at the end; it needs
// twice `--gib` GiB free. Main thread only: a benchmark, not part of the broker.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BatchWriter } from '../src/core/log/record-batch.js';
import { createPrng } from '../src/core/prng.js';
import { crc32 } from '../src/storage/crc.js';
import { RealDisk } from '../src/storage/disk.js';
import { INDEX_CACHE_BYTES_PER_WORKER, SegmentIndexCache } from '../src/storage/index-cache.js';
import { DEFAULT_LOG_CONFIG, PartitionLog } from '../src/storage/partition-log.js';
import { report } from './lib/table.js';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const gib = option('gib', 4);
const reads = option('reads', 20_000);
// The cache's budget; a smaller one than a worker's shows the read-back cost on a smaller log.
const budgetBytes = option('budget-mib', INDEX_CACHE_BYTES_PER_WORKER / 2 ** 20) * 2 ** 20;
const root = path.resolve(import.meta.dirname, '..');
const dataRoot = path.join(root, '.tmp', `bench-index-memory-${process.pid}`);
const disk = new RealDisk();
const MiB = 1024 * 1024;
const recordsPerBatch = 40;
const valueBytes = 90;

function oneBatch(): Uint8Array {
  const writer = new BatchWriter(8192);
  writer.beginBatch();
  const value = new Uint8Array(valueBytes).fill(0x61);
  for (let i = 0; i < recordsPerBatch; i++) writer.addRecord(Date.now(), null, value, []);
  writer.endBatch(crc32);
  return writer.bytes().slice();
}

interface Run {
  readonly mode: string;
  readonly rows: Record<string, unknown>[];
  readonly randomReadsPerS: number;
  readonly sequentialMiBPerS: number;
  readonly loads: number;
}

function arrayBuffersMb(): number {
  return process.memoryUsage().arrayBuffers / MiB;
}

function writeAndRead(mode: 'every index in memory' | 'index cache'): Run {
  const cache = new SegmentIndexCache(mode === 'index cache' ? budgetBytes : Number.POSITIVE_INFINITY);
  const dir = path.join(dataRoot, mode === 'index cache' ? 'cached' : 'kept');
  const log = PartitionLog.open(dir, DEFAULT_LOG_CONFIG, disk, Date.now(), { indexCache: cache });
  const batch = oneBatch();
  const rows: Record<string, unknown>[] = [];
  const total = gib * 1024 * MiB;
  let nextSample = 1024 * MiB;
  const started = performance.now();
  for (let written = 0; written < total; ) {
    const result = log.append(batch, { assignOffsets: true, leaderEpoch: 0, nowMs: Date.now() });
    if (result.kind !== 'ok') throw new Error(`append: ${JSON.stringify(result)}`);
    written += batch.length;
    if (written >= nextSample) {
      nextSample += 1024 * MiB;
      (globalThis as { gc?: () => void }).gc?.();
      rows.push({
        mode,
        writtenGiB: Math.round(written / (1024 * MiB)),
        segments: log.segmentCount,
        'sealed index MB in memory': (cache.residentBytes / MiB).toFixed(2),
        'ArrayBuffer MB (process)': arrayBuffersMb().toFixed(1),
        'write MiB/s': (written / MiB / ((performance.now() - started) / 1000)).toFixed(0),
      });
    }
  }
  log.flush();
  // Random 64 KiB reads anywhere in the log, then one sequential pass over the first GiB.
  const rng = createPrng(42);
  const end = log.logEndOffset;
  const loadsBefore = cache.loads;
  let t = performance.now();
  for (let i = 0; i < reads; i++) {
    const result = log.read(rng.nextInt(end), 64 * 1024);
    if (result.kind !== 'ok') throw new Error(`read: ${result.kind}`);
  }
  const randomReadsPerS = reads / ((performance.now() - t) / 1000);
  t = performance.now();
  let offset = 0;
  let bytes = 0;
  while (bytes < 1024 * MiB && offset < end) {
    const result = log.read(offset, 1 * MiB);
    if (result.kind !== 'ok') throw new Error(`read: ${result.kind}`);
    bytes += result.bytes.length;
    offset = result.nextOffset;
  }
  const sequentialMiBPerS = bytes / MiB / ((performance.now() - t) / 1000);
  const loads = cache.loads - loadsBefore;
  log.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return { mode, rows, randomReadsPerS, sequentialMiBPerS, loads };
}

function main(): void {
  const free = fs.statfsSync(path.join(root));
  if ((free.bavail * free.bsize) / 2 ** 30 < gib + 2) throw new Error(`needs ${gib + 2} GiB free`);
  fs.mkdirSync(dataRoot, { recursive: true });
  fs.mkdirSync(path.join(root, 'bench/results'), { recursive: true });
  try {
    const runs = [writeAndRead('every index in memory'), writeAndRead('index cache')];
    const rows = runs.flatMap((run) => run.rows);
    for (const run of runs) {
      rows.push({
        mode: run.mode,
        writtenGiB: `reads: ${reads} random 64 KiB`,
        segments: '',
        'sealed index MB in memory': `${run.randomReadsPerS.toFixed(0)} reads/s`,
        'ArrayBuffer MB (process)': `indexes read back: ${run.loads}`,
        'write MiB/s': `sequential 1 MiB reads: ${run.sequentialMiBPerS.toFixed(0)} MiB/s`,
      });
    }
    const base = path.join(
      root,
      'bench/results',
      `index-memory-${new Date().toISOString().replaceAll(':', '-')}`,
    );
    report(base, rows, { gib, reads, budgetBytes });
  } finally {
    fs.rmSync(dataRoot, { recursive: true, force: true });
  }
}

main();
