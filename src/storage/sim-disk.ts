// An in-memory `Disk` that remembers, per file, what has been made durable, so that a test can crash it and
// see exactly what a power loss could leave behind. Used by the storage tests and meant for any other state
// that is persisted through `Disk` (Raft's term, vote and log).
//
// Model:
// - Each file (inode) has its current bytes and a durable copy; `fsync`/`fdatasync` copy current to durable.
//   Writes and truncations since then are kept as an ordered list of pending operations.
// - Each directory has durable entries and a list of pending entry operations (create, unlink, rename) since
//   its last `fsyncDir`. A rename is atomic but, like the others, may be lost.
// - `crash(rng)` keeps each pending directory operation with some probability (in order), then for each file
//   keeps a random prefix of its pending operations; the first lost write may be torn at a random byte, and a
//   random bit in the surviving unsynced bytes may be flipped. Everything durable survives untouched.
// - `mkdir` is durable at once and `removeDir` removes durably: directories themselves are not the subject.
// - Renames stay within one directory.
// - Space: `capacityBytes` bounds the bytes of all files together (unbounded by default). A write that would
//   pass it lands the prefix that fits and then fails with ENOSPC (or the code `fullCode` says, e.g. EDQUOT),
//   as a short write followed by a failing one does on a real disk; creating a file or a directory fails
//   while no byte is free. `armFull` fills the disk at the n-th mutating call from now, so a test can hit
//   every write point in turn; `failSyncs` makes the next syncs fail (EIO), leaving their data unsynced.
// Single-threaded: used by the one thread that owns it (a test, or a simulated node).
import { dirname } from 'node:path';
import { assert } from '../core/assert.js';
import type { Prng } from '../core/prng.js';
import type { Disk, Fd } from './disk.js';

interface Inode {
  readonly id: number;
  data: Uint8Array;
  length: number;
  durable: Uint8Array;
  pending: PendingFileOp[];
}

type PendingFileOp =
  | { readonly kind: 'write'; readonly position: number; readonly bytes: Uint8Array }
  | { readonly kind: 'truncate'; readonly sizeBytes: number };

type PendingDirOp =
  | { readonly kind: 'link'; readonly path: string; readonly inode: Inode }
  | { readonly kind: 'unlink'; readonly path: string }
  | { readonly kind: 'rename'; readonly from: string; readonly to: string; readonly inode: Inode };

/**
 * Thrown by every SimDisk call once an armed crash point is reached (see `armCrash`): the code under test
 * stops in the middle of whatever it was doing, as a process does when the power goes.
 */
export class SimulatedCrash extends Error {
  override readonly name = 'SimulatedCrash';
}

/** Error codes of the simulated faults, as node:fs reports them. */
export type FaultCode = 'ENOSPC' | 'EDQUOT' | 'EIO';

function faultError(code: FaultCode, syscall: string, path: string): Error {
  const text =
    code === 'EIO' ? 'i/o error' : code === 'EDQUOT' ? 'disk quota exceeded' : 'no space left on device';
  return Object.assign(new Error(`${code}: ${text}, ${syscall} '${path}'`), { code, syscall, path });
}

export interface CrashOptions {
  /** Probability that each unsynced directory operation survives. Default 0.5. */
  readonly keepDirOpProbability?: number;
  /** Probability that the first lost write of a file is torn (a random prefix of it survives). Default 0.5. */
  readonly tearProbability?: number;
  /** Probability that one random bit of a file's surviving unsynced bytes is flipped. Default 0.2. */
  readonly flipProbability?: number;
}

export interface CrashReport {
  readonly lostDirOps: number;
  readonly lostWrites: number;
  readonly tornWrites: number;
  readonly flippedBits: number;
}

