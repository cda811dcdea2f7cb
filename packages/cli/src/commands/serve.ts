/**
 * `annals serve`: the HTTP server on the embedded database (loopback only, for development)
 * or on PostgreSQL (`DATABASE_URL`). SIGTERM and SIGINT drain it: no new requests, requests in
 * flight finish, SSE clients get a retry hint, runners stop, the store closes.
 */
import { readFile } from 'node:fs/promises';
import { createPostgresClient, createTenantClients, InvalidInputError, openEventStore } from '@annals/core';
import { type NatsRelay, startNatsRelay } from '@annals/nats';
import { type AnnalsApp, type JwtOptions, loadApp, type StartServerOptions, startServer } from '@annals/server';
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
  auth?: 'on' | 'off';
  tenants?: boolean;
  directory?: string;
  jwtPublicKey?: string;
  jwksFile?: string;
  jwtIssuer?: string;
  jwtAudience?: string;
  rateLimit?: number;
  ssePerKey?: number;
  tenant?: string;
  /** Take part in the append coordinator: `true`, or the `host:port` to listen on while holding it. */
  appendCoordinator?: boolean | string;
  /** The coordinator address other servers connect to (`--append-coordinator-advertise`). */
  appendCoordinatorAdvertise?: string;
  /** Also speak the KurrentDB gRPC protocol on this port (`ANNALS_GRPC_PORT`). */
  grpcPort?: number;
  /** PEM certificate chain and key files of its TLS (`ANNALS_GRPC_TLS_CERT`, `ANNALS_GRPC_TLS_KEY`). */
  grpcTlsCert?: string;
  grpcTlsKey?: string;
  /** Also relay the log to these NATS servers (`--relay-nats`, comma-separated), stream ANNALS. */
  relayNats?: string;
  /** Serve reads from this streaming replica of the database (`--read-replica`, a PostgreSQL URL). */
  readReplica?: string;
};

/** The KurrentDB-protocol endpoint the flags (or their environment variables) ask for. */
async function grpcOf(flags: ServeFlags, host: string): Promise<StartServerOptions['grpc']> {
  const given = flags.grpcPort ?? (process.env.ANNALS_GRPC_PORT ? Number(process.env.ANNALS_GRPC_PORT) : undefined);
  if (given === undefined) return undefined;
  if (!Number.isSafeInteger(given) || given < 0 || given > 65535) {
    throw new InvalidInputError('--grpc-port', 'must be 0-65535');
  }
  const cert = flags.grpcTlsCert ?? process.env.ANNALS_GRPC_TLS_CERT;
  const key = flags.grpcTlsKey ?? process.env.ANNALS_GRPC_TLS_KEY;
  if ((cert === undefined) !== (key === undefined)) {
    throw new InvalidInputError('--grpc-tls-cert', 'give both the certificate and its key, or neither');
  }
  const tls = cert && key ? { cert: await readFile(cert), key: await readFile(key) } : undefined;
  return { port: given, host, tls };
}

