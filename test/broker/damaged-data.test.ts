// Damaged data at rest, end to end (issue 10, items 2 and 3): a broker restarted over a sealed segment with a
// flipped record value or a wrecked batch header keeps running, refuses the damaged range over HTTP and
// WebSocket with 50002 naming the range and the offset to resume from, counts it in /metrics, and keeps
// serving every other range and partition.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { BatchField } from '../../src/core/log/record-batch.js';
import { call, startTestBroker, type TestBroker, tempDataDir } from './harness.js';

const valueBytes = 1024;
const records = 300;
let broker: TestBroker;
let dataDir = '';

interface Batch {
  readonly file: string;
  readonly position: number;
  readonly base: number;
}

/** The batches of partition 0's sealed segments (all but the last file), from the bytes on disk. */
function sealedBatches(): Batch[] {
  const dir = path.join(dataDir, 't-0');
  const logs = fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.log'))
    .sort();
  const out: Batch[] = [];
  for (const name of logs.slice(0, -1)) {
    const bytes = fs.readFileSync(path.join(dir, name));
    for (let pos = 0; pos < bytes.length; pos += 12 + bytes.readInt32BE(pos + BatchField.batchLength)) {
      out.push({ file: path.join(dir, name), position: pos, base: Number(bytes.readBigInt64BE(pos)) });
    }
  }
  return out;
}

function overwrite(file: string, position: number, bytes: number[]): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, Buffer.from(bytes), 0, bytes.length, position);
  } finally {
    fs.closeSync(fd);
  }
}

/** The first four characters of the value at each offset. */
const prefixes = new Map<number, string>();
let valueDamage: Batch;
let headerDamage: Batch;

before(async () => {
  dataDir = tempDataDir('broker-damage-');
  broker = await startTestBroker({ segmentBytes: 64 * 1024 }, dataDir);
  assert.equal((await call(broker.base, 'POST', '/topics/t', { num_partitions: 2 })).status, 201);
  const value = 'v'.repeat(valueBytes - 4);
  // Twenty requests at a time: each is its own batch, and its answer says which offset holds which value.
  for (let i = 0; i < records; i += 20) {
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, k) =>
        call(broker.base, 'POST', '/topics/t/produce', {
          value: `${String(i + k).padStart(4, '0')}${value}`,
          partition: 0,
        }),
      ),
    );
    answers.forEach((answer, k) => {
      assert.equal(answer.status, 201);
      prefixes.set(answer.body.offset, String(i + k).padStart(4, '0'));
    });
  }
  assert.equal(
    (await call(broker.base, 'POST', '/topics/t/produce', { value: 'p1', partition: 1 })).status,
    201,
  );
  await broker.handle.close();
  const batches = sealedBatches();
  assert.ok(batches.length > 100, 'several sealed segments of single-record batches');
  valueDamage = batches[Math.floor(batches.length / 2)]!;
  headerDamage = batches[Math.floor(batches.length / 4)]!;
  // Four bytes of a record value, and a batch length of 0x7FFFFF00.
  overwrite(valueDamage.file, valueDamage.position + 61 + 300, [0xde, 0xad, 0xbe, 0xef]);
  overwrite(headerDamage.file, headerDamage.position + BatchField.batchLength, [0x7f, 0xff, 0xff, 0x00]);
  broker = await startTestBroker({ segmentBytes: 64 * 1024 }, dataDir);
});

after(async () => {
  await broker.stop();
});

