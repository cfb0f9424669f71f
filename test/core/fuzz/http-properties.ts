// Fuzz properties of the HTTP parsing functions (issue 16): produce bodies (single and batch), topic-creation
// bodies, JSON object bodies (the first step of every group and commit body), integer path and query
// parameters, percent-decoded path parameters and the consumed-record JSON. Over arbitrary JSON values, JSON
// texts and bytes, each parser returns a valid parse or an error value with a 4xx code and a message that
// names the problem; it never throws. A valid produce parse must also be writable into one record batch
// (BatchWriter asserts, and an assertion stops the partition worker).
// Pure; runs on the main thread of a test or of tools/fuzz.ts.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { type ErrorName, errors, httpStatusOf } from '../../../src/core/errors.js';
import { BatchWriter, type DecodedRecord, type RecordHeader } from '../../../src/core/log/record-batch.js';
import { validateTopicName } from '../../../src/core/names.js';
import { objectBodyOrReply } from '../../../src/http/object-body.js';
import {
  decodePathParam,
  isParamError,
  parseIntegerParam,
  parseOptionalIntegerParam,
} from '../../../src/http/params.js';
import {
  type ParsedRecord,
  type ProduceLimits,
  type ProduceParse,
  parseBatchProduce,
  parseJsonBody,
  parseSingleProduce,
} from '../../../src/http/produce-body.js';
import { recordFieldsJson } from '../../../src/http/record-json.js';
import type { HttpRequest, Reply } from '../../../src/http/server.js';
import { parseTopicCreate, type TopicDefaults, type TopicParse } from '../../../src/http/topic-body.js';
import { crc32 } from '../../../src/storage/crc.js';
import { type FuzzProperty, fuzzProperty, nastyJsonBytes, nastyJsonTexts } from './fuzz-support.js';

export const limits: ProduceLimits = { recordBytesMax: 1024 * 1024, batchRecordsMax: 10_000, headersMax: 64 };
export const topicDefaults: TopicDefaults = {
  numPartitions: 1,
  replicationFactor: 1,
  retentionMs: 7 * 24 * 3600 * 1000,
  retentionBytes: -1,
  segmentBytes: 128 * 1024 * 1024,
  partitionsMax: 10_000,
  liveBrokers: 3,
};
const nowMs = 1_765_000_000_000;
/** An error message names the problem in a sentence, not by echoing a megabyte of the client's input. */
const messageCharsMax = 2048;

export function checkError(error: ErrorName, message: string, context: string): void {
  const spec = errors[error];
  assert.ok(spec !== undefined, `${context}: unknown error name ${error}`);
  const status = httpStatusOf(spec.code);
  assert.ok(status >= 400 && status < 500, `${context}: bad input answered ${status}`);
  assert.equal(typeof message, 'string', `${context}: message`);
  assert.ok(message.length > 0, `${context}: empty message`);
  assert.ok(message.length <= messageCharsMax, `${context}: message of ${message.length} chars`);
}

const utf8 = (text: string): Uint8Array => Buffer.from(text, 'utf8');

/** A valid produce parse holds sane records, and they fit one record batch as the partition worker writes it. */
function checkProduce(result: ProduceParse, context: string): void {
  if (result.kind === 'error') return checkError(result.error, result.message, context);
  assert.equal(result.kind, 'ok', context);
  assert.ok(result.records.length >= 1 && result.records.length <= limits.batchRecordsMax, context);
  const writer = new BatchWriter(1024, 64 * 1024 * 1024);
  writer.beginBatch();
  for (const record of result.records) checkRecord(record, writer, context);
  writer.endBatch(crc32);
}

function checkRecord(record: ParsedRecord, writer: BatchWriter, context: string): void {
  assert.ok(Number.isSafeInteger(record.timestampMs) && record.timestampMs >= 0, `${context}: timestamp`);
  assert.ok(
    record.partition === null || (Number.isInteger(record.partition) && record.partition >= 0),
    `${context}: partition ${record.partition}`,
  );
  const bytesOf = (field: string | Uint8Array | null) =>
    field === null ? null : typeof field === 'string' ? utf8(field) : field;
  const key = bytesOf(record.key);
  const value = bytesOf(record.value);
  const headers: RecordHeader[] = (record.headers ?? []).map(([name, headerValue]) => ({
    key: name,
    value: bytesOf(headerValue),
  }));
  assert.ok(headers.length <= limits.headersMax, `${context}: headers`);
  let size = (key?.byteLength ?? 0) + (value?.byteLength ?? 0);
  for (const header of headers) size += utf8(header.key).byteLength + (header.value?.byteLength ?? 0);
  assert.ok(size <= limits.recordBytesMax, `${context}: record of ${size} bytes`);
  writer.addRecord(record.timestampMs, key, value, headers);
}

