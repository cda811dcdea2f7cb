/**
 * Stream lifecycle without rewriting history: soft delete, tombstone and archive, through
 * every read path (readStream, getStream, readAll, getEvent, subscriptions, projections, time
 * travel, the audit trail, command loads) and the concurrency checks of appends; the seals
 * verify after each. On PostgreSQL, a delete racing an append is always one order or the other.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import {
  auditTrail,
  type Command,
  ConcurrencyError,
  createPostgresClient,
  type Decider,
  type DomainEvent,
  type EventStore,
  InvalidInputError,
  integrity,
  lifecycle,
  lifecycleStream,
  openEventStore,
  type Projection,
  projections,
  type RecordedEvent,
  type SqlQueryable,
  StreamArchivedError,
  StreamDeletedError,
  StreamMetadataChangedError,
  StreamTombstonedError,
  snapshots,
  subscriptions,
  timeTravel,
  toArray,
  transfer,
} from '../src/index.js';
import { appendEvents } from '../src/queries/append-events.js';
import { prepareWrites } from '../src/validation.js';
import {
  backends,
  databaseUrl,
  openTestStore,
  postgresBackend,
  rawConnection,
  type TestBackend,
  waitUntil,
} from './support/backends.js';

const event = (n: number) => ({ type: 'Deposited', data: { n }, metadata: { actor: 'teller' } });
const events = (...ns: number[]) => ns.map(event);
const versions = (list: RecordedEvent[]) => list.map((e) => e.streamVersion);
const streamsOf = (list: RecordedEvent[]) => [...new Set(list.map((e) => e.streamId))];
const by = { reason: 'closed by request #881', actor: 'support@example.com' };

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

async function verified(store: EventStore): Promise<boolean> {
  await integrity(store).seal();
  const report = await integrity(store).verify();
  return report.ok && report.brokenCount === 0 && report.unsealed === 0;
}

/** Counts the events it folds and remembers their versions. */
const counter: Decider<Command, DomainEvent, { count: number; versions: number[] }> = {
  initialState: () => ({ count: 0, versions: [] }),
  evolve: (state, e) => ({ count: state.count + 1, versions: [...state.versions, (e.data as { n: number }).n] }),
  decide: () => [],
};

