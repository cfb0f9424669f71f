// The status byte that opens every answer between the acceptor and a partition worker, and between nodes over
// the data link: one table, so a status means the same thing on a ring and on a socket. Whether an outcome is
// definite (nothing was appended) or indefinite (it may or may not have been) is part of each entry; the
// acceptor maps statuses to HTTP and WebSocket errors in one place (src/broker/status-answer.ts).
// Pure: callable from any thread.

export const Status = {
  Ok: 0,
  /** The worker holds no replica of the partition (a deleted topic, or the metadata moved on). */
  UnknownPartition: 1,
  /** The request's records do not fit the log's batch limit; nothing was written. */
  TooLarge: 2,
  /** The requested offset is below the log start or past what may be read. */
  OffsetOutOfRange: 3,
  /** Indefinite: the write reached the file, its fsync failed, and the log could not be cut back either. */
  StorageError: 4,
  ShuttingDown: 5,
  /** Fetch: the range starts in damaged stored bytes; a detail carries the range. */
  CorruptData: 6,
  /** Nothing was written: the partition's disk is full or over quota. */
  StorageFull: 7,
  /** Nothing was written (or read): the partition's storage failed and is being repaired. */
  StorageUnavailable: 8,
  /** This replica does not lead the partition (now); nothing was written. */
  NotLeader: 9,
  /** acks=all with an ISR below min.insync.replicas: nothing was written. */
  NotEnoughReplicas: 10,
  /** A new leader has not yet committed its epoch's start offset: nothing can be read yet. Retriable. */
  HighWatermarkNotReady: 11,
  /** Indefinite: appended, but the high watermark did not reach it in time. */
  AckTimeout: 12,
  /** Indefinite: appended, then leadership was lost before the high watermark reached it. */
  LostLeadership: 13,
  /** Idempotent produce: the sequence does not follow the producer's last one; nothing was written. */
  OutOfOrderSequence: 14,
  /** Idempotent produce: an older epoch than the producer's current one; nothing was written. */
  FencedProducerEpoch: 15,
  /** Idempotent produce: the partition holds nothing for this producer and the batch does not start at 0. */
  UnknownProducer: 16,
  /** Too many requests are waiting on the partition; nothing was written. */
  Overloaded: 17,
} as const;
export type Status = (typeof Status)[keyof typeof Status];

/** Statuses whose write may or may not have happened. */
export function statusIndefinite(status: number): boolean {
  return status === Status.StorageError || status === Status.AckTimeout || status === Status.LostLeadership;
}
