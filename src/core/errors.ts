// The registry of every error the broker answers, over HTTP, WebSocket and the wire between nodes. One table,
// so that a code means the same thing wherever it appears and a test can check the whole set at once.
//
// Invariants (checked by test/core/errors.test.ts):
// - every `code` is unique and has five digits; its first three digits are the HTTP status
//   (Confluent REST Proxy style: 40401 is a 404);
// - a retriable error carries a Retry-After policy (`retryAfterS`), a non-retriable one never does;
// - a WebSocket close code, where one applies, is in the application range 4000-4999.
//   Conditions without one close with a standard code chosen by the socket shell (1001 going away on shutdown,
//   1011 internal error), which is why those entries say `null`.
//
// Pure: no I/O, callable from any thread.

export const errors = {
  bad_request: {
    code: 40001,
    retriable: false,
    retryAfterS: null,
    wsCloseCode: 4001,
    summary: 'The body is not valid JSON, or a field is missing or has the wrong type.',
  },
  invalid_name: {
    code: 40002,
    retriable: false,
    retryAfterS: null,
    wsCloseCode: 4001,
    summary: 'A topic or group name is not [a-zA-Z0-9._-]{1,249}, or is "." or "..".',
  },
  bad_parameter: {
    code: 40003,
    retriable: false,
    retryAfterS: null,
    wsCloseCode: 4001,
    summary: 'A path or query value is not an integer, or is out of its range (partition, offset, limit).',
  },
  unauthenticated: {
    code: 40101,
    retriable: false,
    retryAfterS: null,
    wsCloseCode: 4401,
    summary:
      'Authentication is on and the request carries no credentials, or they are not valid (a bad or expired token): send Authorization: Bearer <token>.',
  },
  forbidden: {
    code: 40301,
    retriable: false,
    retryAfterS: null,
    wsCloseCode: 4403,
    summary:
      "The principal lacks a permission the request needs; the message names it (e.g. topic:write on 'orders'). Nothing was done.",
  },
  unknown_topic: {
    code: 40401,
    retriable: false,
    retryAfterS: null,
    wsCloseCode: 4004,
    summary: 'The topic does not exist.',
  },
  unknown_partition: {
    code: 40402,
    retriable: false,
    retryAfterS: null,
    wsCloseCode: 4004,
    summary: 'The topic exists but has no partition with that number.',
  },
  unknown_group: {
    code: 40403,
    retriable: false,
    retryAfterS: null,
    wsCloseCode: 4001,
    summary: 'The consumer group or the consumer in it is unknown, or nothing was committed yet.',
  },
  unknown_broker: {
    code: 40405,
    retriable: false,
    retryAfterS: null,
    wsCloseCode: null,
    summary: 'No broker with this id is registered in the cluster.',
  },
  route_not_found: {
    code: 40404,
    retriable: false,
    retryAfterS: null,
    wsCloseCode: 4001,
    summary: 'No route matches the path.',
  },
  method_not_allowed: {
    code: 40501,
    retriable: false,
    retryAfterS: null,
    wsCloseCode: null,
    summary: 'The route exists but not with this method.',
  },
  request_timeout: {
    code: 40801,
    retriable: true,
    retryAfterS: 1,
    wsCloseCode: null,
    summary:
      'The request did not complete in time (e.g. acks=all waiting for replicas); its outcome may be unknown.',
  },
  topic_exists: {
    code: 40901,
    retriable: false,
    retryAfterS: null,
    wsCloseCode: null,
    summary: 'A topic with that name exists with other settings.',
  },
  conflict: {
    code: 40902,
    retriable: false,
    retryAfterS: null,
    wsCloseCode: 4001,
    summary: 'The request conflicts with the current state: a stale group generation or producer epoch.',
  },
  out_of_order_sequence: {
    code: 40903,
    retriable: false,
    retryAfterS: null,
    wsCloseCode: 4001,
    summary:
      "An idempotent producer's sequence number does not follow its last batch on the partition (a gap), or the partition holds no state for it and the batch does not start at 0.",
  },
  payload_too_large: {
    code: 41301,
    retriable: false,
    retryAfterS: null,
    wsCloseCode: 4001,
    summary: 'The body or one record is larger than the configured maximum.',
  },
  unsupported_media_type: {
    code: 41501,
    retriable: false,
    retryAfterS: null,
    wsCloseCode: null,
    summary:
      'The Content-Type is not one the route takes (application/json or application/vnd.kafka.json.v2+json; batch produce also application/x-ndjson and application/vnd.kafka.record-batch), or a record batch is compressed.',
  },
  offset_out_of_range: {
    code: 41601,
    retriable: false,
    retryAfterS: null,
    wsCloseCode: 4001,
    summary: 'The offset is below the log start offset or above the high watermark.',
  },
  schema_violation: {
    code: 42201,
    retriable: false,
    retryAfterS: null,
    wsCloseCode: 4001,
    summary: "A value does not match the topic's Avro schema.",
  },
  too_many_partitions: {
    code: 42202,
    retriable: false,
    retryAfterS: null,
    wsCloseCode: null,
    summary:
      'The topic would put more partitions on a broker than it serves (max partitions per thread x threads); use fewer, delete topics or add brokers.',
  },
  quota_exceeded: {
    code: 42901,
    retriable: true,
    retryAfterS: 1,
    wsCloseCode: 4008,
    summary: 'A byte-rate quota is exceeded; Retry-After says when the throttle ends.',
  },
  rate_limited: {
    code: 42902,
    retriable: true,
    retryAfterS: 1,
    wsCloseCode: 4029,
    summary: 'Too many requests from this client; Retry-After says when to try again.',
  },
  internal: {
    code: 50001,
    retriable: false,
    retryAfterS: null,
    wsCloseCode: null,
    summary: 'An unexpected failure inside the broker; it is logged with the request id.',
  },
  corrupt_data: {
    code: 50002,
    retriable: false,
    retryAfterS: null,
    wsCloseCode: 4500,
    summary:
      'Stored records in the requested range are damaged on disk (a batch fails its checks); the message names the range and the offset to resume from.',
  },
  no_leader: {
    code: 50301,
    retriable: true,
    retryAfterS: 1,
    wsCloseCode: 4013,
    summary: 'The partition has no leader here, or fewer in-sync replicas than min_insync_replicas.',
  },
  overloaded: {
    code: 50302,
    retriable: true,
    retryAfterS: 1,
    wsCloseCode: null,
    summary: 'The broker is shutting down or its queues are full; retry after the delay, or on another node.',
  },
  storage_unavailable: {
    code: 50303,
    retriable: true,
    retryAfterS: 1,
    wsCloseCode: null,
    summary:
      "The partition's storage failed (an I/O error) and is being repaired; nothing was written unless the answer says the outcome is indefinite.",
  },
  coordinator_not_available: {
    code: 50304,
    retriable: true,
    retryAfterS: 1,
    wsCloseCode: null,
    summary:
      "The consumer groups' coordinator (the metadata leader) is being elected or is rebuilding the groups from the replicated offsets; nothing was done, retry after the delay.",
  },
  storage_full: {
    code: 50701,
    retriable: true,
    retryAfterS: 1,
    wsCloseCode: null,
    summary:
      'The disk holding the data (a partition, the offsets store) is full or over quota; nothing was written, and writes resume by themselves once space is freed.',
  },
} as const;

