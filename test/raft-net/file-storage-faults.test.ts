// FileStorage when writes fail (ENOSPC, EIO): a write, truncate, fsync, rename or directory fsync that throws,
// before or after it took effect (a failed fsync may have made the bytes durable anyway, a write may have
// landed half), at any point of any operation. The claims: the failed call throws the disk's error and
// nothing else (no assertion), the storage stays usable, retrying the same call (what RaftHost does) succeeds
// once the disk works and leaves exactly the state of a call that never failed, a crash instead of the retry
// recovers a state the operation allows, and no descriptor is leaked.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { createPrng, type Prng } from '../../src/core/prng.js';
import { MemoryStorage } from '../../src/core/raft/storage.js';
import { FileStorage } from '../../src/raft/file-storage.js';
import { isStorageError } from '../../src/raft/node-host.js';
import type { Disk, Fd } from '../../src/storage/disk.js';
import { SimDisk } from '../../src/storage/sim-disk.js';
import { acceptableAfterCrash, applyTo, type Call, concretize, opArb, view } from './storage-model.js';

const dir = '/raft';

type FaultMode = 'before' | 'after' | 'half';

/** An ENOSPC as node:fs throws it. */
function enospc(syscall: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`ENOSPC: no space left on device, ${syscall}`);
  error.code = 'ENOSPC';
  error.errno = -28;
  error.syscall = syscall;
  return error;
}

/**
 * A Disk that fails the n-th mutating call from `arm` (open for create, write, truncate, fsync, fdatasync,
 * rename, unlink, fsyncDir) with ENOSPC: `before` it takes effect, `after` (the call happened, as a failed
 * fsync whose bytes landed), or `half` (a write of the first half of the bytes). It also counts descriptors.
 */
class FaultyDisk implements Disk {
  private countdown = -1;
  private mode: FaultMode = 'before';
  faults = 0;
  readonly open_ = new Set<Fd>();

  constructor(readonly inner: SimDisk) {}

  arm(mutatingOps: number, mode: FaultMode): void {
    this.countdown = mutatingOps;
    this.mode = mode;
  }

  disarm(): void {
    this.countdown = -1;
  }

  /** Runs `effect` unless this call is the armed one, which fails as configured. */
  private mutate<T>(syscall: string, effect: () => T, half?: () => void): T {
    if (this.countdown > 0 && --this.countdown === 0) {
      this.countdown = -1;
      this.faults++;
      if (this.mode === 'after') effect();
      else if (this.mode === 'half') (half ?? effect)();
      throw enospc(syscall);
    }
    return effect();
  }

  open(path: string, create: boolean): Fd {
    const run = () => {
      const fd = this.inner.open(path, create);
      this.open_.add(fd);
      return fd;
    };
    if (!create) return run();
    // A failed create after it took effect would leak the descriptor it never returns: fail before.
    if (this.countdown > 0 && --this.countdown === 0) {
      this.countdown = -1;
      this.faults++;
      throw enospc('open');
    }
    return run();
  }
  close(fd: Fd): void {
    this.open_.delete(fd);
    this.inner.close(fd);
  }
  write(fd: Fd, bytes: Uint8Array, position: number | null): void {
    this.mutate(
      'write',
      () => this.inner.write(fd, bytes, position),
      () => this.inner.write(fd, bytes.subarray(0, Math.floor(bytes.length / 2)), position),
    );
  }
  read(fd: Fd, target: Uint8Array, position: number): number {
    return this.inner.read(fd, target, position);
  }
  fdatasync(fd: Fd): void {
    this.mutate('fdatasync', () => this.inner.fdatasync(fd));
  }
  async fdatasyncEach(fds: readonly Fd[]): Promise<unknown[]> {
    return fds.map((fd) => {
      try {
        this.fdatasync(fd);
        return undefined;
      } catch (error) {
        return error;
      }
    });
  }
  fsync(fd: Fd): void {
    this.mutate('fsync', () => this.inner.fsync(fd));
  }
  truncate(fd: Fd, sizeBytes: number): void {
    this.mutate('ftruncate', () => this.inner.truncate(fd, sizeBytes));
  }
  size(fd: Fd): number {
    return this.inner.size(fd);
  }
  freeBytes(dir: string): number {
    return this.inner.freeBytes(dir);
  }
  rename(from: string, to: string): void {
    this.mutate('rename', () => this.inner.rename(from, to));
  }
  unlink(path: string): void {
    this.mutate('unlink', () => this.inner.unlink(path));
  }
  readdir(d: string): string[] {
    return this.inner.readdir(d);
  }
  mkdir(d: string): void {
    this.inner.mkdir(d);
  }
  removeDir(d: string): void {
    this.inner.removeDir(d);
  }
  fsyncDir(d: string): void {
    this.mutate('fsync', () => this.inner.fsyncDir(d));
  }
  exists(path: string): boolean {
    return this.inner.exists(path);
  }
}

const modes: readonly FaultMode[] = ['before', 'after', 'half'];

