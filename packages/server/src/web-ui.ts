/**
 * The admin UI (`@annals/web`) under /ui: its built files, read into memory on the first
 * request (a few small files) and served with their content type, an ETag and gzip when the
 * client takes it. Hashed assets (`/ui/assets/*`) are immutable and cached for a year;
 * index.html is `no-cache` (revalidated every time, so a new build shows at once). Any other
 * /ui/* path is a view of the single-page app: index.html. Before the UI is built, /ui
 * answers a 503 problem that says how to build it. The routes are not part of the API: they
 * are hidden from the OpenAPI document.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join, relative, sep } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { problem } from './problems.js';
import type { Api } from './route-kit.js';

interface Asset {
  body: Buffer;
  gzip: Buffer | undefined;
  type: string;
  etag: string;
  cacheControl: string;
}

const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};
const compressible = new Set(['.html', '.js', '.css', '.json', '.svg', '.txt', '.map']);

/** Where `@annals/web` keeps its build, or undefined when the package is not installed. */
function defaultUiDir(): string | undefined {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('@annals/web/package.json')), 'dist');
  } catch {
    return undefined;
  }
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

/** Every built file by its path under /ui/, or undefined when there is no build. */
async function loadUi(dir: string): Promise<Map<string, Asset> | undefined> {
  let files: string[];
  try {
    files = await filesUnder(dir);
  } catch {
    return undefined;
  }
  if (!files.includes(join(dir, 'index.html'))) return undefined;
  const assets = new Map<string, Asset>();
  for (const file of files) {
    const path = relative(dir, file).split(sep).join('/');
    const extension = extname(file);
    const body = await readFile(file);
    assets.set(path, {
      body,
      gzip: compressible.has(extension) && body.length > 512 ? gzipSync(body) : undefined,
      type: types[extension] ?? 'application/octet-stream',
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
      cacheControl: path.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
    });
  }
  return assets;
}

/** Options of {@link webUiRoutes}. */
export interface WebUiOptions {
  /** The directory of the built UI. @defaultValue `@annals/web`'s `dist` */
  dir?: string;
}

/** Serves the admin UI at /ui. */
export function webUiRoutes(api: Api, options: WebUiOptions = {}): void {
  const dir = options.dir ?? defaultUiDir();
  let loading: Promise<Map<string, Asset> | undefined> | undefined;
  // Loaded once; a missing build is looked for again on the next request (built meanwhile).
  const ui = async () => {
    loading ??= dir === undefined ? Promise.resolve(undefined) : loadUi(dir);
    const assets = await loading;
    if (!assets) loading = undefined;
    return assets;
  };

  const send = (request: FastifyRequest, reply: FastifyReply, asset: Asset) => {
    reply.header('etag', asset.etag).header('cache-control', asset.cacheControl).header('vary', 'accept-encoding');
    if (asset.type.startsWith('text/html')) {
      reply.header('x-content-type-options', 'nosniff').header('referrer-policy', 'same-origin');
    }
    if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
    const gzip = asset.gzip && /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''));
    if (gzip) reply.header('content-encoding', 'gzip');
    return reply.type(asset.type).send(gzip ? asset.gzip : asset.body);
  };

  const serve = async (request: FastifyRequest, reply: FastifyReply, path: string) => {
    const assets = await ui();
    if (!assets) {
      return reply
        .code(503)
        .type('application/problem+json')
        .send({
          ...problem(
            503,
            'UI_NOT_BUILT',
            'the admin UI is not built: run `npm run build:web` (or `npm run build`) in the Annals workspace',
          ),
          instance: request.url,
        });
    }
    const asset = assets.get(path);
    if (asset) return send(request, reply, asset);
    // A hashed asset that is not there is a stale page asking for an old build: a 404, not the app.
    if (path.startsWith('assets/') || extname(path) !== '') {
      return reply
        .code(404)
        .type('application/problem+json')
        .send({ ...problem(404, 'NOT_FOUND', `no file /ui/${path} in the admin UI`), instance: request.url });
    }
    return send(request, reply, assets.get('index.html') as Asset);
  };

  api.get('/ui', { schema: { hide: true } }, (request, reply) => serve(request, reply, ''));
  api.get<{ Params: { '*': string } }>('/ui/*', { schema: { hide: true } }, (request, reply) =>
    serve(request, reply, request.params['*']),
  );
}
