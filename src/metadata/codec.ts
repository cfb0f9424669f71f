// Wire and disk encodings of cluster metadata: the commands carried by Raft entries, the state machine's image
// carried by Raft snapshots, and the admin requests a node forwards to the Raft leader with their replies. Every
// schema is registered here and nowhere else, each behind one version byte.
//
//   offset  size  field
//   0       1     METADATA_WIRE_VERSION
//   1       n     Avro binary: a command is a union with one record per command kind (the branch index names
//                 the kind); an image, an admin request and an admin reply are one record each
//
// Versions: 2 is written. Commands and images of version 1 (written before replication: no partition epoch,
// topic sequence, unclean-election setting, shutting-down flag or data ports) are still read, because a Raft
// log outlives upgrades; they are upgraded on decode to what version 1 meant: a partition epoch equal to the
// leader epoch, no unclean elections, brokers not shutting down, topic sequence numbers in image order.
// Images are written at version 3 (version 2 plus the partition moves in progress); version 2 images read as
// having none. Commands added after version 2 was first written (partition moves) are appended to its union,
// so the branch index of every earlier command is unchanged. Images are written at version 4 since ACLs
// (version 3 plus the ACL bindings); version 3 images read as having none. The ACL commands (create_acls,
// delete_acls) are appended to the command union the same way. An ACL filter travels with '' for "any".
// Brokers advertise their Kafka port since image version 5 (version 4 plus BrokerRegistration.kafkaPort;
// earlier images read as brokers with none, 0) and the command branch register_broker_v3, appended to the
// union: a registration without a Kafka port is still written as register_broker, and an image whose brokers
// have none still as version 4, both of which older nodes read.
//
// Invariants: decoders never throw on bad bytes (an entry or frame from the network is untrusted input): they
// return `{ ok: false, ... }`. Integers stay below 2^52 as in the Raft codec. A decoded value is plain data
// (arrays, strings, numbers), safe to post to another thread.
// Pure functions over module-level immutable types: callable from any thread.
import type avro from 'avsc';
import type {
  CommittedOffset,
  IsrChange,
  MetadataCommand,
  MetadataImage,
  ReassignChange,
} from '../core/metadata/state-machine.js';
import type { AclBinding, AclFilter } from '../core/security/acl.js';
import {
  arrayOf,
  type DecodeFailure,
  decodeVersioned,
  encodeVersioned,
  field,
  forUntrustedSchema,
  record,
} from '../wire/avsc-bounded.js';
import type { BrokerRegistration, CreateTopicRequest, TopicConfigChanges, TopicMetadata } from './types.js';

export const METADATA_WIRE_VERSION = 2;
const METADATA_WIRE_VERSION_V1 = 1;

const topicConfigChangesSchema = record('TopicConfigChanges', [
  field('retentionMs', ['null', 'long']),
  field('retentionBytes', ['null', 'long']),
  field('minInsyncReplicas', ['null', 'int']),
]);
/**
 * A config change that also sets the segment size. A separate branch (`alter_topic_config_v2`), because a field
 * added to TopicConfigChanges would break the decoding of changes already in logs; a change without a segment
 * size is still written as `alter_topic_config`, which older nodes read.
 */
const topicConfigChangesV2Schema = record('TopicConfigChangesV2', [
  field('retentionMs', ['null', 'long']),
  field('retentionBytes', ['null', 'long']),
  field('minInsyncReplicas', ['null', 'int']),
  field('segmentBytes', ['null', 'long']),
]);

const configFieldsV1 = [
  field('retentionMs', 'long'),
  field('retentionBytes', 'long'),
  field('segmentBytes', 'long'),
  field('minInsyncReplicas', 'int'),
  field('cleanupPolicy', { type: 'enum', name: 'CleanupPolicy', symbols: ['delete', 'compact'] }),
];
const topicConfigSchema = record('TopicConfig', [
  ...configFieldsV1,
  field('uncleanLeaderElection', 'boolean'),
]);
const topicConfigSchemaV1 = record('TopicConfig', configFieldsV1);

