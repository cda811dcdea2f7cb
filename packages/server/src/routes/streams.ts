/** Streams and the global log: append (one stream or several), read, stream heads and metadata. */
import { type JsonObject, listStreams, type NewEvent, StreamNotFoundError, type StreamWrite } from '@annals/core';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { mayTouch } from '../auth/guard.js';
import { HttpProblem, problem } from '../problems.js';
import { type Api, type ServerContext, sendEventPage, traced } from '../route-kit.js';
import {
  AppendBody,
  AppendResult,
  EventPage,
  LifecycleReadFlags,
  LogFilter,
  MultiAppendBody,
  Name,
  Position,
  problemResponses,
  RecordedEvent,
  StreamInfo,
  Timestamp,
} from '../schemas.js';
import { assertAppendable } from '../server-streams.js';

const StreamParams = Type.Object({ streamId: Name });
const StreamSummary = Type.Object({
  streamId: Type.String(),
  version: Type.Integer(),
  lastPosition: Type.Integer(),
  lastEventAt: Timestamp,
  state: Type.Union([
    Type.Literal('active'),
    Type.Literal('deleted'),
    Type.Literal('tombstoned'),
    Type.Literal('archived'),
  ]),
});
const PageLimit = Type.Integer({ minimum: 1, maximum: 10_000, default: 1000 });

