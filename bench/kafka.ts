// The Kafka listener against the HTTP API on one broker process (compiled, `--threads 1`), same run, same
// records: `--records` (default 100,000) records of `--value-bytes` (default 100) in batches of `--batch`
// (default 500), `--concurrency` (default 4) batches in flight, acks=all.
//   produce: kafkajs 2.2.4 `producer.send` (one record batch per request) vs `POST /topics/{t}/records`;
//   consume: a kafkajs consumer group reading the topic from the start (eachBatch) vs a loop of
//            `GET /topics/{t}/partitions/0/consume?limit=1000` from offset 0; records/s until all arrived.
// Each on its own topic, so that the reads are of what the same path wrote. Writes bench/results/kafka-<iso>.json
// and .md and prints the table. Run `npm run build` first.
// Usage: node --import tsx bench/kafka.ts [--records 100000] [--value-bytes 100] [--batch 500] [--concurrency 4]
// Not a test: the numbers depend on the machine and its load. Runs on the main thread of its own process.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import kafkajs from 'kafkajs';
import { describeMachine, intFlag, loadavgNow, round } from './lib/cluster.js';
import { root, startBroker, stopServer } from './lib/servers.js';
import { report } from './lib/table.js';

const { Kafka, logLevel } = kafkajs;
const records = intFlag('records', 100_000);
const valueBytes = intFlag('value-bytes', 100);
const batch = intFlag('batch', 500);
const concurrency = intFlag('concurrency', 4);
const value = 'x'.repeat(valueBytes);

async function post(base: string, path: string, body: unknown): Promise<unknown> {
  const response = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = await response.json();
  if (response.status >= 300) throw new Error(`${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

/** Runs `count` batches with `concurrency` in flight; returns records/s. */
async function timed(send: (index: number) => Promise<void>): Promise<number> {
  const batches = Math.ceil(records / batch);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < batches) await send(next++);
    }),
  );
  return (batches * batch) / ((performance.now() - started) / 1000);
}

const server = await startBroker(['--kafka-port', '0', '--threads', '1'], 'bench-kafka-');
try {
  const kafkaPort = Number(/"kafkaPort":(\d+)[^\n]*"msg":"broker serving"/.exec(server.output())?.[1]);
  const kafka = new Kafka({
    clientId: 'bench',
    brokers: [`127.0.0.1:${kafkaPort}`],
    logLevel: logLevel.NOTHING,
  });
  for (const topic of ['via-kafka', 'via-http']) {
    await post(server.base, `/topics/${topic}`, { num_partitions: 1, replication_factor: 1 });
  }
  const producer = kafka.producer({ allowAutoTopicCreation: false, maxInFlightRequests: concurrency });
  await producer.connect();
  const messages = Array.from({ length: batch }, (_, i) => ({ key: `k${i}`, value }));
  const kafkaProduce = await timed(async () => {
    await producer.send({ topic: 'via-kafka', acks: -1, messages });
  });
  await producer.disconnect();
  const body = { records: messages.map((m) => ({ key: m.key, value: m.value, partition: 0 })) };
  const httpProduce = await timed(async () => {
    await post(server.base, '/topics/via-http/records', body);
  });

  const total = Math.ceil(records / batch) * batch;
  const consumer = kafka.consumer({ groupId: 'bench', maxWaitTimeInMs: 100, maxBytesPerPartition: 4 << 20 });
  await consumer.connect();
  await consumer.subscribe({ topic: 'via-kafka', fromBeginning: true });
  let consumed = 0;
  const kafkaStarted = performance.now();
  const done = new Promise<void>((resolve) => {
    void consumer.run({
      eachBatch: async ({ batch: b }) => {
        consumed += b.messages.length;
        if (consumed >= total) resolve();
      },
    });
  });
  await done;
  const kafkaConsume = total / ((performance.now() - kafkaStarted) / 1000);
  await consumer.disconnect();

  const httpStarted = performance.now();
  let offset = 0;
  while (offset < total) {
    const response = await fetch(
      `${server.base}/topics/via-http/partitions/0/consume?offset=${offset}&limit=1000`,
    );
    const json = (await response.json()) as { next_offset: number };
    offset = json.next_offset;
  }
  const httpConsume = total / ((performance.now() - httpStarted) / 1000);

  const rows = [
    { path: 'produce, Kafka (kafkajs, acks=-1)', records_per_s: round(kafkaProduce, 0) },
    { path: 'produce, HTTP POST /records (acks=all)', records_per_s: round(httpProduce, 0) },
    { path: 'consume, Kafka (kafkajs group, eachBatch)', records_per_s: round(kafkaConsume, 0) },
    { path: 'consume, HTTP GET consume (limit 1000)', records_per_s: round(httpConsume, 0) },
  ];
  const dir = join(root, 'bench/results');
  mkdirSync(dir, { recursive: true });
  report(join(dir, `kafka-${new Date().toISOString().replaceAll(':', '-')}`), rows, {
    records: total,
    valueBytes,
    batch,
    concurrency,
    machine: describeMachine(),
    loadavg: loadavgNow(),
  });
} finally {
  await stopServer(server);
}
