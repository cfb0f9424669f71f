// Wire and disk encodings of cluster metadata: the commands carried by Raft entries, the state machine's image
// carried by Raft snapshots, and the admin requests a node forwards to the Raft leader with their replies. Every
// schema is registered here and nowhere else, each behind one version byte.
//
//   offset  size  field
//   0       1     wire version: 1, or 2 for the kinds version 1 lacks (alter_topic_config)
//   1       n     Avro binary: a command is a union with one record per command kind (the branch index names
//                 the kind); an image, an admin request and an admin reply are one record each
//
// Versions: version 2 only appends union branches to version 1, so a version-1 entry decodes with the version-2
// schema unchanged. Each value is written with the lowest version that holds it: a node of the previous release
// keeps applying every entry until an alter_topic_config is proposed, which it refuses as an unknown version.
//
// Invariants: decoders never throw on bad bytes (an entry or frame from the network is untrusted input): they
// return `{ ok: false, ... }`. Integers stay below 2^52 as in the Raft codec. A decoded value is plain data
// (arrays, strings, numbers), safe to post to another thread.
// Pure functions over module-level immutable types: callable from any thread.
import type avro from 'avsc';
import type { CommittedOffset, MetadataCommand, MetadataImage } from '../core/metadata/state-machine.js';
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
/** Kinds that exist only from version 2 on; everything else is written as version 1. */
const version2Kinds: ReadonlySet<string> = new Set(['alter_topic_config']);

const topicConfigChangesSchema = record('TopicConfigChanges', [
  field('retentionMs', ['null', 'long']),
  field('retentionBytes', ['null', 'long']),
  field('minInsyncReplicas', ['null', 'int']),
]);

const topicConfigSchema = record('TopicConfig', [
  field('retentionMs', 'long'),
  field('retentionBytes', 'long'),
  field('segmentBytes', 'long'),
  field('minInsyncReplicas', 'int'),
  field('cleanupPolicy', { type: 'enum', name: 'CleanupPolicy', symbols: ['delete', 'compact'] }),
]);

const topicSchema = record('TopicMetadata', [
  field('name', 'string'),
  field('topicId', 'string'),
  field('numPartitions', 'int'),
  field('replicationFactor', 'int'),
  field('rackAwareness', 'boolean'),
  field('config', topicConfigSchema),
  field(
    'partitions',
    arrayOf(
      record('PartitionAssignment', [
        field('partition', 'int'),
        field('leader', 'string'),
        field('leaderEpoch', 'long'),
        field('replicas', arrayOf('string')),
        field('isr', arrayOf('string')),
      ]),
    ),
  ),
  field('createdAtMs', 'long'),
]);

const brokerSchema = record('BrokerRegistration', [
  field('id', 'string'),
  field('httpHost', 'string'),
  field('httpPort', 'int'),
  field('clusterHost', 'string'),
  field('clusterPort', 'int'),
  field('rack', 'string'),
  field('version', 'string'),
  field('fenced', 'boolean'),
  field('registeredAtMs', 'long'),
]);

const offsetSchema = record('CommittedOffset', [
  field('topic', 'string'),
  field('partition', 'int'),
  field('offset', 'long'),
  field('metadata', 'string'),
  field('committedAtMs', 'long'),
]);

const commandSchemas = [
  record('register_broker', [field('broker', brokerSchema)]),
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
  record('alter_topic_config', [
    field('name', 'string'),
    field('topicId', 'string'),
    field('changes', topicConfigChangesSchema),
  ]),
];
// The named records are declared once, in the first schema that uses them; later schemas refer by name.
const commandType: avro.Type = forUntrustedSchema([
  record('schemas', [field('topic', topicSchema), field('offset', offsetSchema)]),
  ...commandSchemas,
]);

const imageType: avro.Type = forUntrustedSchema(
  record('MetadataImage', [
    field('appliedIndex', 'long'),
    field('brokers', arrayOf(brokerSchema)),
    field('topics', arrayOf(topicSchema)),
    field(
      'groups',
      arrayOf(record('GroupOffsets', [field('group', 'string'), field('offsets', arrayOf(offsetSchema))])),
    ),
  ]),
);

/** What a node forwards to the Raft leader on behalf of a client. */
export type AdminRequest =
  | { readonly kind: 'create_topic'; readonly request: CreateTopicRequest; readonly nowMs: number }
  | { readonly kind: 'delete_topic'; readonly name: string }
  | { readonly kind: 'commit_offsets'; readonly group: string; readonly offsets: readonly CommittedOffset[] }
  | { readonly kind: 'alter_topic_config'; readonly name: string; readonly changes: TopicConfigChanges };

/**
 * The leader's answer. `index` is the Raft index the change was applied at (0 when nothing was proposed), so
 * the forwarding node can wait until it has applied that far itself before answering its client.
 */