describe('damaged records on disk', () => {
  test('consuming a damaged offset answers 50002 naming the range and the resume offset, and the broker lives', async () => {
    for (const damaged of [valueDamage, headerDamage]) {
      const answer = await call(broker.base, 'GET', `/topics/t/partitions/0/consume?offset=${damaged.base}`);
      assert.equal(answer.status, 500, JSON.stringify(answer.body));
      assert.equal(answer.body.error_code, 50002);
      assert.match(
        answer.body.message,
        new RegExp(`offsets ${damaged.base}\\.\\.${damaged.base} of topic 't' partition 0`),
      );
      assert.match(answer.body.message, new RegExp(`consume from offset ${damaged.base + 1}`));
    }
    assert.equal((await call(broker.base, 'GET', '/health')).status, 200);
  });

  test('every other offset of the partition reads back exactly, and a read stops short of the damage', async () => {
    const damaged = new Set([valueDamage.base, headerDamage.base]);
    let offset = 0;
    const seen: number[] = [];
    while (offset < records) {
      if (damaged.has(offset)) {
        offset++;
        continue;
      }
      const answer = await call(
        broker.base,
        'GET',
        `/topics/t/partitions/0/consume?offset=${offset}&limit=1000`,
      );
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      for (const m of answer.body.messages) {
        assert.ok(!damaged.has(m.offset), `damaged offset ${m.offset} was served`);
        assert.equal(m.value.slice(0, 4), prefixes.get(m.offset), `value of ${m.offset}`);
        assert.equal(m.value.length, valueBytes);
        seen.push(m.offset);
      }
      offset = answer.body.next_offset;
    }
    assert.deepEqual(
      seen,
      Array.from({ length: records }, (_, i) => i).filter((i) => !damaged.has(i)),
    );
    const other = await call(broker.base, 'GET', '/topics/t/partitions/1/consume?offset=0');
    assert.equal(other.body.messages[0].value, 'p1', 'the other partition is served');
  });

  test('damaged reads are counted in broker_log_corrupt_batches_total', async () => {
    const text = (await call(broker.base, 'GET', '/metrics')).body as string;
    const total = [...text.matchAll(/^broker_log_corrupt_batches_total\{worker="\d+"\} (\d+)/gm)].reduce(
      (sum, m) => sum + Number(m[1]),
      0,
    );
    assert.ok(total >= 2, `counted ${total}`);
  });

  test('a WebSocket consumer gets the records before the damage, then an error frame and close 4500', async () => {
    const start = valueDamage.base - 3;
    const ws = new WebSocket(`${broker.base.replace('http', 'ws')}/ws/consume/t?partition=0&offset=${start}`);
    const frames: any[] = [];
    ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
    const closed = await new Promise<{ code: number; reason: string }>((resolve) =>
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    assert.equal(closed.code, 4500);
    assert.deepEqual(
      frames.slice(0, 3).map((f) => f.offset),
      [start, start + 1, start + 2],
    );
    const error = frames.at(-1);
    assert.equal(error.result, 'error');
    assert.equal(error.error_code, 50002);
    assert.match(error.message, new RegExp(`consume from offset ${valueDamage.base + 1}`));
  });

  test('a group stream reports the damaged partition, keeps streaming the other, and a commit steps over the damage', async () => {
    const ws = new WebSocket(
      `${broker.base.replace('http', 'ws')}/ws/group/g?topics=t&offset_reset=earliest&consumer_id=c1`,
    );
    const frames: any[] = [];
    ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
    const waitFor = async (predicate: (f: any) => boolean, what: string) => {
      const deadline = Date.now() + 10_000;
      while (!frames.some(predicate)) {
        assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      return frames.find(predicate);
    };
    try {
      await waitFor((f) => f.type === 'record' && f.partition === 1, 'the other partition');
      const error = await waitFor((f) => f.type === 'error', 'the error frame');
      assert.equal(error.partition, 0);
      assert.equal(error.error_code, 50002);
      assert.equal(error.offset, headerDamage.base);
      assert.ok(
        frames
          .filter((f) => f.type === 'record' && f.partition === 0)
          .every((f) => f.offset < headerDamage.base),
      );
      ws.send(JSON.stringify({ type: 'commit', topic: 't', partition: 0, offset: headerDamage.base + 1 }));
      await waitFor(
        (f) => f.type === 'record' && f.partition === 0 && f.offset === headerDamage.base + 1,
        'resume',
      );
      assert.equal(ws.readyState, WebSocket.OPEN);
    } finally {
      ws.close();
    }
  });
});
