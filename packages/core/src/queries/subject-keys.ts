/** Subject keys (sql/0006_personal_data.sql): one random AES key per data subject. */
import { randomBytes } from 'node:crypto';
import type { SqlQueryable } from '../db/sql-client.js';

type Int8 = string | number | bigint;

/**
 * The keys of `subjects`, creating those that do not exist yet. A subject created by a
 * concurrent call between this statement's snapshot and its insert is read again.
 */
export async function keysFor(
  db: SqlQueryable,
  schema: string,
  subjects: readonly string[],
): Promise<Map<string, Buffer>> {
  const fresh = subjects.map(() => randomBytes(32).toString('hex'));
  const run = () =>
    db.query<{ subject_id: string; key: Uint8Array }>(
      `with created as (
         insert into "${schema}".subject_keys (subject_id, key)
         select s, decode(k, 'hex') from unnest($1::text[], $2::text[]) as t(s, k)
         on conflict (subject_id) do nothing
         returning subject_id, key)
       select subject_id, key from created
       union all
       select subject_id, key from "${schema}".subject_keys where subject_id = any($1::text[])`,
      [subjects, fresh],
      { prepare: true },
    );
  let rows = await run();
  if (new Set(rows.map((r) => r.subject_id)).size < subjects.length) rows = await run();
  return new Map(rows.map((row) => [row.subject_id, Buffer.from(row.key)]));
}

/** The keys that exist among `subjects` (forgotten subjects are absent). */
export async function readKeys(
  db: SqlQueryable,
  schema: string,
  subjects: readonly string[],
): Promise<Map<string, Buffer>> {
  const rows = await db.query<{ subject_id: string; key: Uint8Array }>(
    `select subject_id, key from "${schema}".subject_keys where subject_id = any($1::text[])`,
    [subjects],
    { prepare: true },
  );
  return new Map(rows.map((row) => [row.subject_id, Buffer.from(row.key)]));
}

/**
 * Deletes a subject's key and the snapshots of every stream holding its personal data (they
 * may hold it decrypted). Returns whether a key existed, when it was made, and how many
 * snapshots and events were concerned.
 */
export async function deleteSubject(
  db: SqlQueryable,
  schema: string,
  subject: string,
): Promise<{ existed: boolean; keyCreatedAt: Date | null; snapshots: number; events: number }> {
  const [row] = await db.query<{ created_at: Date | null; snapshots: Int8; events: Int8 }>(
    `with gone as (
       delete from "${schema}".subject_keys where subject_id = $1 returning created_at),
     holding as (
       select stream_id from "${schema}".events
        where metadata ? '$personal' and metadata #>> '{$personal,subject}' = $1),
     dropped as (
       delete from "${schema}".snapshots where stream_id in (select stream_id from holding) returning 1)
     select (select created_at from gone) as created_at,
            (select count(*) from dropped) as snapshots,
            (select count(*) from holding) as events`,
    [subject],
  );
  return {
    existed: row?.created_at != null,
    keyCreatedAt: row?.created_at ?? null,
    snapshots: Number(row?.snapshots ?? 0),
    events: Number(row?.events ?? 0),
  };
}
