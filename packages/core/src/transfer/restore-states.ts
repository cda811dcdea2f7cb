/**
 * After a restore: the streams' lifecycle states (`stream_states`, sql/0009 and 0010), derived
 * from the log itself. Every lifecycle change is recorded in `$lifecycle` with the values it
 * left (lifecycle/lifecycle.ts): the state by the record's type, `truncateBefore` (which only
 * ever rises, so the largest recorded is the current one), and `maxCount` / `maxAge` of the last
 * `StreamRetentionSet`. The one change not recorded there is the re-opening of a soft-deleted
 * stream by an append; it shows in the log as an event of the stream past the version its
 * `StreamDeleted` recorded. So the states of a restored log are exactly the original's.
 *
 * A restore only copies into an empty log or its own prefix (a lifecycle change of the copy
 * would be an event the file does not hold, and the restore would be refused), so the states
 * are rewritten whole, under the log lock, in one transaction.
 */
import type { SqlQueryable } from '../db/sql-client.js';
import { lifecycleStream } from '../queries/lifecycle.js';

/** Rewrites `stream_states` of `schema` from its `$lifecycle` records; the number of streams with a state. */
export async function restoreStreamStates(tx: SqlQueryable, schema: string): Promise<number> {
  await tx.query(`select 1 from "${schema}".log_head where id for update`);
  await tx.query(`delete from "${schema}".stream_states`);
  const rows = await tx.query<{ stream_id: string }>(
    `with records as (
       select e.position, e.event_type as type, e.data->>'streamId' as stream_id, e.data, e.recorded_at
         from "${schema}".events e
        where e.stream_id = $1
          and e.event_type in ('StreamDeleted', 'StreamTombstoned', 'StreamArchived', 'StreamUnarchived', 'StreamRetentionSet')
          and e.data->>'streamId' is not null
     ), states as (
       select distinct on (stream_id) stream_id, type, (data->>'streamVersion')::bigint as at_version
         from records where type <> 'StreamRetentionSet'
        order by stream_id, position desc
     ), retention as (
       select distinct on (stream_id) stream_id, (data->>'maxCount')::bigint as max_count,
              (data->>'maxAge')::bigint as max_age
         from records where type = 'StreamRetentionSet'
        order by stream_id, position desc
     ), streams as (
       select stream_id, coalesce(max((data->>'truncateBefore')::bigint), 0) as truncate_before,
              max(recorded_at) as changed_at
         from records group by stream_id
     )
     insert into "${schema}".stream_states (stream_id, state, truncate_before, changed_at, max_count, max_age_seconds)
     select s.stream_id,
            case st.type
              when 'StreamTombstoned' then 'tombstoned'
              when 'StreamArchived' then 'archived'
              when 'StreamDeleted' then
                case when (select max(x.stream_version) from "${schema}".events x where x.stream_id = s.stream_id)
                          > st.at_version
                     then 'active' else 'deleted' end
              else 'active'
            end,
            s.truncate_before, s.changed_at, r.max_count, r.max_age
       from streams s
       left join states st on st.stream_id = s.stream_id
       left join retention r on r.stream_id = s.stream_id
     returning stream_id`,
    [lifecycleStream],
  );
  return rows.length;
}
