// RaftHost when its disk fills up: three hosts over real TCP in one process, each on a disk that can be made to
// fail every write with ENOSPC. The claims: a full disk never throws out of the host (the old host threw from
// `propose` and then failed "ready() called again before advance()" on the next tick); while it is full the
// node stays out of the group (it refuses proposals with `storage_failed` at once, and the other two elect a
// leader and commit without it), the failure and the recovery are reported once each; once the disk has
// space again the node catches up by itself; and every node applies the same entries in the same order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPrng } from '../../src/core/prng.js';
import type { NodeId } from '../../src/core/raft/types.js';
import { RaftHost, type StorageFault } from '../../src/raft/node-host.js';
import type { Disk, Fd } from '../../src/storage/disk.js';
import { SimDisk } from '../../src/storage/sim-disk.js';

const ids = ['a', 'b', 'c'] as const;
const tickMs = 20;
const electionTimeoutTicks = 10;
/** A few randomized election timeouts (each at most 2 x 10 ticks x 20 ms) plus the storage retry cap. */
const deadlineMs = 6_000;
const retry = { initialMs: 20, maxMs: 200, jitter: 0.2 };

async function waitFor(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A disk that can be made full: every mutating call then fails with ENOSPC before taking effect. */
class FillableDisk implements Disk {
  full = false;
  constructor(private readonly inner: Disk) {}
  private check(syscall: string): void {
    if (!this.full) return;
    const error: NodeJS.ErrnoException = new Error(`ENOSPC: no space left on device, ${syscall}`);
    error.code = 'ENOSPC';
    throw error;
  }
  open(path: string, create: boolean): Fd {
    if (create) this.check('open');
    return this.inner.open(path, create);
  }
  close(fd: Fd): void {
    this.inner.close(fd);
  }
  write(fd: Fd, bytes: Uint8Array, position: number | null): void {
    this.check('write');
    this.inner.write(fd, bytes, position);
  }
  read(fd: Fd, target: Uint8Array, position: number): number {
    return this.inner.read(fd, target, position);
  }
  fdatasync(fd: Fd): void {
    this.check('fdatasync');
    this.inner.fdatasync(fd);
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
    this.check('fsync');
    this.inner.fsync(fd);
  }
  truncate(fd: Fd, sizeBytes: number): void {
    this.inner.truncate(fd, sizeBytes);
  }
  size(fd: Fd): number {
    return this.inner.size(fd);
  }
  freeBytes(dir: string): number {
    return this.inner.freeBytes(dir);
  }
  rename(from: string, to: string): void {
    this.check('rename');
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
    this.check('fsync');
    this.inner.fsyncDir(dir);
  }
  exists(path: string): boolean {
    return this.inner.exists(path);
  }
}

interface Node {
  readonly id: NodeId;
  readonly disk: FillableDisk;
  host: RaftHost;
  readonly applied: string[];
  readonly faults: StorageFault[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function leaderOf(nodes: readonly Node[], among: readonly Node[] = nodes): Node | undefined {
  const leaders = among.filter((n) => n.host.status().role === 'leader');
  return leaders.length === 1 ? leaders[0] : undefined;
}

test('a node whose disk fills up stays out of the group without crashing, and catches up once it has space', async () => {
  const seed = Number(process.env.RAFT_CLUSTER_SEED ?? Date.now() % 100_000);
  const nodes: Node[] = [];
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown): void => {
    uncaught.push(error);
  };
  process.on('uncaughtException', onUncaught);
  try {
    for (const [i, id] of ids.entries()) {
      const disk = new FillableDisk(new SimDisk());
      const node = { id, disk, applied: [] as string[], faults: [] as StorageFault[] } as Node;
      node.host = await RaftHost.start({
        id,
        dir: `/raft-${id}`,
        disk,
        listenHost: '127.0.0.1',
        listenPort: 0,
        peers: {},
        initialVoters: [...ids],
        tickMs,
        random: createPrng(seed + i).nextFloat,
        apply: (e) => {
          if (e.kind === 'normal' && e.data.length > 0)
            node.applied.push(`${e.index}:${decoder.decode(e.data)}`);
        },
        restore: () => assert.fail('no snapshot is taken in this test'),
        raft: { electionTimeoutTicks },
        storageRetry: retry,
        onStorageFault: (fault) => node.faults.push(fault),
      });
      nodes.push(node);
    }
    for (const n of nodes) for (const p of nodes) if (p !== n) n.host.setPeer(p.id, p.host.address());

    await waitFor('a leader', () => leaderOf(nodes) !== undefined, deadlineMs);
    const first = leaderOf(nodes)!;
    assert.equal((await first.host.propose(encoder.encode('before'))).kind, 'applied');

    // The leader's disk fills up. Its next proposal cannot be persisted here; whether it commits depends on
    // the two followers, so it stays pending (unknown) rather than failing.
    first.disk.full = true;
    const inFlight = first.host.propose(encoder.encode('in-flight'));
    await waitFor('the full node to stall', () => first.host.storageStall() !== undefined, deadlineMs);
    const refused = await first.host.propose(encoder.encode('refused'));
    assert.equal(refused.kind, 'storage_failed', 'a proposal on a stalled node is refused at once');
    assert.equal(first.host.status().storageStall?.code, 'ENOSPC');

    // The other two carry on without it.
    const others = nodes.filter((n) => n !== first);
    await waitFor('a leader among the other two', () => leaderOf(nodes, others) !== undefined, deadlineMs);
    const second = leaderOf(nodes, others)!;
    for (let i = 0; i < 10; i++) {
      const outcome = await second.host.propose(encoder.encode(`during-${i}`));
      if (outcome.kind !== 'applied') i--;
    }
    assert.ok(first.host.storageStall() !== undefined, 'still out of the group while the disk is full');
    const stalledApplied = first.applied.length;

    // Space is back: the node rejoins by itself and catches up.
    first.disk.full = false;
    await waitFor(
      'the recovered node to catch up',
      () => first.host.storageStall() === undefined && first.applied.length >= second.applied.length,
      deadlineMs,
    );
    assert.ok(first.applied.length > stalledApplied);
    await inFlight;
    const last = await leaderOf(nodes)!.host.propose(encoder.encode('after'));
    assert.equal(last.kind, 'applied');
    await waitFor(
      'every node to apply the last entry',
      () => nodes.every((n) => n.applied.at(-1)?.endsWith(':after') === true),
      deadlineMs,
    );

    // One order everywhere; 'refused' was never proposed, so it is nowhere.
    for (const n of nodes) assert.deepEqual(n.applied, nodes[0]!.applied, `${n.id} applied another order`);
    assert.ok(!nodes[0]!.applied.some((e) => e.endsWith(':refused')));
    // Reported once when it failed (then as retries), once when it recovered.
    const kinds = first.faults.map((f) => f.kind);
    assert.equal(kinds[0], 'failed');
    assert.equal(kinds.filter((k) => k === 'recovered').length, 1);
    assert.equal(kinds.at(-1), 'recovered');
    assert.deepEqual(uncaught, [], 'nothing escaped the host');
    assert.ok(others.every((n) => n.faults.length === 0));
  } finally {
    process.off('uncaughtException', onUncaught);
    for (const n of nodes) await n.host.stop();
  }
});
