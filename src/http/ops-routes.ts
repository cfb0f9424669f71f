// The routes the operators' tools need beyond the seed's API: topic config changes, offsets by time, and the
// consumer-group admin (delete, offset reset). Kept beside the main route table (`routes.ts`) and served and
// documented the same way (the OpenAPI details are in `openapi.ts`). Built on the acceptor (main) thread.
import type { GroupAdmin } from '../broker/group-admin.js';
import type { TopicAdmin } from '../broker/topic-admin.js';
import type { Route } from './server.js';

export function buildOpsRoutes(topics: TopicAdmin, groups: GroupAdmin): Route[] {
  return [
    {
      method: 'post',
      pattern: '/topics/:topic/config',
      operationId: 'alterTopicConfig',
      summary: "Change a topic's retention or min in-sync replicas",
      hasBody: true,
      handle: (q, r) => topics.alterConfig(q, r),
    },
    {
      method: 'patch',
      pattern: '/topics/:topic',
      operationId: 'addPartitions',
      summary: 'Give a topic more partitions (increase only, as in Kafka)',
      hasBody: true,
      handle: (q, r) => topics.addPartitions(q, r),
    },
    {
      method: 'get',
      pattern: '/topics/:topic/partitions/:partition/offsets',
      operationId: 'offsetForTimestamp',
      summary: 'The first offset whose record timestamp is at or after a time',
      hasBody: false,
      handle: (q, r) => topics.offsetsForTime(q, r),
    },
    {
      method: 'delete',
      pattern: '/consumer-groups/:group',
      operationId: 'deleteGroup',
      summary: 'Delete an empty consumer group and its committed offsets',
      hasBody: false,
      handle: (q, r) => groups.deleteGroup(q, r),
    },
    {
      method: 'post',
      pattern: '/consumer-groups/:group/reset-offsets',
      operationId: 'resetGroupOffsets',
      summary: "Move an empty group's committed offsets (earliest, latest, offset, time, shift)",
      hasBody: true,
      handle: (q, r) => groups.resetOffsets(q, r),
    },
  ];
}
