/**
 * Reclaiming space without rewriting the log: the events table partitioned by position range
 * in place, ranges attached ahead, and a full, sealed range of hidden events detached. The log
 * keeps its positions and the seal chain verifies through what left. Immutability holds for
 * every partition. On PostgreSQL, partitioning and attaching under running appends loses and
 * reorders nothing.
 */
import { describe, expect, it } from 'vitest';
import {
  type EventStore,
  InvalidInputError,
  integrity,
  lifecycle,
  partitions,
  ReclaimRefusedError,
  type RecordedEvent,
  StreamTombstonedError,
  toArray,
  transfer,
} from '../src/index.js';
import { backends, openTestStore, postgresBackend, rawConnection, type TestBackend } from './support/backends.js';

const by = { reason: 'retired ledger', actor: 'ops@example.com' };

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/** Appends `count` events spread over `streams` streams of `category`, 50 to an append. */
async function fill(store: EventStore, category: string, streams: number, count: number): Promise<void> {
  for (let done = 0; done < count; ) {
    const n = Math.min(50, count - done);
    await store.append(
      `${category}-${Math.floor(done / 50) % streams}`,
      Array.from({ length: n }, (_, i) => ({ type: 'Noted', data: { i: done + i } })),
    );
    done += n;
  }
}

const positions = (events: RecordedEvent[]) => events.map((e) => e.position);