/** The append coordinator the flags ask for: none, its defaults, or a `host:port` to listen on. */
function coordinatorOf(flags: ServeFlags): StartServerOptions['appendCoordinator'] {
  const given = flags.appendCoordinator;
  if (given === undefined || given === false || given === 'false' || given === '0') return undefined;
  const advertise = flags.appendCoordinatorAdvertise;
  if (advertise !== undefined && !/^[^\s:]+:\d{1,5}$/.test(advertise)) {
    throw new InvalidInputError('--append-coordinator-advertise', 'must be host:port');
  }
  if (given === true || given === 'true' || given === '1' || given === '') return advertise ? { advertise } : true;
  const match = /^([^\s:]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(given);
  const port = Number(match?.[2]);
  if (!match || port > 65535) throw new InvalidInputError('--append-coordinator', 'must be host:port (port 0-65535)');
  return { host: (match[1] as string).replace(/^\[|\]$/g, ''), port, ...(advertise ? { advertise } : {}) };
}

async function jwtOf(flags: ServeFlags): Promise<JwtOptions | undefined> {
  if (!flags.jwtPublicKey && !flags.jwksFile) return undefined;
  return {
    publicKey: flags.jwtPublicKey ? await readFile(flags.jwtPublicKey, 'utf8') : undefined,
    jwksFile: flags.jwksFile,
    issuer: flags.jwtIssuer,
    audience: flags.jwtAudience,
    defaultTenant: flags.tenants ? undefined : 'default',
  };
}

const loopback = new Set(['127.0.0.1', '::1', 'localhost']);

export async function serveCommand(flags: ServeFlags): Promise<void> {
  const host = flags.host ?? process.env.ANNALS_HOST ?? '127.0.0.1';
  const port = flags.port ?? Number(process.env.ANNALS_PORT ?? 3000);
  if (!Number.isSafeInteger(port) || port < 0 || port > 65535) throw new InvalidInputError('--port', 'must be 0-65535');
  const grpc = await grpcOf(flags, host);
  const appendCoordinator = coordinatorOf(flags);
  const app: AnnalsApp = flags.app ? await loadApp(flags.app) : {};
  const connection = await connect({ ...flags, poolSize: flags.poolSize });
  const embedded = !connection.client.capabilities.durable;
  if (embedded && !loopback.has(host)) {
    await connection.client.close();
    throw new InvalidInputError('--host', 'the embedded database is for development: serve it on loopback only');
  }
  if (embedded && appendCoordinator) {
    await connection.client.close();
    throw new InvalidInputError('--append-coordinator', 'the embedded database has one process: it needs PostgreSQL');
  }
  if (flags.tenants && appendCoordinator) {
    await connection.client.close();
    throw new InvalidInputError(
      '--append-coordinator',
      'serves one store; with --tenants appends share commits already',
    );
  }
  if (flags.relayNats && flags.tenants) {
    await connection.client.close();
    throw new InvalidInputError(
      '--relay-nats',
      'relays one store: run `annals relay nats --schema <tenant>` per tenant',
    );
  }
  if (flags.readReplica && (embedded || flags.tenants)) {
    await connection.client.close();
    throw new InvalidInputError(
      '--read-replica',
      embedded ? 'a replica is of a PostgreSQL server: set DATABASE_URL' : 'serves one store, not --tenants',
    );
  }
  const replica = flags.readReplica
    ? await openReplica(flags.readReplica, connection.schema, flags.poolSize)
    : undefined;
  if (embedded && flags.tenants) {
    await connection.client.close();
    throw new InvalidInputError('--tenants', 'tenants need PostgreSQL (each has its own roles): set DATABASE_URL');
  }
  // Zero setup on the embedded database (loopback only); on PostgreSQL, on unless turned off.
  const authOn = (flags.auth ?? (embedded ? 'off' : 'on')) === 'on';
  let tenants: StartServerOptions['tenants'];
  let client = connection.client;
  if (flags.tenants) {
    await connection.client.close();
    const clients = createTenantClients({
      connectionString: (flags.databaseUrl ?? process.env.DATABASE_URL) as string,
      maxConnections: flags.poolSize,
      applicationName: 'annals-server',
      directory: flags.directory,
    });
    tenants = { clients, options: { directory: flags.directory } };
    client = clients.control;
  }
  const server = await startServer({
    client,
    tenants,
    tenant: flags.tenant,
    auth: authOn ? { directory: flags.directory, jwt: await jwtOf(flags) } : undefined,
    limits: {
      rateLimit: flags.rateLimit ?? (authOn ? 2000 : 0),
      sseConnectionsPerKey: flags.ssePerKey,
    },
    store: { schema: connection.schema, appendConcurrency: flags.appendConcurrency },
    app,
    host,
    port,
    grpc,
    appendCoordinator,
    bodyLimit: flags.bodyLimit,
    runProjections: flags.projections,
    runSealer: flags.sealer,
    logger: flags.log ? { level: 'info' } : false,
    ...(replica ? { readReplica: { store: replica } } : {}),
  }).catch(async (error: unknown) => {
    await replica?.close();
    throw error;
  });
  console.log(`annals serving ${flags.tenants ? 'every tenant of ' : ''}${connection.description}`);
  console.log(
    authOn
      ? '  auth: on (Authorization: Bearer <key>; make one with `annals keys create --name me --scopes admin`)'
      : `  auth: off${embedded ? ' (embedded database, loopback only)' : ' (--auth off)'}: anyone who reaches this port may read and append`,
  );
  if (!embedded) {
    const [me] = await client
      .query<{ name: string; superuser: boolean }>(
        'select current_user as name, rolsuper as superuser from pg_roles where rolname = current_user',
      )
      .catch(() => []);
    if (me?.superuser) {
      console.log(
        `  warning: connected as the superuser ${me.name}; serve as a least-privilege role (annals roles, or annals_server with --tenants)`,
      );
    }
  }
  console.log(
    `  ${server.url}  (admin UI: ${server.url}/ui, OpenAPI: ${server.url}/openapi.json, metrics: ${server.url}/metrics)`,
  );
  if (server.grpc) {
    console.log(
      `  ${server.grpc.connectionString}  (KurrentDB protocol${authOn ? '; username anything, password an API key' : ''})`,
    );
  }
  let relay: { relay: NatsRelay; close(): Promise<void> } | undefined;
  if (flags.relayNats) {
    // A store of its own on the server's client, closed before the server closes the client.
    const relayStore = await openEventStore({ client, schema: connection.schema, migrate: false, closeClient: false });
    let started: NatsRelay;
    try {
      started = startNatsRelay(relayStore, { servers: flags.relayNats.split(',') });
    } catch (error) {
      // A bad --relay-nats: nothing keeps serving.
      await relayStore.close();
      await server.close();
      if (error instanceof InvalidInputError && error.field === 'servers') {
        throw new InvalidInputError('--relay-nats', error.message.slice('servers: '.length));
      }
      throw error;
    }
    relay = {
      relay: started,
      close: async () => {
        await started.stop();
        await relayStore.close();
      },
    };
    console.log(`  relaying the log to NATS ${flags.relayNats}, stream ANNALS (checkpoint ${started.checkpoint})`);
  }
  if (replica) console.log('  reads from the replica on --read-replica (Annals-Read-From tells which served each)');
  if (appendCoordinator) {
    console.log('  append coordinator: on (its role and traffic: annals_append_coordinator_* in /metrics)');
  }
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      console.log(`annals: ${signal}, draining`);
      void (relay?.close() ?? Promise.resolve())
        .then(() => server.close())
        .then(resolve, (error) => {
          console.error(`annals: ${error instanceof Error ? error.message : String(error)}`);
          process.exitCode = 1;
          resolve();
        });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await replica?.close();
  await tenants?.clients.close();
}

/** The store on the replica at `url`: the served schema, never migrated (a standby is read-only). */
async function openReplica(url: string, schema: string, poolSize: number | undefined) {
  let client: ReturnType<typeof createPostgresClient>;
  try {
    client = createPostgresClient({ connectionString: url, maxConnections: poolSize });
  } catch (error) {
    throw new InvalidInputError('--read-replica', `is not a PostgreSQL URL (${describe(error)})`);
  }
  return openEventStore({ client, schema, migrate: false }).catch(async (error: unknown) => {
    await client.close().catch(() => {});
    throw new InvalidInputError('--read-replica', `cannot be opened: ${describe(error)}`);
  });
}

const describe = (error: unknown) => (error instanceof Error ? error.message : String(error));
