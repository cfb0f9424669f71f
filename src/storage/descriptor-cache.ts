// A `Disk` that keeps at most `capacity` real file descriptors open, whatever number of files its users hold
// open: the partition worker's bound on segment files (a log, its offset index and its time index per
// segment), so that 10,000 partitions fit in a few hundred descriptors.
//
// A file opened through it gets a virtual descriptor that stays valid until `close`; the real descriptor
// behind it is opened on first use and closed again when it is the least recently used one and room is needed
// (LRU over a Map, whose insertion order is the recency order). Calls that take a path pass straight through.
//
// Invariants:
// - real descriptors open <= capacity, at every moment (checked by `assertBound`, tested);
// - a real descriptor with writes not yet synced is synced before it is closed for room, so a later sync
//   through a new descriptor never has to vouch for pages written through an old one. If that sync fails, the
//   failure is kept and thrown by the next `fdatasync`/`fsync` of the file, so its owner learns it at the
//   point where it asks for durability (a partition log then cuts back to its durable end).
// - a file opened with `create` exists when `open` returns (it is opened for real at once).
// - a real descriptor whose sync runs on libuv's pool (`fdatasyncEach`) is pinned: never closed for room and
//   never closed by its owner until the sync ended, because the pool thread holds the descriptor number. Its
//   owner may write through it meanwhile (a pipelined group commit): the file stays dirty unless nothing was
//   written after the sync started.
//
// Thread: one instance per partition worker thread, used only by that thread.
import { assert, assertionFailed } from '../core/assert.js';
import type { Disk, Fd } from './disk.js';

interface Entry {
  readonly path: string;
  /** The real descriptor, or -1 while closed for room. */
  real: Fd;
  /** Written since the last sync through this descriptor. */
  dirty: boolean;
  /** Writes and truncations through this entry so far: a sync clears `dirty` only if none came after it began. */
  changes: number;
  /** Syncs of this entry running on the pool: while above 0 its real descriptor stays open. */
  pinned: number;
  /** A sync forced by an eviction failed: thrown by the next sync the owner asks for. */
  deferredSyncError: unknown;
}

export class DescriptorCache implements Disk {
  private readonly entries = new Map<Fd, Entry>();
  /** Entries with a real descriptor, least recently used first. */
  private readonly lru = new Map<Fd, Entry>();
  private nextFd = 1;
  /** Real descriptors opened, and closed for room (counters for metrics and tests). */
  opens = 0;
  evictions = 0;

  /**
   * `onOpenCount` hears the number of real descriptors open after every change: the worker publishes it at once,
   * since the acceptor's connection guard subtracts it from the process's open descriptors, and a figure that
   * waited for the end of a long turn (thousands of logs recovered in one) would count those files as clients.
   */
  constructor(
    private readonly inner: Disk,
    readonly capacity: number,
    private readonly onOpenCount?: (open: number) => void,
  ) {
    assert(
      Number.isSafeInteger(capacity) && capacity >= 1,
      'a descriptor cache holds at least one descriptor',
    );
  }

  /** Real descriptors open now. */
  get openDescriptors(): number {
    return this.lru.size;
  }

  /** Files held open through virtual descriptors. */
  get openFiles(): number {
    return this.entries.size;
  }

  assertBound(): void {
    assert(this.lru.size <= this.capacity, `descriptor cache holds ${this.lru.size} > ${this.capacity}`);
  }

  open(path: string, create: boolean): Fd {
    this.makeRoom();
    const real = this.inner.open(path, create);
    this.opens++;
    const fd = this.nextFd++;
    const entry: Entry = { path, real, dirty: false, changes: 0, pinned: 0, deferredSyncError: undefined };
    this.entries.set(fd, entry);
    this.lru.set(fd, entry);
    this.onOpenCount?.(this.lru.size);
    return fd;
  }

  close(fd: Fd): void {
    const entry = this.entry(fd);
    if (entry.pinned > 0) assertionFailed(`closing ${entry.path} while its sync runs`);
    this.entries.delete(fd);
    if (entry.real >= 0) {
      this.lru.delete(fd);
      // Closing is not a sync: an owner that needed these bytes durable synced them already.
      this.inner.close(entry.real);
      this.onOpenCount?.(this.lru.size);
    }
  }

  write(fd: Fd, bytes: Uint8Array, position: number | null): void {
    const entry = this.entry(fd);
    const real = this.realOf(fd, entry);
    entry.dirty = true;
    entry.changes++;
    this.inner.write(real, bytes, position);
  }

  read(fd: Fd, target: Uint8Array, position: number): number {
    return this.inner.read(this.realOf(fd, this.entry(fd)), target, position);
  }

  fdatasync(fd: Fd): void {
    this.sync(fd, false);
  }

  fsync(fd: Fd): void {
    this.sync(fd, true);
  }

