/** The store's contract, run on every backend. */
import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  ConcurrencyError,
  EventIdReusedError,
  type EventStore,
  type NewEvent,
  openEventStore,
  StoreClosedError,
  snapshots,
  toArray,
} from '../src/index.js';
import { backends, testSchema, useTestStore } from './support/backends.js';

const opened = (type: string, n: number): NewEvent[] =>
  Array.from({ length: n }, (_, i) => ({ type, data: { n: i + 1 } }));

describe.each(backends)('event store on $name', (backend) => {
  let store: EventStore;
  useTestStore(backend, (opened) => {
    store = opened.store;
  });

  describe('append', () => {
    it('stores events with dense versions and positions and returns them', async () => {
      const first = await store.append('account-1', opened('Deposited', 3), { expectedVersion: 'no-stream' });
      expect(first).toEqual({
        streamId: 'account-1',
        streamVersion: 3,
        positions: [1, 2, 3],
        duplicate: false,
        recordedAt: expect.any(Date),
      });
      const second = await store.append('account-2', opened('Deposited', 2));
      expect(second.positions).toEqual([4, 5]);
      const third = await store.append('account-1', opened('Withdrawn', 1), { expectedVersion: 3 });
      expect(third).toMatchObject({ streamVersion: 4, positions: [6] });

      const events = await toArray(store.readStream('account-1'));
      expect(events.map((e) => [e.streamVersion, e.position, e.type])).toEqual([
        [1, 1, 'Deposited'],
        [2, 2, 'Deposited'],
        [3, 3, 'Deposited'],
        [4, 6, 'Withdrawn'],
      ]);
      expect(await store.headPosition()).toBe(6);
    });

    it('keeps data, metadata, ids and the server time', async () => {
      const before = Date.now();
      const id = '0190a6f2-8c1e-7b3a-9f00-0123456789ab';
      await store.append('order-9', [
        {
          id,
          type: 'OrderPlaced',
          data: { lines: [{ sku: 'A', qty: 2 }], note: 'ünïcødé ✓ "quoted"', empty: {}, none: null },
          metadata: { actor: 'ada', correlationId: 'req-1', causationId: 'cmd-1', reason: 'PlaceOrder', extra: 1 },
        },
      ]);
      const [event] = await toArray(store.readStream('order-9'));
      expect(event).toMatchObject({
        id,
        type: 'OrderPlaced',
        streamId: 'order-9',
        data: { lines: [{ sku: 'A', qty: 2 }], note: 'ünïcødé ✓ "quoted"', empty: {}, none: null },
        metadata: { actor: 'ada', correlationId: 'req-1', causationId: 'cmd-1', reason: 'PlaceOrder', extra: 1 },
      });
      expect(event?.recordedAt).toBeInstanceOf(Date);
      expect(event?.recordedAt.getTime()).toBeGreaterThanOrEqual(before - 5_000);
    });

    it('generates time-ordered UUIDs when ids are not given', async () => {
      await store.append('s-1', opened('E', 3));
      const ids = (await toArray(store.readStream('s-1'))).map((e) => e.id);
      expect(new Set(ids).size).toBe(3);
      for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    });

    it.each([
      ['no-stream on an existing stream', 'no-stream', 2],
      ['an exact version behind', 1, 2],
      ['an exact version ahead', 5, 2],
      ['version 0 on an existing stream', 0, 2],
    ] as const)('rejects %s with a ConcurrencyError naming both versions', async (_, expected, actual) => {
      await store.append('acc-1', opened('E', 2));
      const error = await store.append('acc-1', opened('E', 1), { expectedVersion: expected }).catch((e) => e);
      expect(error).toBeInstanceOf(ConcurrencyError);
      expect(error).toMatchObject({ code: 'CONCURRENCY_CONFLICT', streamId: 'acc-1', expected, actual });
      expect(error.message).toContain(`actual version ${actual}`);
      expect((await store.getStream('acc-1'))?.version ?? 0).toBe(2);
      expect(await store.headPosition()).toBe(2);
    });

    it('checks stream-exists and no-stream', async () => {
      await expect(store.append('new-1', opened('E', 1), { expectedVersion: 'stream-exists' })).rejects.toMatchObject({
        code: 'CONCURRENCY_CONFLICT',
        actual: 0,
      });
      // The failed append leaves no trace, not even an empty stream head.
      expect(await store.getStream('new-1')).toBeNull();
      await store.append('new-1', opened('E', 1), { expectedVersion: 'no-stream' });
      await store.append('new-1', opened('E', 1), { expectedVersion: 'stream-exists' });
      await store.append('new-1', opened('E', 1), { expectedVersion: 'any' });
      expect((await store.getStream('new-1'))?.version ?? 0).toBe(3);
      await store.append('new-2', opened('E', 1), { expectedVersion: 0 });
      expect((await store.getStream('new-2'))?.version ?? 0).toBe(1);
    });

    it('returns the original result for a retried append and stores nothing twice', async () => {
      const events: NewEvent[] = [
        { id: '0190a6f2-0000-7000-8000-000000000001', type: 'A', data: { x: 1 } },
        { id: '0190a6f2-0000-7000-8000-000000000002', type: 'B', data: { y: [1, 2] } },
      ];
      const original = await store.append('idem-1', events, { expectedVersion: 'no-stream' });
      await store.append('other-1', opened('E', 1));
      // Same ids, same content, even with the now-stale expected version and upper-case ids.
      const retry = await store.append(
        'idem-1',
        events.map((e) => ({ ...e, id: e.id?.toUpperCase() })),
        { expectedVersion: 'no-stream' },
      );
      expect(retry).toEqual({ ...original, duplicate: true });
      expect(await store.headPosition()).toBe(3);
      expect((await toArray(store.readStream('idem-1'))).length).toBe(2);
    });

    it('rejects a reused event id with other content, and a partial overlap', async () => {
      const id = '0190a6f2-0000-7000-8000-0000000000aa';
      await store.append('idem-2', [{ id, type: 'A', data: { x: 1 } }]);
      await expect(store.append('idem-2', [{ id, type: 'A', data: { x: 2 } }])).rejects.toBeInstanceOf(
        EventIdReusedError,
      );
      await expect(store.append('idem-3', [{ id, type: 'A', data: { x: 1 } }])).rejects.toMatchObject({
        code: 'EVENT_ID_REUSED',
        streamId: 'idem-3',
      });
      await expect(
        store.append('idem-2', [
          { id, type: 'A', data: { x: 1 } },
          { type: 'B', data: {} },
        ]),
      ).rejects.toMatchObject({ code: 'EVENT_ID_REUSED' });
      expect(await store.headPosition()).toBe(1);
    });

    it('appends to several streams atomically', async () => {
      await store.append('acct-a', opened('E', 2));
      const results = await store.appendMulti([
        { streamId: 'acct-a', events: opened('Debited', 1), expectedVersion: 2 },
        { streamId: 'acct-b', events: opened('Credited', 2), expectedVersion: 'no-stream' },
      ]);
      expect(results.map((r) => [r.streamId, r.streamVersion, r.positions])).toEqual([
        ['acct-a', 3, [3]],
        ['acct-b', 2, [4, 5]],
      ]);
      // One stale expected version fails the whole append, naming the stream at fault.
      const error = await store
        .appendMulti([
          { streamId: 'acct-a', events: opened('Debited', 1), expectedVersion: 3 },
          { streamId: 'acct-b', events: opened('Credited', 1), expectedVersion: 1 },
          { streamId: 'acct-c', events: opened('Credited', 1), expectedVersion: 'no-stream' },
        ])
        .catch((e) => e);
      expect(error).toMatchObject({ code: 'CONCURRENCY_CONFLICT', streamId: 'acct-b', expected: 1, actual: 2 });
      expect((await store.getStream('acct-a'))?.version ?? 0).toBe(3);
      expect((await store.getStream('acct-b'))?.version ?? 0).toBe(2);
      expect(await store.getStream('acct-c')).toBeNull();
      expect(await store.headPosition()).toBe(5);
    });

    it('takes the largest allowed append in one piece', async () => {
      const events = Array.from({ length: 10_000 }, (_, i) => ({
        type: 'Imported',
        data: { i, text: 'x'.repeat(100) },
      }));
      const result = await store.append('bulk-1', events, { expectedVersion: 'no-stream' });
      expect(result.streamVersion).toBe(10_000);
      expect(result.positions).toHaveLength(10_000);
      let count = 0;
      for await (const event of store.readStream('bulk-1', { pageSize: 3000 })) {
        count++;
        expect(event.streamVersion).toBe(count);
      }
      expect(count).toBe(10_000);
    });

    it('gives each coalesced append its own outcome', async () => {
      await store.append('hot-1', opened('E', 1));
      const results = await Promise.allSettled([
        store.append('hot-1', opened('E', 1), { expectedVersion: 1 }),
        store.append('cold-1', opened('E', 1), { expectedVersion: 'no-stream' }),
        store.append('hot-1', opened('E', 1), { expectedVersion: 1 }),
        store.append('cold-2', opened('E', 2), { expectedVersion: 7 }),
        store.append('cold-3', opened('E', 1)),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected', 'fulfilled']);
      // Those stored are reported as stored, not as duplicates of themselves.
      for (const r of results) if (r.status === 'fulfilled') expect(r.value.duplicate).toBe(false);
      expect(await store.headPosition()).toBe(4);
      const positions = (await toArray(store.readAll())).map((e) => e.position);
      expect(positions).toEqual([1, 2, 3, 4]);
    });
  });

  describe('readStream', () => {
    beforeEach(async () => {
      await store.append('r-1', opened('E', 25));
      await store.append('r-2', opened('E', 1));
    });

    it('pages forward and backward, from a version, with a limit', async () => {
      const versions = async (options: Parameters<EventStore['readStream']>[1]) =>
        (await toArray(store.readStream('r-1', options))).map((e) => e.streamVersion);
      expect(await versions({ pageSize: 4 })).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
      expect(await versions({ fromVersion: 20, pageSize: 2 })).toEqual([20, 21, 22, 23, 24, 25]);
      expect(await versions({ fromVersion: 3, limit: 3, pageSize: 2 })).toEqual([3, 4, 5]);
      expect(await versions({ direction: 'backward', limit: 3 })).toEqual([25, 24, 23]);
      expect(await versions({ direction: 'backward', fromVersion: 4, pageSize: 3 })).toEqual([4, 3, 2, 1]);
      expect(await versions({ fromVersion: 26 })).toEqual([]);
      expect(await versions({ limit: 0 })).toEqual([]);
      expect(await toArray(store.readStream('missing-1'))).toEqual([]);
    });

    it('reports version, existence and metadata', async () => {
      expect((await store.getStream('r-1'))?.version ?? 0).toBe(25);
      expect((await store.getStream('r-1'))?.exists ?? false).toBe(true);
      expect((await store.getStream('nope-1'))?.exists ?? false).toBe(false);
      expect((await store.getStream('nope-1'))?.version ?? 0).toBe(0);
      await store.setStreamMetadata('r-1', { owner: 'ada', tags: ['vip'] });
      const info = await store.getStream('r-1');
      expect(info).toMatchObject({
        streamId: 'r-1',
        version: 25,
        exists: true,
        metadata: { owner: 'ada', tags: ['vip'] },
      });
      expect(info?.createdAt).toBeInstanceOf(Date);
      expect(info?.lastEventAt?.getTime()).toBeGreaterThanOrEqual(info?.createdAt?.getTime() ?? 0);
      expect(await store.getStream('r-2')).toMatchObject({ version: 1, metadata: {} });
      // Metadata on a stream without events yet does not make it exist.
      await store.setStreamMetadata('later-1', { maxAge: 3600 });
      expect(await store.getStream('later-1')).toMatchObject({
        version: 0,
        exists: false,
        metadata: { maxAge: 3600 },
        createdAt: null,
      });
      await store.append('later-1', opened('E', 1), { expectedVersion: 'no-stream' });
      expect(await store.getStream('later-1')).toMatchObject({ version: 1, exists: true, metadata: { maxAge: 3600 } });
    });
  });

  describe('readAll', () => {
    beforeEach(async () => {
      await store.append('account-1', [{ type: 'Opened', data: {} }]);
      await store.append('order-1', [{ type: 'Placed', data: {} }]);
      await store.append('account-2', [
        { type: 'Opened', data: {} },
        { type: 'Deposited', data: {} },
      ]);
      await store.append('account', [{ type: 'Deposited', data: {} }]);
      await store.append('orders-1', [{ type: 'Placed', data: {} }]);
    });

    const read = async (s: EventStore, options: Parameters<EventStore['readAll']>[0]) =>
      (await toArray(s.readAll(options))).map((e) => e.position);

    it('reads the global log in position order after a checkpoint', async () => {
      expect(await read(store, {})).toEqual([1, 2, 3, 4, 5, 6]);
      expect(await read(store, { after: 4 })).toEqual([5, 6]);
      expect(await read(store, { after: 1, limit: 2 })).toEqual([2, 3]);
      expect(await read(store, { pageSize: 1 })).toEqual([1, 2, 3, 4, 5, 6]);
      expect(await read(store, { after: 6 })).toEqual([]);
      expect(await read(store, { after: 1000 })).toEqual([]);
    });

    it('filters by category (the stream id up to the first "-") and by event type', async () => {
      expect(await read(store, { categories: ['account'] })).toEqual([1, 3, 4, 5]);
      expect(await read(store, { categories: ['order'] })).toEqual([2]);
      expect(await read(store, { categories: ['order', 'orders'] })).toEqual([2, 6]);
      expect(await read(store, { eventTypes: ['Deposited'] })).toEqual([4, 5]);
      expect(await read(store, { categories: ['account'], eventTypes: ['Opened'], pageSize: 1 })).toEqual([1, 3]);
      expect(await read(store, { categories: ['account'], after: 3 })).toEqual([4, 5]);
    });

    it('any filter, checkpoint and page size reads exactly the matching events, in order', async () => {
      // 60 more events over 3 categories and 4 types, some rare, after the 6 above.
      const streams = ['account-9', 'order-9', 'cart-9'];
      const types = ['Deposited', 'Placed', 'Rare', 'Opened'];
      for (let i = 0; i < 60; i++) {
        const type = i % 17 === 0 ? 'Rare' : (types[i % 3] as string);
        await store.append(streams[(i * 7) % 3] as string, [{ type, data: { i } }]);
      }
      const all = await toArray(store.readAll());
      await fc.assert(
        fc.asyncProperty(
          fc.option(fc.subarray(['account', 'order', 'cart', 'orders', 'none'], { minLength: 1 }), { nil: undefined }),
          fc.option(fc.subarray([...types, 'Missing'], { minLength: 1 }), { nil: undefined }),
          fc.integer({ min: 0, max: 70 }),
          fc.integer({ min: 1, max: 9 }),
          async (categories, eventTypes, after, pageSize) => {
            const expected = all
              .filter(
                (e) =>
                  e.position > after &&
                  (!categories || categories.includes(e.streamId.split('-')[0] as string)) &&
                  (!eventTypes || eventTypes.includes(e.type)),
              )
              .map((e) => e.position);
            expect(await read(store, { categories, eventTypes, after, pageSize })).toEqual(expected);
          },
        ),
        { numRuns: 40 },
      );
    });
  });

  it('loads a stream for folding: the snapshot and the events after it, paged, up to a version', async () => {
    const small = await openEventStore({
      client: backend.client(),
      closeClient: false,
      schema: testSchema(backend),
      pageSize: 2,
    });
    try {
      await small.append('fold-1', opened('E', 7));
      const all = await snapshots(small).loadStream('fold-1');
      expect(all.snapshot).toBeNull();
      expect((await toArray(all.events)).map((e) => e.streamVersion)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      await snapshots(small).save({
        streamId: 'fold-1',
        decider: 'd',
        modelVersion: 3,
        streamVersion: 2,
        state: { n: 2 },
      });
      const after = await snapshots(small).loadStream('fold-1', {
        snapshotOf: { decider: 'd', modelVersion: 3 },
        toVersion: 6,
      });
      expect(after.snapshot).toMatchObject({ streamVersion: 2, state: { n: 2 } });
      expect((await toArray(after.events)).map((e) => e.streamVersion)).toEqual([3, 4, 5, 6]);
      const otherModel = await snapshots(small).loadStream('fold-1', { snapshotOf: { decider: 'd', modelVersion: 4 } });
      expect(otherModel.snapshot).toBeNull();
      const below = await snapshots(small).loadStream('fold-1', {
        snapshotOf: { decider: 'd', modelVersion: 3 },
        toVersion: 1,
      });
      expect(below.snapshot).toBeNull();
      expect((await toArray(below.events)).map((e) => e.streamVersion)).toEqual([1]);
    } finally {
      await small.close();
      await backend.client().exec(`drop schema "${small.options.schema}" cascade`);
    }
  });

  it('refuses work after close', async () => {
    await store.close();
    await expect(store.append('s-1', opened('E', 1))).rejects.toBeInstanceOf(StoreClosedError);
    await expect(store.headPosition()).rejects.toMatchObject({ code: 'STORE_CLOSED' });
  });
});