const partitionFieldsV1 = [
  field('partition', 'int'),
  field('leader', 'string'),
  field('leaderEpoch', 'long'),
  field('replicas', arrayOf('string')),
  field('isr', arrayOf('string')),
];

function topicSchemaOf(version: 1 | 2) {
  return record('TopicMetadata', [
    field('name', 'string'),
    ...(version === 2 ? [field('topicSeq', 'long')] : []),
    field('topicId', 'string'),
    field('numPartitions', 'int'),
    field('replicationFactor', 'int'),
    field('rackAwareness', 'boolean'),
    field('config', version === 2 ? topicConfigSchema : topicConfigSchemaV1),
    field(
      'partitions',
      arrayOf(
        record(
          'PartitionAssignment',
          version === 2 ? [...partitionFieldsV1, field('partitionEpoch', 'long')] : partitionFieldsV1,
        ),
      ),
    ),
    field('createdAtMs', 'long'),
  ]);
}

const brokerFieldsV1 = [
  field('id', 'string'),
  field('httpHost', 'string'),
  field('httpPort', 'int'),
  field('clusterHost', 'string'),
  field('clusterPort', 'int'),
  field('rack', 'string'),
  field('version', 'string'),
  field('fenced', 'boolean'),
  field('registeredAtMs', 'long'),
];
function brokerSchemaOf(version: 1 | 2 | 3) {
  const fieldsV2 = [...brokerFieldsV1, field('shuttingDown', 'boolean'), field('dataPorts', arrayOf('int'))];
  // Version 3 has its own record name: the command union declares it beside version 2's.
  if (version === 3) return record('BrokerRegistrationV3', [...fieldsV2, field('kafkaPort', 'int')]);
  return record('BrokerRegistration', version === 2 ? fieldsV2 : brokerFieldsV1);
}
const topicSchema = topicSchemaOf(2);

const offsetSchema = record('CommittedOffset', [
  field('topic', 'string'),
  field('partition', 'int'),
  field('offset', 'long'),
  field('metadata', 'string'),
  field('committedAtMs', 'long'),
]);

const electionSchema = record('LeaderElection', [
  field('topicId', 'string'),
  field('topic', 'string'),
  field('partition', 'int'),
  field('expectedPartitionEpoch', 'long'),
  field('leader', 'string'),
  field('isr', arrayOf('string')),
  field('unclean', 'boolean'),
]);
const isrChangeSchema = record('IsrChange', [
  field('topicId', 'string'),
  field('topic', 'string'),
  field('partition', 'int'),
  field('leader', 'string'),
  field('leaderEpoch', 'long'),
  field('partitionEpoch', 'long'),
  field('isr', arrayOf('string')),
]);

const reassignChangeSchema = record('ReassignChange', [
  field('topicId', 'string'),
  field('topic', 'string'),
  field('partition', 'int'),
  field('target', arrayOf('string')),
]);
const finishReassignmentSchema = record('FinishReassignment', [
  field('topicId', 'string'),
  field('topic', 'string'),
  field('partition', 'int'),
  field('expectedPartitionEpoch', 'long'),
]);
const reassignmentSchema = record('Reassignment', [
  field('topicId', 'string'),
  field('topic', 'string'),
  field('partition', 'int'),
  field('target', arrayOf('string')),
  field('original', arrayOf('string')),
  field('startedAtMs', 'long'),
]);

const aclBindingSchema = record('AclBinding', [
  field('principal', 'string'),
  field('resourceType', 'string'),
  field('patternType', 'string'),
  field('resourceName', 'string'),
  field('operation', 'string'),
  field('permission', 'string'),
]);
/** A filter on the wire: each field '' for any value. */
const aclFilterSchema = record('AclFilter', [
  field('principal', 'string'),
  field('resourceType', 'string'),
  field('patternType', 'string'),
  field('resourceName', 'string'),
  field('operation', 'string'),
  field('permission', 'string'),
]);
const aclFilterFields = [
  'principal',
  'resourceType',
  'patternType',
  'resourceName',
  'operation',
  'permission',
] as const;

