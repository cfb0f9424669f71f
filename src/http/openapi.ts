// The OpenAPI 3.1 document of the HTTP API, generated from the route table (paths, methods, path parameters)
// plus the per-operation details below (query parameters, bodies, answers). A test checks that every route has
// details here and that every documented operation is served. Pure; built once on the acceptor thread.
import { errorNames, errors } from '../core/errors.js';
import { aclOperations, patternTypes, permissions, resourceTypes } from '../core/security/acl.js';
import { accessOf } from './route-access.js';
import type { Route } from './server.js';

interface QueryParam {
  readonly name: string;
  readonly description: string;
  readonly schema: Record<string, unknown>;
}

interface OperationDetails {
  readonly query?: readonly QueryParam[];
  readonly body?: Record<string, unknown>;
  /** Bodies in other media types than application/json, by media type. */
  readonly otherBodies?: Readonly<Record<string, Record<string, unknown>>>;
  /** Success statuses with a description. */
  readonly success: Readonly<Record<string, string>>;
  /** Error statuses this operation can answer (besides 503). */
  readonly errors?: readonly number[];
}

const record = {
  type: 'object',
  required: ['value'],
  properties: {
    key: { type: ['string', 'null'] },
    value: { type: ['string', 'null'] },
    headers: { type: 'object', additionalProperties: { type: 'string' } },
    partition: { type: 'integer', minimum: 0 },
    timestamp: { type: 'integer', minimum: 0, description: 'create time, ms since the epoch (default: now)' },
    key_format: { enum: ['string', 'base64'] },
    value_format: { enum: ['string', 'base64'] },
  },
  additionalProperties: false,
};

const acks: QueryParam = {
  name: 'acks',
  description: '0: answer once handed to the partition worker; 1 or all (default): after the durable append',
  schema: { enum: ['0', '1', 'all', '-1'] },
};

const member = {
  type: 'object',
  required: ['consumer_id'],
  properties: { consumer_id: { type: 'string' } },
};
const commitBody = {
  type: 'object',
  required: ['offset'],
  properties: {
    offset: { type: 'integer', minimum: 0 },
    consumer_id: { type: 'string' },
    generation: { type: 'integer' },
    metadata: { type: 'string' },
  },
};

const aclFilterQuery: readonly QueryParam[] = [
  {
    name: 'principal',
    description: 'a principal, or * for the bindings of every principal',
    schema: { type: 'string' },
  },
  { name: 'resource_type', description: 'topic, group or cluster', schema: { enum: [...resourceTypes] } },
  { name: 'pattern_type', description: 'literal or prefixed', schema: { enum: [...patternTypes] } },
  { name: 'resource_name', description: 'the pattern exactly as bound', schema: { type: 'string' } },
  { name: 'operation', description: 'the operation exactly as bound', schema: { enum: [...aclOperations] } },
  { name: 'permission', description: 'allow or deny', schema: { enum: [...permissions] } },
];

const aclBinding = {
  type: 'object',
  required: ['principal', 'resource_type', 'operation'],
  properties: {
    principal: {
      type: 'string',
      description: 'a principal (token file name or JWT sub), or * for every one',
    },
    resource_type: { enum: [...resourceTypes] },
    pattern_type: { enum: [...patternTypes], description: 'default literal' },
    resource_name: {
      type: 'string',
      description: "a name, a prefix, or * (literal: every name); 'cluster' for the cluster",
    },
    operation: { enum: [...aclOperations] },
    permission: { enum: [...permissions], description: 'default allow' },
  },
  additionalProperties: false,
};

