/**
 * One page of the global log after a checkpoint. Positions are dense and only ever become
 * visible as a prefix (see the ordering note in sql/0001_event_store.sql), so `position > after`
 * is a complete reader: it cannot skip a late commit. Each filter has its own index
 * (pkey, (category, position), (event_type, position)) so a page costs the same at any depth.
 */
import type { SqlQueryable } from '../db/sql-client.js';
import type { RecordedEvent } from '../types.js';
import { type EventRow, eventColumns, toRecordedEvents } from './rows.js';

export interface ReadAllFilter {
  categories?: readonly string[] | undefined;
  eventTypes?: readonly string[] | undefined;
  /** Exact stream ids: filtered along the position order (no index of its own). */
  streamIds?: readonly string[] | undefined;
  /** One partition of the streams: those whose id hashes to `index` modulo `count`. */
  partition?: { count: number; index: number } | undefined;
}

/** Up to `limit` events with position > `after`, in position order, matching `filter`. */
export async function readAllPage(
  db: SqlQueryable,
  schema: string,
  after: number,
  limit: number,
  filter: ReadAllFilter = {},
): Promise<RecordedEvent[]> {
  const params: unknown[] = [after, limit];
  const where = ['position > $1'];
  if (filter.categories) {
    params.push(filter.categories);
    where.push(`category = any($${params.length}::text[])`);
  }
  if (filter.eventTypes) {
    params.push(filter.eventTypes);
    where.push(`event_type = any($${params.length}::text[])`);
  }
  if (filter.streamIds) {
    params.push(filter.streamIds);
    where.push(`stream_id = any($${params.length}::text[])`);
  }
  if (filter.partition) {
    params.push(filter.partition.count, filter.partition.index);
    where.push(`mod(hashtext(stream_id)::bigint + 2147483648, $${params.length - 1}) = $${params.length}`);
  }
  const rows = await db.query<EventRow>(
    `select ${eventColumns} from "${schema}".events
      where ${where.join(' and ')}
      order by position
      limit $2`,
    params,
    { prepare: true },
  );
  return toRecordedEvents(db, schema, rows);
}

/** The position of the last committed event: the log's length. One probe of the primary key. */
export async function readHeadPosition(db: SqlQueryable, schema: string): Promise<number> {
  const rows = await db.query<{ position: string | number | bigint | null }>(
    `select max(position) as position from "${schema}".events`,
  );
  return Number(rows[0]?.position ?? 0);
}
