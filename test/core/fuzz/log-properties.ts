// Fuzz properties of the record-batch decoder and of segment recovery (issue 16). The decoder over random
// bytes and over valid batches with random single- and multi-byte flips (and cuts): it never throws, always
// ends (every step consumes bytes), and with CRC checking it never reports a record that was not written.
// Recovery: a log built on the simulated disk, then damaged (flipped bytes in any of its files, a cut file, a
// power loss that tears and flips unsynced bytes), reopens without an exception, serves at every offset
// either exactly the record written there or a damage report whose range holds the offset, and takes
// appends again after its recovered end.
// Pure (the disk is simulated); runs on the main thread of a test or of tools/fuzz.ts.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  BatchField,
  type DecodedRecord,
  forEachRecord,
  readInt32,
  writeInt64,
} from '../../../src/core/log/record-batch.js';
import { createPrng } from '../../../src/core/prng.js';
import { crc32 } from '../../../src/storage/crc.js';
import { DEFAULT_LOG_CONFIG, type LogConfig, PartitionLog } from '../../../src/storage/partition-log.js';
import { SimDisk } from '../../../src/storage/sim-disk.js';
import { encodeBatches, type ModelRecord, randomRecord, type StoredRecord } from '../../storage/helpers.js';
import { type FuzzProperty, fuzzProperty } from './fuzz-support.js';

// ---------------------------------------------------------------------------------------------------------
// The decoder.

const recordArb: fc.Arbitrary<ModelRecord> = fc.record({
  timestampMs: fc.integer({ min: 0, max: 2 ** 40 }),
  key: fc.option(fc.uint8Array({ maxLength: 12 }), { nil: null }),
  value: fc.option(fc.uint8Array({ maxLength: 40 }), { nil: null }),
  headers: fc.array(
    fc.record({
      key: fc.string({ unit: 'grapheme', maxLength: 6 }),
      value: fc.option(fc.uint8Array({ maxLength: 6 }), { nil: null }),
    }),
    { maxLength: 3 },
  ),
});
const batchesArb = fc.array(fc.array(recordArb, { minLength: 1, maxLength: 4 }), {
  minLength: 1,
  maxLength: 5,
});

interface Written {
  readonly bytes: Uint8Array;
  readonly records: StoredRecord[];
  /** Byte position of each batch's baseOffset field (outside the CRC, so a flip there is not detected). */
  readonly baseOffsetFields: number[];
}

/** Encodes `batches` back to back with contiguous offsets from `firstOffset`, as a segment holds them. */
function written(batches: ModelRecord[][], firstOffset: number): Written {
  const bytes = encodeBatches(batches);
  const records: StoredRecord[] = [];
  const baseOffsetFields: number[] = [];
  let offset = firstOffset;
  let pos = 0;
  for (const batch of batches) {
    writeInt64(bytes, pos + BatchField.baseOffset, offset);
    baseOffsetFields.push(pos);
    for (const r of batch) records.push({ ...r, offset: offset++ });
    pos += 12 + readInt32(bytes, pos + BatchField.batchLength);
  }
  assert.equal(pos, bytes.length);
  return { bytes, records, baseOffsetFields };
}

const sameBytes = (a: Uint8Array | null, b: Uint8Array | null) =>
  a === null || b === null ? a === b : Buffer.from(a).equals(Buffer.from(b));

/** Whether the decoded record holds exactly the model record's timestamp, key, value and headers. */
function sameContent(decoded: DecodedRecord, model: ModelRecord): boolean {
  return (
    decoded.timestampMs === model.timestampMs &&
    sameBytes(decoded.key, model.key) &&
    sameBytes(decoded.value, model.value) &&
    decoded.headers.length === model.headers.length &&
    decoded.headers.every(
      (h, i) =>
        sameBytes(h.key, Buffer.from(model.headers[i]!.key, 'utf8')) &&
        sameBytes(h.value, model.headers[i]!.value),
    )
  );
}

