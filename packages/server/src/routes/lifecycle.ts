/**
 * Stream lifecycle: soft delete or tombstone (`DELETE /streams/:streamId`), archive,
 * unarchive and retention. None rewrites an event: each change is a state beside the stream and an event in
 * `$lifecycle` with who and why (docs/operations.md, "Stream lifecycle").
 */
import { lifecycle } from '@annals/core';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { type Api, actorOf, type ServerContext } from '../route-kit.js';
import { Name, Position, problemResponses } from '../schemas.js';

const StreamParams = Type.Object({ streamId: Name });
const Reason = Type.String({ minLength: 1, maxLength: 1000, description: 'Why (recorded with the change).' });
const Actor = Type.String({ maxLength: 256, description: 'Who (recorded with the change).' });
const ChangeExpectedVersion = Type.Union([Position, Type.Literal('any'), Type.Literal('stream-exists')], {
  description: 'The version the stream must be at: a number, "any" or "stream-exists".',
});
const State = Type.Union([
  Type.Literal('active'),
  Type.Literal('deleted'),
  Type.Literal('tombstoned'),
  Type.Literal('archived'),
]);
const LifecycleResult = Type.Object({
  streamId: Type.String(),
  state: State,
  previousState: State,
  changed: Type.Boolean(),
  streamVersion: Type.Integer(),
  truncateBefore: Type.Integer(),
  position: Type.Union([Type.Integer(), Type.Null()]),
});
const ChangeBody = Type.Object(
  { reason: Reason, actor: Type.Optional(Actor), expectedVersion: Type.Optional(ChangeExpectedVersion) },
  { additionalProperties: false },
);

const RetentionResult = Type.Object({
  streamId: Type.String(),
  state: State,
  changed: Type.Boolean(),
  streamVersion: Type.Integer(),
  truncateBefore: Type.Integer(),
  maxCount: Type.Union([Type.Integer(), Type.Null()]),
  maxAge: Type.Union([Type.Integer(), Type.Null()]),
  position: Type.Union([Type.Integer(), Type.Null()]),
});
const Window = (description: string) =>
  Type.Optional(
    Type.Union([Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }), Type.Null()], { description }),
  );
const RetentionBody = Type.Object(
  {
    reason: Reason,
    actor: Type.Optional(Actor),
    maxCount: Window('Only the last n versions are read (null: all; left out: kept).'),
    maxAge: Window('Only events of the last n seconds are read (null: all; left out: kept).'),
    truncateBefore: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: Number.MAX_SAFE_INTEGER,
        description: 'Hide versions below this (only raised).',
      }),
    ),
  },
  { additionalProperties: false },
);

/** A change with the actor of {@link actorOf}: the principal's, not a forged one. */
function withActor<T extends { actor?: string }>(request: FastifyRequest, change: T): T {
  const actor = actorOf(request, change.actor);
  return actor === undefined ? change : { ...change, actor };
}

export function lifecycleRoutes(api: Api, context: ServerContext): void {
  const storeOf = (request: FastifyRequest) => context.scopeOf(request).store;
  api.delete(
    '/streams/:streamId',
    {
      schema: {
        summary: 'Delete a stream (soft, or for good with tombstone=true)',
        description:
          'Soft: reads answer 410 STREAM_DELETED and the log skips its events, until an append with "any" or "no-stream" re-opens it at its next version. tombstone=true: deleted for good, every later append answers 410 STREAM_TOMBSTONED. No event is removed; the change is recorded in $lifecycle with the reason and actor.',
        tags: ['lifecycle'],
        params: StreamParams,
        querystring: Type.Object(
          {
            reason: Reason,
            actor: Type.Optional(Actor),
            expectedVersion: Type.Optional(Position),
            tombstone: Type.Optional(Type.Boolean({ default: false })),
          },
          { additionalProperties: false },
        ),
        response: { 200: LifecycleResult, ...problemResponses },
      },
    },
    async (request) => {
      const { tombstone, ...query } = request.query;
      const change = withActor(request, query);
      const facet = lifecycle(storeOf(request));
      return tombstone
        ? facet.tombstone(request.params.streamId, change)
        : facet.delete(request.params.streamId, change);
    },
  );

  api.post(
    '/streams/:streamId/archive',
    {
      schema: {
        summary: 'Archive a stream',
        description:
          'Kept, hidden from default reads (includeArchived=true shows it) and from live subscriptions and projections; appends answer 409 STREAM_ARCHIVED until it is unarchived.',
        tags: ['lifecycle'],
        params: StreamParams,
        body: ChangeBody,
        response: { 200: LifecycleResult, ...problemResponses },
      },
    },
    async (request) => lifecycle(storeOf(request)).archive(request.params.streamId, withActor(request, request.body)),
  );

  api.post(
    '/streams/:streamId/unarchive',
    {
      schema: {
        summary: 'Unarchive a stream',
        description: 'Back to active; a stream that is not archived is left as it is (changed: false).',
        tags: ['lifecycle'],
        params: StreamParams,
        body: ChangeBody,
        response: { 200: LifecycleResult, ...problemResponses },
      },
    },
    async (request) => lifecycle(storeOf(request)).unarchive(request.params.streamId, withActor(request, request.body)),
  );

  api.put(
    '/streams/:streamId/retention',
    {
      schema: {
        summary: 'Set a stream’s retention (maxCount, maxAge, truncateBefore)',
        description:
          'Older events are hidden from reads of the stream, never removed (includeDeleted=true shows them); truncateBefore also hides them from the global log. Recorded in $lifecycle with the reason and actor.',
        tags: ['lifecycle'],
        params: StreamParams,
        body: RetentionBody,
        response: { 200: RetentionResult, ...problemResponses },
      },
    },
    async (request) =>
      lifecycle(storeOf(request)).setRetention(request.params.streamId, withActor(request, request.body)),
  );
}
