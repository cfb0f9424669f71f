// The client verbs of the `broker` binary, run as an operator runs them (bin/broker.mjs in a child process)
// against a real broker on 127.0.0.1 port 0: what each verb prints, that its action has its effect on the
// broker, and that a refusal exits 1 with the broker's own message (bad usage exits 2).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { call, startTestBroker, type TestBroker } from '../broker/harness.js';

const bin = fileURLToPath(new URL('../../bin/broker.mjs', import.meta.url));

let broker: TestBroker;
const children = new Set<ChildProcess>();

before(async () => {
  broker = await startTestBroker({ sessionTimeoutMs: 60_000 });
});
after(async () => {
  for (const child of children) if (child.exitCode === null) process.kill(child.pid!, 'SIGKILL');
  await broker.stop();
});

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs one verb to its end (never spawnSync: the broker answers from this very event loop). */
function cli(
  args: readonly string[],
  options: { input?: string; env?: Record<string, string> } = {},
): Promise<Run> {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { PATH: process.env.PATH ?? '', BROKER_URL: broker.base, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  child.stdin!.end(options.input ?? '');
  return new Promise((resolve) => {
    child.once('close', (status) => {
      children.delete(child);
      resolve({ status, stdout, stderr });
    });
  });
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.length > 0);
}

describe('topics verbs', { concurrency: true }, () => {
  test('create, list, describe (leader, replicas, ISR, offsets, size), alter and delete act on the broker', async () => {
    const created = await cli([
      'topics',
      'create',
      'clicks',
      '--partitions',
      '3',
      '--config',
      'retention.ms=60000',
    ]);
    assert.equal(created.status, 0, created.stderr);
    assert.match(created.stdout, /Created topic clicks with 3 partition\(s\)/);
    const onBroker = await call(broker.base, 'GET', '/topics/clicks');
    assert.equal(onBroker.body.num_partitions, 3);
    assert.equal(onBroker.body.config.retention_ms, 60000);

    const list = await cli(['topics', 'list']);
    assert.ok(lines(list.stdout).includes('clicks'));
    const listJson = await cli(['topics', 'list', '--json']);
    assert.ok(JSON.parse(listJson.stdout).topics.includes('clicks'));

    await call(broker.base, 'POST', '/topics/clicks/produce', { value: 'v', partition: 1 });
    const described = await cli(['topics', 'describe', 'clicks']);
    assert.equal(described.status, 0, described.stderr);
    assert.match(described.stdout, /PARTITION\s+LEADER\s+EPOCH\s+REPLICAS\s+ISR\s+LOW\s+HIGH\s+SIZE/);
    const row1 = lines(described.stdout).find((l) => l.startsWith('1 '))!;
    assert.match(row1, /^1\s+broker-1\s+0\s+broker-1\s+broker-1\s+0\s+1\s+\d+$/);
    const describedJson = JSON.parse((await cli(['topics', 'describe', 'clicks', '--json'])).stdout);
    assert.equal(describedJson.partitions[1].high_watermark, 1);
    assert.ok(describedJson.partitions[1].size_bytes > 0);

    const altered = await cli([
      'topics',
      'alter',
      'clicks',
      '--config',
      'retention_ms=5000',
      '--config',
      'retention_bytes=1048576',
    ]);
    assert.equal(altered.status, 0, altered.stderr);
    assert.match(altered.stdout, /retention_ms=5000/);
    const config = (await call(broker.base, 'GET', '/topics/clicks')).body.config;
    assert.equal(config.retention_ms, 5000);
    assert.equal(config.retention_bytes, 1048576);

    const deleted = await cli(['topics', 'delete', 'clicks']);
    assert.equal(deleted.status, 0);
    assert.equal((await call(broker.base, 'GET', '/topics/clicks')).status, 404);
  });

  test("a refusal exits 1 with the broker's message; bad usage exits 2", async () => {
    const missing = await cli(['topics', 'describe', 'absent']);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /broker: topic 'absent' does not exist.*\(error 40401\)/);
    await call(broker.base, 'POST', '/topics/fixed', {});
    const badAlter = await cli(['topics', 'alter', 'fixed', '--config', 'segment_bytes=1000']);
    assert.equal(badAlter.status, 1);
    assert.match(badAlter.stderr, /segment_bytes must be an integer between 1048576 and 1073741824/);
    const exists = await cli(['topics', 'create', 'fixed', '--partitions', '2']);
    assert.equal(exists.status, 1);
    assert.match(exists.stderr, /already exists with other settings/);
    const usage = await cli(['topics', 'create', 'x', '--partitions', 'many']);
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /--partitions: 'many' is not a whole number/);
    const unreachable = await cli(['topics', 'list', '--bootstrap-server', 'http://127.0.0.1:9']);
    assert.equal(unreachable.status, 1);
    assert.match(unreachable.stderr, /cannot reach the broker at http:\/\/127\.0\.0\.1:9/);
    const badUrl = await cli(['topics', 'list'], { env: { BROKER_URL: 'ftp://x' } });
    assert.equal(badUrl.status, 2);
  });
});

