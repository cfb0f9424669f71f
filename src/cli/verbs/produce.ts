// `broker produce TOPIC`: kcat -P. Each line of standard input is one record's value (with --key-delimiter,
// the text before the first delimiter is its key). Lines are sent in order as batch produce requests of at
// most `batchRecordsMax` records or `batchBytesMax` bytes, one request at a time, so the records of a
// partition keep the order of the lines. A record the broker refuses is reported with the broker's message
// and makes the exit code 1; the others are still sent.
// Runs on the main thread of the CLI process.
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { defineCommand } from 'citty';
import {
  BrokerClient,
  CliError,
  connectionArgs,
  integerFlag,
  type Json,
  keyValues,
  type Output,
  processOutput,
  repeatedFlag,
  runVerb,
  verbExitCodes,
} from '../client.js';

const batchRecordsMax = 500;
const batchBytesMax = 512 * 1024;

interface OutgoingRecord {
  key?: string;
  value: string;
  headers?: Record<string, string>;
  partition?: number;
}

export function produceCommand(output: Output = processOutput, input: () => Readable = () => process.stdin) {
  return defineCommand({
    meta: { name: 'produce', description: 'Produce the lines of standard input as records (like kcat -P)' },
    args: {
      topic: { type: 'positional', description: 'Topic name', required: true },
      key: { type: 'string', description: 'Key of every record' },
      'key-delimiter': {
        type: 'string',
        description: 'Split each line at the first DELIM into key and value',
      },
      header: { type: 'string', description: 'A header k=v on every record (repeatable)' },
      partition: { type: 'string', description: 'Partition of every record [default: by key, or sticky]' },
      acks: { type: 'string', description: '0, 1 or all [default: all]' },
      ...connectionArgs,
    },
    run: ({ args, rawArgs }) =>
      runVerb(output, async () => {
        const client = new BrokerClient(args['bootstrap-server'], process.env);
        const headers = keyValues(repeatedFlag(rawArgs, 'header'), 'header');
        const partition = integerFlag(args.partition, 'partition');
        const acks = args.acks ?? 'all';
        if (!['0', '1', 'all', '-1'].includes(acks)) {
          throw new CliError(`--acks: '${acks}' must be 0, 1 or all`, verbExitCodes.usage);
        }
        const delimiter = args['key-delimiter'];
        if (delimiter !== undefined && args.key !== undefined) {
          throw new CliError('--key and --key-delimiter exclude each other', verbExitCodes.usage);
        }
        const path = `/topics/${encodeURIComponent(args.topic)}/records?acks=${acks}`;
        let batch: OutgoingRecord[] = [];
        let batchBytes = 0;
        let produced = 0;
        let failed = 0;
        let line = 0;
        const flush = async (): Promise<void> => {
          if (batch.length === 0) return;
          const firstLine = line - batch.length + 1;
          const records = batch;
          batch = [];
          batchBytes = 0;
          const answer = await client.request('POST', path, { records });
          for (const [i, o] of (answer.offsets as Json[]).entries()) {
            if (o.error_code !== null && o.error_code !== undefined) {
              failed++;
              output.err(`broker: line ${firstLine + i}: ${o.error} (error ${o.error_code})`);
            } else {
              produced++;
              if (args.json)
                output.out(JSON.stringify({ line: firstLine + i, partition: o.partition, offset: o.offset }));
            }
          }
        };
        for await (const text of createInterface({ input: input(), crlfDelay: Number.POSITIVE_INFINITY })) {
          line++;
          const record: OutgoingRecord = { value: text };
          if (delimiter !== undefined && delimiter !== '') {
            const at = text.indexOf(delimiter);
            if (at >= 0) {
              record.key = text.slice(0, at);
              record.value = text.slice(at + delimiter.length);
            }
          } else if (args.key !== undefined) {
            record.key = args.key;
          }
          if (Object.keys(headers).length > 0) record.headers = headers;
          if (partition !== undefined) record.partition = partition;
          batch.push(record);
          batchBytes += text.length + 64;
          if (batch.length >= batchRecordsMax || batchBytes >= batchBytesMax) await flush();
        }
        await flush();
        if (!args.json)
          output.err(
            `${produced} record(s) produced to ${args.topic}${failed > 0 ? `, ${failed} refused` : ''}`,
          );
        if (failed > 0) throw new CliError(`${failed} record(s) were not produced`);
      }),
  });
}