describe.each(backends)('a partitioned log on $name', (backend: TestBackend) => {
  it('partitions a populated log in place: every event still read, appends go on, verify holds', async () => {
    const { store, client, schema, cleanup } = await openTestStore(backend);
    try {
      await fill(store, 'ledger', 7, 1_250);
      const before = await toArray(store.readAll());
      const stream = await toArray(store.readStream('ledger-3'));

      expect(await partitions(store).enable({ size: 1_000 })).toBe(true);
      expect(await partitions(store).enable({ size: 1_000 })).toBe(false);
      const status = await partitions(store).status();
      expect(status.partitioned).toBe(true);
      expect(status.size).toBe(1_000);
      expect(status.partitions).toEqual([
        { name: 'events_p1', fromPosition: 1, toPosition: 2_000 },
        { name: 'events_p2001', fromPosition: 2_001, toPosition: 3_000 },
        { name: 'events_default', fromPosition: null, toPosition: null },
      ]);
      const [kind] = await client.query<{ relkind: string }>(
        `select relkind from pg_class where oid = '"${schema}".events'::regclass`,
      );
      expect(kind?.relkind).toBe('p');

      // The same store (its prepared statements made before the swap) reads the same log.
      expect(await toArray(store.readAll())).toEqual(before);
      expect(await toArray(store.readStream('ledger-3'))).toEqual(stream);
      await fill(store, 'ledger', 7, 1_000);
      const after = await toArray(store.readAll());
      expect(positions(after)).toEqual(Array.from({ length: 2_250 }, (_, i) => i + 1));
      // The second range took the events past the first.
      const [rows] = await client.query<{ n: string }>(`select count(*) as n from "${schema}".events_p2001`);
      expect(Number(rows?.n)).toBe(250);

      // Idempotency and versions still hold across partitions.
      const first = before[0] as RecordedEvent;
      const again = await store.append(first.streamId, [{ id: first.id, type: 'Noted', data: first.data }]);
      expect(again.duplicate).toBe(true);
      await expect(store.append('ledger-3', [{ type: 'Noted', data: {} }], { expectedVersion: 1 })).rejects.toThrow(
        /expected/,
      );

      await integrity(store).seal();
      const report = await integrity(store).verify();
      expect(report).toMatchObject({ ok: true, checked: 2_250, reclaimed: 0 });

      // Bulk import (COPY) into the partitioned log: a re-run of its own export skips every
      // event, and a restore into a fresh partitioned log reproduces it byte for byte.
      const file = (await toArray(transfer(store).export())).join('');
      expect(await transfer(store).import(file, { mode: 'append' })).toMatchObject({ imported: 0, skipped: 2_250 });
      const copy = await openTestStore(backend);
      try {
        await partitions(copy.store).enable({ size: 1_000 });
        expect(await transfer(copy.store).import(file, { mode: 'restore' })).toMatchObject({ imported: 2_250 });
        expect((await toArray(transfer(copy.store).export())).join('')).toBe(file);
        expect((await partitions(copy.store).status()).partitions.map((p) => p.name)).toEqual([
          'events_p1',
          'events_default',
        ]);
        expect((await integrity(copy.store).verify()).ok).toBe(true);
      } finally {
        await copy.cleanup();
      }
    } finally {
      await cleanup();
    }
  });

  it('refuses to update, delete or truncate events in every partition', async () => {
    const { store, client, schema, cleanup } = await openTestStore(backend);
    try {
      await fill(store, 'ledger', 3, 100);
      await partitions(store).enable({ size: 1_000 });
      // Rows in every partition (a row trigger has nothing to refuse in an empty table).
      await fill(store, 'ledger', 3, 2_000);
      for (const table of ['events', 'events_p1', 'events_p1001', 'events_default']) {
        for (const sql of [
          `update "${schema}".${table} set data = '{}'`,
          `delete from "${schema}".${table}`,
          `truncate "${schema}".${table}`,
        ]) {
          const error = (await client.query(sql).then(
            () => ({ code: 'accepted' }),
            (e: unknown) => e,
          )) as { code?: string; cause?: { code?: string } };
          expect(error.code ?? error.cause?.code, sql).toBe('AN001');
        }
      }
      expect(await store.headPosition()).toBe(2_100);
    } finally {
      await cleanup();
    }
  });

  it('lands events past every range in the default partition, and maintain attaches ranges after them', async () => {
    const { store, client, schema, cleanup } = await openTestStore(backend);
    try {
      await partitions(store).enable({ size: 1_000 });
      // Ranges: 1..1000 (one empty range ahead of the head), then the default partition.
      await fill(store, 'ledger', 5, 2_300);
      const [inDefault] = await client.query<{ n: string }>(`select count(*) as n from "${schema}".events_default`);
      expect(Number(inDefault?.n)).toBe(1_300);
      expect(await partitions(store).maintain({ ahead: 2 })).toBe(2);
      expect(await partitions(store).maintain({ ahead: 2 })).toBe(0);
      const names = (await partitions(store).status()).partitions.map((p) => [p.name, p.fromPosition, p.toPosition]);
      expect(names).toEqual([
        ['events_p1', 1, 1_000],
        ['events_p2301', 2_301, 3_300],
        ['events_p3301', 3_301, 4_300],
        ['events_default', null, null],
      ]);
      await fill(store, 'ledger', 5, 100);
      const [inRange] = await client.query<{ n: string }>(`select count(*) as n from "${schema}".events_p2301`);
      expect(Number(inRange?.n)).toBe(100);
      expect(positions(await toArray(store.readAll()))).toEqual(Array.from({ length: 2_400 }, (_, i) => i + 1));
      await expect(partitions(store).maintain({ ahead: 0 })).rejects.toBeInstanceOf(InvalidInputError);
    } finally {
      await cleanup();
    }
  });

  it('detaches a full, sealed range of hidden events: positions kept, seals verify through it', async () => {
    const { store, client, schema, cleanup } = await openTestStore(backend);
    try {
      await fill(store, 'old', 4, 600);
      await partitions(store).enable({ size: 1_000 });
      await store.append('keep-1', [{ type: 'Noted', data: { early: true } }]);
      await fill(store, 'old', 4, 399);
      // positions 1..1000 hold old-0..3 and keep-1@1; the next range starts at 1001.
      const refuse = async (partition: string, pattern: RegExp) => {
        const error = await rejection(partitions(store).detach(partition, by));
        expect(error).toBeInstanceOf(ReclaimRefusedError);
        expect(String((error as Error).message)).toMatch(pattern);
      };
      await integrity(store).seal();
      await refuse('events_p1', /not full: the head is at 1000/);
      await store.append('keep-1', [{ type: 'Noted', data: { late: true } }]);
      // Sealed to its last position only: the sealer's tip would leave with it.
      await refuse('events_p1', /not sealed past its end \(sealed up to 1000\)/);
      await refuse('events_p1001', /not full/);
      await refuse('events_default', /default partition/);
      await refuse('events_p7', /no partition events_p7/);
      await integrity(store).seal();
      await refuse('events_p1', /1000 event\(s\) not gone for good/);
      for (const stream of ['old-1', 'old-2']) await lifecycle(store).tombstone(stream, by);
      await lifecycle(store).setRetention('keep-1', { truncateBefore: 2, reason: 'superseded' });
      // Soft-deleted, old-3's events are hidden, but it could be re-opened: without its last
      // event its versions would start over.
      await lifecycle(store).delete('old-3', by);
      // Archived is not gone: it can be unarchived and read again.
      await lifecycle(store).archive('old-0', by);
      await integrity(store).seal();
      await refuse('events_p1', /250 event\(s\) not gone for good \(for example old-0@1\)/);
      await lifecycle(store).unarchive('old-0', by);
      await lifecycle(store).tombstone('old-0', by);
      await integrity(store).seal();
      await refuse('events_p1', /the last event of 1 stream\(s\) that may take appends again \(for example old-3\)/);
      await lifecycle(store).tombstone('old-3', by);
      await integrity(store).seal();
      // An event edited behind its seal (as the owner, triggers off) may not leave unnoticed.
      await client.exec(`alter table "${schema}".events_p1 disable trigger user`);
      await client.query(`update "${schema}".events_p1 set data = '{"i": -1}' where position = 7`);
      await refuse('events_p1', /the event at position 7 .* does not match its seal/);
      // Put back as it was (position 7 held i = 6), the range may leave.
      await client.query(`update "${schema}".events_p1 set data = $1 where position = 7`, [JSON.stringify({ i: 6 })]);
      await client.exec(`alter table "${schema}".events_p1 enable trigger user`);
      const sealedBefore = await integrity(store).verify();
      expect(sealedBefore.ok).toBe(true);
      const liveBefore = await toArray(store.readAll());

      const result = await partitions(store).detach('events_p1', by);
      expect(result).toMatchObject({ partition: 'events_p1', fromPosition: 1, toPosition: 1_000, eventCount: 1_000 });
      // Recorded in the log too, with who and why, to be sealed like any event.
      const [record] = await toArray(store.readAll({ after: liveBefore.at(-1)?.position ?? 0 }));
      expect(record).toMatchObject({
        streamId: '$lifecycle',
        type: 'LogRangeDetached',
        data: {
          partition: 'events_p1',
          fromPosition: 1,
          toPosition: 1_000,
          eventCount: 1_000,
          logHash: result.logHash,
        },
        metadata: by,
      });
      // Detached, its rows are still guarded.
      const edit = (await client.query(`delete from "${schema}".events_p1`).then(
        () => ({ code: 'accepted' }),
        (e: unknown) => e,
      )) as { code?: string; cause?: { code?: string } };
      expect(edit.code ?? edit.cause?.code).toBe('AN001');

      // The log reads as before (everything detached was hidden), its positions unchanged.
      expect((await toArray(store.readAll())).slice(0, liveBefore.length)).toEqual(liveBefore);
      expect(liveBefore.every((e) => e.position > 1_000)).toBe(true);
      expect((await toArray(store.readStream('keep-1'))).map((e) => e.data)).toEqual([{ late: true }]);
      await expect(store.append('old-0', [{ type: 'Noted', data: {} }])).rejects.toBeInstanceOf(StreamTombstonedError);
      await store.append('keep-1', [{ type: 'Noted', data: { later: true } }]);
      // Finding a position by time skips the positions without an event.
      for (const e of await toArray(store.readAll())) {
        expect(await store.positionAt(e.recordedAt)).toBeGreaterThanOrEqual(e.position);
        expect(await store.positionAt(new Date(e.recordedAt.getTime() - 1))).toBeLessThan(e.position);
      }
      expect(await store.positionAt(new Date(0))).toBe(0);

      // The seal chain still verifies, through the detached range to the same head hash.
      await integrity(store).seal();
      const report = await integrity(store).verify({
        anchor: { position: sealedBefore.sealedUpTo, hash: sealedBefore.headHash as string },
      });
      expect(report).toMatchObject({ ok: true, reclaimed: 1_000, brokenCount: 0 });
      const status = await partitions(store).status();
      expect(status.partitions.map((p) => p.name)).not.toContain('events_p1');
      expect(status.reclaimed).toEqual([
        expect.objectContaining({
          fromPosition: 1,
          toPosition: 1_000,
          eventCount: 1_000,
          partition: 'events_p1',
          ...by,
        }),
      ]);
      expect(status.reclaimed[0]?.logHash).toMatch(/^[0-9a-f]{64}$/);

      // The detached table holds what left, for the owner to dump; the record cannot be changed.
      const [left] = await client.query<{ n: string }>(`select count(*) as n from "${schema}".events_p1`);
      expect(Number(left?.n)).toBe(1_000);
      const error = (await rejection(client.query(`delete from "${schema}".reclaimed_ranges`))) as {
        code?: string;
        cause?: { code?: string };
      };
      expect(error.code ?? error.cause?.code).toBe('AN001');

      // A seal of the detached range rewritten (as the owner, triggers off) is caught.
      await client.exec(`alter table "${schema}".seals disable trigger user`);
      await client.query(`update "${schema}".seals set hash = sha256(hash) where position = 500`);
      await client.exec(`alter table "${schema}".seals enable trigger user`);
      const tampered = await integrity(store).verify();
      expect(tampered.ok).toBe(false);
      expect(tampered.broken[0]).toMatchObject({ position: 500, problem: 'seal-changed' });
    } finally {
      await cleanup();
    }
  });

  it('believes a reclaimed range only with its sealed record in the log', async () => {
    const { store, client, schema, cleanup } = await openTestStore(backend);
    try {
      await fill(store, 'acct', 2, 100);
      await integrity(store).seal();
      const [seal] = await client.query<{ log_hash: Uint8Array }>(
        `select log_hash from "${schema}".seals where position = 3`,
      );
      // An event deleted behind the trigger, and a row claiming its range was detached.
      await client.exec(`alter table "${schema}".events disable trigger user`);
      await client.query(`delete from "${schema}".events where position = 3`);
      await client.exec(`alter table "${schema}".events enable trigger user`);
      await client.query(
        `insert into "${schema}".reclaimed_ranges (from_position, to_position, partition_name, event_count, log_hash, actor, reason)
         values (3, 3, 'events_p3', 1, $1, 'mallory', 'cover-up')`,
        [seal?.log_hash],
      );
      const report = await integrity(store).verify();
      expect(report.ok).toBe(false);
      expect(report.reclaimed).toBe(0);
      expect(report.broken[0]).toMatchObject({ position: 3, problem: 'event-missing' });
    } finally {
      await cleanup();
    }
  });

  it('refuses in an import an event id stored in another partition', async () => {
    const { store, cleanup } = await openTestStore(backend);
    try {
      await partitions(store).enable({ size: 1_000 });
      await fill(store, 'acct', 2, 1_100);
      const [first] = await toArray(store.readAll());
      const line = JSON.stringify({
        id: first?.id,
        streamId: 'imported-1',
        streamVersion: 1,
        type: 'Noted',
        data: { other: true },
        metadata: {},
        recordedAt: new Date().toISOString(),
      });
      await expect(transfer(store).import(`${line}\n`, { mode: 'append' })).rejects.toThrow(/event id/i);
      expect(await store.headPosition()).toBe(1_100);
    } finally {
      await cleanup();
    }
  });

  it('refuses bad input and an unpartitioned log with typed errors, changing nothing', async () => {
    const { store, cleanup } = await openTestStore(backend);
    try {
      await fill(store, 'ledger', 2, 10);
      await expect(partitions(store).detach('events_p1', by)).rejects.toBeInstanceOf(ReclaimRefusedError);
      await expect(partitions(store).maintain()).rejects.toBeInstanceOf(ReclaimRefusedError);
      for (const bad of [0, 999, 1.5, -1, Number.NaN, '1000']) {
        await expect(partitions(store).enable({ size: bad as number })).rejects.toBeInstanceOf(InvalidInputError);
      }
      for (const name of ['', 'events', 'seals', 'events_p1; drop table x', "events_p1' --", 'events_px']) {
        await expect(partitions(store).detach(name, by)).rejects.toBeInstanceOf(InvalidInputError);
      }
      await expect(partitions(store).detach('events_p1', { reason: ' ' })).rejects.toBeInstanceOf(InvalidInputError);
      expect((await partitions(store).status()).partitioned).toBe(false);
      expect(await store.headPosition()).toBe(10);
    } finally {
      await cleanup();
    }
  });
});

