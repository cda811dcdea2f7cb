/**
 * The app's projections and their rebuilds: `GET /projections` lists the app's projections
 * with the state of their last rebuild, `POST /projections/<name>/rebuild` starts one in the
 * background (one at a time per projection), `GET /projections/<name>/rebuild` follows it.
 */
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { HttpProblem, problem } from '../problems.js';
import type { Api, ServerContext } from '../route-kit.js';
import { ProjectionName, problemResponses, RebuildProgress } from '../schemas.js';
import { RebuildJobs } from './rebuild-jobs.js';

const RebuildOptions = Type.Object(
  {
    batchSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, description: 'Events per transaction' })),
    maxFailures: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 100, description: 'Consecutive failed batches before it fails' }),
    ),
  },
  { additionalProperties: false },
);

export function rebuildRoutes(api: Api, context: ServerContext): void {
  const { app } = context;
  const jobsOf = (request: FastifyRequest) => {
    const scope = context.scopeOf(request);
    return scope.memo('rebuilds', () => new RebuildJobs(scope.store));
  };
  const projectionNamed = (name: string) => {
    const projection = app.projections?.find((p) => p.name === name);
    if (!projection) {
      throw new HttpProblem(
        problem(404, 'UNKNOWN_PROJECTION', `the app has no projection ${JSON.stringify(name)}`, { field: 'name' }),
      );
    }
    return projection;
  };
  const params = Type.Object({ name: ProjectionName });

  api.get(
    '/projections',
    {
      schema: {
        summary: 'The app’s projections, each with its last rebuild',
        tags: ['operations'],
        response: { 200: Type.Object({ projections: Type.Array(RebuildProgress) }), ...problemResponses },
      },
    },
    async (request) => {
      const jobs = jobsOf(request);
      return { projections: (app.projections ?? []).map((projection) => jobs.progress(projection)) };
    },
  );

  api.post(
    '/projections/:name/rebuild',
    {
      schema: {
        summary: 'Start rebuilding an app’s projection up to the head, in the background',
        description:
          'Brings the read model from its checkpoint to the head of the log as it is now; a new `version` of the projection starts from the beginning of the log. 409 while one is running.',
        tags: ['operations'],
        params,
        body: Type.Optional(RebuildOptions),
        response: { 202: RebuildProgress, ...problemResponses },
      },
      // No body is the defaults.
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request, reply) => {
      const projection = projectionNamed(request.params.name);
      const progress = await jobsOf(request).start(projection, request.body ?? {});
      return reply.code(202).send(progress);
    },
  );

  api.get(
    '/projections/:name/rebuild',
    {
      schema: {
        summary: 'How far the last rebuild of an app’s projection has come',
        tags: ['operations'],
        params,
        response: { 200: RebuildProgress, ...problemResponses },
      },
    },
    async (request) => jobsOf(request).progress(projectionNamed(request.params.name)),
  );
}