export class SimDisk implements Disk {
  private readonly entries = new Map<string, Inode>();
  private readonly durableEntries = new Map<string, Inode>();
  private readonly pendingDirOps = new Map<string, PendingDirOp[]>();
  private readonly dirs = new Set<string>(['/', '.']);
  private readonly fds = new Map<Fd, Inode>();
  private nextFd = 3;
  private nextInode = 1;
  /** Count of fsync, fdatasync and fsyncDir calls, for tests that check the sync policy. */
  syncCount = 0;
  /** Count of write calls. */
  writeCount = 0;
  /** Mutating calls left before an armed crash point; -1 when none is armed. */
  private opsBeforeCrash = -1;
  private halted = false;
  /** Bytes all files may hold together; Infinity = unbounded. */
  capacityBytes = Number.POSITIVE_INFINITY;
  /** The code a write past the capacity fails with. */
  fullCode: FaultCode = 'ENOSPC';
  /** Mutating calls left before the disk fills up (see `armFull`); -1 when none is armed. */
  private opsBeforeFull = -1;
  /** Syncs (fsync, fdatasync, fsyncDir) left to fail, and with which code. */
  private syncFailures = 0;
  private syncFailureCode: FaultCode = 'EIO';
  private syncsBeforeFailure = 0;
  /** Count of mutating calls (create, write, truncate, sync, rename, unlink), for tests that arm faults. */
  mutatingOps = 0;
  /** Count of calls that failed with a simulated fault. */
  faultCount = 0;

  /**
   * Fills the disk at the `mutatingOps`-th mutating call from now: from that call on, the capacity is the
   * bytes in use, so that call (if it needs space) and every later one that needs space fails with `code`.
   */
  armFull(mutatingOps: number, code: FaultCode = 'ENOSPC'): void {
    assert(Number.isInteger(mutatingOps) && mutatingOps >= 1, 'armFull needs a positive op count');
    this.opsBeforeFull = mutatingOps;
    this.fullCode = code;
  }

  /** Gives space back: no capacity bound and no armed fill. */
  freeSpace(): void {
    this.capacityBytes = Number.POSITIVE_INFINITY;
    this.opsBeforeFull = -1;
  }

  /** After `skip` more syncs succeed, the next `count` syncs fail with `code` and make nothing durable. */
  failSyncs(count: number, code: FaultCode = 'EIO', skip = 0): void {
    this.syncFailures = count;
    this.syncFailureCode = code;
    this.syncsBeforeFailure = skip;
  }

  /** Descriptors open now. */
  get openDescriptors(): number {
    return this.fds.size;
  }

  /** Bytes held by every file (each inode once, including open but unlinked ones). */
  usedBytes(): number {
    const seen = new Set<Inode>();
    let used = 0;
    for (const inode of [...this.entries.values(), ...this.fds.values()]) {
      if (seen.has(inode)) continue;
      seen.add(inode);
      used += inode.length;
    }
    return used;
  }

  freeBytes(_dir: string): number {
    if (this.capacityBytes === Number.POSITIVE_INFINITY) return Number.POSITIVE_INFINITY;
    return Math.max(0, this.capacityBytes - this.usedBytes());
  }

  private checkSync(syscall: string, path: string): void {
    if (this.syncFailures <= 0) return;
    if (this.syncsBeforeFailure > 0) {
      this.syncsBeforeFailure--;
      return;
    }
    this.syncFailures--;
    this.faultCount++;
    throw faultError(this.syncFailureCode, syscall, path);
  }

  /**
   * Arms a crash point: the `mutatingOps`-th mutating call from now (create, write, truncate, sync, rename,
   * unlink) throws `SimulatedCrash` without taking effect, and so does every call after it until `crash`.
   */
  armCrash(mutatingOps: number): void {
    assert(Number.isInteger(mutatingOps) && mutatingOps >= 1, 'armCrash needs a positive op count');
    this.opsBeforeCrash = mutatingOps;
  }

  /** Disarms a crash point that was not reached. */
  disarmCrash(): void {
    this.opsBeforeCrash = -1;
  }

