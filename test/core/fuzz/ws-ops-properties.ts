// Fuzz properties of the WebSocket frame parsers (produce, consume and group frames), the `acks` and consume
// query strings, the operators' bodies (topic config change, offset reset) and the ACL bodies and filters
// (issue 16). Over arbitrary texts, JSON values and frames of known fields with nasty values, each parser
// returns a value within its documented bounds or an error naming the problem in a short sentence (a 4xx for
// the HTTP ones); it never throws.
// Pure; runs on the main thread of a test or of tools/fuzz.ts.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bindingFromJson, bindingProblem, filterFromFields } from '../../../src/core/security/acl.js';
import { isWellFormed, toWellFormed } from '../../../src/core/utf8.js';
import { parseOffsetReset, parseTopicAlter } from '../../../src/http/ops-bodies.js';
import { CONSUME_LIMIT_MAX, isParamError, parseAcks, parseConsumeQuery } from '../../../src/http/params.js';
import { parseSingleProduce } from '../../../src/http/produce-body.js';
import {
  CLOSE_REASON_BYTES_MAX,
  closeReason,
  PERMIT_COUNT_MAX,
  parseConsumeFrame,
  parseGroupFrame,
  parseProduceFrame,
} from '../../../src/http/ws-frames.js';
import { FETCH_EARLIEST, FETCH_LATEST } from '../../../src/messages/fetch.js';
import { type FuzzProperty, fuzzProperty } from './fuzz-support.js';
import { checkError, leaf, limits, nastyNumber, nastyString } from './http-properties.js';

/** A refusal names the problem in a sentence, not by echoing the client's megabyte. */
const sentenceCharsMax = 2048;

function checkSentence(message: unknown, context: string): void {
  assert.equal(typeof message, 'string', `${context}: a sentence`);
  const text = message as string;
  assert.ok(text.length > 0, `${context}: an empty sentence`);
  assert.ok(text.length <= sentenceCharsMax, `${context}: a sentence of ${text.length} chars`);
}

const maxBytesCap = 8 * 1024 * 1024;
const maxWaitMs = 30_000;
const nowMs = 1_765_000_000_000;

/** Every frame parser over one text, as a WebSocket client may send it. */
export function checkFrame(text: string, context: string): void {
  const produce = parseProduceFrame(text);
  if (typeof produce === 'string') checkSentence(produce, `${context} (produce frame)`);
  else {
    assert.ok(!('context' in produce.fields), `${context}: context is taken out of the record fields`);
    const parsed = parseSingleProduce(produce.fields, limits, nowMs);
    if (parsed.kind === 'error') checkError(parsed.error, parsed.message, `${context} (produce record)`);
    else assert.equal(parsed.records.length, 1, context);
  }
  const consume = parseConsumeFrame(text);
  if (typeof consume === 'string') {
    checkSentence(consume, `${context} (consume frame)`);
    // A refused consume frame closes the socket with this sentence as the reason.
    checkCloseReason(consume, context);
  } else
    assert.ok(Number.isSafeInteger(consume.count) && consume.count >= 1 && consume.count <= PERMIT_COUNT_MAX);
  const group = parseGroupFrame(text);
  if (typeof group === 'string') checkSentence(group, `${context} (group frame)`);
  else if (group.type === 'permit') assert.ok(group.count >= 1 && group.count <= PERMIT_COUNT_MAX, context);
  else {
    assert.equal(typeof group.topic, 'string', context);
    assert.ok(
      Number.isInteger(group.partition) && group.partition >= 0 && group.partition < 2 ** 31,
      context,
    );
    assert.ok(Number.isSafeInteger(group.offset) && group.offset >= 0, `${context}: offset ${group.offset}`);
  }
}

/** A close reason is well-formed UTF-8 of at most 123 bytes, and the start of what it was made from. */
export function checkCloseReason(text: string, context: string): void {
  const reason = closeReason(text);
  assert.ok(isWellFormed(reason), `${context}: a close reason with a lone surrogate`);
  assert.ok(Buffer.byteLength(reason) <= CLOSE_REASON_BYTES_MAX, `${context}: a close reason over 123 bytes`);
  assert.ok(toWellFormed(text).startsWith(reason), `${context}: a close reason that is not a prefix`);
}

