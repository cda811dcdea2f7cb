/**
 * Invariant 3: a reader of the global log that pages from a checkpoint never skips an event,
 * whatever order concurrent transactions commit in. Needs a server with real concurrent
 * connections, so these run only with DATABASE_URL.
 */
import type pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SqlQueryable } from '../src/db/sql-client.js';
import type { EventStore, RecordedEvent } from '../src/index.js';
import { appendEvents } from '../src/queries/append-events.js';
import { prepareWrites } from '../src/validation.js';
import {
  databaseUrl,
  openTestStore,
  postgresBackend,
  rawConnection,
  sleep,
  type TestStore,
  waitUntil,
} from './support/backends.js';

const limits = { maxEventBytes: 1 << 20, maxEventsPerAppend: 100, maxStreamIdLength: 256 };

/** Appends through the store's SQL on a connection the test controls (to hold transactions open). */
async function rawAppend(client: pg.Client, schema: string, streamId: string, count: number, tag = streamId) {
  const db: SqlQueryable = {
    query: async (text, params) => (await client.query(text, params as unknown[])).rows,
    exec: async (script) => void (await client.query(script)),
  };
  const writes = prepareWrites(
    [{ streamId, events: Array.from({ length: count }, (_, i) => ({ type: 'E', data: { tag, i } })) }],
    limits,
  );
  const [outcomes] = await appendEvents(db, schema, [writes]);
  return { outcome: outcomes?.[0], ids: writes[0]?.events.map((e) => e.id) ?? [] };
}

/** A reader that resumes from its checkpoint and checks that what it sees is gap-free. */
function checkpointReader(store: EventStore) {
  let checkpoint = 0;
  const seen: RecordedEvent[] = [];
  return {
    get checkpoint() {
      return checkpoint;
    },
    seen,
    async poll(): Promise<RecordedEvent[]> {
      const page: RecordedEvent[] = [];
      for await (const event of store.readAll({ after: checkpoint, pageSize: 50 })) {
        // Positions must continue exactly where the checkpoint left off: a jump is a skip.
        expect(event.position).toBe(checkpoint + 1);
        checkpoint = event.position;
        page.push(event);
      }
      seen.push(...page);
      return page;
    },
  };
}