function wireFilter(filter: AclFilter): Record<string, string> {
  return Object.fromEntries(aclFilterFields.map((f) => [f, filter[f] ?? '']));
}

function plainFilter(raw: Record<string, unknown>): AclFilter {
  const out: Record<string, string> = {};
  for (const f of aclFilterFields) if (typeof raw[f] === 'string' && raw[f] !== '') out[f] = raw[f] as string;
  return out as AclFilter;
}

function commandTypeOf(version: 1 | 2): avro.Type {
  const commands =
    version === 2
      ? [
          record('register_broker', [field('broker', brokerSchemaOf(2))]),
          record('fence_broker', [field('brokerId', 'string'), field('fenced', 'boolean')]),
          record('unregister_broker', [field('brokerId', 'string')]),
          record('create_topic', [field('topic', 'TopicMetadata')]),
          record('delete_topic', [field('name', 'string')]),
          record('commit_offsets', [field('group', 'string'), field('offsets', arrayOf('CommittedOffset'))]),
          record('delete_group', [field('group', 'string')]),
          record('set_broker_shutting_down', [field('brokerId', 'string'), field('shuttingDown', 'boolean')]),
          record('elect_leaders', [field('elections', arrayOf(electionSchema))]),
          record('alter_isr', [field('changes', arrayOf(isrChangeSchema))]),
          record('alter_topic_config', [
            field('name', 'string'),
            field('topicId', 'string'),
            field('changes', topicConfigChangesSchema),
          ]),
          record('allocate_producer_id', []),
          // Appended after version 2 was first written: the branch indices above never change.
          record('reassign_partitions', [
            field('changes', arrayOf(reassignChangeSchema)),
            field('nowMs', 'long'),
          ]),
          record('finish_reassignments', [field('changes', arrayOf(finishReassignmentSchema))]),
          record('add_partitions', [
            field('name', 'string'),
            field('topicId', 'string'),
            field('partitions', arrayOf('PartitionAssignment')),
          ]),
          record('create_acls', [field('acls', arrayOf(aclBindingSchema))]),
          record('delete_acls', [field('filter', aclFilterSchema)]),
          record('alter_topic_config_v2', [
            field('name', 'string'),
            field('topicId', 'string'),
            field('changes', topicConfigChangesV2Schema),
          ]),
          record('register_broker_v3', [field('broker', brokerSchemaOf(3))]),
        ]
      : [
          record('register_broker', [field('broker', brokerSchemaOf(1))]),
          record('fence_broker', [field('brokerId', 'string'), field('fenced', 'boolean')]),
          record('unregister_broker', [field('brokerId', 'string')]),
          record('create_topic', [field('topic', 'TopicMetadata')]),
          record('delete_topic', [field('name', 'string')]),
          record('change_partition_leader', [
            field('topicId', 'string'),
            field('topic', 'string'),
            field('partition', 'int'),
            field('expectedLeaderEpoch', 'long'),
            field('leader', 'string'),
            field('isr', arrayOf('string')),
          ]),
          record('commit_offsets', [field('group', 'string'), field('offsets', arrayOf('CommittedOffset'))]),
          record('delete_group', [field('group', 'string')]),
        ];
  // The named records are declared once, in the first schema that uses them; later schemas refer by name.
  return forUntrustedSchema([
    record('schemas', [field('topic', topicSchemaOf(version)), field('offset', offsetSchema)]),
    ...commands,
  ]);
}
const commandType = commandTypeOf(2);
const commandTypeV1 = commandTypeOf(1);

