// A single broker whose data dir (Raft log included) is on an 8 MiB tmpfs that fills up, as the issue's
// reproduction does: admin requests get a 503 naming the disk (definite once the node knows its disk fails),
// the process keeps running (it used to die with "ready() called again before advance()"), the failure shows
// in /cluster/status, /metrics and the log, and once the filler is deleted the node resumes by itself and
// creates topics again. Then kill -9 while the disk is full again and a restart on the full disk: the node
// starts and waits (its first campaign cannot be written) instead of crash-looping, and serves once the disk
// has space. Needs root for mount; skipped with a message when mounting is not permitted.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type BrokerProcess, killBroker, spawnBroker } from '../broker/process.js';
import { killRaw, type RawBroker, servingBase, spawnRaw, waitFor, waitForOutput } from './processes.js';

/** Writes 1 MiB chunks until the file system is full. */
function fill(path: string): void {
  const chunk = Buffer.alloc(1 << 20, 0x5a);
  const fd = openSync(path, 'w');
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
  // The last partial chunk may have left a few KiB free: take them too.
  const fd2 = openSync(path, 'a');
  try {
    for (;;) writeSync(fd2, Buffer.alloc(512));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd2);
  }
}

function unmount(dir: string): void {
  for (let i = 0; i < 5; i++) {
    try {
      execFileSync('umount', [dir], { stdio: 'ignore' });
      return;
    } catch {
      // Busy for a moment after the process died: try again, then detach lazily.
    }
  }
  execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
}

async function post(broker: { readonly base: string }, path: string, body: unknown) {
  const response = await fetch(`${broker.base}${path}`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
    signal: AbortSignal.timeout(15_000),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

test('a full disk under the Raft log: a 503 naming the disk, no crash, and recovery once space is back', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'raft-full-'));
  const mountDir = join(root, 'tmpfs');
  mkdirSync(mountDir);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mountDir], { stdio: 'pipe' });
  } catch (error) {
    rmSync(root, { recursive: true, force: true });
    t.skip(
      `mounting a tmpfs is not permitted here (${String(error).split('\n')[0]}): run as root to test a full disk`,
    );
    return;
  }
  let broker: BrokerProcess | undefined;
  let restarted: RawBroker | undefined;
  try {
    broker = await spawnBroker([
      '--node-id',
      'full1',
      '--data-dir',
      join(mountDir, 'data'),
      '--threads',
      '1',
    ]);
    const b = broker;
    assert.equal((await post(b, '/topics/a', { num_partitions: 1 })).status, 201);

    const filler = join(mountDir, 'filler');
    fill(filler);
    // The first request after the disk filled up may be in flight when the node learns that its disk fails:
    // its outcome is unknown (it commits once space is back). From then on refusals are definite.
    const first = await post(b, '/topics/b', { num_partitions: 1 });
    assert.equal(first.status, 503, JSON.stringify(first.json));
    const second = await post(b, '/topics/b2', { num_partitions: 1 });
    assert.equal(second.status, 503, JSON.stringify(second.json));
    assert.notEqual(
      second.json.indefinite,
      true,
      `a refusal before proposing is definite: ${JSON.stringify(second.json)}`,
    );
    assert.match(String(second.json.message), /ENOSPC/);
    assert.match(String(second.json.message), /Raft log/);
    assert.equal(b.child.exitCode, null, 'the broker is still running');

    const status = (await (await fetch(`${b.base}/cluster/status`)).json()) as {
      raft: { storage_error: { code: string } | null };
    };
    assert.equal(status.raft.storage_error?.code, 'ENOSPC');
    const metrics = await (await fetch(`${b.base}/metrics`)).text();
    assert.match(metrics, /^broker_raft_storage_stalled 1$/m);
    assert.match(metrics, /^broker_raft_storage_failures_total [1-9]/m);
    assert.match(metrics, /^broker_cluster_events_total\{event="raft_storage_failed"\} 1$/m);
    assert.match(b.output(), /"level":50[^\n]*"event":"raft_storage_failed"[^\n]*"code":"ENOSPC"/);

    // Space comes back: the node retries by itself (at most 2 s between tries) and serves admin requests.
    unlinkSync(filler);
    const created = await waitFor(
      'a topic create to succeed after the disk has space again',
      15_000,
      async () => {
        const r = await post(b, '/topics/c', { num_partitions: 1 });
        return r.status === 201 || r.status === 200 ? r : undefined;
      },
      200,
    );
    assert.equal(created.json.topic, 'c');
    const after = (await (await fetch(`${b.base}/cluster/status`)).json()) as {
      raft: { storage_error: unknown };
    };
    assert.equal(after.raft.storage_error, null);
    assert.match(await (await fetch(`${b.base}/metrics`)).text(), /^broker_raft_storage_stalled 0$/m);
    assert.match(b.output(), /"event":"raft_storage_recovered"/);
    assert.equal(b.child.exitCode, null, 'the broker is still running');

    // Full again, killed, restarted on the full disk (a restart policy after a crash).
    fill(filler);
    await killBroker(b);
    const args = ['--node-id', 'full1', '--data-dir', join(mountDir, 'data'), '--threads', '1'];
    const r = spawnRaw(['--cluster-port', '0', ...args]);
    restarted = r;
    await waitForOutput(r, /"event":"raft_storage_failed"/, 30_000);
    assert.equal(r.child.exitCode, null, `the restarted broker is running:\n${r.output().slice(-2000)}`);
    unlinkSync(filler);
    await waitForOutput(r, /"msg":"broker serving"/, 15_000);
    const again = await post({ base: servingBase(r)! }, '/topics/d', { num_partitions: 1 });
    assert.equal(again.status, 201, JSON.stringify(again.json));
  } finally {
    if (restarted !== undefined) await killRaw(restarted);
    if (broker !== undefined) await killBroker(broker);
    unmount(mountDir);
    rmSync(root, { recursive: true, force: true });
  }
});
