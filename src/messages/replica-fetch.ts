// The REPLICA FETCH message: one follower worker asking one leader worker, over the data link, for every
// partition it follows there in one request (Kafka's replica fetcher: one session per pair of brokers, here per
// pair of workers), and the leader's answer with each partition's records in the log's on-disk format,
// unchanged (no re-encoding). An entry is either a fetch (from the follower's durable log end, with the epoch
// of its last record for the divergence check) or an epoch query (where does epoch e end in the leader's log:
// KIP-101's OffsetsForLeaderEpoch). This module owns both layouts; little-endian, offsets as float64.
//
// REPLICA FETCH request:
// | 0  | 4 wait ms (u32): the leader holds the request until an entry has records, or the wait ends |
// | 4  | 4 max bytes (u32): records in the whole answer, at least one batch |
// | 8  | 2 entry count n (u16) | 10 | 1 follower id length m (u8) | 11 | m bytes follower broker id (UTF-8) |
// | 11+m | n entries of 32 bytes:
// |    | 0 | 4 topic sequence number | 4 | 4 partition | 8 | 1 kind: 0 fetch, 1 epoch query | 9 | 3 reserved |
// |    | 12 | 4 the follower's current leader epoch (i32) | 16 | 4 last fetched epoch / epoch asked (i32) |
// |    | 20 | 4 max bytes for this partition (u32) | 24 | 8 fetch offset (f64; 0 for a query) |
//
// REPLICA FETCH answer:
// | 0 | 2 entry count n (u16) | 2 | 2 reserved | then n entries, each 48 bytes followed by its records:
// |    | 0 | 4 topic sequence number | 4 | 4 partition | 8 | 1 outcome (below) | 9 | 3 reserved |
// |    | 12 | 4 epoch (i32) | 16 | 8 a (f64) | 24 | 8 b (f64) | 32 | 8 c (f64) | 40 | 4 records bytes r (u32) |
// |    | 44 | 4 reserved | 48 | r bytes of record batches |
//
// | outcome        | epoch             | a                | b          | c       | records |
// |----------------|-------------------|------------------|------------|---------|---------|
// | records        | -                 | high watermark   | log start  | log end | yes     |
// | diverging      | leader's epoch    | its end offset   | -          | -       | -       |
// | out_of_range   | -                 | log start        | log end    | -       | -       |
// | fenced_epoch   | leader epoch      | -                | -          | -       | -       |
// | not_leader     | leader epoch      | -                | -          | -       | -       |
// | epoch_end      | epoch found       | its end offset   | -          | -       | -       |
// | unknown        | -                 | -                | -          | -       | -       |
// | storage_error  | -                 | -                | -          | -       | -       |
// Callable from any thread; decoding never throws on bad bytes (they come from another node).

export const REPLICA_ENTRY_REQUEST_BYTES = 32;
export const REPLICA_ENTRY_ANSWER_BYTES = 48;
const requestFixedBytes = 11;
const answerFixedBytes = 4;

export const ReplicaEntryKind = { fetch: 0, epochQuery: 1 } as const;

export const ReplicaOutcome = {
  records: 0,
  diverging: 1,
  out_of_range: 2,
  fenced_epoch: 3,
  not_leader: 4,
  epoch_end: 5,
  unknown: 6,
  storage_error: 7,
} as const;
export type ReplicaOutcome = (typeof ReplicaOutcome)[keyof typeof ReplicaOutcome];

export interface ReplicaRequestEntry {
  readonly topicSeq: number;
  readonly partition: number;
  readonly kind: 'fetch' | 'epoch_query';
  readonly leaderEpoch: number;
  /** fetch: the epoch of the follower's last record (-1 none); epoch query: the epoch asked about. */
  readonly epoch: number;
  readonly maxBytes: number;
  readonly fetchOffset: number;
}

export interface ReplicaFetchRequest {
  readonly waitMs: number;
  readonly maxBytes: number;
  readonly followerId: string;
  readonly entries: readonly ReplicaRequestEntry[];
}

export function replicaFetchRequestBytes(followerId: string, entryCount: number): number {
  return requestFixedBytes + Buffer.byteLength(followerId, 'utf8') + entryCount * REPLICA_ENTRY_REQUEST_BYTES;
}

export function writeReplicaFetchRequest(
  bytes: Buffer,
  view: DataView,
  at: number,
  r: ReplicaFetchRequest,
): void {
  view.setUint32(at, r.waitMs, true);
  view.setUint32(at + 4, r.maxBytes, true);
  view.setUint16(at + 8, r.entries.length, true);
  const idLength = bytes.write(r.followerId, at + requestFixedBytes, 'utf8');
  view.setUint8(at + 10, idLength);
  let cursor = at + requestFixedBytes + idLength;
  for (const e of r.entries) {
    view.setUint32(cursor, e.topicSeq, true);
    view.setUint32(cursor + 4, e.partition, true);
    view.setUint8(cursor + 8, e.kind === 'fetch' ? ReplicaEntryKind.fetch : ReplicaEntryKind.epochQuery);
    view.setUint8(cursor + 9, 0);
    view.setUint16(cursor + 10, 0, true);
    view.setInt32(cursor + 12, e.leaderEpoch, true);
    view.setInt32(cursor + 16, e.epoch, true);
    view.setUint32(cursor + 20, e.maxBytes, true);
    view.setFloat64(cursor + 24, e.fetchOffset, true);
    cursor += REPLICA_ENTRY_REQUEST_BYTES;
  }
}

