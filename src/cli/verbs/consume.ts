// `broker consume TOPIC`: kcat -C. Without --follow it reads each chosen partition from the start position to
// the high watermark it finds when it starts, over HTTP, then exits (kcat -e). With --follow it streams every
// partition over the WebSocket and prints records as they are appended, until --count records or Ctrl-C.
// With --group it joins the consumer group over the WebSocket, reads the partitions the group assigns it
// from the group's committed offsets, and commits what it printed before it exits.
// --from: earliest, latest, an offset, or a time (ISO 8601, or @ and milliseconds since the epoch).
// Runs on the main thread of the CLI process.
import { randomUUID } from 'node:crypto';
import { defineCommand } from 'citty';
import type WebSocket from 'ws';
import {
  BrokerClient,
  CliError,
  type BrokerClient as Client,
  connectionArgs,
  integerFlag,
  type Json,
  type Output,
  processOutput,
  runVerb,
  verbExitCodes,
} from '../client.js';

type StartPosition =
  | { readonly kind: 'earliest' | 'latest' }
  | { readonly kind: 'offset'; readonly offset: number }
  | { readonly kind: 'time'; readonly timestampMs: number };

/** Parses --from; a time is ISO 8601 (contains '-' or 'T' or ':') or `@` followed by epoch milliseconds. */
export function parseFrom(text: string): StartPosition {
  if (text === 'earliest' || text === 'beginning') return { kind: 'earliest' };
  if (text === 'latest' || text === 'end') return { kind: 'latest' };
  if (/^\d+$/.test(text) && Number.isSafeInteger(Number(text)))
    return { kind: 'offset', offset: Number(text) };
  if (/^@\d+$/.test(text)) return { kind: 'time', timestampMs: Number(text.slice(1)) };
  if (/[-T:]/.test(text)) {
    const ms = Date.parse(text);
    if (Number.isFinite(ms) && ms >= 0) return { kind: 'time', timestampMs: ms };
  }
  throw new CliError(
    `--from: '${text}' is not earliest, latest, an offset, an ISO 8601 time or @epoch-milliseconds`,
    verbExitCodes.usage,
  );
}

interface ConsumedRecord {
  readonly topic?: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: string | null;
  readonly value: string | null;
  readonly headers?: Record<string, string>;
  readonly timestamp: number;
}

function formatRecord(topic: string, r: ConsumedRecord, json: boolean): string {
  if (!json) return r.value ?? '';
  return JSON.stringify({
    topic,
    partition: r.partition,
    offset: r.offset,
    timestamp: r.timestamp,
    key: r.key,
    headers: r.headers ?? {},
    value: r.value,
  });
}

/** The offset `position` maps to in one partition (HTTP), for a reader that needs a number. */
async function startOffset(client: Client, topic: string, partition: number, position: StartPosition) {
  const base = `/topics/${encodeURIComponent(topic)}/partitions/${partition}`;
  if (position.kind === 'offset') return position.offset;
  if (position.kind === 'time') {
    const found = await client.request('GET', `${base}/offsets?timestamp=${position.timestampMs}`);
    return (found.offset ?? found.high_watermark) as number;
  }
  const info = await client.request('GET', base);
  return (position.kind === 'earliest' ? info.log_start_offset : info.high_watermark) as number;
}

