// Kafka's wire-protocol error codes, as Apache Kafka's Errors class numbers them, with the `retriable` flag its
// clients use (an error is retriable when Kafka's exception for it is a RetriableException: the same request
// may succeed later without any change). Only the codes this broker answers, or that a client sends back to it,
// are listed; the broker's own error registry (src/core/errors.ts) maps onto these in the Kafka listener.
//
// Invariants (checked by test/core/kafka/error-codes.test.ts): codes are unique; NONE is 0 and not retriable.
//
// Pure: constant data, callable from any thread.

export const kafkaErrors = {
  UNKNOWN_SERVER_ERROR: {
    code: -1,
    retriable: false,
    summary: 'The server experienced an unexpected error.',
  },
  NONE: { code: 0, retriable: false, summary: 'No error.' },
  OFFSET_OUT_OF_RANGE: {
    code: 1,
    retriable: false,
    summary: 'The offset is below the log start offset or above the high watermark.',
  },
  CORRUPT_MESSAGE: {
    code: 2,
    retriable: true,
    summary: 'A record batch failed its CRC or size check, or is otherwise not a valid magic-2 batch.',
  },
  UNKNOWN_TOPIC_OR_PARTITION: {
    code: 3,
    retriable: true,
    summary: 'The topic or partition does not exist (yet) on this broker.',
  },
  INVALID_FETCH_SIZE: { code: 4, retriable: false, summary: 'The requested fetch size is invalid.' },
  LEADER_NOT_AVAILABLE: {
    code: 5,
    retriable: true,
    summary: 'The partition has no leader right now (an election is under way).',
  },
  NOT_LEADER_OR_FOLLOWER: {
    code: 6,
    retriable: true,
    summary: 'This broker does not lead the partition; refresh metadata and retry.',
  },
  REQUEST_TIMED_OUT: {
    code: 7,
    retriable: true,
    summary: 'The request timed out (for acks=all: the in-sync replicas did not confirm in time).',
  },
  BROKER_NOT_AVAILABLE: { code: 8, retriable: false, summary: 'The broker is not available.' },
  REPLICA_NOT_AVAILABLE: {
    code: 9,
    retriable: true,
    summary: 'The replica is not available for the partition.',
  },
  MESSAGE_TOO_LARGE: {
    code: 10,
    retriable: false,
    summary: 'A record batch is larger than the broker accepts.',
  },
  OFFSET_METADATA_TOO_LARGE: {
    code: 12,
    retriable: false,
    summary: 'The metadata of a committed offset is too large.',
  },
  NETWORK_EXCEPTION: {
    code: 13,
    retriable: true,
    summary: 'The connection to a broker was lost before the answer came.',
  },
  COORDINATOR_LOAD_IN_PROGRESS: {
    code: 14,
    retriable: true,
    summary: 'The group coordinator is still loading its state.',
  },
  COORDINATOR_NOT_AVAILABLE: {
    code: 15,
    retriable: true,
    summary: 'The group coordinator is not available.',
  },
  NOT_COORDINATOR: { code: 16, retriable: true, summary: "This broker is not the group's coordinator." },
  INVALID_TOPIC_EXCEPTION: {
    code: 17,
    retriable: false,
    summary: 'The topic name is not valid, or the operation is not allowed on it.',
  },
  RECORD_LIST_TOO_LARGE: {
    code: 18,
    retriable: false,
    summary: 'The records of one partition are larger than a segment.',
  },
  NOT_ENOUGH_REPLICAS: {
    code: 19,
    retriable: true,
    summary: 'Fewer in-sync replicas than min.insync.replicas: the batch was not written.',
  },
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: {
    code: 20,
    retriable: true,
    summary: 'The batch was written but fewer in-sync replicas than required confirmed it.',
  },
  INVALID_REQUIRED_ACKS: { code: 21, retriable: false, summary: 'acks is not 0, 1 or -1.' },
  ILLEGAL_GENERATION: { code: 22, retriable: false, summary: 'The group generation is not the current one.' },
  INCONSISTENT_GROUP_PROTOCOL: {
    code: 23,
    retriable: false,
    summary: "The member's protocol type or protocols do not match the group's.",
  },
  INVALID_GROUP_ID: { code: 24, retriable: false, summary: 'The group id is empty or not a valid name.' },
  UNKNOWN_MEMBER_ID: { code: 25, retriable: false, summary: 'The coordinator does not know this member.' },
  INVALID_SESSION_TIMEOUT: {
    code: 26,
    retriable: false,
    summary: "The session timeout is outside the broker's allowed range.",
  },
  REBALANCE_IN_PROGRESS: {
    code: 27,
    retriable: false,
    summary: 'The group is rebalancing: the member must rejoin.',
  },
  INVALID_COMMIT_OFFSET_SIZE: {
    code: 28,
    retriable: false,
    summary: 'The committed offset data is not valid.',
  },
  TOPIC_AUTHORIZATION_FAILED: {
    code: 29,
    retriable: false,
    summary: 'The principal may not perform this operation on the topic.',
  },
  GROUP_AUTHORIZATION_FAILED: {
    code: 30,
    retriable: false,
    summary: 'The principal may not perform this operation on the group.',
  },
  CLUSTER_AUTHORIZATION_FAILED: {
    code: 31,
    retriable: false,
    summary: 'The principal may not perform this cluster operation.',
  },
  INVALID_TIMESTAMP: { code: 32, retriable: false, summary: 'A timestamp is outside the accepted range.' },
  UNSUPPORTED_SASL_MECHANISM: {
    code: 33,
    retriable: false,
    summary: 'The broker does not support the requested SASL mechanism.',
  },
  ILLEGAL_SASL_STATE: {
    code: 34,
    retriable: false,
    summary: "The request is not valid in the connection's SASL state.",
  },
  UNSUPPORTED_VERSION: { code: 35, retriable: false, summary: 'The API version is not supported.' },
  TOPIC_ALREADY_EXISTS: { code: 36, retriable: false, summary: 'A topic with this name already exists.' },
  INVALID_PARTITIONS: {
    code: 37,
    retriable: false,
    summary: "The partition count is below 1 or above the broker's limit.",
  },
  INVALID_REPLICATION_FACTOR: {
    code: 38,
    retriable: false,
    summary: 'The replication factor is below 1 or above the number of brokers.',
  },
  INVALID_REPLICA_ASSIGNMENT: {
    code: 39,
    retriable: false,
    summary: 'A manual replica assignment is not valid.',
  },
  INVALID_CONFIG: { code: 40, retriable: false, summary: 'A topic configuration is not valid.' },
  NOT_CONTROLLER: { code: 41, retriable: true, summary: 'This broker is not the controller.' },
  INVALID_REQUEST: {
    code: 42,
    retriable: false,
    summary: 'The request is malformed or not valid for this broker.',
  },
  UNSUPPORTED_FOR_MESSAGE_FORMAT: {
    code: 43,
    retriable: false,
    summary: 'The record format is not supported (only magic 2 is).',
  },
  POLICY_VIOLATION: { code: 44, retriable: false, summary: 'The request violates a configured policy.' },
  OUT_OF_ORDER_SEQUENCE_NUMBER: {
    code: 45,
    retriable: false,
    summary: "An idempotent producer's sequence number skipped ahead.",
  },
  DUPLICATE_SEQUENCE_NUMBER: {
    code: 46,
    retriable: false,
    summary: "An idempotent producer's batch was already written.",
  },
  INVALID_PRODUCER_EPOCH: {
    code: 47,
    retriable: false,
    summary: 'The producer epoch is older than the current one.',
  },
  INVALID_TXN_STATE: {
    code: 48,
    retriable: false,
    summary: 'The transactional state does not allow this operation.',
  },
  INVALID_PRODUCER_ID_MAPPING: {
    code: 49,
    retriable: false,
    summary: 'The producer id is not assigned to this transactional id.',
  },
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED: {
    code: 53,
    retriable: false,
    summary: 'The principal may not use this transactional id.',
  },
  SECURITY_DISABLED: { code: 54, retriable: false, summary: 'Security features are disabled.' },
  KAFKA_STORAGE_ERROR: {
    code: 56,
    retriable: true,
    summary: "The broker could not read or write the partition's log (a disk error).",
  },
  SASL_AUTHENTICATION_FAILED: { code: 58, retriable: false, summary: 'The SASL credentials are not valid.' },
  UNKNOWN_PRODUCER_ID: {
    code: 59,
    retriable: false,
    summary: 'The broker has no state for this producer id.',
  },
  NON_EMPTY_GROUP: { code: 68, retriable: false, summary: 'The group still has members.' },
  GROUP_ID_NOT_FOUND: { code: 69, retriable: false, summary: 'The group does not exist.' },
  FETCH_SESSION_ID_NOT_FOUND: {
    code: 70,
    retriable: true,
    summary: 'The fetch session is not known to the broker.',
  },
  INVALID_FETCH_SESSION_EPOCH: {
    code: 71,
    retriable: true,
    summary: 'The fetch session epoch is not the expected one.',
  },
  FENCED_LEADER_EPOCH: {
    code: 74,
    retriable: true,
    summary: "The leader epoch in the request is older than the broker's.",
  },
  UNKNOWN_LEADER_EPOCH: {
    code: 75,
    retriable: true,
    summary: "The leader epoch in the request is newer than the broker's.",
  },
  UNSUPPORTED_COMPRESSION_TYPE: {
    code: 76,
    retriable: false,
    summary: 'The batch uses a compression codec the broker does not accept.',
  },
  OFFSET_NOT_AVAILABLE: {
    code: 78,
    retriable: true,
    summary: 'The high watermark has not caught up since the leader changed.',
  },
  MEMBER_ID_REQUIRED: {
    code: 79,
    retriable: false,
    summary: 'The member must rejoin with the member id the coordinator just gave it.',
  },
  GROUP_MAX_SIZE_REACHED: {
    code: 81,
    retriable: false,
    summary: 'The group has as many members as the broker allows.',
  },
  FENCED_INSTANCE_ID: {
    code: 82,
    retriable: false,
    summary: 'A newer member with the same group.instance.id replaced this one.',
  },
  INVALID_RECORD: { code: 87, retriable: false, summary: "A record failed the broker's validation." },
  UNSTABLE_OFFSET_COMMIT: {
    code: 88,
    retriable: true,
    summary: 'There are pending offsets that must settle first.',
  },
  THROTTLING_QUOTA_EXCEEDED: { code: 89, retriable: true, summary: 'The request was throttled by a quota.' },
  UNKNOWN_TOPIC_ID: { code: 100, retriable: true, summary: 'This broker does not know the topic id.' },
} as const;

export type KafkaErrorName = keyof typeof kafkaErrors;

const byCode = new Map<number, KafkaErrorName>(
  (Object.keys(kafkaErrors) as KafkaErrorName[]).map((name) => [kafkaErrors[name].code, name]),
);

/** The name of a code, or undefined for one this table does not list. */
export function kafkaErrorName(code: number): KafkaErrorName | undefined {
  return byCode.get(code);
}

export function kafkaErrorCode(name: KafkaErrorName): number {
  return kafkaErrors[name].code;
}