/** The acks and consume parsers over one query string. */
export function checkQuery(query: string, context: string): void {
  const acks = parseAcks(query);
  if (typeof acks === 'string') checkSentence(acks, `${context} (acks)`);
  else assert.ok(acks === 0 || acks === 1 || acks === 2, context);
  const consume = parseConsumeQuery(query, { maxBytesCap, maxWaitMs });
  if (isParamError(consume)) {
    checkError(consume.error, consume.message, `${context} (consume query)`);
    return;
  }
  assert.ok(
    consume.offset === FETCH_EARLIEST ||
      consume.offset === FETCH_LATEST ||
      (Number.isSafeInteger(consume.offset) && consume.offset >= 0),
    `${context}: offset ${consume.offset}`,
  );
  assert.ok(consume.limit >= 1 && consume.limit <= CONSUME_LIMIT_MAX, context);
  assert.ok(consume.maxBytes >= 1 && consume.maxBytes <= maxBytesCap, context);
  assert.ok(consume.waitMs >= 0 && consume.waitMs <= maxWaitMs, context);
}

/** The operators' and ACL body parsers over one JSON value. */
export function checkOpsBody(value: unknown, context: string): void {
  for (const replicationFactor of [1, 3]) {
    const alter = parseTopicAlter(value, replicationFactor);
    if (alter.kind === 'error') checkSentence(alter.message, `${context} (topic config)`);
    else {
      const c = alter.value;
      assert.ok(c.retentionMs !== null || c.retentionBytes !== null || c.minInsyncReplicas !== null, context);
      for (const v of [c.retentionMs, c.retentionBytes])
        assert.ok(v === null || Number.isSafeInteger(v), context);
      assert.ok(
        c.minInsyncReplicas === null ||
          (Number.isInteger(c.minInsyncReplicas) &&
            c.minInsyncReplicas >= 1 &&
            c.minInsyncReplicas <= replicationFactor),
        `${context}: min_insync_replicas ${c.minInsyncReplicas} with ${replicationFactor} replicas`,
      );
    }
  }
  const reset = parseOffsetReset(value, 64);
  if (reset.kind === 'error') checkSentence(reset.message, `${context} (offset reset)`);
  else {
    const r = reset.value;
    assert.equal(typeof r.topic, 'string', context);
    assert.ok(
      r.partitions === null || r.partitions.every((p) => Number.isInteger(p) && p >= 0 && p < 64),
      `${context}: partitions ${JSON.stringify(r.partitions)}`,
    );
    const t = r.target;
    if (t.to === 'offset') assert.ok(Number.isSafeInteger(t.offset) && t.offset >= 0, context);
    if (t.to === 'timestamp') assert.ok(Number.isSafeInteger(t.timestampMs) && t.timestampMs >= 0, context);
    if (t.to === 'shift') assert.ok(Number.isSafeInteger(t.shift), context);
  }
  const binding = bindingFromJson(value);
  if (typeof binding === 'string') checkSentence(binding, `${context} (ACL binding)`);
  else assert.equal(bindingProblem(binding), null, `${context}: a binding with a problem was accepted`);
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const filter = filterFromFields(value as Record<string, unknown>);
    if (typeof filter === 'string') checkSentence(filter, `${context} (ACL filter)`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Arbitraries.

const frameFields = [
  'type',
  'count',
  'topic',
  'partition',
  'offset',
  'context',
  'key',
  'value',
  'headers',
  'timestamp',
  'key_format',
  'value_format',
  '__proto__',
];
const frameTypes = fc.constantFrom('permit', 'commit', 'subscribe', 'PERMIT', '', 'record');
const frameObject = fc.dictionary(
  fc.constantFrom(...frameFields),
  fc.oneof(leaf, frameTypes, fc.integer(), fc.constant(-1), fc.constant(2 ** 31)),
  { maxKeys: 8 },
);
export const frameText = fc.oneof(
  frameObject.map((o) => JSON.stringify(o)),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.string({ unit: 'binary', maxLength: 200 }),
  frameObject.map((o) => JSON.stringify(o).slice(0, -1)),
);

const queryKeys = [
  'acks',
  'offset',
  'limit',
  'max_bytes',
  'wait_ms',
  'isolation',
  'value_format',
  'partition',
];
const queryValue = fc.oneof(
  nastyString,
  nastyNumber.map(String),
  fc.constantFrom(
    'all',
    '-1',
    '0',
    '1',
    'earliest',
    'latest',
    'read_committed',
    'base64',
    '%',
    '%zz',
    '%E0%A4%A',
  ),
  fc.string({ unit: 'binary', maxLength: 300 }),
);
export const queryText = fc.oneof(
  fc
    .array(fc.tuple(fc.oneof(fc.constantFrom(...queryKeys), fc.string({ maxLength: 8 })), queryValue), {
      maxLength: 6,
    })
    .map((pairs) => pairs.map(([k, v]) => `${k}=${v}`).join('&')),
  fc
    .array(fc.tuple(fc.constantFrom(...queryKeys), queryValue), { maxLength: 6 })
    .map((pairs) => new URLSearchParams(pairs).toString()),
  fc.string({ unit: 'binary', maxLength: 300 }),
);

const opsFields = [
  'retention_ms',
  'retention_bytes',
  'min_insync_replicas',
  'segment_bytes',
  'config',
  'topic',
  'partitions',
  'to',
  'offset',
  'timestamp',
  'shift',
  'dry_run',
  'principal',
  'resource_type',
  'pattern_type',
  'resource_name',
  'operation',
  'permission',
  // Consumer-group bodies (register, heartbeat, leave, commit) and partition-move plans.
  'consumer_id',
  'topics',
  'session_timeout_ms',
  'assignor',
  'generation',
  'metadata',
  'partition',
  'replicas',
  '__proto__',
];
const opsStrings = fc.constantFrom(
  'earliest',
  'latest',
  'offset',
  'timestamp',
  'shift',
  'topic',
  'group',
  'cluster',
  'literal',
  'prefixed',
  'read',
  'write',
  'all',
  'allow',
  'deny',
  'User:alice',
  '*',
  'sticky',
  'range',
  'roundrobin',
  'fz',
  'n1',
);
const opsValue: fc.Arbitrary<unknown> = fc.letrec<{ node: unknown }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    opsStrings,
    fc.array(fc.oneof(fc.integer({ min: -2, max: 70 }), nastyNumber, leaf, tie('node')), { maxLength: 6 }),
    fc.dictionary(fc.constantFrom(...opsFields), tie('node'), { maxKeys: 6 }),
  ),
})).node;
export const opsBody = fc.oneof(
  fc.dictionary(fc.constantFrom(...opsFields), opsValue, { maxKeys: 8 }),
  fc.jsonValue({ maxDepth: 3 }),
  fc.dictionary(fc.string({ unit: 'binary', maxLength: 400 }), leaf, { maxKeys: 40 }),
);

export const wsOpsProperties: readonly FuzzProperty[] = [
  fuzzProperty('close reasons: well-formed UTF-8 of at most 123 bytes, the start of the sentence', 300, () =>
    fc.property(
      fc.string({ unit: fc.constantFrom('binary', 'grapheme', 'binary-ascii'), maxLength: 200 }),
      (s) => checkCloseReason(s, JSON.stringify(s)),
    ),
  ),
  fuzzProperty(
    'WebSocket frames: every produce, consume and group frame parses in bounds or is named',
    300,
    () => fc.property(frameText, (text) => checkFrame(text, JSON.stringify(text.slice(0, 200)))),
  ),
  fuzzProperty('query strings: acks and the consume parameters parse in bounds or are a 4xx', 300, () =>
    fc.property(queryText, (query) => checkQuery(query, JSON.stringify(query.slice(0, 200)))),
  ),
  fuzzProperty('operators\u2019 and ACL bodies: config change, offset reset, bindings, filters', 300, () =>
    fc.property(opsBody, (body) => checkOpsBody(body, JSON.stringify(body)?.slice(0, 300) ?? 'undefined')),
  ),
];