describe.skipIf(!databaseUrl)('global order on PostgreSQL', () => {
  let t: TestStore & { cleanup: () => Promise<void> };
  const connections: pg.Client[] = [];
  const connect = async () => {
    const client = await rawConnection();
    connections.push(client);
    return client;
  };

  beforeEach(async () => {
    t = await openTestStore(postgresBackend);
  });

  afterEach(async () => {
    await Promise.all(connections.splice(0).map((c) => c.end().catch(() => {})));
    await t.cleanup();
  });

  it('a transaction holding the log makes later appends wait, and readers see no hole', async () => {
    const { store, schema } = t;
    await store.append('warmup-1', [{ type: 'E', data: {} }]);
    const reader = checkpointReader(store);
    expect((await reader.poll()).length).toBe(1);

    // T1 appends and stays open.
    const t1 = await connect();
    const t1Pid = (await t1.query('select pg_backend_pid() as pid')).rows[0].pid;
    await t1.query('begin');
    const t1Began = Date.now();
    const first = await rawAppend(t1, schema, 'slow-1', 2);
    expect(first.outcome).toMatchObject({ outcome: 'ok', firstPosition: 2, lastPosition: 3 });

    // T2 appends through the store: it must wait for T1, not commit around it.
    let t2Done = false;
    const t2 = store.append('fast-1', [{ type: 'E', data: { tag: 'fast' } }]).then((r) => {
      t2Done = true;
      return r;
    });
    await waitUntil(
      async () =>
        (await t.client.query('select 1 from pg_stat_activity where $1 = any(pg_blocking_pids(pid))', [t1Pid])).length >
        0,
      { message: 'T2 waits for T1' },
    );
    // T1 must have been open a while for the age reported below (timing made on purpose).
    await sleep(t1Began + 300 - Date.now());
    expect(t2Done).toBe(false);

    // The store names the transaction holding the log, and that someone waits for it.
    const holders = await store.logHolders();
    expect(holders).toHaveLength(1);
    expect(holders[0]).toMatchObject({ pid: t1Pid, state: 'idle in transaction' });
    expect(holders[0]?.waiting).toBeGreaterThanOrEqual(1);
    expect(holders[0]?.openForMs).toBeGreaterThanOrEqual(250);

    // Read while T1 is open: nothing new is visible, nothing is skipped.
    expect(await reader.poll()).toEqual([]);
    expect(await store.headPosition()).toBe(1);

    await t1.query('commit');
    const second = await t2;
    expect(second.positions).toEqual([4]);

    // Read again from the checkpoint: T1's events, then T2's, each exactly once.
    const page = await reader.poll();
    expect(page.map((e) => [e.position, e.streamId])).toEqual([
      [2, 'slow-1'],
      [3, 'slow-1'],
      [4, 'fast-1'],
    ]);
    expect(reader.seen.map((e) => e.position)).toEqual([1, 2, 3, 4]);
    expect(await store.logHolders()).toEqual([]);
  });

  it('a transaction that commits late gets later positions than those that committed first', async () => {
    const { store, schema } = t;
    const reader = checkpointReader(store);
    // T1 begins first and does other work before appending.
    const t1 = await connect();
    await t1.query('begin');
    await t1.query('select 1');
    // T2 begins later, appends and commits.
    const t2 = await connect();
    await t2.query('begin');
    await rawAppend(t2, schema, 'early-1', 1);
    await t2.query('commit');
    expect((await reader.poll()).map((e) => e.streamId)).toEqual(['early-1']);
    // T1 appends and commits last: its events come after the checkpoint, not behind it.
    await rawAppend(t1, schema, 'late-1', 1);
    await t1.query('commit');
    expect((await reader.poll()).map((e) => [e.position, e.streamId])).toEqual([[2, 'late-1']]);
  });

  it('a rolled-back append gives its positions back: the log stays dense', async () => {
    const { store, schema } = t;
    const t1 = await connect();
    await t1.query('begin');
    await rawAppend(t1, schema, 'gone-1', 3);
    await t1.query('rollback');
    const result = await store.append('kept-1', [{ type: 'E', data: {} }]);
    expect(result.positions).toEqual([1]);
    expect(await store.getStream('gone-1')).toBeNull();
  });

  it('under concurrent writers with delays and rollbacks, a polling reader ends with exactly the committed events', async () => {
    const { store, schema } = t;
    const writers = 6;
    const rounds = 40;
    const committed = new Set<string>();
    const reader = checkpointReader(store);
    let writing = true;

    const rawWriter = async (w: number) => {
      const client = await connect();
      for (let round = 0; round < rounds; round++) {
        await client.query('begin');
        if (Math.random() < 0.5) await sleep(Math.random() * 4);
        const { outcome, ids } = await rawAppend(client, schema, `w${w}-${round % 5}`, 1 + (round % 3));
        expect(outcome?.outcome).toBe('ok');
        if (Math.random() < 0.3) await sleep(Math.random() * 3);
        if (Math.random() < 0.2) {
          await client.query('rollback');
        } else {
          await client.query('commit');
          for (const id of ids) committed.add(id);
        }
      }
    };
    // Appends through the store's coalescing path run beside the raw transactions.
    const storeWriter = async (w: number) => {
      for (let round = 0; round < rounds; round++) {
        const events = Array.from({ length: 1 + (round % 2) }, () => ({ type: 'S', data: { w } }));
        const ids = events.map(() => crypto.randomUUID());
        await store.append(
          `s${w}-${round % 7}`,
          events.map((e, i) => ({ ...e, id: ids[i] })),
        );
        for (const id of ids) committed.add(id);
        if (Math.random() < 0.3) await sleep(Math.random() * 2);
      }
    };
    const polling = (async () => {
      while (writing) {
        await reader.poll();
        await sleep(Math.random() * 3);
      }
    })();

    await Promise.all([
      ...Array.from({ length: writers }, (_, w) => rawWriter(w)),
      ...Array.from({ length: 4 }, (_, w) => Promise.all([storeWriter(w), storeWriter(w + 10)])),
    ]);
    writing = false;
    await polling;
    await reader.poll();

    const seenIds = reader.seen.map((e) => e.id);
    expect(new Set(seenIds).size).toBe(seenIds.length);
    expect(new Set(seenIds)).toEqual(committed);
    expect(reader.seen.map((e) => e.position)).toEqual(Array.from({ length: committed.size }, (_, i) => i + 1));
    expect(await store.headPosition()).toBe(committed.size);

    // Within each stream, versions are dense and grow with position.
    const byStream = new Map<string, number[]>();
    for (const event of reader.seen) {
      byStream.set(event.streamId, [...(byStream.get(event.streamId) ?? []), event.streamVersion]);
    }
    for (const versions of byStream.values()) {
      expect(versions).toEqual(Array.from({ length: versions.length }, (_, i) => i + 1));
    }
  });
});
