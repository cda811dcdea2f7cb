/**
 * A real server for each test: listening on an ephemeral loopback port, over a store in a
 * schema of its own on each backend (PGlite always, PostgreSQL with DATABASE_URL), dropped
 * after. Tests talk HTTP to it with `fetch`, never `inject`.
 */
import type { SqlClient } from '@annals/core';
import { backends, freshSchema, type TestBackend } from '../../core/test/support/backends.js';
import { type RunningServer, type StartServerOptions, startServer } from '../src/index.js';

export { backends, type TestBackend };

export interface TestServer extends RunningServer {
  schema: string;
  client: SqlClient;
  /** An HTTP request to the server; JSON bodies are sent and parsed as JSON. */
  request(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
    // biome-ignore lint/suspicious/noExplicitAny: tests read response bodies of every shape.
  ): Promise<{ status: number; headers: Headers; body: any; text: string }>;
  cleanup(): Promise<void>;
}

export async function startTestServer(
  backend: TestBackend,
  options: Partial<Omit<StartServerOptions, 'client'>> = {},
): Promise<TestServer> {
  const client = backend.client();
  const schema = freshSchema('srv');
  const server = await startServer({
    ...options,
    client,
    port: 0,
    store: { ...options.store, schema, closeClient: false },
  });
  return {
    ...server,
    schema,
    client,
    async request(method, path, body, headers = {}) {
      const init: RequestInit = { method, headers: { ...headers } };
      if (body !== undefined) {
        init.body = typeof body === 'string' ? body : JSON.stringify(body);
        (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
      }
      const response = await fetch(`${server.url}${path}`, init);
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // Not JSON (metrics, SSE): the text is the body.
      }
      return { status: response.status, headers: response.headers, body: parsed, text };
    },
    async cleanup() {
      await server.close();
      await client.exec(`drop schema if exists "${schema}" cascade`);
    },
  };
}