function imageTypeOf(version: 1 | 2 | 3 | 4 | 5): avro.Type {
  const fieldsVersion = version === 1 ? 1 : 2;
  return forUntrustedSchema(
    record('MetadataImage', [
      field('appliedIndex', 'long'),
      ...(version >= 2 ? [field('nextTopicSeq', 'long')] : []),
      field('brokers', arrayOf(brokerSchemaOf(version >= 5 ? 3 : fieldsVersion))),
      field('topics', arrayOf(topicSchemaOf(fieldsVersion))),
      field(
        'groups',
        arrayOf(record('GroupOffsets', [field('group', 'string'), field('offsets', arrayOf(offsetSchema))])),
      ),
      ...(version >= 3 ? [field('reassignments', arrayOf(reassignmentSchema))] : []),
      ...(version >= 4 ? [field('acls', arrayOf(aclBindingSchema))] : []),
    ]),
  );
}
/**
 * Images (snapshots) are written at version 5: version 2 plus the moves in progress (3), the ACLs (4) and the
 * brokers' Kafka ports (5).
 */
const IMAGE_WIRE_VERSION = 5;
const IMAGE_WIRE_VERSION_V4 = 4;
const IMAGE_WIRE_VERSION_V3 = 3;
const imageType = imageTypeOf(5);
const imageTypeV4 = imageTypeOf(4);
const imageTypeV3 = imageTypeOf(3);
const imageTypeV2 = imageTypeOf(2);
const imageTypeV1 = imageTypeOf(1);

/** What a node forwards to the Raft leader on behalf of a client. */
export type AdminRequest =
  | { readonly kind: 'create_topic'; readonly request: CreateTopicRequest; readonly nowMs: number }
  | { readonly kind: 'delete_topic'; readonly name: string }
  | { readonly kind: 'commit_offsets'; readonly group: string; readonly offsets: readonly CommittedOffset[] }
  | { readonly kind: 'alter_topic_config'; readonly name: string; readonly changes: TopicConfigChanges }
  /** From a partition leader (through its node): Kafka's AlterPartition. */
  | { readonly kind: 'alter_isr'; readonly changes: readonly IsrChange[] }
  | { readonly kind: 'set_broker_shutting_down'; readonly brokerId: string; readonly shuttingDown: boolean }
  | { readonly kind: 'allocate_producer_id' }
  | {
      readonly kind: 'reassign_partitions';
      readonly changes: readonly ReassignChange[];
      readonly nowMs: number;
    }
  | { readonly kind: 'elect_preferred_leaders' }
  | { readonly kind: 'add_partitions'; readonly name: string; readonly count: number }
  | { readonly kind: 'create_acls'; readonly acls: readonly AclBinding[] }
  | { readonly kind: 'delete_acls'; readonly filter: AclFilter };

/**
 * The leader's answer. `index` is the Raft index the change was applied at (0 when nothing was proposed), so
 * the forwarding node can wait until it has applied that far itself before answering its client.
 */
export interface AdminReply {
  // ACL changes (acls_created, acls_deleted) carry the bindings created or deleted as JSON in `reason`: the
  // reply's schema is unchanged, so nodes of the version before ACLs still read every reply.
  readonly kind: string;
  readonly index: number;
  readonly topic: TopicMetadata | null;
  readonly reason: string;
  readonly leaderId: string;
  /** For batched partition changes (alter_isr): per change, '' when applied, else why it was refused. */
  readonly refusals?: readonly string[];
}

const adminRequestType: avro.Type = forUntrustedSchema([
  record('create_topic', [
    field(
      'request',
      record('CreateTopicRequest', [
        field('name', 'string'),
        field('numPartitions', 'int'),
        field('replicationFactor', 'int'),
        field('rackAwareness', 'boolean'),
        field('config', topicConfigSchema),
        field('replicationFactorDefaulted', 'boolean'),
        field('minInsyncDefaulted', 'boolean'),
      ]),
    ),
    field('nowMs', 'long'),
  ]),
  record('delete_topic', [field('name', 'string')]),
  record('commit_offsets', [field('group', 'string'), field('offsets', arrayOf(offsetSchema))]),
  record('alter_topic_config', [field('name', 'string'), field('changes', topicConfigChangesSchema)]),
  record('alter_isr', [field('changes', arrayOf(isrChangeSchema))]),
  record('set_broker_shutting_down', [field('brokerId', 'string'), field('shuttingDown', 'boolean')]),
  record('allocate_producer_id', []),
  record('reassign_partitions', [field('changes', arrayOf(reassignChangeSchema)), field('nowMs', 'long')]),
  record('elect_preferred_leaders', []),
  record('add_partitions', [field('name', 'string'), field('count', 'int')]),
  record('create_acls', [field('acls', arrayOf(aclBindingSchema))]),
  record('delete_acls', [field('filter', aclFilterSchema)]),
  record('alter_topic_config_v2', [field('name', 'string'), field('changes', topicConfigChangesV2Schema)]),
]);