describe('produce and consume verbs', { concurrency: true }, () => {
  before(async () => {
    await call(broker.base, 'POST', '/topics/lines', { num_partitions: 2 });
  });

  test('produce sends stdin lines with keys, headers and a partition; consume reads them back in json and text', async () => {
    const produced = await cli(
      [
        'produce',
        'lines',
        '--partition',
        '1',
        '--header',
        'src=cli',
        '--header',
        'v=2',
        '--key-delimiter',
        ':',
      ],
      {
        input: 'k1:first\nsecond\nk3:third\n',
      },
    );
    assert.equal(produced.status, 0, produced.stderr);
    assert.match(produced.stderr, /3 record\(s\) produced to lines/);
    const json = await cli(['consume', 'lines', '--partition', '1', '--format', 'json']);
    assert.equal(json.status, 0, json.stderr);
    const records = lines(json.stdout).map((l) => JSON.parse(l));
    assert.deepEqual(
      records.map((r) => [r.partition, r.offset, r.key, r.value, r.headers]),
      [
        [1, 0, 'k1', 'first', { src: 'cli', v: '2' }],
        [1, 1, null, 'second', { src: 'cli', v: '2' }],
        [1, 2, 'k3', 'third', { src: 'cli', v: '2' }],
      ],
    );
    assert.ok(records.every((r) => typeof r.timestamp === 'number'));
    const text = await cli(['consume', 'lines', '--from', '1', '--partition', '1']);
    assert.deepEqual(lines(text.stdout), ['second', 'third']);
    const counted = await cli(['consume', 'lines', '--count', '1']);
    assert.deepEqual(lines(counted.stdout), ['first']);
    const refused = await cli(['produce', 'lines', '--partition', '7'], { input: 'x\n' });
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /there is no partition 7/);
  });

  test('consume --from a time starts at the first record at or after it', async () => {
    await call(broker.base, 'POST', '/topics/stamped', {});
    for (const timestamp of [1_000, 2_000, 3_000]) {
      await call(broker.base, 'POST', '/topics/stamped/produce', { value: `t${timestamp}`, timestamp });
    }
    assert.deepEqual(lines((await cli(['consume', 'stamped', '--from', '@1500'])).stdout), [
      't2000',
      't3000',
    ]);
    const iso = new Date(2_500).toISOString();
    assert.deepEqual(lines((await cli(['consume', 'stamped', '--from', iso])).stdout), ['t3000']);
    const bad = await cli(['consume', 'stamped', '--from', 'tomorrow']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--from: 'tomorrow' is not/);
  });

  test('consume --follow prints records appended after it started, over the WebSocket', async () => {
    await call(broker.base, 'POST', '/topics/live', {});
    const running = cli(['consume', 'live', '--follow', '--from', 'latest', '--count', '2']);
    // When the follower's socket opens is not visible from here, so records keep coming (paced, not timed)
    // until it has printed two and exited; it must print two consecutive ones, in order.
    let produced = 0;
    const done = await Promise.race([
      running,
      (async () => {
        // Appends until the follower, which starts at the end, has seen two records and exits.
        for (;;) {
          await call(broker.base, 'POST', '/topics/live/produce', { value: `live-${produced++}` });
          await new Promise((r) => setTimeout(r, 50));
          if (produced > 200) throw new Error('the follower never finished');
        }
      })(),
    ]);
    assert.equal(done.status, 0, done.stderr);
    const seen = lines(done.stdout);
    assert.equal(seen.length, 2);
    const first = Number(seen[0]!.slice('live-'.length));
    assert.deepEqual(seen, [`live-${first}`, `live-${first + 1}`], 'consecutive records, in order');
  });
});