/** Reads a replica fetch request; null when it is malformed. */
export function readReplicaFetchRequest(
  bytes: Buffer,
  view: DataView,
  at: number,
  length: number,
): ReplicaFetchRequest | null {
  if (length < requestFixedBytes) return null;
  const count = view.getUint16(at + 8, true);
  const idLength = view.getUint8(at + 10);
  if (length !== requestFixedBytes + idLength + count * REPLICA_ENTRY_REQUEST_BYTES) return null;
  const entries: ReplicaRequestEntry[] = [];
  let cursor = at + requestFixedBytes + idLength;
  for (let i = 0; i < count; i++) {
    const kind = view.getUint8(cursor + 8);
    const fetchOffset = view.getFloat64(cursor + 24, true);
    if (kind > 1 || !Number.isSafeInteger(fetchOffset) || fetchOffset < 0) return null;
    entries.push({
      topicSeq: view.getUint32(cursor, true),
      partition: view.getUint32(cursor + 4, true),
      kind: kind === 0 ? 'fetch' : 'epoch_query',
      leaderEpoch: view.getInt32(cursor + 12, true),
      epoch: view.getInt32(cursor + 16, true),
      maxBytes: view.getUint32(cursor + 20, true),
      fetchOffset,
    });
    cursor += REPLICA_ENTRY_REQUEST_BYTES;
  }
  return {
    waitMs: view.getUint32(at, true),
    maxBytes: view.getUint32(at + 4, true),
    followerId: bytes.toString('utf8', at + requestFixedBytes, at + requestFixedBytes + idLength),
    entries,
  };
}

export interface ReplicaAnswerEntry {
  topicSeq: number;
  partition: number;
  outcome: ReplicaOutcome;
  epoch: number;
  a: number;
  b: number;
  c: number;
  /** Records, for `records`: a view valid only while the answer's bytes are. */
  records: Uint8Array;
}

export const REPLICA_ANSWER_FIXED_BYTES = answerFixedBytes;

/** Writes the answer's fixed part; entries follow with `writeReplicaAnswerEntry`. */
export function writeReplicaAnswerHead(view: DataView, at: number, entryCount: number): void {
  view.setUint16(at, entryCount, true);
  view.setUint16(at + 2, 0, true);
}

/** Writes one entry's 48-byte head at `at`; its `recordsBytes` of records must follow it. */
export function writeReplicaAnswerEntry(
  view: DataView,
  at: number,
  e: Omit<ReplicaAnswerEntry, 'records'>,
  recordsBytes: number,
): void {
  view.setUint32(at, e.topicSeq, true);
  view.setUint32(at + 4, e.partition, true);
  view.setUint8(at + 8, e.outcome);
  view.setUint8(at + 9, 0);
  view.setUint16(at + 10, 0, true);
  view.setInt32(at + 12, e.epoch, true);
  view.setFloat64(at + 16, e.a, true);
  view.setFloat64(at + 24, e.b, true);
  view.setFloat64(at + 32, e.c, true);
  view.setUint32(at + 40, recordsBytes, true);
  view.setUint32(at + 44, 0, true);
}

/**
 * Visits the entries of an answer in place; returns false (having visited a prefix) when it is malformed.
 * `entry` is reused for every call.
 */
export function visitReplicaAnswer(
  bytes: Uint8Array,
  view: DataView,
  at: number,
  length: number,
  visit: (entry: ReplicaAnswerEntry) => void,
): boolean {
  if (length < answerFixedBytes) return false;
  const count = view.getUint16(at, true);
  const end = at + length;
  let cursor = at + answerFixedBytes;
  const entry: ReplicaAnswerEntry = {
    topicSeq: 0,
    partition: 0,
    outcome: 0,
    epoch: 0,
    a: 0,
    b: 0,
    c: 0,
    records: new Uint8Array(0),
  };
  for (let i = 0; i < count; i++) {
    if (cursor + REPLICA_ENTRY_ANSWER_BYTES > end) return false;
    const outcome = view.getUint8(cursor + 8);
    if (outcome > ReplicaOutcome.storage_error) return false;
    const recordsBytes = view.getUint32(cursor + 40, true);
    const recordsAt = cursor + REPLICA_ENTRY_ANSWER_BYTES;
    if (recordsAt + recordsBytes > end) return false;
    entry.topicSeq = view.getUint32(cursor, true);
    entry.partition = view.getUint32(cursor + 4, true);
    entry.outcome = outcome as ReplicaOutcome;
    entry.epoch = view.getInt32(cursor + 12, true);
    entry.a = view.getFloat64(cursor + 16, true);
    entry.b = view.getFloat64(cursor + 24, true);
    entry.c = view.getFloat64(cursor + 32, true);
    entry.records = bytes.subarray(recordsAt, recordsAt + recordsBytes);
    visit(entry);
    cursor = recordsAt + recordsBytes;
  }
  return cursor === end;
}
