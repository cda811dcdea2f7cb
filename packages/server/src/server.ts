/**
 * The server: a Fastify app over one event store. One plugin-like module per concern
 * (routes/), TypeBox schemas on every route (they validate, type the handlers and make the
 * OpenAPI document), one error handler that turns every error into a problem response
 * (problems.ts), metrics on every request (metrics.ts), and the live hub for SSE.
 */

import type { EventStore, PoolStats, SchemaStatus, SqlClient } from '@annals/core';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyReply, type FastifyServerOptions } from 'fastify';
import { Type } from 'typebox';
import type { AnnalsApp } from './app-module.js';
import type { Authenticator } from './auth/authenticator.js';
import { type AbuseLimits, installGuard } from './auth/guard.js';
import type { LiveHub, LiveHubOptions } from './live-hub.js';
import { createMetrics, type ServerMetrics } from './metrics.js';
import { problem, problemOf } from './problems.js';
import { type ReplicaReadOptions, ReplicaReads } from './replica-reads.js';
import type { Api, ServerContext } from './route-kit.js';
import { commandRoutes } from './routes/commands.js';
import { historyRoutes } from './routes/history.js';
import { keyRoutes } from './routes/keys.js';
import { lifecycleRoutes } from './routes/lifecycle.js';
import { liveRoutes } from './routes/live.js';
import { operationRoutes } from './routes/operations.js';
import { rebuildRoutes } from './routes/rebuild.js';
import { streamRoutes } from './routes/streams.js';
import { type OpenTenantStore, TenantScopes } from './tenant-scopes.js';
import { webUiRoutes } from './web-ui.js';

/** Options of {@link createServer}. */
export interface ServerOptions {
  /** The store served (tenant {@link ServerOptions.tenant}); or, with tenants, `tenants`. */
  store?: EventStore;
  /** The tenant `store` belongs to: keys of other tenants are refused. @defaultValue `'default'` */
  tenant?: string;
  /** With tenants: opens the store of a principal's tenant (see `openTenantStores`). */
  tenants?: OpenTenantStore;
  /** Authentication; without it every request is anonymous, with every scope. */
  auth?: Authenticator;
  /** Where API keys are, for the `/keys` routes (served with `auth` only). */
  keys?: { client: SqlClient; directory?: string };
  /** Rate limits and connection caps per principal. */
  limits?: AbuseLimits;
  /** The application module: deciders, projections, subscription handlers. */
  app?: AnnalsApp;
  /** Metrics to report to; pass the same object's `instrumentation` to `openEventStore`. */
  metrics?: ServerMetrics;
  /** The database pool's use, for metrics. */
  poolStats?: () => PoolStats | undefined;
  /** Largest request body, in bytes. @defaultValue 4 MiB */
  bodyLimit?: number;
  /** Fastify's (pino) logger options, or false. @defaultValue false */
  logger?: FastifyServerOptions['logger'];
  live?: LiveHubOptions;
  /** Whether the runners this process started are healthy (readiness). */
  runnersHealthy?: () => Promise<{ ok: boolean; detail: string[] }>;
  /** Where the store's schema stands (readiness): `schemaStatus(client, schema)` of `@annals/core`. */
  schemaStatus?: () => Promise<SchemaStatus>;
  /**
   * Serve reads (of streams, the log, audit and time travel, and the SSE fan-out) from a
   * streaming replica of `store`'s database; appends and everything else go to `store`.
   * See `replica-reads.ts`. Only with `store`, not with `tenants`.
   */
  readReplica?: ReplicaReadOptions;
}

/** A server, built and not yet listening. */
export interface AnnalsServer {
  /** The Fastify instance: `listen`, `inject`, `close`. */
  api: Api;
  /** The live hub of the single store (undefined with tenants: each has its own). */
  hub: LiveHub;
  /** Every tenant's parts opened so far. */
  scopes: TenantScopes;
  metrics: ServerMetrics;
  /** Stops taking requests, ends SSE clients with a retry hint, lets requests in flight finish. */
  close(): Promise<void>;
}

