// The message codec: decodes a request body and encodes a response body by walking a `MessageSpec`
// (messages.generated.ts, generated from Kafka's JSON schemas), so that the bytes follow the schema field by
// field and version by version, classic and flexible alike.
//
// Decoding never throws: garbage leaves `reader.error` set and the result is a `{ kind: 'error' }` value. Every
// array count is checked against the bytes left before anything is allocated, so a frame cannot make the
// decoder allocate more than a small multiple of its own size. Encoding takes values the broker built; a
// value of the wrong type there is a bug and fails an assertion.
//
// Pure: no I/O. Callable from any thread; the reader and writer belong to the caller.
import { assert } from '../assert.js';
import type { KafkaReader, KafkaWriter } from './primitives.js';
import { type FieldSpec, inSpan, type MessageSpec } from './schema.js';

export type MessageValue = Record<string, unknown>;

export type DecodeResult<T> = { kind: 'ok'; value: T } | { kind: 'error'; reason: string };

interface Context {
  readonly version: number;
  readonly flexible: boolean;
}

function isFlexible(spec: MessageSpec, version: number): boolean {
  return spec.flexibleMin !== null && version >= spec.flexibleMin;
}

/** Decodes one message body; the reader must end exactly at the end of the body. */
export function decodeMessage<T>(spec: MessageSpec, version: number, reader: KafkaReader): DecodeResult<T> {
  if (!inSpan(spec.versions, version))
    return { kind: 'error', reason: `${spec.name} v${version} is not supported` };
  const ctx: Context = { version, flexible: isFlexible(spec, version) };
  const value = readStruct(spec.fields, ctx, reader);
  if (reader.error === null && reader.remaining !== 0)
    reader.fail(`${reader.remaining} bytes after ${spec.name}`);
  if (reader.error !== null) return { kind: 'error', reason: `${spec.name} v${version}: ${reader.error}` };
  return { kind: 'ok', value: value as T };
}

export function encodeMessage<T>(spec: MessageSpec, version: number, value: T, writer: KafkaWriter): void {
  assert(inSpan(spec.versions, version), `${spec.name} v${version} is claimed`);
  writeStruct(spec.fields, { version, flexible: isFlexible(spec, version) }, value as MessageValue, writer);
}

function isTagged(field: FieldSpec, ctx: Context): boolean {
  return ctx.flexible && inSpan(field.taggedVersions, ctx.version);
}

function readStruct(fields: readonly FieldSpec[], ctx: Context, reader: KafkaReader): MessageValue {
  const out: MessageValue = {};
  for (const field of fields) {
    if (!inSpan(field.versions, ctx.version) || isTagged(field, ctx)) out[field.name] = defaultOf(field);
    else out[field.name] = readField(field, ctx, reader);
  }
  if (ctx.flexible) readTaggedFields(fields, ctx, reader, out);
  return out;
}

function readTaggedFields(
  fields: readonly FieldSpec[],
  ctx: Context,
  reader: KafkaReader,
  out: MessageValue,
): void {
  const count = reader.uvarint();
  let lastTag = -1;
  for (let i = 0; i < count && reader.error === null; i++) {
    const tag = reader.uvarint();
    const size = reader.uvarint();
    if (reader.error !== null) return;
    // Kafka requires tags in increasing order, each at most once.
    if (tag <= lastTag) return reader.fail(`tagged field ${tag} out of order`);
    lastTag = tag;
    if (size > reader.remaining) return reader.fail(`tagged field of ${size} bytes longer than the frame`);
    const field = fields.find((f) => f.tag === tag && isTagged(f, ctx));
    if (field === undefined) {
      reader.skip(size);
      continue;
    }
    const end = reader.pos + size;
    out[field.name] = readField(field, ctx, reader);
    if (reader.error === null && reader.pos !== end)
      return reader.fail(`tagged field ${tag} is not ${size} bytes`);
  }
}

function readField(field: FieldSpec, ctx: Context, reader: KafkaReader): unknown {
  const nullable = inSpan(field.nullable, ctx.version);
  if (field.array) {
    const count = reader.arrayLength(ctx.flexible, nullable, elementBytesMin(field, ctx));
    if (count < 0) return null;
    const items: unknown[] = [];
    for (let i = 0; i < count && reader.error === null; i++)
      items.push(readElement(field, ctx, reader, false));
    return items;
  }
  return readElement(field, ctx, reader, nullable);
}

function readElement(field: FieldSpec, ctx: Context, reader: KafkaReader, nullable: boolean): unknown {
  const compact = ctx.flexible;
  switch (field.type) {
    case 'bool':
      return reader.bool();
    case 'int8':
      return reader.int8();
    case 'int16':
      return reader.int16();
    case 'uint16':
      return reader.uint16();
    case 'int32':
      return reader.int32();
    case 'int64':
      return reader.int64();
    case 'float64':
      return reader.float64();
    case 'uuid':
      return reader.uuid();
    case 'string':
      return nullable ? reader.nullableString(compact) : reader.string(compact);
    case 'bytes':
    case 'records':
      return nullable ? reader.nullableBytes(compact) : reader.bytesField(compact);
    case 'struct': {
      // A nullable struct is preceded by an int8 marker: -1 null, 1 present.
      if (nullable && reader.int8() < 0) return null;
      return readStruct(field.fields!, ctx, reader);
    }
  }
}