export const operationDetails: Readonly<Record<string, OperationDetails>> = {
  listAcls: {
    query: aclFilterQuery,
    success: { '200': '{"acls": [bindings], "count", "enforced"}' },
    errors: [400],
  },
  createAcls: {
    body: {
      oneOf: [
        { type: 'object', required: ['acls'], properties: { acls: { type: 'array', items: aclBinding } } },
        aclBinding,
      ],
    },
    success: { '201': '{"created": [bindings new to the cluster], "count", "enforced"}' },
    errors: [400],
  },
  deleteAcls: {
    query: [
      ...aclFilterQuery,
      {
        name: 'all',
        description: 'true: remove every binding (needed when no filter field is given)',
        schema: { enum: ['true'] },
      },
    ],
    success: { '200': '{"deleted": [bindings], "count"}' },
    errors: [400],
  },
  alterTopicConfig: {
    body: {
      type: 'object',
      properties: {
        retention_ms: { type: 'integer', minimum: -1 },
        retention_bytes: { type: 'integer', minimum: -1 },
        min_insync_replicas: { type: 'integer', minimum: 1 },
        segment_bytes: { type: 'integer', minimum: 1048576, maximum: 1073741824 },
      },
      additionalProperties: false,
    },
    success: { '200': '{"topic", "config"}: the whole config after the change' },
    errors: [400, 404],
  },
  offsetForTimestamp: {
    query: [
      { name: 'timestamp', description: 'ms since the epoch', schema: { type: 'integer', minimum: 0 } },
    ],
    success: {
      '200':
        '{"topic","partition","timestamp","offset","log_start_offset","high_watermark"}; offset null when no record is that new',
    },
    errors: [400, 404],
  },
  addPartitions: {
    body: {
      type: 'object',
      required: ['num_partitions'],
      properties: { num_partitions: { type: 'integer', minimum: 2, maximum: 4096 } },
      additionalProperties: false,
    },
    success: { '200': '{"topic","num_partitions","partitions":[{"partition","leader","replicas"}]}' },
    errors: [400, 404, 422],
  },
  deleteGroup: { success: { '200': '{"group","deleted": true}' }, errors: [400, 404, 409] },
  resetGroupOffsets: {
    body: {
      type: 'object',
      required: ['topic', 'to'],
      properties: {
        topic: { type: 'string' },
        partitions: { type: 'array', items: { type: 'integer', minimum: 0 } },
        to: { enum: ['earliest', 'latest', 'offset', 'timestamp', 'shift'] },
        offset: { type: 'integer', minimum: 0 },
        timestamp: { type: 'integer', minimum: 0 },
        shift: { type: 'integer' },
        dry_run: { type: 'boolean' },
      },
      additionalProperties: false,
    },
    success: { '200': '{"group","topic","dry_run","offsets": [{"partition","previous_offset","offset"}]}' },
    errors: [400, 404, 409],
  },
  listGroups: { success: { '200': '{"groups": [{"group","state","members"}], "count"}' } },
  describeGroup: {
    success: { '200': 'state, generation, assignor, members, offsets with lag' },
    errors: [400, 404],
  },
  registerConsumer: {
    body: {
      type: 'object',
      required: ['consumer_id', 'topics'],
      properties: {
        consumer_id: { type: 'string' },
        topics: { type: 'array', items: { type: 'string' } },
        session_timeout_ms: { type: 'integer' },
        assignor: { enum: ['range', 'roundrobin', 'sticky'] },
      },
    },
    success: { '200': '{"group","generation","member_id","assignments","session_timeout_ms"}' },
    errors: [400, 404, 409],
  },
  heartbeat: {
    body: member,
    success: { '200': '{"generation","rebalance","assignments"}' },
    errors: [400, 404],
  },
  leaveGroup: { body: member, success: { '200': 'left' }, errors: [400, 404] },
  commitOffset: { body: commitBody, success: { '200': 'committed, durable' }, errors: [400, 404, 409, 416] },
  commitOffsetSeed: {
    body: commitBody,
    success: { '200': 'committed, durable' },
    errors: [400, 404, 409, 416],
  },
  fetchOffset: {
    success: { '200': '{"group","topic","partition","offset","metadata"}' },
    errors: [400, 404],
  },
  fetchTopicOffsets: {
    success: { '200': '{"group","topic","offsets": [{"partition","offset","lag"}]}' },
    errors: [400, 404],
  },
  health: { success: { '200': 'serving' } },
  clusterStatus: { success: { '200': 'node id, Raft leader and term, members' } },
  metrics: { success: { '200': 'Prometheus text exposition' } },
  assignmentPlan: {
    success: {
      '200':
        '{"brokers","live_brokers","current":[{"topic","partition","replicas","leader"}],"proposed":[{"topic","partition","from","to"}],"moves":[{"topic","partition","from","to","adding":[{"broker","in_isr","records_behind"}],"elapsed_ms"}]}',
    },
  },
  reassignPartitions: {
    body: {
      type: 'object',
      required: ['partitions'],
      properties: {
        partitions: {
          type: 'array',
          items: {
            type: 'object',
            required: ['topic', 'partition', 'replicas'],
            properties: {
              topic: { type: 'string' },
              partition: { type: 'integer', minimum: 0 },
              replicas: { type: 'array', items: { type: 'string' } },
            },
          },
        },
        dry_run: { type: 'boolean' },
      },
    },
    success: {
      '202':
        '{"dry_run": false,"moves":[{"topic","partition","from","to"}],"refused":[]}: every move started',
      '200': 'a dry run, or some moves refused (each with its reason)',
    },
    errors: [400, 404],
  },
  cancelReassignments: {
    success: { '200': '{"cancelled":[{"topic","partition"}],"refused":[{"topic","partition","reason"}]}' },
    errors: [400],
  },
  rebalance: {
    body: { type: 'object', properties: { dry_run: { type: 'boolean' } } },
    success: { '202': 'the moves started', '200': 'a dry run, nothing to move, or some moves refused' },
    errors: [400, 409],
  },
  decommissionBroker: {
    body: { type: 'object', properties: { dry_run: { type: 'boolean' } } },
    success: { '202': 'the moves started', '200': 'a dry run, nothing to move, or some moves refused' },
    errors: [400, 404, 409],
  },
  electPreferredLeaders: {
    success: {
      '202':
        '{"requested": true, "not_preferred": [{"topic","partition","leader","preferred"}]}: asked of the controller',
    },
  },
  workerPlacement: {
    success: {
      '200':
        '{"node","workers":[{"worker","partitions","led_partitions","overrides","bytes_per_s","requests_per_s","load","appended_bytes_per_s","appended_bytes","appended_records","open_logs","queued_sends"}],"partitions":[{"topic","partition","worker","hashed_worker","leader","moving","bytes_per_s","requests_per_s"}],"balancer":{"interval_ms","tolerance_percent","moves_max","request_cost_bytes","moves_done","moving","last_round"}}',
    },
  },
  balanceWorkers: {
    success: {
      '200':
        '{"reason","loads_before","loads_after","moves":[{"topic","partition","from","to","cost"}],"moved","refused"}: the round ran (reason: balanced, idle, no_gain, moves_max, single_worker)',
    },
    errors: [409],
  },
  moveWorkerPartition: {
    body: {
      type: 'object',
      required: ['topic', 'partition', 'worker'],
      properties: {
        topic: { type: 'string' },
        partition: { type: 'integer', minimum: 0 },
        worker: { type: 'integer', minimum: 0 },
      },
    },
    success: {
      '200':
        '{"topic","partition","from","to","took_ms"}: moved; its requests waited in the acceptor meanwhile',
    },
    errors: [400, 404, 409],
  },
  decommissionStatus: {
    success: { '200': '{"broker","replicas","moving_away","empty","partitions"}' },
    errors: [404],
  },
  openapi: { success: { '200': 'this document' } },
  listTopics: { success: { '200': '{"topics": [names], "count": n}' } },
  createTopicByQuery: {
    query: [{ name: 'name', description: 'topic name', schema: { type: 'string' } }],
    body: { $ref: '#/components/schemas/TopicCreate' },
    success: { '200': 'exists with the same settings', '201': 'created' },
    errors: [400, 409],
  },
  createTopic: {
    body: { $ref: '#/components/schemas/TopicCreate' },
    success: { '200': 'exists with the same settings', '201': 'created' },
    errors: [400, 409],
  },
  createProducer: {
    success: { '201': '{"producer_id","producer_epoch"}: send them as Producer-Id and Producer-Epoch' },
    errors: [503],
  },
  getTopic: { success: { '200': 'topic configuration and partitions' }, errors: [400, 404] },
  deleteTopic: { success: { '200': 'deleted with its data' }, errors: [400, 404] },
  produce: {
    query: [acks],
    body: record,
    success: {
      '201': '{"topic","partition","offset","timestamp"}',
      '202': 'acks=0: handed over, offset null',
    },
    errors: [400, 404, 413, 415],
  },
  produceBatch: {
    query: [
      acks,
      {
        name: 'partition',
        description:
          'the partition of an application/vnd.kafka.record-batch body (required with it); JSON and NDJSON records carry their own partition field instead',
        schema: { type: 'integer', minimum: 0 },
      },
    ],
    body: {
      type: 'object',
      required: ['records'],
      properties: { records: { type: 'array', items: record } },
    },
    otherBodies: {
      'application/x-ndjson': {
        type: 'string',
        description:
          'one record object per line (the fields of a JSON record above), LF or CRLF; blank lines skipped; an error names its 1-based line',
      },
      'application/vnd.kafka.record-batch': {
        type: 'string',
        format: 'binary',
        description:
          'one or more Kafka magic-2 record batches back to back, as a Kafka producer encodes them: CRC-32C, uncompressed (compressed: 415), not transactional; producer id, epoch and base sequence in the batch header make it idempotent (acks=all); offsets are assigned by the broker. Needs ?partition=N. A bad length, CRC, magic or record count is 400 and nothing is written',
      },
    },
    success: {
      '200': '{"offsets": [{"partition","offset","error_code","error"}]} in request order',
      '202': 'acks=0',
    },
    errors: [400, 404, 409, 413, 415],
  },
  partitionInfo: { success: { '200': 'leader, replicas, isr, offsets, size, segments' }, errors: [400, 404] },
  consume: {
    query: [
      {
        name: 'offset',
        description: "first offset, or 'earliest' (default) / 'latest'",
        schema: { type: 'string' },
      },
      { name: 'limit', description: 'records at most (1..1000, default 100)', schema: { type: 'integer' } },
      { name: 'max_bytes', description: 'batch bytes at most (default 1 MiB)', schema: { type: 'integer' } },
      {
        name: 'wait_ms',
        description: 'long poll: wait this long for data when none is there',
        schema: { type: 'integer' },
      },
      {
        name: 'isolation',
        description: 'read_uncommitted (default) or read_committed',
        schema: { type: 'string' },
      },
      { name: 'value_format', description: "'string' (default) or 'base64'", schema: { type: 'string' } },
    ],
    success: { '200': '{"messages", "count", "next_offset", "high_watermark"}' },
    errors: [400, 404, 416],
  },
};

