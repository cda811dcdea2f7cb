/**
 * append_events plans once per connection (migration 0008): its array checks are inlined, not
 * called (a SQL function that is called is parsed and planned on every call), and its
 * statements use their generic plans. The checks still refuse what they refused.
 */

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqlClient } from '../src/index.js';
import { backends, openTestStore, type TestBackend, type TestStore } from './support/backends.js';

const call = (schema: string) =>
  `select * from "${schema}".append_events(
     array[1], array['plans-' || $1::text], array[-1::bigint], array[1], array[1], array[1],
     array[$2::uuid], array['Planned'], array['{"i":1}'::jsonb], array['{}'::jsonb])`;

describe.each(backends)('append_events plans on $name', (backend: TestBackend) => {
  let test: TestStore & { cleanup: () => Promise<void> };
  let client: SqlClient;
  beforeAll(async () => {
    test = await openTestStore(backend);
    client = test.client;
  });
  afterAll(async () => {
    await test?.cleanup();
  });

  it('runs its array checks inline: is_plain_array is never called', async () => {
    const calls = await client.transaction(async (tx) => {
      await tx.query(`select set_config('track_functions', 'all', true)`);
      await tx.query(call(test.schema), [randomUUID(), randomUUID()]);
      const rows = await tx.query<{ calls: string | number | null }>(
        `select pg_stat_get_xact_function_calls($1::regprocedure) as calls`,
        [`"${test.schema}".is_plain_array(anyarray, integer)`],
      );
      const outer = await tx.query<{ calls: string | number | null }>(
        `select pg_stat_get_xact_function_calls($1::regprocedure) as calls`,
        [
          `"${test.schema}".append_events(int[], text[], bigint[], int[], int[], int[], uuid[], text[], jsonb[], jsonb[])`,
        ],
      );
      return { checks: Number(rows[0]?.calls ?? 0), appends: Number(outer[0]?.calls ?? 0) };
    });
    // The counter works (append_events itself was counted), and the checks were not calls.
    expect(calls.appends).toBe(1);
    expect(calls.checks).toBe(0);
  });

  it('uses generic plans, with seq scans off, under its pinned search path', async () => {
    const rows = await client.query<{ config: string[] }>(
      `select proconfig as config from pg_proc where oid = $1::regprocedure`,
      [
        `"${test.schema}".append_events(int[], text[], bigint[], int[], int[], int[], uuid[], text[], jsonb[], jsonb[])`,
      ],
    );
    expect(rows[0]?.config).toEqual(
      expect.arrayContaining([
        'plan_cache_mode=force_generic_plan',
        'enable_seqscan=off',
        expect.stringMatching(/^search_path=pg_catalog, /),
      ]),
    );
  });

  it('still refuses malformed arrays (AN004)', async () => {
    await expect(
      client.query(
        `select * from "${test.schema}".append_events(
           array[1], array['plans-bad'], array[-1::bigint], array[2], array[1], array[1],
           array[$1::uuid], array['Planned'], array['{}'::jsonb], array['{}'::jsonb])`,
        [randomUUID()],
      ),
    ).rejects.toMatchObject({ code: 'AN004' });
    await expect(
      client.query(
        `select * from "${test.schema}".append_events(
           array[1], array['plans-bad'], array[-1::bigint], array[1], array[1], array[1],
           array[null]::uuid[], array['Planned'], array['{}'::jsonb], array['{}'::jsonb])`,
      ),
    ).rejects.toMatchObject({ code: 'AN004' });
  });
});
