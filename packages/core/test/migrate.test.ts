/** Migrations: idempotent, safe when several processes start at once, refuse a newer schema. */
import { describe, expect, it } from 'vitest';
import { createPostgresClient, loadMigrations, migrate, openEventStore } from '../src/index.js';
import { backends, databaseUrl, freshSchema } from './support/backends.js';

describe.each(backends)('migrations on $name', (backend) => {
  it('applies every migration once, then nothing', async () => {
    const schema = freshSchema('m');
    const client = backend.client();
    try {
      const latest = (await loadMigrations()).length;
      const first = await migrate(client, schema);
      expect(first.applied.map((m) => m.id)).toEqual(Array.from({ length: latest }, (_, i) => i + 1));
      expect(first.current).toBe(latest);
      expect((await migrate(client, schema)).applied).toEqual([]);
      const rows = await client.query(`select id from "${schema}".migrations order by id`);
      expect(rows).toHaveLength(latest);
    } finally {
      await client.exec(`drop schema if exists "${schema}" cascade`);
    }
  });

  it('refuses to open a schema that is newer than this version knows', async () => {
    const schema = freshSchema('m');
    const client = backend.client();
    try {
      await migrate(client, schema);
      await client.query(`insert into "${schema}".migrations (id, name) values (999, 'from_the_future')`);
      for (const migrateOnOpen of [true, false]) {
        await expect(
          openEventStore({ client, closeClient: false, schema, migrate: migrateOnOpen }),
        ).rejects.toMatchObject({ code: 'SCHEMA_TOO_NEW', found: 999 });
      }
    } finally {
      await client.exec(`drop schema if exists "${schema}" cascade`);
    }
  });

  it('with migrate: false, refuses an unmigrated schema and creates nothing', async () => {
    const schema = freshSchema('m');
    const client = backend.client();
    await expect(openEventStore({ client, closeClient: false, schema, migrate: false })).rejects.toMatchObject({
      code: 'SCHEMA_OUTDATED',
      found: 0,
    });
    const rows = await client.query('select 1 from pg_namespace where nspname = $1', [schema]);
    expect(rows).toEqual([]);
  });
});

describe.skipIf(!databaseUrl)('concurrent migrations on PostgreSQL', () => {
  it('eight processes migrating one new schema at once all succeed, each migration applied once', async () => {
    const schema = freshSchema('m');
    const clients = Array.from({ length: 8 }, () => createPostgresClient({ connectionString: databaseUrl as string }));
    try {
      const results = await Promise.all(clients.map((client) => migrate(client, schema)));
      const latest = (await loadMigrations()).length;
      expect(results.flatMap((r) => r.applied)).toHaveLength(latest);
      expect(results.every((r) => r.current === latest)).toBe(true);
      const stores = await Promise.all(clients.map((client) => openEventStore({ client, closeClient: false, schema })));
      await Promise.all(stores.map((store, i) => store.append(`p-${i}`, [{ type: 'E', data: {} }])));
      expect(await stores[0]?.headPosition()).toBe(8);
    } finally {
      await clients[0]?.exec(`drop schema if exists "${schema}" cascade`);
      await Promise.all(clients.map((client) => client.close()));
    }
  });
});
