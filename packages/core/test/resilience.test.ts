/**
 * Invariant 7's "the process stays up": when PostgreSQL ends the store's connections, the
 * calls in flight fail with a typed error and the next calls work on fresh connections.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPostgresClient, DatabaseError, type EventStore, openEventStore, toArray } from '../src/index.js';
import { databaseUrl, freshSchema, rawConnection, waitUntil } from './support/backends.js';

describe.skipIf(!databaseUrl)('connections ended by the server', () => {
  const schema = freshSchema('r');
  const applicationName = `annals_${schema}`;
  let store: EventStore;
  beforeEach(async () => {
    store = await openEventStore({
      client: createPostgresClient({ connectionString: databaseUrl as string, applicationName }),
      schema,
    });
  });
  afterEach(async () => {
    await store.close();
    const admin = await rawConnection();
    await admin.query(`drop schema if exists "${schema}" cascade`);
    await admin.end();
  });

  /** Rows of a query on a connection of its own (a transaction would see one snapshot of pg_stat_activity). */
  const select = async (sql: string, params: unknown[]) => {
    const admin = await rawConnection();
    try {
      return (await admin.query(sql, params)).rows;
    } finally {
      await admin.end();
    }
  };

  const terminateStoreConnections = async () => {
    const admin = await rawConnection();
    try {
      const { rows } = await admin.query(
        'select pg_terminate_backend(pid) as ended from pg_stat_activity where application_name = $1',
        [applicationName],
      );
      return rows.length;
    } finally {
      await admin.end();
    }
  };

  it('keeps working after its idle connections are terminated', async () => {
    await store.append('s-1', [{ type: 'E', data: {} }]);
    expect(await terminateStoreConnections()).toBeGreaterThan(0);
    await waitUntil(
      async () =>
        (await select('select 1 from pg_stat_activity where application_name = $1', [applicationName])).length === 0,
      { message: 'the ended backends are gone' },
    );
    await store.append('s-1', [{ type: 'E', data: {} }], { expectedVersion: 1 });
    expect((await toArray(store.readStream('s-1'))).map((e) => e.streamVersion)).toEqual([1, 2]);
  });

  it('fails appends cut off mid-flight with a DatabaseError, and a retry with the same ids stores them once', async () => {
    // Hold the log so the appends are in flight when their connections are ended.
    const holder = await rawConnection();
    await holder.query('begin');
    // The log lock: the row of log_head (a superuser may take it; the application role may not).
    await holder.query(`select 1 from "${schema}".log_head for update`);
    const events = [{ id: crypto.randomUUID(), type: 'E', data: { n: 1 } }];
    const inFlight = store.append('s-2', events).catch((error: unknown) => error);
    const holderPid = (await holder.query('select pg_backend_pid() as pid')).rows[0].pid;
    await waitUntil(
      async () =>
        (await select('select 1 from pg_stat_activity where $1 = any(pg_blocking_pids(pid))', [holderPid])).length > 0,
      { message: 'the append waits for the log' },
    );
    await terminateStoreConnections();
    const error = await inFlight;
    await holder.query('rollback');
    await holder.end();
    expect(error).toBeInstanceOf(DatabaseError);
    const retried = await store.append('s-2', events);
    expect(retried.streamVersion).toBe(1);
    const again = await store.append('s-2', events);
    expect(again).toMatchObject({ duplicate: true, streamVersion: 1 });
    expect(await store.headPosition()).toBe(1);
  });
});
