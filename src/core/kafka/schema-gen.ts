// Turns Kafka's JSON message schemas (the files of clients/src/main/resources/common/message/, copied into
// test/fixtures/kafka-schemas/) into messages.generated.ts: one `MessageSpec` per request and response of the
// APIs in api-keys.ts, clipped to the versions claimed there, and a TypeScript interface per message and struct.
// tools/kafka-schemas.ts writes the file; test/core/kafka/schemas.test.ts regenerates it and fails on any
// difference, so the codec tables cannot drift from the schemas or from the claimed ranges.
//
// The schema files are JSON with whole-line `//` comments. A struct type is defined inline by the first field
// that uses it (`"fields": [...]`) and may be referred to by name afterwards, or come from `commonStructs`.
//
// Pure: text in, text out. Callable from any thread.
import { assert } from '../assert.js';
import { type ApiVersionRange, supportedApis } from './api-keys.js';
import type { DefaultValue, FieldSpec, MessageSpec, PrimitiveType, VersionSpan } from './schema.js';

interface JsonField {
  name: string;
  type: string;
  versions: string;
  nullableVersions?: string;
  taggedVersions?: string;
  tag?: number;
  default?: string | number | boolean;
  about?: string;
  fields?: JsonField[];
}

interface JsonMessage {
  apiKey?: number;
  type: string;
  name: string;
  validVersions: string;
  flexibleVersions: string;
  fields: JsonField[];
  commonStructs?: { name: string; versions: string; fields: JsonField[] }[];
}

const primitives = new Set<string>([
  'bool',
  'int8',
  'int16',
  'uint16',
  'int32',
  'int64',
  'float64',
  'string',
  'bytes',
  'records',
  'uuid',
]);

/** Parses a schema file: JSON once the whole-line comments are gone. */
export function parseSchemaText(text: string): JsonMessage {
  const json = text
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('//'))
    .join('\n');
  return JSON.parse(json) as JsonMessage;
}

/** "0+", "3-7", "5" or "none", intersected with the claimed span; null when nothing is left. */
export function parseVersions(text: string | undefined, claimed: VersionSpan): VersionSpan | null {
  if (text === undefined || text === 'none') return null;
  let min: number;
  let max: number;
  const plus = /^(\d+)\+$/.exec(text);
  const dash = /^(\d+)-(\d+)$/.exec(text);
  if (plus) {
    min = Number(plus[1]);
    max = Number.POSITIVE_INFINITY;
  } else if (dash) {
    min = Number(dash[1]);
    max = Number(dash[2]);
  } else {
    assert(/^\d+$/.test(text), `version range "${text}"`);
    min = Number(text);
    max = min;
  }
  min = Math.max(min, claimed.min);
  max = Math.min(max, claimed.max);
  return min <= max ? { min, max } : null;
}

