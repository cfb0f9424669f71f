// `broker groups list|describe|reset-offsets|delete` (kafka-consumer-groups.sh) and `broker cluster status`,
// over the HTTP API. reset-offsets follows kafka-consumer-groups: it prints the plan and changes nothing
// unless --execute is given, and the broker refuses it while the group has members.
// Runs on the main thread of the CLI process.
import { defineCommand } from 'citty';
import {
  BrokerClient,
  CliError,
  connectionArgs,
  integerFlag,
  type Json,
  type Output,
  processOutput,
  runVerb,
  table,
  verbExitCodes,
} from '../client.js';
import { parseFrom } from './consume.js';

const groupArg = { type: 'positional', description: 'Group id', required: true } as const;

export function groupsCommand(output: Output = processOutput) {
  const env = process.env;
  const list = defineCommand({
    meta: { name: 'list', description: 'List consumer groups' },
    args: { ...connectionArgs },
    run: ({ args }) =>
      runVerb(output, async () => {
        const answer = await new BrokerClient(args['bootstrap-server'], env).request(
          'GET',
          '/consumer-groups',
        );
        if (args.json) return output.out(JSON.stringify(answer));
        output.out(
          table(
            ['GROUP', 'STATE', 'MEMBERS'],
            (answer.groups as Json[]).map((g) => [g.group, g.state, g.members]),
          ),
        );
      }),
  });
  const describe = defineCommand({
    meta: { name: 'describe', description: 'Members, assignment, committed offsets and lag of a group' },
    args: { group: groupArg, ...connectionArgs },
    run: ({ args }) =>
      runVerb(output, async () => {
        const client = new BrokerClient(args['bootstrap-server'], env);
        const g = await client.request('GET', `/consumer-groups/${encodeURIComponent(args.group)}`);
        if (args.json) return output.out(JSON.stringify(g));
        output.out(
          `Group: ${g.group}  State: ${g.state}  Generation: ${g.generation}  Assignor: ${g.assignor}`,
        );
        output.out(
          table(
            ['TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'LOG-END-OFFSET', 'LAG', 'CONSUMER-ID'],
            (g.offsets as Json[]).map((o) => [
              o.topic,
              o.partition,
              o.offset,
              o.log_end_offset,
              o.lag,
              o.owner,
            ]),
          ),
        );
        if ((g.members as Json[]).length > 0) {
          output.out('');
          output.out(
            table(
              ['CONSUMER-ID', 'ASSIGNMENT', 'LAST-HEARTBEAT'],
              (g.members as Json[]).map((m) => [
                m.consumer_id,
                Object.entries(m.assignments as Record<string, number[]>)
                  .map(([t, ps]) => `${t}:${ps.join(',')}`)
                  .join(' ') || '-',
                new Date(m.last_heartbeat).toISOString(),
              ]),
            ),
          );
        }
      }),
  });
  const reset = defineCommand({
    meta: {
      name: 'reset-offsets',
      description: "Move an empty group's committed offsets (prints the plan; --execute applies it)",
    },
    args: {
      group: groupArg,
      topic: { type: 'string', description: 'Topic whose offsets move', required: true },
      partitions: { type: 'string', description: 'Only these partitions, e.g. 0,2 [default: all]' },
      'to-earliest': { type: 'boolean', description: 'To the log start' },
      'to-latest': { type: 'boolean', description: 'To the high watermark' },
      'to-offset': { type: 'string', description: 'To this offset (clamped into the log)' },
      'to-datetime': {
        type: 'string',
        description: 'To the first record at or after this time (ISO 8601 or @ms)',
      },
      'shift-by': {
        type: 'string',
        description: 'By this many records from the committed offset (may be negative)',
      },
      execute: { type: 'boolean', description: 'Apply the reset (without it nothing changes)' },
      ...connectionArgs,
    },
    run: ({ args }) =>
      runVerb(output, async () => {
        const client = new BrokerClient(args['bootstrap-server'], env);
        const targets: Record<string, unknown>[] = [];
        if (args['to-earliest']) targets.push({ to: 'earliest' });
        if (args['to-latest']) targets.push({ to: 'latest' });
        if (args['to-offset'] !== undefined)
          targets.push({ to: 'offset', offset: integerFlag(args['to-offset'], 'to-offset') });
        if (args['to-datetime'] !== undefined) {
          const from = parseFrom(args['to-datetime']);
          if (from.kind !== 'time')
            throw new CliError(`--to-datetime: '${args['to-datetime']}' is not a time`, verbExitCodes.usage);
          targets.push({ to: 'timestamp', timestamp: from.timestampMs });
        }
        if (args['shift-by'] !== undefined) {
          targets.push({
            to: 'shift',
            shift: integerFlag(args['shift-by'], 'shift-by', -Number.MAX_SAFE_INTEGER),
          });
        }
        if (targets.length !== 1) {
          throw new CliError(
            'give exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by',
            verbExitCodes.usage,
          );
        }
        const body: Record<string, unknown> = {
          topic: args.topic,
          ...targets[0],
          dry_run: args.execute !== true,
        };
        if (args.partitions !== undefined) {
          body.partitions = args.partitions.split(',').map((p) => integerFlag(p.trim(), 'partitions'));
        }
        const answer = await client.request(
          'POST',
          `/consumer-groups/${encodeURIComponent(args.group)}/reset-offsets`,
          body,
        );
        if (args.json) return output.out(JSON.stringify(answer));
        output.out(
          table(
            ['GROUP', 'TOPIC', 'PARTITION', 'PREVIOUS-OFFSET', 'NEW-OFFSET'],
            (answer.offsets as Json[]).map((o) => [
              answer.group,
              answer.topic,
              o.partition,
              o.previous_offset,
              o.offset,
            ]),
          ),
        );
        if (answer.dry_run) output.err('Dry run: nothing changed. Add --execute to apply.');
      }),
  });
  const remove = defineCommand({
    meta: { name: 'delete', description: 'Delete an empty group and its committed offsets' },
    args: { group: groupArg, ...connectionArgs },
    run: ({ args }) =>
      runVerb(output, async () => {
        const client = new BrokerClient(args['bootstrap-server'], env);
        const answer = await client.request('DELETE', `/consumer-groups/${encodeURIComponent(args.group)}`);
        output.out(args.json ? JSON.stringify(answer) : `Deleted group ${args.group}.`);
      }),
  });
  return defineCommand({
    meta: { name: 'groups', description: 'Manage consumer groups' },
    subCommands: { list, describe, 'reset-offsets': reset, delete: remove },
  });
}

export function clusterCommand(output: Output = processOutput) {
  const status = defineCommand({
    meta: {
      name: 'status',
      description: 'Members, their gossip state and Raft role, and the metadata leader',
    },
    args: { ...connectionArgs },
    run: ({ args }) =>
      runVerb(output, async () => {
        const s = await new BrokerClient(args['bootstrap-server'], process.env).request(
          'GET',
          '/cluster/status',
        );
        if (args.json) return output.out(JSON.stringify(s));
        output.out(
          `Node: ${s.node_id}  Raft: ${s.raft.role}, leader ${s.raft.leader_id ?? 'none'}, term ${s.raft.term}, commit ${s.raft.commit_index}  Voters: ${s.raft.voters.join(',')}`,
        );
        output.out(
          table(
            ['NODE', 'STATE', 'RAFT', 'LEADER', 'RACK', 'ADDRESS', 'FENCED'],
            (s.members as Json[]).map((m) => [
              m.node_id,
              m.state,
              m.raft_role,
              m.leader ? 'yes' : '',
              m.rack === '' ? '-' : m.rack,
              `${m.address}:${m.http_port}`,
              m.fenced ? 'yes' : '',
            ]),
          ),
        );
      }),
  });
  return defineCommand({ meta: { name: 'cluster', description: 'Cluster state' }, subCommands: { status } });
}