export function openApiDocument(routes: readonly Route[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const details = operationDetails[route.operationId];
    if (details === undefined) throw new Error(`route ${route.operationId} has no OpenAPI details`);
    const path = route.pattern.replace(/:([a-zA-Z_]+)/g, '{$1}');
    const pathParams = [...route.pattern.matchAll(/:([a-zA-Z_]+)/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema:
        m[1] === 'partition'
          ? { type: 'integer', minimum: 0 }
          : { type: 'string', pattern: '^[a-zA-Z0-9._-]{1,249}$' },
    }));
    const responses: Record<string, unknown> = {};
    for (const [status, description] of Object.entries(details.success)) responses[status] = { description };
    // Every route but /health (and /metrics by default) needs credentials once authentication is on.
    const access = accessOf(route.operationId);
    const guarded = access !== undefined && access.kind !== 'open';
    for (const status of [...(details.errors ?? []), ...(guarded ? [401, 403] : []), 503]) {
      responses[String(status)] = {
        description: 'error',
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
      };
    }
    const operation: Record<string, unknown> = {
      operationId: route.operationId,
      summary: route.summary,
      parameters: [
        ...pathParams,
        ...(details.query ?? []).map((q) => ({
          name: q.name,
          in: 'query',
          description: q.description,
          schema: q.schema,
        })),
      ],
      responses,
      ...(guarded ? { security: [{ bearer: [] }] } : {}),
    };
    if (details.body !== undefined) {
      operation.requestBody = {
        required: route.operationId.startsWith('produce'),
        content: {
          'application/json': { schema: details.body },
          ...Object.fromEntries(
            Object.entries(details.otherBodies ?? {}).map(([type, schema]) => [type, { schema }]),
          ),
        },
      };
    }
    paths[path] ??= {};
    paths[path]![route.method] = operation;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'logbroker HTTP API', version },
    paths,
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description:
            'A token of --auth-tokens-file or a JWT (--auth-jwt-*), when authentication is on; WebSocket clients may pass ?token= instead',
        },
      },
      schemas: {
        Error: {
          type: 'object',
          required: ['error_code', 'message'],
          properties: {
            error_code: { type: 'integer', enum: errorNames.map((n) => errors[n].code) },
            message: { type: 'string' },
            indefinite: { type: 'boolean' },
          },
        },
        TopicCreate: {
          type: 'object',
          properties: {
            num_partitions: { type: 'integer', minimum: 1 },
            replication_factor: { type: 'integer', minimum: 1 },
            rack_awareness: { type: 'boolean' },
            config: {
              type: 'object',
              properties: {
                retention_ms: { type: 'integer', minimum: -1 },
                retention_bytes: { type: 'integer', minimum: -1 },
                segment_bytes: { type: 'integer' },
                min_insync_replicas: { type: 'integer', minimum: 1 },
                cleanup_policy: { enum: ['delete'] },
              },
              additionalProperties: false,
            },
          },
          additionalProperties: false,
        },
      },
    },
  };
}