export function consumeCommand(output: Output = processOutput) {
  return defineCommand({
    meta: { name: 'consume', description: 'Print the records of a topic (like kcat -C)' },
    args: {
      topic: { type: 'positional', description: 'Topic name', required: true },
      from: {
        type: 'string',
        description: 'earliest, latest, OFFSET, or a time (ISO 8601 or @epoch-ms) [default: earliest]',
      },
      partition: { type: 'string', description: 'Only this partition [default: all]' },
      follow: { type: 'boolean', description: 'Keep printing new records as they arrive (WebSocket)' },
      group: { type: 'string', description: 'Consume as a member of this group, from its committed offsets' },
      format: { type: 'string', description: 'text (values) or json (one record per line) [default: text]' },
      count: { type: 'string', description: 'Exit after this many records' },
      ...connectionArgs,
    },
    run: ({ args }) =>
      runVerb(output, async () => {
        const client = new BrokerClient(args['bootstrap-server'], process.env);
        const format = args.format ?? (args.json ? 'json' : 'text');
        if (format !== 'text' && format !== 'json') {
          throw new CliError(`--format: '${format}' must be text or json`, verbExitCodes.usage);
        }
        const json = format === 'json';
        const count = integerFlag(args.count, 'count', 1) ?? Number.POSITIVE_INFINITY;
        const position = parseFrom(args.from ?? 'earliest');
        const topic = await client.request('GET', `/topics/${encodeURIComponent(args.topic)}`);
        const only = integerFlag(args.partition, 'partition');
        const partitions =
          only === undefined ? (topic.partitions as Json[]).map((p) => p.partition as number) : [only];
        if (only !== undefined && only >= topic.num_partitions) {
          throw new CliError(
            `topic '${args.topic}' has partitions 0..${topic.num_partitions - 1}; there is no partition ${only}`,
          );
        }
        let printed = 0;
        const print = (r: ConsumedRecord): boolean => {
          if (printed >= count) return false;
          output.out(formatRecord(args.topic, r, json));
          printed++;
          return printed < count;
        };
        if (args.group !== undefined) {
          await consumeAsGroup(client, args.topic, args.group, position, args.follow === true, print);
        } else if (args.follow) {
          await follow(client, args.topic, partitions, position, print);
        } else {
          await readToEnd(client, args.topic, partitions, position, print);
        }
      }),
  });
}

/** Reads each partition from its start to the high watermark seen at the first read, over HTTP. */
async function readToEnd(
  client: Client,
  topic: string,
  partitions: readonly number[],
  position: StartPosition,
  print: (r: ConsumedRecord) => boolean,
): Promise<void> {
  for (const partition of partitions) {
    let offset = await startOffset(client, topic, partition, position);
    let end = Number.POSITIVE_INFINITY;
    while (offset < end) {
      const answer = await client.request(
        'GET',
        `/topics/${encodeURIComponent(topic)}/partitions/${partition}/consume?offset=${offset}&limit=1000`,
      );
      end = Math.min(end, answer.high_watermark as number);
      for (const r of answer.messages as ConsumedRecord[]) if (!print(r)) return;
      if (answer.count === 0) break;
      offset = answer.next_offset as number;
    }
  }
}

