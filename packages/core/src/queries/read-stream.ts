/**
 * One page of a stream, by version, through the (stream_id, stream_version) unique index,
 * with the stream's lifecycle state (one probe of stream_states) in the same round trip.
 */
import type { SqlQueryable } from '../db/sql-client.js';
import type { RecordedEvent, StreamState } from '../types.js';
import { type StateColumns, visibleInStream } from './lifecycle.js';
import { type EventRow, eventParsers, toRecordedEvent } from './rows.js';

type Nullable<T> = { [K in keyof T]: T[K] | null };

/** A page of a stream and its lifecycle state. */
export interface StreamPage {
  state: StreamState;
  truncateBefore: number;
  events: RecordedEvent[];
}

/**
 * Events of `streamId` from `fromVersion` (inclusive) in `direction`, at most `limit`; without
 * `includeDeleted`, none hidden by a soft delete's truncation or the stream's retention. The
 * caller decides what the state means for the read.
 */
export async function readStreamPage(
  db: SqlQueryable,
  schema: string,
  streamId: string,
  direction: 'forward' | 'backward',
  fromVersion: number,
  limit: number,
  includeDeleted = false,
): Promise<StreamPage> {
  const [comparison, order] = direction === 'forward' ? ['>=', 'asc'] : ['<=', 'desc'];
  const truncation = includeDeleted ? '' : `and ${visibleInStream(schema, 'e', '$1')}`;
  const rows = await db.query<StateColumns & Nullable<EventRow>>(
    `select h.state, h.truncate_before,
            e.position, e.stream_id, e.stream_version, e.event_id, e.event_type, e.data, e.metadata, e.recorded_at
       from (select) as one
       left join "${schema}".stream_states h on h.stream_id = $1
       left join lateral (
         select e.position, e.stream_id, e.stream_version, e.event_id, e.event_type, e.data, e.metadata, e.recorded_at
           from "${schema}".events e
          where e.stream_id = $1 and e.stream_version ${comparison} $2 ${truncation}
          order by e.stream_version ${order}
          limit $3) e on true
      order by e.stream_version ${order}`,
    [streamId, fromVersion, limit],
    { prepare: true, parsers: eventParsers },
  );
  const first = rows[0];
  return {
    state: first?.state ?? 'active',
    truncateBefore: Number(first?.truncate_before ?? 0),
    events: (rows.filter((row) => row.position !== null) as EventRow[]).map(toRecordedEvent),
  };
}
