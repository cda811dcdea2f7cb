/**
 * One stream's facts: its version (the last event's, through the (stream_id, stream_version)
 * index), first and last event times, its metadata row and its lifecycle state. The version
 * and times count every stored event, hidden ones included: versions never restart.
 */
import type { SqlQueryable } from '../db/sql-client.js';
import type { JsonObject, StreamInfo } from '../types.js';
import type { StateColumns } from './lifecycle.js';

interface StreamRow extends StateColumns {
  version: string | number | bigint | null;
  created_at: Date | null;
  last_event_at: Date | null;
  metadata: JsonObject | null;
  max_count: string | number | bigint | null;
  max_age_seconds: string | number | bigint | null;
}

/** The facts of `streamId`, or null when it has neither events nor metadata. */
export async function readStreamInfo(db: SqlQueryable, schema: string, streamId: string): Promise<StreamInfo | null> {
  const [row] = await db.query<StreamRow>(
    `select last.stream_version as version, first.recorded_at as created_at,
            last.recorded_at as last_event_at, m.metadata, h.state, h.truncate_before,
            h.max_count, h.max_age_seconds
       from (select) as one
       left join "${schema}".streams m on m.stream_id = $1
       left join "${schema}".stream_states h on h.stream_id = $1
       left join lateral (
         select e.stream_version, e.recorded_at from "${schema}".events e
          where e.stream_id = $1 order by e.stream_version desc limit 1) last on true
       left join lateral (
         select e.recorded_at from "${schema}".events e
          where e.stream_id = $1 and e.stream_version = 1) first on true`,
    [streamId],
  );
  if (!row || (row.version === null && row.metadata === null && row.state === null)) return null;
  const version = Number(row.version ?? 0);
  return {
    streamId,
    version,
    exists: version > 0,
    metadata: row.metadata ?? {},
    createdAt: row.created_at,
    lastEventAt: row.last_event_at,
    state: row.state ?? 'active',
    truncateBefore: Number(row.truncate_before ?? 0),
    retention: {
      maxCount: row.max_count === null ? null : Number(row.max_count),
      maxAge: row.max_age_seconds === null ? null : Number(row.max_age_seconds),
    },
  };
}

/** Replaces the metadata of `streamId` (a stream need not have events to have metadata). */
/**
 * Replaces a stream's metadata with `toJson` if it still equals `fromJson` (`{}` when the
 * stream has none), holding its row until the transaction ends. Returns undefined when
 * replaced, else the metadata found.
 */
export async function swapStreamMetadata(
  db: SqlQueryable,
  schema: string,
  streamId: string,
  fromJson: string,
  toJson: string,
): Promise<JsonObject | undefined> {
  const [row] = await db.query<{ metadata: JsonObject; same: boolean }>(
    `select metadata, metadata = $2::jsonb as same from "${schema}".streams where stream_id = $1 for update`,
    [streamId, fromJson],
  );
  if (row && !row.same) return row.metadata;
  if (!row) {
    const [none] = await db.query<{ same: boolean }>(`select '{}'::jsonb = $1::jsonb as same`, [fromJson]);
    if (!none?.same) return {};
  }
  await writeStreamMetadata(db, schema, streamId, toJson);
  return undefined;
}

export async function writeStreamMetadata(
  db: SqlQueryable,
  schema: string,
  streamId: string,
  metadataJson: string,
): Promise<void> {
  await db.query(
    `insert into "${schema}".streams (stream_id, metadata) values ($1, $2::jsonb)
     on conflict (stream_id) do update set metadata = excluded.metadata, updated_at = now()`,
    [streamId, metadataJson],
  );
}
