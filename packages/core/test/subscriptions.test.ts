/** Subscriptions on every backend: catch-up then live, filters, backpressure, checkpoints, parking. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type EventStore,
  openEventStore,
  type RecordedEvent,
  type Subscription,
  type SubscriptionOptions,
  subscriptions,
} from '../src/index.js';
import {
  backends,
  databaseUrl,
  freshSchema,
  openTestStore,
  rawConnection,
  sleep,
  type TestStore,
  waitUntil,
} from './support/backends.js';

const events = (n: number, type = 'E') => Array.from({ length: n }, (_, i) => ({ type, data: { i } }));

describe.each(backends)('subscriptions on $name', (backend) => {
  let t: TestStore & { cleanup: () => Promise<void> };
  let store: EventStore;
  const running: Subscription[] = [];
  beforeEach(async () => {
    t = await openTestStore(backend);
    store = t.store;
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((s) => s.stop()));
    await t.cleanup();
  });
  const subscribe = (options: SubscriptionOptions) => {
    const subscription = subscriptions(store).subscribe(options);
    running.push(subscription);
    return subscription;
  };

  it('catches up from the start, then delivers new events live, each once and in order', async () => {
    await store.append('a-1', events(250));
    const seen: number[] = [];
    const subscription = subscribe({
      batchSize: 100,
      pollIntervalMs: 60_000,
      handler: (page) => {
        seen.push(...page.map((e) => e.position));
      },
    });
    await subscription.waitFor(250);
    await store.append('a-2', events(5));
    await store.append('a-3', events(5));
    // Live: woken by NOTIFY, not the (one-minute) poll.
    await subscription.waitFor(260);
    expect(seen).toEqual(Array.from({ length: 260 }, (_, i) => i + 1));
    expect((await subscription.status()).state).toBe('live');
  });

  it('starts at the end or after a position, and filters by category and event type', async () => {
    await store.append('order-1', events(3, 'Placed'));
    await store.append('account-1', events(3, 'Opened'));
    const fromEnd: RecordedEvent[] = [];
    const accounts: RecordedEvent[] = [];
    const tail = subscribe({ from: 'end', handler: (page) => void fromEnd.push(...page) });
    const oneStream: number[] = [];
    const byStream = subscribe({
      streamIds: ['order-2'],
      handler: (page) => void oneStream.push(...page.map((e) => e.position)),
    });
    const filtered = subscribe({
      from: { after: 1 },
      categories: ['account', 'order'],
      eventTypes: ['Placed', 'Shipped'],
      handler: (page) => void accounts.push(...page),
    });
    await tail.waitFor(6);
    await store.append('order-2', [{ type: 'Shipped', data: {} }]);
    await store.append('account-2', [{ type: 'Opened', data: {} }]);
    await Promise.all([tail.waitFor(8), filtered.waitFor(8), byStream.waitFor(8)]);
    expect(oneStream).toEqual([7]);
    expect(fromEnd.map((e) => e.position)).toEqual([7, 8]);
    expect(accounts.map((e) => [e.position, e.type])).toEqual([
      [2, 'Placed'],
      [3, 'Placed'],
      [7, 'Shipped'],
    ]);
  });

  it('waits for a slow handler: pages never overlap and never exceed the batch size', async () => {
    await store.append('s-1', events(95));
    let inHandler = 0;
    let maxInHandler = 0;
    const sizes: number[] = [];
    const subscription = subscribe({
      batchSize: 10,
      handler: async (page) => {
        inHandler++;
        maxInHandler = Math.max(maxInHandler, inHandler);
        sizes.push(page.length);
        await sleep(5);
        inHandler--;
      },
    });
    await subscription.waitFor(95);
    expect(maxInHandler).toBe(1);
    expect(Math.max(...sizes)).toBe(10);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(95);
  });

  it('catching up, reads the next page while the handler has one, and delivers each event once', async () => {
    // The store's client, with every read of a page of the log noted (the position it reads after).
    const readsAfter: number[] = [];
    const inner = t.client;
    const client = new Proxy(inner, {
      get(target, property) {
        if (property === 'query') {
          return (text: string, params?: readonly unknown[], options?: object) => {
            if (/\.events\s+where position > \$1/.test(text)) readsAfter.push(Number(params?.[0]));
            return target.query(text, params, options);
          };
        }
        const value = Reflect.get(target, property);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const schema = freshSchema();
    const own = await openEventStore({ client, closeClient: false, schema });
    try {
      await own.append('a-1', events(350));
      const seen: number[] = [];
      const subscription = subscriptions(own).subscribe({
        batchSize: 100,
        pollIntervalMs: 60_000,
        handler: async (page) => {
          const last = (page.at(-1) as RecordedEvent).position;
          // The read of the page after this one begins before this handler returns.
          if (last < 350) await waitUntil(() => readsAfter.includes(last), { timeoutMs: 2000 });
          seen.push(...page.map((e) => e.position));
        },
      });
      await subscription.waitFor(350);
      await own.append('a-2', events(3));
      await subscription.waitFor(353);
      await subscription.stop();
      expect(seen).toEqual(Array.from({ length: 353 }, (_, i) => i + 1));
      expect(readsAfter.slice(0, 4)).toEqual([0, 100, 200, 300]);
    } finally {
      await own.close();
      await inner.exec(`drop schema if exists "${schema}" cascade`);
    }
  });

  it('resumes a named subscription from its stored checkpoint', async () => {
    await store.append('s-1', events(10));
    const first: number[] = [];
    const one = subscribe({ name: 'resumer', handler: (page) => void first.push(...page.map((e) => e.position)) });
    await one.waitFor(10);
    await one.stop();
    await store.append('s-1', events(5));
    const second: number[] = [];
    const two = subscribe({ name: 'resumer', handler: (page) => void second.push(...page.map((e) => e.position)) });
    await two.waitFor(15);
    expect(first).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(second).toEqual([11, 12, 13, 14, 15]);
  });

  it('keeps the starting point of a named subscription that began at the end, even before any event', async () => {
    await store.append('e-1', events(3));
    const first = subscribe({ name: 'late-joiner', from: 'end', handler: () => {} });
    await first.waitFor(3);
    await first.stop();
    await store.append('e-1', events(2));
    const seen: number[] = [];
    const second = subscribe({
      name: 'late-joiner',
      from: 'end',
      handler: (p) => void seen.push(...p.map((e) => e.position)),
    });
    await second.waitFor(5);
    expect(seen).toEqual([4, 5]);
  });

  it('retries, then parks an event that keeps failing and goes on; parked events can be replayed', async () => {
    await store.append('p-1', events(6));
    const delivered: number[] = [];
    let calls = 0;
    const subscription = subscribe({
      name: 'parker',
      retry: { attempts: 3, backoffMs: 1 },
      handler: (page) => {
        calls++;
        if (page.some((e) => e.position === 4)) throw new Error('cannot handle 4');
        delivered.push(...page.map((e) => e.position));
      },
    });
    await subscription.waitFor(6);
    expect(delivered).toEqual([1, 2, 3, 5, 6]);
    expect(calls).toBeGreaterThanOrEqual(6);
    const parked = await subscriptions(store).parked('parker');
    expect(parked).toMatchObject([{ position: 4, attempts: 3, error: 'cannot handle 4' }]);
    const status = await subscription.status();
    expect(status).toMatchObject({ position: 6, lag: 0, parked: 1, lastError: 'cannot handle 4' });
    await subscription.stop();
    await store.append('p-2', events(2));
    const [stored] = await subscriptions(store).checkpoints();
    expect(stored).toMatchObject({ name: 'parker', position: 6, lag: 2, parked: 1 });
    expect(stored?.lagSeconds).toBeGreaterThanOrEqual(0);
    expect(stored?.lagSeconds).toBeLessThan(60);

    const replayedEvents: number[] = [];
    expect(await subscriptions(store).replayParked('parker', (e) => void replayedEvents.push(e.position))).toEqual({
      replayed: 1,
      failed: 0,
    });
    expect(replayedEvents).toEqual([4]);
    expect(await subscriptions(store).parked('parker')).toEqual([]);
  });

  it('stops as faulted when told not to park, without moving past the failing event', async () => {
    await store.append('f-1', events(3));
    const subscription = subscribe({
      name: 'stopper',
      onFailure: 'stop',
      retry: { attempts: 2, backoffMs: 1 },
      handler: (page) => {
        if (page.some((e) => e.position === 2)) throw new Error('boom');
      },
    });
    await subscription.done;
    expect(await subscription.status()).toMatchObject({ state: 'faulted', position: 1, lastError: 'boom' });
    await expect(subscription.waitFor(3)).rejects.toThrow();
  });

  it('refuses bad options', () => {
    expect(() => subscriptions(store).subscribe({ handler: 'x' as never })).toThrow(/handler/);
    expect(() => subscriptions(store).subscribe({ handler: () => {}, batchSize: 0 })).toThrow(/batchSize/);
    expect(() => subscriptions(store).subscribe({ handler: () => {}, onFailure: 'park' })).toThrow(/name/);
    expect(() => subscriptions(store).subscribe({ handler: () => {}, name: '' })).toThrow(/name/);
    expect(() => subscriptions(store).subscribe({ handler: () => {}, categories: [] })).toThrow(/categories/);
    expect(() => subscriptions(store).subscribe({ handler: () => {}, streamIds: [''] })).toThrow(/streamIds/);
    for (const from of [{ after: -1 }, { after: 1.5 }, 'bogus', { after: '3' }]) {
      expect(() => subscriptions(store).subscribe({ handler: () => {}, from: from as never })).toThrow(/from/);
    }
    expect(() => subscriptions(store).joinGroup({ group: 'g', handler: 'x' as never })).toThrow(/handler/);
    expect(() => subscriptions(store).joinGroup({ group: 'g', handler: () => {}, batchSize: -1 })).toThrow(/batchSize/);
    expect(() => subscriptions(store).joinGroup({ group: '', handler: () => {} })).toThrow(/group/);
  });

  it('follows a stream as long as the store takes its ids', async () => {
    const long = await openTestStore(backend, { maxStreamIdLength: 400 });
    try {
      const id = `long-${'x'.repeat(350)}`;
      await long.store.append(id, events(2));
      expect(() => subscriptions(store).subscribe({ handler: () => {}, streamIds: [id] })).toThrow(/at most 256/);
      const got: RecordedEvent[] = [];
      const follower = subscriptions(long.store).subscribe({
        streamIds: [id],
        handler: (page) => void got.push(...page),
      });
      await waitUntil(() => got.length === 2);
      await follower.stop();
      expect(got.map((e) => e.streamId)).toEqual([id, id]);
    } finally {
      await long.cleanup();
    }
  });
});

describe.skipIf(!databaseUrl)('subscriptions on PostgreSQL, when the LISTEN connection is killed', () => {
  it('reconnects and keeps delivering, with polling far away, when its connections are ended', async () => {
    const { postgresBackend } = await import('./support/backends.js');
    const t = await openTestStore(postgresBackend);
    const seen: number[] = [];
    const subscription = subscriptions(t.store).subscribe({
      pollIntervalMs: 120_000,
      handler: (p) => void seen.push(...p.map((e) => e.position)),
    });
    try {
      await t.store.append('l-1', events(1));
      await subscription.waitFor(1);
      const admin = await rawConnection();
      try {
        // End the LISTEN connection and every other connection of the store's pool.
        const listen = `listen ${t.schema}_events`;
        const { rows } = await admin.query(
          `select pid, pg_terminate_backend(pid) from pg_stat_activity
            where (query = $1 or application_name = 'annals') and pid <> pg_backend_pid()
              and datname = current_database()`,
          [listen],
        );
        expect(rows.length).toBeGreaterThan(0);
        // The subscription listens again, on a new connection.
        const ended = rows.map((row) => row.pid);
        await waitUntil(
          async () =>
            (
              await admin.query(
                `select 1 from pg_stat_activity where query = $1 and state = 'idle'
                  and datname = current_database() and not (pid = any($2::int[]))`,
                [listen, ended],
              )
            ).rows.length > 0,
          { message: 'a new LISTEN connection' },
        );
      } finally {
        await admin.end();
      }
      await t.store.append('l-1', events(1));
      await subscription.waitFor(2);
      expect(seen).toEqual([1, 2]);
    } finally {
      await subscription.stop();
      await t.cleanup();
    }
  });
});
