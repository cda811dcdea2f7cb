/**
 * Audit and time travel: who did what, when and why; a request's causal tree; everything
 * held about a data subject; a stream's state as of a moment, step by step, and what changed
 * between two moments. State folds with the app's decider (`?decider=`), else merged data.
 */
import {
  auditTrail,
  type CausalNode,
  type Command,
  type Decider,
  type DomainEvent,
  InvalidInputError,
  mergeDecider,
  type PointInTime,
  type RecordedEvent,
  timeTravel,
  toArray,
} from '@annals/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { mayTouch } from '../auth/guard.js';
import { HttpProblem, problem } from '../problems.js';
import type { Api, ServerContext } from '../route-kit.js';
import {
  RecordedEvent as EventSchema,
  LogFilter,
  MomentQuery,
  Name,
  Position,
  problemResponses,
  TimeRangeQuery,
} from '../schemas.js';

const StreamParams = Type.Object({ streamId: Name });
const Limit = Type.Integer({ minimum: 1, maximum: 10_000 });

type AnyDecider = Decider<Command, DomainEvent, unknown>;

/** The events of `events` the request's principal may see. */
const visible = (request: FastifyRequest, events: RecordedEvent[]) =>
  request.principal.categories === null ? events : events.filter((e) => mayTouch(request.principal, e.streamId));

/** A time range from query strings; absent ends are open. */
function range(query: { from?: string; to?: string; limit?: number }) {
  return {
    from: query.from === undefined ? undefined : new Date(query.from),
    to: query.to === undefined ? undefined : new Date(query.to),
    limit: query.limit ?? 1000,
  };
}

/** `123` is a position, anything else an ISO time. */
function instant(value: string, field: string): Date | number {
  if (/^\d+$/.test(value)) {
    const position = Number(value);
    if (!Number.isSafeInteger(position)) throw new InvalidInputError(field, 'is out of range');
    return position;
  }
  const time = new Date(value);
  if (Number.isNaN(time.getTime()) || !/^\d{4}-\d{2}-\d{2}/.test(value)) {
    throw new InvalidInputError(field, 'must be a position (an integer) or an ISO-8601 time');
  }
  return time;
}

