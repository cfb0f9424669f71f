// Durable Raft storage for one node in one directory: the hard state, the latest snapshot and the log of
// entries after it. It offers the core's `Storage` reads from memory and makes every write durable before it
// returns, so that the shell may send `messagesAfterPersist` as soon as a write call comes back.
//
// Files in the directory:
//   hard-state           the term, vote and commit; replaced atomically (temp file, fsync, rename, fsync dir)
//   snapshot             the latest snapshot; replaced atomically the same way
//   log-<firstIndex>     the entries from firstIndex on, append-only; a conflicting suffix is cut off with a
//                        truncate; after a compaction or an installed snapshot a new log file is written
//                        (as a temp file, renamed) and the old one removed
//   *.tmp                left by a crash during a replace; removed on open
//
// Small-file envelope (hard-state and snapshot), integers big-endian:
//   offset  size  field
//   0       4     crc32 of the body (zlib.crc32)
//   4       4     body length in bytes
//   8       n     body: version u8 = 1, then the fields below
//   hard-state body: term u64 | commit u64 | vote length u16 | vote utf8
//   snapshot body:   index u64 | term u64 | conf length u32 | conf JSON utf8 | data (the rest)
//
// Log record (one per entry, back to back):
//   offset  size  field
//   0       4     body length in bytes (bounded by `recordBytesMax`)
//   4       4     crc32 of the body
//   8       8     index u64
//   16      8     term u64
//   24      1     kind: 0 normal, 1 conf
//   25      n     data
//
// Recovery on open keeps the longest run of valid records, treats a record whose index is not the next one
// as a truncation that was never made physical, drops a torn or corrupt tail, reconciles the log with the
// snapshot (entries after the snapshot are kept only when the log holds the snapshot's own index and term or
// starts right after it) and, if anything was dropped, rewrites the log file so appends continue after
// valid bytes. Entries are held in memory as well: this is a metadata log whose size compaction bounds.
//
// Failed writes (ENOSPC, EIO: the `Disk` call throws) leave the storage usable and consistent: a mutator that
// throws has changed nothing in memory that is not also durable, except that a log rewrite it needed may be
// left undone (`logStale`), in which case the next mutator rewrites the log first; bytes a failed append may
// have left past the log's valid end are cut off before the next append (`tailDirty`), so a retry (or a
// different append) never leaves stale records after new ones. The caller retries the same write later.
//
// Invariants: entries in memory are exactly the valid records of the current log file after the snapshot,
// unless `logStale`, when the newest durable files (snapshot, old log) still recover to the same entries;
// indexes are contiguous; every mutator returns only once its bytes and any needed directory entry are
// durable. Synchronous I/O through `Disk`: call it only from the thread that owns the Raft node (the control
// worker thread, or a test), never from the acceptor's event loop.

import { crc32 } from 'node:zlib';
import { assert } from '../core/assert.js';
import { entriesOf, type Storage, termOf } from '../core/raft/storage.js';
import {
  type ConfState,
  type Entry,
  type EntryKind,
  emptyHardState,
  type HardState,
  type Snapshot,
} from '../core/raft/types.js';
import type { Disk, Fd } from '../storage/disk.js';

const formatVersion = 1;
const envelopeHeaderBytes = 8;
const recordHeaderBytes = 8;
const recordFixedBodyBytes = 17;
/** The largest entry record accepted; a length beyond it on recovery is damage, not an entry. */
export const recordBytesMax = 64 << 20;
const hardStateName = 'hard-state';
const snapshotName = 'snapshot';
const logPrefix = 'log-';
const tmpSuffix = '.tmp';
const emptyConf: ConfState = { voters: [], learners: [] };
const kindCodes = { normal: 0, conf: 1 } as const;
const kindsByCode: readonly (EntryKind | undefined)[] = ['normal', 'conf'];

/** What recovery found on open, for logs and tests. */
export interface FileStorageRecovery {
  readonly recordsRead: number;
  /** Bytes after the last valid record that were dropped (a torn or corrupt tail). */
  readonly droppedTailBytes: number;
  /** Valid records dropped because they conflict with or precede the snapshot. */
  readonly droppedRecords: number;
  readonly rewroteLog: boolean;
}

