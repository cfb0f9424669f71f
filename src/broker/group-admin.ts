// The operators' consumer-group routes: deleting a group (Kafka's DeleteGroups: only an empty group, with its
// committed offsets) and resetting a group's committed offsets (kafka-consumer-groups --reset-offsets: only
// while the group has no members, so no live consumer overwrites the reset or reads past it unknowingly).
// Both go through the coordinator's commands and are answered once durable (the groups file on one node, the
// metadata log in a cluster).
// Runs on the acceptor (main) thread only.
import type { CommittedOffset } from '../core/metadata/state-machine.js';
import { validateTopicName } from '../core/names.js';
import { parseOffsetReset } from '../http/ops-bodies.js';
import { parseJsonBody } from '../http/produce-body.js';
import type { HttpRequest, Reply } from '../http/server.js';
import type { Acceptor } from './acceptor.js';
import { type GroupsService, persistFailureAnswer, refusal } from './groups-service.js';
import type { TopicAdmin } from './topic-admin.js';

export class GroupAdmin {
  constructor(
    private readonly groups: GroupsService,
    private readonly acceptor: Acceptor,
    private readonly topics: TopicAdmin,
  ) {}

  /** `DELETE /consumer-groups/{group}`. */
  deleteGroup(request: HttpRequest, reply: Reply): void {
    const group = groupOrReply(request, reply);
    if (group === null) return;
    this.groups.deleteGroup(group, Date.now()).then(
      (result) => {
        if (result.kind === 'unknown_group')
          return reply.error('unknown_group', `group '${group}' does not exist`);
        if (result.kind === 'group_has_members') {
          return reply.error(
            'conflict',
            `group '${group}' has active members; it can be deleted once they leave or their sessions expire`,
          );
        }
        reply.json(200, JSON.stringify({ group, deleted: true }));
      },
      (error: unknown) => {
        const [name, message, indefinite] = persistFailureAnswer(error);
        reply.error(
          name,
          message.replace('the commit', 'the deletion'),
          indefinite ? { indefinite: true } : {},
        );
      },
    );
  }

  /** `POST /consumer-groups/{group}/reset-offsets`. */
  resetOffsets(request: HttpRequest, reply: Reply): void {
    const group = groupOrReply(request, reply);
    if (group === null) return;
    const json = parseJsonBody(request.body?.toString('utf8') ?? '');
    if (!json.ok) return reply.error('bad_request', json.message);
    const parsed = parseOffsetReset(json.value, 0x7fffffff);
    if (parsed.kind === 'error') return reply.error('bad_request', parsed.message);
    const reset = parsed.value;
    const topicProblem = validateTopicName(reset.topic);
    if (topicProblem !== null) return reply.error('invalid_name', topicProblem);
    const route = this.acceptor.topicRoute(reset.topic);
    if (route === undefined) return reply.error('unknown_topic', `topic '${reset.topic}' does not exist`);
    const members = this.groups.registry.describe(group)?.members.length ?? 0;
    if (members > 0) {
      return reply.error(
        'conflict',
        `group '${group}' has ${members} active member(s): offsets can be reset only while the group is empty (stop its consumers first)`,
      );
    }
    const committed = (partition: number) =>
      this.groups.registry.committedOffset(group, reset.topic, partition);
    this.topics.resetTargets(route, reset, committed).then(
      async (planned) => {
        if (planned.kind === 'error') return reply.error(planned.error, planned.message);
        const offsets = planned.targets.map((t) => ({
          partition: t.partition,
          previous_offset: committed(t.partition) ?? null,
          offset: t.offset,
        }));
        if (!reset.dryRun) {
          const nowMs = Date.now();
          const written: CommittedOffset[] = [];
          for (const t of planned.targets) {
            // A member that joined while the offsets were looked up makes the standalone commit refuse.
            const result = this.groups.tryCommit(
              group,
              undefined,
              undefined,
              reset.topic,
              t.partition,
              t.offset,
              nowMs,
            );
            if (result.kind !== 'ok') {
              await this.groups.commitAllDurably(group, written).catch(() => undefined);
              const [name, message] = refusal(result);
              return reply.error(name, `offset reset of ${reset.topic}-${t.partition} refused: ${message}`);
            }
            written.push({
              topic: reset.topic,
              partition: t.partition,
              offset: t.offset,
              metadata: '',
              committedAtMs: nowMs,
            });
          }
          try {
            await this.groups.commitAllDurably(group, written);
          } catch (error) {
            const [name, message, indefinite] = persistFailureAnswer(error);
            return reply.error(
              name,
              message.replace('the commit', 'the reset'),
              indefinite ? { indefinite: true } : {},
            );
          }
        }
        reply.json(200, JSON.stringify({ group, topic: reset.topic, dry_run: reset.dryRun, offsets }));
      },
      (error: unknown) => reply.error('overloaded', (error as Error).message),
    );
  }
}

function groupOrReply(request: HttpRequest, reply: Reply): string | null {
  const group = request.params[0] ?? '';
  const problem = validateTopicName(group);
  if (problem !== null) {
    reply.error('invalid_name', problem.replace('topic name', 'group name'));
    return null;
  }
  return group;
}
