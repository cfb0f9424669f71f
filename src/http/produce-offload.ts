// The piscina tasks that keep large produce bodies off the acceptor thread, so that one multi-megabyte batch
// never stalls the small requests behind it:
// - a JSON or NDJSON body is parsed, validated, placed and encoded (`planLargeProduce`): the wire payloads of
//   every partition group come back in one buffer; the acceptor only copies them into the rings;
// - a record-batch body (application/vnd.kafka.record-batch) is checked, CRC-32C included, and its checksums
//   swapped for the log's CRC-32 in place (`checkLargeBatchBody`): the body itself is moved back (transferred,
//   not copied) and the acceptor reads the batches' headers again.
// Smaller bodies take the same steps inline (src/broker/acceptor.ts) through the same functions.
// Runs in a piscina worker thread; both functions are also callable directly (tests).

import { move } from 'piscina';
import type { ErrorName } from '../core/errors.js';
import { rewriteBatchCrcs } from '../core/kafka/crc32c.js';
import { type BatchBodyLimits, checkBatchBody } from '../core/log/batch-body.js';
import { StickyPartitioner } from '../core/partitioner.js';
import { encodeProduceRequest, type ProduceHeader, produceRequestBytes } from '../messages/produce.js';
import { crc32 } from '../storage/crc.js';
import {
  type ProduceLimits,
  parseBatchProduce,
  parseJsonBody,
  parseNdjsonProduce,
  parseSingleProduce,
} from './produce-body.js';
import { chunkGroup, groupByPartition } from './produce-groups.js';

export interface LargeProduceTask {
  readonly body: Uint8Array;
  readonly batch: boolean;
  /** The batch body is NDJSON (one record per line) rather than `{"records": [...]}`. */
  readonly ndjson: boolean;
  readonly limits: ProduceLimits;
  readonly nowMs: number;
  readonly numPartitions: number;
  readonly stickyStart: number;
  readonly stickyRecordsMax: number;
  /** Partitions keyless records may go to (those led by the node); empty means all. */
  readonly stickyEligible: readonly number[];
  /** Largest produce frame the rings take: larger partition groups are split. */
  readonly payloadBytesMax: number;
}

export interface PlannedGroup {
  readonly partition: number;
  readonly at: number;
  readonly length: number;
  readonly indexes: Int32Array;
}

export type LargeProducePlan =
  | {
      readonly kind: 'ok';
      readonly payloads: Uint8Array;
      readonly groups: PlannedGroup[];
      readonly recordCount: number;
      readonly recordBytes: number;
      readonly firstTimestampMs: number;
    }
  | { readonly kind: 'error'; readonly error: ErrorName; readonly message: string };

const placeholderHeader: ProduceHeader = { topicSeq: 0, partition: 0, acks: 2, producer: null, timeoutMs: 0 };

export function planLargeProduce(task: LargeProduceTask): LargeProducePlan {
  const text = Buffer.from(task.body.buffer, task.body.byteOffset, task.body.byteLength).toString('utf8');
  let parsed: ReturnType<typeof parseNdjsonProduce>;
  if (task.ndjson) parsed = parseNdjsonProduce(text, task.limits, task.nowMs);
  else {
    const json = parseJsonBody(text);
    if (!json.ok) return { kind: 'error', error: 'bad_request', message: json.message };
    parsed = task.batch
      ? parseBatchProduce(json.value, task.limits, task.nowMs)
      : parseSingleProduce(json.value, task.limits, task.nowMs);
  }
  if (parsed.kind === 'error') return parsed;
  const sticky = new StickyPartitioner(task.numPartitions, task.stickyRecordsMax, task.stickyStart);
  sticky.setEligible(task.stickyEligible);
  const grouped = groupByPartition(parsed.records, task.numPartitions, sticky);
  if (grouped.kind === 'unknown_partition') {
    return {
      kind: 'error',
      error: 'unknown_partition',
      message: `${task.batch ? `records[${grouped.recordIndex}]: ` : ''}the topic has partitions 0..${task.numPartitions - 1}; there is no partition ${grouped.partition}`,
    };
  }
  const chunks = grouped.groups.flatMap((g) => chunkGroup(g, task.payloadBytesMax));
  let total = 0;
  const sizes = chunks.map((g) => produceRequestBytes(g.records));
  for (const size of sizes) total += size;
  const payloads = Buffer.allocUnsafe(total);
  const view = new DataView(payloads.buffer, payloads.byteOffset, payloads.byteLength);
  const groups: PlannedGroup[] = [];
  let at = 0;
  let recordBytes = 0;
  chunks.forEach((group, i) => {
    // Partition, acks and wait are placeholders: the acceptor patches them when it copies the payload out.
    const length = encodeProduceRequest(payloads, view, at, placeholderHeader, group.records);
    groups.push({ partition: group.partition, at, length, indexes: Int32Array.from(group.indexes) });
    at += sizes[i]!;
  });
  for (const record of parsed.records) {
    recordBytes += fieldBytes(record.key) + fieldBytes(record.value);
  }
  return {
    kind: 'ok',
    payloads,
    groups,
    recordCount: parsed.records.length,
    recordBytes,
    firstTimestampMs: parsed.records[0]!.timestampMs,
  };
}

function fieldBytes(field: string | Uint8Array | null): number {
  if (field === null) return 0;
  return typeof field === 'string' ? Buffer.byteLength(field, 'utf8') : field.byteLength;
}

/** A record-batch body to check; `body` is transferred to the pool thread and back. */
export interface BatchBodyTask {
  readonly kind: 'batches';
  readonly body: Uint8Array;
  readonly limits: BatchBodyLimits;
}

/** The body, checked and rewritten to CRC-32 in place; or the refusal that names its first problem. */
export type BatchBodyOutcome =
  | Uint8Array
  | { readonly kind: 'error'; readonly error: ErrorName; readonly message: string };

export function checkLargeBatchBody(task: BatchBodyTask): BatchBodyOutcome {
  const checked = checkBatchBody(task.body, task.limits);
  if (checked.kind === 'error') return checked;
  // Kafka checksums batches with CRC-32C, the log with CRC-32: the same bytes, checksummed its way.
  rewriteBatchCrcs(task.body, crc32);
  return task.body;
}

/**
 * The piscina entry. A produce plan is structured-cloned back (for its one payload buffer, a memcpy); a checked
 * record-batch body is moved back without a copy.
 */
export default function run(task: LargeProduceTask | BatchBodyTask): LargeProducePlan | BatchBodyOutcome {
  if ('kind' in task && task.kind === 'batches') {
    const outcome = checkLargeBatchBody(task);
    return outcome instanceof Uint8Array ? (move(outcome) as Uint8Array) : outcome;
  }
  return planLargeProduce(task as LargeProduceTask);
}