export function historyRoutes(api: Api, context: ServerContext): void {
  const { app } = context;
  // Audit and time travel only read: from a replica when the server has one. A facet is made
  // once per tenant and store read.
  const readerOf = async (request: FastifyRequest, reply: FastifyReply) => {
    const scope = context.scopeOf(request);
    const store = await context.readerOf(request, reply);
    return { scope, store, tag: store === scope.store ? '' : ':replica' };
  };
  const auditOf = async (request: FastifyRequest, reply: FastifyReply) => {
    const { scope, store, tag } = await readerOf(request, reply);
    return scope.memo(`audit${tag}`, () => auditTrail(store));
  };
  const travel = async (request: FastifyRequest, reply: FastifyReply, name: string | undefined) => {
    const entry = name === undefined ? undefined : app.deciders?.[name];
    if (name !== undefined && !entry)
      throw new HttpProblem(
        problem(404, 'UNKNOWN_DECIDER', `the app has no decider ${JSON.stringify(name)}`, { field: 'decider' }),
      );
    const { scope, store, tag } = await readerOf(request, reply);
    const facet = entry
      ? scope.memo(`travel:${name}${tag}`, () => timeTravel(store, entry.decider, { events: entry.events }))
      : scope.memo(`travel${tag}`, () => timeTravel(store, mergeDecider as unknown as AnyDecider));
    return { facet, store };
  };
  const events = Type.Object({ events: Type.Array(EventSchema) });

  api.get(
    '/streams/:streamId/history',
    {
      schema: {
        summary: 'A stream’s events with who, when and why',
        tags: ['audit'],
        params: StreamParams,
        querystring: Type.Object(
          { fromVersion: Type.Optional(Position), limit: Type.Optional(Limit) },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ entries: Type.Array(Type.Unknown()) }),
          ...problemResponses,
        },
      },
    },
    async (request, reply) => {
      const { fromVersion, limit = 1000 } = request.query;
      return {
        entries: await toArray(
          (await auditOf(request, reply)).history(request.params.streamId, { fromVersion, limit }),
        ),
      };
    },
  );

  api.get(
    '/audit/actors/:actor',
    {
      schema: {
        summary: 'What one actor did in a time range',
        tags: ['audit'],
        params: Type.Object({ actor: Name }),
        querystring: Type.Object(TimeRangeQuery, { additionalProperties: false }),
        response: { 200: events, ...problemResponses },
      },
    },
    async (request, reply) => ({
      events: visible(
        request,
        await toArray((await auditOf(request, reply)).byActor(request.params.actor, range(request.query))),
      ),
    }),
  );

  api.get(
    '/audit/range',
    {
      schema: {
        summary: 'Every event (of some categories or types) in a time range',
        tags: ['audit'],
        querystring: Type.Object(
          { ...TimeRangeQuery, category: LogFilter.category, type: LogFilter.type },
          { additionalProperties: false },
        ),
        response: { 200: events, ...problemResponses },
      },
    },
    async (request, reply) => ({
      events: await toArray(
        (await auditOf(request, reply)).inRange({
          ...range(request.query),
          categories: request.query.category,
          eventTypes: request.query.type,
        }),
      ),
    }),
  );

  api.get(
    '/audit/correlations/:correlationId',
    {
      schema: {
        summary: 'The causal tree of one request',
        description: 'Every event sharing the correlation id, each under the event that caused it.',
        tags: ['audit'],
        params: Type.Object({ correlationId: Name }),
        response: { 200: Type.Object({ roots: Type.Array(Type.Unknown()) }), ...problemResponses },
      },
    },
    async (request, reply) => {
      // A principal held to some categories sees its events of the tree, each under its
      // nearest visible cause.
      const plain = (node: CausalNode): unknown[] => {
        const children = node.children.flatMap(plain);
        return mayTouch(request.principal, node.event.streamId) ? [{ event: node.event, children }] : children;
      };
      return { roots: (await (await auditOf(request, reply)).causalTree(request.params.correlationId)).flatMap(plain) };
    },
  );

  api.get(
    '/audit/subjects/:subjectId',
    {
      schema: {
        summary: 'Everything held about one data subject',
        tags: ['audit'],
        params: Type.Object({ subjectId: Name }),
        querystring: Type.Object(TimeRangeQuery, { additionalProperties: false }),
        response: { 200: events, ...problemResponses },
      },
    },
    async (request, reply) => ({
      events: await toArray((await auditOf(request, reply)).bySubject(request.params.subjectId, range(request.query))),
    }),
  );

  api.get(
    '/deciders',
    {
      schema: {
        summary: 'The app’s deciders, by name',
        description:
          'The names `?decider=` takes in time travel and `POST /commands/<name>/<stream>`. Without `?decider=` a state is the merged data of the events (`default` is then null).',
        tags: ['time travel'],
        response: {
          200: Type.Object({
            deciders: Type.Array(Type.Object({ name: Type.String() })),
            default: Type.Null(),
          }),
          ...problemResponses,
        },
      },
    },
    async () => ({
      deciders: Object.keys(app.deciders ?? {})
        .sort()
        .map((name) => ({ name })),
      default: null,
    }),
  );

  api.get(
    '/streams/:streamId/state',
    {
      schema: {
        summary: 'A stream’s state as of a version, a global position or a time',
        tags: ['time travel'],
        params: StreamParams,
        querystring: MomentQuery,
        response: { 200: Type.Record(Type.String(), Type.Unknown()), ...problemResponses },
      },
    },
    async (request, reply) => {
      const { version, position, time, decider } = request.query;
      const given = [version, position, time].filter((value) => value !== undefined).length;
      if (given > 1) throw new InvalidInputError('query', 'give one of version, position and time');
      const at: PointInTime | undefined =
        version !== undefined
          ? { version }
          : position !== undefined
            ? { position }
            : time !== undefined
              ? { time: new Date(time) }
              : undefined;
      const { facet, store } = await travel(request, reply, decider);
      const moment = at ?? { version: (await store.getStream(request.params.streamId))?.version ?? 0 };
      return { ...(await facet.stateAt(request.params.streamId, moment)) };
    },
  );

  api.get(
    '/streams/:streamId/replay',
    {
      schema: {
        summary: 'Step through a stream: each event with the state before, after, and what changed',
        tags: ['time travel'],
        params: StreamParams,
        querystring: Type.Object(
          {
            fromVersion: Type.Optional(Position),
            toVersion: Type.Optional(Position),
            limit: Type.Optional(Limit),
            decider: Type.Optional(Name),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ steps: Type.Array(Type.Unknown()) }), ...problemResponses },
      },
    },
    async (request, reply) => {
      const { fromVersion, toVersion, limit = 1000, decider } = request.query;
      const steps: unknown[] = [];
      for await (const step of (await travel(request, reply, decider)).facet.replay(request.params.streamId, {
        fromVersion,
        toVersion,
      })) {
        steps.push(step);
        if (steps.length >= limit) break;
      }
      return { steps };
    },
  );

  api.get(
    '/changes',
    {
      schema: {
        summary: 'What changed between two moments',
        description: '`from` and `to` are global positions or ISO-8601 times.',
        tags: ['time travel'],
        querystring: Type.Object(
          {
            from: Type.String({ maxLength: 64 }),
            to: Type.String({ maxLength: 64 }),
            category: LogFilter.category,
            decider: Type.Optional(Name),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Record(Type.String(), Type.Unknown()), ...problemResponses },
      },
    },
    async (request, reply) => {
      const { from, to, category, decider } = request.query;
      return {
        ...(await (
          await travel(request, reply, decider)
        ).facet.changesBetween(instant(from, 'from'), instant(to, 'to'), {
          categories: category,
        })),
      };
    },
  );
}
