/**
 * Starting a whole server from a database client: the store (with the server's metrics hooks
 * and the app's personal-data policy and inline projections), the runners the process should
 * run, the HTTP server listening, and a `close` that drains it in order.
 */
import {
  integrity,
  openEventStore,
  type ProjectionRunner,
  projections,
  type Sealer,
  type SqlClient,
  type StoreOptions,
  schemaStatus,
} from '@annals/core';
import type { AnnalsApp } from './app-module.js';
import { createMetrics } from './metrics.js';
import { type AnnalsServer, createServer, type ServerOptions } from './server.js';

/** Options of {@link startServer}. */
export interface StartServerOptions
  extends Omit<ServerOptions, 'store' | 'metrics' | 'poolStats' | 'runnersHealthy' | 'schemaStatus'> {
  client: SqlClient;
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
}

/** A listening server. */
export interface RunningServer extends AnnalsServer {
  /** `http://host:port` it listens on. */
  url: string;
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
  const store = await openEventStore({
    // HTTP appends arrive spread over many turns of the event loop, not woken together as
    // in-process callers are: one call in flight lets the next batch fill up meanwhile
    // (about 30 appends a call instead of 20 at 64 clients, and 1.4x the throughput; see
    // docs/server.md).
    appendConcurrency: 1,
    ...withoutUndefined(options.store ?? {}),
    client,
    instrumentation: metrics.instrumentation,
    personalData: app.personalData,
    inlineProjections: app.inlineProjections,
  });
  const runners: ProjectionRunner[] = runProjections
    ? (app.projections ?? []).map((p) => projections(store).run(p))
    : [];
  const sealer: Sealer | undefined = runSealer ? integrity(store).runSealer() : undefined;
  let server: AnnalsServer;
  try {
    server = await createServer({
      ...options,
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
    throw error;
  }
  const address = server.api.server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    ...server,
    url: `http://${shownHost}:${bound}`,
    async close() {
      await server.close();
      await store.close();
    },
  };
}