const adminReplyType: avro.Type = forUntrustedSchema(
  record('AdminReply', [
    field('kind', 'string'),
    field('index', 'long'),
    field('topic', ['null', topicSchema]),
    field('reason', 'string'),
    field('leaderId', 'string'),
    field('refusals', arrayOf('string')),
  ]),
);

export type Decoded<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly reason: DecodeFailure; readonly detail: string };

/** Avro's decoded records carry their schema's prototype; posting to a thread wants plain values. */
function plain<T>(value: unknown): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function decodeWith<T>(
  bytes: Uint8Array,
  type: avro.Type,
  convert: (raw: unknown) => T,
  version: number = METADATA_WIRE_VERSION,
): Decoded<T> {
  const decoded = decodeVersioned(bytes, version, type);
  if (!decoded.ok) return decoded;
  try {
    return { ok: true, value: convert(decoded.raw) };
  } catch (error) {
    return {
      ok: false,
      reason: 'invalid_field',
      detail: error instanceof Error ? error.message : String(error),
    };
  }
}

function unwrapUnion(raw: unknown): { kind: string; body: Record<string, unknown> } {
  const entries = Object.entries(raw as Record<string, unknown>);
  if (entries.length !== 1) throw new Error('union value without exactly one branch');
  const [name, body] = entries[0]!;
  return { kind: name.replace(/^.*\./, ''), body: body as Record<string, unknown> };
}

/** Avro's nullable fields decode as `{long: n}` or null; the changes carry plain numbers. */
function plainChanges(raw: Record<string, unknown>): TopicConfigChanges {
  const value = (v: unknown): number | null =>
    v === null || v === undefined ? null : (Object.values(v as Record<string, number>)[0] ?? null);
  return {
    retentionMs: value(raw.retentionMs),
    retentionBytes: value(raw.retentionBytes),
    minInsyncReplicas: value(raw.minInsyncReplicas),
    segmentBytes: value(raw.segmentBytes),
  };
}

function wrapChanges(changes: TopicConfigChanges): Record<string, unknown> {
  const wrap = (v: number | null, type: 'long' | 'int') => (v === null ? null : { [type]: v });
  const wrapped: Record<string, unknown> = {
    retentionMs: wrap(changes.retentionMs, 'long'),
    retentionBytes: wrap(changes.retentionBytes, 'long'),
    minInsyncReplicas: wrap(changes.minInsyncReplicas, 'int'),
  };
  if (changes.segmentBytes !== null) wrapped.segmentBytes = wrap(changes.segmentBytes, 'long');
  return wrapped;
}

/** The union branch of a config change: the old one unless it sets the segment size (see the V2 schema). */
function alterBranch(changes: TopicConfigChanges): 'alter_topic_config' | 'alter_topic_config_v2' {
  return changes.segmentBytes === null ? 'alter_topic_config' : 'alter_topic_config_v2';
}

/** Version 2 of a registration: without the Kafka port. */
function brokerV2(broker: BrokerRegistration): Omit<BrokerRegistration, 'kafkaPort'> {
  const { kafkaPort: _kafkaPort, ...rest } = broker;
  return rest;
}

