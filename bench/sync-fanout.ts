// What a group commit spread over many partitions waits for on this disk: one fdatasync per file for N files
// written with one small record each, all at once on libuv's pool (as `RealDisk.fdatasyncEach` runs them),
// against one file holding the same N records and synced once (what a write-ahead log per worker would cost).
// Runs in its own process with the pool size given by UV_THREADPOOL_SIZE (the broker's deployments use 16);
// files under .tmp/, removed at the end. Prints a table and writes bench/results/sync-fanout-<iso>.json.
//
//   UV_THREADPOOL_SIZE=16 node --import tsx bench/sync-fanout.ts [--rounds 60] [--record-bytes 120]
import { closeSync, fdatasync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { root } from './lib/servers.js';
import { report } from './lib/table.js';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const rounds = option('rounds', 60);
const recordBytes = option('record-bytes', 120);
const fileCounts = [1, 8, 50, 200];
const dir = mkdtempSync(join(root, '.tmp', 'sync-fanout-'));
const record = Buffer.alloc(recordBytes, 0x61);

function syncAll(fds: readonly number[]): Promise<void> {
  return new Promise((resolve, reject) => {
    let left = fds.length;
    for (const fd of fds) {
      fdatasync(fd, (error) => {
        if (error !== null) reject(error);
        else if (--left === 0) resolve();
      });
    }
  });
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const rows: Record<string, unknown>[] = [];
const fds: number[] = [];
try {
  for (let i = 0; i < Math.max(...fileCounts); i++) fds.push(openSync(join(dir, `p${i}.log`), 'w+'));
  const log = openSync(join(dir, 'journal.log'), 'w+');
  fds.push(log);
  for (const files of fileCounts) {
    const spread: number[] = [];
    const one: number[] = [];
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < files; i++) writeSync(fds[i]!, record);
      let started = performance.now();
      await syncAll(fds.slice(0, files));
      spread.push(performance.now() - started);
      writeSync(log, Buffer.alloc(recordBytes * files, 0x62));
      started = performance.now();
      await syncAll([log]);
      one.push(performance.now() - started);
    }
    spread.sort((a, b) => a - b);
    one.sort((a, b) => a - b);
    rows.push({
      records: files,
      'a file each, synced at once: p50 ms': quantile(spread, 0.5).toFixed(2),
      'a file each: p90 ms': quantile(spread, 0.9).toFixed(2),
      'one file for all: p50 ms': quantile(one, 0.5).toFixed(2),
      'one file: p90 ms': quantile(one, 0.9).toFixed(2),
      'p50 ratio': (quantile(spread, 0.5) / quantile(one, 0.5)).toFixed(1),
    });
  }
} finally {
  for (const fd of fds) closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
}
console.log(
  `UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}, ${rounds} rounds, ${recordBytes} B records`,
);
report(join(root, 'bench/results', `sync-fanout-${new Date().toISOString().replace(/[:.]/g, '-')}`), rows, {
  poolThreads: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
  rounds,
  recordBytes,
});
