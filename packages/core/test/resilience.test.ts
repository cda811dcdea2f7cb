/**
 * Invariant 7's "the process stays up": when PostgreSQL ends the store's connections, the
 * calls in flight fail with a typed error and the next calls work on fresh connections.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPostgresClient, DatabaseError, type EventStore, openEventStore, toArray } from '../src/index.js';
import { databaseUrl, freshSchema, rawConnection } from './support/backends.js';

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
    await new Promise((resolve) => setTimeout(resolve, 100));
    await store.append('s-1', [{ type: 'E', data: {} }], { expectedVersion: 1 });
    expect((await toArray(store.readStream('s-1'))).map((e) => e.streamVersion)).toEqual([1, 2]);
  });

  it('fails appends cut off mid-flight with a DatabaseError, and a retry with the same ids stores them once', async () => {
    // Hold the log so the appends are in flight when their connections are ended.
    const holder = await rawConnection();
    await holder.query('begin');
    await holder.query('select pg_advisory_xact_lock(hashtext($1), hashtext($2))', ['annals.log', schema]);
    const events = [{ id: crypto.randomUUID(), type: 'E', data: { n: 1 } }];
    const inFlight = store.append('s-2', events).catch((error: unknown) => error);
    await new Promise((resolve) => setTimeout(resolve, 200));
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
