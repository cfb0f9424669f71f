// The schema-driven codec and the request/response framing: hand-built requests (byte by byte from Kafka's
// protocol definitions) decode to the right values, responses encode to the right bytes, every message of every
// claimed version round-trips, and garbage of any shape is an error value, never an exception.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ApiKey, apiRange, supportedApis } from '../../../src/core/kafka/api-keys.js';
import { apiVersionsResponse } from '../../../src/core/kafka/api-versions.js';
import { decodeMessage, encodeMessage, type MessageValue } from '../../../src/core/kafka/codec.js';
import {
  decodeRequestBody,
  decodeRequestHeader,
  encodeResponseFrame,
  type HeaderResult,
} from '../../../src/core/kafka/header.js';
import {
  type ApiVersionsRequest,
  ApiVersionsRequestSpec,
  ApiVersionsResponseSpec,
  type MetadataRequest,
  MetadataRequestSpec,
  messageSpecs,
  type ProduceRequest,
  ProduceRequestSpec,
} from '../../../src/core/kafka/messages.generated.js';
import { KafkaReader, KafkaWriter } from '../../../src/core/kafka/primitives.js';
import { type FieldSpec, inSpan, type MessageSpec } from '../../../src/core/kafka/schema.js';

const hex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text.replace(/[\s|]/g, ''), 'hex'));
const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const ascii = (text: string): string => Buffer.from(text).toString('hex');
const PRODUCE_BYTES_MAX = 1024 * 1024;

function request(result: HeaderResult) {
  assert.equal(result.kind, 'request', JSON.stringify(result));
  if (result.kind !== 'request') throw new Error('unreachable');
  return result;
}

