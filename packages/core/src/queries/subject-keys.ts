/** Subject keys (sql/0006_personal_data.sql): one random AES key per data subject. */
import { randomBytes } from 'node:crypto';
import type { SqlQueryable } from '../db/sql-client.js';

type Int8 = string | number | bigint;

/**
 * The keys of `subjects`, creating those that do not exist yet, locked (FOR KEY SHARE) until
 * the transaction ends: an erasure waits for the append using them, so no event is stored
 * under a key already deleted. Records which streams hold each subject's data. Sorted, so two
 * appends lock in the same order. Run it in the append's transaction.
 */
export async function keysFor(
  tx: SqlQueryable,
  schema: string,
  holdings: readonly { subject: string; streamId: string }[],
): Promise<Map<string, Buffer>> {
  const subjects = [...new Set(holdings.map((h) => h.subject))].sort();
  const pairs = [...new Map(holdings.map((h) => [`${h.subject}\u0000${h.streamId}`, h])).values()].sort((a, b) =>
    a.subject === b.subject ? (a.streamId < b.streamId ? -1 : 1) : a.subject < b.subject ? -1 : 1,
  );
  // One statement: new keys (locked by their insert), the streams that hold each subject, and
  // the existing keys locked FOR KEY SHARE. A key inserted meanwhile by a concurrent append is
  // not in this statement's snapshot: those are read again, locked, by a second statement.
  const rows = await tx.query<{ subject_id: string; key: Uint8Array }>(
    `with created as (
       insert into "${schema}".subject_keys (subject_id, key)
       select s, decode(k, 'hex') from unnest($1::text[], $2::text[]) as t(s, k)
       on conflict (subject_id) do nothing
       returning subject_id, key),
     held as (
       insert into "${schema}".subject_streams (subject_id, stream_id)
       select * from unnest($3::text[], $4::text[])
       on conflict do nothing),
     existing as (
       select subject_id, key from "${schema}".subject_keys
        where subject_id = any($1::text[]) order by subject_id for key share)
     select subject_id, key from created
     union all
     select subject_id, key from existing`,
    [
      subjects,
      subjects.map(() => randomBytes(32).toString('hex')),
      pairs.map((p) => p.subject),
      pairs.map((p) => p.streamId),
    ],
    { prepare: true },
  );
  const missing = subjects.filter((subject) => !rows.some((row) => row.subject_id === subject));
  if (missing.length > 0) {
    rows.push(
      ...(await tx.query<{ subject_id: string; key: Uint8Array }>(
        `select subject_id, key from "${schema}".subject_keys
          where subject_id = any($1::text[]) order by subject_id for key share`,
        [missing],
        { prepare: true },
      )),
    );
  }
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
 * Deletes a subject's key, then the snapshots of every stream holding its data (they may hold
 * it decrypted) and the error texts of its parked events. Two statements, in this order, in the caller's transaction: the delete waits
 * for appends and snapshot writes that hold the key (FOR KEY SHARE), and the second statement
 * then sees what they committed. Nothing is deleted when the subject has no key.
 */
export async function deleteSubject(
  tx: SqlQueryable,
  schema: string,
  subject: string,
): Promise<{ existed: boolean; snapshots: number; events: number }> {
  const gone = await tx.query(`delete from "${schema}".subject_keys where subject_id = $1 returning 1`, [subject]);
  if (gone.length === 0) return { existed: false, snapshots: 0, events: 0 };
  // Parked events keep the error their handler threw, which may quote personal data.
  const [row] = await tx.query<{ snapshots: Int8; events: Int8 }>(
    `with held as (
       select position from "${schema}".events
        where metadata ? '$personal' and metadata #>> '{$personal,subject}' = $1),
     dropped as (
       delete from "${schema}".snapshots
        where stream_id in (select stream_id from "${schema}".subject_streams where subject_id = $1)
       returning 1),
     blanked as (
       update "${schema}".parked_events set error = '(erased with its data subject)'
        where position in (select position from held)
       returning 1)
     select (select count(*) from dropped) as snapshots,
            (select count(*) from held) as events,
            (select count(*) from blanked) as parked`,
    [subject],
  );
  return { existed: true, snapshots: Number(row?.snapshots ?? 0), events: Number(row?.events ?? 0) };
}

/**
 * Subjects whose key is gone although no erasure of theirs is recorded (`SubjectForgotten` in
 * `$subject-<id>`): their data is unreadable, and not by anyone's lawful decision.
 */
export async function readKeysLostWithoutErasure(db: SqlQueryable, schema: string, limit: number): Promise<string[]> {
  const rows = await db.query<{ subject_id: string }>(
    `select distinct ss.subject_id from "${schema}".subject_streams ss
      where not exists (select 1 from "${schema}".subject_keys k where k.subject_id = ss.subject_id)
        and not exists (select 1 from "${schema}".events e
                         where e.stream_id = '$subject-' || ss.subject_id and e.event_type = 'SubjectForgotten')
      order by ss.subject_id
      limit $1`,
    [limit],
  );
  return rows.map((row) => row.subject_id);
}
