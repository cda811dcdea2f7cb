/**
 * `annals roles`: the SQL of the three roles, printed for people, as JSON for scripts, and
 * applied to a PostgreSQL database (then the application role can append and cannot write
 * the log directly).
 */
import { randomBytes } from 'node:crypto';
import { createPostgresClient, InvalidInputError, openEventStore } from '@annals/core';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { rolesCommand } from '../src/commands/roles.js';
import { capture } from './support/capture.js';

describe('annals roles', () => {
  it('prints the setup, the migrate step and the grants for a schema', async () => {
    const out = await capture(() => rolesCommand({ schema: 'shop' }));
    expect(out).toContain('create role');
    expect(out).toContain('"shop_owner"');
    expect(out).toContain('"shop_app"');
    expect(out).toContain('"shop_reader"');
    expect(out).toContain('annals migrate --schema shop');
    expect(out).toMatch(/grant execute on function "shop"\.append_events/i);
    expect(out).not.toMatch(/grant[^;]*\b(update|delete|truncate)\b[^;]*on\s+"shop"\.events\b/i);
  });

  it('prints JSON with the resolved names, and refuses names that are not plain identifiers', async () => {
    const json = JSON.parse(await capture(() => rolesCommand({ schema: 'shop', app: 'web', json: true })));
    expect(json.names).toEqual({ schema: 'shop', owner: 'shop_owner', app: 'web', reader: 'shop_reader' });
    for (const app of ['web"; drop role postgres; --', 'pg_read_all_data', '', 'a b']) {
      await expect(rolesCommand({ schema: 'shop', app })).rejects.toBeInstanceOf(InvalidInputError);
    }
    await expect(rolesCommand({ schema: 'Shop; --' })).rejects.toBeInstanceOf(InvalidInputError);
  });

  it.runIf(process.env.DATABASE_URL)(
    'applies them; the application role appends but cannot write the log',
    async () => {
      const suffix = randomBytes(4).toString('hex');
      const schema = `roles_${suffix}`;
      const names = { owner: `o_${suffix}`, app: `a_${suffix}`, reader: `r_${suffix}` };
      const databaseUrl = process.env.DATABASE_URL as string;
      const admin = new pg.Client({ connectionString: databaseUrl });
      await admin.connect();
      try {
        const applied = JSON.parse(
          await capture(() => rolesCommand({ databaseUrl, schema, ...names, apply: true, json: true })),
        );
        expect(applied.applied.length).toBeGreaterThan(5);
        // Again: nothing left to do, and no error.
        const again = JSON.parse(
          await capture(() => rolesCommand({ databaseUrl, schema, ...names, apply: true, json: true })),
        );
        expect(again.applied).toEqual([]);

        const asApp = new URL(databaseUrl);
        asApp.username = names.app;
        const store = await openEventStore({
          client: createPostgresClient({ connectionString: asApp.toString() }),
          schema,
          migrate: false,
        });
        try {
          const result = await store.append('order-1', [{ type: 'Placed', data: {} }], {
            expectedVersion: 'no-stream',
          });
          expect(result.positions).toEqual([1]);
        } finally {
          await store.close();
        }
        const app = new pg.Client({ connectionString: asApp.toString() });
        await app.connect();
        try {
          await expect(
            app.query(`insert into "${schema}".events (stream_id, stream_version, event_id, event_type, data, metadata)
                     values ('x-1', 1, gen_random_uuid(), 'X', '{}', '{}')`),
          ).rejects.toThrow(/permission denied/);
        } finally {
          await app.end();
        }
      } finally {
        await admin.query(`drop schema if exists "${schema}" cascade`).catch(() => {});
        for (const role of [names.app, names.reader, names.owner]) {
          await admin.query(`drop owned by "${role}"`).catch(() => {});
          await admin.query(`drop role if exists "${role}"`).catch(() => {});
        }
        await admin.end();
      }
    },
  );
});