/** Runs the decoder with and without CRC checks, checking that it ends sanely; returns what the CRC walk saw. */
function decodeBoth(bytes: Uint8Array, fromOffset: number): DecodedRecord[] {
  for (const withCrc of [false, true]) {
    let visits = 0;
    const seen: DecodedRecord[] = [];
    const result = forEachRecord(
      bytes,
      (r) => {
        visits++;
        // Every record takes at least 7 bytes, so more visits than that means a loop.
        assert.ok(visits <= bytes.length / 7 + 1, 'the decoder visits more records than the bytes can hold');
        assert.ok(Number.isSafeInteger(r.offset) && r.offset >= fromOffset, `visited offset ${r.offset}`);
        if (withCrc) seen.push({ ...r, headers: [...r.headers] });
      },
      withCrc ? { fromOffset, crc32 } : { fromOffset },
    );
    assert.ok(result.kind === 'ok' || result.kind === 'corrupt', 'a result value');
    if (result.kind === 'corrupt') {
      assert.ok(result.position >= 0 && result.position < bytes.length, `position ${result.position}`);
      assert.ok(typeof result.reason === 'string' && result.reason.length > 0, 'a reason');
    } else {
      assert.ok(result.records >= 0 && result.batches >= 0 && Number.isSafeInteger(result.nextOffset));
    }
    if (withCrc) return seen;
  }
  return [];
}

const flipArb = fc.record({
  at: fc.nat(),
  width: fc.integer({ min: 1, max: 8 }),
  xor: fc.integer({ min: 1, max: 255 }),
});

// ---------------------------------------------------------------------------------------------------------
// Recovery.

const dir = '/data/t-0';
const logConfig: LogConfig = {
  ...DEFAULT_LOG_CONFIG,
  segmentBytes: 900,
  maxBatchBytes: 600,
  indexIntervalBytes: 150,
};

export type Damage =
  | {
      readonly kind: 'flip';
      readonly file: number;
      readonly at: number;
      readonly width: number;
      readonly xor: number;
    }
  | { readonly kind: 'cut'; readonly file: number; readonly at: number }
  | { readonly kind: 'crash'; readonly seed: number };