function lowerFirst(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

function parseDefault(field: JsonField, type: string, array: boolean): DefaultValue {
  const raw = field.default;
  if (raw === 'null') return null;
  if (array) return [];
  switch (type) {
    case 'bool':
      return raw === undefined ? false : raw === true || raw === 'true';
    case 'string':
      return raw === undefined ? '' : String(raw);
    case 'bytes':
    case 'records':
      return [];
    case 'uuid':
      return null;
    default:
      if (primitives.has(type)) return raw === undefined ? 0 : Number(raw);
      return null;
  }
}

interface Built {
  spec: MessageSpec;
  interfaces: string[];
}

function buildMessage(json: JsonMessage, api: ApiVersionRange): Built {
  const claimed = { min: api.minVersion, max: api.maxVersion };
  const valid = parseVersions(json.validVersions, { min: 0, max: 1000 });
  assert(
    valid !== null && valid.min <= claimed.min && valid.max >= claimed.max,
    `${json.name} has v${claimed.min}-${claimed.max}`,
  );
  const flexible = parseVersions(json.flexibleVersions, claimed);
  const structs = new Map<string, JsonField[]>();
  for (const common of json.commonStructs ?? []) structs.set(common.name, common.fields);
  const interfaces: string[] = [];
  const emitted = new Set<string>();

  const interfaceName = (structName: string): string =>
    structName.startsWith(json.name) ? structName : `${json.name}${structName}`;

  const buildFields = (fields: JsonField[], typeName: string): FieldSpec[] => {
    const out: FieldSpec[] = [];
    const lines: string[] = [];
    for (const field of fields) {
      const versions = parseVersions(field.versions, claimed);
      if (versions === null) continue;
      const array = field.type.startsWith('[]');
      const elementType = array ? field.type.slice(2) : field.type;
      const nullable = parseVersions(field.nullableVersions, versions);
      const taggedVersions = parseVersions(field.taggedVersions, versions);
      let type: PrimitiveType | 'struct';
      let children: FieldSpec[] | null = null;
      let tsType: string;
      if (primitives.has(elementType)) {
        type = elementType as PrimitiveType;
        tsType = tsPrimitive(type);
      } else {
        type = 'struct';
        if (field.fields !== undefined) structs.set(elementType, field.fields);
        const structFields = structs.get(elementType);
        assert(structFields !== undefined, `${json.name}: struct ${elementType} is defined`);
        tsType = interfaceName(elementType);
        children = buildFields(structFields, tsType);
      }
      if (array) tsType = `${tsType}[]`;
      if (nullable !== null) tsType = `${tsType} | null`;
      out.push({
        name: lowerFirst(field.name),
        type,
        array,
        versions,
        nullable,
        tag: taggedVersions !== null ? (field.tag ?? null) : null,
        taggedVersions,
        defaultValue: parseDefault(field, elementType, array),
        fields: children,
      });
      const about = field.about === undefined ? '' : `  /** ${field.about.replaceAll('*/', '* /')} */\n`;
      // A tagged field may be left out: it is then its default, and not written.
      const optional = taggedVersions !== null ? '?' : '';
      lines.push(`${about}  ${lowerFirst(field.name)}${optional}: ${tsType};`);
    }
    if (!emitted.has(typeName)) {
      emitted.add(typeName);
      interfaces.push(`export interface ${typeName} {\n${lines.join('\n')}\n}`);
    }
    return out;
  };

  const fields = buildFields(json.fields, json.name);
  const spec: MessageSpec = {
    name: json.name,
    apiKey: api.apiKey,
    kind: json.type === 'request' ? 'request' : 'response',
    versions: claimed,
    flexibleMin: flexible?.min ?? null,
    fields,
  };
  return { spec, interfaces };
}

function tsPrimitive(type: PrimitiveType): string {
  switch (type) {
    case 'bool':
      return 'boolean';
    case 'string':
      return 'string';
    case 'bytes':
    case 'records':
    case 'uuid':
      return 'Uint8Array';
    default:
      return 'number';
  }
}

/** A compact, deterministic rendering of a field table (one field per line). */
function renderFields(fields: readonly FieldSpec[], indent: string): string {
  const parts = fields.map((f) => {
    const head = [
      `name: '${f.name}'`,
      `type: '${f.type}'`,
      `array: ${f.array}`,
      `versions: ${span(f.versions)}`,
      `nullable: ${span(f.nullable)}`,
      `tag: ${f.tag}`,
      `taggedVersions: ${span(f.taggedVersions)}`,
      `defaultValue: ${renderDefault(f.defaultValue)}`,
    ].join(', ');
    const children =
      f.fields === null ? 'fields: null' : `fields: [\n${renderFields(f.fields, `${indent}  `)}${indent}]`;
    return `${indent}{ ${head}, ${children} },\n`;
  });
  return parts.join('');
}

function renderDefault(value: DefaultValue): string {
  if (typeof value === 'string') return `'${value}'`;
  if (Array.isArray(value)) return '[]';
  return String(value);
}

function span(s: VersionSpan | null): string {
  return s === null ? 'null' : `{ min: ${s.min}, max: ${s.max} }`;
}

/**
 * The text of messages.generated.ts, from the schema files' texts keyed by file name
 * (`ProduceRequest.json` -> its content). Every supported API needs both its request and response file.
 */
export function generateMessagesModule(files: ReadonlyMap<string, string>): string {
  const out: string[] = [
    '// GENERATED by tools/kafka-schemas.ts from the Kafka JSON message schemas in test/fixtures/kafka-schemas/',
    '// (Apache Kafka, clients/src/main/resources/common/message/, Apache-2.0), clipped to the versions claimed in',
    '// api-keys.ts. Do not edit: change api-keys.ts or the schema files and run',
    '// `node --import tsx tools/kafka-schemas.ts --write`. test/core/kafka/schemas.test.ts checks it is current.',
    '//',
    '// Pure data, callable from any thread.',
    "import type { MessageSpec } from './schema.js';",
    '',
  ];
  const table: string[] = [];
  for (const api of supportedApis) {
    const pair: string[] = [];
    for (const kind of ['Request', 'Response'] as const) {
      const name = `${api.name}${kind}`;
      const text = files.get(`${name}.json`);
      assert(text !== undefined, `schema file ${name}.json is present`);
      const json = parseSchemaText(text);
      assert(json.apiKey === api.apiKey, `${name}.json has apiKey ${api.apiKey}`);
      assert(json.name === name, `${name}.json names ${name}`);
      const flexible = parseVersions(json.flexibleVersions, { min: api.minVersion, max: api.maxVersion });
      assert(
        (flexible?.min ?? null) === api.flexibleMin,
        `${name}: api-keys.ts says flexible from ${api.flexibleMin}, the schema from ${flexible?.min ?? null}`,
      );
      const built = buildMessage(json, api);
      out.push(...built.interfaces.map((text) => `${text}\n`));
      const s = built.spec;
      out.push(
        `export const ${name}Spec: MessageSpec = {\n  name: '${s.name}',\n  apiKey: ${s.apiKey},\n  kind: '${s.kind}',\n` +
          `  versions: ${span(s.versions)},\n  flexibleMin: ${s.flexibleMin},\n  fields: [\n${renderFields(s.fields, '    ')}  ],\n};\n`,
      );
      pair.push(`${name}Spec`);
    }
    table.push(`  ${api.name}: { request: ${pair[0]}, response: ${pair[1]} },`);
  }
  out.push(`export const messageSpecs = {\n${table.join('\n')}\n} as const;\n`);
  return out.join('\n');
}
