/** Audit read paths over the events table, each through an index (see sql/0004_audit.sql). */
import type { SqlQueryable } from '../db/sql-client.js';
import type { RecordedEvent } from '../types.js';
import { type EventRow, eventColumns, toRecordedEvent } from './rows.js';

/** The metadata keys with an index of their own: the predicate and expression each index has. */
const indexed = {
  actor: `metadata ? 'actor' and metadata ->> 'actor'`,
  correlationId: `metadata ? 'correlationId' and metadata ->> 'correlationId'`,
  // The data subject of events holding personal data (sql/0006_personal_data.sql).
  subject: `metadata ? '$personal' and metadata #>> '{$personal,subject}'`,
} as const;

/** Events whose metadata `key` is `value`, after a position, in log order. */
export async function readByMetadata(
  db: SqlQueryable,
  schema: string,
  key: keyof typeof indexed,
  value: string,
  range: { after: number; upTo: number; limit: number },
): Promise<RecordedEvent[]> {
  const rows = await db.query<EventRow>(
    `select ${eventColumns} from "${schema}".events
      where ${indexed[key]} = $1 and position > $2 and position <= $3
      order by position
      limit $4`,
    [value, range.after, range.upTo, range.limit],
    { prepare: true },
  );
  return rows.map(toRecordedEvent);
}
