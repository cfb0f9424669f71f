// Shared pieces of the fuzz properties (issue 16): the run budget, the registry shape that both the tests and
// the long-run tool (`tools/fuzz.ts`) use, and the corpus of nasty JSON texts.
//
// Budget: each property runs `runs` times (at most 300) by default, so the whole set stays well under 20 s in
// the pure lane of `npm test`. FUZZ_RUNS=N runs every property N times instead; FUZZ_SEED=S (with FUZZ_PATH=P,
// both printed by a failure) replays one failure exactly.
// Runs on the main thread of a test or tool process.
import fc from 'fast-check';

export interface FuzzProperty {
  readonly name: string;
  /** Runs in the timed test suite (<= 300). */
  readonly runs: number;
  /** Checks the property with the given parameters and returns fast-check's report (never throws). */
  readonly check: (params: fc.Parameters<unknown>) => fc.RunDetails<unknown>;
}

/** Wraps a fast-check property so that the tests and the tool can run it with their own parameters. */
export function fuzzProperty<Ts extends [unknown, ...unknown[]]>(
  name: string,
  runs: number,
  property: () => fc.IRawProperty<Ts>,
): FuzzProperty {
  return {
    name,
    runs: Math.min(runs, 300),
    check: (params) => fc.check(property(), params as fc.Parameters<Ts>) as unknown as fc.RunDetails<unknown>,
  };
}

function envInteger(name: string): number | undefined {
  const text = process.env[name];
  if (text === undefined || text === '') return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new Error(`${name} must be an integer, got '${text}'`);
  return value;
}

/** The parameters of a test run: the property's default runs, or FUZZ_RUNS; FUZZ_SEED / FUZZ_PATH replay. */
export function testParams(defaultRuns: number): fc.Parameters<unknown> {
  const runs = envInteger('FUZZ_RUNS') ?? defaultRuns;
  const seed = envInteger('FUZZ_SEED');
  const path = process.env.FUZZ_PATH;
  return {
    numRuns: runs,
    ...(seed !== undefined ? { seed } : {}),
    ...(path !== undefined && path !== '' ? { path } : {}),
  };
}

/** Runs `property` as a test: throws fast-check's report (seed, path, shrunk counterexample) on failure. */
export function assertProperty(property: FuzzProperty): void {
  const details = property.check(testParams(property.runs));
  if (details.failed) {
    throw new Error(
      `${property.name}\n${fc.defaultReportMessage(details)}\nreplay: FUZZ_SEED=${details.seed} FUZZ_PATH=${details.counterexamplePath ?? ''}`,
      { cause: details.errorInstance },
    );
  }
}

// ---------------------------------------------------------------------------------------------------------
// Nasty JSON: texts and raw bytes that have broken JSON handlers elsewhere. Each is named, so that a failure
// names its input.

const deep = (depth: number, open: string, close: string, inner = '1') =>
  `${open.repeat(depth)}${inner}${close.repeat(depth)}`;
/** Arrays nested 2*10^5 deep: JSON.parse builds them iteratively, recursive walkers overflow the stack. */
const deepArray = deep(200_000, '[', ']');
const deepObject = deep(10_000, '{"a":', '}');
const longString = 'x'.repeat(2 * 1024 * 1024);
const manyHeaders = `{${Array.from({ length: 20_000 }, (_, i) => `"h${i}":"v"`).join(',')}}`;

