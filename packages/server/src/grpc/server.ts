/**
 * The KurrentDB-protocol endpoint: a gRPC server (HTTP/2, plain or TLS) serving `Streams`,
 * `PersistentSubscriptions` and `ServerFeatures` over an Annals store, so the official
 * KurrentDB and EventStoreDB clients work against Annals unchanged
 * (docs/kurrent-protocol.md). Every other service answers UNIMPLEMENTED.
 */
import type { EventStore } from '@annals/core';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { Authenticator } from '../auth/authenticator.js';
import type { GrpcContext } from './context.js';
import { serverFeaturesService } from './features.js';
import { persistentSubscriptionsService } from './persistent/service.js';
import { pipelinedWrites } from './pipelined-writes.js';
import { protocol } from './protocol.js';
import { streamsService } from './streams-service.js';

/** Options of {@link startGrpcServer}. */
export interface GrpcServerOptions {
  /** The one store served (give this or `tenants`). */
  store?: EventStore;
  /**
   * With many tenants: the store of a tenant, or undefined when it has none here. A call
   * reaches its key's tenant's store only; needs an `authenticator`.
   */
  tenants?: (tenant: string) => Promise<EventStore | undefined>;
  /** Checks credentials (Basic with an API key as the password, or Bearer); absent: anonymous. */
  authenticator?: Authenticator;
  /** With `store`: the tenant whose keys are accepted. @defaultValue 'default' */
  tenant?: string;
  /** @defaultValue '127.0.0.1' */
  host?: string;
  /** 0 for any free port. */
  port: number;
  /** Serve TLS with this certificate chain and private key (PEM); absent: plain HTTP/2. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Most bytes of event data and metadata one append may carry. @defaultValue 16 MiB */
  maxAppendBytes?: number;
  /** Told of errors that are not the caller's (answered INTERNAL). @defaultValue console.error */
  onError?: (error: unknown) => void;
  /** How long `close` lets calls in flight finish before cutting them. @defaultValue 5000 */
  drainMs?: number;
}

/** A listening KurrentDB-protocol endpoint. */
export interface GrpcServer {
  /** The port it listens on. */
  port: number;
  /** The connection string a KurrentDB client takes, e.g. `kurrentdb://127.0.0.1:2113?tls=false`. */
  connectionString: string;
  /** Subscriptions being served now. */
  openSubscriptions(): number;
  /** Ends the subscriptions (UNAVAILABLE), lets other calls finish, stops listening. */
  close(): Promise<void>;
}

/** Starts the endpoint; resolves once it listens. */
export async function startGrpcServer(options: GrpcServerOptions): Promise<GrpcServer> {
  const { host = '127.0.0.1', tls, maxAppendBytes = 16 * 1024 * 1024, drainMs = 5000 } = options;
  const { store, tenants } = options;
  if ((store === undefined) === (tenants === undefined)) throw new Error('give the gRPC endpoint a store or tenants');
  if (tenants && !options.authenticator) throw new Error('a gRPC endpoint of many tenants needs an authenticator');
  const tenant = options.tenant ?? 'default';
  const context: GrpcContext = {
    storeFor: tenants
      ? async (principal) => (principal ? tenants(principal.tenant) : undefined)
      : async (principal) => (principal === undefined || principal.tenant === tenant ? store : undefined),
    authenticator: options.authenticator,
    subscriptions: new Map(),
    calls: 0,
    maxAppendBytes,
    onError: options.onError ?? ((error) => console.error('annals grpc:', error)),
  };
  const server = new Server({
    'grpc.max_receive_message_length': maxAppendBytes + 64 * 1024,
    // Clients ping every 10 s by default: accept it, idle or not, and ping back.
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 5000,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    interceptors: [pipelinedWrites()],
  });
  const { streams, serverFeatures, persistentSubscriptions } = protocol();
  const persistent = persistentSubscriptionsService(context);
  server.addService(streams.service, streamsService(context));
  server.addService(persistentSubscriptions.service, persistent.service);
  server.addService(serverFeatures.service, serverFeaturesService());
  const credentials = tls
    ? ServerCredentials.createSsl(
        null,
        [{ cert_chain: Buffer.from(tls.cert), private_key: Buffer.from(tls.key) }],
        false,
      )
    : ServerCredentials.createInsecure();
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${shownHost}:${options.port}`, credentials, (error, bound) =>
      error ? reject(error) : resolve(bound),
    );
  });
  return {
    port,
    connectionString: `kurrentdb://${shownHost}:${port}?tls=${tls ? 'true' : 'false'}`,
    openSubscriptions: () => context.subscriptions.size,
    async close() {
      for (const stop of [...context.subscriptions.values()]) stop();
      await persistent.close();
      // Clients keep their connections open when idle: once no call is left (or after
      // drainMs), the connections are closed rather than waited for.
      const until = Date.now() + drainMs;
      while (context.calls > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 10));
      server.forceShutdown();
    },
  };
}
