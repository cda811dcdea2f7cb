/**
 * Consumer groups on PostgreSQL: members in separate stores (as separate processes would be)
 * share the streams, each stream in order on one member, and take over when one leaves.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type ConsumerGroupMember,
  createPostgresClient,
  type EventStore,
  openEventStore,
  type RecordedEvent,
  subscriptions,
} from '../src/index.js';
import { databaseUrl, openTestStore, postgresBackend, sleep, type TestStore, waitUntil } from './support/backends.js';

describe.skipIf(!databaseUrl)('consumer groups on PostgreSQL', () => {
  let t: TestStore & { cleanup: () => Promise<void> };
  const stores: EventStore[] = [];
  beforeEach(async () => {
    t = await openTestStore(postgresBackend);
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
    await t.cleanup();
  });

  /** A member in a store of its own, recording what it receives. */
  const member = async (received: Map<string, RecordedEvent[]>, who: string) => {
    const store = await openEventStore({
      client: createPostgresClient({ connectionString: databaseUrl as string, maxConnections: 6 }),
      schema: t.schema,
    });
    stores.push(store);
    return subscriptions(store).joinGroup({
      group: 'mailers',
      partitions: 8,
      heartbeatMs: 100,
      sessionTimeoutMs: 1000,
      pollIntervalMs: 100,
      handler: (events) => {
        for (const event of events) {
          const key = `${who}:${event.streamId}`;
          received.set(key, [...(received.get(key) ?? []), event]);
        }
      },
    });
  };

  const appendMany = async (streams: number, perStream: number, tag: string) => {
    for (let round = 0; round < perStream; round++) {
      await Promise.all(
        Array.from({ length: streams }, (_, s) =>
          t.store.append(`mail-${s}`, [{ type: 'Send', data: { tag, round } }]),
        ),
      );
    }
  };

  /** Every event of the log delivered, each stream's events in version order within each member. */
  const expectComplete = (received: Map<string, RecordedEvent[]>, total: number) => {
    const positions = new Set<number>();
    for (const events of received.values()) {
      for (const event of events) positions.add(event.position);
      const versions = events.map((e) => e.streamVersion);
      expect(versions).toEqual([...versions].sort((a, b) => a - b));
    }
    expect(positions.size).toBe(total);
  };

  it('shares the partitions among members, each stream on one member, every event once', async () => {
    const received = new Map<string, RecordedEvent[]>();
    const members: ConsumerGroupMember[] = [];
    for (const who of ['a', 'b', 'c']) members.push(await member(received, who));
    // 8 partitions over 3 members: 3, 3 and 2, once all have seen each other.
    await waitUntil(
      () =>
        members.reduce((n, m) => n + m.partitions.length, 0) === 8 && members.every((m) => m.partitions.length >= 2),
    );

    await appendMany(60, 10, 'one');
    await waitUntil(() => [...received.values()].reduce((n, e) => n + e.length, 0) >= 600);
    // A quiet spell on purpose: a duplicate delivery would show up in it.
    await sleep(300);
    expectComplete(received, 600);
    // No duplicates while membership is stable, and each stream went to exactly one member.
    expect([...received.values()].reduce((n, e) => n + e.length, 0)).toBe(600);
    const owners = new Map<string, Set<string>>();
    for (const key of received.keys()) {
      const [who, stream] = key.split(':') as [string, string];
      owners.set(stream, (owners.get(stream) ?? new Set()).add(who));
    }
    expect(owners.size).toBe(60);
    expect([...owners.values()].every((set) => set.size === 1)).toBe(true);
  });

  it('hands the partitions of a member that leaves to the others, and shares with one that joins', async () => {
    const received = new Map<string, RecordedEvent[]>();
    const a = await member(received, 'a');
    const b = await member(received, 'b');
    await waitUntil(() => a.partitions.length + b.partitions.length === 8 && a.partitions.length === 4);
    await appendMany(40, 3, 'before');

    await b.stop();
    await waitUntil(() => a.partitions.length === 8);
    await appendMany(40, 3, 'after-leave');
    await waitUntil(() => new Set([...received.values()].flat().map((e) => e.position)).size >= 240);

    const c = await member(received, 'c');
    await waitUntil(() => c.partitions.length === 4 && a.partitions.length === 4);
    await appendMany(40, 3, 'after-join');
    await waitUntil(() => new Set([...received.values()].flat().map((e) => e.position)).size >= 360);
    expectComplete(received, 360);
  });

  it('reads the log once for all the partitions a member runs, not once per partition', async () => {
    const open = () =>
      openEventStore({
        client: createPostgresClient({ connectionString: databaseUrl as string, maxConnections: 4 }),
        schema: t.schema,
      });
    // Rows of the log the database visited, from its statistics: a connection reports them at
    // the latest when it ends, so only stores opened and closed here are counted.
    const visits = async () => {
      let last = -1;
      for (;;) {
        const [row] = await t.client.query<{ visits: string }>(
          `select pg_stat_clear_snapshot(), (select coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)
             from pg_stat_user_tables where schemaname = $1 and relname = 'events')::text as visits`,
          [t.schema],
        );
        const now = Number(row?.visits);
        if (now === last) return now;
        last = now;
        await sleep(300);
      }
    };
    const writer = await open();
    const total = 3_000;
    for (let i = 0; i < total; i += 60) {
      await writer.appendMulti(
        Array.from({ length: 60 }, (_, k) => ({
          streamId: `mail-${k}`,
          events: [{ type: 'Send', data: { n: i + k } }],
        })),
      );
    }
    await writer.close();
    const before = await visits();

    const store = await open();
    let received = 0;
    const member = subscriptions(store).joinGroup({
      group: 'readers',
      partitions: 16,
      heartbeatMs: 100,
      sessionTimeoutMs: 1000,
      pollIntervalMs: 100,
      handler: (events) => {
        received += events.length;
      },
    });
    await waitUntil(() => received >= total, { timeoutMs: 30_000 });
    await member.stop();
    await store.close();
    const used = (await visits()) - before;
    expect(received).toBe(total);
    // Read once per partition, the 16 partitions would visit the log 16 times (48,000 rows).
    expect(used).toBeGreaterThanOrEqual(total);
    expect(used).toBeLessThan(2 * total);
  });
});
