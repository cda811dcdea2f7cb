/** Maps rows of the events table to {@link RecordedEvent}; one place for both drivers' types. */
import type { SqlQueryable } from '../db/sql-client.js';
import { revealEvents } from '../personal/personal-data.js';
import type { EventMetadata, JsonValue, RecordedEvent } from '../types.js';

/** The columns every event read selects, in the order {@link toRecordedEvent} expects. */
export const eventColumns = 'position, stream_id, stream_version, event_id, event_type, data, metadata, recorded_at';

/** A row of {@link eventColumns}. int8 arrives as a string from pg and a bigint from PGlite. */
export interface EventRow {
  position: string | number | bigint;
  stream_id: string;
  stream_version: string | number | bigint;
  event_id: string;
  event_type: string;
  data: JsonValue;
  metadata: EventMetadata;
  recorded_at: Date;
}

export function toRecordedEvent(row: EventRow): RecordedEvent {
  return {
    position: Number(row.position),
    streamId: row.stream_id,
    streamVersion: Number(row.stream_version),
    id: row.event_id,
    type: row.event_type,
    data: row.data,
    metadata: row.metadata,
    recordedAt: row.recorded_at,
  };
}

/**
 * Rows to events, with personal fields decrypted (or redacted once their subject was
 * forgotten): every read of events goes through here, so no path can skip it.
 */
export function toRecordedEvents(
  db: SqlQueryable,
  schema: string,
  rows: readonly EventRow[],
): Promise<RecordedEvent[]> {
  return revealEvents(db, schema, rows.map(toRecordedEvent));
}
