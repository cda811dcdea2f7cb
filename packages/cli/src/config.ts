/**
 * The CLI's configuration: the only place (with the future server) that reads the
 * environment. A flag wins over the environment, which wins over the default.
 *
 * - `--database-url` / `DATABASE_URL`: a PostgreSQL server. Without it, the embedded backend.
 * - `--data-dir` / `ANNALS_DATA_DIR`: the embedded database's directory (default `./.annals/data`).
 * - `--schema` / `ANNALS_SCHEMA`: the PostgreSQL schema (default `annals`).
 */
import { mkdir } from 'node:fs/promises';
import { createPostgresClient, type EventStore, openEventStore, type SqlClient } from '@annals/core';

export interface ConnectionFlags {
  databaseUrl?: string;
  dataDir?: string;
  schema?: string;
  /** Most connections to PostgreSQL. @defaultValue 10 */
  poolSize?: number;
}

export interface Connection {
  client: SqlClient;
  schema: string;
  /** Human description of where the data lives, password redacted. */
  description: string;
}

export const defaultDataDir = './.annals/data';

export async function connect(flags: ConnectionFlags): Promise<Connection> {
  const schema = flags.schema ?? process.env.ANNALS_SCHEMA ?? 'annals';
  const databaseUrl = flags.databaseUrl ?? process.env.DATABASE_URL;
  if (databaseUrl) {
    const url = new URL(databaseUrl);
    if (url.password) url.password = '***';
    return {
      client: createPostgresClient({
        connectionString: databaseUrl,
        applicationName: 'annals-cli',
        maxConnections: flags.poolSize,
      }),
      schema,
      description: `PostgreSQL ${url.host}${url.pathname}, schema ${schema}`,
    };
  }
  const dataDir = flags.dataDir ?? process.env.ANNALS_DATA_DIR ?? defaultDataDir;
  await mkdir(dataDir, { recursive: true });
  // Loaded only when used, so server deployments never load the WebAssembly build.
  const { createPgliteClient } = await import('@annals/core/pglite');
  return {
    client: createPgliteClient({ dataDir }),
    schema,
    description: `embedded PGlite in ${dataDir} (development only: one process, no fsync), schema ${schema}`,
  };
}

/** Opens the store for a command; `migrate` says whether pending migrations may be applied. */
export async function openStore(flags: ConnectionFlags, migrate = true): Promise<{ store: EventStore } & Connection> {
  const connection = await connect(flags);
  const store = await openEventStore({ client: connection.client, schema: connection.schema, migrate });
  return { store, ...connection };
}

/** Runs `work` on a store opened without migrating (read commands), and closes it after. */
export async function withStore<T>(flags: ConnectionFlags, work: (store: EventStore) => Promise<T>): Promise<T> {
  const { store } = await openStore(flags, false);
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}
