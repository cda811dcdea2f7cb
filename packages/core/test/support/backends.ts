/**
 * The backends every contract test runs on: embedded PGlite always, a PostgreSQL server when
 * DATABASE_URL is set. Each test gets a schema of its own, dropped afterwards, and each test
 * file a PostgreSQL database (and a PGlite) of its own, dropped after the file, so tests never
 * see each other's data nor anything left by an earlier run.
 *
 * Why this design, measured on the 2-core test machine (PostgreSQL 15, other work running;
 * medians of 12 interleaved runs of: open a store, append one event, close, clean up):
 *
 * - A fresh schema per test, migrated on open, then dropped: 119 ms.
 * - A database per test, `create database ... template` of a migrated one, a pool connected
 *   to it, then `drop database ... with (force)`: 296 ms. The copy alone is 40-115 ms (WAL_LOG
 *   strategy; FILE_COPY is slower, about 330 ms), but connecting and dropping add as much again,
 *   and every extra client a test opens pays the connection too. Rejected: slower than migrating.
 * - A schema migrated ahead of time, in a database copied once per file: 45 ms; the copy costs
 *   40-100 ms plus 5-15 ms per migrated schema the template holds, and the drop about 30 ms.
 *
 * So: the global setup migrates a template database once per run (`templates.ts`), holding
 * the default schema `annals` and a pool of 8 schemas; each test file gets a copy of it, and
 * `openTestStore` hands out the pooled schemas, one per test, then fresh ones (migrated on
 * open) when the pool is used up. Files open 1 to 40 stores on PostgreSQL, so most of them use
 * most of the pool. Tests that pass a schema of their own, or need an unmigrated one
 * (`freshSchema`), work as before. Names carry the run's id (`annals_test_<run>_...`), so two
 * runs never collide; the file's copy is dropped after its last test, and the global teardown
 * drops whatever a crashed file left. A database per file also confines what tests do to the
 * whole database (ending every connection of an application name, reading `pg_stat_activity`,
 * advisory locks) to their own file, so test files may run in parallel.
 *
 * PGlite has no template databases, and copying a whole PGlite (`clone()`, or a new one with
 * `loadDataDir` from a dump) takes 1.1-2.5 s, far more than migrating a schema (40-60 ms). But
 * it is cheaper than starting an empty PGlite (initdb: 2.6-4.5 s, 6-7 s into a directory), which
 * every test file did once. So each file's PGlite starts from a dump of a migrated one, made
 * once per run, holding `annals` and a pool of 8 schemas used the same way.
 */
import { randomBytes } from 'node:crypto';
import type { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, afterEach, beforeEach } from 'vitest';
import { createPgliteClient } from '../../src/db/pglite-client.js';
import {
  createPostgresClient,
  type EventStore,
  openEventStore,
  type SqlCapabilities,
  type SqlClient,
  type SqlQueryable,
  type StoreOptions,
} from '../../src/index.js';
import { databasePrefix, pgliteFromTemplate, poolSchemas, testTemplates } from './templates.js';

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

const templates = testTemplates();
/** Migrated schemas not handed out yet, per backend (empty without templates). */
const pools = new Map<TestBackend, string[]>();
let pglite: PGlite | undefined;
let postgresClient: SqlClient | undefined;
let fileDatabase: string | undefined;

/** Connects to the server's own database (DATABASE_URL) for `create` and `drop database`. */
async function onServer(sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
  admin.on('error', () => {});
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end().catch(() => {});
  }
}

afterAll(async () => {
  await postgresClient?.close().catch(() => {});
  await pglite?.close().catch(() => {});
  if (fileDatabase) await onServer(`drop database if exists "${fileDatabase}" with (force)`);
});