describe('Kafka request headers', () => {
  test('ApiVersions v3 from a flexible client: header v2 with tagged fields, compact body', () => {
    // apiKey 18, version 3, correlation 7, clientId "kcat" (int16 length), no header tags;
    // body: clientSoftwareName "kcat", clientSoftwareVersion "1.7.1", no tags.
    const frame = hex(
      `0012 0003 00000007 0004${ascii('kcat')} 00 | 05${ascii('kcat')} 06${ascii('1.7.1')} 00`,
    );
    const { header, bodyStart } = request(decodeRequestHeader(frame, PRODUCE_BYTES_MAX));
    assert.equal(header.api.name, 'ApiVersions');
    assert.equal(header.apiVersion, 3);
    assert.equal(header.correlationId, 7);
    assert.equal(header.clientId, 'kcat');
    const body = decodeRequestBody<ApiVersionsRequest>(ApiVersionsRequestSpec, header, frame, bodyStart);
    assert.deepEqual(body, {
      kind: 'ok',
      value: { clientSoftwareName: 'kcat', clientSoftwareVersion: '1.7.1' },
    });
  });

  test('ApiVersions v0 (kafkajs first contact): header v1 and an empty body', () => {
    const frame = hex(`0012 0000 00000001 0007${ascii('kafkajs')}`);
    const { header, bodyStart } = request(decodeRequestHeader(frame, PRODUCE_BYTES_MAX));
    const body = decodeRequestBody<ApiVersionsRequest>(ApiVersionsRequestSpec, header, frame, bodyStart);
    assert.deepEqual(body, { kind: 'ok', value: { clientSoftwareName: '', clientSoftwareVersion: '' } });
  });

  test('ApiVersions of a version above the range is answered, not closed (KIP-511)', () => {
    const frame = hex(`0012 0009 0000002a ffff 00`);
    assert.deepEqual(decodeRequestHeader(frame, PRODUCE_BYTES_MAX), {
      kind: 'api_versions_unsupported',
      correlationId: 42,
      apiVersion: 9,
    });
  });

  test('an unknown API, a version outside the range, an oversized or short frame close the connection', () => {
    const cases: [Uint8Array, RegExp][] = [
      [hex('0044 0000 00000001 ffff'), /API key 68 is not supported/],
      [hex('0000 0002 00000001 ffff'), /Produce v2 is outside v3-9/],
      [hex('0001 0003 00000001 ffff'), /Fetch v3 is outside v4-13/],
      [hex('0003'), /shorter than a header/],
      [hex('0003 0001 00000001 0009 61'), /request header/],
      [new Uint8Array(2 * 1024 * 1024).fill(0, 0, 10), /Produce request of 2097152 bytes is above 1048576/],
    ];
    const metadata = new Uint8Array(1024 * 1024 + 1);
    metadata.set(hex('0003 0001 00000001 ffff'));
    cases.push([metadata, /Metadata request of 1048577 bytes is above 1048576/]);
    for (const [frame, reason] of cases) {
      const result = decodeRequestHeader(frame, PRODUCE_BYTES_MAX);
      assert.equal(result.kind, 'close', toHex(frame.subarray(0, 12)));
      if (result.kind === 'close') assert.match(result.reason, reason);
    }
  });

  test('a Produce v3 request decodes to its topics and a view of the record batch bytes', () => {
    const frame = hex(
      `0000 0003 00000005 0001${ascii('p')}` +
        ` ffff ffff 00007530 00000001 0001${ascii('t')} 00000001 00000002 00000003 010203`,
    );
    const { header, bodyStart } = request(decodeRequestHeader(frame, PRODUCE_BYTES_MAX));
    const body = decodeRequestBody<ProduceRequest>(ProduceRequestSpec, header, frame, bodyStart);
    assert.equal(body.kind, 'ok');
    if (body.kind !== 'ok') return;
    assert.equal(body.value.transactionalId, null);
    assert.equal(body.value.acks, -1);
    assert.equal(body.value.timeoutMs, 30000);
    const [topic] = body.value.topicData;
    assert.equal(topic?.name, 't');
    assert.equal(topic?.partitionData[0]?.index, 2);
    assert.equal(toHex(topic?.partitionData[0]?.records ?? new Uint8Array()), '010203');
  });

  test('Metadata v1 with a null topic list (all topics) and v4 with allowAutoTopicCreation', () => {
    const v1 = decodeMessage<MetadataRequest>(MetadataRequestSpec, 1, new KafkaReader(hex('ffffffff')));
    assert.deepEqual(v1, {
      kind: 'ok',
      value: {
        topics: null,
        allowAutoTopicCreation: true,
        includeClusterAuthorizedOperations: false,
        includeTopicAuthorizedOperations: false,
      },
    });
    const v4 = decodeMessage<MetadataRequest>(
      MetadataRequestSpec,
      4,
      new KafkaReader(hex(`00000001 0003${ascii('abc')} 00`)),
    );
    assert.equal(v4.kind, 'ok');
    if (v4.kind === 'ok') {
      assert.equal(v4.value.topics?.[0]?.name, 'abc');
      assert.equal(v4.value.allowAutoTopicCreation, false);
    }
  });

  test('bytes left after a message are garbage', () => {
    const result = decodeMessage(MetadataRequestSpec, 1, new KafkaReader(hex('ffffffff 00')));
    assert.equal(result.kind, 'error');
  });
});

describe('Kafka response frames', () => {
  test('ApiVersions v0 response: size, correlation id, error code, the API list', () => {
    const writer = new KafkaWriter(8);
    const body = apiVersionsResponse([ApiKey.Metadata, ApiKey.ApiVersions], 0);
    const api = apiRange(ApiKey.ApiVersions)!;
    const frame = encodeResponseFrame(writer, ApiVersionsResponseSpec, api, 0, 9, body);
    assert.equal(
      toHex(frame),
      '00000016' + '00000009' + '0000' + '00000002' + '00030001000c' + '001200000003',
    );
  });

  test('ApiVersions v3 response keeps header v0 but a compact body with tagged fields', () => {
    const writer = new KafkaWriter();
    const body = apiVersionsResponse([ApiKey.Produce], 0);
    const api = apiRange(ApiKey.ApiVersions)!;
    const frame = encodeResponseFrame(writer, ApiVersionsResponseSpec, api, 3, 1, body);
    // errorCode, compact array of 1 (02): key 0 v3-9 + no tags, throttle 0, no top-level tags
    // (supportedFeatures, finalizedFeaturesEpoch and finalizedFeatures are tagged and at their defaults).
    assert.equal(
      toHex(frame),
      '00000013' + '00000001' + '0000' + '02' + '000000030009' + '00' + '00000000' + '00',
    );
  });

  test('a flexible response gets header v1: an empty tagged-field section after the correlation id', () => {
    const writer = new KafkaWriter();
    const api = apiRange(ApiKey.Heartbeat)!;
    const frame = encodeResponseFrame(writer, messageSpecs.Heartbeat.response, api, 4, 3, {
      throttleTimeMs: 0,
      errorCode: 27,
    });
    assert.equal(toHex(frame), '0000000c' + '00000003' + '00' + '00000000' + '001b' + '00');
  });
});

