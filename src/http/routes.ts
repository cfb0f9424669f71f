// The route table of the HTTP API: every path the broker serves, once. The server registers exactly these
// routes and the OpenAPI document is generated from them, so the two cannot drift apart.
// Built and used on the acceptor (main) thread; `dataRoutes` also on extra acceptor threads.
import type { Acceptor } from '../broker/acceptor.js';
import type { GroupsService } from '../broker/groups-service.js';
import type { Route } from './server.js';

export interface AdminHandlers {
  health: Route['handle'];
  clusterStatus: Route['handle'];
  metrics: Route['handle'];
  assignmentPlan: Route['handle'];
  openapi: Route['handle'];
}

/**
 * The data-plane routes (produce one, produce a batch, consume), in that order: the ones every acceptor
 * thread serves itself (an extra acceptor thread relays every other request to the primary one).
 */
export function dataRoutes(acceptor: Acceptor): Route[] {
  return [
    {
      method: 'post',
      pattern: '/topics/:topic/produce',
      operationId: 'produce',
      summary: 'Append one record',
      hasBody: true,
      handle: (q, r) => acceptor.produce(q, r, false),
    },
    {
      method: 'post',
      pattern: '/topics/:topic/records',
      operationId: 'produceBatch',
      summary: 'Append a batch of records',
      hasBody: true,
      handle: (q, r) => acceptor.produce(q, r, true),
    },
    {
      method: 'get',
      pattern: '/topics/:topic/partitions/:partition/consume',
      operationId: 'consume',
      summary: 'Read records from an offset',
      hasBody: false,
      handle: (q, r) => acceptor.consume(q, r),
    },
  ];
}

export function buildRoutes(acceptor: Acceptor, groups: GroupsService, admin: AdminHandlers): Route[] {
  return [
    {
      method: 'get',
      pattern: '/health',
      operationId: 'health',
      summary: 'Whether this node serves requests',
      hasBody: false,
      handle: admin.health,
    },
    {
      method: 'get',
      pattern: '/cluster/status',
      operationId: 'clusterStatus',
      summary: 'This node, the Raft leader and term, and the members',
      hasBody: false,
      handle: admin.clusterStatus,
    },
    {
      method: 'get',
      pattern: '/metrics',
      operationId: 'metrics',
      summary: 'Prometheus metrics',
      hasBody: false,
      handle: admin.metrics,
    },
    {
      method: 'get',
      pattern: '/admin/assignment-plan',
      operationId: 'assignmentPlan',
      summary: 'Current and proposed replica placement',
      hasBody: false,
      handle: admin.assignmentPlan,
    },
    {
      method: 'get',
      pattern: '/openapi.json',
      operationId: 'openapi',
      summary: 'This document',
      hasBody: false,
      handle: admin.openapi,
    },
    {
      method: 'get',
      pattern: '/topics',
      operationId: 'listTopics',
      summary: 'List topics',
      hasBody: false,
      handle: (q, r) => acceptor.listTopics(q, r),
    },
    {
      method: 'post',
      pattern: '/topics',
      operationId: 'createTopicByQuery',
      summary: 'Create the topic named by ?name=',
      hasBody: true,
      handle: (q, r) => acceptor.createTopic(q, r, true),
    },
    {
      method: 'post',
      pattern: '/topics/:topic',
      operationId: 'createTopic',
      summary: 'Create a topic',
      hasBody: true,
      handle: (q, r) => acceptor.createTopic(q, r),
    },
    {
      method: 'get',
      pattern: '/topics/:topic',
      operationId: 'getTopic',
      summary: 'Topic configuration and partitions',
      hasBody: false,
      handle: (q, r) => acceptor.getTopic(q, r),
    },
    {
      method: 'delete',
      pattern: '/topics/:topic',
      operationId: 'deleteTopic',
      summary: 'Delete a topic and its data',
      hasBody: false,
      handle: (q, r) => acceptor.deleteTopic(q, r),
    },
    {
      method: 'post',
      pattern: '/producers',
      operationId: 'createProducer',
      summary: 'A new idempotent producer id (epoch 0) for the Producer-Id header',
      hasBody: false,
      handle: (q, r) => acceptor.createProducer(q, r),
    },
    ...dataRoutes(acceptor).slice(0, 2),
    {
      method: 'get',
      pattern: '/topics/:topic/partitions/:partition',
      operationId: 'partitionInfo',
      summary: 'Partition offsets, size and replicas',
      hasBody: false,
      handle: (q, r) => acceptor.partitionInfo(q, r),
    },
    ...dataRoutes(acceptor).slice(2),
    {
      method: 'get',
      pattern: '/consumer-groups',
      operationId: 'listGroups',
      summary: 'List consumer groups',
      hasBody: false,
      handle: (q, r) => groups.list(q, r),
    },
    {
      method: 'get',
      pattern: '/consumer-groups/:group',
      operationId: 'describeGroup',
      summary: 'Members, generation, assignment, committed offsets and lag',
      hasBody: false,
      handle: (q, r) => groups.describe(q, r),
    },
    {
      method: 'post',
      pattern: '/consumer-groups/:group/register',
      operationId: 'registerConsumer',
      summary: 'Join a consumer group',
      hasBody: true,
      handle: (q, r) => groups.register(q, r),
    },
    {
      method: 'post',
      pattern: '/consumer-groups/:group/heartbeat',
      operationId: 'heartbeat',
      summary: 'Stay in the group; learn of rebalances',
      hasBody: true,
      handle: (q, r) => groups.heartbeat(q, r),
    },
    {
      method: 'post',
      pattern: '/consumer-groups/:group/leave',
      operationId: 'leaveGroup',
      summary: 'Leave the group',
      hasBody: true,
      handle: (q, r) => groups.leave(q, r),
    },
    {
      method: 'post',
      pattern: '/consumer-groups/:group/topics/:topic/partitions/:partition/commit',
      operationId: 'commitOffset',
      summary: 'Commit an offset (fenced by generation)',
      hasBody: true,
      handle: (q, r) => groups.commit(q, r),
    },
    {
      method: 'post',
      pattern: '/consumer-groups/:group/offsets/:topic/:partition',
      operationId: 'commitOffsetSeed',
      summary: 'Commit an offset (seed route)',
      hasBody: true,
      handle: (q, r) => groups.commit(q, r),
    },
    {
      method: 'get',
      pattern: '/consumer-groups/:group/offsets/:topic/:partition',
      operationId: 'fetchOffset',
      summary: 'The committed offset of one partition',
      hasBody: false,
      handle: (q, r) => groups.fetchOffset(q, r),
    },
    {
      method: 'get',
      pattern: '/consumer-groups/:group/offsets/:topic',
      operationId: 'fetchTopicOffsets',
      summary: 'Committed offsets and lag of every partition',
      hasBody: false,
      handle: (q, r) => groups.fetchTopicOffsets(q, r),
    },
  ];
}