  private mutating(): void {
    if (this.halted) throw new SimulatedCrash('the simulated machine is down');
    this.mutatingOps++;
    if (this.opsBeforeFull > 0 && --this.opsBeforeFull === 0) {
      this.opsBeforeFull = -1;
      this.capacityBytes = this.usedBytes();
    }
    if (this.opsBeforeCrash === -1) return;
    this.opsBeforeCrash--;
    if (this.opsBeforeCrash === 0) {
      this.opsBeforeCrash = -1;
      this.halted = true;
      throw new SimulatedCrash('simulated power loss');
    }
  }

  open(path: string, create: boolean): Fd {
    this.assertDir(dirname(path));
    let inode = this.entries.get(path);
    if (this.halted) throw new SimulatedCrash('the simulated machine is down');
    if (inode === undefined) {
      if (!create) throw Object.assign(new Error(`ENOENT: no such file '${path}'`), { code: 'ENOENT' });
      this.mutating();
      if (this.freeBytes(dirname(path)) <= 0) {
        this.faultCount++;
        throw faultError(this.fullCode, 'open', path);
      }
      inode = {
        id: this.nextInode++,
        data: new Uint8Array(256),
        length: 0,
        durable: new Uint8Array(0),
        pending: [],
      };
      this.entries.set(path, inode);
      this.dirOps(dirname(path)).push({ kind: 'link', path, inode });
    }
    const fd = this.nextFd++;
    this.fds.set(fd, inode);
    return fd;
  }

  close(fd: Fd): void {
    this.inode(fd);
    this.fds.delete(fd);
  }

  write(fd: Fd, bytes: Uint8Array, position: number | null): void {
    this.mutating();
    const inode = this.inode(fd);
    const at = position ?? inode.length;
    assert(at >= 0 && Number.isSafeInteger(at), 'SimDisk write position');
    // Past the capacity, the bytes that fit land (a short write) and the rest fails.
    const fits = inode.length + this.freeBytes('/') - at;
    const landed = fits >= bytes.length ? bytes : bytes.subarray(0, Math.max(0, fits));
    if (landed.length > 0) {
      writeInto(inode, at, landed);
      inode.pending.push({ kind: 'write', position: at, bytes: landed.slice() });
    }
    this.writeCount++;
    if (landed.length < bytes.length) {
      this.faultCount++;
      throw faultError(this.fullCode, 'write', `fd ${fd}`);
    }
  }

  read(fd: Fd, target: Uint8Array, position: number): number {
    if (this.halted) throw new SimulatedCrash('the simulated machine is down');
    const inode = this.inode(fd);
    if (position >= inode.length) return 0;
    const n = Math.min(target.length, inode.length - position);
    target.set(inode.data.subarray(position, position + n));
    return n;
  }

  fdatasync(fd: Fd): void {
    this.fsync(fd);
  }

  /** One after another, in order: a simulated crash stops the batch where it happens (rethrown, as a sync's). */
  async fdatasyncEach(fds: readonly Fd[]): Promise<unknown[]> {
    const errors: unknown[] = [];
    for (const fd of fds) {
      try {
        this.fsync(fd);
        errors.push(undefined);
      } catch (error) {
        if (error instanceof SimulatedCrash) throw error;
        errors.push(error);
      }
    }
    return errors;
  }

  fsync(fd: Fd): void {
    this.mutating();
    this.checkSync('fsync', `fd ${fd}`);
    const inode = this.inode(fd);
    inode.durable = inode.data.slice(0, inode.length);
    inode.pending = [];
    this.syncCount++;
  }

  truncate(fd: Fd, sizeBytes: number): void {
    this.mutating();
    const inode = this.inode(fd);
    truncateInode(inode, sizeBytes);
    inode.pending.push({ kind: 'truncate', sizeBytes });
  }

  size(fd: Fd): number {
    return this.inode(fd).length;
  }