// ---------------------------------------------------------------------------------------------------------
// Round trips over every message and version, with values drawn from the spec itself.

function valueArbitrary(
  fields: readonly FieldSpec[],
  version: number,
  flexible: boolean,
): fc.Arbitrary<MessageValue> {
  const record: Record<string, fc.Arbitrary<unknown>> = {};
  for (const field of fields) {
    if (!inSpan(field.versions, version)) continue;
    // Tagged fields appear only in flexible versions; outside them they keep their default.
    if (field.taggedVersions !== null && !flexible) continue;
    record[field.name] = fieldArbitrary(field, version, flexible);
  }
  return fc.record(record) as fc.Arbitrary<MessageValue>;
}

function fieldArbitrary(field: FieldSpec, version: number, flexible: boolean): fc.Arbitrary<unknown> {
  const nullable = inSpan(field.nullable, version);
  const element = elementArbitrary(field, version, flexible, nullable && !field.array);
  if (!field.array) return element;
  const items = fc.array(element, { maxLength: 3 });
  return nullable ? fc.option(items, { nil: null }) : items;
}

function elementArbitrary(field: FieldSpec, version: number, flexible: boolean, nullable: boolean) {
  let arb: fc.Arbitrary<unknown>;
  switch (field.type) {
    case 'bool':
      arb = fc.boolean();
      break;
    case 'int8':
      arb = fc.integer({ min: -128, max: 127 });
      break;
    case 'int16':
      arb = fc.integer({ min: -32768, max: 32767 });
      break;
    case 'uint16':
      arb = fc.integer({ min: 0, max: 65535 });
      break;
    case 'int32':
      arb = fc.integer({ min: -0x80000000, max: 0x7fffffff });
      break;
    case 'int64':
      arb = fc.maxSafeInteger();
      break;
    case 'float64':
      arb = fc.double({ noNaN: true });
      break;
    case 'uuid':
      arb = fc.uint8Array({ minLength: 16, maxLength: 16 });
      break;
    case 'string':
      arb = fc.string({ unit: 'grapheme', maxLength: 12 });
      break;
    case 'bytes':
    case 'records':
      arb = fc.uint8Array({ maxLength: 20 });
      break;
    case 'struct':
      arb = valueArbitrary(field.fields!, version, flexible);
      break;
  }
  return nullable ? fc.option(arb, { nil: null }) : arb;
}

/** What the decoder returns for a value: absent fields take their defaults, byte views compare by content. */
function normalise(value: unknown): unknown {
  if (value instanceof Uint8Array) return toHex(value);
  if (Array.isArray(value)) return value.map(normalise);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalise(v)]));
  }
  return value;
}

function withDefaults(
  fields: readonly FieldSpec[],
  value: MessageValue,
  version: number,
  flexible: boolean,
): MessageValue {
  const empty = decodeMessageDefaults(fields, version, flexible);
  const out: MessageValue = { ...empty };
  for (const field of fields) {
    const v = value[field.name];
    if (v === undefined) continue;
    if (field.type === 'struct' && v !== null) {
      out[field.name] = field.array
        ? (v as MessageValue[]).map((item) => withDefaults(field.fields!, item, version, flexible))
        : withDefaults(field.fields!, v as MessageValue, version, flexible);
    } else out[field.name] = v;
  }
  return out;
}

