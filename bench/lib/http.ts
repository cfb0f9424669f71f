// HTTP helpers of the cluster benchmarks (groups, moves): one JSON request with a deadline whose failure is a
// value (status 0 and the error's name), and a tally of failures by kind with a few samples for the report.
// Callable from the main thread of a benchmark process.

export interface Answer {
  readonly status: number;
  readonly text: string;
  /** '' on success; otherwise 'status error_code' (or '0 ErrorName' when nothing came back). */
  readonly kind: string;
}

/** Sends one request (a string body as is, anything else as JSON); never throws. */
export async function call(
  base: string,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body: unknown,
  timeoutMs: number,
): Promise<Answer> {
  try {
    const init: RequestInit = { method, signal: AbortSignal.timeout(timeoutMs) };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      init.headers = { 'content-type': 'application/json' };
    }
    const response = await fetch(`${base}${path}`, init);
    const text = await response.text();
    if (response.status >= 200 && response.status < 300) return { status: response.status, text, kind: '' };
    let code = '';
    try {
      code = String((JSON.parse(text) as { error_code?: number }).error_code ?? '');
    } catch {}
    return { status: response.status, text, kind: `${response.status} ${code}`.trim() };
  } catch (error) {
    return { status: 0, text: String(error), kind: `0 ${(error as Error).name}` };
  }
}

/** Counts failures by kind and keeps the first few messages whole, for the report. */
export class Failures {
  readonly byKind: Record<string, number> = {};
  readonly samples: string[] = [];

  note(kind: string, message: string): void {
    this.byKind[kind] = (this.byKind[kind] ?? 0) + 1;
    if (this.samples.length < 10) this.samples.push(`${kind}: ${message.slice(0, 300)}`);
  }

  get count(): number {
    return Object.values(this.byKind).reduce((n, v) => n + v, 0);
  }
}
