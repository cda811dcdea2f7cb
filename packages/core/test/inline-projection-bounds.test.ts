/**
 * Inline projections run inside the append's transaction, while it holds the log lock every
 * writer waits for: a slow one must not stall the store. Their time is bounded by
 * `inlineProjectionTimeoutMs` (a deadline on the handlers, a statement_timeout on their
 * statements), and a handler that goes on after the deadline cannot write anything.
 */
import { describe, expect, it } from 'vitest';
import {
  InlineProjectionError,
  InvalidInputError,
  openEventStore,
  type Projection,
  type SqlQueryable,
} from '../src/index.js';
import { backends, freshSchema } from './support/backends.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe.each(backends)('inline projection bounds on $name', (backend) => {
  const open = async (projectionsOf: (schema: string) => Projection[], inlineProjectionTimeoutMs = 200) => {
    const client = backend.client();
    const schema = freshSchema('ib');
    const inlineProjections = projectionsOf(schema);
    const store = await openEventStore({
      client,
      closeClient: false,
      schema,
      inlineProjections,
      inlineProjectionTimeoutMs,
    });
    return {
      store,
      schema,
      client,
      async cleanup() {
        await store.close();
        await client.exec(`drop schema if exists "${schema}" cascade`);
      },
    };
  };

  it('fails an append whose inline handler outlives the budget, stores nothing, and frees the log', async () => {
    let slow = true;
    const counted: string[] = [];
    const t = await open(() => [
      {
        name: 'slow',
        handlers: {
          Happened: async (event) => {
            if (slow) await sleep(5_000);
            counted.push(event.streamId);
          },
        },
      },
    ]);
    try {
      const failure = await t.store.append('thing-1', [{ type: 'Happened', data: {} }]).catch((error) => error);
      expect(failure).toBeInstanceOf(InlineProjectionError);
      expect(failure.code).toBe('PROJECTION_FAILED');
      expect(failure.projection).toBe('slow');
      expect(failure.message).toMatch(/took longer than 200 ms; nothing was appended/);
      expect(await t.store.headPosition()).toBe(0);
      expect(await t.store.getStream('thing-1')).toBeNull();
      // The log lock went with the rolled-back transaction: the next append goes through.
      slow = false;
      const next = await t.store.append('thing-2', [{ type: 'Happened', data: {} }]);
      expect(next.positions).toEqual([1]);
      expect(counted).toEqual(['thing-2']);
    } finally {
      await t.cleanup();
    }
  });

  it('refuses what a late handler sends through the ended transaction', async () => {
    let late: Promise<unknown> | undefined;
    const t = await open((schema) => [
      {
        name: 'late',
        setup: async (tx) => {
          await tx.exec(`create table if not exists "${schema}".late_rows (id text primary key)`);
        },
        handlers: {
          Happened: async (event, tx: SqlQueryable) => {
            late = (async () => {
              await sleep(400);
              return tx.query(`insert into "${schema}".late_rows (id) values ($1)`, [event.id]);
            })();
            await late;
          },
        },
      },
    ]);
    try {
      await expect(t.store.append('thing-1', [{ type: 'Happened', data: {} }])).rejects.toBeInstanceOf(
        InlineProjectionError,
      );
      await expect(late).rejects.toThrow(/the transaction has ended/);
      const rows = await t.client.query<{ n: number }>(`select count(*)::int as n from "${t.schema}".late_rows`);
      expect(rows[0]?.n).toBe(0);
      expect(await t.store.headPosition()).toBe(0);
    } finally {
      await t.cleanup();
    }
  });

  it('refuses a budget that is not a positive integer of timer range', async () => {
    for (const bad of [0, -1, 1.5, Number.NaN, 2 ** 31, '100']) {
      await expect(
        openEventStore({ client: backend.client(), closeClient: false, inlineProjectionTimeoutMs: bad as number }),
      ).rejects.toBeInstanceOf(InvalidInputError);
    }
  });
});

describe.each(backends.filter((b) => b.client().capabilities.concurrentConnections))(
  'a slow inline statement on $name',
  (backend) => {
    it('is cut off by the statement timeout, and other writers go on', async () => {
      const client = backend.client();
      const schema = freshSchema('ib');
      const slow = await openEventStore({
        client,
        closeClient: false,
        schema,
        inlineProjectionTimeoutMs: 300,
        inlineProjections: [
          {
            name: 'sleeper',
            handlers: {
              Happened: async (_event, tx) => {
                // Far past the test's own timeout: only the statement timeout can end it in time.
                await tx.query('select pg_sleep(600)');
              },
            },
          },
        ],
      });
      const plain = await openEventStore({ client, closeClient: false, schema });
      try {
        const stalled = slow.append('slow-1', [{ type: 'Happened', data: {} }]).catch((error) => error);
        // An append of another writer queues on the log lock behind the stalled one.
        const other = plain.append('fast-1', [{ type: 'Other', data: {} }]);
        expect(await stalled).toBeInstanceOf(InlineProjectionError);
        expect((await other).positions).toEqual([1]);
        expect(await plain.getStream('slow-1')).toBeNull();
      } finally {
        await slow.close();
        await plain.close();
        await client.exec(`drop schema if exists "${schema}" cascade`);
      }
    });
  },
);