export function encodeCommand(command: MetadataCommand): Buffer {
  const { kind: commandKind, ...fields } = command;
  const kind =
    command.kind === 'alter_topic_config'
      ? alterBranch(command.changes)
      : command.kind === 'register_broker' && command.broker.kafkaPort !== 0
        ? 'register_broker_v3'
        : commandKind;
  const body =
    command.kind === 'alter_topic_config'
      ? { ...fields, changes: wrapChanges(command.changes) }
      : command.kind === 'delete_acls'
        ? { filter: wireFilter(command.filter) }
        : kind === 'register_broker' && command.kind === 'register_broker'
          ? { broker: brokerV2(command.broker) }
          : fields;
  return encodeVersioned(METADATA_WIRE_VERSION, commandType, { [kind]: body });
}

export function decodeCommand(bytes: Uint8Array): Decoded<MetadataCommand> {
  if (bytes[0] === METADATA_WIRE_VERSION_V1) {
    return decodeWith(
      bytes,
      commandTypeV1,
      (raw) => {
        const { kind, body } = unwrapUnion(raw);
        if (kind === 'schemas') throw new Error('the schema carrier is not a command');
        return upgradeCommandV1(plain<Record<string, unknown>>({ kind, ...body }));
      },
      METADATA_WIRE_VERSION_V1,
    );
  }
  return decodeWith(bytes, commandType, (raw) => {
    const { kind, body } = unwrapUnion(raw);
    if (kind === 'schemas') throw new Error('the schema carrier is not a command');
    if (kind === 'alter_topic_config' || kind === 'alter_topic_config_v2') {
      body.changes = plainChanges(body.changes as Record<string, unknown>);
      return plain<MetadataCommand>({ kind: 'alter_topic_config', ...body });
    }
    if (kind === 'delete_acls') body.filter = plainFilter(body.filter as Record<string, unknown>);
    if (kind === 'register_broker') {
      return plain<MetadataCommand>({ kind, broker: { ...(body.broker as V1), kafkaPort: 0 } });
    }
    if (kind === 'register_broker_v3') return plain<MetadataCommand>({ kind: 'register_broker', ...body });
    return plain<MetadataCommand>({ kind, ...body });
  });
}

/** Brokers of images before version 5 advertised no Kafka port. */
function withoutKafkaPorts(image: MetadataImage): MetadataImage {
  return { ...image, brokers: image.brokers.map((b) => ({ ...b, kafkaPort: 0 })) };
}

type V1 = Record<string, unknown>;

function upgradeTopicV1(t: V1, topicSeq: number): TopicMetadata {
  const partitions = (t.partitions as V1[]).map((p) => ({ ...p, partitionEpoch: p.leaderEpoch }));
  const config = { ...(t.config as V1), uncleanLeaderElection: false };
  return { ...t, topicSeq, config, partitions } as unknown as TopicMetadata;
}

function upgradeBrokerV1(b: V1): BrokerRegistration {
  return { ...b, shuttingDown: false, dataPorts: [], kafkaPort: 0 } as unknown as BrokerRegistration;
}

function upgradeCommandV1(c: V1): MetadataCommand {
  switch (c.kind) {
    case 'register_broker':
      return { kind: 'register_broker', broker: upgradeBrokerV1(c.broker as V1) };
    case 'create_topic':
      // The state machine assigns the sequence number when it applies the creation.
      return { kind: 'create_topic', topic: upgradeTopicV1(c.topic as V1, 0) };
    case 'change_partition_leader':
      return {
        kind: 'elect_leaders',
        elections: [
          {
            topicId: c.topicId as string,
            topic: c.topic as string,
            partition: c.partition as number,
            expectedPartitionEpoch: c.expectedLeaderEpoch as number,
            leader: c.leader as string,
            isr: c.isr as string[],
            unclean: false,
          },
        ],
      };
    default:
      return c as unknown as MetadataCommand;
  }
}

/**
 * Version 5 only when a broker has a Kafka port: without one, version 4 says the same (it reads back with none),
 * and nodes of builds before the Kafka port read it. So a cluster upgraded with `--kafka-port -1` stays
 * readable by its old nodes, snapshots included, until the port is turned on.
 */
