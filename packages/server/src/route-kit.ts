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
import type { Authenticator } from './auth/authenticator.js';
import type { AbuseLimits } from './auth/guard.js';
import type { TenantScope } from './tenant-scopes.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The store (and hub) of the principal's tenant; set before every guarded route's handler. */
    scope: TenantScope | null;
  }
}

/** The server's parts, handed to every route module. */
export interface ServerContext {
  app: AnnalsApp;
  /** Authentication, when on (SSE connections watch their key through it). */
  auth: Authenticator | undefined;
  limits: AbuseLimits;
  /** The tenant parts of a request (its principal's tenant). */
  scopeOf(request: FastifyRequest): TenantScope;
  /**
   * The store a read route reads from: the tenant's, or a replica of it (and the answer's
   * headers say which; `replica-reads.ts`). Routes that write, or read what they then write,
   * use {@link ServerContext.scopeOf}.
   */
  readerOf(request: FastifyRequest, reply: FastifyReply): Promise<EventStore>;
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

/**
 * The actor of what the request appends: its principal's, unless the principal may act for
 * others and the request names one. Anonymous requests (authentication off) keep what they name.
 */
export function actorOf(request: FastifyRequest, named: unknown): string | undefined {
  const principal = request.principal;
  if (principal.actAs && typeof named === 'string') return named;
  return principal.kind === 'anonymous' ? undefined : principal.actor;
}

/**
 * Events as the request appends them: with its `traceparent` (so a trace links to what it
 * caused) and the actor of {@link actorOf}, which a body field cannot forge.
 */
export function traced(request: FastifyRequest, events: NewEvent[]): NewEvent[] {
  const traceparent = traceparentOf(request);
  const principal = request.principal;
  const stamp = principal.kind !== 'anonymous';
  if (!traceparent && !stamp) return events;
  return events.map((event) => {
    // Metadata that is not an object is left for the store to refuse.
    if (event.metadata !== undefined && (typeof event.metadata !== 'object' || Array.isArray(event.metadata))) {
      return event;
    }
    const metadata: JsonObject = { ...(traceparent ? { traceparent } : {}), ...((event.metadata as JsonObject) ?? {}) };
    if (stamp) {
      const actor = actorOf(request, metadata.actor);
      if (actor !== undefined) metadata.actor = actor;
    }
    return { ...event, metadata };
  });
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
