/**
 * The live hub's routing, with many clients at once: each client, whatever its filter, gets
 * exactly the events it asked for after its starting point, in position order, none twice —
 * while appends run, clients join at different points, and slow clients fall behind (their
 * sockets report full), leave live mode, catch up from the log and come back.
 *
 * The sinks stand in for sockets so the test can make them slow at will; the store, the hub's
 * subscription and the catch-up reads are real. The server tests over real sockets are in
 * live.test.ts.
 */
import { type EventStore, openEventStore } from '@annals/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, freshSchema, type TestBackend } from '../../core/test/support/backends.js';
import { type LiveFilter, LiveHub, type LiveSink } from '../src/live-hub.js';

interface Received {
  positions: number[];
  streams: string[];
  types: string[];
}

/** A socket stand-in: parses frames as it gets them; `slow` makes it report a full buffer. */
function fakeSink() {
  const received: Received = { positions: [], streams: [], types: [] };
  let slow = false;
  let drainedWaiters: (() => void)[] = [];
  let closed = false;
  let waits = 0;
  const sink: LiveSink = {
    write(chunk) {
      for (const frame of chunk.split('\n\n')) {
        const data = /^data: (.*)$/m.exec(frame)?.[1];
        if (!data) continue;
        const event = JSON.parse(data) as { position: number; streamId: string; type: string };
        received.positions.push(event.position);
        received.streams.push(event.streamId);
        received.types.push(event.type);
      }
      return true;
    },
    get buffered() {
      return slow ? 64 * 1024 * 1024 : 0;
    },
    drained() {
      waits++;
      if (!slow || closed) return Promise.resolve();
      return new Promise<void>((resolve) => drainedWaiters.push(resolve));
    },
    close() {
      closed = true;
      for (const resolve of drainedWaiters.splice(0)) resolve();
    },
  };
  return {
    sink,
    received,
    /** How often the hub waited for this sink to drain (it fell behind). */
    get waits() {
      return waits;
    },
    setSlow(value: boolean) {
      slow = value;
      if (!value) for (const resolve of drainedWaiters.splice(0)) resolve();
      drainedWaiters = value ? drainedWaiters : [];
    },
  };
}

const categoryOf = (stream: string) => stream.split('-')[0] as string;

describe.each(backends)('the live hub on $name', (backend: TestBackend) => {
  let store: EventStore;
  const schema = freshSchema('hub');
  beforeAll(async () => {
    store = await openEventStore({ client: backend.client(), schema });
  });
  afterAll(async () => {
    await store?.close();
  });

  it('routes every event to exactly the clients that want it, in order, through slow spells', async () => {
    const hub = new LiveHub(store, { maxBufferedBytes: 1024, catchUpPageSize: 7, bufferEvents: 50 });
    const categories = ['alpha', 'beta', 'gamma', 'delta'];
    const types = ['Opened', 'Moved', 'Closed'];
    const filters: LiveFilter[] = [
      {},
      { categories: ['alpha'] },
      { categories: ['beta', 'gamma'] },
      { eventTypes: ['Moved'] },
      { categories: ['delta'], eventTypes: ['Opened', 'Closed'] },
      { streamIds: ['alpha-1', 'gamma-2'] },
      { streamIds: ['beta-0'] },
    ];
    let appended = 0;
    const appendSome = async (count: number) => {
      for (let i = 0; i < count; i++, appended++) {
        const stream = `${categories[appended % 4]}-${appended % 3}`;
        await store.append(stream, [{ type: types[appended % 3] as string, data: { n: appended } }]);
      }
    };
    await appendSome(30);
    const clients: { after: number; filter: LiveFilter; sink: ReturnType<typeof fakeSink>; gone: () => void }[] = [];
    const serving: Promise<void>[] = [];
    const join = async (filter: LiveFilter, after: number) => {
      const sink = fakeSink();
      let gone: () => void = () => {};
      const left = new Promise<void>((resolve) => {
        gone = resolve;
      });
      clients.push({ after, filter, sink, gone });
      serving.push(hub.serve(sink.sink, after, filter, left));
    };
    // Clients join from the start, from the middle, from the head, while appends go on.
    for (const filter of filters) await join(filter, 0);
    await Promise.all([
      appendSome(40),
      (async () => {
        for (const filter of filters) await join(filter, 12);
      })(),
    ]);
    const head = await store.headPosition();
    for (const filter of filters) await join(filter, head);
    // Bursts, each followed at once by new clients: their catch-up can read events the hub has
    // not published yet, and those must not reach them twice.
    for (let burst = 0; burst < 6; burst++) {
      await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          store.append(`${categories[i % 4]}-burst${burst}`, [{ type: types[i % 3] as string, data: { i } }]),
        ),
      );
      appended += 12;
      for (const filter of filters) void join(filter, 0);
    }
    // Slow spells: a third of the clients report full sockets while events keep coming.
    for (let round = 0; round < 3; round++) {
      clients.forEach((client, i) => {
        client.sink.setSlow(i % 3 === round);
      });
      await appendSome(25);
    }
    for (const client of clients) client.sink.setSlow(false);
    await appendSome(10);

    const last = await store.headPosition();
    const all: { position: number; streamId: string; type: string }[] = [];
    for await (const event of store.readAll()) all.push(event);
    const wanted = (filter: LiveFilter, after: number) =>
      all.filter(
        (event) =>
          event.position > after &&
          (!filter.categories || filter.categories.includes(categoryOf(event.streamId))) &&
          (!filter.eventTypes || filter.eventTypes.includes(event.type)) &&
          (!filter.streamIds || filter.streamIds.includes(event.streamId)),
      );
    const deadline = Date.now() + 20_000;
    const done = () =>
      clients.every((client) => client.sink.received.positions.length >= wanted(client.filter, client.after).length);
    while (!done() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(last).toBe(appended);
    for (const client of clients) {
      expect({ filter: client.filter, after: client.after, positions: client.sink.received.positions }).toEqual({
        filter: client.filter,
        after: client.after,
        positions: wanted(client.filter, client.after).map((event) => event.position),
      });
    }
    // The slow spells really made clients fall behind, wait for their sockets and come back.
    expect(clients.filter((client) => client.sink.waits > 0).length).toBeGreaterThanOrEqual(clients.length / 2);
    for (const client of clients) client.gone();
    await hub.close();
    await Promise.all(serving);
    expect(hub.clients).toBe(0);
  });
});
