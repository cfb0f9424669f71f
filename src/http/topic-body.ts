// Validation of the topic-creation body `{"num_partitions", "replication_factor", "rack_awareness", "config"}`.
// Every field is optional (defaults: the broker's --default-num-partitions, --default-replication-factor capped at
// the live brokers, false, and the broker's log defaults; min_insync_replicas 2 with three or more replicas); anything present must have the
// right type and range, and unknown fields are refused by name so that a typo never silently becomes a
// default. Pure; called on the acceptor thread.

import type { ErrorName } from '../core/errors.js';
import { SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN } from '../core/metadata/state-machine.js';
import type { CreateTopicRequest, TopicConfig } from '../metadata/types.js';

export interface TopicDefaults {
  readonly numPartitions: number;
  /** Used when the body gives no replication_factor (the broker's default, capped at the live brokers). */
  readonly replicationFactor: number;
  readonly retentionMs: number;
  readonly retentionBytes: number;
  readonly segmentBytes: number;
  readonly partitionsMax: number;
  /** Brokers that can hold a replica today (1 on a single node). */
  readonly liveBrokers: number;
}

export type TopicParse =
  | { readonly kind: 'ok'; readonly request: CreateTopicRequest }
  | { readonly kind: 'error'; readonly error: ErrorName; readonly message: string };

const topFields = new Set(['num_partitions', 'replication_factor', 'rack_awareness', 'config']);
const configFields = new Set([
  'retention_ms',
  'retention_bytes',
  'segment_bytes',
  'min_insync_replicas',
  'cleanup_policy',
  'unclean_leader_election',
  'value_schema',
]);

/** Characters of a client's string shown back in an error message. */
const SHOWN_CHARS_MAX = 64;
/** Problems listed in one error message; the rest are counted. */
const PROBLEMS_SHOWN_MAX = 8;

/**
 * A client's value as an error message shows it: short scalars as JSON, long strings cut, arrays and objects
 * by kind only. Never `JSON.stringify` of the value itself: that recurses (a body nested 10^5 arrays deep
 * overflows the stack, a 500) and would echo a megabyte string back.
 */
function shown(raw: unknown): string {
  if (Array.isArray(raw)) return 'an array';
  if (typeof raw === 'object' && raw !== null) return 'an object';
  if (typeof raw === 'string' && raw.length > SHOWN_CHARS_MAX) {
    return `${JSON.stringify(raw.slice(0, SHOWN_CHARS_MAX))}... (${raw.length} characters)`;
  }
  return JSON.stringify(raw) ?? String(raw);
}

/** A client's field name as an error message shows it, cut like a string value. */
function shownName(name: string): string {
  return name.length > SHOWN_CHARS_MAX ? `${name.slice(0, SHOWN_CHARS_MAX)}...` : name;
}

function integerField(
  raw: unknown,
  name: string,
  min: number,
  max: number,
  fallback: number,
): number | { message: string } {
  if (raw === undefined || raw === null) return fallback;
  if (typeof raw !== 'number' || !Number.isSafeInteger(raw) || raw < min || raw > max) {
    return { message: `${name} must be an integer between ${min} and ${max}, got ${shown(raw)}` };
  }
  return raw;
}