export function streamRoutes(api: Api, context: ServerContext): void {
  const storeOf = (request: FastifyRequest) => context.scopeOf(request).store;
  api.post(
    '/streams/:streamId/events',
    {
      schema: {
        summary: 'Append events to a stream',
        description:
          'Atomically, after checking the expected version. Retrying with the same event ids answers the first result with duplicate: true.',
        tags: ['streams'],
        params: StreamParams,
        body: AppendBody,
        response: { 200: AppendResult, 201: AppendResult, ...problemResponses },
      },
    },
    async (request, reply) => {
      const { events, expectedVersion } = request.body;
      assertAppendable(request.params.streamId);
      const result = await storeOf(request).append(request.params.streamId, traced(request, events as NewEvent[]), {
        expectedVersion,
      });
      return reply.code(result.duplicate ? 200 : 201).send(result);
    },
  );

  api.post(
    '/appends',
    {
      schema: {
        summary: 'Append to several streams in one transaction',
        description: 'All writes are stored or none is; each write has its own expected version.',
        tags: ['streams'],
        body: MultiAppendBody,
        response: { 200: Type.Object({ results: Type.Array(AppendResult) }), ...problemResponses },
      },
    },
    async (request) => {
      request.body.writes.forEach((write, i) => {
        assertAppendable(write.streamId, `writes[${i}].streamId`);
      });
      const writes = request.body.writes.map(
        (write): StreamWrite => ({ ...write, events: traced(request, write.events as NewEvent[]) }),
      );
      return { results: await storeOf(request).appendMulti(writes) };
    },
  );

  api.get(
    '/streams',
    {
      schema: {
        summary: 'List the streams',
        description:
          'In stream-id order, a page at a time, each with its version, last event and lifecycle state; `next` holds the next page query.',
        tags: ['streams'],
        querystring: Type.Object(
          {
            category: Type.Optional(Name),
            after: Type.Optional(Name),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 100 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            streams: Type.Array(StreamSummary),
            next: Type.Union([Type.Object({ after: Type.String() }), Type.Null()]),
          }),
          ...problemResponses,
        },
      },
    },
    async (request, reply) => {
      const page = await listStreams(await context.readerOf(request, reply), request.query);
      return { streams: page.streams, next: page.next === null ? null : { after: page.next } };
    },
  );

  api.get(
    '/streams/:streamId/events',
    {
      schema: {
        summary: 'Read a stream',
        description: 'A page of events in version order (forward or backward); `next` holds the next page query.',
        tags: ['streams'],
        params: StreamParams,
        querystring: Type.Object(
          {
            fromVersion: Type.Optional(Position),
            limit: Type.Optional(PageLimit),
            direction: Type.Optional(Type.Union([Type.Literal('forward'), Type.Literal('backward')])),
            ...LifecycleReadFlags,
          },
          { additionalProperties: false },
        ),
        response: { 200: EventPage, ...problemResponses },
      },
    },
    async (request, reply) => {
      const { streamId } = request.params;
      const { fromVersion, limit = 1000, direction = 'forward', includeDeleted, includeArchived } = request.query;
      const reader = await context.readerOf(request, reply);
      const events = reader.readStream(streamId, {
        fromVersion,
        limit,
        direction,
        includeDeleted,
        includeArchived,
      });
      return sendEventPage(
        reply,
        events,
        limit,
        (last) => ({ fromVersion: direction === 'forward' ? last.streamVersion + 1 : last.streamVersion - 1 }),
        // Only an empty page needs to tell a missing stream from a read past its end.
        async () => {
          if (!(await reader.getStream(streamId))?.exists) throw new StreamNotFoundError(streamId);
        },
      );
    },
  );

  api.get(
    '/streams/:streamId',
    {
      schema: {
        summary: 'A stream’s head and metadata',
        tags: ['streams'],
        params: StreamParams,
        response: { 200: StreamInfo, ...problemResponses },
      },
    },
    async (request, reply) => {
      const info = await (await context.readerOf(request, reply)).getStream(request.params.streamId);
      if (!info) throw new StreamNotFoundError(request.params.streamId);
      return info;
    },
  );

  api.put(
    '/streams/:streamId/metadata',
    {
      schema: {
        summary: 'Replace a stream’s metadata',
        description: 'A JSON object kept beside the stream (not an event).',
        tags: ['streams'],
        params: StreamParams,
        body: Type.Record(Type.String(), Type.Unknown()),
        response: { 204: Type.Null(), ...problemResponses },
      },
    },
    async (request, reply) => {
      await storeOf(request).setStreamMetadata(request.params.streamId, request.body as JsonObject);
      return reply.code(204).send(null);
    },
  );

  api.get(
    '/events',
    {
      schema: {
        summary: 'Read the global log',
        description:
          'Events after a position, in log order, filtered by category, type or stream; never skips an event. `next.after` is the checkpoint of the next page.',
        tags: ['log'],
        querystring: Type.Object(
          { after: Type.Optional(Position), limit: Type.Optional(PageLimit), ...LogFilter, ...LifecycleReadFlags },
          { additionalProperties: false },
        ),
        response: { 200: EventPage, ...problemResponses },
      },
    },
    async (request, reply) => {
      const { after = 0, limit = 1000, category, type, stream, includeDeleted, includeArchived } = request.query;
      const events = (await context.readerOf(request, reply)).readAll({
        after,
        limit,
        categories: category,
        eventTypes: type,
        streamIds: stream,
        includeDeleted,
        includeArchived,
      });
      return sendEventPage(reply, events, limit, (last) => ({ after: last.position }));
    },
  );

  api.get(
    '/events/:eventId',
    {
      schema: {
        summary: 'One event by id',
        tags: ['log'],
        params: Type.Object({ eventId: Type.String({ minLength: 1, maxLength: 100 }) }),
        response: { 200: RecordedEvent, ...problemResponses },
      },
    },
    async (request, reply) => {
      const event = await (await context.readerOf(request, reply)).getEvent(request.params.eventId);
      // An event of a category the principal may not see is, to it, no event at all.
      if (!event || !mayTouch(request.principal, event.streamId))
        throw new HttpProblem(problem(404, 'EVENT_NOT_FOUND', `no event has id ${request.params.eventId}`));
      return event;
    },
  );

  api.get(
    '/position',
    {
      schema: {
        summary: 'The log’s position at a time',
        tags: ['log'],
        querystring: Type.Object(
          { time: Type.Optional(Type.String({ format: 'date-time' })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ position: Type.Integer(), head: Type.Integer() }), ...problemResponses },
      },
    },
    async (request) => {
      const head = await storeOf(request).headPosition();
      const time = request.query.time;
      return { position: time === undefined ? head : await storeOf(request).positionAt(new Date(time)), head };
    },
  );
}
