/**
 * A projection's read model as of a moment: built in a scratch schema inside a transaction that
 * is rolled back, so the live read model and the database are left exactly as they were.
 */
import { describe, expect, it } from 'vitest';
import { type EventStore, InvalidInputError, type Projection, projections, type SqlQueryable } from '../src/index.js';
import { backends, momentBetween, useTestStore } from './support/backends.js';

/** A table of its own, created by setup and named without a schema. */
const totals: Projection = {
  name: 'totals',
  eventTypes: ['Added'],
  setup: async (tx) => {
    await tx.exec('create table if not exists projection_totals (stream_id text primary key, total int not null)');
  },
  handleBatch: async (events, tx) => {
    for (const event of events) {
      await tx.query(
        `insert into projection_totals (stream_id, total) values ($1, $2)
         on conflict (stream_id) do update set total = projection_totals.total + excluded.total`,
        [event.streamId, (event.data as { by: number }).by],
      );
    }
  },
};

/** Documents, per event type. */
const counts: Projection = {
  name: 'counts',
  handlers: {
    Added: async (event, _tx, documents) => {
      await documents.update('counts', event.streamId, { adds: 0 }, (doc) => ({ adds: Number(doc.adds) + 1 }));
    },
  },
};

describe.each(backends)('projectionAt on $name', (backend) => {
  let store: EventStore;
  const t = useTestStore(backend, (opened) => {
    store = opened.store;
  });

  const fill = async () => {
    await store.append('c-1', [{ type: 'Added', data: { by: 1 } }]);
    await store.append('c-2', [{ type: 'Added', data: { by: 10 } }]);
    await store.append('c-1', [{ type: 'Renamed', data: { name: 'x' } }]);
    const between = await momentBetween(t.client);
    await store.append('c-1', [{ type: 'Added', data: { by: 100 } }]);
    await store.append('c-3', [{ type: 'Added', data: { by: 1000 } }]);
    return between;
  };
  const scratchSchemas = async () =>
    (
      await t.client.query<{ n: string | number }>(
        `select count(*)::int as n from pg_namespace where nspname like 'annals_scratch_%'`,
      )
    )[0]?.n;
  const selectTotals = (tx: SqlQueryable) =>
    tx.query('select stream_id, total from projection_totals order by stream_id');

  it('builds a table projection as of a position or a time, queries it, and leaves nothing behind', async () => {
    const between = await fill();
    const atThree = await projections(store).at(totals, { position: 3 }, selectTotals);
    expect(atThree).toEqual({
      position: 3,
      result: [
        { stream_id: 'c-1', total: 1 },
        { stream_id: 'c-2', total: 10 },
      ],
    });
    const atTime = await projections(store).at(totals, { time: between }, selectTotals);
    expect(atTime.position).toBe(3);
    const now = await projections(store).at(totals, { position: 99 }, selectTotals);
    expect(now.position).toBe(5);
    expect(now.result).toHaveLength(3);
    expect(await scratchSchemas()).toBe(0);
    await expect(t.client.query('select 1 from projection_totals')).rejects.toMatchObject({ code: '42P01' });
  });

  it('builds document projections beside a live one without touching it', async () => {
    await fill();
    await projections(store).rebuild(counts);
    const past = await projections(store).at(counts, { position: 1 }, (_tx, documents) => documents.find('counts'));
    expect(past.result).toEqual([{ id: 'c-1', data: { adds: 1 } }]);
    expect(await projections(store).documents.find('counts')).toEqual([
      { id: 'c-1', data: { adds: 2 } },
      { id: 'c-2', data: { adds: 1 } },
      { id: 'c-3', data: { adds: 1 } },
    ]);
    const empty = await projections(store).at(counts, { position: 0 }, (_tx, documents) => documents.find('counts'));
    expect(empty).toEqual({ position: 0, result: [] });
  });

  it('a failing query or handler rolls everything back and reports the error', async () => {
    await fill();
    await expect(
      projections(store).at(totals, { position: 5 }, async () => {
        throw new Error('query broke');
      }),
    ).rejects.toThrow('query broke');
    const broken: Projection = {
      name: 'broken',
      handleBatch: async (_events, tx) => {
        await tx.query('select * from nowhere');
      },
    };
    await expect(projections(store).at(broken, { position: 5 }, async () => 1)).rejects.toThrow();
    expect(await scratchSchemas()).toBe(0);
    expect(await store.headPosition()).toBe(5);
  });

  it.each([[{ position: -1 }], [{ position: 1.5 }], [{ time: new Date('nope') }], [{ when: 3 }], [null]])(
    'refuses the moment %j',
    async (at) => {
      await expect(projections(store).at(totals, at as never, async () => 1)).rejects.toBeInstanceOf(InvalidInputError);
    },
  );

  it('never reads or writes a live table the projection did not create, even one of the same name', async () => {
    await fill();
    await t.client.exec(
      `create table "${t.schema}".live_totals (n int); insert into "${t.schema}".live_totals values (100)`,
    );
    const sneaky: Projection = {
      name: 'sneaky',
      handleBatch: async (_events, tx) => {
        await tx.query('update live_totals set n = n + 1');
      },
    };
    // The live table is not on the scratch search path: the handler fails instead of writing.
    await expect(projections(store).at(sneaky, { position: 5 }, async () => 1)).rejects.toThrow(/live_totals/);
    const [row] = await t.client.query<{ n: number }>(`select n from "${t.schema}".live_totals`);
    expect(row?.n).toBe(100);
  });

  it('leaves no scratch schema behind even when the query commits the transaction itself', async () => {
    await fill();
    const result = await projections(store)
      .at(counts, { position: 5 }, async (tx) => {
        await tx.exec('commit');
        return 'done';
      })
      .catch((error: unknown) => error);
    // The query's result comes back as usual (not an error), and the store is still usable.
    expect(result).toEqual({ position: 5, result: 'done' });
    expect(await scratchSchemas()).toBe(0);
    expect(await store.headPosition()).toBe(5);
  });

  it('refuses a malformed projection or query', async () => {
    await expect(projections(store).at({ name: '' } as never, { position: 1 }, async () => 1)).rejects.toBeInstanceOf(
      InvalidInputError,
    );
    await expect(projections(store).at(totals, { position: 1 }, 'select 1' as never)).rejects.toBeInstanceOf(
      InvalidInputError,
    );
  });
});
