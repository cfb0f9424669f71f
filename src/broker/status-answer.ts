// What a client is told for each status a partition worker (local or the leader's, over the data link) answers:
// the error of src/core/errors.ts, a message naming the partition and what to do, and whether the outcome is
// unknown (indefinite). One table for HTTP and WebSocket, produce and fetch.
// Pure; called on the acceptor (main) thread.
import type { ErrorName } from '../core/errors.js';
import { readFetchDetail } from '../messages/fetch.js';
import { Status } from '../messages/status.js';

export interface StatusAnswer {
  readonly name: ErrorName;
  readonly message: string;
  readonly indefinite: boolean;
}

/** The answer for a produce that did not succeed. `detail` is the produce answer's detail field. */
export function produceStatusAnswer(
  status: number,
  topic: string,
  partition: number,
  dataDir: string,
  detail: number,
): StatusAnswer {
  const tp = `${topic}-${partition}`;
  switch (status) {
    case Status.StorageFull:
      return {
        name: 'storage_full',
        message: `the disk holding ${tp} (data dir ${dataDir} on its leader) is full or over quota: nothing was written; writes resume by themselves once space is freed`,
        indefinite: false,
      };
    case Status.StorageUnavailable:
      return {
        name: 'storage_unavailable',
        message: `the storage of ${tp} failed with an I/O error and is being repaired: nothing was written; the broker log has the error`,
        indefinite: false,
      };
    case Status.StorageError:
      return {
        name: 'storage_unavailable',
        message: `the write to ${tp} failed and could not be undone either: the outcome is unknown; the partition is being repaired`,
        indefinite: true,
      };
    case Status.UnknownPartition:
      return {
        name: 'unknown_topic',
        message: `topic '${topic}' was deleted, or is not known to its leader yet; retry`,
        indefinite: false,
      };
    case Status.TooLarge:
      return {
        name: 'payload_too_large',
        message: `the records exceed the batch limit of ${tp} (an idempotent request must fit one batch of 1 MiB)`,
        indefinite: false,
      };
    case Status.ShuttingDown:
      return {
        name: 'overloaded',
        message: 'the leader is shutting down; retry (leadership moves to another replica)',
        indefinite: false,
      };
    case Status.NotLeader:
      return {
        name: 'no_leader',
        message: `the broker asked no longer leads ${tp} (leadership is moving); nothing was written; retry`,
        indefinite: false,
      };
    case Status.NotEnoughReplicas:
      return {
        name: 'no_leader',
        message: `${tp} has ${detail} in-sync replica(s), fewer than its min.insync.replicas: an acks=all write could not be made durable on enough brokers, so nothing was written; retry once replicas catch up, or use acks=1`,
        indefinite: false,
      };
    case Status.AckTimeout:
      return {
        name: 'request_timeout',
        message: `the records were written to the leader of ${tp} but did not reach min.insync.replicas in time: the outcome is unknown`,
        indefinite: true,
      };
    case Status.LostLeadership:
      return {
        name: 'no_leader',
        message: `the leader of ${tp} lost its leadership after writing the records and before they were replicated: the outcome is unknown`,
        indefinite: true,
      };
    case Status.OutOfOrderSequence:
      return {
        name: 'out_of_order_sequence',
        message: `the sequence number does not follow this producer's last batch on ${tp}: expected ${detail}; nothing was written`,
        indefinite: false,
      };
    case Status.FencedProducerEpoch:
      return {
        name: 'conflict',
        message: `a newer epoch (${detail}) of this producer id exists on ${tp}: this producer is fenced; nothing was written`,
        indefinite: false,
      };
    case Status.UnknownProducer:
      return {
        name: 'out_of_order_sequence',
        message: `${tp} holds no state for this producer id (new, or expired): its first batch must have sequence 0; nothing was written`,
        indefinite: false,
      };
    case Status.Overloaded:
      return {
        name: 'overloaded',
        message: `too many acks=all requests are waiting on ${tp}; nothing was written; retry`,
        indefinite: false,
      };
    default:
      return { name: 'internal', message: `unexpected worker status ${status} for ${tp}`, indefinite: true };
  }
}

/** The answer for a fetch the worker refused (any status but Ok). */
export function fetchStatusAnswer(
  status: number,
  payload: Uint8Array,
  topic: string,
  partition: number,
  offset: number,
  logStartOffset: number,
  highWatermark: number,
): StatusAnswer {
  const tp = `${topic}-${partition}`;
  switch (status) {
    case Status.UnknownPartition:
      return {
        name: 'unknown_topic',
        message: `topic '${topic}' was deleted, or is not known to its leader yet; retry`,
        indefinite: false,
      };
    case Status.OffsetOutOfRange:
      return {
        name: 'offset_out_of_range',
        message: `offset ${offset} is outside the log of ${tp}: valid offsets are ${logStartOffset}..${highWatermark}`,
        indefinite: false,
      };
    case Status.CorruptData: {
      const [first, end] = readFetchDetail(payload);
      return {
        name: 'corrupt_data',
        message: corruptRangeMessage(topic, partition, first, end),
        indefinite: false,
      };
    }
    case Status.TooLarge: {
      const [baseOffset, batchBytes] = readFetchDetail(payload);
      return {
        name: 'payload_too_large',
        message: `the stored batch at offset ${baseOffset} of ${tp} is ${batchBytes} bytes, more than one response frame holds; restart the broker with a larger --ring-bytes`,
        indefinite: false,
      };
    }
    case Status.StorageUnavailable:
      return {
        name: 'storage_unavailable',
        message: `the storage of ${tp} failed and is being repaired; retry shortly`,
        indefinite: false,
      };
    case Status.NotLeader:
      return {
        name: 'no_leader',
        message: `the broker asked no longer leads ${tp} (leadership is moving); retry`,
        indefinite: false,
      };
    case Status.HighWatermarkNotReady:
      return {
        name: 'no_leader',
        message: `the new leader of ${tp} has not yet confirmed what its predecessor acknowledged; retry in a moment`,
        indefinite: false,
      };
    default:
      return {
        name: 'internal',
        message: `unexpected worker status ${status} for a fetch of ${tp}`,
        indefinite: false,
      };
  }
}

/** What a client is told about a damaged range: which offsets, and how to step over them. */
export function corruptRangeMessage(topic: string, partition: number, first: number, end: number): string {
  return `offsets ${first}..${end - 1} of topic '${topic}' partition ${partition} are damaged on disk and cannot be served; consume from offset ${end} to skip them (the broker log names the segment file)`;
}