/** The fewest bytes one element can take, to reject array counts the frame cannot hold. */
function elementBytesMin(field: FieldSpec, ctx: Context): number {
  switch (field.type) {
    case 'bool':
    case 'int8':
      return 1;
    case 'int16':
    case 'uint16':
      return 2;
    case 'int32':
      return 4;
    case 'int64':
    case 'float64':
      return 8;
    case 'uuid':
      return 16;
    case 'string':
      return ctx.flexible ? 1 : 2;
    case 'bytes':
    case 'records':
      return ctx.flexible ? 1 : 4;
    case 'struct': {
      let size = ctx.flexible ? 1 : 0;
      for (const f of field.fields!) {
        if (inSpan(f.versions, ctx.version) && !isTagged(f, ctx)) {
          size += f.array ? (ctx.flexible ? 1 : 4) : elementBytesMin(f, ctx);
        }
      }
      // An empty struct still counts as one byte here, so a huge count of them is refused, not looped over.
      return Math.max(size, 1);
    }
  }
}

function defaultOf(field: FieldSpec): unknown {
  if (field.array) return field.defaultValue === null ? null : [];
  switch (field.type) {
    case 'struct':
      return field.nullable !== null ? null : defaultStruct(field.fields!);
    case 'uuid':
      return new Uint8Array(16);
    case 'bytes':
    case 'records':
      return field.defaultValue === null ? null : new Uint8Array(0);
    default:
      return field.defaultValue;
  }
}

function defaultStruct(fields: readonly FieldSpec[]): MessageValue {
  const out: MessageValue = {};
  for (const field of fields) out[field.name] = defaultOf(field);
  return out;
}

/** Whether a tagged field holds its default, and so is left out of the tagged-field section. */
function isDefault(field: FieldSpec, value: unknown): boolean {
  if (value === undefined) return true;
  if (value === null) return field.defaultValue === null;
  if (Array.isArray(value)) return value.length === 0 && field.defaultValue !== null;
  if (value instanceof Uint8Array) {
    if (field.type === 'uuid') return value.every((b) => b === 0);
    return value.length === 0 && field.defaultValue !== null;
  }
  if (typeof value === 'object') return false;
  return value === field.defaultValue;
}

function writeStruct(
  fields: readonly FieldSpec[],
  ctx: Context,
  value: MessageValue,
  writer: KafkaWriter,
): void {
  const tagged: FieldSpec[] = [];
  for (const field of fields) {
    if (!inSpan(field.versions, ctx.version)) continue;
    if (isTagged(field, ctx)) {
      if (!isDefault(field, value[field.name])) tagged.push(field);
      continue;
    }
    writeField(field, ctx, value[field.name], writer);
  }
  if (!ctx.flexible) return;
  tagged.sort((a, b) => a.tag! - b.tag!);
  writer.uvarint(tagged.length);
  for (const field of tagged) {
    writer.uvarint(field.tag!);
    // The size prefix precedes the value: encode once to learn it, then copy. Tagged fields are small and rare.
    const start = writer.pos;
    writeField(field, ctx, value[field.name], writer);
    const body = writer.finish().slice(start);
    writer.pos = start;
    writer.uvarint(body.length);
    writer.raw(body);
  }
}

function writeField(field: FieldSpec, ctx: Context, value: unknown, writer: KafkaWriter): void {
  const nullable = inSpan(field.nullable, ctx.version);
  if (value === undefined) value = defaultOf(field);
  if (field.array) {
    if (value === null) {
      assert(nullable, `${field.name} is not nullable in v${ctx.version}`);
      writer.arrayLength(ctx.flexible, -1);
      return;
    }
    assert(Array.isArray(value), `${field.name} is an array`);
    writer.arrayLength(ctx.flexible, value.length);
    for (const item of value) writeElement(field, ctx, item, writer, false);
    return;
  }
  writeElement(field, ctx, value, writer, nullable);
}

function writeElement(
  field: FieldSpec,
  ctx: Context,
  value: unknown,
  writer: KafkaWriter,
  nullable: boolean,
): void {
  const compact = ctx.flexible;
  if (value === null) {
    assert(nullable, `${field.name} is not nullable in v${ctx.version}`);
    if (field.type === 'string') writer.nullableString(compact, null);
    else if (field.type === 'bytes' || field.type === 'records') writer.nullableBytes(compact, null);
    else if (field.type === 'struct') writer.int8(-1);
    else assert(false, `${field.name} of type ${field.type} cannot be null`);
    return;
  }
  switch (field.type) {
    case 'bool':
      assert(typeof value === 'boolean', `${field.name} is a boolean`);
      return writer.bool(value);
    case 'int8':
    case 'int16':
    case 'uint16':
    case 'int32':
    case 'int64':
    case 'float64':
      assert(typeof value === 'number', `${field.name} is a number`);
      return writer[field.type](value);
    case 'uuid':
      assert(value instanceof Uint8Array, `${field.name} is a UUID`);
      return writer.uuid(value);
    case 'string':
      assert(typeof value === 'string', `${field.name} is a string`);
      return writer.string(compact, value);
    case 'bytes':
    case 'records':
      assert(value instanceof Uint8Array, `${field.name} is bytes`);
      return writer.bytesField(compact, value);
    case 'struct':
      assert(typeof value === 'object', `${field.name} is an object`);
      if (nullable) writer.int8(1);
      return writeStruct(field.fields!, ctx, value as MessageValue, writer);
  }
}
