/**
 * The NATS relay against a real NATS server (a private one per file, so that it may be stopped)
 * and a real store on each backend: what is published, in what order, when the checkpoint
 * moves, and what happens when NATS goes away, the stream is not the relay's, or a relay
 * takes over from another.
 */
import { randomUUID } from 'node:crypto';
import { type EventStore, InvalidInputError, openEventStore, subscriptions } from '@annals/core';
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, headers } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  backends,
  openTestStore,
  rawConnection,
  sleep,
  useTestStore,
  waitUntil,
} from '../../core/test/support/backends.js';
import { type NatsRelay, RelayStreamError, startNatsRelay } from '../src/index.js';
import { natsServerAvailable, startNatsServer, type TestNatsServer } from './support/nats-server.js';
import { readJetStream } from './support/stream-reader.js';

/** The log positions the stream's messages carry, in stream order. */
const positionsIn = async (stream: string) =>
  (await readJetStream(nats.url, stream)).map((m) => Number(m.headers['Annals-Position']));
/** Positions 1 to n. */
const upTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

/** Runs `work` on a JetStream session of its own (a connection closed after). */
async function withJetStream<T>(work: (jsm: JetStreamManager, js: JetStreamClient) => Promise<T>): Promise<T> {
  const connection = await connect({ servers: nats.url });
  try {
    return await work(await jetstreamManager(connection), jetstream(connection));
  } finally {
    await connection.close();
  }
}

/**
 * Publishes positions `first`, `first + 1`, ... as another instance of the relay `default`
 * would, one per id (its event id), each after `lastSequence + i` when that is given.
 */
async function publishAsRelay(ids: string[], first: number, lastSequence?: number): Promise<void> {
  await withJetStream(async (_jsm, js) => {
    for (const [i, id] of ids.entries()) {
      const h = headers();
      h.set('Annals-Position', String(first + i));
      h.set('Annals-Relay', 'default');
      const expect = lastSequence === undefined ? {} : { lastSequence: lastSequence + i };
      await js.publish('annals.account.Opened', '{}', { headers: h, msgID: id, expect });
    }
  });
}

const streamName = () => `T${randomUUID().replaceAll('-', '').slice(0, 12)}`;

/** Waits until the relay's checkpoint reached the head of the log. */
async function caughtUp(relay: NatsRelay, store: EventStore): Promise<void> {
  let last: unknown;
  await waitUntil(
    async () => {
      const status = await relay.status();
      last = status;
      return status.position === (await store.headPosition());
    },
    { message: 'the relay reaches the head', timeoutMs: 20_000 },
  ).catch((error: Error) => {
    throw new Error(`${error.message}; last status ${JSON.stringify(last)}`);
  });
}

let nats: TestNatsServer;