export function encodeImage(image: MetadataImage): Buffer {
  if (image.brokers.every((b) => b.kafkaPort === 0)) {
    return encodeVersioned(IMAGE_WIRE_VERSION_V4, imageTypeV4, image);
  }
  return encodeVersioned(IMAGE_WIRE_VERSION, imageType, image);
}

export function decodeImage(bytes: Uint8Array): Decoded<MetadataImage> {
  if (bytes[0] === METADATA_WIRE_VERSION_V1) {
    return decodeWith(
      bytes,
      imageTypeV1,
      (raw) => {
        const image = plain<V1>(raw);
        const topics = (image.topics as V1[]).map((t, i) => upgradeTopicV1(t, i + 1));
        return {
          ...(image as unknown as MetadataImage),
          nextTopicSeq: topics.length + 1,
          brokers: (image.brokers as V1[]).map(upgradeBrokerV1),
          topics,
          reassignments: [],
          acls: [],
        };
      },
      METADATA_WIRE_VERSION_V1,
    );
  }
  if (bytes[0] === METADATA_WIRE_VERSION) {
    return decodeWith(bytes, imageTypeV2, (raw) =>
      withoutKafkaPorts({
        ...plain<MetadataImage>(raw),
        reassignments: [],
        acls: [],
      }),
    );
  }
  if (bytes[0] === IMAGE_WIRE_VERSION_V3) {
    return decodeWith(
      bytes,
      imageTypeV3,
      (raw) => withoutKafkaPorts({ ...plain<MetadataImage>(raw), acls: [] }),
      IMAGE_WIRE_VERSION_V3,
    );
  }
  if (bytes[0] === IMAGE_WIRE_VERSION_V4) {
    return decodeWith(
      bytes,
      imageTypeV4,
      (raw) => withoutKafkaPorts(plain<MetadataImage>(raw)),
      IMAGE_WIRE_VERSION_V4,
    );
  }
  return decodeWith(bytes, imageType, (raw) => plain<MetadataImage>(raw), IMAGE_WIRE_VERSION);
}

export function encodeAdminRequest(request: AdminRequest): Buffer {
  const { kind: requestKind, ...fields } = request;
  const kind = request.kind === 'alter_topic_config' ? alterBranch(request.changes) : requestKind;
  const body =
    request.kind === 'alter_topic_config'
      ? { ...fields, changes: wrapChanges(request.changes) }
      : request.kind === 'delete_acls'
        ? { filter: wireFilter(request.filter) }
        : fields;
  return encodeVersioned(METADATA_WIRE_VERSION, adminRequestType, { [kind]: body });
}

export function decodeAdminRequest(bytes: Uint8Array): Decoded<AdminRequest> {
  return decodeWith(bytes, adminRequestType, (raw) => {
    const { kind, body } = unwrapUnion(raw);
    if (kind === 'alter_topic_config' || kind === 'alter_topic_config_v2') {
      body.changes = plainChanges(body.changes as Record<string, unknown>);
      return plain<AdminRequest>({ kind: 'alter_topic_config', ...body });
    }
    if (kind === 'delete_acls') body.filter = plainFilter(body.filter as Record<string, unknown>);
    return plain<AdminRequest>({ kind, ...body });
  });
}

export function encodeAdminReply(reply: AdminReply): Buffer {
  return encodeVersioned(METADATA_WIRE_VERSION, adminReplyType, {
    ...reply,
    refusals: reply.refusals ?? [],
    topic: reply.topic === null ? null : { TopicMetadata: reply.topic },
  });
}

export function decodeAdminReply(bytes: Uint8Array): Decoded<AdminReply> {
  return decodeWith(bytes, adminReplyType, (raw) => {
    const r = raw as Omit<AdminReply, 'topic'> & { topic: null | Record<string, unknown> };
    const topic = r.topic === null ? null : (unwrapUnion(r.topic).body as unknown as TopicMetadata);
    return plain<AdminReply>({ ...r, topic });
  });
}

export type { BrokerRegistration };
