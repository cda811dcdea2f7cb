/**
 * The backends every contract test runs on: embedded PGlite always, a PostgreSQL server when
 * DATABASE_URL is set. Each test gets a schema of its own, dropped afterwards, so tests never
 * see each other's data nor anything left by an earlier run.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterEach, beforeEach } from 'vitest';
import { createPgliteClient } from '../../src/db/pglite-client.js';
import {
  createPostgresClient,
  type EventStore,
  openEventStore,
  type SqlClient,
  type StoreOptions,
} from '../../src/index.js';

export const databaseUrl = process.env.DATABASE_URL;

export interface TestBackend {
  name: 'pglite' | 'postgres';
  /** A client on this backend, shared by the test file. */
  client(): SqlClient;
}

export interface TestStore {
  store: EventStore;
  schema: string;
  client: SqlClient;
}

export const pgliteBackend: TestBackend = (() => {
  let client: SqlClient | undefined;
  return {
    name: 'pglite',
    client: () => {
      client ??= createPgliteClient();
      return client;
    },
  };
})();

export const postgresBackend: TestBackend = (() => {
  let client: SqlClient | undefined;
  return {
    name: 'postgres',
    client: () => {
      client ??= createPostgresClient({ connectionString: databaseUrl as string, maxConnections: 20 });
      return client;
    },
  };
})();

/** The backends to run contract tests on. */
export const backends: TestBackend[] = databaseUrl ? [pgliteBackend, postgresBackend] : [pgliteBackend];

/** A fresh, unique schema name. */
export function freshSchema(prefix = 't'): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

/**
 * Opens a store in a fresh schema on `backend`; the returned `cleanup` closes it and drops
 * the schema.
 */
export async function openTestStore(
  backend: TestBackend,
  options: Partial<StoreOptions> = {},
): Promise<TestStore & { cleanup: () => Promise<void> }> {
  const client = backend.client();
  const schema = options.schema ?? freshSchema();
  const store = await openEventStore({ client, closeClient: false, ...options, schema });
  return {
    store,
    schema,
    client,
    async cleanup() {
      await store.close();
      await client.exec(`drop schema if exists "${schema}" cascade`);
    },
  };
}

/** A plain node-postgres client on DATABASE_URL, for raw SQL and held-open transactions. */
export async function rawConnection(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  return client;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Opens a store in a fresh schema before each test of the enclosing suite and drops it after.
 * `onOpen` receives it (to keep it in a local variable); the returned object reads the current one.
 */
export function useTestStore(
  backend: TestBackend,
  onOpen: (opened: TestStore) => void = () => {},
  options: Partial<StoreOptions> = {},
): TestStore {
  let current: (TestStore & { cleanup: () => Promise<void> }) | undefined;
  beforeEach(async () => {
    current = await openTestStore(backend, options);
    onOpen(current);
  });
  afterEach(async () => {
    await current?.cleanup();
    current = undefined;
  });
  const get = () => {
    if (!current) throw new Error('no test store outside a test');
    return current;
  };
  return {
    get store() {
      return get().store;
    },
    get schema() {
      return get().schema;
    },
    get client() {
      return get().client;
    },
  };
}