  rename(from: string, to: string): void {
    this.mutating();
    assert(dirname(from) === dirname(to), 'SimDisk renames stay within one directory');
    const inode = this.entries.get(from);
    if (inode === undefined)
      throw Object.assign(new Error(`ENOENT: no such file '${from}'`), { code: 'ENOENT' });
    this.entries.delete(from);
    this.entries.set(to, inode);
    this.dirOps(dirname(to)).push({ kind: 'rename', from, to, inode });
  }

  unlink(path: string): void {
    this.mutating();
    if (!this.entries.delete(path)) {
      throw Object.assign(new Error(`ENOENT: no such file '${path}'`), { code: 'ENOENT' });
    }
    this.dirOps(dirname(path)).push({ kind: 'unlink', path });
  }

  readdir(dir: string): string[] {
    this.assertDir(dir);
    const names: string[] = [];
    for (const path of this.entries.keys()) if (dirname(path) === dir) names.push(path.slice(dir.length + 1));
    for (const sub of this.dirs)
      if (sub !== dir && dirname(sub) === dir) names.push(sub.slice(dir.length + 1));
    return names.sort();
  }

  mkdir(dir: string): void {
    if (!this.dirs.has(dir) && this.freeBytes(dir) <= 0) {
      this.faultCount++;
      throw faultError(this.fullCode, 'mkdir', dir);
    }
    let d = dir;
    while (!this.dirs.has(d)) {
      this.dirs.add(d);
      d = dirname(d);
    }
  }

  removeDir(dir: string): void {
    const inside = (path: string) => path === dir || path.startsWith(`${dir}/`);
    for (const path of [...this.entries.keys()]) if (inside(path)) this.entries.delete(path);
    for (const path of [...this.durableEntries.keys()]) if (inside(path)) this.durableEntries.delete(path);
    for (const d of [...this.pendingDirOps.keys()]) if (inside(d)) this.pendingDirOps.delete(d);
    for (const d of [...this.dirs]) if (inside(d)) this.dirs.delete(d);
  }

  fsyncDir(dir: string): void {
    this.mutating();
    this.checkSync('fsync', dir);
    this.assertDir(dir);
    for (const path of [...this.durableEntries.keys()]) {
      if (dirname(path) === dir) this.durableEntries.delete(path);
    }
    for (const [path, inode] of this.entries) if (dirname(path) === dir) this.durableEntries.set(path, inode);
    this.pendingDirOps.delete(dir);
    this.syncCount++;
  }

  exists(path: string): boolean {
    return this.entries.has(path) || this.dirs.has(path);
  }

  /** Bytes of a file as they are now (a copy), for tests. */
  fileBytes(path: string): Uint8Array {
    const inode = this.entries.get(path);
    assert(inode !== undefined, `SimDisk.fileBytes of a missing file '${path}'`);
    return inode.data.slice(0, inode.length);
  }

  /** Overwrites bytes of a file in place as if the medium changed them, durably (for corruption tests). */
  corrupt(path: string, position: number, bytes: Uint8Array): void {
    const inode = this.entries.get(path);
    assert(inode !== undefined, `SimDisk.corrupt of a missing file '${path}'`);
    assert(position + bytes.length <= inode.length, 'SimDisk.corrupt past the end of the file');
    inode.data.set(bytes, position);
    inode.durable = inode.data.slice(0, inode.length);
    inode.pending = [];
  }

