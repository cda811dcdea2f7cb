/**
 * Invariant 4: of appends racing with the same expected version exactly one wins, and stream
 * versions stay dense. Property tests compare the store with an in-memory model.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ConcurrencyError,
  createPostgresClient,
  type EventStore,
  type ExpectedVersion,
  openEventStore,
  type RecordedEvent,
  toArray,
} from '../src/index.js';
import { backends, capabilities, databaseUrl, postgresBackend, testSchema, useTestStore } from './support/backends.js';

/** Checks the log's shape: dense positions, dense versions per stream, stream order = global order. */
function expectWellFormedLog(events: RecordedEvent[]): void {
  expect(events.map((e) => e.position)).toEqual(events.map((_, i) => i + 1));
  const lastVersion = new Map<string, number>();
  for (const event of events) {
    expect(event.streamVersion).toBe((lastVersion.get(event.streamId) ?? 0) + 1);
    lastVersion.set(event.streamId, event.streamVersion);
  }
}

describe.each(backends)('concurrency on $name', (backend) => {
  let store: EventStore;
  useTestStore(backend, (opened) => {
    store = opened.store;
  });

  it('lets exactly one of 20 racing appends with the same expected version win, round after round', async () => {
    for (let round = 0; round < 5; round++) {
      const expected = round * 2;
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) =>
          store.append(
            'race-1',
            [
              { type: 'E', data: { round, i } },
              { type: 'F', data: { round, i } },
            ],
            { expectedVersion: expected },
          ),
        ),
      );
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won).toHaveLength(1);
      for (const lost of results.filter((r) => r.status === 'rejected')) {
        expect(lost.reason).toBeInstanceOf(ConcurrencyError);
        expect(lost.reason).toMatchObject({ streamId: 'race-1', expected, actual: expected + 2 });
      }
    }
    const events = await toArray(store.readStream('race-1'));
    expect(events.map((e) => e.streamVersion)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
  });

  it('matches an in-memory model for any sequence of appends', async () => {
    const stream = fc.constantFrom('m-a', 'm-b', 'm-c');
    const expectation = fc.oneof(
      fc.constant<ExpectedVersion>('any'),
      fc.constant<ExpectedVersion>('no-stream'),
      fc.constant<ExpectedVersion>('stream-exists'),
      fc.integer({ min: -1, max: 1 }).map((delta) => ({ delta })),
    );
    const command = fc.record({ stream, expectation, count: fc.integer({ min: 1, max: 3 }) });

    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 25 }), async (commands) => {
        const schema = testSchema(backend);
        const s = await openEventStore({ client: backend.client(), closeClient: false, schema });
        try {
          const versions = new Map<string, number>();
          let head = 0;
          for (const { stream: id, expectation: exp, count } of commands) {
            const current = versions.get(id) ?? 0;
            const expectedVersion = typeof exp === 'object' ? Math.max(0, current + exp.delta) : exp;
            const ok =
              expectedVersion === 'any' ||
              (expectedVersion === 'no-stream' && current === 0) ||
              (expectedVersion === 'stream-exists' && current > 0) ||
              expectedVersion === current;
            const events = Array.from({ length: count }, (_, i) => ({ type: 'E', data: { i } }));
            const outcome = await s.append(id, events, { expectedVersion }).catch((e: unknown) => e);
            if (ok) {
              expect(outcome).toEqual({
                streamId: id,
                streamVersion: current + count,
                positions: events.map((_, i) => head + i + 1),
                duplicate: false,
                recordedAt: expect.any(Date),
              });
              versions.set(id, current + count);
              head += count;
            } else {
              expect(outcome).toMatchObject({ code: 'CONCURRENCY_CONFLICT', actual: current });
            }
          }
          const log = await toArray(s.readAll());
          expect(log).toHaveLength(head);
          expectWellFormedLog(log);
        } finally {
          await s.close();
          await backend.client().exec(`drop schema "${schema}" cascade`);
        }
      }),
      // Fewer runs where everything runs one at a time (and slower).
      { numRuns: capabilities(backend).concurrentConnections ? 25 : 15 },
    );
  });

  it('keeps the log well formed when random appends run concurrently', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ stream: fc.integer({ min: 0, max: 4 }), count: fc.integer({ min: 1, max: 4 }) }), {
          minLength: 5,
          maxLength: 40,
        }),
        async (appends) => {
          const schema = testSchema(backend);
          const s = await openEventStore({ client: backend.client(), closeClient: false, schema });
          try {
            const results = await Promise.all(
              appends.map(({ stream, count }) =>
                s.append(
                  `c-${stream}`,
                  Array.from({ length: count }, () => ({ type: 'E', data: {} })),
                ),
              ),
            );
            const log = await toArray(s.readAll());
            expectWellFormedLog(log);
            // Every result points at its own events.
            const byPosition = new Map(log.map((e) => [e.position, e]));
            results.forEach((result, i) => {
              expect(result.positions).toHaveLength(appends[i]?.count ?? 0);
              for (const position of result.positions) expect(byPosition.get(position)?.streamId).toBe(result.streamId);
              expect(byPosition.get(result.positions.at(-1) as number)?.streamVersion).toBe(result.streamVersion);
            });
          } finally {
            await s.close();
            await backend.client().exec(`drop schema "${schema}" cascade`);
          }
        },
      ),
      { numRuns: 10 },
    );
  });
});

describe.skipIf(!databaseUrl)('concurrency across processes on PostgreSQL', () => {
  const schema = testSchema(postgresBackend);
  const stores: EventStore[] = [];
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    const admin = createPostgresClient({ connectionString: databaseUrl as string });
    await admin.exec(`drop schema if exists "${schema}" cascade`);
    await admin.close();
  });

  it('with four stores on separate pools racing, exactly one append per expected version wins', async () => {
    for (let i = 0; i < 4; i++) {
      stores.push(
        await openEventStore({ client: createPostgresClient({ connectionString: databaseUrl as string }), schema }),
      );
    }
    for (let round = 0; round < 10; round++) {
      const results = await Promise.allSettled(
        stores.flatMap((s, i) =>
          Array.from({ length: 5 }, (_, j) =>
            s.append('shared-1', [{ type: 'E', data: { i, j } }], { expectedVersion: round }),
          ),
        ),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected') expect(r.reason).toMatchObject({ expected: round, actual: round + 1 });
      }
    }
    // Many streams written from all four stores at once: every append lands, the log stays well formed.
    await Promise.all(
      stores.flatMap((s, i) =>
        Array.from({ length: 200 }, (_, j) => s.append(`many-${j % 50}`, [{ type: 'E', data: { i, j } }])),
      ),
    );
    const log = await toArray(stores[0]?.readAll() as AsyncIterable<RecordedEvent>);
    expect(log).toHaveLength(10 + 800);
    expectWellFormedLog(log);
  });
});
