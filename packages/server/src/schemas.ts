/**
 * The HTTP API's shapes, as TypeBox schemas: the same objects validate requests, type the
 * handlers and generate the OpenAPI document. Payloads (`data`, `metadata`) are any JSON here;
 * the store checks them (size, depth, text) and answers a typed error.
 */
import { type Static, Type } from 'typebox';

/** A stream id, category or event type as a path or query value; the store checks the rest. */
export const Name = Type.String({ minLength: 1, maxLength: 1000 });

/** A time: a `Date` in the handlers, an ISO-8601 string on the wire. */
export const Timestamp = Type.Unsafe<Date>({ type: 'string', format: 'date-time' });

/** A global position or stream version. */
export const Position = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });

export const ExpectedVersion = Type.Union(
  [Position, Type.Literal('any'), Type.Literal('no-stream'), Type.Literal('stream-exists')],
  { description: 'The version the stream must be at: a number, "any", "no-stream" or "stream-exists".' },
);

export const NewEvent = Type.Object(
  {
    type: Type.String({ minLength: 1, maxLength: 256 }),
    data: Type.Unknown({ description: 'Any JSON value.' }),
    metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    id: Type.Optional(Type.String({ description: 'A UUID: give one to make retries idempotent.' })),
  },
  { additionalProperties: false },
);

export const AppendBody = Type.Object(
  {
    events: Type.Array(NewEvent, { minItems: 1 }),
    expectedVersion: Type.Optional(ExpectedVersion),
  },
  { additionalProperties: false },
);
export type AppendBody = Static<typeof AppendBody>;

export const MultiAppendBody = Type.Object(
  {
    writes: Type.Array(
      Type.Object(
        {
          streamId: Name,
          events: Type.Array(NewEvent, { minItems: 1 }),
          expectedVersion: Type.Optional(ExpectedVersion),
        },
        { additionalProperties: false },
      ),
      { minItems: 1 },
    ),
  },
  { additionalProperties: false },
);
export type MultiAppendBody = Static<typeof MultiAppendBody>;

export const AppendResult = Type.Object({
  streamId: Type.String(),
  streamVersion: Type.Integer(),
  positions: Type.Array(Type.Integer()),
  duplicate: Type.Boolean(),
  recordedAt: Timestamp,
});

export const RecordedEvent = Type.Object({
  position: Type.Integer(),
  streamId: Type.String(),
  streamVersion: Type.Integer(),
  id: Type.String(),
  type: Type.String(),
  data: Type.Unknown(),
  metadata: Type.Record(Type.String(), Type.Unknown()),
  recordedAt: Timestamp,
  redacted: Type.Optional(Type.Array(Type.String())),
});

export const EventPage = Type.Object({
  events: Type.Array(RecordedEvent),
  next: Type.Union([Type.Null(), Type.Record(Type.String(), Type.Integer())], {
    description: 'The query parameters of the next page, or null at the end.',
  }),
});

export const StreamInfo = Type.Object({
  streamId: Type.String(),
  version: Type.Integer(),
  exists: Type.Boolean(),
  metadata: Type.Record(Type.String(), Type.Unknown()),
  createdAt: Type.Union([Timestamp, Type.Null()]),
  lastEventAt: Type.Union([Timestamp, Type.Null()]),
  state: Type.Union([
    Type.Literal('active'),
    Type.Literal('deleted'),
    Type.Literal('tombstoned'),
    Type.Literal('archived'),
  ]),
  truncateBefore: Type.Integer(),
  retention: Type.Object({
    maxCount: Type.Union([Type.Integer(), Type.Null()]),
    maxAge: Type.Union([Type.Integer(), Type.Null()]),
  }),
});

/** What a read shows beyond live events (stream lifecycle). */
export const LifecycleReadFlags = {
  includeDeleted: Type.Optional(
    Type.Boolean({ description: 'Also events hidden by a delete (soft or tombstone).', default: false }),
  ),
  includeArchived: Type.Optional(Type.Boolean({ description: 'Also events of archived streams.', default: false })),
};

/** RFC 9457 problem details, with the store's error code and the offending field. */
export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String(),
    field: Type.Optional(Type.String()),
    instance: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);

/** Query filters of the global log. */
export const LogFilter = {
  category: Type.Optional(Type.Array(Name, { maxItems: 100, description: 'Only these categories.' })),
  type: Type.Optional(Type.Array(Name, { maxItems: 100, description: 'Only these event types.' })),
  stream: Type.Optional(Type.Array(Name, { maxItems: 100, description: 'Only these streams.' })),
};

/** A moment in a stream's history: a version, a global position or a time. */
export const MomentQuery = Type.Object(
  {
    version: Type.Optional(Position),
    position: Type.Optional(Position),
    time: Type.Optional(Type.String({ format: 'date-time' })),
    decider: Type.Optional(Name),
  },
  { additionalProperties: false },
);

export const TimeRangeQuery = {
  from: Type.Optional(Type.String({ format: 'date-time' })),
  to: Type.Optional(Type.String({ format: 'date-time' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
};

/** One problem response: RFC 9457 `application/problem+json`, as the error handler sends it. */
const problemResponse = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: Problem } },
});

/** The problem responses every route can give, for the OpenAPI document. */
export const problemResponses = {
  400: problemResponse('Bad input: malformed JSON, a field out of range, a wrong type'),
  404: problemResponse('No such stream, event or route'),
  409: problemResponse('Conflict: the expected version did not match (both versions are named)'),
  413: problemResponse('The body is larger than the limit'),
  415: problemResponse('The body is not JSON'),
  422: problemResponse('A rule of the domain refused the command (its reason is named)'),
  503: problemResponse('The database is unavailable or the server is draining; retry after a while'),
};

/** A projection's name, as `@annals/core` accepts it (1-200 characters). */
export const ProjectionName = Type.String({ minLength: 1, maxLength: 200 });

/** Where a rebuild of a projection started over HTTP is (`GET /projections/<name>/rebuild`). */
export const RebuildProgress = Type.Object({
  name: Type.String(),
  version: Type.Integer({ minimum: 1 }),
  state: Type.Union([Type.Literal('idle'), Type.Literal('running'), Type.Literal('done'), Type.Literal('failed')]),
  position: Type.Union([Position, Type.Null()], { description: 'The checkpoint reached (null before a start)' }),
  target: Type.Union([Position, Type.Null()], { description: 'The head of the log when the rebuild started' }),
  eventsPerSecond: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]),
  etaSeconds: Type.Union([Type.Number({ minimum: 0 }), Type.Null()], {
    description: 'Seconds to the target at the current rate (null: not moving yet)',
  }),
  error: Type.Union([Type.String(), Type.Null()], { description: 'Why it failed' }),
  startedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  finishedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});