function decodeMessageDefaults(
  fields: readonly FieldSpec[],
  version: number,
  flexible: boolean,
): MessageValue {
  const out: MessageValue = {};
  for (const field of fields) {
    if (field.array) out[field.name] = field.defaultValue === null ? null : [];
    else if (field.type === 'struct')
      out[field.name] = decodeMessageDefaults(field.fields!, version, flexible);
    else if (field.type === 'uuid') out[field.name] = new Uint8Array(16);
    else if (field.type === 'bytes' || field.type === 'records')
      out[field.name] = field.defaultValue === null ? null : new Uint8Array(0);
    else out[field.name] = field.defaultValue;
  }
  return out;
}

const allSpecs: MessageSpec[] = Object.values(messageSpecs).flatMap((pair) => [pair.request, pair.response]);

describe('every claimed message version', () => {
  test('covers each supported API with a request and a response spec', () => {
    assert.deepEqual(Object.keys(messageSpecs).sort(), supportedApis.map((api) => api.name).sort());
  });

  for (const spec of allSpecs) {
    test(`${spec.name} v${spec.versions.min}-${spec.versions.max} round-trips`, () => {
      const writer = new KafkaWriter(64);
      for (let version = spec.versions.min; version <= spec.versions.max; version++) {
        const flexible = spec.flexibleMin !== null && version >= spec.flexibleMin;
        fc.assert(
          fc.property(valueArbitrary(spec.fields, version, flexible), (value) => {
            writer.reset();
            encodeMessage(spec, version, value, writer);
            const bytes = writer.finish().slice();
            const decoded = decodeMessage(spec, version, new KafkaReader(bytes));
            assert.equal(decoded.kind, 'ok', `${spec.name} v${version}: ${JSON.stringify(decoded)}`);
            if (decoded.kind !== 'ok') return;
            assert.deepEqual(
              normalise(decoded.value),
              normalise(withDefaults(spec.fields, value, version, flexible)),
            );
          }),
          { numRuns: 40 },
        );
      }
    });
  }

  test('truncated, extended and bit-flipped messages decode to an error value or a value, never a throw', () => {
    const writer = new KafkaWriter(64);
    const cases = allSpecs.flatMap((spec) => {
      const versions = [];
      for (let v = spec.versions.min; v <= spec.versions.max; v++) versions.push({ spec, version: v });
      return versions;
    });
    fc.assert(
      fc.property(
        fc.constantFrom(...cases).chain(({ spec, version }) => {
          const flexible = spec.flexibleMin !== null && version >= spec.flexibleMin;
          return fc.tuple(
            fc.constant(spec),
            fc.constant(version),
            valueArbitrary(spec.fields, version, flexible),
          );
        }),
        fc.nat(),
        fc.integer({ min: 0, max: 2 }),
        fc.uint8Array({ minLength: 1, maxLength: 8 }),
        ([spec, version, value], where, how, noise) => {
          writer.reset();
          encodeMessage(spec, version, value, writer);
          const good = writer.finish().slice();
          let bad: Uint8Array;
          if (how === 0) bad = good.subarray(0, where % (good.length + 1));
          else if (how === 1) bad = Buffer.concat([good, noise]);
          else {
            bad = good.slice();
            if (bad.length > 0) bad[where % bad.length]! ^= noise[0]! | 1;
          }
          const result = decodeMessage(spec, version, new KafkaReader(bad));
          if (how !== 2) assert.equal(result.kind, bad.length === good.length ? 'ok' : 'error');
        },
      ),
      { numRuns: 2000 },
    );
  });

  test('random frames never throw from the header or body decoders', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...supportedApis),
        fc.integer({ min: -1, max: 20 }),
        fc.uint8Array({ maxLength: 200 }),
        (api, version, body) => {
          const frame = new Uint8Array(10 + body.length);
          new DataView(frame.buffer).setInt16(0, api.apiKey);
          new DataView(frame.buffer).setInt16(2, version);
          new DataView(frame.buffer).setInt16(8, -1);
          frame.set(body, 10);
          const result = decodeRequestHeader(frame, PRODUCE_BYTES_MAX);
          if (result.kind !== 'request') return;
          const spec = Object.values(messageSpecs).find(
            (pair) => pair.request.apiKey === api.apiKey,
          )!.request;
          const decoded = decodeRequestBody(spec, result.header, frame, result.bodyStart);
          assert.ok(decoded.kind === 'ok' || decoded.kind === 'error');
        },
      ),
      { numRuns: 3000 },
    );
  });
});
