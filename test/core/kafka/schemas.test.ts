// The codec tables match Kafka's published JSON message schemas for every claimed version: the generated module
// is exactly what the schemas produce today, the claimed ranges lie inside each schema's valid versions, and the
// hand-written header code follows the RequestHeader and ResponseHeader schemas.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { supportedApis } from '../../../src/core/kafka/api-keys.js';
import {
  generateMessagesModule,
  parseSchemaText,
  parseVersions,
} from '../../../src/core/kafka/schema-gen.js';
import { generatedFile, readSchemaDir, schemaDir } from '../../../tools/kafka-schemas.js';

const files = readSchemaDir(schemaDir);

describe('Kafka JSON message schemas', () => {
  test('messages.generated.ts is what the schemas and the claimed ranges generate', () => {
    const expected = generateMessagesModule(files);
    const actual = readFileSync(generatedFile, 'utf8');
    assert.ok(expected === actual, 'stale: run node --import tsx tools/kafka-schemas.ts --write');
  });

  test('every claimed version is a valid version of both the request and the response schema', () => {
    for (const api of supportedApis) {
      for (const kind of ['Request', 'Response']) {
        const json = parseSchemaText(files.get(`${api.name}${kind}.json`)!);
        const valid = parseVersions(json.validVersions, { min: 0, max: 1000 });
        assert.ok(
          valid !== null && valid.min <= api.minVersion && valid.max >= api.maxVersion,
          `${api.name}${kind}`,
        );
      }
    }
  });

  test('the fixtures hold exactly the schemas in use: every supported API plus the two headers', () => {
    const used = new Set(['RequestHeader.json', 'ResponseHeader.json']);
    for (const api of supportedApis)
      for (const kind of ['Request', 'Response']) used.add(`${api.name}${kind}.json`);
    assert.deepEqual([...files.keys()].sort(), [...used].sort());
  });

  test('the request header is apiKey, version, correlationId and a never-compact clientId; v2 is flexible', () => {
    const json = parseSchemaText(files.get('RequestHeader.json')!) as unknown as {
      flexibleVersions: string;
      fields: { name: string; type: string; versions: string; flexibleVersions?: string }[];
    };
    assert.equal(json.flexibleVersions, '2+');
    assert.deepEqual(
      json.fields.map((f) => [f.name, f.type, f.versions]),
      [
        ['RequestApiKey', 'int16', '0+'],
        ['RequestApiVersion', 'int16', '0+'],
        ['CorrelationId', 'int32', '0+'],
        ['ClientId', 'string', '1+'],
      ],
    );
    assert.equal(json.fields[3]?.flexibleVersions, 'none');
  });

  test('the response header is the correlationId; v1 is flexible', () => {
    const json = parseSchemaText(files.get('ResponseHeader.json')!) as unknown as {
      flexibleVersions: string;
      fields: { name: string; type: string }[];
    };
    assert.equal(json.flexibleVersions, '1+');
    assert.deepEqual(
      json.fields.map((f) => [f.name, f.type]),
      [['CorrelationId', 'int32']],
    );
  });
});
