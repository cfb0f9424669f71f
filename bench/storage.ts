// Storage benchmark: append throughput of PartitionLog next to a raw writeSync (+ fdatasync) loop that
// writes the same bytes in the same pattern, sequential read-and-decode throughput, and the reopen time of
// a 1 GiB log with a torn tail. Prints a table and writes JSON to bench/results/storage-<iso>.json.
//
//   node --import tsx bench/storage.ts [--reps 3] [--sync-batches 400] [--nosync-mib 64]
//                                      [--recovery-gib 1] [--recovery-reps 3] [--skip-recovery]
//
// Temporary files live under .tmp/ in the project (gitignored) and are deleted at the end.
// Runs on the main thread only: it is a benchmark, not part of the broker.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BatchWriter, forEachRecord } from '../src/core/log/record-batch.js';
import { crc32 } from '../src/storage/crc.js';
import { RealDisk } from '../src/storage/disk.js';
import { DEFAULT_LOG_CONFIG, type LogConfig, PartitionLog } from '../src/storage/partition-log.js';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const reps = option('reps', 3);
const syncBatches = option('sync-batches', 400);
const nosyncMiB = option('nosync-mib', 64);
const recoveryGiB = option('recovery-gib', 1);
const recoveryReps = option('recovery-reps', 3);
const skipRecovery = process.argv.includes('--skip-recovery');

