// Placing parsed records on partitions and grouping them, one group per partition in request order, so that
// each partition's records travel in one ring frame. Shared by the acceptor (small bodies) and the piscina
// task that handles large ones, so both place records identically: an explicit partition wins, then Kafka's
// murmur2 of the key, then the sticky round-robin partitioner for keyless records.
// Pure apart from Buffer; callable from the acceptor thread and from piscina workers.

import { partitionForKey, type StickyPartitioner } from '../core/partitioner.js';
import { PRODUCE_HEADER_BYTES, recordWireBytes } from '../messages/produce.js';
import type { ParsedRecord } from './produce-body.js';

export interface ProduceGroup {
  readonly partition: number;
  /** Indexes into the request's records, ascending. */
  readonly indexes: number[];
  readonly records: ParsedRecord[];
}

export type GroupResult =
  | { readonly kind: 'ok'; readonly groups: ProduceGroup[] }
  | { readonly kind: 'unknown_partition'; readonly recordIndex: number; readonly partition: number };

const keyScratch = Buffer.alloc(64 * 1024);

export function keyPartition(key: string | Uint8Array, numPartitions: number): number {
  if (typeof key !== 'string') return partitionForKey(key, numPartitions);
  if (key.length * 3 <= keyScratch.byteLength) {
    const length = keyScratch.write(key, 0, 'utf8');
    return partitionForKey(keyScratch, numPartitions, 0, length);
  }
  return partitionForKey(Buffer.from(key, 'utf8'), numPartitions);
}

/**
 * Places and groups `records`. Keyless records take the sticky partitioner's current partition; the caller
 * decides when a batch ends (`sticky.nextBatch()`), e.g. once per event-loop turn, so that every request of a
 * turn lands on one partition and is covered by one write and one fsync.
 */
export function groupByPartition(
  records: readonly ParsedRecord[],
  numPartitions: number,
  sticky: StickyPartitioner,
): GroupResult {
  if (records.length === 1) {
    const only = records[0]!;
    const partition = placeOne(only, numPartitions, sticky);
    if (partition >= numPartitions) return { kind: 'unknown_partition', recordIndex: 0, partition };
    return { kind: 'ok', groups: [{ partition, indexes: [0], records: [only] }] };
  }
  const byPartition = new Map<number, ProduceGroup>();
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    const partition = placeOne(record, numPartitions, sticky);
    if (partition >= numPartitions) return { kind: 'unknown_partition', recordIndex: i, partition };
    let group = byPartition.get(partition);
    if (group === undefined) {
      group = { partition, indexes: [], records: [] };
      byPartition.set(partition, group);
    }
    group.indexes.push(i);
    group.records.push(record);
  }
  return { kind: 'ok', groups: [...byPartition.values()] };
}

/** The partition of one record: its own, its key's, or the sticky partitioner's (may be out of range). */
export function placeOne(record: ParsedRecord, numPartitions: number, sticky: StickyPartitioner): number {
  if (record.partition !== null) return record.partition;
  if (record.key !== null) return keyPartition(record.key, numPartitions);
  return sticky.partition();
}

/**
 * Splits a partition's group into chunks whose produce frames fit `payloadBytesMax`, keeping record order. The
 * chunks are written to the ring one after the other, so the worker appends them back to back: their offsets
 * are contiguous. A request may therefore be larger than one ring frame. Every record fits a frame alone
 * (the record size limit is derived from the frame size).
 */
export function chunkGroup(group: ProduceGroup, payloadBytesMax: number): ProduceGroup[] {
  let bytes = PRODUCE_HEADER_BYTES;
  for (const record of group.records) bytes += recordWireBytes(record);
  if (bytes <= payloadBytesMax) return [group];
  const chunks: ProduceGroup[] = [];
  let current: ProduceGroup = { partition: group.partition, indexes: [], records: [] };
  let currentBytes = PRODUCE_HEADER_BYTES;
  for (let i = 0; i < group.records.length; i++) {
    const record = group.records[i]!;
    const size = recordWireBytes(record);
    if (current.records.length > 0 && currentBytes + size > payloadBytesMax) {
      chunks.push(current);
      current = { partition: group.partition, indexes: [], records: [] };
      currentBytes = PRODUCE_HEADER_BYTES;
    }
    current.indexes.push(group.indexes[i]!);
    current.records.push(record);
    currentBytes += size;
  }
  chunks.push(current);
  return chunks;
}
