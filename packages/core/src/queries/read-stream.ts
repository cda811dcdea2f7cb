/** One page of a stream, by version, through the (stream_id, stream_version) unique index. */
import type { SqlQueryable } from '../db/sql-client.js';
import type { RecordedEvent } from '../types.js';
import { type EventRow, eventColumns, toRecordedEvent } from './rows.js';

/** Events of `streamId` from `fromVersion` (inclusive) in `direction`, at most `limit`. */
export async function readStreamPage(
  db: SqlQueryable,
  schema: string,
  streamId: string,
  direction: 'forward' | 'backward',
  fromVersion: number,
  limit: number,
): Promise<RecordedEvent[]> {
  const [comparison, order] = direction === 'forward' ? ['>=', 'asc'] : ['<=', 'desc'];
  const rows = await db.query<EventRow>(
    `select ${eventColumns} from "${schema}".events
      where stream_id = $1 and stream_version ${comparison} $2
      order by stream_version ${order}
      limit $3`,
    [streamId, fromVersion, limit],
    { prepare: true },
  );
  return rows.map(toRecordedEvent);
}
