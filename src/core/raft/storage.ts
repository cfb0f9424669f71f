// The stable (durable) Raft log as the core sees it, and an in-memory implementation. The core only reads
// through `Storage`; the shell writes what a Ready hands it (hard state, entries, snapshots) and then calls
// `advance`, so a file-backed implementation only has to offer the same reads over its files.
// Invariants of MemoryStorage: `ents[0]` is a dummy entry at the snapshot's (index, term); indexes are
// contiguous; `hardState.commit` never exceeds the last index once a Ready is fully persisted.
// Pure: called from the thread that owns the Raft node (the control thread, or a test).

import { assert } from '../assert.js';
import { type ConfState, type Entry, emptyHardState, type HardState, type Snapshot } from './types.js';

export interface Storage {
  /** The persisted hard state; a fresh node answers `emptyHardState`. */
  hardState(): HardState;
  /** Entries in [lo, hi), stopping early once `bytesMax` is reached but always returning at least one. */
  entries(lo: number, hi: number, bytesMax: number): Entry[];
  /** The term of entry `index`, or undefined when it is compacted away or beyond the last index. */
  term(index: number): number | undefined;
  /** The first index still held as an entry (snapshot index + 1). */
  firstIndex(): number;
  lastIndex(): number;
  /** The latest snapshot (index 0, empty data and membership when none was ever taken). */
  snapshot(): Snapshot;
}

const emptyConf: ConfState = { voters: [], learners: [] };

/** Bytes an entry costs in a message; the constant covers index, term and kind. */
export function entryBytes(entry: Entry): number {
  return entry.data.length + 24;
}

/**
 * Stable storage kept in memory. The simulation uses it as the simulated disk: whatever was written here
 * survives a crash, everything else is lost.
 */
/**
 * Reads of a log kept as an array whose first element is a dummy entry at the last compacted index (the
 * layout both MemoryStorage and the durable FileStorage use): entries in [lo, hi), at least one, then up to
 * `bytesMax` bytes.
 */
export function entriesOf(ents: readonly Entry[], lo: number, hi: number, bytesMax: number): Entry[] {
  const offset = ents[0]!.index;
  const last = offset + ents.length - 1;
  assert(lo > offset, `entries(${lo}) below first index ${offset + 1}`);
  assert(hi <= last + 1, `entries(..${hi}) beyond last index ${last}`);
  const out: Entry[] = [];
  let bytes = 0;
  for (let i = lo; i < hi; i++) {
    const e = ents[i - offset]!;
    bytes += entryBytes(e);
    if (out.length > 0 && bytes > bytesMax) break;
    out.push(e);
  }
  return out;
}

/** The term of `index` in such an array, or undefined outside [compacted index, last index]. */
export function termOf(ents: readonly Entry[], index: number): number | undefined {
  const offset = ents[0]!.index;
  if (index < offset || index > offset + ents.length - 1) return undefined;
  return ents[index - offset]!.term;
}

export class MemoryStorage implements Storage {
  private hard: HardState = emptyHardState;
  private snap: Snapshot = { index: 0, term: 0, conf: emptyConf, data: new Uint8Array(0) };
  private ents: Entry[] = [{ index: 0, term: 0, kind: 'normal', data: new Uint8Array(0) }];

  hardState(): HardState {
    return this.hard;
  }

  entries(lo: number, hi: number, bytesMax: number): Entry[] {
    return entriesOf(this.ents, lo, hi, bytesMax);
  }

  term(index: number): number | undefined {
    return termOf(this.ents, index);
  }

  firstIndex(): number {
    return this.ents[0]!.index + 1;
  }

  lastIndex(): number {
    return this.ents[0]!.index + this.ents.length - 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  setHardState(hard: HardState): void {
    assert(hard.term >= this.hard.term, `hard state term went back from ${this.hard.term} to ${hard.term}`);
    this.hard = hard;
  }

  /** Appends entries, first dropping any stored suffix from the first new index on (a conflicting tail). */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    const offset = this.ents[0]!.index;
    assert(first > offset, `append at ${first} at or below the snapshot index ${offset}`);
    assert(first <= this.lastIndex() + 1, `append at ${first} leaves a gap after ${this.lastIndex()}`);
    this.ents.length = first - offset;
    for (const e of entries) this.ents.push(e);
  }

  /** Replaces the whole log with a snapshot received from the leader. */
  applySnapshot(snapshot: Snapshot): void {
    assert(snapshot.index >= this.snap.index, 'applySnapshot would move the snapshot back');
    this.snap = snapshot;
    this.ents = [{ index: snapshot.index, term: snapshot.term, kind: 'normal', data: new Uint8Array(0) }];
  }

  /** Records a snapshot taken locally and drops the entries it covers (log compaction). */
  compact(snapshot: Snapshot): void {
    const offset = this.ents[0]!.index;
    if (snapshot.index <= offset) return;
    assert(snapshot.index <= this.lastIndex(), `compact(${snapshot.index}) beyond last ${this.lastIndex()}`);
    assert(this.term(snapshot.index) === snapshot.term, 'compaction snapshot term differs from the log');
    this.snap = snapshot;
    this.ents = this.ents.slice(snapshot.index - offset);
    this.ents[0] = { index: snapshot.index, term: snapshot.term, kind: 'normal', data: new Uint8Array(0) };
  }
}