describe.skipIf(!natsServerAvailable)('NATS relay', () => {
  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(async () => {
    await nats?.cleanup();
  });
  // Streams may not share subjects: each test's streams go with it.
  afterEach(async () => {
    await withJetStream(async (jsm) => {
      for await (const name of jsm.streams.names()) await jsm.streams.delete(name);
    });
  });

  it('refuses bad options with a typed error, before anything runs', async () => {
    const { store, cleanup } = await openTestStore(backends[0] as (typeof backends)[number]);
    try {
      const bad: unknown[] = [
        null,
        { name: '' },
        { name: 'a b' },
        { name: 'x'.repeat(101) },
        { stream: 'a.b' },
        { stream: '' },
        { subject: '' },
        { subject: 'annals.>' },
        { subject: 'annals.*.{type}' },
        { subject: 'annals.fixed' },
        { subject: '{category}.{type}' },
        { subject: '_INBOX.{type}' },
        { subject: 'annals.{nope}' },
        { subject: "annals.{type}'; drop table events; --" },
        { servers: [] },
        { servers: 42 },
        { servers: 'not a url' },
        { servers: 'http://127.0.0.1:4222' },
        { servers: ['nats://127.0.0.1:4222', ''] },
        { batchSize: 0 },
        { batchSize: 1.5 },
        { maxInFlight: -1 },
        { personalData: 'maybe' },
        { from: { after: 3 } },
        { categories: [] },
        { eventTypes: 'Opened' },
      ];
      for (const options of bad) {
        expect(() => startNatsRelay(store, options as never), JSON.stringify(options)).toThrow(InvalidInputError);
      }
      expect(await subscriptions(store).checkpoints()).toEqual([]);
    } finally {
      await cleanup();
    }
  });

  for (const backend of backends) {
    describe(backend.name, () => {
      const t = useTestStore(backend);

      it('publishes every event in log order, once, with its headers, and moves the checkpoint after the acks', async () => {
        const { store } = t;
        await store.append('account-1', [
          {
            type: 'Opened',
            data: { owner: 'ada' },
            metadata: {
              actor: 'alice',
              correlationId: 'req-1',
              traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
            },
          },
          { type: 'Deposited', data: { amount: 10 } },
        ]);
        await store.append('order.eu-7', [{ type: 'order.placed', data: { items: [1, 2] } }]);
        const stream = streamName();
        const relay = startNatsRelay(store, { servers: nats.url, stream });
        try {
          await caughtUp(relay, store);
          const live = await store.append('account-2', [{ type: 'Opened', data: { owner: 'bob' } }]);
          await caughtUp(relay, store);
          const messages = await readJetStream(nats.url, stream);
          const events = [];
          for await (const event of store.readAll()) events.push(event);
          expect(messages.map((m) => m.seq)).toEqual([1, 2, 3, 4]);
          expect(messages.map((m) => Number(m.headers['Annals-Position']))).toEqual(events.map((e) => e.position));
          expect(messages.map((m) => m.headers['Nats-Msg-Id'])).toEqual(events.map((e) => e.id));
          expect(messages.map((m) => m.subject)).toEqual([
            'annals.account.Opened',
            'annals.account.Deposited',
            'annals.order_eu.order_placed',
            'annals.account.Opened',
          ]);
          expect(messages.map((m) => m.body)).toEqual(events.map((e) => e.data));
          expect(messages[0]?.headers).toMatchObject({
            'Annals-Stream': 'account-1',
            'Annals-Version': '1',
            'Annals-Type': 'Opened',
            'Annals-Correlation-Id': 'req-1',
            'Annals-Actor': 'alice',
            'Annals-Relay': 'default',
            traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
            'Annals-Recorded-At': events[0]?.recordedAt.toISOString(),
          });
          expect(messages[2]?.headers['Annals-Stream']).toBe('order.eu-7');
          expect(messages[2]?.headers['Annals-Type']).toBe('order.placed');
          expect(messages[3]?.headers['Annals-Position']).toBe(String(live.positions[0]));
          const status = await relay.status();
          expect(status).toMatchObject({ leader: true, state: 'live', lag: 0, published: 4, lastSequence: 4 });
          const checkpoint = (await subscriptions(store).checkpoints()).find((c) => c.name === relay.checkpoint);
          expect(checkpoint).toMatchObject({ position: 4, lag: 0 });
        } finally {
          await relay.stop();
        }
        expect((await relay.status()).state).toBe('stopped');
      });

      it('relays only the categories and event types it is given, on its own subject template', async () => {
        const { store } = t;
        await store.append('account-1', [
          { type: 'Opened', data: {} },
          { type: 'Closed', data: {} },
        ]);
        await store.append('order-1', [{ type: 'Opened', data: {} }]);
        await store.append('account-2', [{ type: 'Opened', data: {} }]);
        const stream = streamName();
        const relay = startNatsRelay(store, {
          servers: nats.url,
          stream,
          name: 'accounts',
          categories: ['account'],
          eventTypes: ['Opened'],
          subject: 'bank.{stream}.{type}',
        });
        try {
          await caughtUp(relay, store);
          const messages = await readJetStream(nats.url, stream);
          expect(messages.map((m) => [m.subject, m.headers['Annals-Position']])).toEqual([
            ['bank.account-1.Opened', '1'],
            ['bank.account-2.Opened', '4'],
          ]);
        } finally {
          await relay.stop();
        }
      });

      it('publishes personal fields as null unless told to include them', async () => {
        // The test's store, opened again with a personal-data policy.
        const store = await openEventStore({
          client: t.client,
          closeClient: false,
          schema: t.schema,
          personalData: { Registered: { subject: 'userId', fields: ['email', 'address.city'] } },
        });
        try {
          await store.append('user-1', [
            { type: 'Registered', data: { userId: 'u1', email: 'ada@example.com', address: { city: 'London' } } },
          ]);
          const redacted = streamName();
          const included = streamName();
          const relays = [
            startNatsRelay(store, { servers: nats.url, stream: redacted, name: 'redacted', subject: 'r.{type}' }),
            startNatsRelay(store, {
              servers: nats.url,
              stream: included,
              name: 'included',
              subject: 'i.{type}',
              personalData: 'include',
            }),
          ];
          try {
            for (const relay of relays) await caughtUp(relay, store);
          } finally {
            for (const relay of relays) await relay.stop();
          }
          const [plain] = await readJetStream(nats.url, redacted);
          expect(plain?.body).toEqual({ userId: 'u1', email: null, address: { city: null } });
          expect(plain?.headers['Annals-Redacted']).toBe('email,address.city');
          const [clear] = await readJetStream(nats.url, included);
          expect(clear?.body).toEqual({ userId: 'u1', email: 'ada@example.com', address: { city: 'London' } });
          expect(clear?.headers['Annals-Redacted']).toBeUndefined();
        } finally {
          await store.close();
        }
      });

      it('never sends an event twice when its checkpoint is behind the stream, even past the duplicate window', async () => {
        const { store, schema, client } = t;
        const stream = streamName();
        // A duplicate window of 100 ms: only the relay's own reading of the stream can help.
        await withJetStream((jsm) =>
          jsm.streams.add({ name: stream, subjects: ['annals.*.*'], duplicate_window: 100_000_000 }),
        );
        for (let i = 0; i < 20; i++) await store.append(`account-${i}`, [{ type: 'Opened', data: { i } }]);
        let relay = startNatsRelay(store, { servers: nats.url, stream, batchSize: 7 });
        await caughtUp(relay, store);
        await relay.stop();
        // As after a crash between the acknowledgement and the checkpoint's write.
        await client.exec(`update "${schema}".checkpoints set position = 3 where name = '${relay.checkpoint}'`);
        await sleep(300);
        await store.append('account-x', [{ type: 'Opened', data: {} }]);
        relay = startNatsRelay(store, { servers: nats.url, stream, batchSize: 7 });
        try {
          await caughtUp(relay, store);
          const status = await relay.status();
          expect(status.published).toBe(1);
          expect(status.duplicates).toBe(0);
        } finally {
          await relay.stop();
        }
        expect(await positionsIn(stream)).toEqual(upTo(21));
      });

      it('never publishes behind another instance that published first: the stream refuses it, and it reads the stream again', async () => {
        const { store } = t;
        const stream = streamName();
        await withJetStream((jsm) =>
          jsm.streams.add({ name: stream, subjects: ['annals.*.*'], duplicate_window: 100_000_000 }),
        );
        for (let i = 0; i < 10; i++) await store.append(`account-${i}`, [{ type: 'Opened', data: { i } }]);
        const relay = startNatsRelay(store, { servers: nats.url, stream });
        try {
          await caughtUp(relay, store);
          // Another instance of the same relay (one that still believes it holds the lease)
          // publishes positions 11-15 first; past the duplicate window, only the sequence
          // each publish expects stands between them and a second copy.
          const ids = Array.from({ length: 5 }, () => randomUUID());
          await publishAsRelay(ids, 11);
          await sleep(300);
          for (const [i, id] of ids.entries()) {
            await store.append(`account-${10 + i}`, [{ id, type: 'Opened', data: { i: 10 + i } }]);
          }
          await caughtUp(relay, store);
          expect((await relay.status()).published).toBe(10);
        } finally {
          await relay.stop();
        }
        expect(await positionsIn(stream)).toEqual(upTo(15));
      });

      it('goes on at once when the stream lost its last message and the checkpoint is behind', async () => {
        const { store, schema, client } = t;
        const stream = streamName();
        for (let i = 0; i < 20; i++) await store.append(`account-${i}`, [{ type: 'Opened', data: { i } }]);
        let relay = startNatsRelay(store, { servers: nats.url, stream });
        await caughtUp(relay, store);
        await relay.stop();
        await client.exec(`update "${schema}".checkpoints set position = 10 where name = '${relay.checkpoint}'`);
        await withJetStream((jsm) => jsm.streams.deleteMessage(stream, 20));
        await store.append('account-x', [{ type: 'Opened', data: {} }]);
        // A long retry window: a relay stuck on its own duplicates would not catch up in time.
        relay = startNatsRelay(store, { servers: nats.url, stream, retryWindowMs: 600_000 });
        try {
          const started = Date.now();
          await caughtUp(relay, store);
          expect(Date.now() - started).toBeLessThan(10_000);
          expect((await relay.status()).published).toBe(1);
        } finally {
          await relay.stop();
        }
        expect(await positionsIn(stream)).toEqual([...upTo(19), 21]);
      });

      it('stops and lets a standby take over when the connection it was given closes', async () => {
        const { store } = t;
        const stream = streamName();
        const own = await connect({ servers: nats.url });
        const options = { stream, heartbeatMs: 50, sessionTimeoutMs: 500 };
        const first = startNatsRelay(store, { ...options, connection: own });
        try {
          await store.append('account-1', [{ type: 'Opened', data: {} }]);
          await caughtUp(first, store);
          await own.close();
          await store.append('account-2', [{ type: 'Opened', data: {} }]);
          await waitUntil(async () => (await first.status()).state === 'stopped', {
            message: 'the relay with the closed connection stops',
          });
          expect((await first.status()).lastError).toMatch(/connection given to the relay is closed/);
          // It let go of the lease: another relay of the name takes over and goes on.
          const standby = startNatsRelay(store, { ...options, servers: nats.url });
          await caughtUp(standby, store);
          await standby.stop();
        } finally {
          await first.stop();
        }
        const positions = (await readJetStream(nats.url, stream)).map((m) => Number(m.headers['Annals-Position']));
        expect(positions).toEqual([1, 2]);
      });

      it.skipIf(backend.name !== 'postgres')(
        'reads the stream again when its lease comes back: another instance relayed meanwhile, nothing is skipped',
        async () => {
          const { store, schema } = t;
          const stream = streamName();
          for (let i = 0; i < 10; i++) await store.append(`account-${i}`, [{ type: 'Opened', data: { i } }]);
          const relay = startNatsRelay(store, {
            servers: nats.url,
            stream,
            heartbeatMs: 1500,
            sessionTimeoutMs: 60_000,
          });
          const admin = await rawConnection();
          try {
            await caughtUp(relay, store);
            // Its lease dies with its connection: the partition stops, and is taken again at
            // the next heartbeat, from the stored checkpoint.
            await admin.query(
              `select pg_terminate_backend(pid) from pg_locks where locktype = 'advisory' and granted and pid <> pg_backend_pid()`,
            );
            await waitUntil(async () => !(await relay.status()).leader, { message: 'the relay lets go of its lease' });
            // Meanwhile another instance relays 11-15 and stores its checkpoint.
            const ids = Array.from({ length: 5 }, () => randomUUID());
            for (const [i, id] of ids.entries()) {
              await store.append(`account-${10 + i}`, [{ id, type: 'Opened', data: { i: 10 + i } }]);
            }
            await publishAsRelay(ids, 11, 10);
            await admin.query(`update "${schema}".checkpoints set position = 15 where name = $1`, [relay.checkpoint]);
            for (let i = 15; i < 25; i++) await store.append(`account-${i}`, [{ type: 'Opened', data: { i } }]);
            await caughtUp(relay, store);
          } finally {
            await relay.stop();
            await admin.end();
          }
          expect(await positionsIn(stream)).toEqual(upTo(25));
        },
      );

      it('refuses a stream that holds messages it did not publish, and publishes nothing', async () => {
        const { store } = t;
        const stream = streamName();
        await withJetStream(async (jsm, js) => {
          await jsm.streams.add({ name: stream, subjects: [`${stream}.>`, 'annals.*.*'] });
          const foreign = headers();
          foreign.set('Annals-Position', '999');
          await js.publish(`${stream}.x`, 'hello', { headers: foreign });
        });
        await store.append('account-1', [{ type: 'Opened', data: {} }]);
        const relay = startNatsRelay(store, { servers: nats.url, stream, retryWindowMs: 60_000 });
        try {
          await waitUntil(async () =>
            /RelayStreamError: .*did not publish/.test((await relay.status()).lastError ?? ''),
          );
          expect((await relay.status()).position).toBe(0);
        } finally {
          await relay.stop();
        }
        expect((await readJetStream(nats.url, stream)).length).toBe(1);
        expect(new RelayStreamError('x')).toBeInstanceOf(Error);
      });

      it('keeps one relay active across two of the same name; the other takes over when it stops', async () => {
        const { store } = t;
        const stream = streamName();
        const options = { servers: nats.url, stream, heartbeatMs: 50, sessionTimeoutMs: 500 };
        const relays = [startNatsRelay(store, options), startNatsRelay(store, options)];
        const leaders = async () => {
          const statuses = await Promise.all(relays.map((relay) => relay.status()));
          return statuses.filter((status) => status.leader).length;
        };
        try {
          for (let i = 0; i < 30; i++) await store.append(`account-${i % 4}`, [{ type: 'Opened', data: { i } }]);
          await waitUntil(async () => (await leaders()) === 1);
          const leader = (await relays[0]?.status())?.leader ? 0 : 1;
          const active = relays[leader] as NatsRelay;
          const standby = relays[1 - leader] as NatsRelay;
          await caughtUp(active, store);
          expect((await standby.status()).state).toBe('standby');
          await active.stop();
          for (let i = 30; i < 60; i++) await store.append(`account-${i % 4}`, [{ type: 'Opened', data: { i } }]);
          await caughtUp(standby, store);
          expect((await standby.status()).leader).toBe(true);
          // Which of the two published what is not counted exactly across a takeover (an
          // instance's publish may be stored after it stopped waiting for it): the stream is.
          expect((await standby.status()).published).toBeGreaterThan(0);
        } finally {
          for (const relay of relays) await relay.stop();
        }
        expect(await positionsIn(stream)).toEqual(upTo(60));
      });

      it('holds its checkpoint while NATS is down, and relays everything once when it is back', async () => {
        const { store } = t;
        const stream = streamName();
        const relay = startNatsRelay(store, { servers: nats.url, stream, ackTimeoutMs: 500, retryWindowMs: 1500 });
        try {
          for (let i = 0; i < 25; i++) await store.append(`account-${i % 3}`, [{ type: 'Opened', data: { i } }]);
          await caughtUp(relay, store);
          await nats.stop('SIGTERM');
          for (let i = 25; i < 50; i++) await store.append(`account-${i % 3}`, [{ type: 'Opened', data: { i } }]);
          await waitUntil(async () => (await relay.status()).lastError !== undefined, {
            message: 'the relay reports NATS gone',
          });
          // Past its retry window too: the page is let go and read again, never skipped.
          await sleep(2000);
          expect((await relay.status()).position).toBe(25);
          await nats.start();
          await caughtUp(relay, store);
        } finally {
          await relay.stop();
          await nats.start();
        }
        expect(await positionsIn(stream)).toEqual(upTo(50));
      });
    });
  }
});
