// `broker topics list|create|describe|delete|alter`: kafka-topics.sh over the HTTP API. Describe shows each
// partition's leader, leader epoch, replicas, ISR, low and high watermark and size, asking the partition's
// figures where this broker has them and showing '-' where it does not (a partition led by another broker).
// Runs on the main thread of the CLI process.
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
  table,
  verbExitCodes,
} from '../client.js';

const topicArg = { type: 'positional', description: 'Topic name', required: true } as const;

/** Config values from `--config k=v`: numbers where they parse as whole numbers, text otherwise. */
function configFromFlags(rawArgs: readonly string[]): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const [key, value] of Object.entries(keyValues(repeatedFlag(rawArgs, 'config'), 'config'))) {
    // Kafka spells settings with dots (retention.ms); the API uses underscores.
    out[key.replaceAll('.', '_')] = /^-?\d+$/.test(value) ? Number(value) : value;
  }
  return out;
}

export function topicsCommand(output: Output = processOutput) {
  const env = process.env;
  const list = defineCommand({
    meta: { name: 'list', description: 'List topics' },
    args: { ...connectionArgs },
    run: ({ args }) =>
      runVerb(output, async () => {
        const client = new BrokerClient(args['bootstrap-server'], env);
        const answer = await client.request('GET', '/topics');
        if (args.json) return output.out(JSON.stringify(answer));
        for (const name of answer.topics as string[]) output.out(name);
      }),
  });
  const create = defineCommand({
    meta: { name: 'create', description: 'Create a topic' },
    args: {
      topic: topicArg,
      partitions: { type: 'string', description: 'Number of partitions [default: the broker default]' },
      'replication-factor': { type: 'string', description: 'Replicas per partition [default: 1]' },
      'rack-awareness': { type: 'boolean', description: 'Spread replicas over racks' },
      config: {
        type: 'string',
        description: 'A config setting k=v (repeatable), e.g. retention_ms=86400000',
      },
      ...connectionArgs,
    },
    run: ({ args, rawArgs }) =>
      runVerb(output, async () => {
        const client = new BrokerClient(args['bootstrap-server'], env);
        const body: Record<string, unknown> = {};
        const partitions = integerFlag(args.partitions, 'partitions', 1);
        if (partitions !== undefined) body.num_partitions = partitions;
        const rf = integerFlag(args['replication-factor'], 'replication-factor', 1);
        if (rf !== undefined) body.replication_factor = rf;
        if (args['rack-awareness']) body.rack_awareness = true;
        const config = configFromFlags(rawArgs);
        if (Object.keys(config).length > 0) body.config = config;
        const { status, body: answer } = await client.send(
          'POST',
          `/topics/${encodeURIComponent(args.topic)}`,
          body,
        );
        if (status >= 400) throw new CliError(answer?.message ?? `the broker answered ${status}`);
        if (args.json) return output.out(JSON.stringify(answer));
        output.out(
          status === 201
            ? `Created topic ${answer.topic} with ${answer.num_partitions} partition(s).`
            : `Topic ${answer.topic} already exists with these settings.`,
        );
      }),
  });
  const describe = defineCommand({
    meta: {
      name: 'describe',
      description: "A topic's config and partitions (leader, replicas, ISR, offsets, size)",
    },
    args: { topic: topicArg, ...connectionArgs },
    run: ({ args }) =>
      runVerb(output, async () => {
        const client = new BrokerClient(args['bootstrap-server'], env);
        const name = encodeURIComponent(args.topic);
        const topic = await client.request('GET', `/topics/${name}`);
        const partitions = await Promise.all(
          (topic.partitions as Json[]).map(async (p) => {
            const detail = await client.send('GET', `/topics/${name}/partitions/${p.partition}`);
            // Another broker leads it: its figures live there (shown as unknown here, not as zero).
            return detail.status === 200 ? { ...p, ...detail.body } : p;
          }),
        );
        if (args.json) return output.out(JSON.stringify({ ...topic, partitions }));
        const c = topic.config;
        output.out(
          `Topic: ${topic.topic}  TopicId: ${topic.topic_id}  PartitionCount: ${topic.num_partitions}  ReplicationFactor: ${topic.replication_factor}`,
        );
        output.out(
          `Config: retention_ms=${c.retention_ms} retention_bytes=${c.retention_bytes} segment_bytes=${c.segment_bytes} min_insync_replicas=${c.min_insync_replicas} cleanup_policy=${c.cleanup_policy}`,
        );
        output.out(
          table(
            ['PARTITION', 'LEADER', 'EPOCH', 'REPLICAS', 'ISR', 'LOW', 'HIGH', 'SIZE'],
            partitions.map((p) => [
              p.partition,
              p.leader === '' ? 'none' : p.leader,
              p.leader_epoch,
              p.replicas.join(','),
              p.isr.join(','),
              p.log_start_offset,
              p.high_watermark,
              p.size_bytes,
            ]),
          ),
        );
      }),
  });
  const remove = defineCommand({
    meta: { name: 'delete', description: 'Delete a topic and its data' },
    args: { topic: topicArg, ...connectionArgs },
    run: ({ args }) =>
      runVerb(output, async () => {
        const client = new BrokerClient(args['bootstrap-server'], env);
        const answer = await client.request('DELETE', `/topics/${encodeURIComponent(args.topic)}`);
        output.out(args.json ? JSON.stringify(answer) : `Deleted topic ${args.topic}.`);
      }),
  });
  const alter = defineCommand({
    meta: {
      name: 'alter',
      description:
        "Change a topic's config: --config retention_ms=N, retention_bytes=N, min_insync_replicas=N",
    },
    args: {
      topic: topicArg,
      config: { type: 'string', description: 'A setting k=v (repeatable)' },
      ...connectionArgs,
    },
    run: ({ args, rawArgs }) =>
      runVerb(output, async () => {
        const client = new BrokerClient(args['bootstrap-server'], env);
        const config = configFromFlags(rawArgs);
        if (Object.keys(config).length === 0) {
          throw new CliError('give at least one --config key=value to change', verbExitCodes.usage);
        }
        const answer = await client.request(
          'POST',
          `/topics/${encodeURIComponent(args.topic)}/config`,
          config,
        );
        if (args.json) return output.out(JSON.stringify(answer));
        output.out(`Altered topic ${answer.topic}:`);
        for (const [key, value] of Object.entries(answer.config as Record<string, unknown>)) {
          output.out(`  ${key}=${String(value)}`);
        }
      }),
  });
  return defineCommand({
    meta: { name: 'topics', description: 'Manage topics' },
    subCommands: { list, create, describe, delete: remove, alter },
  });
}
