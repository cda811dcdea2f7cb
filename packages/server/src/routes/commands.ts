/**
 * Commands to the app's deciders: load, decide, append with the expected version, retry on
 * conflict (the command handler of @annals/core). A command id makes handling exactly-once:
 * the same id again answers the first result with `duplicate: true`. A business rule that
 * refuses the command answers 422 with its `reason`.
 */
import { type Command, type CommandContext, type CommandHandler, commandHandler, type DomainEvent } from '@annals/core';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { HttpProblem, problem } from '../problems.js';
import { type Api, actorOf, type ServerContext, traceparentOf } from '../route-kit.js';
import { Name, problemResponses, RecordedEvent } from '../schemas.js';

const CommandBody = Type.Object(
  {
    type: Type.String({ minLength: 1, maxLength: 256 }),
    data: Type.Unknown(),
    id: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'Makes handling exactly-once.' })),
    context: Type.Optional(
      Type.Object(
        {
          actor: Type.Optional(Type.String()),
          reason: Type.Optional(Type.String()),
          correlationId: Type.Optional(Type.String()),
          causationId: Type.Optional(Type.String()),
          metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export function commandRoutes(api: Api, server: ServerContext): void {
  const { app } = server;
  /** The tenant's handler of decider `name`, made on its first command. */
  const handlerOf = (request: FastifyRequest, name: string): CommandHandler<Command, DomainEvent, unknown> => {
    const entry = app.deciders?.[name];
    if (!entry) {
      throw new HttpProblem(
        problem(404, 'UNKNOWN_DECIDER', `the app has no decider ${JSON.stringify(name)}`, { field: 'decider' }),
      );
    }
    const scope = server.scopeOf(request);
    return scope.memo(`decider:${name}`, () =>
      commandHandler(scope.store, entry.decider, {
        name,
        events: entry.events,
        snapshots: entry.snapshots,
        maxRetries: entry.maxRetries,
      }),
    );
  };

  api.post(
    '/commands/:decider/:streamId',
    {
      schema: {
        summary: 'Handle a command on a stream',
        tags: ['commands'],
        params: Type.Object({ decider: Name, streamId: Name }),
        body: CommandBody,
        response: {
          200: Type.Object({
            streamId: Type.String(),
            streamVersion: Type.Integer(),
            duplicate: Type.Boolean(),
            state: Type.Unknown(),
            events: Type.Array(RecordedEvent),
          }),
          ...problemResponses,
        },
      },
    },
    async (request) => {
      const { type, data, id, context = {} } = request.body;
      const traceparent = traceparentOf(request);
      const full: CommandContext = {
        ...context,
        actor: actorOf(request, context.actor),
        metadata: traceparent ? { traceparent, ...(context.metadata ?? {}) } : context.metadata,
      } as CommandContext;
      return handlerOf(request, request.params.decider).handle(request.params.streamId, { type, data, id }, full);
    },
  );
}
