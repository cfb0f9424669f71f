// The in-memory form of a segment's sparse offset index and time index, their file encodings and lookups.
// Pure: the storage shell reads and writes the files; this module only holds entries and does the maths.
// Owned by the one partition-worker thread that owns the segment.
//
// Offset index file (`<baseOffset>.index`), one 8-byte entry per indexed batch, big-endian:
//
// | offset | size | field          | notes                                              |
// |--------|------|----------------|----------------------------------------------------|
// |      0 |    4 | relativeOffset | int32; batch base offset - segment base offset     |
// |      4 |    4 | position       | int32; byte position of that batch in the `.log`   |
//
// Time index file (`<baseOffset>.timeindex`), one 12-byte entry, big-endian:
//
// | offset | size | field          | notes                                                           |
// |--------|------|----------------|-----------------------------------------------------------------|
// |      0 |    8 | timestampMs    | int64; the largest timestamp of every record before this batch |
// |      8 |    4 | relativeOffset | int32; base offset of the batch, relative to the segment        |
//
// An offset entry is added for a batch once `indexIntervalBytes` of log have been written since the previous
// entry (the first batch is never indexed: a floor lookup that finds nothing means position 0). A time entry
// is added at the same batch when the running maximum timestamp has grown since the last time entry, so both
// columns of each index are strictly increasing.
import { assert } from '../assert.js';
import { readInt32, readInt64, writeInt32, writeInt64 } from './record-batch.js';

export const OFFSET_INDEX_ENTRY_BYTES = 8;
export const TIME_INDEX_ENTRY_BYTES = 12;

/** Positions and relative offsets are int32 on disk. */
export const INT32_MAX = 0x7fffffff;

export class OffsetIndex {
  // Small to start (an idle partition's segment holds a handful of entries); doubled as it grows.
  private relativeOffsets = new Int32Array(8);
  private positions = new Int32Array(8);
  private countValue = 0;

  get count(): number {
    return this.countValue;
  }

  relativeOffsetAt(i: number): number {
    assert(i >= 0 && i < this.countValue, 'offset index entry out of range');
    return this.relativeOffsets[i]!;
  }

  positionAt(i: number): number {
    assert(i >= 0 && i < this.countValue, 'offset index entry out of range');
    return this.positions[i]!;
  }

  append(relativeOffset: number, position: number): void {
    assert(relativeOffset >= 0 && relativeOffset <= INT32_MAX, 'relative offset out of int32 range');
    assert(position >= 0 && position <= INT32_MAX, 'index position out of int32 range');
    const n = this.countValue;
    if (n > 0) {
      assert(relativeOffset > this.relativeOffsets[n - 1]!, 'offset index relative offsets must increase');
      assert(position > this.positions[n - 1]!, 'offset index positions must increase');
    }
    if (n === this.relativeOffsets.length) {
      this.relativeOffsets = grow(this.relativeOffsets);
      this.positions = grow(this.positions);
    }
    this.relativeOffsets[n] = relativeOffset;
    this.positions[n] = position;
    this.countValue = n + 1;
  }

  /** Index of the last entry whose relative offset is <= `relativeOffset`, or -1. */
  floor(relativeOffset: number): number {
    return floorSearch(this.relativeOffsets, this.countValue, relativeOffset);
  }

  /** Keeps the first `count` entries. */
  truncateToCount(count: number): void {
    assert(count >= 0 && count <= this.countValue, 'offset index truncate beyond its length');
    this.countValue = count;
  }

  /** Bytes of memory the entries' arrays take (their capacity, not only the entries in use). */
  get residentBytes(): number {
    return this.relativeOffsets.byteLength + this.positions.byteLength;
  }

  /** Gives back the capacity past the entries (a sealed segment's index grows no more). */
  trimCapacity(): void {
    const n = Math.max(1, this.countValue);
    if (this.relativeOffsets.length === n) return;
    this.relativeOffsets = this.relativeOffsets.slice(0, n);
    this.positions = this.positions.slice(0, n);
  }

  /** Encodes entries [from, to) in the file format. */
  encode(from: number, to: number): Uint8Array {
    assert(from >= 0 && from <= to && to <= this.countValue, 'offset index encode range');
    const out = new Uint8Array((to - from) * OFFSET_INDEX_ENTRY_BYTES);
    for (let i = from; i < to; i++) {
      const p = (i - from) * OFFSET_INDEX_ENTRY_BYTES;
      writeInt32(out, p, this.relativeOffsets[i]!);
      writeInt32(out, p + 4, this.positions[i]!);
    }
    return out;
  }

  /**
   * Loads entries from file bytes, keeping the longest prefix that is well formed: whole entries, both
   * columns strictly increasing, positions below `logSizeBytes`, relative offsets below `relativeOffsetLimit`.
   */
  static decode(bytes: Uint8Array, logSizeBytes: number, relativeOffsetLimit: number): OffsetIndex {
    // Straight into arrays of the right size, not entry by entry through `append`: a sealed segment's index
    // is read back whole when the index cache dropped it, so this runs on the read path.
    const n = Math.floor(bytes.length / OFFSET_INDEX_ENTRY_BYTES);
    const relativeOffsets = new Int32Array(Math.max(8, n));
    const positions = new Int32Array(Math.max(8, n));
    let count = 0;
    for (let i = 0; i < n; i++) {
      const relativeOffset = readInt32(bytes, i * OFFSET_INDEX_ENTRY_BYTES);
      const position = readInt32(bytes, i * OFFSET_INDEX_ENTRY_BYTES + 4);
      if (relativeOffset < 0 || position <= 0 || position >= logSizeBytes) break;
      if (relativeOffset >= relativeOffsetLimit) break;
      if (count > 0 && (relativeOffset <= relativeOffsets[count - 1]! || position <= positions[count - 1]!))
        break;
      relativeOffsets[count] = relativeOffset;
      positions[count] = position;
      count++;
    }
    const index = new OffsetIndex();
    index.relativeOffsets = relativeOffsets;
    index.positions = positions;
    index.countValue = count;
    return index;
  }
}