function logName(firstIndex: number): string {
  return `${logPrefix}${String(firstIndex).padStart(20, '0')}`;
}

function checkU64(value: number, what: string): void {
  assert(Number.isSafeInteger(value) && value >= 0, `${what} ${value} is not a non-negative safe integer`);
}

function encodeEnvelope(body: Uint8Array): Buffer {
  const out = Buffer.alloc(envelopeHeaderBytes + body.length);
  out.writeUInt32BE(crc32(body), 0);
  out.writeUInt32BE(body.length, 4);
  out.set(body, envelopeHeaderBytes);
  return out;
}

/** The body of a small file, or undefined if it is damaged (which an atomic replace never leaves). */
function decodeEnvelope(bytes: Buffer): Buffer | undefined {
  if (bytes.length < envelopeHeaderBytes) return undefined;
  const length = bytes.readUInt32BE(4);
  if (length !== bytes.length - envelopeHeaderBytes || length < 1) return undefined;
  const body = bytes.subarray(envelopeHeaderBytes);
  if (crc32(body) !== bytes.readUInt32BE(0) || body[0] !== formatVersion) return undefined;
  return body;
}

function encodeHardState(hs: HardState): Buffer {
  checkU64(hs.term, 'term');
  checkU64(hs.commit, 'commit');
  const vote = Buffer.from(hs.vote, 'utf8');
  assert(vote.length <= 0xffff, 'vote node id too long');
  const body = Buffer.alloc(1 + 8 + 8 + 2 + vote.length);
  body[0] = formatVersion;
  body.writeBigUInt64BE(BigInt(hs.term), 1);
  body.writeBigUInt64BE(BigInt(hs.commit), 9);
  body.writeUInt16BE(vote.length, 17);
  vote.copy(body, 19);
  return encodeEnvelope(body);
}

function decodeHardState(body: Buffer): HardState {
  assert(body.length >= 19, 'hard-state body too short');
  const voteBytes = body.readUInt16BE(17);
  assert(body.length === 19 + voteBytes, 'hard-state body length does not match its vote');
  return {
    term: Number(body.readBigUInt64BE(1)),
    commit: Number(body.readBigUInt64BE(9)),
    vote: body.toString('utf8', 19, 19 + voteBytes),
  };
}

function encodeSnapshot(s: Snapshot): Buffer {
  checkU64(s.index, 'snapshot index');
  checkU64(s.term, 'snapshot term');
  const conf = Buffer.from(JSON.stringify({ voters: s.conf.voters, learners: s.conf.learners }), 'utf8');
  const body = Buffer.alloc(1 + 8 + 8 + 4 + conf.length + s.data.length);
  body[0] = formatVersion;
  body.writeBigUInt64BE(BigInt(s.index), 1);
  body.writeBigUInt64BE(BigInt(s.term), 9);
  body.writeUInt32BE(conf.length, 17);
  conf.copy(body, 21);
  body.set(s.data, 21 + conf.length);
  return encodeEnvelope(body);
}

function decodeSnapshot(body: Buffer): Snapshot {
  assert(body.length >= 21, 'snapshot body too short');
  const confBytes = body.readUInt32BE(17);
  assert(body.length >= 21 + confBytes, 'snapshot body shorter than its conf');
  const conf = JSON.parse(body.toString('utf8', 21, 21 + confBytes)) as ConfState;
  assert(Array.isArray(conf.voters) && Array.isArray(conf.learners), 'snapshot conf is malformed');
  return {
    index: Number(body.readBigUInt64BE(1)),
    term: Number(body.readBigUInt64BE(9)),
    conf: { voters: conf.voters, learners: conf.learners },
    data: new Uint8Array(body.subarray(21 + confBytes)),
  };
}

function recordBytes(e: Entry): number {
  return recordHeaderBytes + recordFixedBodyBytes + e.data.length;
}