function checkTopic(result: TopicParse, context: string): void {
  if (result.kind === 'error') return checkError(result.error, result.message, context);
  const r = result.request;
  assert.ok(Number.isSafeInteger(r.numPartitions) && r.numPartitions >= 1, `${context}: partitions`);
  assert.ok(r.numPartitions <= topicDefaults.partitionsMax, `${context}: partitions max`);
  assert.ok(r.replicationFactor >= 1 && r.replicationFactor <= topicDefaults.liveBrokers, context);
  assert.ok(r.config.minInsyncReplicas >= 1 && r.config.minInsyncReplicas <= r.replicationFactor, context);
  assert.ok(Number.isSafeInteger(r.config.retentionMs) && r.config.retentionMs >= -1, context);
  assert.ok(Number.isSafeInteger(r.config.retentionBytes) && r.config.retentionBytes >= -1, context);
  assert.ok(Number.isSafeInteger(r.config.segmentBytes) && r.config.segmentBytes >= 1024 * 1024, context);
  assert.equal(typeof r.rackAwareness, 'boolean', context);
}

/** The JSON object stage of group, commit and admin bodies, with a recording fake reply. */
function checkObjectBody(body: Buffer, context: string): void {
  const answers: [ErrorName, string][] = [];
  const reply = { error: (name: ErrorName, message: string) => void answers.push([name, message]) };
  const request = { body } as unknown as HttpRequest;
  for (const emptyOk of [false, true]) {
    answers.length = 0;
    const parsed = objectBodyOrReply(request, reply as unknown as Reply, emptyOk);
    if (parsed === null) {
      assert.equal(answers.length, 1, `${context}: one error answer`);
      checkError(answers[0]![0], answers[0]![1], context);
    } else {
      assert.equal(answers.length, 0, `${context}: no answer for a parsed body`);
      assert.ok(typeof parsed === 'object' && !Array.isArray(parsed), `${context}: an object`);
    }
  }
}

/** Every parser over one JSON text (as bytes decoded the way the acceptor decodes them). */
export function checkAllParsers(body: Buffer, context: string): void {
  checkObjectBody(body, context);
  const json = parseJsonBody(body.toString('utf8'));
  if (!json.ok) {
    checkError('bad_request', json.message, context);
    return;
  }
  checkProduce(parseSingleProduce(json.value, limits, nowMs), `${context} (single produce)`);
  checkProduce(parseBatchProduce(json.value, limits, nowMs), `${context} (batch produce)`);
  checkTopic(parseTopicCreate('t', json.value, topicDefaults), `${context} (topic create)`);
}

function checkAllParsersOnValue(value: unknown, context: string): void {
  checkProduce(parseSingleProduce(value, limits, nowMs), `${context} (single produce)`);
  checkProduce(parseBatchProduce(value, limits, nowMs), `${context} (batch produce)`);
  checkTopic(parseTopicCreate('t', value, topicDefaults), `${context} (topic create)`);
}

// ---------------------------------------------------------------------------------------------------------
// Arbitraries.

