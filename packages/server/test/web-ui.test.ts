/**
 * Serving the admin UI, on a build of its own in a temporary directory (unit tests of the
 * module, with `inject`): the cache headers of index.html and of hashed assets, ETags and 304,
 * gzip, any other /ui path answering the app, missing files and paths that try to leave the
 * build, and the 503 problem before the UI is built.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '../src/route-kit.js';
import { webUiRoutes } from '../src/web-ui.js';

const html = '<!doctype html><script type="module" src="/ui/assets/index-abc123.js"></script>';
const script = `console.log(${JSON.stringify('x'.repeat(2000))});`;

describe('the admin UI routes', () => {
  let dir: string;
  let api: Api;
  let unbuilt: Api;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'annals-ui-'));
    mkdirSync(join(dir, 'assets'));
    writeFileSync(join(dir, 'index.html'), html);
    writeFileSync(join(dir, 'assets', 'index-abc123.js'), script);
    api = Fastify() as unknown as Api;
    webUiRoutes(api, { dir });
    unbuilt = Fastify() as unknown as Api;
    webUiRoutes(unbuilt, { dir: join(dir, 'missing') });
  });

  afterAll(async () => {
    await api?.close();
    await unbuilt?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves index.html as no-cache and hashed assets as immutable for a year', async () => {
    const index = await api.inject({ url: '/ui' });
    expect(index.statusCode).toBe(200);
    expect(index.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(index.headers['cache-control']).toBe('no-cache');
    expect(index.body).toBe(html);
    const asset = await api.inject({ url: '/ui/assets/index-abc123.js' });
    expect(asset.statusCode).toBe(200);
    expect(asset.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(asset.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(asset.body).toBe(script);
  });

  it('answers 304 to a matching ETag, and gzip to a client that takes it', async () => {
    const first = await api.inject({ url: '/ui/' });
    const etag = first.headers.etag as string;
    expect(etag).toMatch(/^"[\w-]+"$/);
    const again = await api.inject({ url: '/ui/', headers: { 'if-none-match': etag } });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
    const zipped = await api.inject({ url: '/ui/assets/index-abc123.js', headers: { 'accept-encoding': 'gzip, br' } });
    expect(zipped.headers['content-encoding']).toBe('gzip');
    expect(zipped.headers.vary).toBe('accept-encoding');
    expect(gunzipSync(zipped.rawPayload).toString()).toBe(script);
  });

  it('answers the app for any view under /ui, and a problem for a missing file', async () => {
    for (const url of ['/ui/tail', '/ui/streams/account-1?from=3&dir=backward', '/ui/events/abc']) {
      const view = await api.inject({ url });
      expect(view.statusCode, url).toBe(200);
      expect(view.body, url).toBe(html);
      expect(view.headers['cache-control'], url).toBe('no-cache');
    }
    for (const url of ['/ui/assets/index-old999.js', '/ui/favicon.ico', '/ui/..%2F..%2Fpackage.json']) {
      const missing = await api.inject({ url });
      expect(missing.statusCode, url).toBe(404);
      expect(missing.headers['content-type'], url).toMatch(/^application\/problem\+json/);
    }
    // Dot segments are resolved before routing: this one is not under /ui at all.
    expect((await api.inject({ url: '/ui/../../package.json' })).statusCode).toBe(404);
  });

  it('answers a 503 problem that says how to build the UI before it is built', async () => {
    for (const url of ['/ui', '/ui/tail', '/ui/assets/index-abc123.js']) {
      const response = await unbuilt.inject({ url });
      expect(response.statusCode, url).toBe(503);
      expect(response.headers['content-type'], url).toMatch(/^application\/problem\+json/);
      expect(response.json(), url).toMatchObject({ status: 503, code: 'UI_NOT_BUILT' });
      expect(response.json().detail, url).toContain('npm run build:web');
    }
  });
});
