/**
 * The guard on every route: who is asking (onRequest, before the body is read), whether the
 * scope allows the route (403 otherwise, before anything is looked up, so a refusal never
 * says whether a stream exists), the per-key rate limit, and the category restrictions once
 * parameters are parsed (route-policy.ts). With authentication off every request is the
 * anonymous principal, with every scope, acting as whoever its body names.
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpProblem, problem } from '../problems.js';
import type { Api } from '../route-kit.js';
import type { Authenticator } from './authenticator.js';
import { AuthenticationError, type Principal, type Scope } from './principal.js';
import { type CategoryPolicy, categoryOf, publicRoutes, type RoutePolicy, routePolicies } from './route-policy.js';

/** Limits on what one principal may ask. */
export interface AbuseLimits {
  /** Requests per window per principal (`@fastify/rate-limit`); 0: none. @defaultValue 0 */
  rateLimit?: number;
  /** The window of `rateLimit`, in ms. @defaultValue 1000 */
  rateWindowMs?: number;
  /** Open SSE connections per principal (authenticated ones; 0: no cap). @defaultValue 100 */
  sseConnectionsPerKey?: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Who asks; set on every guarded route before its handler runs (not on public routes). */
    principal: Principal;
    /** When the principal was authenticated (ms): a revocation after it still reaches the request. */
    authenticatedAt: number;
  }
}

/** The principal of every request when authentication is off. */
export const anonymous: Principal = Object.freeze({
  kind: 'anonymous',
  id: 'anonymous',
  name: 'anonymous',
  tenant: 'default',
  scopes: new Set<Scope>(['read', 'append', 'subscribe', 'admin']),
  categories: null,
  actor: 'anonymous',
  actAs: true,
  expiresAt: null,
}) as Principal;

/** Whether `principal` has `scope` (admin has every scope). */
export const hasScope = (principal: Principal, scope: Scope) =>
  principal.scopes.has(scope) || principal.scopes.has('admin');

/** Whether `principal` may see stream `streamId`. */
export const mayTouch = (principal: Principal, streamId: string) =>
  principal.categories === null || principal.categories.includes(categoryOf(streamId));

function refuse(reply: FastifyReply, request: FastifyRequest, status: 401 | 403, code: string, detail: string): void {
  if (status === 401) reply.header('www-authenticate', 'Bearer realm="annals"');
  reply
    .code(status)
    .type('application/problem+json')
    .send({ ...problem(status, code, detail), instance: request.url.split('?')[0] });
}

const asList = (value: unknown): string[] =>
  value === undefined ? [] : Array.isArray(value) ? value.map(String) : [String(value)];

/** Why `principal` may not call a route of `policy` with these parameters; undefined: it may. */
function categoryRefusal(principal: Principal, policy: CategoryPolicy, request: FastifyRequest): string | undefined {
  const allowed = principal.categories;
  if (allowed === null || policy === 'none' || policy === 'results') return undefined;
  if (policy === 'unrestricted') return 'this key is restricted to some stream categories; this route is not';
  if (policy === 'stream') {
    const streamId = (request.params as { streamId?: string }).streamId ?? '';
    return mayTouch(principal, streamId) ? undefined : 'this key may not touch that stream';
  }
  if (policy === 'writes') {
    const writes = (request.body as { writes?: { streamId?: unknown }[] } | undefined)?.writes ?? [];
    return writes.every((w) => typeof w.streamId === 'string' && mayTouch(principal, w.streamId))
      ? undefined
      : 'this key may not touch one of those streams';
  }
  if (policy === 'category') {
    const query = request.query as { category?: string };
    if (query.category === undefined) {
      if (allowed.length !== 1) return 'this key may read several categories: name one (category=)';
      query.category = allowed[0];
    }
    return allowed.includes(query.category as string) ? undefined : 'this key may not read that category';
  }
  // query: the filters must stay inside the allowed categories; without one, read only them.
  const query = request.query as { category?: unknown; stream?: unknown };
  const categories = asList(query.category);
  if (categories.some((c) => !allowed.includes(c))) return 'this key may not read that category';
  if (asList(query.stream).some((s) => !mayTouch(principal, s))) return 'this key may not read that stream';
  if (categories.length === 0) query.category = [...allowed];
  return undefined;
}

/** Guards every route of `api` (register before the routes). */
export async function installGuard(api: Api, authenticator: Authenticator | undefined, limits: AbuseLimits = {}) {
  const policies = new Map<string, RoutePolicy | 'public'>();
  api.decorateRequest('principal', null as unknown as Principal);
  api.decorateRequest('authenticatedAt', 0);
  api.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      const key = `${method} ${route.url}`;
      const asGet = `GET ${route.url}`;
      if (publicRoutes.has(key) || (method === 'HEAD' && publicRoutes.has(asGet))) {
        policies.set(key, 'public');
        continue;
      }
      const policy = routePolicies[key] ?? (method === 'HEAD' ? routePolicies[asGet] : undefined);
      if (!policy) throw new Error(`route ${key} has no entry in route-policy.ts: say who may call it`);
      policies.set(key, policy);
    }
  });
  const policyOf = (request: FastifyRequest) => policies.get(`${request.method} ${request.routeOptions.url}`);

  // Callback-style: with authentication off, or a cached key, a request costs no extra promise.
  api.addHook('onRequest', (request, reply, done) => {
    const policy = policyOf(request);
    if (policy === 'public' || request.routeOptions.url === undefined) return done();
    // A route registered before the guard saw it has no policy: refused, never served open.
    if (policy === undefined) return refuse(reply, request, 403, 'FORBIDDEN', 'this route has no access policy');
    if (!authenticator) {
      request.principal = anonymous;
      return done();
    }
    const header = request.headers.authorization;
    const credential = Array.isArray(header) ? header[0] : header;
    request.authenticatedAt = Date.now();
    const admit = (principal: Principal) => {
      if (!hasScope(principal, policy.scope)) {
        refuse(reply, request, 403, 'FORBIDDEN', `this key lacks the "${policy.scope}" scope`);
        return;
      }
      request.principal = principal;
      done();
    };
    const cached = authenticator.cached(credential);
    if (cached) return admit(cached);
    authenticator.authenticate(credential).then(admit, (error: unknown) => {
      if (error instanceof AuthenticationError) {
        refuse(reply, request, 401, 'UNAUTHENTICATED', error.message);
        return;
      }
      done(error as Error);
    });
  });

  if (limits.rateLimit) {
    await api.register(rateLimit, {
      global: true,
      max: limits.rateLimit,
      timeWindow: limits.rateWindowMs ?? 1000,
      hook: 'preHandler',
      // Public routes (no principal) are on the allow list, which the plugin asks after the key.
      keyGenerator: (request) => request.principal?.id ?? request.ip,
      allowList: (request) => {
        const policy = policyOf(request);
        return policy === undefined || policy === 'public';
      },
      // Thrown, and answered by the error handler as a problem; the plugin set Retry-After.
      errorResponseBuilder: (_request, context) =>
        new HttpProblem(
          problem(429, 'RATE_LIMITED', `more than ${context.max} requests in ${context.after}; retry later`),
        ),
    });
  }

  api.addHook('preHandler', (request, reply, done) => {
    const policy = policyOf(request);
    if (policy === undefined || policy === 'public') return done();
    const refusal = categoryRefusal(request.principal, policy.categories, request);
    if (refusal) {
      refuse(reply, request, 403, 'FORBIDDEN', refusal);
      return;
    }
    done();
  });
}