export const nastyNumber = fc.constantFrom(
  0,
  -0,
  -1,
  1.5,
  2 ** 31,
  2 ** 32,
  2 ** 51 - 1,
  2 ** 51,
  Number.MAX_SAFE_INTEGER,
  Number.MAX_SAFE_INTEGER + 2,
  1e308,
  -1e308,
  Number.MIN_VALUE,
);
export const nastyString = fc.oneof(
  fc.constantFrom('', 'NaN', 'Infinity', '-0', '0x10', '1e3', ' 1', 'base64', 'string', 'delete', 'compact'),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.base64String({ maxLength: 24 }),
);
export const leaf = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  nastyNumber,
  nastyString,
  fc.boolean(),
  fc.constant(null),
);
const fieldNames = [
  'key',
  'value',
  'headers',
  'partition',
  'timestamp',
  'key_format',
  'value_format',
  'records',
  'num_partitions',
  'replication_factor',
  'rack_awareness',
  'config',
  'retention_ms',
  'retention_bytes',
  'segment_bytes',
  'min_insync_replicas',
  'cleanup_policy',
  'unclean_leader_election',
  'value_schema',
  '__proto__',
  'constructor',
  'toString',
];
/** Objects whose keys are mostly the fields the parsers know, so that the values reach the deep checks. */
export const fieldy: fc.Arbitrary<unknown> = fc.letrec<{ node: unknown }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.dictionary(fc.oneof(fc.constantFrom(...fieldNames), fc.string({ maxLength: 6 })), tie('node'), {
      maxKeys: 6,
    }),
    fc.array(tie('node'), { maxLength: 4 }),
  ),
})).node;
const record = fc.dictionary(
  fc.constantFrom('key', 'value', 'headers', 'partition', 'timestamp', 'key_format', 'value_format'),
  fc.oneof(leaf, fc.dictionary(fc.string({ unit: 'binary', maxLength: 8 }), leaf, { maxKeys: 4 })),
  { maxKeys: 7 },
);
const produceBody = fc.oneof(record, fc.record({ records: fc.array(record, { maxLength: 8 }) }));
const topicBody = fc.dictionary(
  fc.constantFrom('num_partitions', 'replication_factor', 'rack_awareness', 'config'),
  fc.oneof(
    leaf,
    fc.dictionary(fc.constantFrom(...fieldNames.slice(12)), fc.oneof(leaf, fc.integer()), { maxKeys: 7 }),
  ),
  { maxKeys: 4 },
);

// ---------------------------------------------------------------------------------------------------------
// Properties.

/** The fixed corpus of nasty JSON (see fuzz-support.ts) through every body parser; throws naming the input. */
export function checkNastyCorpus(): void {
  for (const [name, text] of nastyJsonTexts) checkAllParsers(Buffer.from(text, 'utf8'), name);
  for (const [name, bytes] of nastyJsonBytes) checkAllParsers(bytes, name);
}

