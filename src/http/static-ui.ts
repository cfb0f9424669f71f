// The web console's static assets (`ui/` in the repository: hand-written HTML, JavaScript modules and CSS, no
// build step, no CDN), served by the broker itself under `/ui/`. Every file is read once at start-up into
// memory; a request can only name a file of that set, so no request path ever reaches the file system. The
// console talks to the broker only through the public HTTP and WebSocket API, like any other client.
// Loaded and served on the acceptor (main) thread.

import type uWS from 'uWebSockets.js';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const contentTypes: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

/** The console is small by design; a larger tree means something else was put there. */
const assetsBytesMax = 4 * 1024 * 1024;

export interface UiAsset {
  readonly contentType: string;
  readonly body: Buffer;
}

/** The `ui/` directory beside `src/` (from source) or beside `dist/` (compiled), or null when absent. */
export function findUiDir(): string | null {
  for (const up of ['../../ui', '../../../ui']) {
    const dir = fileURLToPath(new URL(up, import.meta.url));
    if (existsSync(join(dir, 'index.html'))) return dir;
  }
  return null;
}

/** Reads every servable file under `dir`, keyed by its URL path below `/ui/`. */
export function loadUiAssets(dir: string): Map<string, UiAsset> {
  const assets = new Map<string, UiAsset>();
  let total = 0;
  const walk = (at: string): void => {
    for (const name of readdirSync(at).sort()) {
      const path = join(at, name);
      if (statSync(path).isDirectory()) {
        walk(path);
        continue;
      }
      const contentType = contentTypes[extname(name)];
      if (contentType === undefined) continue;
      const body = readFileSync(path);
      total += body.byteLength;
      if (total > assetsBytesMax)
        throw new Error(`the console's assets in ${dir} exceed ${assetsBytesMax} bytes`);
      assets.set(relative(dir, path).split(sep).join('/'), { contentType, body });
    }
  };
  walk(dir);
  return assets;
}

/** Registers `/ui` (redirect), `/ui/` (the page) and `/ui/*` (the assets) on `app`. */
export function registerUi(app: uWS.TemplatedApp, assets: ReadonlyMap<string, UiAsset>): void {
  const send = (res: uWS.HttpResponse, status: string, asset: UiAsset): void => {
    res.cork(() => {
      res.writeStatus(status);
      res.writeHeader('content-type', asset.contentType);
      // Assets change with the broker version; revalidating each load keeps an upgraded console consistent.
      res.writeHeader('cache-control', 'no-cache');
      res.writeHeader('x-content-type-options', 'nosniff');
      res.end(asset.body);
    });
  };
  const notFound: UiAsset = {
    contentType: 'application/json',
    body: Buffer.from(JSON.stringify({ error_code: 40404, message: 'no such console asset' })),
  };
  app.get('/ui', (res) => {
    res.cork(() => {
      res.writeStatus('301 Moved Permanently');
      res.writeHeader('location', '/ui/');
      res.end();
    });
  });
  app.get('/ui/*', (res, req) => {
    const path = req.getUrl().slice('/ui/'.length);
    const asset = assets.get(path === '' ? 'index.html' : path);
    if (asset === undefined) send(res, '404 Not Found', notFound);
    else send(res, '200 OK', asset);
  });
}
