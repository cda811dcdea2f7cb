/**
 * Helpers of auth.test.ts: API keys in a directory schema of the test file's own, requests
 * with a bearer credential that check no secret ever comes back, SSE connections read with
 * fetch's reader until the server ends them, and raw HTTP/1.1 requests over a plain socket
 * (for Authorization headers that fetch would refuse to send: bytes above 0xFF, control
 * characters, 16 KB values).
 */
import { connect } from 'node:net';
import type { SqlClient } from '@annals/core';
import { expect } from 'vitest';
import { createApiKey, type NewApiKey } from '../src/auth/api-keys.js';

/** Every credential the tests made: none may ever appear in a response. */
export const secrets: string[] = [];

/** Fails when `text` holds a credential, or the secret part of a key. */
export function expectNoSecret(text: string): void {
  for (const secret of secrets) {
    expect(text.includes(secret), 'a response holds a credential').toBe(false);
    // ank_<16 hex id>_<43 characters of base64url, which may hold "_" themselves>
    const part = secret.startsWith('ank_') ? secret.slice('ank_'.length + 16 + 1) : undefined;
    if (part) expect(text.includes(part), 'a response holds a key secret').toBe(false);
  }
}

/** Remembers a credential (a JWT), so that responses are checked not to hold it. */
export function remember(secret: string): string {
  secrets.push(secret);
  return secret;
}

/** Creates a key in `directory` and remembers its secret. */
export async function makeKey(
  client: SqlClient,
  directory: string,
  key: Omit<NewApiKey, 'name' | 'tenant'> & { name?: string; tenant?: string },
) {
  const created = await createApiKey(
    client,
    { name: `k-${Math.random().toString(36).slice(2, 10)}`, tenant: 'default', ...key },
    { directory },
  );
  secrets.push(created.secret);
  return created;
}

export interface Answer {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: tests read response bodies of every shape.
  body: any;
  text: string;
}

/** A request with `credential` as bearer (none when undefined); JSON in and out. */
export async function call(
  baseUrl: string,
  method: string,
  path: string,
  options: { credential?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.credential !== undefined) headers.authorization = `Bearer ${options.credential}`;
  const init: RequestInit = { method, headers, signal: AbortSignal.timeout(5000) };
  if (options.body !== undefined) {
    init.body = JSON.stringify(options.body);
    headers['content-type'] = 'application/json';
  }
  const response = await fetch(`${baseUrl}${path}`, init);
  const text = await response.text();
  expectNoSecret(text);
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // Not JSON (metrics): the text is the body.
  }
  return { status: response.status, headers: response.headers, body, text };
}

/** A problem body without its `instance` (the path asked), for comparing two refusals. */
export function withoutInstance(body: Record<string, unknown>): Record<string, unknown> {
  const { instance: _instance, ...rest } = body;
  return rest;
}

/** An SSE connection read with fetch's reader. */
export interface SseConnection {
  status: number;
  response: Response;
  /** What was read so far. */
  text(): string;
  /** Resolves with the time the server ended the stream (reader done, or the socket cut), or undefined after `timeoutMs`. */
  ended(timeoutMs: number): Promise<number | undefined>;
  close(): void;
}

/** Opens `path` as SSE with `credential`; a non-200 answer is read whole (and checked for secrets). */
export async function openSse(baseUrl: string, path: string, credential?: string): Promise<SseConnection> {
  const controller = new AbortController();
  const headers: Record<string, string> = { accept: 'text/event-stream' };
  if (credential !== undefined) headers.authorization = `Bearer ${credential}`;
  const timer = setTimeout(() => controller.abort(), 5000);
  const response = await fetch(`${baseUrl}${path}`, { headers, signal: controller.signal }).finally(() =>
    clearTimeout(timer),
  );
  let received = '';
  let endedAt: number | undefined;
  let reading: Promise<void> | undefined;
  if (response.status !== 200) {
    received = await response.text();
    expectNoSecret(received);
    endedAt = Date.now();
  } else {
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    reading = (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          received += decoder.decode(value, { stream: true });
        }
      } catch {
        // Aborted by close(), or the socket cut by the server: either way it is over.
      }
      endedAt ??= Date.now();
    })();
  }
  let closed = false;
  return {
    status: response.status,
    response,
    text: () => received,
    async ended(timeoutMs) {
      if (endedAt !== undefined || !reading) return endedAt;
      let timeout: NodeJS.Timeout | undefined;
      await Promise.race([reading, new Promise<void>((resolve) => (timeout = setTimeout(resolve, timeoutMs)))]);
      clearTimeout(timeout);
      if (endedAt !== undefined && !closed) expectNoSecret(received);
      return closed ? undefined : endedAt;
    },
    close() {
      if (endedAt === undefined) closed = true;
      controller.abort();
    },
  };
}

/** An answer read off a raw socket. */
export interface RawAnswer {
  status: number;
  head: string;
  body: string;
}

/**
 * Sends one HTTP/1.1 request as raw bytes (`authorization` encoded as UTF-8, as it is) and
 * reads the answer until the server closes (Connection: close). Rejects after `timeoutMs`.
 */
export function rawRequest(
  baseUrl: string,
  request: { method: string; path: string; authorization?: string; body?: string },
  timeoutMs = 5000,
): Promise<RawAnswer> {
  const url = new URL(baseUrl);
  const lines = [`${request.method} ${request.path} HTTP/1.1`, `host: ${url.host}`, 'connection: close'];
  if (request.authorization !== undefined) lines.push(`authorization: ${request.authorization}`);
  const body = request.body === undefined ? undefined : Buffer.from(request.body, 'utf8');
  if (body) lines.push('content-type: application/json', `content-length: ${body.length}`);
  const bytes = Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8'), body ?? Buffer.alloc(0)]);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within ${timeoutMs} ms: ${Buffer.concat(chunks).toString('latin1')}`));
    }, timeoutMs);
    socket.on('data', (chunk) => chunks.push(chunk));
    // The server may answer (431, 400) and close before reading everything that was sent.
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      const head = split === -1 ? text : text.slice(0, split);
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      if (!match) {
        reject(new Error(`not an HTTP answer: ${JSON.stringify(text.slice(0, 200))}`));
        return;
      }
      resolve({ status: Number(match[1]), head, body: split === -1 ? '' : text.slice(split + 4) });
    });
    socket.write(bytes);
  });
}

/** Polls `condition` for at most `timeoutMs` (never more than 5 s); fails with `what`. */
export async function eventually(condition: () => Promise<boolean> | boolean, what: string, timeoutMs = 2000) {
  const deadline = Date.now() + Math.min(timeoutMs, 5000);
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
