// The admin and client verbs' link to a broker: JSON over the public HTTP API (global fetch) and the WebSocket
// endpoints (the `ws` package), addressed by `--bootstrap-server` or BROKER_URL. A broker's error answer
// becomes a CliError carrying the broker's own message, so every verb prints what the server said; network
// failures name the URL. With authentication on, every request carries `Authorization: Bearer <token>` from
// `--token` (the verbs that take it) or BROKER_TOKEN. Also the small pieces every verb shares: repeated flags,
// output and exit codes.
// Runs on the main thread of the `broker` CLI process; never imported by the broker itself.
import WebSocket from 'ws';

export const defaultBootstrapServer = 'http://localhost:8080';

/** Exit codes of the client verbs: 1 for any failure (the server's refusal included), 2 for bad usage. */
export const verbExitCodes = { failure: 1, usage: 2 } as const;

/**
 * A broker's JSON answer. The verbs read a few known fields of the documented answers and print them; a
 * field the broker lacks shows as '-' rather than failing, so the type is left open on purpose.
 */
// biome-ignore lint/suspicious/noExplicitAny: answers are untyped JSON, read field by field for printing
export type Json = any;

export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: number = verbExitCodes.failure,
    readonly status: number | null = null,
  ) {
    super(message);
  }
}

/** The arguments every client verb takes. */
export const connectionArgs = {
  'bootstrap-server': {
    type: 'string',
    description: `Broker URL [default: $BROKER_URL or ${defaultBootstrapServer}]`,
    valueHint: 'url',
  },
  json: { type: 'boolean', description: 'Print JSON instead of a table' },
} as const;

export class BrokerClient {
  readonly base: string;
  private readonly token: string | undefined;

  constructor(
    bootstrapServer: string | undefined,
    env: Readonly<Record<string, string | undefined>>,
    token?: string,
  ) {
    this.token = token ?? (env.BROKER_TOKEN === '' ? undefined : env.BROKER_TOKEN);
    const raw = bootstrapServer ?? env.BROKER_URL ?? defaultBootstrapServer;
    const withScheme = /^[a-z]+:\/\//i.test(raw) ? raw : `http://${raw}`;
    let url: URL;
    try {
      url = new URL(withScheme);
    } catch {
      throw new CliError(
        `--bootstrap-server: '${raw}' is not a URL (like http://localhost:8080)`,
        verbExitCodes.usage,
      );
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new CliError(
        `--bootstrap-server: '${raw}' must be an http:// or https:// URL`,
        verbExitCodes.usage,
      );
    }
    this.base = url.origin;
  }

  /** Sends a request and returns the parsed JSON answer; a non-2xx answer throws with the broker's message. */
  async request(method: string, path: string, body?: unknown): Promise<Json> {
    const answer = await this.send(method, path, body);
    if (answer.status >= 200 && answer.status < 300) return answer.body;
    throw new CliError(errorText(answer.status, answer.body), verbExitCodes.failure, answer.status);
  }

  /** Like `request`, but hands back any answer the broker gave (for verbs that treat 404 as a value). */
  async send(method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    const init: RequestInit = { method, headers };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] = 'application/json';
    }
    let response: Response;
    try {
      response = await fetch(`${this.base}${path}`, init);
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(
        `cannot reach the broker at ${this.base}: ${cause?.code ?? cause?.message ?? String(error)}`,
      );
    }
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      // Not JSON (a proxy's error page): keep the text for the message.
    }
    return { status: response.status, body: parsed };
  }

  /**
   * Opens a WebSocket to `path` (e.g. `/ws/consume/t?partition=0`) and resolves once it is open. `onMessage` is
   * attached before the socket opens: the broker may send its first frames in the same packet as the
   * handshake, and they are delivered before anything awaiting the open could attach a listener.
   */
  openSocket(path: string, onMessage: (data: WebSocket.RawData) => void): Promise<WebSocket> {
    const url = `${this.base.replace(/^http/, 'ws')}${path}`;
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(
        url,
        this.token === undefined ? {} : { headers: { authorization: `Bearer ${this.token}` } },
      );
      socket.on('message', onMessage);
      const onError = (error: Error) => reject(new CliError(`cannot open ${url}: ${error.message}`));
      socket.once('error', onError);
      socket.once('unexpected-response', (_req, res) => {
        reject(new CliError(`cannot open ${url}: the broker answered ${res.statusCode}`));
      });
      socket.once('open', () => {
        socket.off('error', onError);
        resolve(socket);
      });
    });
  }
}

function errorText(status: number, body: unknown): string {
  if (
    typeof body === 'object' &&
    body !== null &&
    typeof (body as { message?: unknown }).message === 'string'
  ) {
    const b = body as { message: string; error_code?: number; indefinite?: boolean };
    const code = b.error_code === undefined ? status : b.error_code;
    return `${b.message} (error ${code}${b.indefinite === true ? ', outcome unknown' : ''})`;
  }
  return `the broker answered ${status}${typeof body === 'string' && body !== '' ? `: ${body.slice(0, 200)}` : ''}`;
}

/**
 * Values of a flag that may be given several times (`--header a=1 --header b=2`): citty keeps only the last,
 * so they are read from the raw arguments. Both `--name value` and `--name=value` are understood.
 */
export function repeatedFlag(rawArgs: readonly string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < rawArgs.length; i++) {
    const arg = rawArgs[i]!;
    if (arg === '--') break;
    if (arg === `--${name}`) {
      const next = rawArgs[i + 1];
      if (next === undefined) throw new CliError(`--${name} needs a value`, verbExitCodes.usage);
      values.push(next);
      i++;
    } else if (arg.startsWith(`--${name}=`)) {
      values.push(arg.slice(name.length + 3));
    }
  }
  return values;
}

/** `k=v` pairs into an object; a pair without '=' is a usage error naming the flag. */
export function keyValues(pairs: readonly string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new CliError(`--${flag} '${pair}': expected key=value`, verbExitCodes.usage);
    out[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return out;
}

/** A whole, non-negative decimal number from a flag, or a usage error naming the flag. */
export function integerFlag(value: string | undefined, flag: string, min = 0): number | undefined {
  if (value === undefined) return undefined;
  if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(Number(value)) || Number(value) < min) {
    throw new CliError(
      `--${flag}: '${value}' is not a whole number${min === 0 ? ' >= 0' : ''}`,
      verbExitCodes.usage,
    );
  }
  return Number(value);
}

export interface Output {
  out(text: string): void;
  err(text: string): void;
}

export const processOutput: Output = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
};

/** A left-aligned text table with a header row; cells are stringified, null and undefined shown as '-'. */
export function table(headers: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const cells = [
    headers.map(String),
    ...rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : String(c)))),
  ];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '))
    .join('\n');
}

/**
 * Runs a verb: a CliError (or any error) is printed as `broker: <message>` on standard error and sets the exit
 * code, so every verb fails the same way.
 */
export async function runVerb(output: Output, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    const exitCode = error instanceof CliError ? error.exitCode : verbExitCodes.failure;
    output.err(`broker: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = exitCode;
  }
}
