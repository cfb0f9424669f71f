// Validation of the bodies of the operators' routes: a topic config change (`POST /topics/{t}/config`) and a
// consumer group's offset reset (`POST /consumer-groups/{g}/reset-offsets`). Every field is checked for type
// and range, unknown fields are refused by name, and every problem is reported at once, so a typo never
// becomes a silent default. Pure; called on the acceptor thread.
import { SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN } from '../core/metadata/state-machine.js';
import type { TopicConfigChanges } from '../metadata/types.js';

export type BodyParse<T> =
  | { readonly kind: 'ok'; readonly value: T }
  | { readonly kind: 'error'; readonly message: string };

const alterable = ['retention_ms', 'retention_bytes', 'min_insync_replicas', 'segment_bytes'] as const;
/** Settings a topic has but cannot change yet, with the reason given to the operator. */
const notAlterable: Readonly<Record<string, string>> = {
  cleanup_policy: "cleanup_policy cannot be altered: only 'delete' is supported",
  value_schema: 'value_schema (Avro values) is not supported yet',
};

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function integerIn(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max;
}

/**
 * `{"retention_ms"?, "retention_bytes"?, "min_insync_replicas"?, "segment_bytes"?}` (also accepted wrapped as `{"config": {...}}`,
 * the shape of the create body). At least one setting must be given.
 */
export function parseTopicAlter(json: unknown, replicationFactor: number): BodyParse<TopicConfigChanges> {
  if (!isObject(json)) return { kind: 'error', message: 'the body must be a JSON object of config settings' };
  const body = Object.keys(json).length === 1 && isObject(json.config) ? json.config : json;
  const problems: string[] = [];
  for (const key of Object.keys(body)) {
    const reason = notAlterable[key];
    if (reason !== undefined) problems.push(reason);
    else if (!(alterable as readonly string[]).includes(key)) {
      problems.push(`unknown config setting '${key}'; alterable are ${alterable.join(', ')}`);
    }
  }
  const pick = (key: (typeof alterable)[number], min: number, max: number, range: string): number | null => {
    const value = body[key];
    if (value === undefined || value === null) return null;
    if (!integerIn(value, min, max)) {
      problems.push(`${key} must be an integer ${range}, got ${JSON.stringify(value)}`);
      return null;
    }
    return value;
  };
  const changes: TopicConfigChanges = {
    retentionMs: pick('retention_ms', -1, Number.MAX_SAFE_INTEGER, '>= -1 (-1 keeps segments forever)'),
    retentionBytes: pick('retention_bytes', -1, Number.MAX_SAFE_INTEGER, '>= -1 (-1 means no limit)'),
    minInsyncReplicas: pick(
      'min_insync_replicas',
      1,
      replicationFactor,
      `between 1 and the replication factor ${replicationFactor}`,
    ),
    segmentBytes: pick(
      'segment_bytes',
      SEGMENT_BYTES_MIN,
      SEGMENT_BYTES_MAX,
      `between ${SEGMENT_BYTES_MIN} and ${SEGMENT_BYTES_MAX} (segments rolled from now on take the new size)`,
    ),
  };
  if (problems.length > 0) return { kind: 'error', message: problems.join('; ') };
  if (
    changes.retentionMs === null &&
    changes.retentionBytes === null &&
    changes.minInsyncReplicas === null &&
    changes.segmentBytes === null
  ) {
    return { kind: 'error', message: `nothing to change: give one of ${alterable.join(', ')}` };
  }
  return { kind: 'ok', value: changes };
}

/** Where a reset moves a group's committed offsets, per partition (kafka-consumer-groups' --reset-offsets). */
export type ResetTarget =
  | { readonly to: 'earliest' }
  | { readonly to: 'latest' }
  | { readonly to: 'offset'; readonly offset: number }
  | { readonly to: 'timestamp'; readonly timestampMs: number }
  | { readonly to: 'shift'; readonly shift: number };

export interface OffsetReset {
  readonly topic: string;
  /** Null: every partition of the topic. */
  readonly partitions: readonly number[] | null;
  readonly target: ResetTarget;
  readonly dryRun: boolean;
}

const resetFields = new Set(['topic', 'partitions', 'to', 'offset', 'timestamp', 'shift', 'dry_run']);
const resetTargets = ['earliest', 'latest', 'offset', 'timestamp', 'shift'] as const;

/**
 * `{"topic", "partitions"?: [n], "to": "earliest"|"latest"|"offset"|"timestamp"|"shift", "offset"?, "timestamp"?,
 * "shift"?, "dry_run"?}`: `offset` goes with to=offset, `timestamp` (ms since the epoch) with to=timestamp and
 * `shift` (a signed record count from the committed offset) with to=shift. The topic name is checked by the
 * caller, which knows the topic.
 */
export function parseOffsetReset(json: unknown, partitionsMax: number): BodyParse<OffsetReset> {
  if (!isObject(json)) return { kind: 'error', message: 'the body must be a JSON object' };
  const problems: string[] = [];
  for (const key of Object.keys(json)) {
    if (!resetFields.has(key))
      problems.push(`unknown field '${key}'; expected ${[...resetFields].join(', ')}`);
  }
  const topic = json.topic;
  if (typeof topic !== 'string' || topic.length === 0) problems.push('topic must be a topic name');
  let partitions: number[] | null = null;
  if (json.partitions !== undefined && json.partitions !== null) {
    if (
      !Array.isArray(json.partitions) ||
      json.partitions.length === 0 ||
      !json.partitions.every((p) => integerIn(p, 0, partitionsMax))
    ) {
      problems.push('partitions must be a non-empty array of partition numbers');
    } else {
      partitions = [...new Set(json.partitions as number[])].sort((a, b) => a - b);
    }
  }
  const to = json.to;
  let target: ResetTarget | null = null;
  const needs = (field: 'offset' | 'timestamp' | 'shift', min: number): number | null => {
    const value = json[field];
    if (!integerIn(value, min, Number.MAX_SAFE_INTEGER)) {
      problems.push(`to=${String(to)} needs '${field}', an integer${min === 0 ? ' >= 0' : ''}`);
      return null;
    }
    return value;
  };
  switch (to) {
    case 'earliest':
    case 'latest':
      target = { to };
      break;
    case 'offset': {
      const offset = needs('offset', 0);
      if (offset !== null) target = { to, offset };
      break;
    }
    case 'timestamp': {
      const timestampMs = needs('timestamp', 0);
      if (timestampMs !== null) target = { to, timestampMs };
      break;
    }
    case 'shift': {
      const shift = needs('shift', -Number.MAX_SAFE_INTEGER);
      if (shift !== null) target = { to, shift };
      break;
    }
    default:
      problems.push(`to must be one of ${resetTargets.join(', ')}, got ${JSON.stringify(to)}`);
  }
  for (const field of ['offset', 'timestamp', 'shift'] as const) {
    if (json[field] !== undefined && to !== field) problems.push(`'${field}' goes only with to=${field}`);
  }
  const dryRun = json.dry_run ?? false;
  if (typeof dryRun !== 'boolean') problems.push('dry_run must be true or false');
  if (problems.length > 0 || target === null) return { kind: 'error', message: problems.join('; ') };
  return { kind: 'ok', value: { topic: topic as string, partitions, target, dryRun: dryRun as boolean } };
}
