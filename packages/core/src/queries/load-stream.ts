/**
 * A stream's latest usable snapshot and the first page of events after it, in one round
 * trip: what every command starts with.
 */
import type { SqlQueryable } from '../db/sql-client.js';
import type { JsonValue, RecordedEvent, StreamState } from '../types.js';
import { type StateColumns, visibleInStream } from './lifecycle.js';
import { type EventRow, toRecordedEvent } from './rows.js';
import type { Snapshot } from './snapshots.js';

type Nullable<T> = { [K in keyof T]: T[K] | null };

export async function loadStreamPage(
  db: SqlQueryable,
  schema: string,
  streamId: string,
  snapshotOf: { decider: string; modelVersion: number } | null,
  toVersion: number,
  limit: number,
): Promise<{ snapshot: Snapshot | null; events: RecordedEvent[]; state: StreamState }> {
  const rows = await db.query<
    { snapshot_version: string | number | bigint | null; snapshot_state: JsonValue | null } & Nullable<EventRow> &
      StateColumns
  >(
    // A soft delete hides the versions below its truncation: a snapshot from before it (below
    // it) is not used, and no event below it is read. A stream with a moving retention window
    // (maxCount, maxAge) is folded from its window, never from a snapshot.
    `select s.stream_version as snapshot_version, s.state as snapshot_state, h.state, h.truncate_before,
            e.position, e.stream_id, e.stream_version, e.event_id, e.event_type, e.data, e.metadata, e.recorded_at
       from (select) as one
       left join "${schema}".stream_states h on h.stream_id = $1
       left join "${schema}".snapshots s
         on s.stream_id = $1 and s.decider = $2 and s.model_version = $3 and s.stream_version <= $4
        and s.stream_version >= coalesce(h.truncate_before, 0) and h.max_count is null and h.max_age_seconds is null
       left join lateral (
         select v.position, v.stream_id, v.stream_version, v.event_id, v.event_type, v.data, v.metadata, v.recorded_at
           from "${schema}".events v
          where v.stream_id = $1 and v.stream_version > coalesce(s.stream_version, 0) and v.stream_version <= $4
            and ${visibleInStream(schema, 'v', '$1')}
          order by v.stream_version
          limit $5) e on true`,
    [streamId, snapshotOf?.decider ?? null, snapshotOf?.modelVersion ?? null, toVersion, limit],
    { prepare: true },
  );
  const first = rows[0];
  const snapshot =
    first && first.snapshot_version !== null && snapshotOf
      ? {
          streamId,
          decider: snapshotOf.decider,
          modelVersion: snapshotOf.modelVersion,
          streamVersion: Number(first.snapshot_version),
          state: first.snapshot_state as JsonValue,
        }
      : null;
  const events = (rows.filter((row) => row.position !== null) as EventRow[]).map(toRecordedEvent);
  return { snapshot, events, state: first?.state ?? 'active' };
}
