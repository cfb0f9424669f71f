// The kinds of message between an acceptor and a partition worker (ring frames) and between nodes (data link
// frames): one table for both, since a forwarded request is the same message as a local one. Answers mirror
// their request's kind with the high bit set. Each kind's layout is owned by one module beside this one.
// Pure: callable from any thread.

export const MessageKind = {
  /** messages/produce.ts */
  Produce: 1,
  /** messages/fetch.ts */
  Fetch: 2,
  /** messages/describe.ts */
  Describe: 3,
  /** messages/replica-fetch.ts; data link only */
  ReplicaFetch: 4,
  /** Ring only: the worker answers every earlier frame, flushes and closes its logs, then answers this. */
  Shutdown: 5,
  /** messages/control.ts: rare operations in JSON (health, offset for a timestamp); ring or data link. */
  Control: 6,
  ProduceAnswer: 0x81,
  FetchAnswer: 0x82,
  DescribeAnswer: 0x83,
  ReplicaFetchAnswer: 0x84,
  ShutdownAnswer: 0x85,
  ControlAnswer: 0x86,
  /** Ring only, unasked (correlation id 0): a replica's figures moved (messages/describe.ts). */
  PartitionState: 0xa0,
  /** Data link only, in place of any answer: the partitions asked about moved to sibling workers (messages/moved.ts). */
  MovedAnswer: 0xa1,
} as const;
export type MessageKind = (typeof MessageKind)[keyof typeof MessageKind];

export const ANSWER_BIT = 0x80;
