/**
 * A restore carries the streams' lifecycle states: an original with a stream in each state
 * (soft-deleted, re-opened after a delete, tombstoned, archived, unarchived, with retention,
 * truncated) exported and restored into a fresh schema answers every read, and every append,
 * as the original does; `verify` passes on the copy.
 */
import { describe, expect, it } from 'vitest';
import { type EventStore, integrity, lifecycle, toArray, transfer } from '../src/index.js';
import { backends, openTestStore, useTestStore } from './support/backends.js';

const ids = ['del', 'reopened', 'tomb', 'arch', 'unarch', 'kept', 'cut', 'reserved', 'plain'].map((s) => `acct-${s}`);

const outcome = <T>(promise: Promise<T>) =>
  promise.then(
    (value) => ({ ok: value }),
    (error: { code?: string }) => ({ error: error.code ?? String(error) }),
  );

/** What a store answers about each stream and its log, minus the times the copy cannot share. */
async function answers(store: EventStore) {
  const streams: Record<string, unknown> = {};
  for (const id of ids) {
    const info = await store.getStream(id);
    const versions = (options?: Parameters<EventStore['readStream']>[1]) =>
      outcome(toArray(store.readStream(id, options)).then((events) => events.map((e) => e.streamVersion)));
    streams[id] = {
      state: info?.state,
      truncateBefore: info?.truncateBefore,
      retention: info?.retention,
      read: await versions(),
      readArchived: await versions({ includeArchived: true }),
      readDeleted: await versions({ includeDeleted: true }),
    };
  }
  const log = (await toArray(store.readAll())).map((e) => e.position);
  const everything = (await toArray(store.readAll({ includeDeleted: true, includeArchived: true }))).length;
  return { streams, log, everything };
}

/** Appends that each state takes or refuses, run on a store (they change it). */
async function appendAnswers(store: EventStore) {
  const results: Record<string, unknown> = {};
  for (const id of ids) {
    const exact = await outcome(
      store
        .getStream(id)
        .then((info) => store.append(id, [{ type: 'Probed', data: {} }], { expectedVersion: info?.version ?? 0 })),
    );
    results[id] = 'ok' in exact ? 'appended' : exact.error;
  }
  results.reopen = await outcome(
    store.append('acct-del', [{ type: 'Probed', data: {} }], { expectedVersion: 'any' }),
  ).then((r) => ('ok' in r ? 'appended' : r.error));
  return results;
}

describe.each(backends)('restore of lifecycle states on $name', (backend) => {
  const t = useTestStore(backend);

  it('a restored copy answers reads and appends as the original, and verifies', async () => {
    const { store } = t;
    const life = lifecycle(store);
    const by = { reason: 'test', actor: 'ops' };
    for (const id of ids.filter((s) => s !== 'acct-reserved')) {
      await store.append(
        id,
        [1, 2, 3, 4].map((n) => ({ type: 'Deposited', data: { n } })),
      );
    }
    await life.delete('acct-del', by);
    await life.delete('acct-reopened', by);
    await store.append('acct-reopened', [{ type: 'Deposited', data: { n: 5 } }], { expectedVersion: 'any' });
    await life.setRetention('acct-reopened', { maxCount: 3, ...by });
    await life.tombstone('acct-tomb', by);
    await life.archive('acct-arch', by);
    await life.archive('acct-unarch', by);
    await life.unarchive('acct-unarch', by);
    await life.setRetention('acct-kept', { maxCount: 2, ...by });
    await life.setRetention('acct-kept', { maxAge: 3600, ...by });
    await life.setRetention('acct-cut', { truncateBefore: 3, ...by });
    await life.tombstone('acct-reserved', by);
    await store.append('acct-plain', [{ type: 'Deposited', data: { n: 5 } }]);
    const text = (await toArray(transfer(store).export())).join('');

    const copy = await openTestStore(backend);
    try {
      await transfer(copy.store).import(text, { mode: 'restore', batchSize: 7 });
      const original = await answers(store);
      expect(await answers(copy.store)).toEqual(original);
      // The answers are the lifecycle's own, not all alike.
      expect(original.streams).toMatchObject({
        'acct-del': { state: 'deleted', read: { error: 'STREAM_DELETED' } },
        'acct-reopened': {
          state: 'active',
          read: { ok: [5] },
          readDeleted: { ok: [1, 2, 3, 4, 5] },
          truncateBefore: 5,
        },
        'acct-tomb': { state: 'tombstoned', read: { error: 'STREAM_DELETED' } },
        'acct-arch': { state: 'archived', read: { error: 'STREAM_ARCHIVED' }, readArchived: { ok: [1, 2, 3, 4] } },
        'acct-unarch': { state: 'active', read: { ok: [1, 2, 3, 4] } },
        'acct-kept': { read: { ok: [3, 4] }, retention: { maxCount: 2, maxAge: 3600 } },
        'acct-cut': { read: { ok: [3, 4] }, truncateBefore: 3 },
        'acct-reserved': { state: 'tombstoned' },
      });
      expect(await integrity(copy.store).verify()).toMatchObject({ ok: true });
      // An export of the copy is the same bytes: the restore recorded nothing of its own.
      expect((await toArray(transfer(copy.store).export())).join('')).toBe(text);

      const refusals = await appendAnswers(store);
      expect(await appendAnswers(copy.store)).toEqual(refusals);
      expect(refusals).toMatchObject({
        'acct-tomb': 'STREAM_TOMBSTONED',
        'acct-reserved': 'STREAM_TOMBSTONED',
        'acct-arch': 'STREAM_ARCHIVED',
        'acct-del': 'STREAM_DELETED',
        'acct-plain': 'appended',
        reopen: 'appended',
      });
      expect(await answers(copy.store)).toEqual(await answers(store));
    } finally {
      await copy.cleanup();
    }
  });

  it('a resumed restore sets the states from the whole file, and re-running it changes nothing', async () => {
    const { store } = t;
    await store.append('acct-del', [{ type: 'Deposited', data: { n: 1 } }]);
    await lifecycle(store).delete('acct-del', { reason: 'test' });
    await store.append('acct-del', [{ type: 'Deposited', data: { n: 2 } }], { expectedVersion: 'any' });
    await lifecycle(store).delete('acct-del', { reason: 'again' });
    const text = (await toArray(transfer(store).export())).join('');
    const lines = text.trimEnd().split('\n');
    const copy = await openTestStore(backend);
    try {
      // The first two lines, then the whole file (its first two lines are skipped).
      await transfer(copy.store).import(`${lines.slice(0, 2).join('\n')}\n`, { mode: 'restore' });
      expect((await copy.store.getStream('acct-del'))?.state).toBe('deleted');
      const result = await transfer(copy.store).import(text, { mode: 'restore' });
      expect(result).toMatchObject({ skipped: 2, imported: lines.length - 2 });
      await transfer(copy.store).import(text, { mode: 'restore' });
      expect(await answers(copy.store)).toEqual(await answers(store));
      expect((await copy.store.getStream('acct-del'))?.truncateBefore).toBe(3);
    } finally {
      await copy.cleanup();
    }
  });
});
