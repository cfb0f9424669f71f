// The DESCRIBE message (a partition replica's figures, asked of the local worker or of the leader's) and the
// PARTITION STATE notice a worker sends its acceptor, unasked, whenever a replica's high watermark, log start
// or log end moves (so the acceptor's figures for its own replicas are current without polling). This module
// owns the layouts; little-endian, offsets as float64.
//
// DESCRIBE request (8 bytes): | 0 | 4 topic sequence number | 4 | 4 partition |
//
// DESCRIBE answer:
// | 0  | 1 status | 1 | 1 role: 0 none, 1 leader, 2 follower | 2 | 2 replica count n (u16) | 4 | 4 leader epoch (i32) |
// | 8  | 8 log start | 16 | 8 log end | 24 | 8 high watermark (this replica's) | 32 | 8 durable end |
// | 40 | 8 size in bytes | 48 | 4 segment count (u32) | 52 | 4 reserved |
// | 56 | n times: 1 id length m (u8), m bytes of broker id (UTF-8), 8 that replica's durable log end as the
// |    | leader last heard it (f64; -1 unknown or not the leader) |
//
// PARTITION STATE notice (32 bytes, correlation id 0):
// | 0 | 4 topic sequence number | 4 | 4 partition | 8 | 8 servable high watermark (-1 none) |
// | 16 | 8 log start | 24 | 8 log end |
// Callable from any thread.
import { assert } from '../core/assert.js';
import type { Status } from './status.js';

export const DESCRIBE_REQUEST_BYTES = 8;
export const DESCRIBE_ANSWER_FIXED_BYTES = 56;
export const PARTITION_STATE_BYTES = 32;

export const ReplicaRoleCode = { none: 0, leader: 1, follower: 2 } as const;

export interface ReplicaEnd {
  readonly id: string;
  readonly logEndOffset: number;
}

export interface DescribeAnswer {
  readonly status: Status;
  readonly role: 'none' | 'leader' | 'follower';
  readonly leaderEpoch: number;
  readonly logStartOffset: number;
  readonly logEndOffset: number;
  readonly highWatermark: number;
  readonly durableEndOffset: number;
  readonly sizeBytes: number;
  readonly segmentCount: number;
  readonly replicas: readonly ReplicaEnd[];
}

export function describeAnswerBytes(replicas: readonly ReplicaEnd[]): number {
  let bytes = DESCRIBE_ANSWER_FIXED_BYTES;
  for (const r of replicas) bytes += 1 + Buffer.byteLength(r.id, 'utf8') + 8;
  return bytes;
}

export function writeDescribeAnswer(bytes: Buffer, view: DataView, at: number, a: DescribeAnswer): void {
  assert(a.replicas.length <= 0xffff, 'replica count fits u16');
  view.setUint8(at, a.status);
  view.setUint8(at + 1, ReplicaRoleCode[a.role]);
  view.setUint16(at + 2, a.replicas.length, true);
  view.setInt32(at + 4, a.leaderEpoch, true);
  view.setFloat64(at + 8, a.logStartOffset, true);
  view.setFloat64(at + 16, a.logEndOffset, true);
  view.setFloat64(at + 24, a.highWatermark, true);
  view.setFloat64(at + 32, a.durableEndOffset, true);
  view.setFloat64(at + 40, a.sizeBytes, true);
  view.setUint32(at + 48, a.segmentCount, true);
  view.setUint32(at + 52, 0, true);
  let cursor = at + DESCRIBE_ANSWER_FIXED_BYTES;
  for (const r of a.replicas) {
    const length = bytes.write(r.id, cursor + 1, 'utf8');
    assert(length <= 255, 'a broker id is at most 255 bytes');
    view.setUint8(cursor, length);
    view.setFloat64(cursor + 1 + length, r.logEndOffset, true);
    cursor += 1 + length + 8;
  }
}

/** Reads a describe answer; null when it is malformed (it may come from another node). */
export function readDescribeAnswer(
  bytes: Buffer,
  view: DataView,
  at: number,
  length: number,
): DescribeAnswer | null {
  if (length < DESCRIBE_ANSWER_FIXED_BYTES) return null;
  const roleCode = view.getUint8(at + 1);
  const role = roleCode === 1 ? 'leader' : roleCode === 2 ? 'follower' : 'none';
  const count = view.getUint16(at + 2, true);
  const replicas: ReplicaEnd[] = [];
  let cursor = at + DESCRIBE_ANSWER_FIXED_BYTES;
  const end = at + length;
  for (let i = 0; i < count; i++) {
    if (cursor + 1 > end) return null;
    const idLength = view.getUint8(cursor);
    if (cursor + 1 + idLength + 8 > end) return null;
    replicas.push({
      id: bytes.toString('utf8', cursor + 1, cursor + 1 + idLength),
      logEndOffset: view.getFloat64(cursor + 1 + idLength, true),
    });
    cursor += 1 + idLength + 8;
  }
  return {
    status: view.getUint8(at) as Status,
    role,
    leaderEpoch: view.getInt32(at + 4, true),
    logStartOffset: view.getFloat64(at + 8, true),
    logEndOffset: view.getFloat64(at + 16, true),
    highWatermark: view.getFloat64(at + 24, true),
    durableEndOffset: view.getFloat64(at + 32, true),
    sizeBytes: view.getFloat64(at + 40, true),
    segmentCount: view.getUint32(at + 48, true),
    replicas,
  };
}

export interface PartitionState {
  topicSeq: number;
  partition: number;
  highWatermark: number;
  logStartOffset: number;
  logEndOffset: number;
}

export function writePartitionState(view: DataView, at: number, s: Readonly<PartitionState>): void {
  view.setUint32(at, s.topicSeq, true);
  view.setUint32(at + 4, s.partition, true);
  view.setFloat64(at + 8, s.highWatermark, true);
  view.setFloat64(at + 16, s.logStartOffset, true);
  view.setFloat64(at + 24, s.logEndOffset, true);
}

export function readPartitionState(view: DataView, at: number, into: PartitionState): PartitionState {
  into.topicSeq = view.getUint32(at, true);
  into.partition = view.getUint32(at + 4, true);
  into.highWatermark = view.getFloat64(at + 8, true);
  into.logStartOffset = view.getFloat64(at + 16, true);
  into.logEndOffset = view.getFloat64(at + 24, true);
  return into;
}
