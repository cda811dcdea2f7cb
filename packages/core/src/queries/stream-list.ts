/**
 * The streams of the log, in stream-id order, a page at a time: a loose index scan of the
 * (stream_id, stream_version) index (one probe per stream, never a pass over every event),
 * with each stream's last event and its lifecycle state. A category filter is applied as the
 * walk goes, so a page of a rare category may walk past many other streams.
 */
import type { SqlQueryable } from '../db/sql-client.js';

/** A stream as listed: its last event, and its lifecycle state. */
export interface StreamListRow {
  stream_id: string;
  version: string | number | bigint;
  last_position: string | number | bigint;
  last_event_at: Date;
  state: string | null;
}

/** Up to `limit` streams after `after` (in stream-id order), of `category` when given. */
export async function listStreamPage(
  db: SqlQueryable,
  schema: string,
  after: string,
  limit: number,
  category: string | null,
): Promise<StreamListRow[]> {
  return db.query<StreamListRow>(
    `with recursive walk(stream_id) as (
       (select e.stream_id from "${schema}".events e where e.stream_id > $1 order by e.stream_id limit 1)
       union all
       (select (select e.stream_id from "${schema}".events e
                 where e.stream_id > w.stream_id order by e.stream_id limit 1)
          from walk w where w.stream_id is not null)
     )
     select w.stream_id, last.stream_version as version, last.position as last_position,
            last.recorded_at as last_event_at, h.state
       from walk w
       cross join lateral (
         select e.stream_version, e.position, e.recorded_at from "${schema}".events e
          where e.stream_id = w.stream_id order by e.stream_version desc limit 1) last
       left join "${schema}".stream_states h on h.stream_id = w.stream_id
      where w.stream_id is not null and ($3::text is null or split_part(w.stream_id, '-', 1) = $3)
      limit $2`,
    [after, limit, category],
    { prepare: true },
  );
}
