/**
 * The OpenAPI document the server serves: valid OpenAPI 3.1 (validated, not only parsed), and
 * true to the server. Every route the server registers is in it with its method, and nothing
 * else is; every operation has a summary; every operation that takes requests of the API
 * documents its error responses with the problem schema; the system routes are there.
 */

import { loadMigrations } from '@annals/core';
import { validate } from '@readme/openapi-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, startTestServer, type TestServer } from './support.js';

interface Operation {
  summary?: string;
  tags?: string[];
  parameters?: { in: string; name: string }[];
  responses: Record<string, { content?: Record<string, { schema?: { properties?: Record<string, unknown> } }> }>;
}
type Document = { openapi: string; paths: Record<string, Record<string, Operation>> };

/**
 * The routes Fastify registered, from its route tree (`printRoutes`): each line is a path
 * segment under its parent (indented by 4 per level) with the methods that end there.
 */
function registeredRoutes(tree: string): { method: string; path: string }[] {
  const routes: { method: string; path: string }[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const match = /^([│ ├└─]*)(\S.*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!match) continue;
    const depth = Math.floor((match[1] ?? '').length / 4) - 1;
    stack.length = Math.max(0, depth);
    stack.push(match[2] as string);
    for (const method of (match[3] ?? '').split(', ').filter(Boolean)) {
      routes.push({ method, path: stack.join('') });
    }
  }
  return routes;
}

/** `/streams/:streamId` as OpenAPI writes it: `/streams/{streamId}`. */
const openApiPath = (path: string) => path.replace(/:([A-Za-z]+)/g, '{$1}');

const systemPaths = ['/health/live', '/health/ready', '/metrics'];

describe.each(backends)('OpenAPI document on $name', (backend) => {
  let server: TestServer;
  let document: Document;

  beforeAll(async () => {
    server = await startTestServer(backend);
    const response = await fetch(`${server.url}/openapi.json`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    document = (await response.json()) as Document;
  });

  afterAll(async () => {
    await server?.cleanup();
  });

  it('is valid OpenAPI 3.1', async () => {
    expect(document.openapi).toMatch(/^3\.1\./);
    // The validator dereferences in place: give it a copy.
    const result = await validate(structuredClone(document) as never);
    expect(result.valid ? [] : result.errors.map((error) => error.message)).toEqual([]);
    expect(result.valid).toBe(true);
    expect(result.specification).toBe('OpenAPI');
  });

  it('lists every route the server registers with its method, and nothing else', () => {
    const registered = registeredRoutes(server.api.printRoutes({ commonPrefix: false }))
      // HEAD is GET's automatic twin, the document does not describe itself, and the admin
      // UI's pages (/ui, /ui/*) are not part of the API.
      .filter(
        (route) => route.method !== 'HEAD' && route.path !== '/openapi.json' && !/^\/ui(\/|\*|$)/.test(route.path),
      )
      .map((route) => `${route.method} ${openApiPath(route.path)}`)
      .sort();
    const documented = Object.entries(document.paths)
      .flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`))
      .sort();
    expect(registered.length).toBeGreaterThan(25);
    expect(documented).toEqual(registered);
  });

  it('gives every operation a summary and its path parameters', () => {
    for (const [path, operations] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const where = `${method.toUpperCase()} ${path}`;
        expect(operation.summary?.trim(), where).toBeTruthy();
        expect(operation.tags?.length, where).toBeGreaterThan(0);
        const inPath = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
        const declared = (operation.parameters ?? [])
          .filter((p) => p.in === 'path')
          .map((p) => p.name)
          .sort();
        expect(declared, where).toEqual(inPath);
      }
    }
  });

  it('documents the error responses of every API operation with the problem schema', () => {
    for (const [path, operations] of Object.entries(document.paths)) {
      if (systemPaths.includes(path)) continue;
      for (const [method, operation] of Object.entries(operations)) {
        const where = `${method.toUpperCase()} ${path}`;
        // Bad input, an unknown stream or route, conflicts, sizes, media type, rules, the database down.
        for (const status of ['400', '404', '409', '413', '415', '422', '503']) {
          const schema = operation.responses[status]?.content?.['application/problem+json']?.schema;
          expect(schema, `${where} ${status}`).toBeDefined();
          expect(Object.keys(schema?.properties ?? {}), `${where} ${status}`).toEqual(
            expect.arrayContaining(['type', 'title', 'status', 'detail', 'code']),
          );
        }
        expect(
          Object.keys(operation.responses).some((status) => status.startsWith('2')),
          where,
        ).toBe(true);
      }
    }
  });

  it('has the health checks and metrics, with what they answer', () => {
    const get = (path: string) => document.paths[path]?.get;
    expect(get('/health/live')?.responses['200']).toBeDefined();
    expect(Object.keys(get('/health/ready')?.responses ?? {}).sort()).toEqual(['200', '503']);
    expect(Object.keys(get('/metrics')?.responses['200']?.content ?? {})).toEqual(['text/plain']);
    for (const path of ['/subscribe', '/streams/{streamId}/subscribe']) {
      expect(Object.keys(get(path)?.responses['200']?.content ?? {}), path).toEqual(['text/event-stream']);
    }
  });

  it('serves what it documents for the system routes', async () => {
    const live = await server.request('GET', '/health/live');
    expect(live.status).toBe(200);
    const ready = await server.request('GET', '/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body.checks).toEqual(expect.arrayContaining([expect.stringMatching(/^schema .*: current/)]));
    const metrics = await server.request('GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(metrics.text).toContain('annals_http_requests_total');
    // The process's own metrics too (prom-client's defaults).
    expect(metrics.text).toContain('process_resident_memory_bytes');
    expect(metrics.text).toContain('nodejs_eventloop_lag_seconds');
  });

  it('is not ready once a newer version has migrated its schema', async () => {
    const latest = (await loadMigrations()).length;
    await server.client.exec(
      `insert into "${server.schema}".migrations (id, name) values (${latest + 1}, 'from_a_newer_version')`,
    );
    try {
      const ready = await server.request('GET', '/health/ready');
      expect(ready.status).toBe(503);
      expect(ready.body.checks).toEqual(
        expect.arrayContaining([`schema ${server.schema}: newer (migration ${latest + 1} of ${latest})`]),
      );
    } finally {
      await server.client.exec(`delete from "${server.schema}".migrations where id = ${latest + 1}`);
    }
    expect((await server.request('GET', '/health/ready')).status).toBe(200);
  });
});
