// Fetch-path cost of checking every batch's CRC (issue 10, item 2): `PartitionLog.read` into a reused buffer,
// which checks each batch's header and CRC before handing it out, next to the same reads without any check
// (a raw pread of the same byte ranges) and to zlib's crc32 alone over the same bytes. Interleaved rounds on
// one warm log, medians reported. Prints a table and writes JSON to bench/results/fetch-crc-<iso>.json.
//
//   node --import tsx bench/fetch-crc.ts [--mib 64] [--rounds 5]
//
// Temporary files live under .tmp/ in the project (gitignored) and are deleted at the end.
// Runs on the main thread only: it is a benchmark, not part of the broker.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BatchWriter, forEachRecord } from '../src/core/log/record-batch.js';
import { recordFieldsJson } from '../src/http/record-json.js';
import { crc32 } from '../src/storage/crc.js';
import { RealDisk } from '../src/storage/disk.js';
import { DEFAULT_LOG_CONFIG, PartitionLog } from '../src/storage/partition-log.js';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const totalMiB = option('mib', 64);
const rounds = option('rounds', 5);
const MiB = 1024 * 1024;
const root = path.resolve(import.meta.dirname, '..', '.tmp', `bench-fetch-crc-${process.pid}`);
const disk = new RealDisk();

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

interface Row {
  readonly recordBytes: number;
  readonly batchRecords: number;
  readonly fetchBytes: number;
  readonly checkedMBPerSec: number;
  readonly uncheckedMBPerSec: number;
  readonly crcOnlyMBPerSec: number;
  readonly checkedOverUnchecked: number;
  readonly usPerFetchChecked: number;
  readonly usPerFetchUnchecked: number;
  /** What the acceptor then does with the same bytes (decode + JSON), for scale. */
  readonly usPerFetchAcceptorJson: number;
}

function benchCase(recordBytes: number, batchRecords: number, fetchBytes: number): Row {
  const dir = path.join(root, `r${recordBytes}-b${batchRecords}-f${fetchBytes}`);
  fs.mkdirSync(root, { recursive: true });
  const log = PartitionLog.open(dir, { ...DEFAULT_LOG_CONFIG, segmentBytes: 256 * MiB }, disk, 0);
  const writer = new BatchWriter(4 * MiB, 64 * MiB);
  const value = new Uint8Array(recordBytes).fill(7);
  while (log.sizeBytes < totalMiB * MiB) {
    writer.reset();
    for (let b = 0; b < Math.max(1, Math.floor(MiB / (recordBytes * batchRecords))); b++) {
      writer.beginBatch();
      for (let r = 0; r < batchRecords; r++) writer.addRecord(1, null, value);
      writer.endBatch(crc32);
    }
    log.append(writer.bytes(), { assignOffsets: true, leaderEpoch: 0, nowMs: 1 });
  }
  log.flush();
  const end = log.logEndOffset;
  const target = new Uint8Array(fetchBytes + MiB);
  // The fetches to replay: offsets and byte ranges, taken from one checked pass.
  const fetches: { offset: number; position: number; bytes: number }[] = [];
  let position = 0;
  for (let offset = 0; offset < end; ) {
    const result = log.read(offset, fetchBytes, Number.POSITIVE_INFINITY, target);
    if (result.kind !== 'ok') throw new Error(`read failed: ${result.kind}`);
    fetches.push({ offset, position, bytes: result.bytes.byteLength });
    position += result.bytes.byteLength;
    offset = result.nextOffset;
  }
  const segmentFile = path.join(dir, `${'0'.padStart(20, '0')}.log`);
  const fd = fs.openSync(segmentFile, 'r');
  const totalBytes = position;
  const checked: number[] = [];
  const unchecked: number[] = [];
  const crcOnly: number[] = [];
  const json: number[] = [];
  for (let round = 0; round < rounds; round++) {
    let t = process.hrtime.bigint();
    for (const f of fetches) log.read(f.offset, fetchBytes, Number.POSITIVE_INFINITY, target);
    checked.push(Number(process.hrtime.bigint() - t) / 1e9);
    t = process.hrtime.bigint();
    for (const f of fetches) fs.readSync(fd, target, 0, f.bytes, f.position);
    unchecked.push(Number(process.hrtime.bigint() - t) / 1e9);
    t = process.hrtime.bigint();
    for (const f of fetches) {
      fs.readSync(fd, target, 0, f.bytes, f.position);
      crc32(target.subarray(0, f.bytes));
    }
    crcOnly.push(Number(process.hrtime.bigint() - t) / 1e9 - unchecked.at(-1)!);
    t = process.hrtime.bigint();
    let parts = 0;
    for (const f of fetches) {
      fs.readSync(fd, target, 0, f.bytes, f.position);
      const out: string[] = [];
      forEachRecord(target.subarray(0, f.bytes), (r) => out.push(recordFieldsJson(r, false)), {
        fromOffset: f.offset,
      });
      parts += out.join(',').length;
    }
    json.push(Number(process.hrtime.bigint() - t) / 1e9 - unchecked.at(-1)!);
    if (parts === 0) throw new Error('no records decoded');
  }
  fs.closeSync(fd);
  log.close();
  fs.rmSync(dir, { recursive: true, force: true });
  const mbps = (sec: number) => totalBytes / 1e6 / sec;
  return {
    recordBytes,
    batchRecords,
    fetchBytes,
    checkedMBPerSec: mbps(median(checked)),
    uncheckedMBPerSec: mbps(median(unchecked)),
    crcOnlyMBPerSec: mbps(Math.max(median(crcOnly), 1e-9)),
    checkedOverUnchecked: median(unchecked) / median(checked),
    usPerFetchChecked: (median(checked) / fetches.length) * 1e6,
    usPerFetchUnchecked: (median(unchecked) / fetches.length) * 1e6,
    usPerFetchAcceptorJson: (median(json) / fetches.length) * 1e6,
  };
}

function main(): void {
  const rows: Row[] = [];
  try {
    for (const [recordBytes, batchRecords, fetchBytes] of [
      [50, 1000, MiB],
      [1024, 100, MiB],
      [1024, 1, 256 * 1024],
      [100, 1, 64 * 1024],
    ] as const) {
      rows.push(benchCase(recordBytes, batchRecords, fetchBytes));
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  console.log(
    `fetch path over a warm ${totalMiB} MiB log, medians of ${rounds} interleaved rounds (MB/s of batch bytes)`,
  );
  console.log(
    '| record B | records/batch | fetch bytes | checked read MB/s | unchecked pread MB/s | crc32 alone MB/s | checked / unchecked | µs per fetch (checked / unchecked) | µs per fetch, acceptor decode + JSON |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    console.log(
      `| ${r.recordBytes} | ${r.batchRecords} | ${r.fetchBytes} | ${r.checkedMBPerSec.toFixed(0)} | ${r.uncheckedMBPerSec.toFixed(0)} | ${r.crcOnlyMBPerSec.toFixed(0)} | ${r.checkedOverUnchecked.toFixed(2)} | ${r.usPerFetchChecked.toFixed(1)} / ${r.usPerFetchUnchecked.toFixed(1)} | ${r.usPerFetchAcceptorJson.toFixed(0)} |`,
    );
  }
  const out = path.resolve(import.meta.dirname, 'results');
  fs.mkdirSync(out, { recursive: true });
  const file = path.join(out, `fetch-crc-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, JSON.stringify({ totalMiB, rounds, rows }, null, 2));
  console.log(`\nwrote ${path.relative(process.cwd(), file)}`);
}

main();
