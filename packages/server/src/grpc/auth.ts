/**
 * Credentials of a gRPC call, mapped onto Annals' principals: KurrentDB clients send
 * `authorization: Basic base64(username:password)` (over TLS only); the password is a whole
 * Annals API key (`ank_<id>_<secret>`) and the username is not checked. A `Bearer` key or
 * token is taken as the HTTP API takes it. Without an authenticator every call is anonymous
 * with every scope.
 */
import type { EventStore } from '@annals/core';
import type { Metadata } from '@grpc/grpc-js';
import type { Authenticator } from '../auth/authenticator.js';
import type { Principal, Scope } from '../auth/principal.js';
import { categoryOf } from '../auth/route-policy.js';
import type { GrpcContext } from './context.js';
import { accessDenied, unauthenticated } from './errors.js';

/** The `Bearer` header the authenticator reads, from a call's `authorization`. */
function bearerOf(metadata: Metadata): string | undefined {
  const [value] = metadata.get('authorization');
  if (typeof value !== 'string' || value === '') return undefined;
  const basic = /^Basic +([A-Za-z0-9+/=]{1,12000})$/i.exec(value.trim());
  if (!basic) return value;
  const decoded = Buffer.from(basic[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : `Bearer ${decoded.slice(colon + 1)}`;
}

/** Who a call is: undefined when auth is off (anonymous, unrestricted). */
async function principalOf(authenticator: Authenticator | undefined, metadata: Metadata) {
  if (!authenticator) return undefined;
  const header = bearerOf(metadata);
  if (header === undefined) throw unauthenticated('credentials are missing');
  return authenticator.cached(header) ?? (await authenticator.authenticate(header));
}

/** Who a call is and the store it reaches. */
export interface Caller {
  principal: Principal | undefined;
  store: EventStore;
}

/**
 * Who a call is, and its tenant's store. A key of a tenant without a store here (another
 * tenant of a single-store server, a tenant that does not exist) is refused as a wrong key is:
 * the answer does not tell whether the tenant exists.
 */
export async function callerOf(context: GrpcContext, metadata: Metadata): Promise<Caller> {
  const principal = await principalOf(context.authenticator, metadata);
  const store = await context.storeFor(principal);
  if (!store) throw unauthenticated(principal ? 'the key is not valid here' : 'credentials are missing');
  return { principal, store };
}

/** Refuses a principal without `scope` (admin holds every scope). */
export function requireScope(principal: Principal | undefined, scope: Scope): void {
  if (!principal || principal.scopes.has('admin') || principal.scopes.has(scope)) return;
  throw accessDenied(`the key lacks the ${scope} scope`);
}

/** Refuses a principal restricted to categories that do not hold `stream`. */
export function requireStream(principal: Principal | undefined, stream: string): void {
  if (!principal?.categories || principal.categories.includes(categoryOf(stream))) return;
  throw accessDenied(`the key may not touch stream ${JSON.stringify(stream)}`);
}

/** The actor stamped on events a principal appends (unless it may act as the one it names). */
export function actorFor(principal: Principal | undefined, named: unknown): string | undefined {
  if (!principal) return undefined;
  if (principal.actAs && typeof named === 'string') return named;
  return principal.kind === 'anonymous' ? undefined : principal.actor;
}
