// The shape of a Kafka message description, as Kafka's JSON message schemas give it
// (clients/src/main/resources/common/message/*.json), reduced to what the codec needs and clipped to the
// versions this broker claims. messages.generated.ts holds one `MessageSpec` per request and response; the
// codec (codec.ts) walks them. Field names are Kafka's with a lower-case first letter (TopicData -> topicData).
//
// Pure: types and small helpers, callable from any thread.

export type PrimitiveType =
  | 'bool'
  | 'int8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'int64'
  | 'float64'
  | 'string'
  | 'bytes'
  | 'records'
  | 'uuid';

/** Inclusive version span; `max` is clipped to the highest version claimed. */
export interface VersionSpan {
  readonly min: number;
  readonly max: number;
}

/**
 * A field's default. Arrays, bytes and records use `[]` for "empty" and null only where the schema says
 * "null"; a UUID's default is null in the table and means the all-zero UUID; a struct's is null.
 */
export type DefaultValue = number | boolean | string | null | readonly [];

export interface FieldSpec {
  readonly name: string;
  readonly type: PrimitiveType | 'struct';
  /** `[]type`: an array of `type`. */
  readonly array: boolean;
  readonly versions: VersionSpan;
  readonly nullable: VersionSpan | null;
  /** Tagged fields live in the tagged-field section of their struct, only in flexible versions. */
  readonly tag: number | null;
  readonly taggedVersions: VersionSpan | null;
  /** The value a field takes in versions without it, and the value a tagged field is left out for. */
  readonly defaultValue: DefaultValue;
  /** Present for `struct` and arrays of structs. */
  readonly fields: readonly FieldSpec[] | null;
}

export interface MessageSpec {
  readonly name: string;
  readonly apiKey: number;
  readonly kind: 'request' | 'response';
  readonly versions: VersionSpan;
  readonly flexibleMin: number | null;
  readonly fields: readonly FieldSpec[];
}

export function inSpan(span: VersionSpan | null, version: number): boolean {
  return span !== null && version >= span.min && version <= span.max;
}
