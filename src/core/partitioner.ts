// Choosing a partition for a produced record, the way a Kafka client would, so that a key lands on the same
// partition whether it was written through this broker or by a Java producer straight to Kafka.
//
// - Keyed records: Kafka's `Utils.murmur2` (MurmurHash2, seed 0x9747b28c) over the key's bytes, made
//   non-negative with `toPositive` (clear the sign bit, not `Math.abs`, which maps INT_MIN to itself), modulo
//   the partition count. The hash reads a caller's buffer in place: no allocation per call.
// - Keyless records: the sticky partitioner (Kafka's KIP-480). It keeps one partition for a whole batch so a
//   drained batch touches few partition workers, then moves round-robin, so load still spreads evenly.
//
// Pure: no I/O, no clock, no randomness; the caller picks the sticky partitioner's starting partition.
// Callable from any thread; a StickyPartitioner instance belongs to the one thread that created it.
import { assert, assertionFailed } from './assert.js';

const murmurSeed = 0x9747b28c;
const murmurM = 0x5bd1e995;
const murmurR = 24;

/**
 * Kafka's `Utils.murmur2` over `bytes[offset, offset + length)`: a signed 32-bit integer, bit for bit what the
 * Java client computes. Math.imul gives Java's wrapping 32-bit multiply; `>>>` is Java's unsigned shift.
 */
export function murmur2(bytes: Uint8Array, offset = 0, length = bytes.length - offset): number {
  if (!(Number.isInteger(offset) && Number.isInteger(length) && offset >= 0 && length >= 0)) {
    assertionFailed(`murmur2: bad range offset=${offset} length=${length}`);
  }
  if (offset + length > bytes.length)
    assertionFailed(`murmur2: range ${offset}+${length} exceeds ${bytes.length} bytes`);
  let h = (murmurSeed ^ length) | 0;
  const end4 = offset + (length & ~3);
  for (let i = offset; i < end4; i += 4) {
    // Little-endian 4-byte word; the `| 0` keeps it a signed int32 like Java's int.
    let k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24) | 0;
    k = Math.imul(k, murmurM);
    k ^= k >>> murmurR;
    k = Math.imul(k, murmurM);
    h = Math.imul(h, murmurM);
    h ^= k;
  }
  // The tail of 1 to 3 bytes falls through like Java's switch without breaks.
  const tail = length & 3;
  if (tail === 3) h ^= bytes[end4 + 2]! << 16;
  if (tail >= 2) h ^= bytes[end4 + 1]! << 8;
  if (tail >= 1) {
    h ^= bytes[end4]!;
    h = Math.imul(h, murmurM);
  }
  h ^= h >>> 13;
  h = Math.imul(h, murmurM);
  h ^= h >>> 15;
  return h | 0;
}

/** Kafka's `Utils.toPositive`: clears the sign bit, so INT_MIN maps to 0 and -1 to 2^31-1. */
export function toPositive(hash: number): number {
  return hash & 0x7fffffff;
}

/** The partition Kafka's default partitioner picks for a key: `toPositive(murmur2(key)) % numPartitions`. */
export function partitionForKey(
  keyBytes: Uint8Array,
  numPartitions: number,
  offset = 0,
  length = keyBytes.length - offset,
): number {
  if (!(Number.isInteger(numPartitions) && numPartitions >= 1)) {
    assertionFailed(`partitionForKey: numPartitions ${numPartitions} must be a positive integer`);
  }
  return toPositive(murmur2(keyBytes, offset, length)) % numPartitions;
}

/**
 * Sticky round-robin for keyless records. `partition()` answers the current partition and counts the record;
 * after `stickyRecordsMax` records, or when the caller ends a batch with `nextBatch()`, the next record moves
 * to the following partition. Over many batches every partition gets its turn in order, so keyless load
 * spreads evenly, while each drained batch goes to one partition (or a few, for a very large batch).
 *
 * Invariant: 0 <= current < numPartitions and 0 <= recordsInCurrent < stickyRecordsMax.
 */
export class StickyPartitioner {
  private numPartitions: number;
  private readonly stickyRecordsMax: number;
  private current: number;
  private recordsInCurrent = 0;
  /** Partitions keyless records may go to (those led by this node); empty means every partition. */
  private eligible: readonly number[] = [];

  constructor(numPartitions: number, stickyRecordsMax: number, startPartition = 0) {
    assert(
      Number.isInteger(numPartitions) && numPartitions >= 1,
      `StickyPartitioner: numPartitions ${numPartitions} must be a positive integer`,
    );
    assert(
      Number.isInteger(stickyRecordsMax) && stickyRecordsMax >= 1,
      `StickyPartitioner: stickyRecordsMax ${stickyRecordsMax} must be a positive integer`,
    );
    assert(
      Number.isInteger(startPartition) && startPartition >= 0 && startPartition < numPartitions,
      `StickyPartitioner: startPartition ${startPartition} outside [0, ${numPartitions})`,
    );
    this.numPartitions = numPartitions;
    this.stickyRecordsMax = stickyRecordsMax;
    this.current = startPartition;
  }

  /** The partition for the next keyless record; counts the record against the current partition. */
  partition(): number {
    const chosen = this.current;
    this.recordsInCurrent += 1;
    if (this.recordsInCurrent >= this.stickyRecordsMax) this.advance();
    return chosen;
  }

  /**
   * Ends the current batch: the next record goes to the following partition. A batch that placed no record
   * keeps the partition, so empty batches do not skip partitions and the spread stays even.
   */
  nextBatch(): void {
    if (this.recordsInCurrent > 0) this.advance();
  }

  /** Follows a change of the topic's partition count (partitions were added). */
  resize(numPartitions: number): void {
    assert(
      Number.isInteger(numPartitions) && numPartitions >= 1,
      `StickyPartitioner.resize: numPartitions ${numPartitions} must be a positive integer`,
    );
    this.numPartitions = numPartitions;
    this.eligible = this.eligible.filter((p) => p < numPartitions);
    if (this.current >= numPartitions) {
      this.current = 0;
      this.recordsInCurrent = 0;
    }
  }

  /**
   * Restricts keyless records to `partitions` (like Kafka's producer, which skips partitions without an
   * available leader); an empty list lifts the restriction. Sorted, distinct, each below the partition count.
   */
  setEligible(partitions: readonly number[]): void {
    for (const [i, p] of partitions.entries()) {
      assert(Number.isInteger(p) && p >= 0 && p < this.numPartitions, `eligible partition ${p} out of range`);
      assert(i === 0 || p > partitions[i - 1]!, 'eligible partitions must be sorted and distinct');
    }
    this.eligible = partitions.length === this.numPartitions ? [] : [...partitions];
    if (this.eligible.length > 0 && !this.eligible.includes(this.current)) {
      this.current = this.eligible[0]!;
      this.recordsInCurrent = 0;
    }
  }

  /** The partitions keyless records may go to; empty means all. */
  eligiblePartitions(): readonly number[] {
    return this.eligible;
  }

  /** The partition the next record will go to (without counting it). */
  peek(): number {
    return this.current;
  }

  private advance(): void {
    this.recordsInCurrent = 0;
    if (this.eligible.length === 0) {
      this.current = (this.current + 1) % this.numPartitions;
      return;
    }
    // The next eligible partition after the current one, wrapping around.
    const next = this.eligible.find((p) => p > this.current);
    this.current = next ?? this.eligible[0]!;
  }
}
