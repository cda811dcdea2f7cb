/**
 * Persistent subscriptions through the official `@kurrent/kurrentdb-client`, unchanged, over a
 * real socket, on each backend: groups on a stream and on `$all` (with a filter), competing
 * consumers, acks, nacks (retry, park, skip, stop), retry limits, message timeouts, parked
 * events replayed, checkpoints kept across unsubscribes and a server restart, the clients'
 * typed errors, and many consumers at once with appends in between.
 */
import type {
  PersistentSubscriptionToAll,
  PersistentSubscriptionToStream,
  ResolvedEvent,
} from '@kurrent/kurrentdb-client';
import {
  END,
  eventTypeFilter,
  jsonEvent,
  PersistentSubscriptionDoesNotExistError,
  PersistentSubscriptionExistsError,
  PersistentSubscriptionMaximumSubscribersReachedError,
  persistentSubscriptionToAllSettingsFromDefaults,
  persistentSubscriptionToStreamSettingsFromDefaults,
  START,
} from '@kurrent/kurrentdb-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KurrentServer, startKurrentServer, until } from './kurrent-support.js';
import { backends } from './support.js';

const deposited = (n: number) => jsonEvent({ type: 'Deposited', data: { n } });
const numberOf = (event: ResolvedEvent) => (event.event?.data as { n: number } | undefined)?.n ?? -1;
const fromStart = (changes = {}) =>
  persistentSubscriptionToStreamSettingsFromDefaults({ startFrom: START, ...changes });

/** An event as a persistent subscription hands it over (to a stream or to $all). */
type Delivered = ResolvedEvent & { retryCount: number };
type Persistent = PersistentSubscriptionToStream | PersistentSubscriptionToAll;

/** A consumer that records what it gets and answers each event with `answer` (ack by default). */
function consume(
  subscription: Persistent,
  answer: (event: Delivered, s: PersistentSubscriptionToStream) => Promise<void> = (event, s) => s.ack(event),
) {
  const got: Delivered[] = [];
  const errors: unknown[] = [];
  subscription.on('error', (error) => errors.push(error));
  const done = (async () => {
    try {
      for await (const event of subscription as AsyncIterable<Delivered>) {
        got.push(event);
        await answer(event, subscription as PersistentSubscriptionToStream);
      }
    } catch (error) {
      errors.push(error);
    }
  })();
  return { got, errors, done };
}