  /**
   * Syncs many files at once, in groups that fit in half of the cache: a group's real descriptors are opened
   * (evicting only descriptors outside the group, which were used less recently) and are pinned open while
   * its syncs run. The owner may go on using the cache meanwhile, writing to these files too.
   */
  async fdatasyncEach(fds: readonly Fd[]): Promise<unknown[]> {
    const errors: unknown[] = new Array(fds.length).fill(undefined);
    const groupMax = Math.max(1, Math.floor(this.capacity / 2));
    for (let start = 0; start < fds.length; start += groupMax) {
      const end = Math.min(fds.length, start + groupMax);
      const reals: Fd[] = [];
      const at: number[] = [];
      const changesAtStart: number[] = [];
      for (let i = start; i < end; i++) {
        const entry = this.entry(fds[i]!);
        if (entry.deferredSyncError !== undefined) {
          errors[i] = entry.deferredSyncError;
          entry.deferredSyncError = undefined;
          continue;
        }
        try {
          reals.push(this.realOf(fds[i]!, entry));
          entry.pinned++;
          at.push(i);
          changesAtStart.push(entry.changes);
        } catch (error) {
          errors[i] = error;
        }
      }
      let outcomes: unknown[];
      try {
        outcomes = await this.inner.fdatasyncEach(reals);
      } finally {
        for (const i of at) this.entry(fds[i]!).pinned--;
      }
      for (let k = 0; k < at.length; k++) {
        const i = at[k]!;
        const entry = this.entry(fds[i]!);
        assert(entry.real === reals[k], 'a descriptor stays open while its sync runs');
        if (outcomes[k] === undefined) {
          if (entry.changes === changesAtStart[k]) entry.dirty = false;
        } else errors[i] = outcomes[k];
      }
    }
    this.assertBound();
    return errors;
  }

  private sync(fd: Fd, metadata: boolean): void {
    const entry = this.entry(fd);
    if (entry.deferredSyncError !== undefined) {
      const error = entry.deferredSyncError;
      entry.deferredSyncError = undefined;
      throw error;
    }
    // A file closed for room was synced then; opening it again just to sync would find nothing to write, but
    // fsync also covers a size change (truncate), so it goes through whenever asked.
    const real = this.realOf(fd, entry);
    if (metadata) this.inner.fsync(real);
    else this.inner.fdatasync(real);
    entry.dirty = false;
  }

  truncate(fd: Fd, sizeBytes: number): void {
    const entry = this.entry(fd);
    const real = this.realOf(fd, entry);
    entry.dirty = true;
    entry.changes++;
    this.inner.truncate(real, sizeBytes);
  }

  size(fd: Fd): number {
    return this.inner.size(this.realOf(fd, this.entry(fd)));
  }

  rename(from: string, to: string): void {
    this.inner.rename(from, to);
  }

  unlink(path: string): void {
    this.inner.unlink(path);
  }

  readdir(dir: string): string[] {
    return this.inner.readdir(dir);
  }

  mkdir(dir: string): void {
    this.inner.mkdir(dir);
  }

  removeDir(dir: string): void {
    this.inner.removeDir(dir);
  }

  fsyncDir(dir: string): void {
    this.inner.fsyncDir(dir);
  }

  exists(path: string): boolean {
    return this.inner.exists(path);
  }

  freeBytes(dir: string): number {
    return this.inner.freeBytes(dir);
  }

  private entry(fd: Fd): Entry {
    const entry = this.entries.get(fd);
    assert(entry !== undefined, `descriptor cache: unknown descriptor ${fd}`);
    return entry;
  }

  /** The real descriptor of `entry`, opened again if it was closed for room; marks it most recently used. */
  private realOf(fd: Fd, entry: Entry): Fd {
    if (entry.real >= 0) {
      this.lru.delete(fd);
      this.lru.set(fd, entry);
      return entry.real;
    }
    this.makeRoom();
    // The file existed when it was first opened; if it is gone now, the ENOENT reaches the owner as a fault.
    entry.real = this.inner.open(entry.path, false);
    this.opens++;
    this.lru.set(fd, entry);
    this.onOpenCount?.(this.lru.size);
    return entry.real;
  }

  /** Closes least recently used descriptors (never a pinned one) until one more fits. */
  private makeRoom(): void {
    while (this.lru.size >= this.capacity) {
      let victim: [Fd, Entry] | null = null;
      for (const candidate of this.lru) {
        if (candidate[1].pinned === 0) {
          victim = candidate;
          break;
        }
      }
      // At most half of the cache is pinned at once (fdatasyncEach's groups), so there is always a victim.
      if (victim === null)
        return assertionFailed('descriptor cache: every open descriptor is pinned by a sync');
      const [fd, entry] = victim;
      this.lru.delete(fd);
      const real = entry.real;
      entry.real = -1;
      this.evictions++;
      if (entry.dirty) {
        entry.dirty = false;
        try {
          this.inner.fdatasync(real);
        } catch (error) {
          entry.deferredSyncError = error;
        }
      }
      this.inner.close(real);
    }
    // No report here: an open follows at once and reports the count.
  }
}