describe.runIf(backends.includes(postgresBackend))('partitioning under load on PostgreSQL', () => {
  it('gives up after 2 s behind a long reader, changing nothing, and appends go on', async () => {
    const { store, schema, cleanup } = await openTestStore(postgresBackend);
    const reader = await rawConnection();
    try {
      await fill(store, 'ledger', 2, 100);
      await reader.query('begin');
      await reader.query(`select count(*) from "${schema}".events`);
      const started = Date.now();
      const error = await rejection(partitions(store).enable({ size: 1_000 }));
      expect(error).toBeInstanceOf(ReclaimRefusedError);
      expect(String((error as Error).message)).toMatch(/the log is busy/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_800);
      await reader.query('rollback');
      expect((await partitions(store).status()).partitioned).toBe(false);
      await store.append('ledger-1', [{ type: 'Noted', data: {} }]);
      expect(await store.headPosition()).toBe(101);
      expect(await partitions(store).enable({ size: 1_000 })).toBe(true);
    } finally {
      await reader.end();
      await cleanup();
    }
  });

  it('runs maintain and detach at once without a deadlock, and maintain under writers while the head is in the default partition', async () => {
    const { store, cleanup } = await openTestStore(postgresBackend);
    let stop = false;
    let writers: Promise<void>[] = [];
    try {
      await partitions(store).enable({ size: 1_000 });
      await fill(store, 'gone', 4, 1_000);
      for (let s = 0; s < 4; s++) await lifecycle(store).tombstone(`gone-${s}`, by);
      // The head is now in the default partition (only 1..1000 was a range).
      const errors: unknown[] = [];
      writers = Array.from({ length: 6 }, async (_, w) => {
        for (let i = 0; !stop; i++) {
          await store.append(`live-${w}`, [{ type: 'Noted', data: { i } }]).catch((e: unknown) => errors.push(e));
        }
      });
      await integrity(store).seal();
      // Each waits its turn on the log lock for at most 2 s, then gives up as busy (by design:
      // a loaded machine can hold the other one that long); a deadlock would be another error.
      const [detached, added] = await Promise.all([
        partitions(store).detach('events_p1', by),
        partitions(store).maintain({ ahead: 2 }),
      ]);
      expect(detached.eventCount).toBe(1_000);
      expect(added).toBe(2);
      for (let round = 0; round < 3; round++)
        expect(await partitions(store).maintain({ ahead: 3 })).toBeGreaterThanOrEqual(0);
      stop = true;
      await Promise.all(writers);
      expect(errors).toEqual([]);
    } finally {
      // Writers stop whatever failed, so that a failure is reported, not a run that never ends.
      stop = true;
      await Promise.allSettled(writers);
      await cleanup();
    }
  });

  it('lets one of two simultaneous enables partition the log; the other finds it done', async () => {
    const { store, cleanup } = await openTestStore(postgresBackend);
    try {
      await fill(store, 'ledger', 2, 200);
      const results = await Promise.all([
        partitions(store).enable({ size: 1_000 }),
        partitions(store).enable({ size: 1_000 }),
      ]);
      expect(results.sort()).toEqual([false, true]);
    } finally {
      await cleanup();
    }
  });

  it('partitions and attaches ranges while writers append: nothing lost, the log dense and in order', async () => {
    const { store, cleanup } = await openTestStore(postgresBackend);
    try {
      await fill(store, 'load', 10, 500);
      let stop = false;
      let acknowledged = 500;
      const errors: unknown[] = [];
      const writer = async (w: number) => {
        for (let i = 0; !stop; i++) {
          try {
            await store.append(`load-${w}-${i % 5}`, [{ type: 'Noted', data: { w, i } }]);
            acknowledged++;
          } catch (error) {
            errors.push(error);
          }
        }
      };
      const writers = Array.from({ length: 8 }, (_, w) => writer(w));
      const waitFor = async (n: number) => {
        while (acknowledged < n) await new Promise((resolve) => setTimeout(resolve, 5));
      };
      await waitFor(800);
      expect(await partitions(store).enable({ size: 1_000 })).toBe(true);
      for (let round = 0; round < 4; round++) {
        await waitFor(1_500 + round * 500);
        await partitions(store).maintain({ ahead: 2 });
      }
      stop = true;
      await Promise.all(writers);
      expect(errors).toEqual([]);
      const log = await toArray(store.readAll());
      expect(log.length).toBe(acknowledged);
      expect(positions(log)).toEqual(Array.from({ length: acknowledged }, (_, i) => i + 1));
      expect(new Set(log.map((e) => e.id)).size).toBe(acknowledged);
      const status = await partitions(store).status();
      expect(status.partitions.length).toBeGreaterThanOrEqual(4);
    } finally {
      await cleanup();
    }
  });
});
