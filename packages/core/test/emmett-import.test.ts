/**
 * Emmett to Annals, end to end on PostgreSQL: events appended with Emmett's own event store
 * (`@event-driven-io/emmett-postgresql`) are read from its `emt_messages` table by
 * `emmettSource` and imported in append mode; each comes out with its id, stream, version,
 * type, data, metadata and time, in Emmett's global order, sealed and verified.
 */
import { getPostgreSQLEventStore } from '@event-driven-io/emmett-postgresql';
import { describe, expect, it } from 'vitest';
import { emmettSource, integrity, toArray, transfer } from '../src/index.js';
import { databaseUrl, openTestStore, postgresBackend, rawConnection } from './support/backends.js';

describe.runIf(databaseUrl)('importing an Emmett store (PostgreSQL)', () => {
  it('brings every event over with its id, version, data, metadata and time; a re-run adds nothing', async () => {
    const emmett = getPostgreSQLEventStore(databaseUrl as string);
    try {
      await emmett.appendToStream('account-1', [
        { type: 'AccountOpened', data: { owner: 'Ada', limit: 1.5 }, metadata: { actor: 'teller' } },
        { type: 'MoneyDeposited', data: { amount: 100, note: 'tab\there "q"' } },
      ]);
      await emmett.appendToStream('cart-9', [{ type: 'ItemAdded', data: { sku: 'x', qty: 2 } }]);
      await emmett.appendToStream('account-1', [{ type: 'MoneyWithdrawn', data: { amount: 30 } }], {
        expectedStreamVersion: 2n,
      });
    } finally {
      await emmett.close();
    }
    const raw = await rawConnection();
    const { rows: messages } = await raw.query(
      `select message_id, stream_id, stream_position::int as v, message_type, message_data::text as data,
              message_metadata::text as metadata, created
         from emt_messages where message_kind = 'E' order by global_position`,
    );
    await raw.end();
    expect(messages).toHaveLength(4);

    const { store, client, cleanup } = await openTestStore(postgresBackend);
    try {
      await store.append('audit-0', [{ type: 'Existing', data: {} }]);
      const result = await transfer(store).import(emmettSource(client, { pageSize: 3 }), { mode: 'append' });
      expect(result).toMatchObject({ imported: 4, skipped: 0, position: 5, sealed: 5 });
      const events = await toArray(store.readAll({ after: 1 }));
      expect(events.map((e) => [e.position, e.id, e.streamId, e.streamVersion, e.type])).toEqual(
        messages.map((m, i) => [i + 2, m.message_id, m.stream_id, m.v, m.message_type]),
      );
      expect(events[0]?.data).toEqual({ owner: 'Ada', limit: 1.5 });
      expect(events[0]?.metadata).toMatchObject({ actor: 'teller' });
      expect(events[1]?.data).toEqual({ amount: 100, note: 'tab\there "q"' });
      expect(events.map((e) => e.recordedAt.getTime())).toEqual(messages.map((m) => (m.created as Date).getTime()));
      // jsonb as Emmett stored it, to the byte.
      const [stored] = await client.query<{ data: string; metadata: string }>(
        `select data::text as data, metadata::text as metadata from "${store.options.schema}".events where position = 2`,
      );
      expect(stored).toEqual({ data: messages[0]?.data, metadata: messages[0]?.metadata });
      expect((await integrity(store).verify()).ok).toBe(true);

      const again = await transfer(store).import(emmettSource(client), { mode: 'append' });
      expect(again).toMatchObject({ imported: 0, skipped: 4, position: 5 });
    } finally {
      await cleanup();
    }
  });
});
