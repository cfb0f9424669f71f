// The Kafka listener (with two clients) against the HTTP API and the WebSocket endpoints on one broker process
// (compiled, `--threads 1`), same run, same records: `--records` (default 100,000) records of `--value-bytes`
// (default 100) in batches of `--batch` (default 500), `--concurrency` (default 4) batches in flight, acks=all.
//   produce: kafkajs 2.2.4 `producer.send` (one record batch per request, acks -1);
//            @platformatic/kafka 1.35.0 `Producer.send` (one record batch per request, acks ALL, maxInflights
//            = concurrency); `POST /topics/{t}/records`; `ws://.../ws/produce/{t}`, one frame per record, at
//            most batch × concurrency frames unanswered (refilled a batch at a time), until every answer came;
//   consume: a kafkajs consumer group reading the topic from the start (eachBatch); a @platformatic/kafka
//            consumer group (`consume`, mode earliest); a loop of
//            `GET /topics/{t}/partitions/0/consume?limit=1000` from offset 0; a `ws://.../ws/consume/{t}`
//            stream from offset 0. records/s until all records arrived (the groups' join included).
// Each path on its own topic, so that the reads are of what the same path wrote. `vs_http` is records/s over
// the HTTP row of the same direction. A path that stops making progress for 60 s fails the run with what it
// got. Writes bench/results/kafka-<iso>.json and .md and prints the table. Run `npm run build` first.
// Usage: node --import tsx bench/kafka.ts [--records 100000] [--value-bytes 100] [--batch 500] [--concurrency 4]
// Not a test: the numbers depend on the machine and its load; the clients share the machine with the broker.
// Runs on the main thread of its own process.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Consumer, ProduceAcks, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import kafkajs from 'kafkajs';
import WebSocket from 'ws';
import { describeMachine, intFlag, loadavgNow, round } from './lib/cluster.js';
import { root, startBroker, stopServer } from './lib/servers.js';
import { report } from './lib/table.js';

const { Kafka, logLevel } = kafkajs;
const records = intFlag('records', 100_000);
const valueBytes = intFlag('value-bytes', 100);
const batch = intFlag('batch', 500);
const concurrency = intFlag('concurrency', 4);
const value = 'x'.repeat(valueBytes);
const total = Math.ceil(records / batch) * batch;
/** A path with no progress for this long fails the run instead of hanging it. */
const stallMs = 60_000;

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

/**
 * Waits for `done` while `progress()` keeps growing; rejects naming `label` and the count reached once it has
 * not moved for `stallMs`.
 */
async function watched<T>(label: string, done: Promise<T>, progress: () => number): Promise<T> {
  let last = -1;
  let lastMovedAt = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setInterval(() => {
      const now = progress();
      if (now !== last) {
        last = now;
        lastMovedAt = Date.now();
      } else if (Date.now() - lastMovedAt > stallMs) {
        reject(new Error(`${label}: stalled at ${now} of ${total} records for ${stallMs} ms`));
      }
    }, 1000);
  });
  try {
    return await Promise.race([done, stalled]);
  } finally {
    clearInterval(timer);
  }
}

/**
 * Opens a socket with its message handler attached first: frames can arrive in the same read as the
 * handshake answer, before a handler added after `open` would see them.
 */
