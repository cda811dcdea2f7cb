/**
 * Maps rows of the events table to {@link RecordedEvent}; one place for both drivers' types.
 * Events come out as stored: personal fields still encrypted. The store's reads
 * (store/event-reads.ts) reveal them; nothing else reads events from these queries.
 */
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
