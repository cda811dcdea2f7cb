/**
 * `annals partitions enable|status|maintain|detach` as an operator runs them: the real bin in
 * a child process, on this test file's PostgreSQL database.
 */
import { createPostgresClient, type EventStore, integrity, lifecycle, openEventStore, toArray } from '@annals/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, freshSchema } from '../../core/test/support/backends.js';
import { annals } from './support/bin.js';

describe.runIf(databaseUrl)('annals partitions (PostgreSQL)', () => {
  const schema = freshSchema('cli_part');
  let store: EventStore;

  beforeAll(async () => {
    store = await openEventStore({ client: createPostgresClient({ connectionString: databaseUrl as string }), schema });
    for (let i = 0; i < 20; i++) {
      await store.append(
        `old-${i % 2}`,
        Array.from({ length: 50 }, (_, n) => ({ type: 'Noted', data: { i, n } })),
      );
    }
  });

  afterAll(async () => {
    await store?.close();
  });

  it('partitions, reports, maintains, refuses a detach with the reason, then detaches', async () => {
    const bad = await annals(['partitions', 'enable', '--schema', schema, '--size', '10']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('INVALID_INPUT');

    const enabled = await annals(['partitions', 'enable', '--schema', schema, '--size', '1000', '--json']);
    expect(enabled.code).toBe(0);
    expect(JSON.parse(enabled.stdout)).toMatchObject({ changed: true, partitioned: true, size: 1000 });

    const maintained = await annals(['partitions', 'maintain', '--schema', schema, '--ahead', '3', '--json']);
    expect(maintained.code).toBe(0);
    expect(JSON.parse(maintained.stdout)).toEqual({ added: 2 });

    const status = await annals(['partitions', 'status', '--schema', schema]);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('events_p1 ');
    expect(status.stdout).toMatch(/events_p1\s+1\.\.1000/);

    await store.append('keep-1', [{ type: 'Noted', data: {} }]);
    await integrity(store).seal();
    const visible = await annals(['partitions', 'detach', 'events_p1', '--schema', schema, '--reason', 'retired']);
    expect(visible.code).toBe(1);
    expect(visible.stderr).toContain('RECLAIM_REFUSED');
    expect(visible.stderr).toContain('1000 event(s) not gone for good');

    for (const stream of ['old-0', 'old-1']) await lifecycle(store).tombstone(stream, { reason: 'retired' });
    await integrity(store).seal();
    const detached = await annals([
      'partitions',
      'detach',
      'events_p1',
      '--schema',
      schema,
      '--reason',
      'retired ledgers',
      '--actor',
      'ops@example.com',
      '--json',
    ]);
    expect(detached.code).toBe(0);
    expect(JSON.parse(detached.stdout)).toMatchObject({ fromPosition: 1, toPosition: 1000, eventCount: 1000 });
    expect((await toArray(store.readAll())).map((e) => e.streamId)).toEqual([
      'keep-1',
      '$lifecycle',
      '$lifecycle',
      '$lifecycle',
    ]);
    expect((await integrity(store).verify()).ok).toBe(true);

    const after = await annals(['partitions', 'status', '--schema', schema]);
    expect(after.stdout).toMatch(
      /reclaimed 1\.\.1000 \(1000 events, table events_p1\).*by ops@example\.com: retired ledgers/,
    );
  });
});
