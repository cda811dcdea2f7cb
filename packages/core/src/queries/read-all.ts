/**
 * One page of the global log after a checkpoint. Positions are dense and only ever become
 * visible as a prefix (see the ordering note in sql/0001_event_store.sql), so `position > after`
 * is a complete reader: it cannot skip a late commit. Each filter has its own index
 * (pkey, (category, position), (event_type, position)) so a page costs the same at any depth
 * (see readAllPage for how the query keeps to them).
 */
import type { SqlQueryable } from '../db/sql-client.js';
import type { RecordedEvent } from '../types.js';
import { hiddenByLifecycle } from './lifecycle.js';
import { type EventRow, eventColumns, eventParsers, toRecordedEvent } from './rows.js';

export interface ReadAllFilter {
  categories?: readonly string[] | undefined;
  eventTypes?: readonly string[] | undefined;
  /** Exact stream ids: filtered along the position order (no index of its own). */
  streamIds?: readonly string[] | undefined;
  /**
   * Partitions of the streams: those whose id hashes to `index` (or to one of the indexes)
   * modulo `count`.
   */
  partition?: { count: number; index: number | readonly number[] } | undefined;
  /**
   * Events hidden by their stream's lifecycle to include: of deleted (soft or tombstoned,
   * and below a re-opened stream's truncation) and of archived streams. Default: neither.
   */
  include?: { deleted: boolean; archived: boolean } | undefined;
}

/**
 * Up to `limit` events with position > `after`, in position order, matching `filter`.
 *
 * With event types (or else categories), each value is looked up in its own index: a lateral
 * branch per value takes the first `limit` positions from (event_type, position) — written as
 * a row comparison with an open lower bound, so the planner cannot turn it back into a walk of
 * the primary key filtered by type, which it does for `event_type = any(...)` and costs the
 * whole rest of the log when the types are rare (measured: 175 ms against 0.2 ms on 1M
 * events). The first `limit` positions of all branches are then fetched by primary key. With
 * the list as the only filter, a page costs at most `limit` index entries per value, however
 * far the next match is; other conditions (categories beside types, stream ids, a partition)
 * are checked inside each branch, which then walks its index until `limit` rows pass them.
 */
export async function readAllPage(
  db: SqlQueryable,
  schema: string,
  after: number,
  limit: number,
  filter: ReadAllFilter = {},
): Promise<RecordedEvent[]> {
  const { text, params } = readAllQuery(schema, after, limit, filter, false);
  const rows = await db.query<EventRow>(text, params, { prepare: true, parsers: eventParsers });
  return rows.map(toRecordedEvent);
}

/**
 * {@link readAllPage} with `filter.partition` required, each event beside the partition its
 * stream hashes to (so one read can serve several partitions).
 */
export async function readAllPageOfPartitions(
  db: SqlQueryable,
  schema: string,
  after: number,
  limit: number,
  filter: ReadAllFilter & { partition: NonNullable<ReadAllFilter['partition']> },
): Promise<{ events: RecordedEvent[]; partitions: number[] }> {
  const { text, params } = readAllQuery(schema, after, limit, filter, true);
  const rows = await db.query<EventRow & { partition: number }>(text, params, {
    prepare: true,
    parsers: eventParsers,
  });
  return { events: rows.map(toRecordedEvent), partitions: rows.map((row) => Number(row.partition)) };
}

/** The statement of {@link readAllPage}; `withPartition` adds the `partition` column. */
function readAllQuery(
  schema: string,
  after: number,
  limit: number,
  filter: ReadAllFilter,
  withPartition: boolean,
): { text: string; params: unknown[] } {
  const params: unknown[] = [after, limit];
  const driver = filter.eventTypes
    ? { column: 'event_type', values: filter.eventTypes }
    : filter.categories
      ? { column: 'category', values: filter.categories }
      : undefined;
  if (driver) params.push(driver.values);
  const where: string[] = [];
  if (filter.categories && driver?.column !== 'category') {
    params.push(filter.categories);
    where.push(`category = any($${params.length}::text[])`);
  }
  if (filter.streamIds) {
    params.push(filter.streamIds);
    where.push(`stream_id = any($${params.length}::text[])`);
  }
  let partitionOf: string | undefined;
  if (filter.partition?.count === 1) {
    // One partition holds every stream: no hash to compute per row.
    partitionOf = '0';
  } else if (filter.partition) {
    const { count, index } = filter.partition;
    params.push(count);
    partitionOf = `mod(hashtext(stream_id)::bigint + 2147483648, $${params.length})`;
    params.push(index);
    where.push(
      typeof index === 'number'
        ? `${partitionOf} = $${params.length}`
        : `${partitionOf} = any($${params.length}::bigint[])`,
    );
  }
  const lifecycle = hiddenByLifecycle(schema, 'events', filter.include ?? { deleted: false, archived: false });
  if (lifecycle) where.push(lifecycle);
  const columns = withPartition && partitionOf ? `${eventColumns}, ${partitionOf}::int as partition` : eventColumns;
  const text = driver
    ? `select ${columns} from "${schema}".events
         join (
           select p.position from unnest($3::text[]) as d(value)
           cross join lateral (
             select position from "${schema}".events
              where (${driver.column}, position) > (d.value, $1) and ${driver.column} <= d.value
                    ${where.map((condition) => `and ${condition}`).join(' ')}
              order by ${driver.column}, position
              limit $2) as p
           order by p.position
           limit $2) as picked using (position)
        order by position`
    : `select ${columns} from "${schema}".events
        where ${['position > $1', ...where].join(' and ')}
        order by position
        limit $2`;
  return { text, params };
}

/** The position of the last committed event: the log's length. One probe of the primary key. */
export async function readHeadPosition(db: SqlQueryable, schema: string): Promise<number> {
  const rows = await db.query<{ position: string | number | bigint | null }>(
    `select max(position) as position from "${schema}".events`,
  );
  return Number(rows[0]?.position ?? 0);
}

/**
 * The last position recorded at or before `time`, counting its whole millisecond (0 when the
 * log starts later): a binary search over the primary key, run by the database in one round
 * trip (a recursive query, one probe per step, about log2(length) steps). Sound because an
 * append takes its time from the database clock while it holds the log lock, so times never
 * decrease along positions.
 *
 * JavaScript times are whole milliseconds while the database stamps microseconds: an event's
 * own `recordedAt`, passed back, must find that event, so `time` stands for its millisecond.
 * Each probe takes the first event at or after the middle, since ranges detached from a
 * partitioned log leave positions without an event.
 */
export async function readPositionAt(db: SqlQueryable, schema: string, time: Date | string): Promise<number> {
  const rows = await db.query<{ position: string | number | bigint }>(
    `with recursive search(low, high) as (
       select 0::int8, coalesce((select max(position) from "${schema}".events), 0)::int8
       union all
       select case when probe.position <= s.high and probe.recorded_at < $1::timestamptz + interval '1 millisecond'
                   then probe.position else s.low end,
              case when probe.position <= s.high and probe.recorded_at < $1::timestamptz + interval '1 millisecond'
                   then s.high else probe.mid - 1 end
         from search s
         cross join lateral (
           select m.mid, e.position, e.recorded_at
             from (select (s.low + s.high + 1) / 2 as mid) m
             cross join lateral (
               select e.position, e.recorded_at from "${schema}".events e
                where e.position >= m.mid order by e.position limit 1) e) probe
        where s.low < s.high)
     select low as position from search order by high - low, low limit 1`,
    [time],
    { prepare: true },
  );
  return Number(rows[0]?.position ?? 0);
}