/** Resolves on the first SIGINT or SIGTERM (and stops listening then). */
function interrupted(): { promise: Promise<void>; dispose(): void } {
  let done: () => void = () => undefined;
  const promise = new Promise<void>((resolve) => {
    done = resolve;
  });
  const onSignal = () => done();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    promise,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** Why a socket closed, as an error for codes other than a normal close. */
function closeError(code: number, reason: Buffer): CliError | null {
  if (code === 1000 || code === 1005) return null;
  return new CliError(
    `the broker closed the stream (${code}): ${reason.toString('utf8') || 'no reason given'}`,
  );
}

/** Streams every partition over the WebSocket until `print` says stop, a socket fails or a signal arrives. */
async function follow(
  client: Client,
  topic: string,
  partitions: readonly number[],
  position: StartPosition,
  print: (r: ConsumedRecord) => boolean,
): Promise<void> {
  const sockets: WebSocket[] = [];
  const signal = interrupted();
  try {
    await new Promise<void>((resolve, reject) => {
      signal.promise.then(resolve);
      for (const partition of partitions) {
        (async () => {
          const from =
            position.kind === 'earliest' || position.kind === 'latest'
              ? position.kind
              : String(await startOffset(client, topic, partition, position));
          const socket = await client.openSocket(
            `/ws/consume/${encodeURIComponent(topic)}?partition=${partition}&offset=${from}`,
            (data) => {
              if (!print(JSON.parse(String(data)) as ConsumedRecord)) resolve();
            },
          );
          sockets.push(socket);
          socket.on('close', (code, reason) => {
            const error = closeError(code, reason);
            if (error !== null) reject(error);
          });
        })().catch(reject);
      }
    });
  } finally {
    signal.dispose();
    for (const socket of sockets) socket.close(1000);
  }
}

/**
 * Joins `group` over the WebSocket and prints the records of the partitions it is assigned, committing the next
 * offset of each before it exits. Without `follow` it exits once it has reached, in every assigned partition,
 * the high watermark that partition had when it was assigned.
 */
async function consumeAsGroup(
  client: Client,
  topic: string,
  group: string,
  position: StartPosition,
  followMode: boolean,
  print: (r: ConsumedRecord) => boolean,
): Promise<void> {
  if (position.kind !== 'earliest' && position.kind !== 'latest') {
    throw new CliError(
      '--group starts from the committed offsets, or from earliest / latest where nothing is committed; reset a group with `broker groups reset-offsets`',
      verbExitCodes.usage,
    );
  }
  const memberId = `cli-${randomUUID()}`;
  /** partition → next offset to commit (one past the last printed record). */
  const next = new Map<number, number>();
  /** partition → the high watermark when it was assigned (the end, without --follow). */
  const ends = new Map<number, number>();
  const starts = new Map<number, number>();
  let assignedVersion = 0;
  let settle: { resolve: () => void; reject: (error: unknown) => void } | null = null;
  const done = new Promise<void>((resolve, reject) => {
    settle = { resolve, reject };
  });
  const resolve = () => settle!.resolve();
  const reject = (error: unknown) => settle!.reject(error);
  const finishedReading = () =>
    !followMode && ends.size > 0 && [...ends].every(([p, end]) => (next.get(p) ?? starts.get(p) ?? 0) >= end);
  const onFrame = (data: WebSocket.RawData): void => {
    const frame = JSON.parse(String(data));
    if (frame.type === 'assignment') {
      const mine: number[] = frame.assignments?.[topic] ?? [];
      const version = ++assignedVersion;
      ends.clear();
      // The end of each assigned partition, and where the group starts in it.
      Promise.all(
        mine.map(async (p) => {
          const info = await client.request('GET', `/topics/${encodeURIComponent(topic)}/partitions/${p}`);
          const committed = await client.send(
            'GET',
            `/consumer-groups/${encodeURIComponent(group)}/offsets/${encodeURIComponent(topic)}/${p}`,
          );
          const start =
            committed.status === 200
              ? (committed.body.offset as number)
              : position.kind === 'earliest'
                ? (info.log_start_offset as number)
                : (info.high_watermark as number);
          return [p, info.high_watermark as number, start] as const;
        }),
      ).then((found) => {
        if (version !== assignedVersion) return;
        for (const [p, end, start] of found) {
          ends.set(p, end);
          starts.set(p, start);
        }
        if (finishedReading()) resolve();
      }, reject);
      return;
    }
    if (frame.type === 'record') {
      next.set(frame.partition, frame.offset + 1);
      if (!print(frame)) return resolve();
      if (finishedReading()) resolve();
      return;
    }
    if (frame.type === 'committed') return;
    if (frame.result === 'error' || frame.type === 'error') {
      reject(new CliError(`the broker refused: ${frame.message}`));
    }
  };
  const socket = await client.openSocket(
    `/ws/group/${encodeURIComponent(group)}?topics=${encodeURIComponent(topic)}&consumer_id=${memberId}&offset_reset=${position.kind}`,
    (data) => onFrame(data),
  );
  const signal = interrupted();
  try {
    signal.promise.then(resolve);
    socket.on('close', (code, reason) =>
      reject(closeError(code, reason) ?? new CliError('the broker closed the group stream')),
    );
    await done;
    await commitAll(socket, topic, next);
  } finally {
    signal.dispose();
    socket.removeAllListeners('close');
    socket.close(1000);
  }
}

/** Commits the next offset of every partition read and waits for each answer (5 s at most). */
function commitAll(socket: WebSocket, topic: string, next: ReadonlyMap<number, number>): Promise<void> {
  if (next.size === 0) return Promise.resolve();
  const waiting = new Set(next.keys());
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new CliError('the broker did not confirm the commits within 5 s')),
      5000,
    );
    socket.on('message', (data) => {
      const frame = JSON.parse(String(data));
      if (frame.type === 'committed') waiting.delete(frame.partition);
      else if (frame.result === 'error' || frame.type === 'error') {
        clearTimeout(timer);
        reject(new CliError(`commit refused: ${frame.message}`));
        return;
      }
      if (waiting.size === 0) {
        clearTimeout(timer);
        resolve();
      }
    });
    for (const [partition, offset] of next) {
      socket.send(JSON.stringify({ type: 'commit', topic, partition, offset }));
    }
  });
}
