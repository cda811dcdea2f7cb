/**
 * `@annals/server`: an HTTP API over an Annals event store — append, read, follow live over
 * Server-Sent Events, audit, time travel, commands, operations — with OpenAPI, health and
 * Prometheus metrics. Built on `@annals/core`'s public API only.
 */
export { type AnnalsApp, type AppDecider, checkApp, loadApp } from './app-module.js';
export {
  type ApiKey,
  createApiKey,
  type KeyStoreOptions,
  listApiKeys,
  type NewApiKey,
  revokeApiKey,
  setupApiKeys,
} from './auth/api-keys.js';
export { Authenticator, type AuthenticatorOptions } from './auth/authenticator.js';
export type { AbuseLimits } from './auth/guard.js';
export { createJwtVerifier, type JwtOptions } from './auth/jwt.js';
export { AuthenticationError, type Principal, type Scope, scopes } from './auth/principal.js';
export { type GrpcServer, type GrpcServerOptions, startGrpcServer } from './grpc/server.js';
export { type LiveFilter, LiveHub, type LiveHubOptions, type LiveSink } from './live-hub.js';
export { createMetrics, type ServerMetrics } from './metrics.js';
export { type Problem, problemOf, statusOfCode } from './problems.js';
export { minPositionHeader, type ReplicaReadOptions } from './replica-reads.js';
export { type AnnalsServer, createServer, type ServerOptions } from './server.js';
export { type RunningServer, type StartServerOptions, startServer } from './start-server.js';
export type { OpenTenantStore, TenantScope, TenantScopes } from './tenant-scopes.js';