function encodeRecords(entries: readonly Entry[]): Buffer {
  let total = 0;
  for (const e of entries) total += recordBytes(e);
  const out = Buffer.alloc(total);
  let at = 0;
  for (const e of entries) {
    checkU64(e.index, 'entry index');
    checkU64(e.term, 'entry term');
    const bodyBytes = recordFixedBodyBytes + e.data.length;
    assert(bodyBytes <= recordBytesMax, `entry ${e.index} of ${e.data.length} bytes exceeds recordBytesMax`);
    const body = out.subarray(at + recordHeaderBytes, at + recordHeaderBytes + bodyBytes);
    body.writeBigUInt64BE(BigInt(e.index), 0);
    body.writeBigUInt64BE(BigInt(e.term), 8);
    body[16] = kindCodes[e.kind];
    body.set(e.data, recordFixedBodyBytes);
    out.writeUInt32BE(bodyBytes, at);
    out.writeUInt32BE(crc32(body), at + 4);
    at += recordHeaderBytes + bodyBytes;
  }
  return out;
}

export class FileStorage implements Storage {
  private hard: HardState = emptyHardState;
  private snap: Snapshot = { index: 0, term: 0, conf: emptyConf, data: new Uint8Array(0) };
  /** ents[0] is a dummy entry at the snapshot's (index, term), as in MemoryStorage. */
  private ents: Entry[] = [{ index: 0, term: 0, kind: 'normal', data: new Uint8Array(0) }];
  /** File position of the record of ents[i + 1]; parallel to the real entries. */
  private positions: number[] = [];
  private logFd: Fd = -1;
  private logPath = '';
  private logSizeBytes = 0;
  /** The log file does not match memory (a rewrite failed): rewrite it before the next write. */
  private logStale = false;
  /** A failed append may have left bytes after `logSizeBytes`: cut them before the next append. */
  private tailDirty = false;
  private closed = false;
  readonly recovery: FileStorageRecovery;

  private constructor(
    private readonly disk: Disk,
    private readonly dir: string,
  ) {
    this.recovery = this.recover();
  }

  /** Opens (creating if needed) the storage in `dir`, recovering from whatever a crash left there. */
  static open(disk: Disk, dir: string): FileStorage {
    return new FileStorage(disk, dir);
  }

  // ---- Storage (reads) ----

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

  // ---- Writes (each durable on return) ----

  setHardState(hs: HardState): void {
    this.checkOpen();
    assert(hs.term >= this.hard.term, `hard state term went back from ${this.hard.term} to ${hs.term}`);
    this.replaceSmallFile(hardStateName, encodeHardState(hs));
    this.hard = hs;
  }

  /** Appends entries, first cutting off any stored suffix from the first new index on. */
  append(entries: readonly Entry[]): void {
    this.checkOpen();
    if (entries.length === 0) return;
    this.repairLog();
    const first = entries[0]!.index;
    const offset = this.ents[0]!.index;
    assert(first > offset, `append at ${first} at or below the snapshot index ${offset}`);
    assert(first <= this.lastIndex() + 1, `append at ${first} leaves a gap after ${this.lastIndex()}`);
    for (let i = 1; i < entries.length; i++) {
      assert(entries[i]!.index === first + i, 'appended entries are not contiguous');
    }
    if (first <= this.lastIndex()) {
      // A conflicting suffix: cut it off physically so the file never holds two records for one index.
      const cutAt = this.positions[first - offset - 1]!;
      this.disk.truncate(this.logFd, cutAt);
      this.logSizeBytes = cutAt;
      this.ents.length = first - offset;
      this.positions.length = first - offset - 1;
      this.tailDirty = false;
    } else if (this.tailDirty) {
      this.disk.truncate(this.logFd, this.logSizeBytes);
      this.tailDirty = false;
    }
    const bytes = encodeRecords(entries);
    try {
      this.disk.write(this.logFd, bytes, this.logSizeBytes);
      // Also makes a truncation above durable: until it is, a crash may bring the cut suffix back, which is
      // the state before this append and so safe.
      this.disk.fdatasync(this.logFd);
    } catch (error) {
      // Part of the records may be in the file: whatever comes next starts by cutting them off.
      this.tailDirty = true;
      throw error;
    }
    let at = this.logSizeBytes;
    for (const e of entries) {
      this.ents.push(e);
      this.positions.push(at);
      at += recordBytes(e);
    }
    this.logSizeBytes = at;
  }