function open(url: string, onMessage: (data: WebSocket.RawData) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('message', onMessage);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/**
 * One produce socket, one frame per record, at most `batch × concurrency` frames unanswered: a batch is sent
 * whenever a batch's worth of room is free. records/s from the first frame to the last answer.
 */
async function wsProduce(url: string, messages: readonly { key: string; value: string }[]): Promise<number> {
  const frames = messages.map((m) => JSON.stringify({ key: m.key, value: m.value, partition: 0 }));
  const windowRecords = batch * concurrency;
  let sent = 0;
  let answered = 0;
  let finish: () => void = () => undefined;
  let fail: (error: Error) => void = () => undefined;
  const finished = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const refill = (ws: WebSocket) => {
    while (sent < total && sent - answered + batch <= windowRecords) {
      for (let i = 0; i < batch && sent < total; i++) ws.send(frames[sent++ % frames.length]!);
    }
  };
  let socket: WebSocket | undefined;
  socket = await open(url, (data) => {
    const answer = JSON.parse(data.toString()) as { result: string };
    if (answer.result !== 'ok') {
      fail(new Error(`ws produce: answer ${answered}: ${data.toString()}`));
      return;
    }
    if (++answered === total) finish();
    else if (socket !== undefined) refill(socket);
  });
  socket.once('close', (code, reason) => {
    if (answered < total) fail(new Error(`ws produce: closed ${code} ${reason} after ${answered} answers`));
  });
  const started = performance.now();
  refill(socket);
  try {
    await watched('ws produce', finished, () => answered);
  } finally {
    socket.close();
  }
  return total / ((performance.now() - started) / 1000);
}

/** One consume socket from offset 0; records/s from the upgrade request to the last record. */
async function wsConsume(url: string): Promise<number> {
  let received = 0;
  let finish: () => void = () => undefined;
  let fail: (error: Error) => void = () => undefined;
  const finished = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const started = performance.now();
  const socket = await open(url, () => {
    if (++received === total) finish();
  });
  socket.once('close', (code, reason) => {
    if (received < total) fail(new Error(`ws consume: closed ${code} ${reason} after ${received} records`));
  });
  try {
    await watched('ws consume', finished, () => received);
  } finally {
    socket.close();
  }
  return total / ((performance.now() - started) / 1000);
}

// startBroker makes the data dir under .tmp/, which a fresh checkout lacks.
mkdirSync(join(root, '.tmp'), { recursive: true });
const server = await startBroker(['--kafka-port', '0', '--threads', '1'], 'bench-kafka-');
try {
  const kafkaPort = Number(/"kafkaPort":(\d+)[^\n]*"msg":"broker serving"/.exec(server.output())?.[1]);
  const bootstrapBrokers = [`127.0.0.1:${kafkaPort}`];
  const ws = server.base.replace('http', 'ws');
  const kafka = new Kafka({ clientId: 'bench', brokers: bootstrapBrokers, logLevel: logLevel.NOTHING });
  for (const topic of ['via-kafka', 'via-platformatic', 'via-http', 'via-ws']) {
    await post(server.base, `/topics/${topic}`, { num_partitions: 1, replication_factor: 1 });
  }
  const messages = Array.from({ length: batch }, (_, i) => ({ key: `k${i}`, value }));

  console.log('produce: kafkajs...');
  const producer = kafka.producer({ allowAutoTopicCreation: false, maxInFlightRequests: concurrency });
  await producer.connect();
  const kafkaProduce = await timed(async () => {
    await producer.send({ topic: 'via-kafka', acks: -1, messages });
  });
  await producer.disconnect();

  console.log('produce: @platformatic/kafka...');
  const pkProducer = new Producer({
    clientId: 'bench-pk',
    bootstrapBrokers,
    serializers: stringSerializers,
    acks: ProduceAcks.ALL,
    maxInflights: concurrency,
  });
  const pkMessages = messages.map((m) => ({
    topic: 'via-platformatic',
    key: m.key,
    value: m.value,
    partition: 0,
  }));
  let pkProduce: number;
  try {
    pkProduce = await timed(async () => {
      await pkProducer.send({ messages: pkMessages });
    });
  } finally {
    await pkProducer.close();
  }

  console.log('produce: HTTP...');
  const body = { records: messages.map((m) => ({ key: m.key, value: m.value, partition: 0 })) };
  const httpProduce = await timed(async () => {
    await post(server.base, '/topics/via-http/records', body);
  });

  console.log('produce: WebSocket...');
  const wsProduced = await wsProduce(`${ws}/ws/produce/via-ws`, messages);

  console.log('consume: kafkajs...');
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
  await watched('kafkajs consume', done, () => consumed);
  const kafkaConsume = total / ((performance.now() - kafkaStarted) / 1000);
  await consumer.disconnect();

  console.log('consume: @platformatic/kafka...');
  const pkConsumer = new Consumer({
    groupId: 'bench-pk',
    clientId: 'bench-pk-consumer',
    bootstrapBrokers,
    deserializers: stringDeserializers,
    maxWaitTime: 100,
    maxBytesPerPartition: 4 << 20,
  });
  let pkConsumed = 0;
  let pkConsume: number;
  try {
    const pkStarted = performance.now();
    const stream = await pkConsumer.consume({
      autocommit: true,
      topics: ['via-platformatic'],
      mode: 'earliest',
      sessionTimeout: 6000,
      heartbeatInterval: 500,
    } as Parameters<typeof pkConsumer.consume>[0]);
    const pkDone = new Promise<void>((resolve, reject) => {
      stream.on('data', () => {
        if (++pkConsumed === total) resolve();
      });
      stream.on('error', reject);
    });
    await watched('@platformatic/kafka consume', pkDone, () => pkConsumed);
    pkConsume = total / ((performance.now() - pkStarted) / 1000);
    await stream.close();
  } finally {
    await new Promise<void>((resolve) => pkConsumer.close(true, () => resolve()));
  }

  console.log('consume: HTTP...');
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

  console.log('consume: WebSocket...');
  const wsConsumed = await wsConsume(`${ws}/ws/consume/via-ws?partition=0&offset=0`);

  const row = (path: string, perS: number, httpPerS: number) => ({
    path,
    records_per_s: round(perS, 0),
    vs_http: round(perS / httpPerS, 2),
  });
  const rows = [
    row('produce, Kafka (kafkajs, acks=-1)', kafkaProduce, httpProduce),
    row('produce, Kafka (@platformatic/kafka, acks=all)', pkProduce, httpProduce),
    row('produce, HTTP POST /records (acks=all)', httpProduce, httpProduce),
    row('produce, WebSocket /ws/produce (pipelined)', wsProduced, httpProduce),
    row('consume, Kafka (kafkajs group, eachBatch)', kafkaConsume, httpConsume),
    row('consume, Kafka (@platformatic/kafka group)', pkConsume, httpConsume),
    row('consume, HTTP GET consume (limit 1000)', httpConsume, httpConsume),
    row('consume, WebSocket /ws/consume (offset 0)', wsConsumed, httpConsume),
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
