/**
 * Starting a whole server from a database client: the store (with the server's metrics hooks
 * and the app's personal-data policy and inline projections), the runners the process should
 * run, the HTTP server listening, and a `close` that drains it in order.
 */
import {
  type AppendCoordinatorOptions,
  type EventStore,
  getTenant,
  integrity,
  openEventStore,
  type ProjectionRunner,
  projections,
  type Sealer,
  type SqlClient,
  type StoreOptions,
  schemaStatus,
  type TenancyOptions,
  type TenantClients,
} from '@annals/core';
import type { AnnalsApp } from './app-module.js';
import { setupApiKeys } from './auth/api-keys.js';
import { Authenticator } from './auth/authenticator.js';
import { createJwtVerifier, type JwtOptions } from './auth/jwt.js';
import { keysTableExists } from './auth/key-queries.js';
import { type GrpcServer, type GrpcServerOptions, startGrpcServer } from './grpc/server.js';
import { createMetrics } from './metrics.js';
import { type AnnalsServer, createServer, type ServerOptions } from './server.js';

/** Options of {@link startServer}. */
export interface StartServerOptions
  extends Omit<
    ServerOptions,
    'store' | 'metrics' | 'poolStats' | 'runnersHealthy' | 'schemaStatus' | 'auth' | 'tenants'
  > {
  /** The store's database; with `tenants`, their `control` client. */
  client: SqlClient;
  /**
   * Authentication: API keys (from the directory's `api_keys`, read through `client`) and,
   * with `jwt`, bearer tokens. Absent: off, every request anonymous with every scope.
   */
  auth?: { directory?: string; jwt?: JwtOptions; cacheMs?: number };
  /** Serve many tenants: each principal reaches its tenant's store, opened under its tenant's role. */
  tenants?: { clients: TenantClients; options?: TenancyOptions };
  /** Store options (schema, limits...), and whether closing the server closes `client`. */
  store?: Partial<StoreOptions> & { closeClient?: boolean };
  app?: AnnalsApp;
  /** @defaultValue '127.0.0.1' */
  host?: string;
  /** 0 for any free port. @defaultValue 3000 */
  port?: number;
  /** Run the app's projections in this process (one active runner across processes). */
  runProjections?: boolean;
  /** Run a sealer in this process. */
  runSealer?: boolean;
  /**
   * Also speak the KurrentDB gRPC protocol on this port (docs/kurrent-protocol.md), over the
   * same store and auth; `tls` takes a PEM certificate chain and key. Not with `tenants`.
   */
  grpc?: Pick<GrpcServerOptions, 'port' | 'host' | 'tls' | 'maxAppendBytes'>;
  /**
   * Take part in the store's append coordinator (docs/ordering.md): several servers on one
   * database hand their appends to whichever holds the role, so they share commits. `true`
   * for its defaults. Not with `tenants` (their appends share commits through group commit).
   */
  appendCoordinator?: AppendCoordinatorOptions | true;
}

/** A listening server. */
export interface RunningServer extends AnnalsServer {
  /** `http://host:port` it listens on. */
  url: string;
  /** The KurrentDB-protocol endpoint, when `grpc` was given. */
  grpc?: GrpcServer;
  /**
   * Drains: no new requests, requests in flight finish, SSE clients get a retry hint, the
   * runners stop, the store closes (waiting for appends in flight).
   */
  close(): Promise<void>;
}

const withoutUndefined = <T extends object>(value: T): Partial<T> =>
  Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;

export async function startServer(options: StartServerOptions): Promise<RunningServer> {
  const { client, app = {}, host = '127.0.0.1', port = 3000, runProjections = false, runSealer = false } = options;
  const metrics = createMetrics();
  const auth = options.auth ? await startAuthenticator(client, options.auth) : undefined;
  if (options.tenants) {
    if (options.appendCoordinator) {
      await auth?.close();
      throw new Error('the append coordinator serves one store; tenants share commits through group commit');
    }
    if (options.grpc && !auth) throw new Error('the KurrentDB protocol with tenants needs auth');
    if (runProjections || runSealer) {
      await auth?.close();
      throw new Error('with tenants, run projections and sealers beside the server, one store each');
    }
    return startTenantServer(options, metrics, auth);
  }
  const store = await openEventStore({
    // HTTP appends arrive spread over many turns of the event loop, not woken together as
    // in-process callers are: one call in flight lets the next batch fill up meanwhile
    // (about 30 appends a call instead of 20 at 64 clients, and 1.4x the throughput; see
    // docs/server.md).
    appendConcurrency: 1,
    ...withoutUndefined(options.store ?? {}),
    ...(options.appendCoordinator
      ? { appendCoordinator: options.appendCoordinator === true ? {} : options.appendCoordinator }
      : {}),
    client,
    instrumentation: metrics.instrumentation,
    personalData: app.personalData,
    inlineProjections: app.inlineProjections,
  }).catch(async (error: unknown) => {
    await auth?.close();
    throw error;
  });
  const runners: ProjectionRunner[] = runProjections
    ? (app.projections ?? []).map((p) => projections(store).run(p))
    : [];
  const sealer: Sealer | undefined = runSealer ? integrity(store).runSealer() : undefined;
  let server: AnnalsServer;
  try {
    server = await createServer({
      ...options,
      tenants: undefined,
      auth,
      keys: options.auth ? { client, directory: options.auth.directory } : undefined,
      store,
      app,
      metrics,
      poolStats: () => client.poolStats?.(),
      schemaStatus: () => schemaStatus(client, store.options.schema),
      runnersHealthy: async () => {
        const detail: string[] = [];
        let ok = true;
        for (const runner of runners) {
          const status = await runner.status();
          if (status.state === 'faulted') ok = false;
          detail.push(`projection ${status.name} v${status.version}: ${status.state}, lag ${status.lag}`);
        }
        if (sealer) {
          const status = await sealer.status();
          if (status.state === 'blocked') ok = false;
          detail.push(`sealer: ${status.state}, ${status.unsealed} unsealed`);
        }
        return { ok, detail };
      },
    });
    await server.api.listen({ host, port });
  } catch (error) {
    await store.close();
    await auth?.close();
    throw error;
  }
  return withGrpc(
    running(server, host, port, async () => {
      await store.close();
      await auth?.close();
    }),
    options,
    host,
    { store, tenant: options.tenant ?? 'default', authenticator: auth },
  );
}

