#!/usr/bin/env node
// The container's HEALTHCHECK: exits 0 when the broker on this host answers GET /health with 200 (it serves),
// 1 otherwise (not serving yet, shutting down, or not answering within the timeout). The port is the broker's
// (BROKER_PORT, or the seed's PORT, default 8080). Plain Node, no dependencies, so it costs a few milliseconds.
const port = process.env.BROKER_PORT ?? process.env.PORT ?? '8080';
const timeoutMs = 3000;
try {
  const response = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(timeoutMs) });
  const body = await response.text();
  if (response.status !== 200) {
    process.stderr.write(`unhealthy: ${response.status} ${body}\n`);
    process.exit(1);
  }
  process.exit(0);
} catch (error) {
  process.stderr.write(`unhealthy: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
