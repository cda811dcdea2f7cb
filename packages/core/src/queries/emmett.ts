/**
 * Reads an Emmett PostgreSQL event store (`@event-driven-io/emmett-postgresql`): its messages
 * table, `emt_messages`, in global order, the JSON as jsonb text and the time to the
 * microsecond, for the transfer format (see transfer/emmett-source.ts).
 */
import type { SqlQueryable } from '../db/sql-client.js';

type Int8 = string | number | bigint;

/** A row of `emt_messages`, as the transfer format needs it. */
export interface EmmettMessageRow {
  globalPosition: Int8;
  streamId: string;
  streamVersion: Int8;
  id: string;
  type: string;
  data: string;
  metadata: string;
  recordedAt: string;
}

/**
 * Up to `limit` events (`message_kind = 'E'`) of one partition after a global position, in
 * global-position order; archived ones too unless `includeArchived` is false.
 */
export async function readEmmettPage(
  db: SqlQueryable,
  o: { schema: string; partition: string; after: number; limit: number; includeArchived: boolean },
): Promise<EmmettMessageRow[]> {
  return db.query<EmmettMessageRow>(
    `select global_position as "globalPosition", stream_id as "streamId", stream_position as "streamVersion",
            message_id as id, message_type as type, message_data::text as data, message_metadata::text as metadata,
            to_char(created at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as "recordedAt"
       from "${o.schema}".emt_messages
      where global_position > $1 and message_kind = 'E' and partition = $2 and ($3 or not is_archived)
      order by global_position
      limit $4`,
    [o.after, o.partition, o.includeArchived, o.limit],
  );
}
