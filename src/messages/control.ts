// The CONTROL message: rare operations on a partition worker, in UTF-8 JSON because clarity beats speed there,
// and their answers (also JSON). Carried by the ring (the local acceptor) and by the data link (an acceptor
// asking a partition's leader on another node). This module owns the shapes; the payload is the JSON text.
//
// | op                   | request fields                        | answer                                       |
// |----------------------|---------------------------------------|----------------------------------------------|
// | health               | -                                     | { ok, offline: [{topic, partition, reason, code, message, since_ms}] } |
// | offset_for_timestamp | topicSeq, partition, timestampMs      | { ok, offset (null: none yet), message? }    |
// | release (ring only)  | topicSeq, partition, toWorker         | { ok, handover (null: not led here) }        |
// | adopt (ring only)    | topicSeq, partition, handover         | { ok }                                       |
// | placement (ring only)| topicSeq, partition, worker           | { ok }                                       |
//
// release / adopt / placement move a partition between the node's workers (src/broker/worker-moves.ts): the
// old worker completes its acks=all requests, closes the log and hands back its leadership figures; the new
// one opens the log and carries them on; the others learn the new owner.
//
// The SHUTDOWN answer (ring only) is JSON too: { ok, clean }, clean when every log closed at its end.
// Callable from any thread.

/** A leader's figures handed from the worker that led a partition to the one that takes it over. */
export interface Handover {
  readonly leaderEpoch: number;
  readonly highWatermark: number;
  readonly epochStartOffset: number;
}

export type ControlRequest =
  | { readonly op: 'health' }
  | {
      readonly op: 'release';
      readonly topicSeq: number;
      readonly partition: number;
      readonly toWorker: number;
    }
  | {
      readonly op: 'adopt';
      readonly topicSeq: number;
      readonly partition: number;
      readonly handover: Handover | null;
    }
  | {
      readonly op: 'placement';
      readonly topicSeq: number;
      readonly partition: number;
      readonly worker: number;
    }
  | {
      readonly op: 'offset_for_timestamp';
      readonly topicSeq: number;
      readonly partition: number;
      readonly timestampMs: number;
    };

export interface OfflinePartition {
  readonly topic: string;
  readonly partition: number;
  readonly reason: 'storage_full' | 'storage_unavailable';
  readonly code: string;
  readonly message: string;
  readonly since_ms: number;
}

export type ControlAnswer =
  | { readonly ok: true; readonly offline: readonly OfflinePartition[] }
  | { readonly ok: true; readonly offset: number | null }
  | { readonly ok: true; readonly handover?: Handover | null }
  | { readonly ok: false; readonly status: number; readonly message: string };

export function encodeJson(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

/** Parses a control payload; null when it is not a JSON object (it may come from another node). */
export function decodeJson<T>(bytes: Uint8Array): T | null {
  try {
    const value = JSON.parse(
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'),
    ) as unknown;
    return typeof value === 'object' && value !== null ? (value as T) : null;
  } catch {
    return null;
  }
}