export const nastyJsonTexts: readonly (readonly [name: string, text: string])[] = [
  ['empty', ''],
  ['whitespace', ' \n\t '],
  ['deep array 2e5', deepArray],
  ['deep object 1e4', deepObject],
  ['deep array 1e4', deep(10_000, '[', ']')],
  ['value: deep array', `{"value":${deepArray}}`],
  ['key: deep object', `{"value":"v","key":${deepObject}}`],
  ['headers: deep', `{"value":"v","headers":{"a":${deepArray}}}`],
  ['records: deep', `{"records":${deepArray}}`],
  ['records of deep', `{"records":[${deepArray}]}`],
  ['num_partitions: deep array', `{"num_partitions":${deepArray}}`],
  ['replication_factor: deep object', `{"replication_factor":${deepObject}}`],
  ['config.retention_ms: deep array', `{"config":{"retention_ms":${deepArray}}}`],
  ['config.cleanup_policy: deep array', `{"config":{"cleanup_policy":${deepArray}}}`],
  ['config: deep', `{"config":${deepObject}}`],
  ['huge number', '{"value":"v","partition":1e309}'],
  ['huge negative number', '{"num_partitions":-1e309}'],
  ['1e308 partition', '{"value":"v","partition":1e308}'],
  ['2^53+1 timestamp', '{"value":"v","timestamp":9007199254740993}'],
  ['max safe timestamp', '{"value":"v","timestamp":9007199254740991}'],
  [
    'timestamps 0 and max safe in one batch',
    '{"records":[{"value":"a","timestamp":0},{"value":"b","timestamp":9007199254740991}]}',
  ],
  ['2^51 timestamp', '{"value":"v","timestamp":2251799813685248}'],
  ['long digits', '{"value":"v","partition":123456789012345678901234567890}'],
  ['tiny number', '{"value":"v","timestamp":1e-400}'],
  ['negative zero partition', '{"value":"v","partition":-0}'],
  ['negative zero timestamp', '{"value":"v","timestamp":-0}'],
  ['negative zero num_partitions', '{"num_partitions":-0}'],
  ['fraction', '{"value":"v","partition":1.5,"timestamp":0.5}'],
  ['2^32 partition', '{"value":"v","partition":4294967296}'],
  ['NaN-like strings', '{"value":"NaN","key":"Infinity","partition":"NaN"}'],
  ['NaN literal', '{"value":NaN}'],
  ['Infinity literal', '{"num_partitions":Infinity}'],
  ['string numbers', '{"num_partitions":"3","replication_factor":"1e0","config":{"retention_ms":"-0"}}'],
  ['lone surrogates', '{"value":"\\ud800","key":"\\udfff","headers":{"\\ud800":"\\udc00x"}}'],
  ['raw lone surrogate', `{"value":"${String.fromCharCode(0xd800)}"}`],
  ['surrogate header name', '{"value":"v","headers":{"\\udbff":"\\udbff\\udfff"}}'],
  ['duplicate keys', '{"value":"a","value":1}'],
  ['duplicate records', '{"records":[],"records":[{"value":"x"}]}'],
  ['duplicate config', '{"config":{"retention_ms":1},"config":"x"}'],
  ['__proto__ top', '{"__proto__":{"value":"x"}}'],
  ['__proto__ headers', '{"value":"x","headers":{"__proto__":"v","constructor":"c","toString":"t"}}'],
  ['__proto__ config', '{"config":{"__proto__":{"retention_ms":1}}}'],
  ['constructor', '{"constructor":{"prototype":{"value":"x"}}}'],
  ['__proto__ records', '{"records":[{"__proto__":{"value":"x"}}]}'],
  ['prototype pollution', '{"value":"x","__proto__":{"polluted":true}}'],
  ['long value', `{"value":"${longString}"}`],
  ['long key', `{"key":"${longString}","value":null}`],
  ['long header name', `{"value":"v","headers":{"${'h'.repeat(70_000)}":"v"}}`],
  ['long field name', `{"${longString}":1}`],
  ['long config field', `{"config":{"${longString}":1}}`],
  [
    'many unknown config fields',
    `{"config":{${Array.from({ length: 10_000 }, (_, i) => `"f${i}":1`).join(',')}}}`,
  ],
  ['long cleanup_policy', `{"config":{"cleanup_policy":"${longString}"}}`],
  ['many headers', `{"value":"v","headers":${manyHeaders}}`],
  ['many records', `{"records":[${Array.from({ length: 100_001 }, () => '{"value":"v"}').join(',')}]}`],
  ['base64 bad', '{"value":"abc","value_format":"base64"}'],
  ['base64 padding', '{"value":"====","value_format":"base64"}'],
  ['format object', '{"value":"v","value_format":{"a":1}}'],
  ['truncated', '{"value":"v"'],
  ['trailing garbage', '{"value":"v"}x'],
  ['top-level string', '"value"'],
  ['top-level null', 'null'],
  ['top-level number', '-0'],
  ['BOM', '\ufeff{"value":"v"}'],
  ['NUL', '{"value":"\\u0000","key":"\u0000"}'],
];

const utf8 = (text: string) => Buffer.from(text, 'utf8');
/** Bodies as bytes, decoded with `toString('utf8')` as the acceptor does: invalid UTF-8 becomes U+FFFD. */
export const nastyJsonBytes: readonly (readonly [name: string, bytes: Buffer])[] = [
  [
    'invalid UTF-8 in value',
    Buffer.concat([utf8('{"value":"'), Buffer.of(0xff, 0xfe, 0xc0, 0x80), utf8('"}')]),
  ],
  ['encoded surrogate', Buffer.concat([utf8('{"value":"'), Buffer.of(0xed, 0xa0, 0x80), utf8('"}')])],
  ['overlong slash', Buffer.concat([utf8('{"value":"'), Buffer.of(0xc0, 0xaf), utf8('"}')])],
  ['truncated sequence', Buffer.concat([utf8('{"value":"'), Buffer.of(0xe2, 0x82), utf8('"}')])],
  ['invalid UTF-8 in a name', Buffer.concat([utf8('{"'), Buffer.of(0xff), utf8('":1}')])],
  [
    'invalid UTF-8 header',
    Buffer.concat([utf8('{"value":"v","headers":{"'), Buffer.of(0xf8, 0x88), utf8('":"x"}}')]),
  ],
  ['bytes outside strings', Buffer.concat([utf8('{"value":'), Buffer.of(0x80, 0x81), utf8('}')])],
  ['UTF-16 body', Buffer.from('{"value":"v"}', 'utf16le')],
];
