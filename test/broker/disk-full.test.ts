// A real broker on a real full disk (issue 10, item 5): an 8 MiB tmpfs as the data dir, filled with a filler
// file. A produce is refused with 507 / 50701 naming the disk and the partition, definitely (nothing written),
// and so is every later one, at once; /health says 'degraded' with the partition and why, a gauge counts it,
// reads go on. Once the filler is deleted the partition takes writes again by itself, without a restart, and
// the log holds exactly the acknowledged records. Needs root's `mount -t tmpfs`; skipped with a message
// otherwise.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { call } from './harness.js';
import { type BrokerProcess, killBroker, spawnBroker } from './process.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'broker-disk-full-'));
const dataDir = path.join(root, 'data');
fs.mkdirSync(dataDir);
const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', dataDir]).status === 0;
const skip = mounted
  ? false
  : 'mount -t tmpfs is not permitted here (needs root): the real full-disk test is skipped';
let broker: BrokerProcess | null = null;

before(async () => {
  if (!mounted) return;
  broker = await spawnBroker(['--data-dir', dataDir, '--threads', '1']);
});

after(async () => {
  try {
    if (broker !== null) await killBroker(broker);
  } finally {
    if (mounted) {
      for (let attempt = 0; attempt < 5; attempt++) {
        if (spawnSync('umount', [dataDir]).status === 0) break;
        if (attempt === 4) spawnSync('umount', ['-l', dataDir]);
      }
    }
    fs.rmSync(root, { recursive: true, force: true });
  }
});

/** Writes a filler file until the file system refuses (ENOSPC); returns its path. */
function fill(): string {
  const filler = path.join(dataDir, 'filler');
  const fd = fs.openSync(filler, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) fs.writeSync(fd, chunk);
  } catch (error) {
    assert.equal((error as NodeJS.ErrnoException).code, 'ENOSPC');
  } finally {
    fs.closeSync(fd);
  }
  return filler;
}

test('a full disk refuses writes definitely, reports degraded health, serves reads, and recovers by itself', {
  skip,
}, async () => {
  const base = broker!.base;
  assert.equal((await call(base, 'POST', '/topics/t', { num_partitions: 1 })).status, 201);
  const acked = new Map<number, string>();
  const refused = new Set<string>();
  for (let i = 0; i < 5; i++) {
    const answer = await call(base, 'POST', '/topics/t/produce', { value: `before-${i}` });
    assert.equal(answer.status, 201);
    acked.set(answer.body.offset, `before-${i}`);
  }
  const filler = fill();
  const big = 'z'.repeat(20_000);
  for (let i = 0; i < 3; i++) {
    const answer = await call(base, 'POST', '/topics/t/produce', { value: `full-${i}-${big}` });
    assert.equal(answer.status, 507, JSON.stringify(answer.body));
    assert.equal(answer.body.error_code, 50701);
    assert.equal(answer.body.indefinite, undefined, 'a definite refusal');
    assert.match(answer.body.message, /t-0/);
    assert.ok(answer.body.message.includes(dataDir), 'the message names the disk (data dir)');
    assert.equal(answer.headers.get('retry-after'), '1');
    refused.add(`full-${i}-${big}`);
  }
  const health = await call(base, 'GET', '/health');
  assert.equal(health.status, 200, 'a full disk still serves reads: 200, degraded');
  assert.equal(health.body.status, 'degraded');
  assert.deepEqual(
    health.body.partitions_offline.map((p: any) => [p.topic, p.partition, p.reason, p.code]),
    [['t', 0, 'storage_full', 'ENOSPC']],
  );
  const metrics = (await call(base, 'GET', '/metrics')).body as string;
  assert.match(metrics, /^broker_partitions_storage_offline\{worker="0"\} 1$/m);
  const read = await call(base, 'GET', '/topics/t/partitions/0/consume?offset=0');
  assert.equal(read.status, 200);
  assert.equal(read.body.count, 5);

  fs.rmSync(filler);
  // The worker retries every second; allow several.
  const deadline = Date.now() + 10_000;
  for (let i = 0; ; i++) {
    const answer = await call(base, 'POST', '/topics/t/produce', { value: `after-${i}` });
    if (answer.status === 201) {
      acked.set(answer.body.offset, `after-${i}`);
      break;
    }
    assert.equal(answer.status, 507);
    refused.add(`after-${i}`);
    assert.ok(Date.now() < deadline, 'the partition takes writes again once space is back');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal((await call(base, 'GET', '/health')).body.status, 'ok');
  const all = await call(base, 'GET', '/topics/t/partitions/0/consume?offset=0&limit=1000');
  const offsets = all.body.messages.map((m: any) => m.offset);
  assert.deepEqual(
    offsets,
    offsets.map((_: number, i: number) => i),
    'offsets are dense',
  );
  for (const m of all.body.messages) {
    assert.ok(!refused.has(m.value), `refused ${m.value.slice(0, 10)} was written`);
    assert.equal(acked.get(m.offset), m.value);
  }
  assert.equal(all.body.count, acked.size);
  assert.match(broker!.output(), /storage offline/);
  assert.match(broker!.output(), /storage back online/);
});