export type ErrorName = keyof typeof errors;
export type ErrorSpec = (typeof errors)[ErrorName];

/** Every error name, in table order. */
export const errorNames: readonly ErrorName[] = Object.keys(errors) as ErrorName[];

/** The JSON body of an error answer, as clients see it. */
export interface ErrorBody {
  readonly error_code: number;
  readonly message: string;
  /** Present and true only when the outcome of a write is unknown (the leader died mid-write). */
  readonly indefinite?: true;
}

/** Everything a shell needs to answer an error: status line, Retry-After header (seconds) and body. */
export interface ErrorAnswer {
  readonly status: number;
  readonly retryAfterS: number | null;
  readonly body: ErrorBody;
}

/** The HTTP status of a code: its first three digits. */
export function httpStatusOf(code: number): number {
  return Math.floor(code / 100);
}

/**
 * Builds the answer for `name`. `message` says what went wrong and how to fix it. `retryAfterS` overrides the
 * table's default delay for retriable errors whose delay is computed (a quota's throttle time).
 */
export function errorBody(
  name: ErrorName,
  message: string,
  options: { readonly indefinite?: boolean; readonly retryAfterS?: number } = {},
): ErrorAnswer {
  const spec: ErrorSpec = errors[name];
  const body: ErrorBody =
    options.indefinite === true
      ? { error_code: spec.code, message, indefinite: true }
      : { error_code: spec.code, message };
  const retryAfterS = spec.retryAfterS === null ? null : (options.retryAfterS ?? spec.retryAfterS);
  return { status: httpStatusOf(spec.code), retryAfterS, body };
}

/** Finds the entry for a numeric code (e.g. read back from a forwarded answer); null if the code is unknown. */
export function errorNameOfCode(code: number): ErrorName | null {
  for (const name of errorNames) {
    if (errors[name].code === code) return name;
  }
  return null;
}

/**
 * For the rare case where an expected condition must cross a throw (a callback API that can only reject).
 * Ordinary code returns the condition as a value instead.
 */
export class BrokerError extends Error {
  override readonly name = 'BrokerError';
  readonly kind: ErrorName;
  readonly code: number;

  constructor(kind: ErrorName, message: string, options?: { readonly cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.code = errors[kind].code;
  }

  /** The answer a shell sends for this error. */
  toAnswer(): ErrorAnswer {
    return errorBody(this.kind, this.message);
  }
}