  /** Replaces the whole log with a snapshot received from the leader. */
  applySnapshot(snapshot: Snapshot): void {
    this.checkOpen();
    this.repairLog();
    assert(snapshot.index >= this.snap.index, 'applySnapshot would move the snapshot back');
    this.replaceSmallFile(snapshotName, encodeSnapshot(snapshot));
    this.snap = snapshot;
    this.ents = [{ index: snapshot.index, term: snapshot.term, kind: 'normal', data: new Uint8Array(0) }];
    this.positions = [];
    this.writeNewLog();
  }

  /** Records a snapshot taken locally and drops the entries it covers (log compaction). */
  compact(snapshot: Snapshot): void {
    this.checkOpen();
    this.repairLog();
    const offset = this.ents[0]!.index;
    if (snapshot.index <= offset) return;
    assert(snapshot.index <= this.lastIndex(), `compact(${snapshot.index}) beyond last ${this.lastIndex()}`);
    assert(this.term(snapshot.index) === snapshot.term, 'compaction snapshot term differs from the log');
    // The snapshot is durable before the entries it covers are discarded: a crash in between leaves the old
    // log, which recovery trims to the snapshot.
    this.replaceSmallFile(snapshotName, encodeSnapshot(snapshot));
    this.snap = snapshot;
    this.ents = this.ents.slice(snapshot.index - offset);
    this.ents[0] = { index: snapshot.index, term: snapshot.term, kind: 'normal', data: new Uint8Array(0) };
    this.writeNewLog();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.disk.close(this.logFd);
  }

  // ---- Internals ----

  /** Rewrites the log file from memory if an earlier rewrite failed; throws if it fails again. */
  private repairLog(): void {
    if (this.logStale) this.writeNewLog();
  }

  private checkOpen(): void {
    assert(!this.closed, 'FileStorage used after close');
  }

  private path(name: string): string {
    return `${this.dir}/${name}`;
  }

  private readWhole(path: string): Buffer {
    const fd = this.disk.open(path, false);
    try {
      const out = Buffer.alloc(this.disk.size(fd));
      const n = this.disk.read(fd, out, 0);
      return out.subarray(0, n);
    } finally {
      this.disk.close(fd);
    }
  }

  /** Temp file, fsync, rename over the old one, fsync the directory: the old or the new, never a mix. */
  private replaceSmallFile(name: string, bytes: Uint8Array): void {
    const tmp = this.path(name + tmpSuffix);
    const fd = this.disk.open(tmp, true);
    try {
      this.disk.truncate(fd, 0);
      this.disk.write(fd, bytes, 0);
      this.disk.fsync(fd);
    } finally {
      this.disk.close(fd);
    }
    this.disk.rename(tmp, this.path(name));
    this.disk.fsyncDir(this.dir);
  }

  /**
   * Writes the entries in memory to a fresh log file named after the first index and switches to it. The
   * file is complete and durable before its name appears, and recovery always prefers the newest name.
   */
  private writeNewLog(): void {
    const name = logName(this.firstIndex());
    const tmp = this.path(name + tmpSuffix);
    const real = this.ents.slice(1);
    const bytes = encodeRecords(real);
    // Until the new file is durable under its name the old one stays open and in use; a failure anywhere
    // leaves `logStale` set so the next write tries again, and never leaks the temp file's descriptor.
    this.logStale = true;
    const fd = this.disk.open(tmp, true);
    try {
      this.disk.truncate(fd, 0);
      this.disk.write(fd, bytes, 0);
      this.disk.fsync(fd);
      this.disk.rename(tmp, this.path(name));
      this.disk.fsyncDir(this.dir);
    } catch (error) {
      this.disk.close(fd);
      throw error;
    }
    if (this.logFd !== -1) this.disk.close(this.logFd);
    this.logStale = false;
    this.tailDirty = false;
    const oldPath = this.logPath;
    this.logFd = fd;
    this.logPath = this.path(name);
    this.logSizeBytes = bytes.length;
    this.positions = [];
    let at = 0;
    for (const e of real) {
      this.positions.push(at);
      at += recordBytes(e);
    }
    // Losing this unlink (to a crash, or to an I/O error) is harmless: recovery removes every log file but the
    // newest, and the next rewrite replaces it.
    if (oldPath !== '' && oldPath !== this.logPath) {
      try {
        this.disk.unlink(oldPath);
      } catch (error) {
        if (!(error instanceof Error) || typeof (error as NodeJS.ErrnoException).code !== 'string')
          throw error;
      }
    }
  }

