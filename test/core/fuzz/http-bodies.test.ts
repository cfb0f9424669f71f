// Fuzzing the HTTP parsers (issue 16): the nasty JSON corpus and every property of http-properties.ts, plus
// the regression tests of the failures they found, each naming its input.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BatchWriter } from '../../../src/core/log/record-batch.js';
import { decodePathParam } from '../../../src/http/params.js';
import { parseBatchProduce, parseSingleProduce } from '../../../src/http/produce-body.js';
import { recordFieldsJson } from '../../../src/http/record-json.js';
import { parseTopicCreate } from '../../../src/http/topic-body.js';
import { crc32 } from '../../../src/storage/crc.js';
import { assertProperty } from './fuzz-support.js';
import { checkNastyCorpus, httpProperties, limits, topicDefaults } from './http-properties.js';

describe('HTTP body and parameter parsers under fuzzing', () => {
  test('the nasty JSON corpus (deep nesting, huge numbers, bad UTF-8, __proto__, long strings) never throws', () => {
    checkNastyCorpus();
  });
  for (const property of httpProperties) test(property.name, () => assertProperty(property));
});

describe('regressions found by the HTTP fuzzing', () => {
  test('a batch with timestamps 0 and 2^53-1 is refused, not an assertion in the batch writer', () => {
    const body = {
      records: [
        { value: 'a', timestamp: 0 },
        { value: 'b', timestamp: Number.MAX_SAFE_INTEGER },
      ],
    };
    const result = parseBatchProduce(body, limits, 1_765_000_000_000);
    assert.equal(result.kind, 'error');
    if (result.kind === 'error') assert.match(result.message, /timestamp/);
    const single = parseSingleProduce({ value: 'v', timestamp: 2 ** 51 }, limits, 0);
    assert.equal(single.kind, 'error');
    // The largest timestamp accepted still writes next to the clock's.
    const edge = parseBatchProduce(
      {
        records: [
          { value: 'a', timestamp: 0 },
          { value: 'b', timestamp: 2 ** 51 - 1 },
        ],
      },
      limits,
      1_765_000_000_000,
    );
    assert.equal(edge.kind, 'ok');
    if (edge.kind !== 'ok') return;
    const writer = new BatchWriter(1024, 1024 * 1024);
    writer.beginBatch();
    for (const r of edge.records) writer.addRecord(r.timestampMs, null, null);
    writer.addRecord(1_765_000_000_000, null, null);
    writer.endBatch(crc32);
  });

  test('a topic body with num_partitions nested 2*10^5 arrays deep is a 400, not a stack overflow', () => {
    const deep = JSON.parse(`${'['.repeat(200_000)}${']'.repeat(200_000)}`) as unknown;
    for (const body of [
      { num_partitions: deep },
      { config: { retention_ms: deep } },
      { config: { cleanup_policy: deep } },
    ]) {
      const result = parseTopicCreate('t', body, topicDefaults);
      assert.equal(result.kind, 'error');
      if (result.kind === 'error') assert.ok(result.message.length < 2048, 'a short message');
    }
  });

  test('a topic body with a 2 MiB cleanup_policy string answers a short message, not the string back', () => {
    const result = parseTopicCreate('t', { config: { cleanup_policy: 'x'.repeat(2 ** 21) } }, topicDefaults);
    assert.equal(result.kind, 'error');
    if (result.kind === 'error') assert.ok(result.message.length < 2048, `${result.message.length} chars`);
  });

  test('a topic body with 10^4 unknown config fields answers a short message listing the first few', () => {
    const config = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`f${i}`, 1]));
    const result = parseTopicCreate('t', { config }, topicDefaults);
    assert.equal(result.kind, 'error');
    if (result.kind !== 'error') return;
    assert.ok(result.message.length < 2048, `${result.message.length} chars`);
    assert.match(result.message, /unknown config field 'f0'.*and 9992 more problems/);
  });

  test('a produce body whose unknown field name is 2 MiB long answers a short message', () => {
    const result = parseSingleProduce({ value: 'v', ['k'.repeat(2 ** 21)]: 1 }, limits, 0);
    assert.equal(result.kind, 'error');
    if (result.kind === 'error') assert.ok(result.message.length < 2048, `${result.message.length} chars`);
  });

  test("path parameter '%E0%A4%A' (a malformed escape) decodes to itself instead of throwing URIError", () => {
    assert.equal(decodePathParam('%E0%A4%A'), '%E0%A4%A');
    assert.equal(decodePathParam('%'), '%');
    assert.equal(decodePathParam('a%2Fb'), 'a/b');
  });

  test("a consumed record's header named '__proto__' is in its JSON headers", () => {
    const json = recordFieldsJson(
      {
        offset: 0,
        timestampMs: 1,
        key: null,
        value: null,
        headers: [{ key: Buffer.from('__proto__'), value: Buffer.from('v') }],
      },
      false,
    );
    const parsed = JSON.parse(`{${json}`) as { headers: Record<string, unknown> };
    assert.deepEqual(Object.entries(parsed.headers), [['__proto__', 'v']]);
  });
});