const damageArb: fc.Arbitrary<Damage> = fc.oneof(
  fc.record({
    kind: fc.constant('flip' as const),
    file: fc.nat(),
    at: fc.nat(),
    width: fc.integer({ min: 1, max: 8 }),
    xor: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({ kind: fc.constant('cut' as const), file: fc.nat(), at: fc.nat() }),
  fc.record({ kind: fc.constant('crash' as const), seed: fc.nat() }),
);

export function damage(disk: SimDisk, what: Damage): void {
  if (what.kind === 'crash') return void disk.crash(createPrng(what.seed));
  const files = disk.readdir(dir).sort();
  const path = `${dir}/${files[what.file % files.length]!}`;
  const size = disk.fileBytes(path).length;
  if (size === 0) return;
  const at = what.at % size;
  if (what.kind === 'cut') {
    const fd = disk.open(path, false);
    disk.truncate(fd, at);
    disk.fsync(fd);
    disk.close(fd);
    return;
  }
  const bytes = disk.fileBytes(path).subarray(at, Math.min(size, at + what.width));
  for (let i = 0; i < bytes.length; i++) bytes[i] = bytes[i]! ^ what.xor;
  disk.corrupt(path, at, bytes);
}

/** Builds a log of several segments from `seed`; closes it cleanly or leaves it as a crash would. */
export function buildLog(seed: number, clean: boolean): { disk: SimDisk; records: StoredRecord[] } {
  const disk = new SimDisk();
  disk.mkdir('/data');
  const rng = createPrng(seed);
  const log = PartitionLog.open(dir, logConfig, disk, 0);
  const records: StoredRecord[] = [];
  const batchCount = 5 + rng.nextInt(30);
  for (let b = 0; b < batchCount; b++) {
    const batch: ModelRecord[] = [];
    const recordCount = 1 + rng.nextInt(3);
    for (let r = 0; r < recordCount; r++) batch.push(randomRecord(rng, 1000 + b, 40));
    const result = log.append(encodeBatches([batch]), {
      assignOffsets: true,
      leaderEpoch: 1,
      nowMs: 1000 + b,
    });
    assert.equal(result.kind, 'ok');
    if (result.kind !== 'ok') throw new Error('append failed');
    batch.forEach((r, i) => {
      records.push({ ...r, offset: result.firstOffset + i });
    });
    if (rng.nextInt(4) === 0) log.flush();
  }
  if (clean) log.close();
  else {
    if (rng.nextInt(2) === 0) log.flush();
    log.abandon();
  }
  return { disk, records };
}

export function checkRecovered(disk: SimDisk, records: readonly StoredRecord[]): void {
  const log = PartitionLog.open(dir, logConfig, disk, 0);
  assert.ok(log.logStartOffset <= log.logEndOffset, 'log start <= log end');
  assert.ok(log.logEndOffset <= records.length, `log end ${log.logEndOffset} <= ${records.length} written`);
  for (let offset = log.logStartOffset; offset < log.logEndOffset; offset++) {
    for (const maxBytes of [1, 4096]) {
      const result = log.read(offset, maxBytes);
      if (result.kind === 'corrupt') {
        assert.ok(
          result.firstOffset <= offset && offset < result.endOffset,
          `range ${result.firstOffset}..${result.endOffset} holds ${offset}`,
        );
        continue;
      }
      if (result.kind === 'batch_too_large') continue;
      assert.equal(result.kind, 'ok', `read at ${offset}: ${result.kind}`);
      if (result.kind !== 'ok') continue;
      const decoded = forEachRecord(
        result.bytes,
        (r) => {
          const model = records[r.offset];
          assert.ok(model !== undefined, `served offset ${r.offset} was never written`);
          assert.ok(sameContent(r, model), `served record at ${r.offset} differs from the one written`);
        },
        { fromOffset: offset, crc32 },
      );
      assert.equal(decoded.kind, 'ok', `a read's bytes decode: ${JSON.stringify(decoded)}`);
    }
  }
  const end = log.logEndOffset;
  const appended = log.append(encodeBatches([[{ timestampMs: 5000, key: null, value: null, headers: [] }]]), {
    assignOffsets: true,
    leaderEpoch: 2,
    nowMs: 5000,
  });
  assert.equal(appended.kind, 'ok', `an append after recovery: ${JSON.stringify(appended)}`);
  if (appended.kind === 'ok') assert.equal(appended.firstOffset, end);
  log.close();
}

// ---------------------------------------------------------------------------------------------------------
// Properties.

export const logProperties: readonly FuzzProperty[] = [
  fuzzProperty('the record-batch decoder never throws or loops on random bytes', 300, () =>
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat({ max: 100 }), (bytes, fromOffset) => {
      decodeBoth(bytes, fromOffset);
    }),
  ),
  fuzzProperty('the decoder over a random header and body never throws', 300, () =>
    // Random bytes that pass the cheap header checks (length, magic, counts) reach the record walk.
    fc.property(
      fc.uint8Array({ minLength: 61, maxLength: 200 }),
      fc.integer({ min: 1, max: 5 }),
      (bytes, recordCount) => {
        const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        view.setUint32(0, 0);
        view.setUint32(4, 0);
        view.setInt32(BatchField.batchLength, bytes.length - 12);
        view.setUint8(BatchField.magic, 2);
        view.setInt32(BatchField.lastOffsetDelta, recordCount - 1);
        view.setInt32(BatchField.recordCount, recordCount);
        decodeBoth(bytes, 0);
      },
    ),
  ),
  fuzzProperty(
    'valid batches with flipped bytes or a cut never yield a record that was not written',
    300,
    () =>
      fc.property(
        batchesArb,
        fc.nat({ max: 1000 }),
        fc.array(flipArb, { minLength: 1, maxLength: 3 }),
        fc.option(fc.nat(), { nil: null }),
        (batches, firstOffset, flips, cut) => {
          const w = written(batches, firstOffset);
          const intact = decodeBoth(w.bytes, 0);
          assert.equal(intact.length, w.records.length, 'the intact bytes decode whole');
          const bytes = w.bytes.slice(0, cut === null ? w.bytes.length : cut % (w.bytes.length + 1));
          let baseOffsetTouched = false;
          for (const flip of flips) {
            if (bytes.length === 0) break;
            const at = flip.at % bytes.length;
            for (let i = at; i < Math.min(bytes.length, at + flip.width); i++) {
              bytes[i] = bytes[i]! ^ flip.xor;
              if (w.baseOffsetFields.some((p) => i >= p && i < p + 8)) baseOffsetTouched = true;
            }
          }
          const seen = decodeBoth(bytes, 0);
          // The CRC walk stops at the first damaged batch: what it saw is a prefix of what was written, record
          // for record (a baseOffset outside the CRC may move the offsets, never the contents).
          assert.ok(seen.length <= w.records.length, 'no more records than written');
          seen.forEach((r, i) => {
            assert.ok(sameContent(r, w.records[i]!), `record ${i} is the one written`);
            if (!baseOffsetTouched) assert.equal(r.offset, w.records[i]!.offset, `record ${i}: offset`);
          });
        },
      ),
  ),
  fuzzProperty('a damaged log recovers without throwing and serves only records written', 120, () =>
    fc.property(
      fc.nat(),
      fc.boolean(),
      fc.array(damageArb, { minLength: 1, maxLength: 3 }),
      (seed, clean, damages) => {
        const { disk, records } = buildLog(seed, clean);
        for (const what of damages) damage(disk, what);
        checkRecovered(disk, records);
      },
    ),
  ),
];