describe.each(backends)('KurrentDB persistent subscriptions on $name', (backend) => {
  let server: KurrentServer;
  beforeAll(async () => {
    server = await startKurrentServer(backend);
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  it('shares a stream between two consumers: each event to one, every event acknowledged once', async () => {
    const { kurrent } = server;
    await kurrent.appendToStream(
      'ps-orders',
      Array.from({ length: 20 }, (_, i) => deposited(i)),
    );
    await kurrent.createPersistentSubscriptionToStream('ps-orders', 'workers', fromStart());
    const a = consume(kurrent.subscribeToPersistentSubscriptionToStream('ps-orders', 'workers'));
    const b = consume(kurrent.subscribeToPersistentSubscriptionToStream('ps-orders', 'workers'));
    await until(() => a.got.length + b.got.length >= 20, 10_000, '20 deliveries');
    // Live: appended while they consume.
    await kurrent.appendToStream('ps-orders', [deposited(20), deposited(21)]);
    await until(() => a.got.length + b.got.length >= 22, 10_000, '22 deliveries');
    const all = [...a.got, ...b.got].map(numberOf).sort((x, y) => x - y);
    expect(all).toEqual(Array.from({ length: 22 }, (_, i) => i));
    // Round robin: both had a share.
    expect(a.got.length).toBeGreaterThan(0);
    expect(b.got.length).toBeGreaterThan(0);
    expect([...a.got, ...b.got].every((event) => event.retryCount === 0)).toBe(true);

    const info = await kurrent.getPersistentSubscriptionToStreamInfo('ps-orders', 'workers');
    expect(info.groupName).toBe('workers');
    expect(info.eventSource).toBe('ps-orders');
    expect(info.settings.startFrom).toBe(START);
    expect(info.settings.consumerStrategyName).toBe('RoundRobin');
    expect(info.connections).toHaveLength(2);
    expect(info.stats.lastKnownEventRevision).toBe(21n);
    expect(info.stats.parkedMessageCount).toBe(0n);
    await kurrent.deletePersistentSubscriptionToStream('ps-orders', 'workers');
    await Promise.all([a.done, b.done]);
    expect(a.errors[0]).toBeDefined();
  });

  it('retries, parks and skips as nacked; replays parked events and unparks them once acknowledged', async () => {
    const { kurrent } = server;
    await kurrent.appendToStream(
      'ps-nack',
      Array.from({ length: 5 }, (_, i) => deposited(i)),
    );
    await kurrent.createPersistentSubscriptionToStream('ps-nack', 'g', fromStart());
    const seen: [number, number][] = [];
    let replaying = false;
    const subscription = kurrent.subscribeToPersistentSubscriptionToStream('ps-nack', 'g');
    const consumer = consume(subscription, async (event, s) => {
      const n = numberOf(event);
      seen.push([n, event.retryCount]);
      if (replaying) return s.ack(event);
      if (n === 1 && event.retryCount === 0) return s.nack('retry', 'try again', event);
      if (n === 2) return s.nack('park', 'poison', event);
      if (n === 3) return s.nack('skip', 'not mine', event);
      return s.ack(event);
    });
    const parkedCount = async () =>
      (await kurrent.getPersistentSubscriptionToStreamInfo('ps-nack', 'g')).stats.parkedMessageCount;
    await until(() => seen.some(([n, retry]) => n === 1 && retry === 1), 10_000, 'the retry');
    for (let i = 0; i < 100 && (await parkedCount()) !== 1n; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await parkedCount()).toBe(1n);
    expect(seen.map(([n]) => n).sort()).toEqual([0, 1, 1, 2, 3, 4]);
    // Nothing was delivered twice but the retried one.
    expect(seen.filter(([n]) => n === 1).map(([, retry]) => retry)).toEqual([0, 1]);

    // Live events keep flowing past the parked one; then the parked one comes back, once.
    await kurrent.appendToStream('ps-nack', deposited(5));
    await until(() => seen.some(([n]) => n === 5), 10_000, 'the live event');
    replaying = true;
    await kurrent.replayParkedMessagesToStream('ps-nack', 'g');
    await until(() => seen.filter(([n]) => n === 2).length === 2, 10_000, 'the replayed event');
    for (let i = 0; i < 100 && (await parkedCount()) !== 0n; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await parkedCount()).toBe(0n);
    await subscription.unsubscribe();
    await consumer.done;
  });

  it('takes an event back after the message timeout, and parks it past the retry limit', async () => {
    const { kurrent } = server;
    await kurrent.appendToStream('ps-slow', [deposited(0), deposited(1)]);
    await kurrent.createPersistentSubscriptionToStream(
      'ps-slow',
      'g',
      fromStart({ messageTimeout: 200, maxRetryCount: 2 }),
    );
    const retries: number[] = [];
    const subscription = kurrent.subscribeToPersistentSubscriptionToStream('ps-slow', 'g');
    const consumer = consume(subscription, async (event, s) => {
      // Event 0 is never answered: it times out, comes back, and is parked after two retries.
      if (numberOf(event) === 0) retries.push(event.retryCount);
      else await s.ack(event);
    });
    await until(() => retries.length === 3, 10_000, 'three deliveries');
    let info = await kurrent.getPersistentSubscriptionToStreamInfo('ps-slow', 'g');
    for (let i = 0; i < 100 && info.stats.parkedMessageCount !== 1n; i++) {
      await new Promise((r) => setTimeout(r, 50));
      info = await kurrent.getPersistentSubscriptionToStreamInfo('ps-slow', 'g');
    }
    expect(retries).toEqual([0, 1, 2]);
    expect(info.stats.parkedMessageCount).toBe(1n);
    expect(info.settings.messageTimeout).toBe(200);
    expect(info.settings.maxRetryCount).toBe(2);
    // No fourth delivery.
    await new Promise((r) => setTimeout(r, 400));
    expect(retries).toHaveLength(3);
    await subscription.unsubscribe();
    await consumer.done;
  });

  it('keeps its checkpoint across an unsubscribe and a server restart; what was not acknowledged comes again', async () => {
    const { kurrent } = server;
    await kurrent.appendToStream(
      'ps-resume',
      Array.from({ length: 10 }, (_, i) => deposited(i)),
    );
    await kurrent.createPersistentSubscriptionToStream('ps-resume', 'g', fromStart());
    const first = kurrent.subscribeToPersistentSubscriptionToStream('ps-resume', 'g');
    const one = consume(first);
    await until(() => one.got.length === 10, 10_000, 'ten events');
    let info = await kurrent.getPersistentSubscriptionToStreamInfo('ps-resume', 'g');
    for (let i = 0; i < 100 && info.stats.lastCheckpointedEventRevision !== 9n; i++) {
      await new Promise((r) => setTimeout(r, 50));
      info = await kurrent.getPersistentSubscriptionToStreamInfo('ps-resume', 'g');
    }
    expect(info.stats.lastCheckpointedEventRevision).toBe(9n);
    await first.unsubscribe();
    await one.done;

    await kurrent.appendToStream(
      'ps-resume',
      Array.from({ length: 5 }, (_, i) => deposited(10 + i)),
    );
    // Acknowledges 10..12 only, then the server goes away.
    const second = kurrent.subscribeToPersistentSubscriptionToStream('ps-resume', 'g');
    const two = consume(second, async (event, s) => {
      if (numberOf(event) <= 12) await s.ack(event);
    });
    await until(() => two.got.length === 5, 10_000, 'the five new events');
    expect(two.got.map(numberOf)).toEqual([10, 11, 12, 13, 14]);
    await second.unsubscribe();
    await two.done;

    // Another server on the same store: the group, its settings and its checkpoint are in the store.
    const { startServer } = await import('../src/index.js');
    const { KurrentDBClient } = await import('@kurrent/kurrentdb-client');
    const again = await startServer({
      client: server.client,
      port: 0,
      grpc: { port: 0 },
      store: { schema: server.schema, closeClient: false },
    });
    const client = KurrentDBClient.connectionString`${again.grpc?.connectionString ?? ''}`;
    try {
      const third = client.subscribeToPersistentSubscriptionToStream('ps-resume', 'g');
      const three = consume(third);
      await until(() => three.got.some((e) => numberOf(e) === 14), 10_000, 'the unacknowledged events');
      await new Promise((r) => setTimeout(r, 200));
      // 13 and 14 were never acknowledged: they come again. The checkpoint moves a page at a
      // time, so acknowledged events of the page in hand (10..12 here) may come again too (at
      // least once); nothing from before the checkpoint does.
      const numbers = three.got.map(numberOf);
      expect(numbers).toContain(13);
      expect(numbers.every((n) => n >= 10 && n <= 14)).toBe(true);
      expect(numbers).toEqual([...numbers].sort((x, y) => x - y));
      await third.unsubscribe();
      await three.done;
    } finally {
      await client.dispose();
      await again.close();
    }
  });

  it('serves a group on $all with a filter and a start position, listed with the others', async () => {
    const { kurrent } = server;
    const before = await kurrent.appendToStream('ps-shop-1', jsonEvent({ type: 'OrderPlaced', data: { n: -1 } }));
    const start = before.position?.commit ?? 0n;
    for (let i = 0; i < 6; i++) {
      await kurrent.appendToStream(`ps-shop-${i % 2}`, [
        jsonEvent({ type: 'OrderPlaced', data: { n: i } }),
        jsonEvent({ type: 'Noise', data: { n: 100 + i } }),
      ]);
    }
    await kurrent.createPersistentSubscriptionToAll(
      'orders',
      persistentSubscriptionToAllSettingsFromDefaults({ startFrom: { commit: start + 1n, prepare: start + 1n } }),
      { filter: eventTypeFilter({ prefixes: ['OrderPl'] }) },
    );
    const subscription = kurrent.subscribeToPersistentSubscriptionToAll('orders');
    const consumer = consume(subscription);
    await until(() => consumer.got.length >= 6, 10_000, 'six orders');
    await new Promise((r) => setTimeout(r, 200));
    // One consumer: log order; the order before the start position and the noise are not sent.
    expect(consumer.got.map(numberOf)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(consumer.got.every((e) => e.commitPosition !== undefined && e.commitPosition > start)).toBe(true);

    const info = await kurrent.getPersistentSubscriptionToAllInfo('orders');
    expect(info.eventSource).toBe('$all');
    expect(info.settings.startFrom).toEqual({ commit: start + 1n, prepare: start + 1n });
    expect(info.stats.lastKnownEventPosition?.commit).toBe(consumer.got.at(-1)?.commitPosition);
    const listed = await kurrent.listAllPersistentSubscriptions();
    expect(listed.map((g) => `${g.eventSource}/${g.groupName}`)).toContain('$all/orders');
    expect((await kurrent.listPersistentSubscriptionsToAll()).map((g) => g.groupName)).toEqual(['orders']);
    await subscription.unsubscribe();
    await consumer.done;
    await kurrent.deletePersistentSubscriptionToAll('orders');
    expect((await kurrent.listPersistentSubscriptionsToAll()).map((g) => g.groupName)).toEqual([]);
  });

  it('answers with the clients’ typed errors, and a refused request changes nothing', async () => {
    const { kurrent } = server;
    await kurrent.createPersistentSubscriptionToStream('ps-errors', 'g', fromStart({ maxSubscriberCount: 1 }));
    await expect(kurrent.createPersistentSubscriptionToStream('ps-errors', 'g', fromStart())).rejects.toBeInstanceOf(
      PersistentSubscriptionExistsError,
    );
    await expect(kurrent.deletePersistentSubscriptionToStream('ps-errors', 'nope')).rejects.toBeInstanceOf(
      PersistentSubscriptionDoesNotExistError,
    );
    await expect(kurrent.getPersistentSubscriptionToStreamInfo('ps-errors', 'nope')).rejects.toBeInstanceOf(
      PersistentSubscriptionDoesNotExistError,
    );
    await expect(kurrent.updatePersistentSubscriptionToStream('ps-errors', 'nope', fromStart())).rejects.toBeInstanceOf(
      PersistentSubscriptionDoesNotExistError,
    );
    const missing = consume(kurrent.subscribeToPersistentSubscriptionToStream('ps-errors', 'nope'));
    await missing.done;
    expect(missing.errors[0]).toBeInstanceOf(PersistentSubscriptionDoesNotExistError);

    const only = kurrent.subscribeToPersistentSubscriptionToStream('ps-errors', 'g');
    const held = consume(only);
    await new Promise((r) => setTimeout(r, 200));
    const extra = consume(kurrent.subscribeToPersistentSubscriptionToStream('ps-errors', 'g'));
    await extra.done;
    expect(extra.errors[0]).toBeInstanceOf(PersistentSubscriptionMaximumSubscribersReachedError);

    // A bad filter, a bad setting: refused, and nothing is defined.
    await expect(
      kurrent.createPersistentSubscriptionToAll('bad-regex', persistentSubscriptionToAllSettingsFromDefaults(), {
        filter: eventTypeFilter({ regex: '(' }),
      }),
    ).rejects.toThrow(/regex/);
    await expect(
      kurrent.createPersistentSubscriptionToStream(
        'ps-errors',
        'bad-bounds',
        fromStart({ checkPointLowerBound: 50, checkPointUpperBound: 5 }),
      ),
    ).rejects.toThrow(/checkPointLowerBound/);
    const names = (await kurrent.listAllPersistentSubscriptions()).map((g) => g.groupName);
    expect(names).not.toContain('bad-regex');
    expect(names).not.toContain('bad-bounds');

    // Deleting the group drops its consumer; the definitions are events with who and what.
    await kurrent.deletePersistentSubscriptionToStream('ps-errors', 'g');
    await held.done;
    expect(held.errors.length).toBeGreaterThan(0);
    const types: string[] = [];
    for await (const event of kurrent.readStream('$persistent-subscriptions')) {
      const data = event.event?.data as { group: string; source: string };
      if (data.source === 'ps-errors') types.push(`${event.event?.type}:${data.group}`);
    }
    expect(types).toEqual(['PersistentSubscriptionCreated:g', 'PersistentSubscriptionDeleted:g']);

    // The definitions are written only through this API: a forged one is refused, over gRPC and HTTP.
    const forged = { type: 'PersistentSubscriptionCreated', data: { source: 'ps-errors', group: 'forged' } };
    await expect(kurrent.appendToStream('$persistent-subscriptions', jsonEvent(forged))).rejects.toThrow();
    const http = await server.request('POST', '/streams/$persistent-subscriptions/events', { events: [forged] });
    expect(http.status).toBe(400);
    expect(http.text).toContain('written only through');
    const multi = await server.request('POST', '/appends', {
      writes: [
        { streamId: 'ps-fine', events: [{ type: 'T', data: {} }] },
        { streamId: '$persistent-subscriptions', events: [forged] },
      ],
    });
    expect(multi.status).toBe(400);
    expect((await server.request('GET', '/streams/ps-fine')).status).toBe(404);
    expect((await kurrent.listAllPersistentSubscriptions()).map((g) => g.groupName)).not.toContain('forged');
    void only;
  });

  it('updates a group: its consumers are dropped and resubscribe under the new settings', async () => {
    const { kurrent } = server;
    await kurrent.createPersistentSubscriptionToStream('ps-update', 'g', fromStart({ startFrom: END }));
    const before = consume(kurrent.subscribeToPersistentSubscriptionToStream('ps-update', 'g'));
    await new Promise((r) => setTimeout(r, 200));
    await kurrent.updatePersistentSubscriptionToStream(
      'ps-update',
      'g',
      fromStart({ startFrom: END, maxRetryCount: 3 }),
    );
    await before.done;
    expect(before.errors.length).toBeGreaterThan(0);
    const info = await kurrent.getPersistentSubscriptionToStreamInfo('ps-update', 'g');
    expect(info.settings.maxRetryCount).toBe(3);
    expect(info.settings.startFrom).toBe(END);
    const after = consume(kurrent.subscribeToPersistentSubscriptionToStream('ps-update', 'g'));
    await new Promise((r) => setTimeout(r, 200));
    await kurrent.appendToStream('ps-update', deposited(7));
    await until(() => after.got.length === 1, 10_000, 'the live event');
    expect(after.got.map(numberOf)).toEqual([7]);
  });

  it('many consumers, appends in between, one leaving mid-way and retries: every event acknowledged, none lost', async () => {
    const { kurrent } = server;
    const total = 300;
    await kurrent.createPersistentSubscriptionToStream('ps-busy', 'g', fromStart());
    const acked = new Map<number, number>();
    const consumers = Array.from({ length: 4 }, (_, c) => {
      const subscription = kurrent.subscribeToPersistentSubscriptionToStream('ps-busy', 'g', { bufferSize: 5 });
      return {
        subscription,
        run: consume(subscription, async (event, s) => {
          const n = numberOf(event);
          // A tenth of first deliveries are sent back to be retried.
          if (event.retryCount === 0 && (n * 7 + c) % 10 === 0) return s.nack('retry', 'later', event);
          await s.ack(event);
          acked.set(n, (acked.get(n) ?? 0) + 1);
        }),
      };
    });
    const writers = Array.from({ length: 4 }, async (_, w) => {
      for (let i = w; i < total; i += 4) await kurrent.appendToStream('ps-busy', deposited(i));
    });
    await until(() => acked.size >= total / 3, 20_000, 'a third acknowledged');
    const leaving = consumers[0] as (typeof consumers)[number];
    await leaving.subscription.unsubscribe();
    await leaving.run.done;
    await Promise.all(writers);
    await until(() => acked.size === total, 30_000, 'every event acknowledged');
    // At least once: an event is acknowledged twice only if its consumer left holding it.
    const twice = [...acked.values()].filter((count) => count > 1).length;
    expect(twice).toBeLessThanOrEqual(5);
    for (const { subscription, run } of consumers.slice(1)) {
      await subscription.unsubscribe();
      await run.done;
    }
    let info = await kurrent.getPersistentSubscriptionToStreamInfo('ps-busy', 'g');
    for (let i = 0; i < 100 && info.stats.lastCheckpointedEventRevision !== BigInt(total - 1); i++) {
      await new Promise((r) => setTimeout(r, 50));
      info = await kurrent.getPersistentSubscriptionToStreamInfo('ps-busy', 'g');
    }
    expect(info.connections).toHaveLength(0);
    expect(info.stats.parkedMessageCount).toBe(0n);
  });

  it('pins each stream to one consumer (Pinned), and sends all to the first with room (DispatchToSingle)', async () => {
    const { kurrent } = server;
    const connected = async (group: string, count: number) => {
      for (let i = 0; i < 200; i++) {
        const info = await kurrent.getPersistentSubscriptionToAllInfo(group);
        if (info.connections.length === count) return;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error(`${group} never had ${count} consumers`);
    };
    const onlyPinned = eventTypeFilter({ prefixes: ['Pinned'] });
    await kurrent.createPersistentSubscriptionToAll(
      'pinned',
      persistentSubscriptionToAllSettingsFromDefaults({ startFrom: END, consumerStrategyName: 'Pinned' }),
      { filter: onlyPinned },
    );
    const pinned = [0, 1].map(() =>
      consume(kurrent.subscribeToPersistentSubscriptionToAll('pinned', { bufferSize: 50 })),
    );
    await connected('pinned', 2);
    for (let round = 0; round < 5; round++) {
      for (let stream = 0; stream < 8; stream++) {
        await kurrent.appendToStream(`ps-pin-${stream}`, jsonEvent({ type: 'PinnedEvent', data: { n: round } }));
      }
    }
    await until(() => pinned.reduce((sum, c) => sum + c.got.length, 0) === 40, 10_000, '40 pinned events');
    const owners = new Map<string, Set<number>>();
    pinned.forEach((c, index) => {
      for (const event of c.got) {
        const stream = event.event?.streamId ?? '';
        owners.set(stream, (owners.get(stream) ?? new Set()).add(index));
      }
    });
    expect(owners.size).toBe(8);
    expect([...owners.values()].every((set) => set.size === 1)).toBe(true);
    for (const c of pinned) {
      for (const stream of new Set(c.got.map((e) => e.event?.streamId))) {
        const ns = c.got.filter((e) => e.event?.streamId === stream).map(numberOf);
        expect(ns).toEqual([0, 1, 2, 3, 4]);
      }
    }

    await kurrent.createPersistentSubscriptionToAll(
      'single',
      persistentSubscriptionToAllSettingsFromDefaults({ startFrom: END, consumerStrategyName: 'DispatchToSingle' }),
      { filter: eventTypeFilter({ prefixes: ['Single'] }) },
    );
    const first = consume(kurrent.subscribeToPersistentSubscriptionToAll('single', { bufferSize: 100 }));
    await connected('single', 1);
    const second = consume(kurrent.subscribeToPersistentSubscriptionToAll('single', { bufferSize: 100 }));
    await connected('single', 2);
    await kurrent.appendToStream(
      'ps-single',
      Array.from({ length: 20 }, (_, n) => jsonEvent({ type: 'SingleEvent', data: { n } })),
    );
    await until(() => first.got.length + second.got.length === 20, 10_000, '20 events');
    // The first consumer always has room: it gets them all, in order.
    expect(first.got.map(numberOf)).toEqual(Array.from({ length: 20 }, (_, n) => n));
    expect(second.got).toHaveLength(0);
  });

  it('begins at the end as of its creation: what is appended before the first consumer joins is delivered', async () => {
    const { kurrent } = server;
    await kurrent.appendToStream('ps-end', [deposited(0), deposited(1)]);
    // The clients' default start is the end.
    await kurrent.createPersistentSubscriptionToStream(
      'ps-end',
      'g',
      persistentSubscriptionToStreamSettingsFromDefaults(),
    );
    await kurrent.createPersistentSubscriptionToAll(
      'end-all',
      persistentSubscriptionToAllSettingsFromDefaults({ startFrom: END }),
      { filter: eventTypeFilter({ prefixes: ['EndOfAll'] }) },
    );
    await kurrent.appendToStream('ps-end', [deposited(2), deposited(3)]);
    await kurrent.appendToStream('ps-end-all', jsonEvent({ type: 'EndOfAll', data: { n: 9 } }));
    const stream = consume(kurrent.subscribeToPersistentSubscriptionToStream('ps-end', 'g'));
    const all = consume(kurrent.subscribeToPersistentSubscriptionToAll('end-all'));
    await until(() => stream.got.length >= 2 && all.got.length >= 1, 10_000, 'the events after the create');
    await new Promise((r) => setTimeout(r, 200));
    expect(stream.got.map(numberOf)).toEqual([2, 3]);
    expect(all.got.map(numberOf)).toEqual([9]);
    expect((await kurrent.getPersistentSubscriptionToStreamInfo('ps-end', 'g')).settings.startFrom).toBe(END);
    await kurrent.deletePersistentSubscriptionToStream('ps-end', 'g');
    await kurrent.deletePersistentSubscriptionToAll('end-all');
    await Promise.all([stream.done, all.done]);
  });

  it('resumes from its checkpoint after an update that moves its start (as KurrentDB does)', async () => {
    const { kurrent } = server;
    await kurrent.appendToStream(
      'ps-moved',
      Array.from({ length: 5 }, (_, i) => deposited(i)),
    );
    await kurrent.createPersistentSubscriptionToStream('ps-moved', 'g', fromStart());
    const first = consume(kurrent.subscribeToPersistentSubscriptionToStream('ps-moved', 'g'));
    await until(() => first.got.length === 5, 10_000, 'the first five');
    // Settled, and the checkpoint stored past them, before the update drops the consumer.
    await until(
      async () =>
        (await kurrent.getPersistentSubscriptionToStreamInfo('ps-moved', 'g')).stats.lastCheckpointedEventRevision ===
        4n,
      10_000,
      'the checkpoint',
    );
    await kurrent.updatePersistentSubscriptionToStream('ps-moved', 'g', fromStart({ startFrom: BigInt(8) }));
    await first.done;
    await kurrent.appendToStream(
      'ps-moved',
      Array.from({ length: 5 }, (_, i) => deposited(5 + i)),
    );
    const second = consume(kurrent.subscribeToPersistentSubscriptionToStream('ps-moved', 'g'));
    await until(() => second.got.length >= 5, 10_000, 'every event after the checkpoint');
    expect(second.got.map(numberOf)).toEqual([5, 6, 7, 8, 9]);
    await kurrent.deletePersistentSubscriptionToStream('ps-moved', 'g');
    await second.done;
  });

  it('counts a consumer leaving as a retry, even when it was the last: a poison event is parked', async () => {
    const { kurrent } = server;
    await kurrent.appendToStream('ps-poison', deposited(0));
    await kurrent.createPersistentSubscriptionToStream('ps-poison', 'g', fromStart({ maxRetryCount: 2 }));
    const counts: number[] = [];
    for (let round = 0; round < 3; round++) {
      // Each consumer takes the event and leaves without an answer (it crashed on it).
      const subscription = kurrent.subscribeToPersistentSubscriptionToStream('ps-poison', 'g');
      for await (const event of subscription as AsyncIterable<Delivered>) {
        counts.push(event.retryCount);
        break;
      }
      await subscription.unsubscribe();
      await until(
        async () => (await kurrent.getPersistentSubscriptionToStreamInfo('ps-poison', 'g')).connections.length === 0,
        5000,
        'the consumer to leave',
      );
    }
    expect(counts).toEqual([0, 1, 2]);
    // The next consumer gets nothing: the event is parked with the reason.
    const next = consume(kurrent.subscribeToPersistentSubscriptionToStream('ps-poison', 'g'));
    await until(
      async () =>
        (await kurrent.getPersistentSubscriptionToStreamInfo('ps-poison', 'g')).stats.parkedMessageCount === 1n,
      10_000,
      'the event parked',
    );
    expect(next.got).toHaveLength(0);
    await kurrent.deletePersistentSubscriptionToStream('ps-poison', 'g');
    await next.done;
  });

  it('refuses a group on a stream the store could never hold, and lists the others', async () => {
    const { kurrent } = server;
    await expect(kurrent.createPersistentSubscriptionToStream('bad\u0001stream', 'g', fromStart())).rejects.toThrow(
      /control/,
    );
    await expect(kurrent.createPersistentSubscriptionToStream('x'.repeat(300), 'g', fromStart())).rejects.toThrow(
      /at most/,
    );
    const names = (await kurrent.listAllPersistentSubscriptions()).map((g) => g.eventSource);
    expect(names).not.toContain('bad\u0001stream');
    expect(names).not.toContain('x'.repeat(300));
  });
});
