/**
 * A consumer-group member's reader: one read of the log serves all its partitions. Each
 * partition must get from it exactly what a read of its own gets — its events, each once, in
 * log order, none skipped — however the partitions interleave, lag, or race appends.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../src/index.js';
import { readAllEvents } from '../src/store/event-reads.js';
import { GroupReader } from '../src/subscriptions/group-reader.js';
import { backends, useTestStore } from './support/backends.js';

const count = 8;

describe.each(backends)('the group reader on $name', (backend) => {
  const t = useTestStore(backend);

  const append = async (from: number, n: number) => {
    for (let i = from; i < from + n; i++) {
      await t.store.append(`${i % 3 === 0 ? 'skip' : 'order'}-${i % 23}`, [{ type: 'Placed', data: { i } }]);
    }
  };

  /** What partition `p` reads on its own: the oracle. */
  const alone = async (p: number) =>
    (
      await readAllEvents(t.client, t.schema, 0, 100_000, {
        categories: ['order'],
        partition: { count, index: p },
      })
    ).map((e) => e.position);

  const reader = (maxEvents: number) =>
    new GroupReader(t, { categories: ['order'] }, { count, batchSize: 5, maxEvents });

  it('hands each partition its events once, in order, whatever order the partitions read in', async () => {
    await append(0, 150);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: count - 1 }), { minLength: 40, maxLength: 160 }),
        fc.integer({ min: 5, max: 60 }),
        async (turns, maxEvents) => {
          const group = reader(maxEvents);
          group.own(Array.from({ length: count }, (_, p) => p));
          const positions = new Array<number>(count).fill(0);
          const got = Array.from({ length: count }, () => [] as number[]);
          const step = async (p: number) => {
            const page = await group.read(p, positions[p] as number, 5);
            expect(page.events.length).toBeLessThanOrEqual(5);
            expect(page.upTo).toBeGreaterThanOrEqual(page.events.at(-1)?.position ?? 0);
            got[p]?.push(...page.events.map((e: RecordedEvent) => e.position));
            positions[p] = page.upTo;
            return page;
          };
          for (const p of turns) await step(p);
          // Then every partition to the end.
          for (let p = 0; p < count; p++) {
            for (;;) {
              const page = await step(p);
              if (page.live && page.events.length === 0) break;
            }
          }
          for (let p = 0; p < count; p++) expect(got[p]).toEqual(await alone(p));
        },
      ),
      { numRuns: 12 },
    );
  });

  it('serves partitions reading at once while events are appended, and one read wakes them all', async () => {
    await append(0, 60);
    const group = reader(400);
    group.own(Array.from({ length: count }, (_, p) => p));
    const got = Array.from({ length: count }, () => [] as number[]);
    // The head once the appends are done; until then, consumers keep reading.
    let final = Number.POSITIVE_INFINITY;
    const consume = async (p: number) => {
      let position = 0;
      for (;;) {
        const page = await group.read(p, position, 5);
        got[p]?.push(...page.events.map((e) => e.position));
        position = page.upTo;
        if (page.live && page.events.length === 0) {
          if (position >= final) return;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    };
    const consumers = Array.from({ length: count }, (_, p) => consume(p));
    await append(60, 140);
    final = await t.store.headPosition();
    await Promise.all(consumers);
    for (let p = 0; p < count; p++) expect(got[p]).toEqual(await alone(p));

    // Caught up, all partitions asking at once (as one append's wake-up makes them): one read
    // that began before they asked, and one after, instead of one each.
    const idle = group.reads;
    const head = await t.store.headPosition();
    const pages = await Promise.all(Array.from({ length: count }, (_, p) => group.read(p, head, 5)));
    expect(pages.map((page) => [page.events.length, page.upTo, page.live])).toEqual(
      Array.from({ length: count }, () => [0, head, true]),
    );
    expect(group.reads - idle).toBe(2);
  });

  it('reads a partition on its own when it is behind the window or not among those run', async () => {
    await append(0, 120);
    const group = reader(20);
    group.own([0, 1, 2, 3]);
    /** Every page of `p` from the start, until it is live. */
    const drain = async (p: number, limit: number) => {
      const got: number[] = [];
      for (let position = 0; ; ) {
        const page = await group.read(p, position, limit);
        got.push(...page.events.map((e) => e.position));
        position = page.upTo;
        if (page.live && page.events.length === 0) return got;
      }
    };
    // Partition 0 runs ahead; the window keeps at most 20 events, so 1 falls behind it.
    expect(await drain(0, 5)).toEqual(await alone(0));
    const before = group.reads;
    expect(await drain(1, 5)).toEqual(await alone(1));
    expect(group.reads).toBeGreaterThan(before);
    // 7 is not run by this member: its reads are its own, and still right.
    expect(await drain(7, 1000)).toEqual(await alone(7));
    // A rebalance starts the window over; what was read stays right.
    group.own([6, 7]);
    expect(await drain(6, 1000)).toEqual(await alone(6));
    expect(await drain(7, 3)).toEqual(await alone(7));
  });
});
