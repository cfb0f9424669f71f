// The Kafka APIs this broker speaks and the versions of each it claims. ApiVersions answers from this table,
// the request decoder refuses anything outside it, and tools/kafka-schemas.ts generates the message codec
// tables (messages.generated.ts) for exactly these ranges from Kafka's JSON message schemas.
//
// Why these ranges: kafkajs 2.x negotiates the classic (non-flexible) versions (ApiVersions 2, Metadata 6,
// Produce 7, Fetch 11, ...), librdkafka-based tools such as kcat and @platformatic/kafka the flexible ones.
// Produce starts at v3 and Fetch at v4, the first versions that carry magic-2 record batches, the only format
// the log stores. @platformatic/kafka starts at the versions that batch groups (FindCoordinator v4, OffsetFetch
// v8) and answer topic ids (CreateTopics v7, DeleteTopics v6), which are in. Each range stops before a version
// that needs something the broker does not have: Fetch v13 addresses topics by id only, LeaveGroup v5 and
// JoinGroup v8 carry reasons the coordinator does not keep, ListOffsets v7 asks for the largest timestamp, etc.
//
// Pure: constant data, callable from any thread.

export const ApiKey = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  OffsetCommit: 8,
  OffsetFetch: 9,
  FindCoordinator: 10,
  JoinGroup: 11,
  Heartbeat: 12,
  LeaveGroup: 13,
  SyncGroup: 14,
  SaslHandshake: 17,
  ApiVersions: 18,
  CreateTopics: 19,
  DeleteTopics: 20,
  InitProducerId: 22,
  DescribeConfigs: 32,
  SaslAuthenticate: 36,
} as const;

export type ApiName = keyof typeof ApiKey;
export type ApiKeyNumber = (typeof ApiKey)[ApiName];

export interface ApiVersionRange {
  readonly name: ApiName;
  readonly apiKey: number;
  readonly minVersion: number;
  readonly maxVersion: number;
  /** First flexible version (compact strings, tagged fields, request header v2); null if none is claimed. */
  readonly flexibleMin: number | null;
  /**
   * Largest request frame accepted for this API, header included. Only Produce carries records; every other
   * request is a few names and numbers (JoinGroup and SyncGroup carry member metadata and assignments, which
   * stay far below it), so they get a small bound and Produce gets the listener's configured one (null here).
   */
  readonly requestBytesMax: number | null;
}

/** The bound for every request but Produce: 1 MiB holds thousands of topic names or group members. */
export const CONTROL_REQUEST_BYTES_MAX = 1024 * 1024;

function range(
  name: ApiName,
  minVersion: number,
  maxVersion: number,
  flexibleMin: number | null,
): ApiVersionRange {
  const requestBytesMax = name === 'Produce' ? null : CONTROL_REQUEST_BYTES_MAX;
  return { name, apiKey: ApiKey[name], minVersion, maxVersion, flexibleMin, requestBytesMax };
}

/** Claimed ranges; `flexibleMin` is Kafka's "flexibleVersions" (checked against the schemas by a test). */
export const supportedApis: readonly ApiVersionRange[] = [
  range('Produce', 3, 9, 9),
  range('Fetch', 4, 13, 12),
  range('ListOffsets', 1, 6, 6),
  range('Metadata', 1, 12, 9),
  range('OffsetCommit', 2, 8, 8),
  range('OffsetFetch', 1, 8, 6),
  range('FindCoordinator', 0, 4, 3),
  range('JoinGroup', 2, 7, 6),
  range('Heartbeat', 0, 4, 4),
  range('LeaveGroup', 0, 4, 4),
  range('SyncGroup', 0, 5, 4),
  range('SaslHandshake', 0, 1, null),
  range('ApiVersions', 0, 3, 3),
  range('CreateTopics', 2, 7, 5),
  range('DeleteTopics', 1, 6, 4),
  range('InitProducerId', 0, 4, 2),
  range('DescribeConfigs', 0, 4, 4),
  range('SaslAuthenticate', 0, 2, 2),
];

const byKey = new Map<number, ApiVersionRange>(supportedApis.map((api) => [api.apiKey, api]));

export function apiRange(apiKey: number): ApiVersionRange | undefined {
  return byKey.get(apiKey);
}

export function isFlexible(api: ApiVersionRange, version: number): boolean {
  return api.flexibleMin !== null && version >= api.flexibleMin;
}

/** Request header v2 (tagged fields) for flexible versions, v1 otherwise; v0 belongs to APIs not served here. */
export function requestHeaderVersion(api: ApiVersionRange, version: number): 1 | 2 {
  return isFlexible(api, version) ? 2 : 1;
}

/**
 * Response header v1 for flexible versions, v0 otherwise; ApiVersions always answers with v0, so that a client
 * that asked with a version the broker does not know can still read the error (KIP-511).
 */
export function responseHeaderVersion(api: ApiVersionRange, version: number): 0 | 1 {
  if (api.apiKey === ApiKey.ApiVersions) return 0;
  return isFlexible(api, version) ? 1 : 0;
}