const root = path.resolve(import.meta.dirname, '..', '.tmp', `bench-storage-${process.pid}`);
const disk = new RealDisk();
const MiB = 1024 * 1024;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function seconds(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

interface AppendCase {
  readonly recordBytes: number;
  readonly batchRecords: number;
  readonly fsync: boolean;
  readonly batches: number;
}

interface AppendRow extends AppendCase {
  readonly logRecordsPerSec: number;
  readonly logMBPerSec: number;
  readonly rawRecordsPerSec: number;
  readonly rawMBPerSec: number;
  readonly ratio: number;
}

/** No-fsync cases alternate log and raw in this many chunks; fsync cases alternate every batch. */
const NOSYNC_CHUNKS = 10;

function chunking(c: AppendCase): { chunks: number; perChunk: number } {
  const chunks = c.fsync ? c.batches - 1 : NOSYNC_CHUNKS;
  return { chunks, perChunk: Math.max(1, Math.floor((c.batches - 1) / chunks)) };
}

/**
 * One repetition of a case: the log (BatchWriter + append [+ flush] per batch) and the raw loop (writeSync
 * of a buffer of the same size [+ fdatasync] per batch) run in alternating chunks, so that both see the same
 * disk and the same neighbours' load. Returns the seconds spent in each and the bytes written.
 */
function runCase(c: AppendCase, dir: string): { logSec: number; rawSec: number; bytes: number } {
  const config: LogConfig = { ...DEFAULT_LOG_CONFIG, maxBatchBytes: 4 * MiB };
  const log = PartitionLog.open(path.join(dir, 'log-0'), config, disk, Date.now());
  const rawFd = fs.openSync(path.join(dir, 'raw.log'), 'w');
  const writer = new BatchWriter(64 * 1024, 8 * MiB);
  const value = new Uint8Array(c.recordBytes).fill(120);
  let raw = new Uint8Array(0);
  let rawPosition = 0;
  let bytes = 0;
  let logSec = 0;
  let rawSec = 0;
  const logChunk = (batches: number) => {
    const start = process.hrtime.bigint();
    for (let b = 0; b < batches; b++) {
      writer.reset();
      writer.beginBatch();
      const now = 1_700_000_000_000 + b;
      for (let r = 0; r < c.batchRecords; r++) writer.addRecord(now, null, value);
      writer.endBatch(crc32);
      const encoded = writer.bytes();
      const result = log.append(encoded, { assignOffsets: true, leaderEpoch: 1, nowMs: now });
      if (result.kind !== 'ok') throw new Error(`append failed: ${JSON.stringify(result)}`);
      if (c.fsync) log.flush();
      bytes += encoded.length;
      if (raw.length !== encoded.length) raw = new Uint8Array(encoded.length).fill(7);
    }
    logSec += seconds(start);
  };
  const rawChunk = (batches: number) => {
    const start = process.hrtime.bigint();
    for (let b = 0; b < batches; b++) {
      fs.writeSync(rawFd, raw, 0, raw.length, rawPosition);
      rawPosition += raw.length;
      if (c.fsync) fs.fdatasyncSync(rawFd);
    }
    rawSec += seconds(start);
  };
  logChunk(1); // sizes the raw buffer like the encoded batch
  const { chunks, perChunk } = chunking(c);
  for (let chunk = 0; chunk < chunks; chunk++) {
    if (chunk % 2 === 0) {
      logChunk(perChunk);
      rawChunk(perChunk + (chunk === 0 ? 1 : 0));
    } else {
      rawChunk(perChunk);
      logChunk(perChunk);
    }
  }
  log.delete();
  fs.closeSync(rawFd);
  fs.rmSync(dir, { recursive: true, force: true });
  return { logSec, rawSec, bytes };
}

function appendCases(): AppendCase[] {
  const cases: AppendCase[] = [];
  for (const recordBytes of [50, 1024]) {
    for (const batchRecords of [1, 100, 1000]) {
      for (const fsync of [true, false]) {
        const batchBytes = batchRecords * (recordBytes + 8) + 61;
        const batches = fsync
          ? syncBatches
          : Math.max(200, Math.min(50_000, Math.ceil((nosyncMiB * MiB) / batchBytes)));
        cases.push({ recordBytes, batchRecords, fsync, batches });
      }
    }
  }
  return cases;
}

function benchAppends(): AppendRow[] {
  const rows: AppendRow[] = [];
  for (const c of appendCases()) {
    const logSecs: number[] = [];
    const rawSecs: number[] = [];
    let bytes = 0;
    for (let rep = 0; rep < reps; rep++) {
      const run = runCase(c, path.join(root, `append-${rep}`));
      logSecs.push(run.logSec);
      rawSecs.push(run.rawSec);
      bytes = run.bytes;
    }
    const { chunks, perChunk } = chunking(c);
    const batches = 1 + chunks * perChunk;
    const records = batches * c.batchRecords;
    const logSec = median(logSecs);
    const rawSec = median(rawSecs);
    rows.push({
      ...c,
      batches,
      logRecordsPerSec: records / logSec,
      logMBPerSec: bytes / MiB / logSec,
      rawRecordsPerSec: records / rawSec,
      rawMBPerSec: bytes / MiB / rawSec,
      ratio: rawSec / logSec,
    });
  }
  return rows;
}

interface ReadRow {
  readonly logBytes: number;
  readonly records: number;
  readonly mbPerSec: number;
  readonly recordsPerSec: number;
}

function benchRead(recordBytes: number, batchRecords: number, totalMiB: number): ReadRow {
  const dir = path.join(root, `read-${recordBytes}`);
  const config: LogConfig = { ...DEFAULT_LOG_CONFIG, maxBatchBytes: 4 * MiB };
  const log = PartitionLog.open(dir, config, disk, 0);
  const writer = new BatchWriter(64 * 1024, 8 * MiB);
  const value = new Uint8Array(recordBytes).fill(3);
  while (log.sizeBytes < totalMiB * MiB) {
    writer.reset();
    writer.beginBatch();
    for (let r = 0; r < batchRecords; r++) writer.addRecord(1_700_000_000_000, null, value);
    writer.endBatch(crc32);
    log.append(writer.bytes(), { assignOffsets: true, leaderEpoch: 1, nowMs: 0 });
  }
  log.flush();
  const secs: number[] = [];
  let records = 0;
  const target = new Uint8Array(2 * MiB);
  for (let rep = 0; rep < reps; rep++) {
    records = 0;
    let valueBytes = 0;
    const start = process.hrtime.bigint();
    let offset = 0;
    while (offset < log.logEndOffset) {
      const result = log.read(offset, MiB, Number.POSITIVE_INFINITY, target);
      if (result.kind !== 'ok') throw new Error('read below log start');
      forEachRecord(
        result.bytes,
        (record) => {
          records++;
          valueBytes += record.value?.length ?? 0;
        },
        { fromOffset: offset },
      );
      offset = result.nextOffset;
    }
    secs.push(seconds(start));
    if (valueBytes !== records * recordBytes) throw new Error('decoded the wrong bytes');
  }
  const logBytes = log.sizeBytes;
  log.delete();
  const sec = median(secs);
  return { logBytes, records, mbPerSec: logBytes / MiB / sec, recordsPerSec: records / sec };
}

interface RecoveryRow {
  readonly logBytes: number;
  readonly segments: number;
  readonly buildSec: number;
  /** The active segment (nearly full) was never flushed: all of it is verified. */
  readonly unflushedTornReopenMs: number;
  readonly unflushedBytesScanned: number;
  /** The active segment was flushed after every append (group commit), so recovery checkpoints bound the scan. */
  readonly flushedTornReopenMs: number;
  readonly flushedBytesScanned: number;
  readonly cleanReopenMs: number;
}

function benchRecovery(): RecoveryRow {
  const dir = path.join(root, 'recovery');
  const config: LogConfig = { ...DEFAULT_LOG_CONFIG, maxBatchBytes: 4 * MiB, syncIntervalMs: 60_000 };
  let log = PartitionLog.open(dir, config, disk, 0);
  const writer = new BatchWriter(2 * MiB, 8 * MiB);
  const value = new Uint8Array(1024).fill(9);
  const segmentsWanted = Math.max(1, Math.round((recoveryGiB * 1024 * MiB) / config.segmentBytes));
  let now = 1_700_000_000_000;
  /** Appends 1000-record (~1 MiB) batches until the next one would roll the last of `segmentsWanted`. */
  const fillActive = (flushEach: boolean) => {
    for (;;) {
      writer.reset();
      writer.beginBatch();
      for (let r = 0; r < 1000; r++) writer.addRecord(now, null, value);
      writer.endBatch(crc32);
      const active = log.segmentInfos().at(-1)!;
      if (log.segmentCount === segmentsWanted && active.sizeBytes + writer.sizeBytes > config.segmentBytes)
        return;
      log.append(writer.bytes(), { assignOffsets: true, leaderEpoch: 1, nowMs: now++ });
      if (flushEach) log.flush();
    }
  };
  /** Kills the log (no flush, no checkpoint), cuts into its last batch, and times the reopen. */
  const tearAndReopen = (): { ms: number; scanned: number } => {
    const active = log.segmentInfos().at(-1)!;
    log.abandon();
    const file = path.join(dir, `${active.baseOffset.toString().padStart(20, '0')}.log`);
    fs.truncateSync(file, active.sizeBytes - 1 - Math.floor(Math.random() * 1000));
    const start = process.hrtime.bigint();
    log = PartitionLog.open(dir, config, disk, now);
    const ms = seconds(start) * 1000;
    if (log.recovery.bytesTruncated === 0) throw new Error('the torn tail was not detected');
    return { ms, scanned: log.recovery.bytesScanned };
  };
  const buildStart = process.hrtime.bigint();
  fillActive(false);
  const buildSec = seconds(buildStart);
  const logBytes = log.sizeBytes;
  const segments = log.segmentCount;
  const unflushed: { ms: number; scanned: number }[] = [];
  const flushed: { ms: number; scanned: number }[] = [];
  for (let rep = 0; rep < recoveryReps; rep++) {
    for (const flushEach of [false, true]) {
      // Refill the active segment: a durable truncation to its base, then ~127 MiB of appends.
      log.truncateTo(log.segmentInfos().at(-1)!.baseOffset);
      fillActive(flushEach);
      (flushEach ? flushed : unflushed).push(tearAndReopen());
    }
  }
  log.close();
  const clean: number[] = [];
  for (let rep = 0; rep < recoveryReps; rep++) {
    const start = process.hrtime.bigint();
    log = PartitionLog.open(dir, config, disk, now);
    clean.push(seconds(start) * 1000);
    log.close();
  }
  log = PartitionLog.open(dir, config, disk, now);
  log.delete();
  return {
    logBytes,
    segments,
    buildSec,
    unflushedTornReopenMs: median(unflushed.map((r) => r.ms)),
    unflushedBytesScanned: median(unflushed.map((r) => r.scanned)),
    flushedTornReopenMs: median(flushed.map((r) => r.ms)),
    flushedBytesScanned: median(flushed.map((r) => r.scanned)),
    cleanReopenMs: median(clean),
  };
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function main(): void {
  fs.mkdirSync(root, { recursive: true });
  try {
    console.log(`storage benchmark: ${reps} repetitions, medians; node ${process.version}`);
    const appends = benchAppends();
    console.log(
      '\nappend (log = BatchWriter + PartitionLog.append [+ flush]; raw = writeSync [+ fdatasync])',
    );
    console.log(
      'record B | batch | fsync | batches |   log rec/s |  log MB/s |   raw rec/s |  raw MB/s | log/raw',
    );
    for (const r of appends) {
      console.log(
        [
          String(r.recordBytes).padStart(8),
          String(r.batchRecords).padStart(5),
          (r.fsync ? 'yes' : 'no').padStart(5),
          String(r.batches).padStart(7),
          fmt(r.logRecordsPerSec).padStart(11),
          fmt(r.logMBPerSec, 1).padStart(9),
          fmt(r.rawRecordsPerSec).padStart(11),
          fmt(r.rawMBPerSec, 1).padStart(9),
          fmt(r.ratio, 2).padStart(7),
        ].join(' | '),
      );
    }
    const reads = [benchRead(50, 1000, 64), benchRead(1024, 100, 128)];
    console.log('\nsequential read + decode (1 MiB reads into a reused buffer, forEachRecord)');
    console.log('  log MiB |     records |   MB/s |     records/s');
    for (const r of reads) {
      console.log(
        `${fmt(r.logBytes / MiB, 0).padStart(9)} | ${fmt(r.records).padStart(11)} | ${fmt(r.mbPerSec, 0).padStart(6)} | ${fmt(r.recordsPerSec).padStart(13)}`,
      );
    }
    let recovery: RecoveryRow | null = null;
    if (!skipRecovery) {
      recovery = benchRecovery();
      console.log('\nrecovery');
      console.log(
        `  ${fmt(recovery.logBytes / MiB)} MiB in ${recovery.segments} segments, built in ${fmt(recovery.buildSec, 1)} s`,
      );
      console.log(
        `  torn tail, active segment never flushed: ${fmt(recovery.unflushedTornReopenMs, 1)} ms (scanned ${fmt(recovery.unflushedBytesScanned / MiB, 1)} MiB)`,
      );
      console.log(
        `  torn tail, flushed after every append: ${fmt(recovery.flushedTornReopenMs, 1)} ms (scanned ${fmt(recovery.flushedBytesScanned / MiB, 1)} MiB)`,
      );
      console.log(`  reopen after a clean close: ${fmt(recovery.cleanReopenMs, 1)} ms`);
    }
    const target = appends.find((r) => r.recordBytes === 50 && r.batchRecords === 1000 && r.fsync)!;
    console.log(
      `\ntargets: 50 B x 1000 with fsync at ${fmt(target.ratio, 2)} of raw (>= 0.70)` +
        (recovery === null
          ? ''
          : `; 1 GiB torn-tail reopen ${fmt(Math.max(recovery.unflushedTornReopenMs, recovery.flushedTornReopenMs), 0)} ms (< 1000)`),
    );
    const resultsDir = path.resolve(import.meta.dirname, 'results');
    fs.mkdirSync(resultsDir, { recursive: true });
    const file = path.join(resultsDir, `storage-${new Date().toISOString().replaceAll(':', '-')}.json`);
    fs.writeFileSync(
      file,
      `${JSON.stringify({ node: process.version, reps, appends, reads, recovery }, null, 2)}\n`,
    );
    console.log(`results: ${path.relative(process.cwd(), file)}`);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main();