function running(server: AnnalsServer, host: string, port: number, after: () => Promise<void>): RunningServer {
  const address = server.api.server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    ...server,
    url: `http://${shownHost}:${bound}`,
    async close() {
      await server.close();
      await after();
    },
  };
}

/** Keys need their table: made here when missing (if this role may), else a clear error. */
async function startAuthenticator(client: SqlClient, auth: NonNullable<StartServerOptions['auth']>) {
  const directory = auth.directory ?? 'annals_control';
  if (!(await keysTableExists(client, directory))) {
    await setupApiKeys(client, { directory, serverRoles: [] }).catch((error: unknown) => {
      throw new Error(
        `there is no API key table (${directory}.api_keys) and this role may not create it: run \`annals keys create\` as the owner first (${error instanceof Error ? error.message : String(error)})`,
      );
    });
  }
  const authenticator = new Authenticator({
    keys: { client, directory },
    verifyToken: auth.jwt ? await createJwtVerifier(auth.jwt) : undefined,
    cacheMs: auth.cacheMs,
  });
  await authenticator.start();
  return authenticator;
}

/**
 * A server of many tenants: a tenant's store is opened on its first request, on the tenant's
 * client (its own role), without migrating (`annals tenants migrate` does, as the owner).
 */
async function startTenantServer(
  options: StartServerOptions,
  metrics: ReturnType<typeof createMetrics>,
  auth: Authenticator | undefined,
): Promise<RunningServer> {
  const { app = {}, host = '127.0.0.1', port = 3000 } = options;
  const { clients, options: tenancy } = options.tenants as NonNullable<StartServerOptions['tenants']>;
  const stores: EventStore[] = [];
  const server = await createServer({
    ...options,
    store: undefined,
    auth,
    keys: options.auth ? { client: options.client, directory: options.auth.directory } : undefined,
    app,
    metrics,
    poolStats: () => options.client.poolStats?.(),
    tenants: async (id) => {
      const tenant = await getTenant(clients.control, id, tenancy);
      if (!tenant) return undefined;
      const store = await openEventStore({
        appendConcurrency: 1,
        ...withoutUndefined(options.store ?? {}),
        client: clients.forTenant(tenant),
        schema: tenant.schema,
        migrate: false,
        instrumentation: metrics.instrumentation,
        personalData: app.personalData,
        inlineProjections: app.inlineProjections,
      });
      stores.push(store);
      return store;
    },
  });
  const closeStores = async () => {
    await Promise.all(stores.map((store) => store.close()));
    await auth?.close();
  };
  try {
    await server.api.listen({ host, port });
  } catch (error) {
    await auth?.close();
    throw error;
  }
  return withGrpc(running(server, host, port, closeStores), options, host, {
    // The same store, opened once, as the tenant's HTTP requests reach.
    tenants: async (tenant) => (await server.scopes.get(tenant))?.store,
    authenticator: auth,
  });
}

/**
 * `started` with its KurrentDB-protocol endpoint when `options.grpc` asks for one, closed first
 * (its subscriptions read the stores); if the endpoint cannot start, `started` is closed too.
 */
async function withGrpc(
  started: RunningServer,
  options: StartServerOptions,
  host: string,
  stores: Pick<GrpcServerOptions, 'store' | 'tenants' | 'tenant' | 'authenticator'>,
): Promise<RunningServer> {
  if (!options.grpc) return started;
  let grpc: GrpcServer;
  try {
    grpc = await startGrpcServer({ ...options.grpc, host: options.grpc.host ?? host, ...stores });
  } catch (error) {
    await started.close();
    throw error;
  }
  return {
    ...started,
    grpc,
    async close() {
      await grpc.close();
      await started.close();
    },
  };
}
