// The consumer-offsets store on a full disk: a commit whose write fails is answered with an error (never a
// success it cannot keep, never a hang), and once space is back the writer's retry makes the state durable
// without anyone asking again. Uses a real 1 MiB tmpfs; skipped (with the reason) where mounting is not allowed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { GroupsService, persistFailureAnswer } from '../../src/broker/groups-service.js';

const mountPoint = mkdtempSync(join(tmpdir(), 'broker-groups-full-'));
let mounted = false;
try {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mountPoint], { stdio: 'pipe' });
  mounted = true;
} catch {
  mounted = false;
}

after(() => {
  if (mounted) {
    try {
      execFileSync('umount', [mountPoint], { stdio: 'pipe' });
    } catch {
      execFileSync('umount', ['-l', mountPoint], { stdio: 'pipe' });
    }
  }
  rmSync(mountPoint, { recursive: true, force: true });
});

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('a commit on a full disk fails with storage_full, and the state is written once space is back', {
  skip: mounted ? false : 'mounting a tmpfs is not permitted here',
}, async () => {
  const service = await GroupsService.open({
    dataDir: mountPoint,
    sessionTimeoutMs: 10_000,
    tickIntervalMs: 60_000,
    logEndOffset: () => 100,
    topicExists: () => true,
  });
  try {
    service.setTopicPartitions('t', 2);
    await service.persistNow();
    const filler = join(mountPoint, 'filler');
    // Fill every byte the tmpfs has left.
    try {
      writeFileSync(filler, Buffer.alloc(2 * 1024 * 1024));
    } catch (error) {
      assert.equal((error as NodeJS.ErrnoException).code, 'ENOSPC');
    }

    // What the HTTP commit handler does: the registry takes the commit, then the service makes it durable.
    const committed = service.registry.commit('g', undefined, undefined, 't', 1, 42, Date.now());
    assert.equal(committed.kind, 'ok');
    const failure = await service.persistNow().then(
      () => null,
      (error: unknown) => error,
    );
    assert.ok(failure !== null, 'a write on a full disk must not be reported durable');
    const [name, message] = persistFailureAnswer(failure);
    assert.equal(name, 'storage_full', message);
    assert.match(service.persistFailure ?? '', /groups\.json/);

    unlinkSync(filler);
    await until(() => service.persistFailure === null, 5_000, 'the retry to write groups.json');
    const onDisk = JSON.parse(readFileSync(join(mountPoint, 'groups.json'), 'utf8'));
    const group = onDisk.groups.find((g: { groupId: string }) => g.groupId === 'g');
    assert.ok(group !== undefined, 'the commit reached the disk after space came back');
  } finally {
    await service.close();
  }
});