export function parseTopicCreate(name: string, json: unknown, defaults: TopicDefaults): TopicParse {
  const body = (json ?? {}) as Record<string, unknown>;
  if (typeof body !== 'object' || Array.isArray(body)) {
    return { kind: 'error', error: 'bad_request', message: 'the body must be a JSON object (or empty)' };
  }
  for (const field of Object.keys(body)) {
    if (!topFields.has(field)) {
      return {
        kind: 'error',
        error: 'bad_request',
        message: `unknown field '${shownName(field)}'; expected num_partitions, replication_factor, rack_awareness, config`,
      };
    }
  }
  const problems: string[] = [];
  const numPartitions = integerField(
    body.num_partitions,
    'num_partitions',
    1,
    defaults.partitionsMax,
    defaults.numPartitions,
  );
  if (typeof numPartitions !== 'number') problems.push(numPartitions.message);
  const replicationFactor = integerField(
    body.replication_factor,
    'replication_factor',
    1,
    32,
    defaults.replicationFactor,
  );
  if (typeof replicationFactor !== 'number') problems.push(replicationFactor.message);
  else if (replicationFactor > defaults.liveBrokers) {
    problems.push(
      `replication_factor ${replicationFactor} is larger than the ${defaults.liveBrokers} broker(s) in the cluster`,
    );
  }
  let rackAwareness = false;
  if (body.rack_awareness !== undefined && body.rack_awareness !== null) {
    if (typeof body.rack_awareness !== 'boolean') problems.push('rack_awareness must be true or false');
    else rackAwareness = body.rack_awareness;
  }

  const rawConfig = (body.config ?? {}) as Record<string, unknown>;
  if (typeof rawConfig !== 'object' || Array.isArray(rawConfig)) {
    problems.push('config must be a JSON object');
  }
  const configObject = typeof rawConfig === 'object' && !Array.isArray(rawConfig) ? rawConfig : {};
  for (const field of Object.keys(configObject)) {
    if (!configFields.has(field)) {
      problems.push(
        `unknown config field '${shownName(field)}'; expected one of ${[...configFields].join(', ')}`,
      );
    }
  }
  const retentionMs = integerField(
    configObject.retention_ms,
    'config.retention_ms',
    -1,
    Number.MAX_SAFE_INTEGER,
    defaults.retentionMs,
  );
  if (typeof retentionMs !== 'number') problems.push(retentionMs.message);
  const retentionBytes = integerField(
    configObject.retention_bytes,
    'config.retention_bytes',
    -1,
    Number.MAX_SAFE_INTEGER,
    defaults.retentionBytes,
  );
  if (typeof retentionBytes !== 'number') problems.push(retentionBytes.message);
  const segmentBytes = integerField(
    configObject.segment_bytes,
    'config.segment_bytes',
    SEGMENT_BYTES_MIN,
    SEGMENT_BYTES_MAX,
    defaults.segmentBytes,
  );
  if (typeof segmentBytes !== 'number') problems.push(segmentBytes.message);
  const replicas = typeof replicationFactor === 'number' ? replicationFactor : 1;
  // Kafka's usual production setting: with three or more replicas an acks=all write is on two of them before
  // it is answered, so one broker can fail without losing it and one more without stopping writes.
  const minInsyncReplicas = integerField(
    configObject.min_insync_replicas,
    'config.min_insync_replicas',
    1,
    replicas,
    replicas >= 3 ? 2 : 1,
  );
  if (typeof minInsyncReplicas !== 'number') problems.push(minInsyncReplicas.message);
  const cleanupPolicy = configObject.cleanup_policy ?? 'delete';
  if (cleanupPolicy !== 'delete') {
    problems.push(
      cleanupPolicy === 'compact'
        ? "config.cleanup_policy 'compact' is not supported yet; use 'delete'"
        : `config.cleanup_policy must be 'delete', got ${shown(cleanupPolicy)}`,
    );
  }
  const unclean = configObject.unclean_leader_election ?? false;
  if (typeof unclean !== 'boolean') problems.push('config.unclean_leader_election must be true or false');
  if (configObject.value_schema !== undefined && configObject.value_schema !== null) {
    problems.push('config.value_schema (Avro values) is not supported yet');
  }
  if (problems.length > 0) {
    // Every problem at once, up to a bound: a body with 10^4 unknown fields gets a short answer, not a list.
    const listed =
      problems.length > PROBLEMS_SHOWN_MAX
        ? [
            ...problems.slice(0, PROBLEMS_SHOWN_MAX),
            `and ${problems.length - PROBLEMS_SHOWN_MAX} more problems`,
          ]
        : problems;
    return { kind: 'error', error: 'bad_request', message: `topic '${name}': ${listed.join('; ')}` };
  }
  const config: TopicConfig = {
    retentionMs: retentionMs as number,
    retentionBytes: retentionBytes as number,
    segmentBytes: segmentBytes as number,
    minInsyncReplicas: minInsyncReplicas as number,
    cleanupPolicy: 'delete',
    uncleanLeaderElection: unclean === true,
  };
  return {
    kind: 'ok',
    request: {
      name,
      numPartitions: numPartitions as number,
      replicationFactor: replicationFactor as number,
      rackAwareness,
      config,
      replicationFactorDefaulted: body.replication_factor === undefined || body.replication_factor === null,
      minInsyncDefaulted:
        configObject.min_insync_replicas === undefined || configObject.min_insync_replicas === null,
    },
  };
}