describe.each(backends)('stream lifecycle on $name', (backend: TestBackend) => {
  it('a soft delete hides a stream from every read path, keeps its events, and an append re-opens it', async () => {
    const t = await openTestStore(backend);
    try {
      const { store } = t;
      await store.append('account-1', events(1, 2, 3), { expectedVersion: 'no-stream' });
      await store.append('account-2', events(1));
      const [first] = await toArray(store.readStream('account-1'));

      const deleted = await lifecycle(store).delete('account-1', by);
      expect(deleted).toEqual({
        streamId: 'account-1',
        state: 'deleted',
        previousState: 'active',
        changed: true,
        streamVersion: 3,
        truncateBefore: 4,
        position: 5,
      });
      expect(await lifecycle(store).delete('account-1', by)).toMatchObject({ changed: false, position: null });

      // readStream answers deleted; includeDeleted shows the events, which are all still stored.
      const error = await rejection(toArray(store.readStream('account-1')));
      expect(error).toBeInstanceOf(StreamDeletedError);
      expect(error).toMatchObject({ code: 'STREAM_DELETED', streamId: 'account-1', tombstoned: false });
      expect(versions(await toArray(store.readStream('account-1', { includeDeleted: true })))).toEqual([1, 2, 3]);
      expect(await store.getStream('account-1')).toMatchObject({ version: 3, state: 'deleted', truncateBefore: 4 });
      // Command loads answer deleted too.
      expect(await rejection(snapshots(store).loadStream('account-1'))).toBeInstanceOf(StreamDeletedError);
      // getEvent finds any stored event by id.
      expect((await store.getEvent((first as RecordedEvent).id))?.streamId).toBe('account-1');

      // readAll skips it unless asked; the record of the delete is in the log.
      const log = await toArray(store.readAll());
      expect(streamsOf(log)).toEqual(['account-2', lifecycleStream]);
      expect(log.at(-1)).toMatchObject({
        type: 'StreamDeleted',
        data: { streamId: 'account-1', previousState: 'active', streamVersion: 3, truncateBefore: 4 },
        metadata: { actor: 'support@example.com', reason: 'closed by request #881' },
      });
      expect((await toArray(store.readAll({ includeDeleted: true }))).length).toBe(5);
      expect(await toArray(store.readAll({ streamIds: ['account-1'] }))).toEqual([]);
      expect(await toArray(store.readAll({ categories: ['account'] }))).toHaveLength(1);
      expect(await toArray(store.readAll({ eventTypes: ['Deposited'] }))).toHaveLength(1);

      // An exact version or stream-exists is refused; nothing is stored.
      for (const expectedVersion of [3, 0, 'stream-exists'] as const) {
        const refused = await rejection(store.append('account-1', events(9), { expectedVersion }));
        expect(refused).toBeInstanceOf(StreamDeletedError);
      }
      const multi = await rejection(
        store.appendMulti([
          { streamId: 'account-2', events: events(9), expectedVersion: 1 },
          { streamId: 'account-1', events: events(9), expectedVersion: 3 },
        ]),
      );
      expect(multi).toMatchObject({ code: 'STREAM_DELETED', streamId: 'account-1' });
      expect(await store.headPosition()).toBe(5);

      // no-stream re-opens it at the next version; the old events stay hidden.
      const reopened = await store.append('account-1', events(4), { expectedVersion: 'no-stream' });
      expect(reopened.streamVersion).toBe(4);
      expect(await store.getStream('account-1')).toMatchObject({ version: 4, state: 'active', truncateBefore: 4 });
      expect(versions(await toArray(store.readStream('account-1')))).toEqual([4]);
      expect(versions(await toArray(store.readStream('account-1', { direction: 'backward' })))).toEqual([4]);
      expect(versions(await toArray(store.readStream('account-1', { includeDeleted: true })))).toEqual([1, 2, 3, 4]);
      expect(versions(await toArray(store.readAll({ streamIds: ['account-1'] })))).toEqual([4]);
      // Exact versions work again from the re-opened head.
      await store.append('account-1', events(5), { expectedVersion: 4 });
      const loaded = await snapshots(store).loadStream('account-1');
      expect(versions(await toArray(loaded.events))).toEqual([4, 5]);

      // Time travel folds the stream's visible history.
      const travel = timeTravel(store, counter);
      expect((await travel.stateAt('account-1', { version: 5 })).state).toEqual({ count: 2, versions: [4, 5] });

      // The audit trail shows every event, and who deleted it and why.
      expect((await toArray(auditTrail(store).history('account-1'))).map((e) => e.streamVersion)).toEqual([
        1, 2, 3, 4, 5,
      ]);
      const [record] = await toArray(auditTrail(store).history(lifecycleStream));
      expect(record).toMatchObject({ type: 'StreamDeleted', actor: 'support@example.com', reason: by.reason });
      expect((await toArray(auditTrail(store).byActor('support@example.com'))).map((e) => e.type)).toEqual([
        'StreamDeleted',
      ]);

      expect(await verified(store)).toBe(true);
    } finally {
      await t.cleanup();
    }
  });

  it('an append with "any" re-opens a deleted stream; a delete with a stale expected version changes nothing', async () => {
    const t = await openTestStore(backend);
    try {
      const { store } = t;
      await store.append('cart-1', events(1, 2));
      const stale = await rejection(lifecycle(store).delete('cart-1', { ...by, expectedVersion: 1 }));
      expect(stale).toBeInstanceOf(ConcurrencyError);
      expect(stale).toMatchObject({ expected: 1, actual: 2 });
      expect(await store.getStream('cart-1')).toMatchObject({ state: 'active', truncateBefore: 0 });
      expect(await store.headPosition()).toBe(2);

      await lifecycle(store).delete('cart-1', { ...by, expectedVersion: 2 });
      expect((await store.append('cart-1', events(3), { expectedVersion: 'any' })).streamVersion).toBe(3);
      expect(versions(await toArray(store.readStream('cart-1')))).toEqual([3]);
      // A stream deleted again hides everything up to its new head.
      await lifecycle(store).delete('cart-1', { ...by, expectedVersion: 'stream-exists' });
      expect(await store.getStream('cart-1')).toMatchObject({ version: 3, state: 'deleted', truncateBefore: 4 });
      expect(await verified(store)).toBe(true);
    } finally {
      await t.cleanup();
    }
  });

  it('a tombstone refuses every later append and change; reads answer deleted', async () => {
    const t = await openTestStore(backend);
    try {
      const { store } = t;
      await store.append('order-1', events(1, 2));
      await store.append('order-2', events(1));
      const result = await lifecycle(store).tombstone('order-1', { reason: 'retention over', expectedVersion: 2 });
      expect(result).toMatchObject({ state: 'tombstoned', changed: true, streamVersion: 2, truncateBefore: 3 });
      const head = await store.headPosition();

      for (const expectedVersion of ['any', 'no-stream', 'stream-exists', 2] as const) {
        expect(await rejection(store.append('order-1', events(3), { expectedVersion }))).toBeInstanceOf(
          StreamTombstonedError,
        );
      }
      const multi = await rejection(
        store.appendMulti([
          { streamId: 'order-2', events: events(2) },
          { streamId: 'order-1', events: events(3) },
        ]),
      );
      expect(multi).toMatchObject({ code: 'STREAM_TOMBSTONED', streamId: 'order-1' });
      // A bulk import refuses it too.
      const line = (streamVersion: number) =>
        `{"id":"0b9e3c4e-0000-4000-8000-00000000000${streamVersion}","streamId":"order-1","streamVersion":${streamVersion},"type":"Deposited","data":{},"metadata":{},"recordedAt":"2025-01-01T10:00:00Z"}\n`;
      const imported = await rejection(transfer(store).import(line(3), { mode: 'append', seal: false }));
      expect(imported).toMatchObject({ code: 'INVALID_INPUT', field: 'line 1.streamId' });
      expect(String((imported as Error).message)).toContain('tombstoned');
      for (const change of ['delete', 'tombstone', 'archive', 'unarchive'] as const) {
        expect(await rejection(lifecycle(store)[change]('order-1', by))).toBeInstanceOf(StreamTombstonedError);
      }
      expect(await store.headPosition()).toBe(head);

      const error = await rejection(toArray(store.readStream('order-1')));
      expect(error).toMatchObject({ code: 'STREAM_DELETED', tombstoned: true });
      expect(versions(await toArray(store.readStream('order-1', { includeDeleted: true })))).toEqual([1, 2]);
      expect(await store.getStream('order-1')).toMatchObject({ version: 2, state: 'tombstoned' });
      expect(streamsOf(await toArray(store.readAll()))).toEqual(['order-2', lifecycleStream]);

      // A name never used can be tombstoned too: it is reserved for good.
      await lifecycle(store).tombstone('order-3', { reason: 'reserved' });
      expect(await store.getStream('order-3')).toMatchObject({ version: 0, exists: false, state: 'tombstoned' });
      expect(await rejection(store.append('order-3', events(1), { expectedVersion: 'no-stream' }))).toBeInstanceOf(
        StreamTombstonedError,
      );
      expect(await verified(store)).toBe(true);
    } finally {
      await t.cleanup();
    }
  });

  it('an archived stream is kept, hidden from default reads, subscriptions and projections, and refuses appends', async () => {
    const t = await openTestStore(backend);
    try {
      const { store } = t;
      await store.append('ledger-1', events(1, 2));
      await store.append('ledger-2', events(1));
      const seen: RecordedEvent[] = [];
      const live = subscriptions(store).subscribe({ handler: (page) => void seen.push(...page) });
      await live.waitFor(await store.headPosition());

      const archived = await lifecycle(store).archive('ledger-1', { reason: 'closed books of 2019' });
      expect(archived).toMatchObject({ state: 'archived', changed: true, truncateBefore: 0 });
      expect(await lifecycle(store).archive('ledger-1', by)).toMatchObject({ changed: false });

      expect(await rejection(toArray(store.readStream('ledger-1')))).toBeInstanceOf(StreamArchivedError);
      expect(versions(await toArray(store.readStream('ledger-1', { includeArchived: true })))).toEqual([1, 2]);
      // includeDeleted is not includeArchived.
      expect(await rejection(toArray(store.readStream('ledger-1', { includeDeleted: true })))).toBeInstanceOf(
        StreamArchivedError,
      );
      expect(await store.getStream('ledger-1')).toMatchObject({ version: 2, state: 'archived' });
      expect(streamsOf(await toArray(store.readAll()))).toEqual(['ledger-2', lifecycleStream]);
      expect(streamsOf(await toArray(store.readAll({ includeArchived: true })))).toEqual([
        'ledger-1',
        'ledger-2',
        lifecycleStream,
      ]);
      expect(await rejection(store.append('ledger-1', events(3)))).toBeInstanceOf(StreamArchivedError);

      // A live subscription gets the record, not the archived events again; a new one catching
      // up from the start skips them.
      await live.waitFor(await store.headPosition());
      await live.stop();
      expect(seen.map((e) => e.type)).toEqual(['Deposited', 'Deposited', 'Deposited', 'StreamArchived']);
      const later: RecordedEvent[] = [];
      const fresh = subscriptions(store).subscribe({ handler: (page) => void later.push(...page) });
      await fresh.waitFor(await store.headPosition());
      await fresh.stop();
      expect(streamsOf(later)).toEqual(['ledger-2', lifecycleStream]);

      // A projection built now leaves it out.
      const folded: string[] = [];
      const projection: Projection = {
        name: 'ledgers',
        eventTypes: ['Deposited'],
        handleBatch: async (batch) => void folded.push(...batch.map((e) => e.streamId)),
      };
      await projections(store).rebuild(projection);
      expect(folded).toEqual(['ledger-2']);

      // A soft-deleted stream cannot be archived.
      await store.append('ledger-3', events(1));
      await lifecycle(store).delete('ledger-3', by);
      expect(await rejection(lifecycle(store).archive('ledger-3', by))).toBeInstanceOf(StreamDeletedError);

      // Unarchived, it is back: readable, in the log, writable.
      expect(await lifecycle(store).unarchive('ledger-1', { reason: 'audit of 2019' })).toMatchObject({
        state: 'active',
        previousState: 'archived',
        changed: true,
      });
      expect(await lifecycle(store).unarchive('ledger-2', by)).toMatchObject({ state: 'active', changed: false });
      expect(versions(await toArray(store.readStream('ledger-1')))).toEqual([1, 2]);
      expect((await store.append('ledger-1', events(3), { expectedVersion: 2 })).streamVersion).toBe(3);
      folded.length = 0;
      await projections(store).rebuild({ ...projection, version: 2 });
      expect(folded).toEqual(['ledger-1', 'ledger-1', 'ledger-2', 'ledger-1']);

      expect(
        (await toArray(auditTrail(store).history(lifecycleStream))).map((e) => [e.type, e.reason, e.actor]),
      ).toEqual([
        ['StreamArchived', 'closed books of 2019', undefined],
        ['StreamDeleted', by.reason, by.actor],
        ['StreamUnarchived', 'audit of 2019', undefined],
      ]);
      expect(await verified(store)).toBe(true);
    } finally {
      await t.cleanup();
    }
  });

  it('retention hides older events from reads of the stream; truncateBefore also from the log', async () => {
    const t = await openTestStore(backend);
    try {
      const { store } = t;
      for (let n = 1; n <= 6; n++) await store.append('sensor-1', events(n));
      await store.append('sensor-2', events(1));
      const facet = lifecycle(store);

      const kept = await facet.setRetention('sensor-1', { maxCount: 2, reason: 'keep the last two', actor: 'ops' });
      expect(kept).toMatchObject({ changed: true, maxCount: 2, maxAge: null, truncateBefore: 0, streamVersion: 6 });
      expect(await store.getStream('sensor-1')).toMatchObject({
        version: 6,
        state: 'active',
        retention: { maxCount: 2, maxAge: null },
      });
      expect(versions(await toArray(store.readStream('sensor-1')))).toEqual([5, 6]);
      expect(versions(await toArray(store.readStream('sensor-1', { direction: 'backward' })))).toEqual([6, 5]);
      expect(versions(await toArray(store.readStream('sensor-1', { includeDeleted: true })))).toHaveLength(6);
      // The window moves with the stream; a command load and time travel fold only the window.
      await store.append('sensor-1', events(7), { expectedVersion: 6 });
      expect(versions(await toArray(store.readStream('sensor-1')))).toEqual([6, 7]);
      expect(versions(await toArray((await snapshots(store).loadStream('sensor-1')).events))).toEqual([6, 7]);
      expect((await timeTravel(store, counter).stateAt('sensor-1', { version: 7 })).state.versions).toEqual([6, 7]);
      // The global log and its workers are not cut by a moving window.
      expect(versions(await toArray(store.readAll({ streamIds: ['sensor-1'] })))).toHaveLength(7);

      // maxAge: everything recorded more than a second ago is hidden.
      await facet.setRetention('sensor-2', { maxAge: 1, reason: 'fresh only' });
      expect(versions(await toArray(store.readStream('sensor-2')))).toEqual([1]);
      await waitUntil(async () => (await toArray(store.readStream('sensor-2'))).length === 0, {
        timeoutMs: 5000,
        message: 'the event ages out of the window',
      });
      expect(versions(await toArray(store.readStream('sensor-2', { includeDeleted: true })))).toEqual([1]);
      await store.append('sensor-2', events(2));
      expect(versions(await toArray(store.readStream('sensor-2')))).toEqual([2]);

      // truncateBefore hides from the log as well, is only raised, and not past the head + 1.
      await facet.setRetention('sensor-1', { maxCount: null, truncateBefore: 4, reason: 'cut' });
      expect(versions(await toArray(store.readStream('sensor-1')))).toEqual([4, 5, 6, 7]);
      expect(versions(await toArray(store.readAll({ streamIds: ['sensor-1'] })))).toEqual([4, 5, 6, 7]);
      expect(await facet.setRetention('sensor-1', { truncateBefore: 2, reason: 'lower' })).toMatchObject({
        changed: false,
        truncateBefore: 4,
        position: null,
      });
      const beyond = await rejection(facet.setRetention('sensor-1', { truncateBefore: 9, reason: 'too far' }));
      expect(beyond).toMatchObject({ code: 'INVALID_INPUT', field: 'settings.truncateBefore' });
      expect(await rejection(facet.setRetention('sensor-1', { maxCount: 0, reason: 'x' }))).toMatchObject({
        field: 'settings.maxCount',
      });
      await facet.tombstone('sensor-2', by);
      expect(await rejection(facet.setRetention('sensor-2', { maxCount: 5, reason: 'x' }))).toBeInstanceOf(
        StreamTombstonedError,
      );

      const records = await toArray(auditTrail(store).history(lifecycleStream));
      expect(records.filter((e) => e.type === 'StreamRetentionSet').map((e) => [e.reason, e.actor])).toEqual([
        ['keep the last two', 'ops'],
        ['fresh only', undefined],
        ['cut', undefined],
      ]);
      expect(records.find((e) => e.type === 'StreamRetentionSet')?.data).toEqual({
        streamId: 'sensor-1',
        maxCount: 2,
        maxAge: null,
        truncateBefore: 0,
        streamVersion: 6,
      });
      expect(await verified(store)).toBe(true);
    } finally {
      await t.cleanup();
    }
  });

  it('retention with metadata: replaced only if still as expected, else nothing of the change is stored', async () => {
    const t = await openTestStore(backend);
    try {
      const { store } = t;
      await store.append('meta-1', events(1, 2, 3));
      const facet = lifecycle(store);
      await facet.setRetention('meta-1', {
        maxCount: 2,
        reason: 'first',
        metadata: { from: {}, to: { owner: 'ops', n: 1 } },
      });
      expect(await store.getStream('meta-1')).toMatchObject({
        metadata: { owner: 'ops', n: 1 },
        retention: { maxCount: 2 },
      });
      // Key order does not matter: compared as JSON.
      await facet.setRetention('meta-1', {
        maxCount: 1,
        reason: 'second',
        metadata: { from: { n: 1, owner: 'ops' }, to: { owner: 'ops', n: 2 } },
      });
      const stale = await rejection(
        facet.setRetention('meta-1', {
          maxCount: null,
          reason: 'stale',
          metadata: { from: { owner: 'ops', n: 1 }, to: {} },
        }),
      );
      expect(stale).toBeInstanceOf(StreamMetadataChangedError);
      expect(stale).toMatchObject({
        code: 'STREAM_METADATA_CHANGED',
        streamId: 'meta-1',
        actual: { owner: 'ops', n: 2 },
      });
      // Neither the retention nor the metadata of the refused change was stored, nor recorded.
      expect(await store.getStream('meta-1')).toMatchObject({
        metadata: { owner: 'ops', n: 2 },
        retention: { maxCount: 1 },
      });
      const records = await toArray(auditTrail(store).history(lifecycleStream));
      expect(records.map((e) => e.reason)).toEqual(['first', 'second']);
      // A stream without a row yet compares as {}.
      const fresh = await rejection(
        facet.setRetention('meta-none', { maxCount: 1, reason: 'x', metadata: { from: { a: 1 }, to: {} } }),
      );
      expect(fresh).toMatchObject({ code: 'STREAM_METADATA_CHANGED', actual: {} });
      for (const bad of [null, [], 'x']) {
        const refused = await rejection(
          facet.setRetention('meta-1', { reason: 'x', metadata: { from: bad as never, to: {} } }),
        );
        expect(refused).toBeInstanceOf(InvalidInputError);
      }
      expect(await store.getStream('meta-1')).toMatchObject({
        metadata: { owner: 'ops', n: 2 },
        retention: { maxCount: 1 },
      });
    } finally {
      await t.cleanup();
    }
  });

  it('refuses bad lifecycle input before any SQL', async () => {
    const t = await openTestStore(backend);
    try {
      const { store } = t;
      const facet = lifecycle(store);
      const bad: [Promise<unknown>, string][] = [
        [facet.delete('a-1', { reason: '' }), 'change.reason'],
        [facet.delete('a-1', {} as never), 'change.reason'],
        [facet.delete('a-1', { reason: 'x', actor: 7 as never }), 'change.actor'],
        [facet.delete('a-1', { reason: 'x', expectedVersion: 'no-stream' as never }), 'change.expectedVersion'],
        [facet.delete('a-1', { reason: 'x', expectedVersion: -4 as never }), 'change.expectedVersion'],
        [facet.archive('', { reason: 'x' }), 'streamId'],
        [facet.tombstone(lifecycleStream, { reason: 'x' }), 'streamId'],
      ];
      for (const [promise, field] of bad) {
        const error = await rejection(promise);
        expect(error).toBeInstanceOf(InvalidInputError);
        expect(error).toMatchObject({ field });
      }
      // Only lifecycle(store) writes the records: they cannot be forged by an append.
      const forged = await rejection(store.append(lifecycleStream, [{ type: 'StreamDeleted', data: {} }]));
      expect(forged).toMatchObject({ code: 'INVALID_INPUT', field: 'streamId' });
      const forgedMulti = await rejection(
        store.appendMulti([
          { streamId: 'a-1', events: events(1) },
          { streamId: lifecycleStream, events: events(1) },
        ]),
      );
      expect(forgedMulti).toMatchObject({ code: 'INVALID_INPUT', field: 'writes[1].streamId' });
      expect(() => store.readStream('a-1', { includeDeleted: 'yes' as never })).toThrow(InvalidInputError);
      expect(() => store.readAll({ includeArchived: 1 as never })).toThrow(InvalidInputError);
      expect(await store.headPosition()).toBe(0);
      expect(await store.getStream('a-1')).toBeNull();
    } finally {
      await t.cleanup();
    }
  });
});

