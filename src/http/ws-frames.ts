// The frames WebSocket clients send, parsed: the JSON object every frame must be, the produce frame's
// `context` (echoed in the answer), the permit frame of `/ws/consume` and `/ws/group`, and the commit frame of
// `/ws/group`. Each parser returns the frame's values or a sentence naming the problem, never throws, and
// lets through only values the broker can act on: a commit's partition and offset are integers in range, so
// a bad frame cannot reach the group registry (and from there the metadata log).
// Also the close reason as the protocol allows it. Pure; called by broker/streams.ts on the acceptor thread,
// and by the fuzz tests.

import { toWellFormed } from '../core/utf8.js';

/** RFC 6455 5.5.1: a close frame's reason is UTF-8 of at most 123 bytes (125 less the code). */
export const CLOSE_REASON_BYTES_MAX = 123;

/**
 * A close reason as RFC 6455 allows it: well-formed (a lone surrogate, which a JSON.parse message may quote
 * from a client's frame, becomes U+FFFD) and cut to 123 UTF-8 bytes at a character boundary. A reason
 * outside these limits makes clients fail the connection (1006) instead of reading the reason.
 */
export function closeReason(text: string): string {
  const whole = toWellFormed(text);
  if (Buffer.byteLength(whole, 'utf8') <= CLOSE_REASON_BYTES_MAX) return whole;
  let out = '';
  let bytes = 0;
  for (const char of whole) {
    const size = Buffer.byteLength(char, 'utf8');
    if (bytes + size > CLOSE_REASON_BYTES_MAX) break;
    out += char;
    bytes += size;
  }
  return out;
}

/** A text frame's JSON object, or a sentence naming the problem. */
export function parseFrameObject(text: string): Record<string, unknown> | string {
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (error) {
    return `a frame is not valid JSON: ${(error as Error).message.slice(0, 200)}`;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return 'a frame must be a JSON object';
  }
  return value as Record<string, unknown>;
}

/** A produce frame: the record fields (for parseSingleProduce) apart from the `context` to echo. */
export type ProduceFrame = { readonly fields: Record<string, unknown>; readonly context: unknown };

export function parseProduceFrame(text: string): ProduceFrame | string {
  const frame = parseFrameObject(text);
  if (typeof frame === 'string') return frame;
  const { context, ...fields } = frame;
  return { fields, context };
}

/** Records a permit frame may grant at once. */
export const PERMIT_COUNT_MAX = 1_000_000;

/** The count of `{"type":"permit","count":n}`, or a sentence naming the problem. */
export function parsePermit(frame: Readonly<Record<string, unknown>>): number | string {
  const count = frame.count;
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1 || count > PERMIT_COUNT_MAX) {
    return `permit count must be an integer from 1 to ${PERMIT_COUNT_MAX}`;
  }
  return count;
}

/** What a `/ws/consume` client may send: a permit frame. */
export function parseConsumeFrame(text: string): { readonly count: number } | string {
  const frame = parseFrameObject(text);
  if (typeof frame === 'string') return frame;
  if (frame.type !== 'permit') return 'expected {"type":"permit","count":n}';
  const count = parsePermit(frame);
  return typeof count === 'string' ? count : { count };
}

/** Partition numbers are Kafka's int32. */
const partitionMax = 2 ** 31 - 1;

export type GroupFrame =
  | { readonly type: 'permit'; readonly count: number }
  | { readonly type: 'commit'; readonly topic: string; readonly partition: number; readonly offset: number };

/** What a `/ws/group` member may send: a permit or a commit frame. */
export function parseGroupFrame(text: string): GroupFrame | string {
  const frame = parseFrameObject(text);
  if (typeof frame === 'string') return frame;
  if (frame.type === 'permit') {
    const count = parsePermit(frame);
    return typeof count === 'string' ? count : { type: 'permit', count };
  }
  if (frame.type !== 'commit') return 'frames are {"type":"commit",...} or {"type":"permit",...}';
  const { topic, partition, offset } = frame;
  if (
    typeof topic !== 'string' ||
    typeof partition !== 'number' ||
    !Number.isInteger(partition) ||
    partition < 0 ||
    partition > partitionMax ||
    typeof offset !== 'number' ||
    !Number.isSafeInteger(offset) ||
    offset < 0
  ) {
    return 'commit needs topic (string), partition (an integer from 0) and offset (a non-negative integer)';
  }
  return { type: 'commit', topic, partition, offset };
}
