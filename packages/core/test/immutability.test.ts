/** Invariant 1: the database itself refuses to change or remove a stored event. */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPostgresClient, openEventStore, toArray } from '../src/index.js';
import { backends, databaseUrl, openTestStore, postgresBackend, type TestStore } from './support/backends.js';

describe.each(backends)('immutability on $name', (backend) => {
  let t: TestStore & { cleanup: () => Promise<void> };
  beforeEach(async () => {
    t = await openTestStore(backend);
    await t.store.append('acc-1', [
      { type: 'Opened', data: { balance: 0 } },
      { type: 'Deposited', data: { amount: 10 } },
    ]);
  });
  afterEach(async () => {
    await t.cleanup();
  });

  it.each([
    ['UPDATE', `update "{s}".events set data = '{"amount": 1000000}' where position = 2`],
    ['UPDATE of every row', `update "{s}".events set event_type = 'Forged'`],
    ['DELETE', `delete from "{s}".events where position = 1`],
    ['TRUNCATE', `truncate "{s}".events`],
  ])('rejects a raw %s with SQLSTATE AN001 and changes nothing', async (_, sql) => {
    const error = await t.client.query(sql.replace('{s}', t.schema)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'AN001' });
    expect(String((error as Error).message)).toContain('events are immutable');
    const events = await toArray(t.store.readAll());
    expect(events.map((e) => [e.position, e.type, e.data])).toEqual([
      [1, 'Opened', { balance: 0 }],
      [2, 'Deposited', { amount: 10 }],
    ]);
  });
});

describe.skipIf(!databaseUrl)('a role with only SELECT and INSERT on events', () => {
  const role = `annals_app_${randomBytes(4).toString('hex')}`;
  let t: TestStore & { cleanup: () => Promise<void> };
  beforeEach(async () => {
    t = await openTestStore(postgresBackend);
    const s = `"${t.schema}"`;
    await t.client.exec(`
      create role ${role} login;
      grant usage on schema ${s} to ${role};
      grant select, insert on ${s}.events to ${role};
      grant select, insert, update on ${s}.streams to ${role};
      grant select on ${s}.migrations to ${role};
      grant select on ${s}.stream_states to ${role};
      grant execute on function ${s}.append_events to ${role};`);
  });
  afterEach(async () => {
    await t.cleanup();
    await t.client.exec(`drop owned by ${role}; drop role ${role}`);
  });

  it('appends and reads, but cannot update, delete, truncate or disable the trigger', async () => {
    const url = new URL(databaseUrl as string);
    url.username = role;
    const store = await openEventStore({
      client: createPostgresClient({ connectionString: url.toString() }),
      schema: t.schema,
      migrate: false,
    });
    try {
      await store.append('acc-1', [{ type: 'Opened', data: {} }], { expectedVersion: 'no-stream' });
      expect((await toArray(store.readStream('acc-1'))).length).toBe(1);
    } finally {
      await store.close();
    }
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    try {
      for (const sql of [
        `update "${t.schema}".events set data = '{}'`,
        `delete from "${t.schema}".events`,
        `truncate "${t.schema}".events`,
        `alter table "${t.schema}".events disable trigger events_reject_update_delete`,
      ]) {
        const error = await client.query(sql).catch((e: unknown) => e);
        expect(error, sql).toMatchObject({ code: '42501' });
      }
    } finally {
      await client.end();
    }
  });
});
