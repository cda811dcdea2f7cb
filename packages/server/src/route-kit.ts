/** What the route modules share: the server's context and the small helpers every route uses. */
import { Readable } from 'node:stream';
import type { EventStore, JsonObject, NewEvent, RecordedEvent } from '@annals/core';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { AnnalsApp } from './app-module.js';
import type { LiveHub } from './live-hub.js';

/** The server's parts, handed to every route module. */
export interface ServerContext {
  store: EventStore;
  app: AnnalsApp;
  hub: LiveHub;
  /** Whether the runners the server started are healthy (for readiness). */
  runnersHealthy(): Promise<{ ok: boolean; detail: string[] }>;
}

/** A Fastify instance typed by TypeBox schemas. */
export type Api = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

const traceparentPattern = /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;

/** The request's W3C `traceparent`, when it is well formed. */
export function traceparentOf(request: FastifyRequest): string | undefined {
  const header = request.headers.traceparent;
  const value = Array.isArray(header) ? header[0] : header;
  return value && traceparentPattern.test(value.trim().toLowerCase()) ? value.trim().toLowerCase() : undefined;
}

/** Events with the request's `traceparent` in their metadata, so a trace links to what it caused. */
export function traced(request: FastifyRequest, events: NewEvent[]): NewEvent[] {
  const traceparent = traceparentOf(request);
  if (!traceparent) return events;
  return events.map((event) => ({
    ...event,
    metadata: { traceparent, ...((event.metadata as JsonObject | undefined) ?? {}) },
  }));
}

/** Bytes of JSON gathered before each write: one write per event would cost a syscall each. */
const writeChunkChars = 64 * 1024;

/**
 * Sends a page of events as JSON, written as it is read in chunks of about 64 KiB (never the
 * whole page in memory). The first event is read before the status is sent, so a failure to
 * read answers a problem, not a cut-off 200; when there is none, `onEmpty` may still refuse
 * (a stream that does not exist).
 */
export async function sendEventPage(
  reply: FastifyReply,
  events: AsyncIterable<RecordedEvent>,
  limit: number,
  nextOf: (last: RecordedEvent) => Record<string, number>,
  onEmpty?: () => Promise<void>,
): Promise<FastifyReply> {
  const iterator = events[Symbol.asyncIterator]();
  const first = await iterator.next();
  if (first.done) await onEmpty?.();
  async function* body() {
    let chunk = '{"events":[';
    let count = 0;
    let last: RecordedEvent | undefined;
    for (let step = first; !step.done; step = await iterator.next()) {
      chunk += (count === 0 ? '' : ',') + JSON.stringify(step.value);
      count++;
      last = step.value;
      if (chunk.length >= writeChunkChars) {
        yield chunk;
        chunk = '';
      }
    }
    const next = count === limit && last ? nextOf(last) : null;
    yield `${chunk}],"next":${JSON.stringify(next)}}`;
  }
  return reply.type('application/json; charset=utf-8').send(Readable.from(body()));
}