/** Builds the server on `options.store`; call `api.listen({ host, port })` to serve. */
export async function createServer(options: ServerOptions): Promise<AnnalsServer> {
  const { store, app = {}, metrics = createMetrics() } = options;
  const userOnPublish = options.live?.onPublish;
  if (options.readReplica && !store)
    throw new Error('createServer serves reads from a replica of a store, not of tenants');
  const replicaReads = new ReplicaReads(options.readReplica);
  const hubOptions: LiveHubOptions = {
    ...options.live,
    ...(replicaReads.replica ? { readFrom: replicaReads.replica } : {}),
    onPublish: (page) => {
      metrics.published(page);
      userOnPublish?.(page);
    },
  };
  if (!store === !options.tenants) throw new Error('createServer needs either a store or tenants, not both');
  const scopes = store
    ? TenantScopes.single(options.tenant ?? 'default', store, hubOptions)
    : new TenantScopes(options.tenants as OpenTenantStore, hubOptions);
  const single = store ? await scopes.get(options.tenant ?? 'default') : undefined;
  const api = Fastify({
    logger: options.logger ?? false,
    bodyLimit: options.bodyLimit ?? 4 * 1024 * 1024,
    // Unknown fields are refused, not silently dropped; query strings are coerced.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
    // Requests that reach a route while draining (on a connection still open: a narrow window
    // before Node closes idle connections) are refused by the onRequest hook below, as problems.
    return503OnClosing: false,
    // Path parameters as long as a Name may be; the schema and the store check them.
    routerOptions: { maxParamLength: 1000 },
    // Errors Fastify answers before any route (a bad %-encoding, an over-long parameter) and
    // requests Node cannot parse (headers too large) are problems too.
    frameworkErrors: (error, request, reply) => {
      const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
      const body = tooLong
        ? problem(414, 'URI_TOO_LONG', 'a path parameter is longer than 1000 characters', { field: 'params' })
        : problem(400, 'INVALID_INPUT', 'the path is not a valid URL (bad %-encoding)', { field: 'url' });
      return (reply as FastifyReply)
        .code(body.status)
        .type('application/problem+json')
        .send({ ...body, instance: request.url });
    },
    clientErrorHandler: (error: NodeJS.ErrnoException, socket) => {
      if (error.code === 'ECONNRESET' || socket.destroyed) return;
      const body =
        error.code === 'HPE_HEADER_OVERFLOW'
          ? problem(431, 'HEADERS_TOO_LARGE', 'the request headers are larger than the server accepts')
          : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? problem(408, 'REQUEST_TIMEOUT', 'the request did not arrive in time')
            : problem(400, 'MALFORMED_REQUEST', 'the request is not valid HTTP');
      const text = JSON.stringify(body);
      if (socket.writable) {
        socket.write(
          `HTTP/1.1 ${body.status} ${body.title}\r\nConnection: close\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
        );
      }
      socket.destroy(error);
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Bodies are JSON only: anything else is 415, not a string that fails validation.
  api.removeContentTypeParser('text/plain');

  await api.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Annals',
        version: '0.1.0',
        description: 'Event sourcing on PostgreSQL: append, read, follow live, audit and travel in time.',
      },
    },
  });

  // Patterns of every route by method, to tell a wrong method (405) from an unknown path (404).
  const routes: { pattern: RegExp; methods: Set<string> }[] = [];
  api.addHook('onRoute', (route) => {
    const source = `^${route.url.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z]+/g, '[^/]+')}/?$`;
    let entry = routes.find((r) => r.pattern.source === source);
    if (!entry) {
      entry = { pattern: new RegExp(source), methods: new Set() };
      routes.push(entry);
    }
    for (const method of [route.method].flat()) entry.methods.add(method);
  });

  api.setErrorHandler((error, request, reply) => {
    const body = problemOf(error);
    if (body.status >= 500) request.log.error({ err: error }, 'request failed');
    if (body.status === 503) reply.header('retry-after', '1');
    return reply
      .code(body.status)
      .type('application/problem+json')
      .send({ ...body, instance: request.url });
  });

  api.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    const allowed = routes.filter((r) => r.pattern.test(path)).flatMap((r) => [...r.methods]);
    if (allowed.length > 0) {
      return reply
        .code(405)
        .header('allow', [...new Set(allowed)].join(', '))
        .type('application/problem+json')
        .send(problem(405, 'METHOD_NOT_ALLOWED', `${request.method} is not allowed here; use ${allowed.join(', ')}`));
    }
    return reply
      .code(404)
      .type('application/problem+json')
      .send(problem(404, 'NOT_FOUND', `no route ${path}`));
  });

  // Draining first: a request that comes in while the server shuts down is refused before
  // any authentication or database work.
  let draining = false;
  api.addHook('onRequest', (request, reply, done) => {
    if (!draining) return done();
    reply
      .code(503)
      .header('retry-after', '1')
      .header('connection', 'close')
      .type('application/problem+json')
      .send({
        ...problem(503, 'DRAINING', 'the server is shutting down; retry (another instance, or this one once back)'),
        instance: request.url,
      });
  });
  await installGuard(api, options.auth, options.limits);
  // Then the tenant's store: the principal's, never one a request names.
  api.decorateRequest('scope', null);
  api.addHook('preHandler', (request, reply, done) => {
    // Public routes (health, metrics, the UI's files) have no principal, and reach no store.
    if (!request.principal) return done();
    if (single && request.principal.tenant === single.tenant) {
      request.scope = single;
      return done();
    }
    scopes.get(request.principal.tenant).then((scope) => {
      if (!scope) {
        reply
          .code(401)
          .header('www-authenticate', 'Bearer realm="annals"')
          .type('application/problem+json')
          .send({
            ...problem(401, 'UNAUTHENTICATED', 'the key is not valid here'),
            instance: request.url.split('?')[0],
          });
        return;
      }
      request.scope = scope;
      done();
    }, done);
  });

  // Hooks on every request are callback-style: an async hook costs a promise per request.
  api.addHook('onResponse', (request, reply, done) => {
    metrics.request(
      request.routeOptions.url ?? 'unmatched',
      request.method,
      reply.statusCode,
      reply.elapsedTime / 1000,
    );
    done();
  });

  const context: ServerContext = {
    app,
    auth: options.auth,
    limits: options.limits ?? {},
    scopeOf(request) {
      const scope = request.scope;
      if (!scope) throw new Error(`no tenant scope for ${request.method} ${request.routeOptions.url}`);
      return scope;
    },
    readerOf(request, reply) {
      return replicaReads.readerOf(request, reply, context.scopeOf(request).store);
    },
    runnersHealthy: options.runnersHealthy ?? (async () => ({ ok: true, detail: [] })),
  };
  metrics.attach({
    store,
    sseClients: () => scopes.opened.reduce((sum, scope) => sum + scope.hub.clients, 0),
    poolStats: options.poolStats ?? (() => undefined),
  });

  streamRoutes(api, context);
  lifecycleRoutes(api, context);
  liveRoutes(api, context);
  historyRoutes(api, context);
  commandRoutes(api, context);
  operationRoutes(api, context);
  rebuildRoutes(api, context);
  if (options.auth && options.keys) keyRoutes(api, options.keys, options.auth);
  systemRoutes(api, context, metrics, options.schemaStatus, single?.store);
  webUiRoutes(api);

  // Before Fastify waits for open connections: SSE clients would hold it forever.
  // Draining: requests in flight finish, and their connections close after the response
  // (a kept-alive idle connection would hold the close until its keep-alive timeout); SSE
  // clients are ended with their retry hint before Fastify waits for connections.
  api.addHook('onSend', (_request, reply, payload, done) => {
    if (draining) reply.header('connection', 'close');
    done(null, payload);
  });
  api.addHook('preClose', async () => {
    draining = true;
    await scopes.close();
  });

  return { api, hub: single?.hub as LiveHub, scopes, metrics, close: () => api.close() };
}

function systemRoutes(
  api: Api,
  context: ServerContext,
  metrics: ServerMetrics,
  schemaStatus: (() => Promise<SchemaStatus>) | undefined,
  store: EventStore | undefined,
): void {
  const Health = Type.Object({ status: Type.String(), checks: Type.Optional(Type.Array(Type.String())) });
  api.get(
    '/health/live',
    { schema: { summary: 'The process is up', tags: ['system'], response: { 200: Health } } },
    async () => ({ status: 'ok' }),
  );
  api.get(
    '/health/ready',
    {
      schema: {
        summary: 'Ready to serve: database reachable, schema current, runners healthy',
        tags: ['system'],
        response: { 200: Health, 503: Health },
      },
    },
    async (_request, reply) => {
      const checks: string[] = [];
      let ok = true;
      try {
        if (store) checks.push(`database: ok (head ${await store.headPosition()})`);
        if (schemaStatus) {
          const schema = await schemaStatus();
          // An outdated schema cannot serve this version; a newer one was migrated by a newer
          // version of Annals, whose changes this one may not know how to keep.
          ok &&= schema.state === 'current';
          checks.push(`schema ${schema.schema}: ${schema.state} (migration ${schema.current} of ${schema.latest})`);
        }
      } catch (error) {
        ok = false;
        checks.push(`database: ${error instanceof Error ? error.message : String(error)}`);
      }
      const runners = await context.runnersHealthy();
      ok &&= runners.ok;
      checks.push(...runners.detail);
      return reply.code(ok ? 200 : 503).send({ status: ok ? 'ok' : 'unavailable', checks });
    },
  );
  api.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics',
        tags: ['system'],
        response: {
          200: { description: 'The Prometheus text format', content: { 'text/plain': { schema: Type.String() } } },
        },
      },
    },
    async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
  api.get('/openapi.json', { schema: { hide: true } }, async () => api.swagger());
}
