/**
 * Live over Server-Sent Events: the log (with filters) or one stream, catch-up then live.
 * Each event's SSE `id` is its position; a reconnect with `Last-Event-ID` resumes after it.
 * Works with the browser's `EventSource` as it is. See live-hub.ts for the fan-out.
 */
import { finished } from 'node:stream';
import { InvalidInputError } from '@annals/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { LiveFilter } from '../live-hub.js';
import { HttpProblem, problem } from '../problems.js';
import type { Api, ServerContext } from '../route-kit.js';
import { LogFilter, Name, Position, problemResponses } from '../schemas.js';

const sseResponse = {
  200: {
    description: 'Server-Sent Events: `id: <position>` and `data: <event JSON>` per event',
    content: { 'text/event-stream': { schema: Type.String() } },
  },
  ...problemResponses,
};

/** Where a client resumes: its `Last-Event-ID` when it sends one, else `after`. */
function resumeAfter(request: FastifyRequest, after: number | undefined): number {
  const header = request.headers['last-event-id'];
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value === '') return after ?? 0;
  if (!/^\d{1,16}$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new InvalidInputError('last-event-id', 'must be a position (a non-negative integer)');
  }
  return Number(value);
}

async function serveEvents(
  context: ServerContext,
  counts: Map<string, number>,
  request: FastifyRequest,
  reply: FastifyReply,
  after: number,
  filter: LiveFilter,
): Promise<void> {
  const { store, hub } = context.scopeOf(request);
  // Checked before the stream starts, so bad filters answer a problem, not a broken stream.
  store.readAll({ after, limit: 1, ...filter });
  const principal = request.principal;
  // Per key: with authentication off every client is the same anonymous principal, so no cap.
  const cap = principal.kind === 'anonymous' ? 0 : (context.limits.sseConnectionsPerKey ?? 100);
  const open = counts.get(principal.id) ?? 0;
  if (cap > 0 && open >= cap) {
    reply.header('retry-after', '5');
    throw new HttpProblem(problem(429, 'TOO_MANY_CONNECTIONS', `this key already holds ${cap} live connections`));
  }
  const response = reply.raw;
  // A client that left while the request was checked is not counted, nor served.
  if (response.destroyed || request.raw.destroyed) return;
  counts.set(principal.id, open + 1);
  // finished() also fires for a response that closed already, so the count always comes back.
  const gone = new Promise<void>((resolve) => {
    finished(response, () => resolve());
  });
  const end = () => response.end(() => response.socket?.destroy());
  // A revoked or expired key loses its live connections at once (also one revoked while this
  // request was on its way here); the client's reconnect then gets 401, which ends an
  // EventSource for good.
  const unwatch = context.auth?.watch(principal, end, request.authenticatedAt);
  void gone.then(() => {
    unwatch?.();
    const left = (counts.get(principal.id) ?? 1) - 1;
    if (left <= 0) counts.delete(principal.id);
    else counts.set(principal.id, left);
  });
  reply.hijack();
  response.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  response.flushHeaders();
  try {
    await hub.serve(
      {
        write: (chunk) => response.write(chunk),
        get buffered() {
          return response.writableLength;
        },
        drained: () =>
          new Promise<void>((resolve) => {
            if (response.writableLength === 0 || response.destroyed) resolve();
            else {
              // Whichever comes first; the other listener goes, so waits do not pile up listeners.
              const done = () => {
                response.off('drain', done);
                response.off('close', done);
                resolve();
              };
              response.once('drain', done);
              response.once('close', done);
            }
          }),
        // The connection goes with the stream: an ended SSE response leaves nothing to reuse.
        close: (how) => (how === 'end' ? end() : response.destroy()),
      },
      after,
      filter,
      gone,
    );
  } catch (error) {
    // The status is sent: a failure now (the database gone) can only end the stream, which
    // the client resumes from its last event id.
    request.log.error({ err: error }, 'live stream failed');
    response.destroy();
  }
}

export function liveRoutes(api: Api, context: ServerContext): void {
  /** Open live connections per principal, against `sseConnectionsPerKey`. */
  const counts = new Map<string, number>();
  api.get(
    '/subscribe',
    {
      schema: {
        summary: 'Follow the global log live (Server-Sent Events)',
        description:
          'Catch-up from `after` (or the `Last-Event-ID` header), then live; filters as for /events. Heartbeats are comments.',
        tags: ['live'],
        querystring: Type.Object({ after: Type.Optional(Position), ...LogFilter }, { additionalProperties: false }),
        response: sseResponse,
      },
    },
    async (request, reply) => {
      const { after, category, type, stream } = request.query;
      await serveEvents(context, counts, request, reply, resumeAfter(request, after), {
        categories: category,
        eventTypes: type,
        streamIds: stream,
      });
    },
  );

  api.get(
    '/streams/:streamId/subscribe',
    {
      schema: {
        summary: 'Follow one stream live (Server-Sent Events)',
        description: 'Catch-up from `after` (a global position) or `Last-Event-ID`, then live.',
        tags: ['live'],
        params: Type.Object({ streamId: Name }),
        querystring: Type.Object({ after: Type.Optional(Position) }, { additionalProperties: false }),
        response: sseResponse,
      },
    },
    async (request, reply) => {
      await serveEvents(context, counts, request, reply, resumeAfter(request, request.query.after), {
        streamIds: [request.params.streamId],
      });
    },
  );
}