export interface AdminReply {
  readonly kind: string;
  readonly index: number;
  readonly topic: TopicMetadata | null;
  readonly reason: string;
  readonly leaderId: string;
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
      ]),
    ),
    field('nowMs', 'long'),
  ]),
  record('delete_topic', [field('name', 'string')]),
  record('commit_offsets', [field('group', 'string'), field('offsets', arrayOf(offsetSchema))]),
  record('alter_topic_config', [field('name', 'string'), field('changes', topicConfigChangesSchema)]),
]);

const adminReplyType: avro.Type = forUntrustedSchema(
  record('AdminReply', [
    field('kind', 'string'),
    field('index', 'long'),
    field('topic', ['null', topicSchema]),
    field('reason', 'string'),
    field('leaderId', 'string'),
  ]),
);

export type Decoded<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly reason: DecodeFailure; readonly detail: string };

/** Avro's decoded records carry their schema's prototype; posting to a thread wants plain values. */
function plain<T>(value: unknown): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function decodeWith<T>(bytes: Uint8Array, type: avro.Type, convert: (raw: unknown) => T): Decoded<T> {
  const decoded = decodeVersioned(bytes, bytes[0] === 1 ? 1 : METADATA_WIRE_VERSION, type);
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

function versionOf(kind: string): number {
  return version2Kinds.has(kind) ? 2 : 1;
}

/** Unwraps a union value and refuses a kind newer than the version byte says. */
function unwrapVersioned(bytes: Uint8Array, raw: unknown): { kind: string; body: Record<string, unknown> } {
  const unwrapped = unwrapUnion(raw);
  if (versionOf(unwrapped.kind) > (bytes[0] ?? 0)) {
    throw new Error(`${unwrapped.kind} does not exist in version ${bytes[0]}`);
  }
  return unwrapped;
}

/** Avro's nullable fields decode as `{long: n}` or null; the changes carry plain numbers. */
function plainChanges(raw: Record<string, unknown>): TopicConfigChanges {
  const value = (v: unknown): number | null =>
    v === null || v === undefined ? null : (Object.values(v as Record<string, number>)[0] ?? null);
  return {
    retentionMs: value(raw.retentionMs),
    retentionBytes: value(raw.retentionBytes),
    minInsyncReplicas: value(raw.minInsyncReplicas),
  };
}

function wrapChanges(changes: TopicConfigChanges): Record<string, unknown> {
  const wrap = (v: number | null, type: string) => (v === null ? null : { [type]: v });
  return {
    retentionMs: wrap(changes.retentionMs, 'long'),
    retentionBytes: wrap(changes.retentionBytes, 'long'),
    minInsyncReplicas: wrap(changes.minInsyncReplicas, 'int'),
  };
}

export function encodeCommand(command: MetadataCommand): Buffer {
  const { kind, ...fields } = command;
  const body =
    command.kind === 'alter_topic_config' ? { ...fields, changes: wrapChanges(command.changes) } : fields;
  return encodeVersioned(versionOf(kind), commandType, { [kind]: body });
}

export function decodeCommand(bytes: Uint8Array): Decoded<MetadataCommand> {
  return decodeWith(bytes, commandType, (raw) => {
    const { kind, body } = unwrapVersioned(bytes, raw);
    if (kind === 'schemas') throw new Error('the schema carrier is not a command');
    if (kind === 'alter_topic_config') {
      body.changes = plainChanges(body.changes as Record<string, unknown>);
    }
    return plain<MetadataCommand>({ kind, ...body });
  });
}

export function encodeImage(image: MetadataImage): Buffer {
  return encodeVersioned(1, imageType, image);
}

export function decodeImage(bytes: Uint8Array): Decoded<MetadataImage> {
  return decodeWith(bytes, imageType, (raw) => plain<MetadataImage>(raw));
}

export function encodeAdminRequest(request: AdminRequest): Buffer {
  const { kind, ...fields } = request;
  const body =
    request.kind === 'alter_topic_config' ? { ...fields, changes: wrapChanges(request.changes) } : fields;
  return encodeVersioned(versionOf(kind), adminRequestType, { [kind]: body });
}

export function decodeAdminRequest(bytes: Uint8Array): Decoded<AdminRequest> {
  return decodeWith(bytes, adminRequestType, (raw) => {
    const { kind, body } = unwrapVersioned(bytes, raw);
    if (kind === 'alter_topic_config') {
      body.changes = plainChanges(body.changes as Record<string, unknown>);
    }
    return plain<AdminRequest>({ kind, ...body });
  });
}

export function encodeAdminReply(reply: AdminReply): Buffer {
  return encodeVersioned(1, adminReplyType, {
    ...reply,
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
