/**
 * `annals serve`: the HTTP server on the embedded database (loopback only, for development)
 * or on PostgreSQL (`DATABASE_URL`). SIGTERM and SIGINT drain it: no new requests, requests in
 * flight finish, SSE clients get a retry hint, runners stop, the store closes.
 */
import { InvalidInputError } from '@annals/core';
import { type AnnalsApp, loadApp, startServer } from '@annals/server';
import { type ConnectionFlags, connect } from '../config.js';

export type ServeFlags = ConnectionFlags & {
  host?: string;
  port?: number;
  app?: string;
  bodyLimit?: number;
  poolSize?: number;
  appendConcurrency?: number;
  projections?: boolean;
  sealer?: boolean;
  log?: boolean;
};

const loopback = new Set(['127.0.0.1', '::1', 'localhost']);

export async function serveCommand(flags: ServeFlags): Promise<void> {
  const host = flags.host ?? process.env.ANNALS_HOST ?? '127.0.0.1';
  const port = flags.port ?? Number(process.env.ANNALS_PORT ?? 3000);
  if (!Number.isSafeInteger(port) || port < 0 || port > 65535) throw new InvalidInputError('--port', 'must be 0-65535');
  const app: AnnalsApp = flags.app ? await loadApp(flags.app) : {};
  const connection = await connect({ ...flags, poolSize: flags.poolSize });
  const embedded = !connection.client.capabilities.durable;
  if (embedded && !loopback.has(host)) {
    await connection.client.close();
    throw new InvalidInputError('--host', 'the embedded database is for development: serve it on loopback only');
  }
  const server = await startServer({
    client: connection.client,
    store: { schema: connection.schema, appendConcurrency: flags.appendConcurrency },
    app,
    host,
    port,
    bodyLimit: flags.bodyLimit,
    runProjections: flags.projections,
    runSealer: flags.sealer,
    logger: flags.log ? { level: 'info' } : false,
  });
  console.log(`annals serving ${connection.description}`);
  console.log(
    `  ${server.url}  (admin UI: ${server.url}/ui, OpenAPI: ${server.url}/openapi.json, metrics: ${server.url}/metrics)`,
  );
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      console.log(`annals: ${signal}, draining`);
      void server.close().then(resolve, (error) => {
        console.error(`annals: ${error instanceof Error ? error.message : String(error)}`);
        process.exitCode = 1;
        resolve();
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