function sameAsOneOf(got: ReturnType<typeof view>, acceptable: ReturnType<typeof view>[]): boolean {
  return acceptable.some((a) => {
    try {
      assert.deepEqual(got, a);
      return true;
    } catch {
      return false;
    }
  });
}

test('a failed write at any step, retried once the disk works, leaves exactly the state of a call that never failed', () => {
  // RAFT_FAULT_SEED=<seed> replays one seed.
  const only = process.env.RAFT_FAULT_SEED;
  const seeds = only !== undefined ? [Number(only)] : Array.from({ length: 300 }, (_, i) => 5000 + i);
  let faults = 0;
  for (const seed of seeds) {
    const rng: Prng = createPrng(seed);
    const ops = fc.sample(fc.array(opArb, { minLength: 5, maxLength: 40 }), { seed, numRuns: 1 })[0]!;
    const disk = new FaultyDisk(new SimDisk());
    const model = new MemoryStorage();
    let storage = FileStorage.open(disk, dir);
    try {
      for (const op of ops) {
        const call = concretize(op, model);
        if (call === undefined) continue;
        if (call.kind === 'reopen') {
          storage.close();
          storage = FileStorage.open(disk, dir);
          assert.deepEqual(view(storage), view(model));
          continue;
        }
        if (rng.nextInt(3) === 0) disk.arm(1 + rng.nextInt(12), modes[rng.nextInt(modes.length)]!);
        // Each retry may fail again (a disk that stays full for a while).
        for (let attempt = 0; ; attempt++) {
          try {
            applyTo(storage, call);
            break;
          } catch (error) {
            assert.ok(isStorageError(error), `the disk's error, not ${String(error)}`);
            faults++;
            if (attempt < 2 && rng.nextInt(2) === 0) disk.arm(1 + rng.nextInt(4), modes[rng.nextInt(3)]!);
          }
        }
        disk.disarm();
        applyTo(model, call);
        assert.deepEqual(view(storage), view(model));
      }
      storage.close();
      assert.equal(disk.open_.size, 0, 'every descriptor opened was closed');
      // Everything a successful call returned was durable: a reopen (and a crash) sees the same.
      disk.inner.crash(rng);
      const reopened = FileStorage.open(disk, dir);
      assert.deepEqual(view(reopened), view(model));
      reopened.close();
    } catch (error) {
      throw new Error(`fault test failed with seed ${seed} (replay: RAFT_FAULT_SEED=${seed})`, {
        cause: error,
      });
    }
  }
  console.log(`${seeds.length} seeds: ${faults} failed writes retried`);
  if (only === undefined) assert.ok(faults > 100, 'too few faults were injected to mean anything');
});

test('a crash after a failed write (instead of its retry) recovers a state the operation allows', () => {
  const only = process.env.RAFT_FAULT_SEED;
  const seeds = only !== undefined ? [Number(only)] : Array.from({ length: 300 }, (_, i) => 9000 + i);
  let crashes = 0;
  for (const seed of seeds) {
    const rng: Prng = createPrng(seed);
    const ops = fc.sample(fc.array(opArb, { minLength: 5, maxLength: 30 }), { seed, numRuns: 1 })[0]!;
    const disk = new FaultyDisk(new SimDisk());
    const model = new MemoryStorage();
    const done: Call[] = [];
    let storage = FileStorage.open(disk, dir);
    const faultAt = rng.nextInt(ops.length);
    try {
      for (let i = 0; i < ops.length; i++) {
        const call = concretize(ops[i]!, model);
        if (call === undefined || call.kind === 'reopen') continue;
        if (i >= faultAt) disk.arm(1 + rng.nextInt(12), modes[rng.nextInt(modes.length)]!);
        try {
          applyTo(storage, call);
        } catch (error) {
          assert.ok(isStorageError(error), `the disk's error, not ${String(error)}`);
          crashes++;
          disk.disarm();
          storage.close();
          disk.inner.crash(rng);
          storage = FileStorage.open(disk, dir);
          const got = view(storage);
          assert.ok(
            sameAsOneOf(got, acceptableAfterCrash(model, call, done)),
            `recovered state is not one the failed operation allows: ${JSON.stringify(got)}`,
          );
          break;
        }
        disk.disarm();
        applyTo(model, call);
        done.push(call);
      }
      // Whatever recovery kept, the log keeps working.
      const last = storage.lastIndex();
      const term = Math.max(storage.hardState().term, storage.term(last) ?? 0, 1);
      storage.append([{ index: last + 1, term, kind: 'normal', data: new Uint8Array([7]) }]);
      const before = view(storage);
      storage.close();
      const again = FileStorage.open(disk, dir);
      assert.deepEqual(view(again), before);
      again.close();
    } catch (error) {
      throw new Error(`fault test failed with seed ${seed} (replay: RAFT_FAULT_SEED=${seed})`, {
        cause: error,
      });
    }
  }
  console.log(`${seeds.length} seeds: ${crashes} crashes after a failed write`);
  if (only === undefined) assert.ok(crashes > 100, 'too few failed writes to mean anything');
});
