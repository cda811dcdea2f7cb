/** One event by id, through the unique index on event_id. */
import type { SqlQueryable } from '../db/sql-client.js';
import type { RecordedEvent } from '../types.js';
import { type EventRow, eventColumns, toRecordedEvent } from './rows.js';

export async function readEventById(db: SqlQueryable, schema: string, eventId: string): Promise<RecordedEvent | null> {
  const [row] = await db.query<EventRow>(
    `select ${eventColumns} from "${schema}".events where event_id = $1`,
    [eventId],
    {
      prepare: true,
    },
  );
  return row ? toRecordedEvent(row) : null;
}