export class TimeIndex {
  private timestampsMs = new Float64Array(8);
  private relativeOffsets = new Int32Array(8);
  private countValue = 0;

  get count(): number {
    return this.countValue;
  }

  timestampAt(i: number): number {
    assert(i >= 0 && i < this.countValue, 'time index entry out of range');
    return this.timestampsMs[i]!;
  }

  relativeOffsetAt(i: number): number {
    assert(i >= 0 && i < this.countValue, 'time index entry out of range');
    return this.relativeOffsets[i]!;
  }

  /** The largest timestamp recorded (records before the last entry), or -Infinity when empty. */
  get lastTimestampMs(): number {
    return this.countValue === 0 ? Number.NEGATIVE_INFINITY : this.timestampsMs[this.countValue - 1]!;
  }

  append(timestampMs: number, relativeOffset: number): void {
    assert(Number.isSafeInteger(timestampMs), 'time index timestamp must be a safe integer');
    assert(relativeOffset >= 0 && relativeOffset <= INT32_MAX, 'relative offset out of int32 range');
    const n = this.countValue;
    if (n > 0) {
      assert(timestampMs > this.timestampsMs[n - 1]!, 'time index timestamps must increase');
      assert(relativeOffset > this.relativeOffsets[n - 1]!, 'time index relative offsets must increase');
    }
    if (n === this.relativeOffsets.length) {
      this.timestampsMs = grow(this.timestampsMs);
      this.relativeOffsets = grow(this.relativeOffsets);
    }
    this.timestampsMs[n] = timestampMs;
    this.relativeOffsets[n] = relativeOffset;
    this.countValue = n + 1;
  }

  /** Index of the last entry whose timestamp is < `timestampMs`, or -1. */
  lastBefore(timestampMs: number): number {
    let lo = 0;
    let hi = this.countValue - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.timestampsMs[mid]! < timestampMs) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /** Keeps only entries whose relative offset is <= `relativeOffset`. */
  truncateAfterRelativeOffset(relativeOffset: number): void {
    const keep = floorSearch(this.relativeOffsets, this.countValue, relativeOffset) + 1;
    this.countValue = keep;
  }

  truncateToCount(count: number): void {
    assert(count >= 0 && count <= this.countValue, 'time index truncate beyond its length');
    this.countValue = count;
  }

  /** Bytes of memory the entries' arrays take (their capacity). */
  get residentBytes(): number {
    return this.timestampsMs.byteLength + this.relativeOffsets.byteLength;
  }

  /** Gives back the capacity past the entries. */
  trimCapacity(): void {
    const n = Math.max(1, this.countValue);
    if (this.relativeOffsets.length === n) return;
    this.timestampsMs = this.timestampsMs.slice(0, n);
    this.relativeOffsets = this.relativeOffsets.slice(0, n);
  }

  encode(from: number, to: number): Uint8Array {
    assert(from >= 0 && from <= to && to <= this.countValue, 'time index encode range');
    const out = new Uint8Array((to - from) * TIME_INDEX_ENTRY_BYTES);
    for (let i = from; i < to; i++) {
      const p = (i - from) * TIME_INDEX_ENTRY_BYTES;
      writeInt64(out, p, this.timestampsMs[i]!);
      writeInt32(out, p + 8, this.relativeOffsets[i]!);
    }
    return out;
  }

  /** Loads the longest well-formed prefix (whole entries, both columns strictly increasing). */
  static decode(bytes: Uint8Array, relativeOffsetLimit: number): TimeIndex {
    const n = Math.floor(bytes.length / TIME_INDEX_ENTRY_BYTES);
    const timestampsMs = new Float64Array(Math.max(8, n));
    const relativeOffsets = new Int32Array(Math.max(8, n));
    let count = 0;
    for (let i = 0; i < n; i++) {
      const timestampMs = readInt64(bytes, i * TIME_INDEX_ENTRY_BYTES);
      const relativeOffset = readInt32(bytes, i * TIME_INDEX_ENTRY_BYTES + 8);
      if (
        !Number.isSafeInteger(timestampMs) ||
        relativeOffset <= 0 ||
        relativeOffset >= relativeOffsetLimit
      ) {
        break;
      }
      if (
        count > 0 &&
        (timestampMs <= timestampsMs[count - 1]! || relativeOffset <= relativeOffsets[count - 1]!)
      ) {
        break;
      }
      timestampsMs[count] = timestampMs;
      relativeOffsets[count] = relativeOffset;
      count++;
    }
    const index = new TimeIndex();
    index.timestampsMs = timestampsMs;
    index.relativeOffsets = relativeOffsets;
    index.countValue = count;
    return index;
  }
}

/** Index of the last element of sorted `values[0, count)` that is <= `target`, or -1. */
export function floorSearch(values: Int32Array, count: number, target: number): number {
  let lo = 0;
  let hi = count - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid]! <= target) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

function grow<T extends Int32Array | Float64Array>(array: T): T {
  const grown = new (array.constructor as new (length: number) => T)(array.length * 2);
  grown.set(array);
  return grown;
}
