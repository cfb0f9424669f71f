// What every HTTP route needs from the ACLs: one table from operationId to (resource, operation), Kafka's
// mapping where Kafka has one (ACL docs, "Operations and resources on protocols"). The server refuses to start
// with a route this table does not declare, the operationId type is this table's keys (so a route with a new
// operationId does not compile until it is declared here), and a test enumerates every route against it.
//   open           anyone, authenticated or not (/health)
//   metrics        open unless --metrics-require-auth, then cluster:describe
//   authenticated  any authenticated principal; list answers are filtered to what the principal may describe
//   needs          every requirement listed, computed from the path, the query and (for a few routes) the body
// Pure; used on the acceptor (main) thread.
import type { AccessRequirement, Operation } from '../core/security/acl.js';
import { CLUSTER_RESOURCE } from '../core/security/acl.js';

export interface AccessInput {
  /** Path parameters in the order of the route pattern. */
  readonly params: readonly string[];
  readonly query: URLSearchParams;
  /** The body as a JSON object, or null (no body, or not an object: the handler answers 400 for that). */
  readonly body: Readonly<Record<string, unknown>> | null;
}

export type RouteAccess =
  | { readonly kind: 'open' }
  | { readonly kind: 'metrics' }
  | { readonly kind: 'authenticated' }
  | {
      readonly kind: 'needs';
      /** True when the requirements depend on the body (checked once it is read). */
      readonly usesBody: boolean;
      readonly needs: (input: AccessInput) => readonly AccessRequirement[];
    };

const cluster = (operation: Operation): RouteAccess => ({
  kind: 'needs',
  usesBody: false,
  needs: () => [{ resourceType: 'cluster', resourceName: CLUSTER_RESOURCE, operation }],
});
const topicParam = (operation: Operation, index = 0): RouteAccess => ({
  kind: 'needs',
  usesBody: false,
  needs: ({ params }) => [{ resourceType: 'topic', resourceName: params[index] ?? '', operation }],
});
const groupParam = (operation: Operation): RouteAccess => ({
  kind: 'needs',
  usesBody: false,
  needs: ({ params }) => [{ resourceType: 'group', resourceName: params[0] ?? '', operation }],
});
/** Kafka's OffsetCommit / OffsetFetch: the group and the topic both. */
const groupAndTopic = (operation: Operation): RouteAccess => ({
  kind: 'needs',
  usesBody: false,
  needs: ({ params }) => [
    { resourceType: 'group', resourceName: params[0] ?? '', operation },
    { resourceType: 'topic', resourceName: params[1] ?? '', operation },
  ],
});

/** The strings of a body field that names topics (one or a list); others are left to the handler's 400. */
function bodyTopics(body: AccessInput['body'], field: string): string[] {
  const value = body?.[field];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return [];
}

export const routeAccess = {
  health: { kind: 'open' },
  metrics: { kind: 'metrics' },
  openapi: { kind: 'authenticated' },
  clusterStatus: cluster('describe'),
  assignmentPlan: cluster('describe'),
  listTopics: { kind: 'authenticated' },
  createTopicByQuery: {
    kind: 'needs',
    usesBody: false,
    needs: ({ query }) => [
      { resourceType: 'topic', resourceName: query.get('name') ?? '', operation: 'create' },
    ],
  },
  createTopic: topicParam('create'),
  getTopic: topicParam('describe'),
  deleteTopic: topicParam('delete'),
  // Kafka's IdempotentWrite is a cluster operation; here it is cluster:write.
  createProducer: cluster('write'),
  produce: topicParam('write'),
  produceBatch: topicParam('write'),
  partitionInfo: topicParam('describe'),
  consume: topicParam('read'),
  offsetForTimestamp: topicParam('describe'),
  alterTopicConfig: topicParam('alter'),
  addPartitions: topicParam('alter'),
  listGroups: { kind: 'authenticated' },
  describeGroup: groupParam('describe'),
  // JoinGroup: group read, and read of every topic subscribed to (a consumer reads them).
  registerConsumer: {
    kind: 'needs',
    usesBody: true,
    needs: ({ params, body }) => [
      { resourceType: 'group', resourceName: params[0] ?? '', operation: 'read' },
      ...bodyTopics(body, 'topics').map(
        (t): AccessRequirement => ({ resourceType: 'topic', resourceName: t, operation: 'read' }),
      ),
    ],
  },
  heartbeat: groupParam('read'),
  leaveGroup: groupParam('read'),
  commitOffset: groupAndTopic('read'),
  commitOffsetSeed: groupAndTopic('read'),
  fetchOffset: groupAndTopic('describe'),
  fetchTopicOffsets: groupAndTopic('describe'),
  deleteGroup: groupParam('delete'),
  // Resetting offsets commits them: group read and topic read, as kafka-consumer-groups --reset-offsets needs.
  resetGroupOffsets: {
    kind: 'needs',
    usesBody: true,
    needs: ({ params, body }) => [
      { resourceType: 'group', resourceName: params[0] ?? '', operation: 'read' },
      ...bodyTopics(body, 'topic').map(
        (t): AccessRequirement => ({ resourceType: 'topic', resourceName: t, operation: 'read' }),
      ),
    ],
  },
  reassignPartitions: cluster('alter'),
  cancelReassignments: cluster('alter'),
  rebalance: cluster('alter'),
  decommissionBroker: cluster('alter'),
  electPreferredLeaders: cluster('alter'),
  decommissionStatus: cluster('describe'),
  workerPlacement: cluster('describe'),
  moveWorkerPartition: cluster('alter'),
  balanceWorkers: cluster('alter'),
  listAcls: cluster('alter'),
  createAcls: cluster('alter'),
  deleteAcls: cluster('alter'),
} as const satisfies Record<string, RouteAccess>;

export type OperationId = keyof typeof routeAccess;

export function accessOf(operationId: string): RouteAccess | undefined {
  return (routeAccess as Record<string, RouteAccess>)[operationId];
}