describe('groups and cluster verbs', { concurrency: true }, () => {
  before(async () => {
    await call(broker.base, 'POST', '/topics/jobs', { num_partitions: 2 });
    await call(broker.base, 'POST', '/topics/jobs/records', {
      records: Array.from({ length: 6 }, (_, i) => ({ value: `j${i}`, partition: i % 2 })),
    });
  });

  test('consume --group reads from the committed offsets and commits what it printed', async () => {
    const first = await cli(['consume', 'jobs', '--group', 'workers', '--format', 'json']);
    assert.equal(first.status, 0, first.stderr);
    assert.equal(lines(first.stdout).length, 6);
    const committed = await call(broker.base, 'GET', '/consumer-groups/workers/offsets/jobs');
    assert.deepEqual(
      committed.body.offsets.map((o: any) => [o.partition, o.offset]),
      [
        [0, 3],
        [1, 3],
      ],
    );
    const again = await cli(['consume', 'jobs', '--group', 'workers']);
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(lines(again.stdout), [], 'nothing new past the committed offsets');
  });

  test('groups list, describe, reset-offsets (dry run, then --execute) and delete', async () => {
    await call(broker.base, 'POST', '/consumer-groups/audit/offsets/jobs/0', { offset: 3 });
    const list = await cli(['groups', 'list']);
    assert.match(list.stdout, /GROUP\s+STATE\s+MEMBERS/);
    assert.match(list.stdout, /audit\s+empty\s+0/);
    const described = await cli(['groups', 'describe', 'audit']);
    assert.match(described.stdout, /jobs\s+0\s+3\s+3\s+0\s+-/);

    const dry = await cli(['groups', 'reset-offsets', 'audit', '--topic', 'jobs', '--to-earliest']);
    assert.equal(dry.status, 0, dry.stderr);
    assert.match(dry.stdout, /audit\s+jobs\s+0\s+3\s+0/);
    assert.match(dry.stderr, /Dry run/);
    assert.equal((await call(broker.base, 'GET', '/consumer-groups/audit/offsets/jobs/0')).body.offset, 3);

    const executed = await cli([
      'groups',
      'reset-offsets',
      'audit',
      '--topic',
      'jobs',
      '--partitions',
      '0',
      '--shift-by',
      '-2',
      '--execute',
    ]);
    assert.equal(executed.status, 0, executed.stderr);
    assert.equal((await call(broker.base, 'GET', '/consumer-groups/audit/offsets/jobs/0')).body.offset, 1);
    const describedJson = JSON.parse((await cli(['groups', 'describe', 'audit', '--json'])).stdout);
    assert.equal(describedJson.offsets[0].lag, 2);

    const none = await cli(['groups', 'reset-offsets', 'audit', '--topic', 'jobs']);
    assert.equal(none.status, 2);
    const deleted = await cli(['groups', 'delete', 'audit']);
    assert.equal(deleted.status, 0);
    assert.equal((await call(broker.base, 'GET', '/consumer-groups/audit')).status, 404);
    const gone = await cli(['groups', 'delete', 'audit']);
    assert.equal(gone.status, 1);
    assert.match(gone.stderr, /does not exist/);
  });

  test('cluster status shows this node as the Raft leader and an alive voter', async () => {
    const status = await cli(['cluster', 'status']);
    assert.equal(status.status, 0, status.stderr);
    assert.match(status.stdout, /Raft: leader, leader broker-1/);
    assert.match(status.stdout, /broker-1\s+alive\s+voter\s+yes/);
    const json = JSON.parse((await cli(['cluster', 'status', '--json'])).stdout);
    assert.equal(json.raft.leader_id, 'broker-1');
  });
});