  private recover(): FileStorageRecovery {
    this.disk.mkdir(this.dir);
    const names = this.disk.readdir(this.dir);
    for (const name of names) {
      if (name.endsWith(tmpSuffix)) this.disk.unlink(this.path(name));
    }
    if (names.includes(hardStateName)) {
      const body = decodeEnvelope(this.readWhole(this.path(hardStateName)));
      assert(body !== undefined, `${this.dir}/${hardStateName} is damaged`);
      this.hard = decodeHardState(body);
    }
    if (names.includes(snapshotName)) {
      const body = decodeEnvelope(this.readWhole(this.path(snapshotName)));
      assert(body !== undefined, `${this.dir}/${snapshotName} is damaged`);
      this.snap = decodeSnapshot(body);
      this.ents = [{ index: this.snap.index, term: this.snap.term, kind: 'normal', data: new Uint8Array(0) }];
    }
    const logs = names.filter((n) => n.startsWith(logPrefix) && !n.endsWith(tmpSuffix)).sort();
    const newest = logs[logs.length - 1];
    for (const name of logs.slice(0, -1)) this.disk.unlink(this.path(name));

    let recordsRead = 0;
    let droppedTailBytes = 0;
    let droppedRecords = 0;
    let rewrite = newest === undefined || newest !== logName(this.firstIndex());
    if (newest !== undefined) {
      const bytes = this.readWhole(this.path(newest));
      const parsed: Entry[] = [];
      let at = 0;
      while (at + recordHeaderBytes <= bytes.length) {
        const bodyBytes = bytes.readUInt32BE(at);
        if (bodyBytes < recordFixedBodyBytes || bodyBytes > recordBytesMax) break;
        if (at + recordHeaderBytes + bodyBytes > bytes.length) break;
        const body = bytes.subarray(at + recordHeaderBytes, at + recordHeaderBytes + bodyBytes);
        if (crc32(body) !== bytes.readUInt32BE(at + 4)) break;
        const kind = kindsByCode[body[16]!];
        if (kind === undefined) break;
        const index = Number(body.readBigUInt64BE(0));
        const prev = parsed[parsed.length - 1];
        if (prev !== undefined && index !== prev.index + 1) {
          // Records only ever continue the log or (after a truncation that was not made physical) restart it
          // at an earlier index; anything else is damage.
          if (index > prev.index + 1 || index < parsed[0]!.index) break;
          droppedRecords += prev.index + 1 - index;
          parsed.length = index - parsed[0]!.index;
          rewrite = true;
        }
        parsed.push({
          index,
          term: Number(body.readBigUInt64BE(8)),
          kind,
          data: new Uint8Array(body.subarray(17)),
        });
        recordsRead++;
        at += recordHeaderBytes + bodyBytes;
      }
      droppedTailBytes = bytes.length - at;
      if (droppedTailBytes > 0) rewrite = true;
      // Reconcile with the snapshot: keep what follows it only if the log agrees with it.
      const s = this.snap;
      const first = parsed[0];
      let keepFrom = -1;
      if (first !== undefined) {
        if (first.index === s.index + 1) keepFrom = 0;
        else if (first.index <= s.index && parsed[s.index - first.index]?.term === s.term) {
          keepFrom = s.index - first.index + 1;
        }
      }
      const kept = keepFrom === -1 ? [] : parsed.slice(keepFrom);
      droppedRecords += parsed.length - kept.length;
      if (kept.length !== parsed.length) rewrite = true;
      for (const e of kept) this.ents.push(e);
    }
    if (rewrite) {
      this.writeNewLog();
      if (newest !== undefined && this.path(newest) !== this.logPath) this.disk.unlink(this.path(newest));
    } else {
      this.logPath = this.path(newest!);
      this.logFd = this.disk.open(this.logPath, false);
      let at = 0;
      for (const e of this.ents.slice(1)) {
        this.positions.push(at);
        at += recordBytes(e);
      }
      this.logSizeBytes = at;
    }
    assert(
      this.hard.commit <= this.lastIndex(),
      `stored commit ${this.hard.commit} beyond the stored log ${this.lastIndex()}`,
    );
    return { recordsRead, droppedTailBytes, droppedRecords, rewroteLog: rewrite };
  }
}
