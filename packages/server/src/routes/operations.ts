/**
 * Operations: subscriptions' and projections' checkpoints with lag, parked events (list,
 * replay with the app's handler), who holds the log, seal status, verify, and forgetting a
 * data subject.
 */
import { integrity, type ParkedEvent, personalData, subscriptions } from '@annals/core';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { HttpProblem, problem } from '../problems.js';
import { type Api, actorOf, type ServerContext } from '../route-kit.js';
import { Name, Position, problemResponses } from '../schemas.js';

const Rows = Type.Array(Type.Unknown());

export function operationRoutes(api: Api, context: ServerContext): void {
  const storeOf = (request: FastifyRequest) => context.scopeOf(request).store;
  const { app } = context;
  api.get(
    '/checkpoints',
    {
      schema: {
        summary: 'Every durable subscription and projection, with its lag and the error it last parked an event with',
        tags: ['operations'],
        response: { 200: Type.Object({ checkpoints: Rows }), ...problemResponses },
      },
    },
    async (request) => {
      const facet = subscriptions(storeOf(request));
      const checkpoints = await facet.checkpoints();
      // The error of the most recently parked event: read only for those that parked any.
      const withErrors = await Promise.all(
        checkpoints.map(async (checkpoint) => {
          if (checkpoint.parked === 0) return { ...checkpoint, lastError: null };
          const latest = (await facet.parked(checkpoint.name)).reduce<ParkedEvent | undefined>(
            (last, event) => (last && last.parkedAt >= event.parkedAt ? last : event),
            undefined,
          );
          return { ...checkpoint, lastError: latest ? { error: latest.error, parkedAt: latest.parkedAt } : null };
        }),
      );
      return { checkpoints: withErrors };
    },
  );

  api.get(
    '/subscriptions/:name/parked',
    {
      schema: {
        summary: 'Events a subscription parked after its retries',
        tags: ['operations'],
        params: Type.Object({ name: Name }),
        response: { 200: Type.Object({ parked: Rows }), ...problemResponses },
      },
    },
    async (request) => ({ parked: await subscriptions(storeOf(request)).parked(request.params.name) }),
  );

  api.post(
    '/subscriptions/:name/parked/replay',
    {
      schema: {
        summary: 'Deliver a subscription’s parked events again, with the app’s handler',
        tags: ['operations'],
        params: Type.Object({ name: Name }),
        response: { 200: Type.Object({ replayed: Type.Integer(), failed: Type.Integer() }), ...problemResponses },
      },
    },
    async (request) => {
      const handler = app.subscriptions?.[request.params.name];
      if (!handler) {
        throw new HttpProblem(
          problem(
            404,
            'UNKNOWN_SUBSCRIPTION',
            `the app has no handler for subscription ${JSON.stringify(request.params.name)}`,
          ),
        );
      }
      return subscriptions(storeOf(request)).replayParked(request.params.name, handler);
    },
  );

  api.get(
    '/log/holders',
    {
      schema: {
        summary: 'Transactions holding the log lock now',
        tags: ['operations'],
        response: { 200: Type.Object({ holders: Rows }), ...problemResponses },
      },
    },
    async (request) => ({ holders: await storeOf(request).logHolders() }),
  );

  api.get(
    '/seals',
    {
      schema: {
        summary: 'How far sealing has come',
        tags: ['integrity'],
        response: {
          200: Type.Object({ sealedUpTo: Type.Integer(), head: Type.Integer(), unsealed: Type.Integer() }),
          ...problemResponses,
        },
      },
    },
    async (request) => integrity(storeOf(request)).status(),
  );

  api.post(
    '/verify',
    {
      schema: {
        summary: 'Verify every seal (or one stream’s) against the events as stored',
        tags: ['integrity'],
        body: Type.Optional(
          Type.Object(
            {
              streamId: Type.Optional(Name),
              anchor: Type.Optional(
                Type.Object(
                  { position: Position, hash: Type.String({ pattern: '^[0-9a-fA-F]{64}$' }) },
                  { additionalProperties: false },
                ),
              ),
            },
            { additionalProperties: false },
          ),
        ),
        response: { 200: Type.Record(Type.String(), Type.Unknown()), ...problemResponses },
      },
      // The body is optional: no body is `{}` (every seal), not a body that is not an object.
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request) => ({ ...(await integrity(storeOf(request)).verify(request.body ?? {})) }),
  );

  api.post(
    '/subjects/:subjectId/forget',
    {
      schema: {
        summary: 'Forget a data subject: its personal fields read as null from now on',
        tags: ['personal data'],
        params: Type.Object({ subjectId: Name }),
        body: Type.Object(
          {
            reason: Type.String({ minLength: 1, maxLength: 1000 }),
            actor: Type.Optional(Type.String({ maxLength: 256 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Record(Type.String(), Type.Unknown()), ...problemResponses },
      },
    },
    async (request) => {
      const actor = actorOf(request, request.body.actor);
      const change = actor === undefined ? request.body : { ...request.body, actor };
      return { ...(await personalData(storeOf(request)).forget(request.params.subjectId, change)) };
    },
  );
}