/** This file's database: a copy of the run's template (or DATABASE_URL itself without templates). */
async function createFileDatabase(): Promise<string | undefined> {
  const serverUrl = process.env.DATABASE_URL;
  if (!serverUrl || !templates?.postgresTemplate) return serverUrl;
  const name = `${databasePrefix(templates.runId)}${randomBytes(4).toString('hex')}`;
  await onServer(`create database "${name}" template "${templates.postgresTemplate}"`);
  fileDatabase = name;
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** The PostgreSQL database of this test file (undefined without DATABASE_URL). */
export const databaseUrl = await createFileDatabase();

export const pgliteBackend: TestBackend = (() => {
  let client: SqlClient | undefined;
  const backend: TestBackend = {
    name: 'pglite',
    client: () => {
      if (!client) {
        pglite = pgliteFromTemplate();
        client = createPgliteClient({ db: pglite });
      }
      return client;
    },
  };
  pools.set(backend, templates ? poolSchemas('pglite') : []);
  return backend;
})();

export const postgresBackend: TestBackend = (() => {
  const backend: TestBackend = {
    name: 'postgres',
    client: () => {
      postgresClient ??= createPostgresClient({ connectionString: databaseUrl as string, maxConnections: 20 });
      return postgresClient;
    },
  };
  pools.set(backend, templates && fileDatabase ? poolSchemas('postgres') : []);
  return backend;
})();

/** The backends to run contract tests on. */
export const backends: TestBackend[] = databaseUrl ? [pgliteBackend, postgresBackend] : [pgliteBackend];

/** What `backend` can do: tests skip or size by this, never by the backend's name. */
export function capabilities(backend: TestBackend): SqlCapabilities {
  return backend.client().capabilities;
}

/** A fresh, unique schema name (nothing exists under it: opening a store there migrates it). */
export function freshSchema(prefix = 't'): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

/**
 * A schema for one new store on `backend`, used by nobody else: an already migrated one from
 * the file's pool while it lasts, else a fresh name.
 */
export function testSchema(backend: TestBackend): string {
  return pools.get(backend)?.shift() ?? freshSchema();
}

/**
 * Opens a store in a schema of its own on `backend` (`options.schema`, or {@link testSchema});
 * the returned `cleanup` closes it and drops the schema.
 */
export async function openTestStore(
  backend: TestBackend,
  options: Partial<StoreOptions> = {},
): Promise<TestStore & { cleanup: () => Promise<void> }> {
  const client = backend.client();
  const schema = options.schema ?? testSchema(backend);
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

/** A plain node-postgres client on this file's database, for raw SQL and held-open transactions. */
export async function rawConnection(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: databaseUrl });
  // A connection ended by the server (a test's pg_terminate_backend, the drop of the file's
  // database) must not crash the worker: queries on it fail anyway.
  client.on('error', () => {});
  await client.connect();
  return client;
}

/**
 * Lets real time pass. Only for timing a test creates on purpose (random delays in stress
 * tests, a slow handler); to wait for something to happen, use {@link waitUntil}.
 */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Polls `condition` until it holds; fails with `message` (or the condition's source) if it
 * does not within `timeoutMs`. The timeout only bounds a test that would otherwise hang.
 */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  { timeoutMs = 15_000, intervalMs = 10, message }: { timeoutMs?: number; intervalMs?: number; message?: string } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) {
      throw new Error(`waitUntil: not true after ${timeoutMs} ms: ${message ?? condition.toString()}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * A moment strictly after every event recorded so far and strictly before any recorded from
 * now on, on the database's own clock (which stamps `recordedAt`): the next whole
 * millisecond, returned once the clock has passed the millisecond after it. `recordedAt`
 * reaches JavaScript at millisecond precision, so an event stamped within the moment's own
 * millisecond (say .001200 for a moment of .001) would read as recorded at the moment.
 * Waits about two milliseconds; a fixed sleep would have to be longer and still trusts that
 * two clocks agree.
 */
export async function momentBetween(db: SqlQueryable): Promise<Date> {
  const [row] = await db.query<{ moment: Date }>(
    `select date_trunc('milliseconds', clock_timestamp()) + interval '1 millisecond' as moment`,
  );
  const moment = row?.moment as Date;
  await waitUntil(
    async () => {
      const [now] = await db.query<{ past: boolean }>(
        `select clock_timestamp() >= $1::timestamptz + interval '1 millisecond' as past`,
        [moment],
      );
      return now?.past === true;
    },
    { intervalMs: 1, message: `the database clock passes ${moment.toISOString()}` },
  );
  return moment;
}

/**
 * Opens a store in a schema of its own before each test of the enclosing suite and drops it after.
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
