// Memory as the log grows: a broker (compiled, fsync before ack) takes record-batch bodies (256 records of
// 1 KiB, `application/vnd.kafka.record-batch`) on 4 partitions from 4 connections until `--gib` GiB are
// written (default 10), and its RSS (and the anonymous part of it) is sampled at every GiB; then the first
// 256 MiB of one partition are read back through HTTP consume and RSS is sampled again. The log's bytes live
// in the page cache, not in the process: RSS should stay flat whatever the log's size.
// Usage: node --import tsx bench/log-growth.ts [--gib N]. Writes bench/results/log-growth-<iso>.json/.md.
// The data dir is under .tmp/ and is removed at the end; it needs `--gib` GiB of free disk while it runs.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { encodeRecordBatch } from '../src/core/log/batch-body.js';
import { root, startBroker, stopServer } from './lib/servers.js';
import { report } from './lib/table.js';

const gibIndex = process.argv.indexOf('--gib');
const gib = gibIndex > 0 ? Number(process.argv[gibIndex + 1]) : 10;
if (!(gib > 0)) throw new Error('--gib takes a positive number');
const partitions = 4;
const connections = 4;
const recordsPerBody = 256;
const recordBytes = 1024;

function memoryMb(pid: number): { rssMb: number; anonMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number =>
    Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) / 1024;
  return { rssMb: +field('VmRSS').toFixed(1), anonMb: +field('RssAnon').toFixed(1) };
}

async function main(): Promise<void> {
  mkdirSync(join(root, '.tmp'), { recursive: true });
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  const freeGib = (() => {
    const fs = statfsSync(join(root, '.tmp'));
    return (fs.bavail * fs.bsize) / 2 ** 30;
  })();
  if (freeGib < gib + 2) throw new Error(`needs ${gib + 2} GiB free under .tmp/, has ${freeGib.toFixed(1)}`);
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
  const broker = await startBroker([], 'bench-log-growth-');
  const pid = broker.child.pid!;
  const rows: Record<string, unknown>[] = [];
  try {
    const created = await fetch(`${broker.base}/topics/grow`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ num_partitions: partitions }),
    });
    if (created.status !== 201) throw new Error(`topic: ${created.status} ${await created.text()}`);
    const value = Buffer.alloc(recordBytes, 0x61);
    const body = Buffer.from(
      encodeRecordBatch(Array.from({ length: recordsPerBody }, () => ({ value, timestampMs: Date.now() }))),
    );
    rows.push({ stage: 'empty log', writtenGiB: 0, ...memoryMb(pid), seconds: 0, mbPerS: '' });
    const totalBytes = gib * 2 ** 30;
    let written = 0;
    let nextSampleBytes = 2 ** 30;
    let request = 0;
    const started = performance.now();
    let lastSampleMs = started;
    let lastSampleBytes = 0;
    const producer = async (): Promise<void> => {
      while (written < totalBytes) {
        const partition = request++ % partitions;
        const answer = await fetch(`${broker.base}/topics/grow/records?partition=${partition}`, {
          method: 'POST',
          headers: { 'content-type': 'application/vnd.kafka.record-batch' },
          body,
        });
        if (answer.status !== 200) throw new Error(`produce: ${answer.status} ${await answer.text()}`);
        await answer.arrayBuffer();
        written += recordsPerBody * recordBytes;
        if (written >= nextSampleBytes) {
          const nowMs = performance.now();
          rows.push({
            stage: 'writing',
            writtenGiB: Math.round(written / 2 ** 30),
            ...memoryMb(pid),
            seconds: +((nowMs - started) / 1000).toFixed(1),
            mbPerS: +((written - lastSampleBytes) / 1e6 / ((nowMs - lastSampleMs) / 1000)).toFixed(0),
          });
          console.log(JSON.stringify(rows.at(-1)));
          lastSampleMs = nowMs;
          lastSampleBytes = written;
          nextSampleBytes += 2 ** 30;
        }
      }
    };
    await Promise.all(Array.from({ length: connections }, producer));
    // Read the first 256 MiB of partition 0 back (at most one ring frame, 512 KiB, per request).
    let offset = 0;
    let readBytes = 0;
    const readStarted = performance.now();
    while (readBytes < 256 * 2 ** 20) {
      const answer = await fetch(
        `${broker.base}/topics/grow/partitions/0/consume?offset=${offset}&limit=1000&max_bytes=524232`,
      );
      if (answer.status !== 200) throw new Error(`consume: ${answer.status} ${await answer.text()}`);
      const consumed = (await answer.json()) as { messages: { offset: number; value: string }[] };
      if (consumed.messages.length === 0) break;
      for (const m of consumed.messages) readBytes += m.value.length;
      offset = consumed.messages.at(-1)!.offset + 1;
    }
    const readSeconds = (performance.now() - readStarted) / 1000;
    rows.push({
      stage: `after reading ${Math.round(readBytes / 2 ** 20)} MiB of partition 0`,
      writtenGiB: Math.round(written / 2 ** 30),
      ...memoryMb(pid),
      seconds: +readSeconds.toFixed(1),
      mbPerS: +(readBytes / 1e6 / readSeconds).toFixed(0),
    });
  } finally {
    await stopServer(broker);
  }
  const iso = new Date().toISOString().replace(/[:.]/g, '-');
  report(join(root, 'bench/results', `log-growth-${iso}`), rows, {
    gib,
    partitions,
    recordsPerBody,
    recordBytes,
  });
}

await main();