export const httpProperties: readonly FuzzProperty[] = [
  fuzzProperty('arbitrary JSON values: every body parser answers a valid parse or a 4xx', 300, () =>
    fc.property(fc.oneof(fc.jsonValue(), fieldy), (value) => {
      checkAllParsersOnValue(value, 'value');
      checkAllParsers(Buffer.from(JSON.stringify(value) ?? '', 'utf8'), 'text');
    }),
  ),
  fuzzProperty('produce bodies of known fields with nasty values parse or fail with a 4xx', 300, () =>
    fc.property(produceBody, (value) => checkAllParsersOnValue(value, 'produce body')),
  ),
  fuzzProperty('topic bodies of known fields with nasty values parse or fail with a 4xx', 300, () =>
    fc.property(topicBody, (value) => checkTopic(parseTopicCreate('t', value, topicDefaults), 'topic body')),
  ),
  fuzzProperty('random bytes as a body never throw in any body parser', 300, () =>
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 64 }),
        fc.jsonValue().map((v) => {
          // A JSON text with one byte changed: mostly invalid JSON or invalid UTF-8 near a valid shape.
          const bytes = Buffer.from(JSON.stringify(v) ?? 'null', 'utf8');
          if (bytes.length > 0) bytes[(v === null ? 0 : bytes.length >> 1) % bytes.length] = 0xff;
          return new Uint8Array(bytes);
        }),
      ),
      (bytes) => checkAllParsers(Buffer.from(bytes), 'bytes'),
    ),
  ),
  fuzzProperty('an integer parameter is exactly a decimal in range, or a 400 naming it', 300, () =>
    fc.property(
      fc.oneof(
        fc.string({ unit: 'binary', maxLength: 24 }),
        fc.stringMatching(/^[-+ 0]?[0-9]{0,20}(\.[0-9]?)?(e[0-9])?$/),
        fc.constantFrom('', '-0', '+1', '1e3', ' 1', '0x1', '9007199254740992', '00', 'NaN', '１'),
      ),
      fc.integer({ min: 0, max: 1000 }),
      fc.constantFrom(Number.MAX_SAFE_INTEGER, 0x7fffffff, 1000),
      (text, min, max) => {
        const parsed = parseIntegerParam('partition', text, min, max);
        if (isParamError(parsed)) {
          checkError(parsed.error, parsed.message, `param '${text}'`);
          assert.ok(parsed.message.includes('partition'), 'the message names the parameter');
        } else {
          assert.ok(Number.isSafeInteger(parsed) && parsed >= min && parsed <= max, `'${text}' in range`);
          assert.equal(String(parsed), text, 'only the canonical decimal is accepted');
        }
        const optional = parseOptionalIntegerParam('limit', text, min, max, min);
        if (text === '') assert.equal(optional, min);
        else assert.deepEqual(optional, parseIntegerParam('limit', text, min, max));
      },
    ),
  ),
  fuzzProperty(
    'query strings: offset, limit and partition read through URLSearchParams never throw',
    300,
    () =>
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 40 }),
          fc
            .array(
              fc.tuple(
                fc.constantFrom('offset', 'limit', 'partition', 'acks', 'max_bytes', '%', '%zz', 'a'),
                fc.oneof(
                  fc.string({ unit: 'binary', maxLength: 8 }),
                  fc.constantFrom('%', '%E0%A4%A', '%ff', '1'),
                ),
              ),
              { maxLength: 5 },
            )
            .map((pairs) => pairs.map(([k, v]) => `${k}=${v}`).join('&')),
        ),
        (query) => {
          const params = new URLSearchParams(query);
          for (const name of ['offset', 'limit', 'partition', 'max_bytes']) {
            const parsed = parseOptionalIntegerParam(name, params.get(name) ?? undefined, 0, 2 ** 31, 0);
            if (isParamError(parsed)) checkError(parsed.error, parsed.message, `query '${query}'`);
            else assert.ok(Number.isSafeInteger(parsed));
          }
        },
      ),
  ),
  fuzzProperty(
    'path parameters: percent-decoding never throws and round-trips what a client encodes',
    300,
    () =>
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 30 }),
          fc
            .array(
              fc.oneof(
                fc.constantFrom('%', '%2', '%zz', '%E0%A4%A', '%ED%A0%80', '%C0%AF', '%25'),
                fc.string(),
              ),
            )
            .map((parts) => parts.join('')),
        ),
        fc.string({ unit: 'grapheme', maxLength: 30 }),
        (raw, text) => {
          const decoded = decodePathParam(raw);
          assert.equal(typeof decoded, 'string');
          const problem = validateTopicName(decoded);
          if (problem !== null) assert.ok(problem.length > 0 && problem.length <= messageCharsMax);
          assert.equal(decodePathParam(encodeURIComponent(text)), text);
        },
      ),
  ),
  fuzzProperty(
    'the consumed-record JSON is valid JSON holding every header name, __proto__ included',
    300,
    () =>
      fc.property(
        fc.array(
          fc.tuple(
            fc.oneof(
              fc.constantFrom('__proto__', 'constructor', 'toString', ''),
              fc.string({ unit: 'binary' }),
            ),
            fc.option(fc.uint8Array({ maxLength: 12 }), { nil: null }),
          ),
          { maxLength: 6 },
        ),
        fc.option(fc.uint8Array({ maxLength: 16 }), { nil: null }),
        fc.boolean(),
        (headers, value, base64) => {
          const record: DecodedRecord = {
            offset: 7,
            timestampMs: nowMs,
            key: null,
            value,
            headers: headers.map(([name, headerValue]) => ({ key: utf8(name), value: headerValue })),
          };
          const parsed = JSON.parse(`{${recordFieldsJson(record, base64)}`) as Record<string, unknown>;
          const expected = new Map<string, string | null>();
          for (const h of record.headers) {
            expected.set(
              Buffer.from(h.key).toString('utf8'),
              h.value === null ? null : Buffer.from(h.value).toString('utf8'),
            );
          }
          const got = parsed.headers as Record<string, unknown>;
          assert.deepEqual(
            Object.keys(got).sort(),
            [...expected.keys()].sort(),
            'every header name is in the JSON headers',
          );
          for (const [name, headerValue] of expected)
            assert.equal(got[name], headerValue, `header '${name}'`);
          if (value === null) assert.equal(parsed.value, null);
          else if (base64)
            assert.deepEqual(new Uint8Array(Buffer.from(parsed.value as string, 'base64')), value);
        },
      ),
  ),
];
