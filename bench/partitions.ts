/**
 * The `partitions` section of `npm run bench`: a log partitioned by position range
 * (`partitions(store).enable`) against the plain table, same workloads, rounds alternated:
 *
 * - single-event appends, 32 callers, random streams of 10k, expected version 'any';
 * - 100-event appends, one writer;
 * - reading the whole log in pages of 1000, and one 1000-event stream;
 * - how long `enable` holds appends back on a log of the seeded size (one scan of the table),
 *   and how long a detach of one range takes.
 *
 * The partitioned store is partitioned before it is seeded, in ranges of a quarter of the
 * seeded log, with enough attached ahead that nothing lands in the default partition: every
 * workload crosses several partitions.
 */
import { createPostgresClient, type EventStore, integrity, lifecycle, openEventStore, partitions } from '@annals/core';
import { type Measurement, measure, type Row, row, timeIt } from './measure.js';

const rounds = 2;

export async function partitionsSection(url: string, n: (count: number) => number): Promise<Row[]> {
  const seeded = n(200_000);
  const size = Math.max(1000, Math.round(seeded / 4));
  const open = (schema: string) =>
    openEventStore({ client: createPostgresClient({ connectionString: url, maxConnections: 10 }), schema });
  const plain = await open('bench_plain_log');
  const split = await open('bench_partitioned_log');
  try {
    await partitions(split).enable({ size });
    await partitions(split).maintain({ ahead: 2 });
    for (const store of [plain, split]) await seed(store, seeded);
    // As an operator's cron would: ranges attached ahead of the head again.
    await partitions(split).maintain({ ahead: 2 });
    // Partitioning a populated log, on a third store.
    const late = await open('bench_enable_log');
    await seed(late, seeded);
    const enabling = await timeIt(seeded, async () => {
      await partitions(late).enable({ size });
    });
    await late.close();
    console.log(
      `partitions: enable on ${seeded} events held appends back ${(1000 * enabling.seconds).toFixed(0)} ms; ranges of ${size}`,
    );

    const single = n(20_000);
    const appendOne = (store: EventStore) =>
      measure(single, 32, async (_w, _i, _s, op) => {
        await store.append(`account-${(op * 7919) % 10_000}`, [{ type: 'Deposited', data: { amount: op } }]);
      });
    const batches = n(20_000) / 100;
    const appendHundred = (store: EventStore) =>
      measure(batches, 1, async (_w, i) => {
        const events = Array.from({ length: 100 }, (_, k) => ({ type: 'ItemAdded', data: { i, k } }));
        await store.append(`cart-${store === plain ? 'p' : 's'}-${i}-${Math.random()}`, events, {
          expectedVersion: 'no-stream',
        });
      });
    const readLog = (store: EventStore) =>
      timeIt(seeded, async () => {
        let count = 0;
        for await (const _ of store.readAll({ pageSize: 1000, categories: ['seed'] })) count++;
        if (count !== seeded) throw new Error(`readAll delivered ${count} of ${seeded}`);
      });
    const readOne = (store: EventStore) =>
      timeIt(1000, async () => {
        let count = 0;
        for await (const _ of store.readStream('long-1')) count++;
        if (count !== 1000) throw new Error(`readStream delivered ${count} of 1000`);
      });

    const rows: Row[] = [];
    for (const [name, work, scaleBy] of [
      ['1 event/append, 32 callers, 10k streams', appendOne, 1],
      ['100 events/append, 1 writer', appendHundred, 100],
      [`readAll of ${seeded} events, pages of 1000`, readLog, 1],
      ['read one 1000-event stream (spread over every range)', readOne, 1],
    ] as const) {
      const best = { plain: undefined as Measurement | undefined, split: undefined as Measurement | undefined };
      for (let round = 0; round < rounds; round++) {
        for (const [key, store] of (round % 2 === 0
          ? [
              ['plain', plain],
              ['split', split],
            ]
          : [
              ['split', split],
              ['plain', plain],
            ]) as [keyof typeof best, EventStore][]) {
          const result = await work(store);
          result.eventsPerSecond *= scaleBy;
          if (!best[key] || result.eventsPerSecond > (best[key] as Measurement).eventsPerSecond) best[key] = result;
        }
      }
      rows.push(
        row(
          `partitioned log: ${name}`,
          { ...(best.plain as Measurement), name: 'plain events table' },
          best.split as Measurement,
          '>= 0.9x',
        ),
      );
    }

    // A detach: the first range, once every event in it is hidden (its streams tombstoned).
    const status = await partitions(split).status();
    const first = status.partitions[0];
    if (first?.toPosition) {
      for (let s = 0; s < 10; s++) await lifecycle(split).tombstone(`seed-${s}`, { reason: 'bench' });
      await lifecycle(split).setRetention('long-1', { truncateBefore: 1001, reason: 'bench' });
      await integrity(split).seal();
      const detaching = await timeIt(first.toPosition, async () => {
        await partitions(split).detach(first.name, { reason: 'bench' });
      });
      console.log(
        `partitions: detaching ${first.name} (${first.toPosition} events) took ${(1000 * detaching.seconds).toFixed(0)} ms`,
      );
    }
    return rows;
  } finally {
    await plain.close();
    await split.close();
  }
}

/** `events` events over 10 streams of ~180-byte payloads, and one 1000-event stream woven through. */
async function seed(store: EventStore, events: number): Promise<void> {
  const pad = 'x'.repeat(150);
  let long = 0;
  for (let done = 0; done < events; ) {
    const count = Math.min(500, events - done);
    await store.append(
      `seed-${Math.floor(done / 500) % 10}`,
      Array.from({ length: count }, (_, i) => ({ type: 'Seeded', data: { i: done + i, pad } })),
    );
    done += count;
    if (long < 1000) {
      const more = Math.min(1000 - long, Math.ceil((1000 * 500) / events));
      await store.append(
        'long-1',
        Array.from({ length: more }, (_, i) => ({ type: 'Seeded', data: { i: long + i } })),
      );
      long += more;
    }
  }
}
