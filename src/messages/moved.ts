// The MOVED answer (data link only): "the partitions you asked about are owned by these workers of this node
// now", sent by a partition worker instead of any answer when a request names a partition that the node's
// worker balancer placed on a sibling worker. Nothing in the request was carried out, so the asker may send it
// again, to the port of the worker named (its `dataPorts[worker]`). Pure: callable from any thread.
//
// | offset     | size | field                                   |
// |------------|------|-----------------------------------------|
// | 0          | 4    | count (u32 LE), at least 1              |
// | 4 + 12i    | 4    | topicSeq of entry i (u32 LE)            |
// | 8 + 12i    | 4    | partition of entry i (u32 LE)           |
// | 12 + 12i   | 4    | worker index that owns it now (u32 LE)  |

export interface MovedEntry {
  readonly topicSeq: number;
  readonly partition: number;
  readonly worker: number;
}

/** Entries one answer carries at most (a replica fetch names at most this many partitions it may have moved). */
export const MOVED_ENTRIES_MAX = 4096;

export function movedAnswerBytes(count: number): number {
  return 4 + 12 * count;
}

export function writeMovedAnswer(view: DataView, at: number, entries: readonly MovedEntry[]): void {
  view.setUint32(at, entries.length, true);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    view.setUint32(at + 4 + 12 * i, e.topicSeq, true);
    view.setUint32(at + 8 + 12 * i, e.partition, true);
    view.setUint32(at + 12 + 12 * i, e.worker, true);
  }
}

/** The entries, or null when the payload is malformed (it comes from another node). */
export function readMovedAnswer(view: DataView, at: number, length: number): MovedEntry[] | null {
  if (length < 4) return null;
  const count = view.getUint32(at, true);
  if (count < 1 || count > MOVED_ENTRIES_MAX || length < movedAnswerBytes(count)) return null;
  const out: MovedEntry[] = [];
  for (let i = 0; i < count; i++) {
    out.push({
      topicSeq: view.getUint32(at + 4 + 12 * i, true),
      partition: view.getUint32(at + 8 + 12 * i, true),
      worker: view.getUint32(at + 12 + 12 * i, true),
    });
  }
  return out;
}