/** Appends through the store's SQL on a connection the test controls (to hold a transaction open). */
async function rawAppend(client: pg.Client, schema: string, streamId: string, expectedVersion: number | 'any') {
  const db: SqlQueryable = {
    query: async (text, params) => (await client.query(text, params as unknown[])).rows,
    exec: async (script) => void (await client.query(script)),
  };
  const writes = prepareWrites([{ streamId, events: events(99), expectedVersion }], {
    maxEventBytes: 1 << 20,
    maxEventsPerAppend: 100,
    maxStreamIdLength: 256,
  });
  const [outcomes] = await appendEvents(db, schema, [writes]);
  return outcomes?.[0];
}

describe.runIf(databaseUrl)('stream lifecycle under concurrency on PostgreSQL', () => {
  it('retention changes with the same expected metadata on real connections: exactly one is stored', async () => {
    const t = await openTestStore(postgresBackend);
    const others = await Promise.all(
      Array.from({ length: 8 }, () =>
        openEventStore({
          client: createPostgresClient({ connectionString: databaseUrl as string, maxConnections: 1 }),
          schema: t.schema,
          migrate: false,
        }),
      ),
    );
    try {
      await t.store.append('meta-race', events(1, 2, 3, 4, 5));
      for (let round = 0; round < 5; round++) {
        const from = (await t.store.getStream('meta-race'))?.metadata ?? {};
        const outcomes = await Promise.allSettled(
          others.map((store, i) =>
            lifecycle(store).setRetention('meta-race', {
              maxCount: i + 1,
              reason: `writer ${i}`,
              metadata: { from, to: { round, writer: i } },
            }),
          ),
        );
        const won = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [i] : []));
        expect(won).toHaveLength(1);
        for (const o of outcomes) {
          if (o.status === 'rejected') expect(o.reason).toBeInstanceOf(StreamMetadataChangedError);
        }
        // The winner's metadata and its retention, never a mix of two writers.
        const winner = won[0] as number;
        expect(await t.store.getStream('meta-race')).toMatchObject({
          metadata: { round, writer: winner },
          retention: { maxCount: winner + 1 },
        });
      }
    } finally {
      await Promise.all(others.map((store) => store.close()));
      await t.cleanup();
    }
  });

  it('a delete waits for an open append to the stream, then hides it too', async () => {
    const t = await openTestStore(postgresBackend);
    const t1 = await rawConnection();
    try {
      const { store, schema } = t;
      await store.append('race-1', events(1));
      await t1.query('begin');
      expect(await rawAppend(t1, schema, 'race-1', 1)).toMatchObject({ outcome: 'ok', streamVersion: 2 });
      const pid = (await t1.query('select pg_backend_pid() as pid')).rows[0].pid;
      let done = false;
      const deleting = lifecycle(store)
        .delete('race-1', by)
        .finally(() => {
          done = true;
        });
      await waitUntil(
        async () =>
          (await t.client.query('select 1 from pg_stat_activity where $1 = any(pg_blocking_pids(pid))', [pid])).length >
          0,
        { message: 'the delete waits for the open append' },
      );
      expect(done).toBe(false);
      await t1.query('commit');
      expect(await deleting).toMatchObject({ streamVersion: 2, truncateBefore: 3 });
      expect(await toArray(store.readAll({ streamIds: ['race-1'] }))).toEqual([]);
      expect(await verified(store)).toBe(true);
    } finally {
      await t1.end();
      await t.cleanup();
    }
  });

  it('deletes racing appends on real connections end in one order or the other, never half', async () => {
    const t = await openTestStore(postgresBackend);
    try {
      const { store } = t;
      const rounds = 24;
      const outcomes = { appendFirst: 0, deleteFirst: 0 };
      await Promise.all(
        Array.from({ length: rounds }, async (_, i) => {
          const streamId = `race-${i}`;
          await store.append(streamId, events(1));
          // Half the appends expect the exact version (refused after a delete), half "any"
          // (which re-opens the stream after a delete).
          const expectedVersion = i % 2 === 0 ? 1 : 'any';
          const [appended, deleted] = await Promise.allSettled([
            store.append(streamId, events(2), { expectedVersion }),
            lifecycle(store).delete(streamId, by),
          ]);
          if (deleted.status !== 'fulfilled') throw deleted.reason;
          const info = await store.getStream(streamId);
          const visible = versions(await toArray(store.readAll({ streamIds: [streamId] })));
          if (deleted.value.streamVersion === 2) {
            // The append committed first: the delete hid it too.
            outcomes.appendFirst++;
            expect(appended.status).toBe('fulfilled');
            expect(deleted.value.truncateBefore).toBe(3);
            expect(info).toMatchObject({ version: 2, state: 'deleted' });
            expect(visible).toEqual([]);
          } else {
            // The delete committed first: the append saw a deleted stream.
            outcomes.deleteFirst++;
            expect(deleted.value).toMatchObject({ streamVersion: 1, truncateBefore: 2 });
            if (expectedVersion === 1) {
              expect(appended.status === 'rejected' && appended.reason).toBeInstanceOf(StreamDeletedError);
              expect(info).toMatchObject({ version: 1, state: 'deleted' });
              expect(visible).toEqual([]);
            } else {
              expect(appended.status === 'fulfilled' && appended.value.streamVersion).toBe(2);
              expect(info).toMatchObject({ version: 2, state: 'active', truncateBefore: 2 });
              expect(visible).toEqual([2]);
            }
          }
        }),
      );
      expect(outcomes.appendFirst + outcomes.deleteFirst).toBe(rounds);
      // Positions stay dense and every record is there, once.
      const all = await toArray(store.readAll({ includeDeleted: true }));
      expect(all.map((e) => e.position)).toEqual(all.map((_, i) => i + 1));
      expect(all.filter((e) => e.type === 'StreamDeleted')).toHaveLength(rounds);
      expect(await verified(store)).toBe(true);
    } finally {
      await t.cleanup();
    }
  });
});

void pg;
