// The file-system operations the storage engine needs, behind a small interface so that tests can run the
// same code over the simulated disk (`sim-disk.ts`), which can crash and lose what was not fsynced.
// `RealDisk` maps each call to one synchronous node:fs call: it is meant for a partition worker thread (or
// the control thread for Raft state), whose own thread exists to block on I/O. The one exception is
// `fdatasyncEach`, the group commit of many files: their syncs run at once on libuv's thread pool, because a
// file system commits concurrent syncs together (one journal commit for many files) where one after another
// each waits for its own. Paths are absolute or relative to the process; descriptors are plain numbers.
import * as fs from 'node:fs';

export type Fd = number;

export interface Disk {
  /** Opens a file for reading and writing; creates it (empty) when `create` is set and it is missing. */
  open(path: string, create: boolean): Fd;
  close(fd: Fd): void;
  /** Writes all of `bytes` at `position`, or at the end of the file when `position` is null. */
  write(fd: Fd, bytes: Uint8Array, position: number | null): void;
  /** Reads up to `target.length` bytes at `position`; returns the count (short only at end of file). */
  read(fd: Fd, target: Uint8Array, position: number): number;
  /** Makes the file's data (and the size needed to read it) durable. */
  fdatasync(fd: Fd): void;
  /**
   * `fdatasync` of every file, many at once off the calling thread: resolves, once every sync has ended, with
   * each file's error (undefined when its data is durable), in the order of `fds`. The caller uses none of
   * these descriptors until it resolves.
   */
  fdatasyncEach(fds: readonly Fd[]): Promise<unknown[]>;
  /** Makes the file's data and metadata durable. */
  fsync(fd: Fd): void;
  truncate(fd: Fd, sizeBytes: number): void;
  size(fd: Fd): number;
  /** Atomically replaces `to` with `from`. Durable once the directory is fsynced. */
  rename(from: string, to: string): void;
  unlink(path: string): void;
  /** Names (not paths) of the entries of a directory. */
  readdir(dir: string): string[];
  /** Creates a directory and its missing parents. */
  mkdir(dir: string): void;
  /** Removes a directory and everything in it. */
  removeDir(dir: string): void;
  /** Makes the creation, renaming and deletion of entries in `dir` durable. */
  fsyncDir(dir: string): void;
  exists(path: string): boolean;
  /** Bytes an unprivileged writer may still use on the file system holding `dir` (statfs: bavail x bsize). */
  freeBytes(dir: string): number;
}

/** Syncs `RealDisk.fdatasyncEach` keeps queued on libuv's thread pool at most. */
export const SYNCS_IN_FLIGHT_MAX = 64;

export class RealDisk implements Disk {
  open(path: string, create: boolean): Fd {
    return fs.openSync(
      path,
      create ? fs.constants.O_RDWR | fs.constants.O_CREAT : fs.constants.O_RDWR,
      0o644,
    );
  }

  close(fd: Fd): void {
    fs.closeSync(fd);
  }

  write(fd: Fd, bytes: Uint8Array, position: number | null): void {
    let done = 0;
    // writeSync may write less than asked (rarely, for huge buffers); loop until everything is written.
    while (done < bytes.length) {
      const written = fs.writeSync(
        fd,
        bytes,
        done,
        bytes.length - done,
        position === null ? null : position + done,
      );
      done += written;
    }
  }

  read(fd: Fd, target: Uint8Array, position: number): number {
    let done = 0;
    while (done < target.length) {
      const n = fs.readSync(fd, target, done, target.length - done, position + done);
      if (n === 0) break;
      done += n;
    }
    return done;
  }

  fdatasync(fd: Fd): void {
    fs.fdatasyncSync(fd);
  }

  fdatasyncEach(fds: readonly Fd[]): Promise<unknown[]> {
    const errors: unknown[] = new Array(fds.length).fill(undefined);
    if (fds.length === 0) return Promise.resolve(errors);
    // At most this many syncs queued on the pool at once: enough to keep every pool thread busy, bounded so a
    // batch over thousands of files does not queue thousands of requests ahead of other pool users.
    const inFlightMax = Math.min(fds.length, SYNCS_IN_FLIGHT_MAX);
    let next = 0;
    let running = 0;
    return new Promise((resolve) => {
      const startOne = (): void => {
        const i = next++;
        running++;
        fs.fdatasync(fds[i]!, (error) => {
          if (error !== null) errors[i] = error;
          running--;
          if (next < fds.length) startOne();
          else if (running === 0) resolve(errors);
        });
      };
      for (let k = 0; k < inFlightMax; k++) startOne();
    });
  }

  fsync(fd: Fd): void {
    fs.fsyncSync(fd);
  }

  truncate(fd: Fd, sizeBytes: number): void {
    fs.ftruncateSync(fd, sizeBytes);
  }

  size(fd: Fd): number {
    return fs.fstatSync(fd).size;
  }

  rename(from: string, to: string): void {
    fs.renameSync(from, to);
  }

  unlink(path: string): void {
    fs.unlinkSync(path);
  }

  readdir(dir: string): string[] {
    return fs.readdirSync(dir);
  }

  mkdir(dir: string): void {
    fs.mkdirSync(dir, { recursive: true });
  }

  removeDir(dir: string): void {
    fs.rmSync(dir, { recursive: true, force: true });
  }

  fsyncDir(dir: string): void {
    const fd = fs.openSync(dir, fs.constants.O_RDONLY);
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  exists(path: string): boolean {
    return fs.existsSync(path);
  }

  freeBytes(dir: string): number {
    const stats = fs.statfsSync(dir);
    return stats.bavail * stats.bsize;
  }
}
