/**
 * `annals delete`, `tombstone`, `archive` and `unarchive` as an operator runs them: the real
 * bin (its TypeScript entry point, through tsx) in a child process, on this test file's
 * PostgreSQL database, with its stdout, stderr and exit status.
 */
import { createPostgresClient, type EventStore, openEventStore, toArray } from '@annals/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, freshSchema } from '../../core/test/support/backends.js';
import { annals } from './support/bin.js';

describe.runIf(databaseUrl)('annals delete, tombstone, archive, unarchive and retention (PostgreSQL)', () => {
  const schema = freshSchema('cli_life');
  let store: EventStore;

  beforeAll(async () => {
    store = await openEventStore({ client: createPostgresClient({ connectionString: databaseUrl as string }), schema });
    for (const stream of ['account-1', 'account-2', 'account-3']) {
      await store.append(stream, [{ type: 'Opened', data: {} }]);
      await store.append(stream, [{ type: 'Deposited', data: { amount: 5 } }]);
    }
  });

  afterAll(async () => {
    await store?.close();
  });

  it('soft-deletes with --json, refuses a stale --expected-version and a missing --reason', async () => {
    const stale = await annals([
      'delete',
      'account-1',
      '--schema',
      schema,
      '--reason',
      'closed',
      '--expected-version',
      '1',
    ]);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('CONCURRENCY_CONFLICT');
    const noReason = await annals(['delete', 'account-1', '--schema', schema]);
    expect(noReason.code).toBe(1);
    expect(noReason.stderr).toContain('--reason');
    expect((await store.getStream('account-1'))?.state).toBe('active');

    const deleted = await annals([
      'delete',
      'account-1',
      '--schema',
      schema,
      '--reason',
      'closed by request',
      '--actor',
      'ops@example.com',
      '--expected-version',
      '2',
      '--json',
    ]);
    expect(deleted.code).toBe(0);
    expect(JSON.parse(deleted.stdout)).toMatchObject({
      streamId: 'account-1',
      state: 'deleted',
      previousState: 'active',
      changed: true,
      streamVersion: 2,
      truncateBefore: 3,
    });
    const [record] = await toArray(store.readStream('$lifecycle'));
    expect(record?.metadata).toEqual({ actor: 'ops@example.com', reason: 'closed by request' });

    const read = await annals(['read', 'account-1', '--schema', schema]);
    expect(read.code).toBe(1);
    expect(read.stderr).toContain('STREAM_DELETED');
    const hidden = await annals(['read', 'account-1', '--schema', schema, '--include-deleted', '--json']);
    expect(hidden.code).toBe(0);
    expect(
      hidden.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line).streamVersion),
    ).toEqual([1, 2]);
  });

  it('tombstones for good, archives then unarchives, and sets retention', async () => {
    const tombstoned = await annals(['tombstone', 'account-2', '--schema', schema, '--reason', 'retention over']);
    expect(tombstoned.code).toBe(0);
    expect(tombstoned.stdout).toContain('account-2 tombstoned');
    const refused = await annals(['archive', 'account-2', '--schema', schema, '--reason', 'x']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('STREAM_TOMBSTONED');

    const archived = await annals(['archive', 'account-3', '--schema', schema, '--reason', 'closed books', '--json']);
    expect(archived.code).toBe(0);
    expect(JSON.parse(archived.stdout)).toMatchObject({ state: 'archived', changed: true });
    expect((await store.getStream('account-3'))?.state).toBe('archived');
    const unarchived = await annals(['unarchive', 'account-3', '--schema', schema, '--reason', 'audit']);
    expect(unarchived.code).toBe(0);
    expect(unarchived.stdout).toContain('account-3 unarchived');
    expect((await store.getStream('account-3'))?.state).toBe('active');

    const retention = await annals([
      'retention',
      'account-3',
      '--schema',
      schema,
      '--reason',
      'keep one',
      '--max-count',
      '1',
      '--json',
    ]);
    expect(retention.code).toBe(0);
    expect(JSON.parse(retention.stdout)).toMatchObject({ changed: true, maxCount: 1, maxAge: null });
    expect((await toArray(store.readStream('account-3'))).map((e) => e.streamVersion)).toEqual([2]);
    const bad = await annals(['retention', 'account-3', '--schema', schema, '--reason', 'x', '--max-age', '0']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--max-age');
  });
});
