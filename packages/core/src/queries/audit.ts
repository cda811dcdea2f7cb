/** Audit read paths over the events table, each through an index (see sql/0004_audit.sql). */
import type { SqlQueryable } from '../db/sql-client.js';
import type { RecordedEvent } from '../types.js';
import { type EventRow, eventColumns, toRecordedEvents } from './rows.js';

/** Events whose metadata `key` ('actor' or 'correlationId') is `value`, after a position, in log order. */
export async function readByMetadata(
  db: SqlQueryable,
  schema: string,
  key: 'actor' | 'correlationId',
  value: string,
  range: { after: number; upTo: number; limit: number },
): Promise<RecordedEvent[]> {
  const rows = await db.query<EventRow>(
    `select ${eventColumns} from "${schema}".events
      where metadata ? '${key}' and metadata ->> '${key}' = $1 and position > $2 and position <= $3
      order by position
      limit $4`,
    [value, range.after, range.upTo, range.limit],
    { prepare: true },
  );
  return toRecordedEvents(db, schema, rows);
}