  /**
   * Simulates a power loss: every descriptor is closed and only what the model above allows survives.
   * Every choice is drawn from `rng`, so a crash replays from the seed.
   */
  crash(rng: Prng, options: CrashOptions = {}): CrashReport {
    const keepDirOp = options.keepDirOpProbability ?? 0.5;
    const tear = options.tearProbability ?? 0.5;
    const flip = options.flipProbability ?? 0.2;
    let lostDirOps = 0;
    let lostWrites = 0;
    let tornWrites = 0;
    let flippedBits = 0;
    for (const dir of [...this.pendingDirOps.keys()].sort()) {
      for (const op of this.pendingDirOps.get(dir)!) {
        if (rng.nextFloat() >= keepDirOp) {
          lostDirOps++;
          continue;
        }
        if (op.kind === 'link') this.durableEntries.set(op.path, op.inode);
        else if (op.kind === 'unlink') this.durableEntries.delete(op.path);
        else {
          this.durableEntries.delete(op.from);
          this.durableEntries.set(op.to, op.inode);
        }
      }
    }
    this.pendingDirOps.clear();
    this.halted = false;
    this.opsBeforeCrash = -1;
    this.entries.clear();
    for (const [path, inode] of [...this.durableEntries].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      this.entries.set(path, inode);
    }
    this.fds.clear();
    const seen = new Set<Inode>();
    for (const inode of this.entries.values()) {
      if (seen.has(inode)) continue;
      seen.add(inode);
      const ops = inode.pending;
      inode.data = new Uint8Array(Math.max(256, inode.durable.length));
      inode.data.set(inode.durable);
      inode.length = inode.durable.length;
      inode.pending = [];
      const kept = rng.nextInt(ops.length + 1);
      lostWrites += ops.length - kept;
      const survivors: { position: number; length: number }[] = [];
      for (let i = 0; i < kept; i++) {
        const op = ops[i]!;
        if (op.kind === 'write') {
          writeInto(inode, op.position, op.bytes);
          survivors.push({ position: op.position, length: op.bytes.length });
        } else truncateInode(inode, op.sizeBytes);
      }
      const firstLost = ops[kept];
      if (firstLost !== undefined && firstLost.kind === 'write' && rng.nextFloat() < tear) {
        const partial = firstLost.bytes.subarray(0, rng.nextInt(firstLost.bytes.length + 1));
        writeInto(inode, firstLost.position, partial);
        if (partial.length > 0) survivors.push({ position: firstLost.position, length: partial.length });
        tornWrites++;
      }
      if (survivors.length > 0 && rng.nextFloat() < flip) {
        const range = survivors[rng.nextInt(survivors.length)]!;
        const at = range.position + rng.nextInt(range.length);
        if (at < inode.length) {
          inode.data[at] = inode.data[at]! ^ (1 << rng.nextInt(8));
          flippedBits++;
        }
      }
      inode.durable = inode.data.slice(0, inode.length);
    }
    return { lostDirOps, lostWrites, tornWrites, flippedBits };
  }

  private inode(fd: Fd): Inode {
    const inode = this.fds.get(fd);
    assert(inode !== undefined, `SimDisk: bad file descriptor ${fd}`);
    return inode;
  }

  private dirOps(dir: string): PendingDirOp[] {
    this.assertDir(dir);
    let ops = this.pendingDirOps.get(dir);
    if (ops === undefined) {
      ops = [];
      this.pendingDirOps.set(dir, ops);
    }
    return ops;
  }

  private assertDir(dir: string): void {
    if (!this.dirs.has(dir))
      throw Object.assign(new Error(`ENOENT: no such directory '${dir}'`), { code: 'ENOENT' });
  }
}

function ensureCapacity(inode: Inode, sizeBytes: number): void {
  if (sizeBytes <= inode.data.length) return;
  let capacity = inode.data.length;
  while (capacity < sizeBytes) capacity *= 2;
  const grown = new Uint8Array(capacity);
  grown.set(inode.data.subarray(0, inode.length));
  inode.data = grown;
}

function writeInto(inode: Inode, position: number, bytes: Uint8Array): void {
  const end = position + bytes.length;
  ensureCapacity(inode, end);
  if (position > inode.length) inode.data.fill(0, inode.length, position);
  inode.data.set(bytes, position);
  if (end > inode.length) inode.length = end;
}

function truncateInode(inode: Inode, sizeBytes: number): void {
  ensureCapacity(inode, sizeBytes);
  if (sizeBytes > inode.length) inode.data.fill(0, inode.length, sizeBytes);
  inode.length = sizeBytes;
}
