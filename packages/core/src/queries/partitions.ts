/**
 * The partitioned log's SQL (sql/0011_event_partitions.sql): partitioning the events table,
 * attaching ranges ahead of the head, detaching a range whose events are all hidden, and the
 * record of what left.
 */
import type { SqlQueryable } from '../db/sql-client.js';

type Int8 = string | number | bigint;

/** A partition of the log attached now. */
export interface EventPartition {
  /** Its table's name, e.g. `events_p1000001`. */
  name: string;
  /** Its first position (null: the default partition, which takes what no range covers). */
  fromPosition: number | null;
  /** Its last position (null: the default partition). */
  toPosition: number | null;
}

/** A range of positions detached from the log, as `reclaimed_ranges` recorded it. */
export interface ReclaimedRange {
  /** First position detached. */
  fromPosition: number;
  /** Last position detached. */
  toPosition: number;
  /** The detached table, until the owner drops it. */
  partition: string;
  /** Events the range held. */
  eventCount: number;
  /** The log hash at `toPosition` (hex): the seals kept in `seals` reproduce it. */
  logHash: string;
  /** Who detached it. */
  actor: string;
  /** Why. */
  reason: string;
  /** When. */
  reclaimedAt: Date;
}

const toNumber = (value: Int8 | null): number | null => (value === null ? null : Number(value));

/** Whether `schema`'s events table is partitioned. */
export async function isPartitioned(db: SqlQueryable, schema: string): Promise<boolean> {
  const [row] = await db.query<{ partitioned: boolean }>(
    `select c.relkind = 'p' as partitioned from pg_class c where c.oid = $1::regclass`,
    [`"${schema}".events`],
  );
  return row?.partitioned === true;
}

/** Partitions the log in place (false: it was already). */
export async function partitionEvents(db: SqlQueryable, schema: string, size: number): Promise<boolean> {
  const [row] = await db.query<{ done: boolean }>(`select "${schema}".partition_events($1) as done`, [size]);
  return row?.done === true;
}

/** Attaches ranges until `ahead` empty ones lie beyond the head; how many it attached. */
export async function addEventPartitions(db: SqlQueryable, schema: string, ahead: number): Promise<number> {
  const [row] = await db.query<{ added: number }>(`select "${schema}".add_event_partitions($1) as added`, [ahead]);
  return Number(row?.added ?? 0);
}

/** The attached partitions, in position order (the default one last). */
export async function readEventPartitions(db: SqlQueryable, schema: string): Promise<EventPartition[]> {
  const rows = await db.query<{ name: string; from_position: Int8 | null; to_position: Int8 | null }>(
    `select name, from_position, to_position from "${schema}".event_partition_bounds()`,
  );
  return rows.map((row) => ({
    name: row.name,
    fromPosition: toNumber(row.from_position),
    // The bound is exclusive in SQL; the API speaks of last positions.
    toPosition: row.to_position === null ? null : Number(row.to_position) - 1,
  }));
}

/** The configured partition size (null: not partitioned). */
export async function readPartitionSize(db: SqlQueryable, schema: string): Promise<number | null> {
  const [row] = await db.query<{ size: Int8 }>(`select size from "${schema}".event_partitioning`);
  return row ? Number(row.size) : null;
}

/** Detaches `name` from the log if every event in it is hidden; the range recorded. */
export async function detachEventPartition(
  db: SqlQueryable,
  schema: string,
  name: string,
  actor: string,
  reason: string,
): Promise<{ fromPosition: number; toPosition: number; eventCount: number; logHash: string }> {
  const [row] = await db.query<{ from_position: Int8; to_position: Int8; event_count: Int8; log_hash: Uint8Array }>(
    `select * from "${schema}".detach_event_partition($1, $2, $3)`,
    [name, actor, reason],
  );
  if (!row) throw new Error('detach_event_partition returned no row');
  return {
    fromPosition: Number(row.from_position),
    toPosition: Number(row.to_position),
    eventCount: Number(row.event_count),
    logHash: Buffer.from(row.log_hash).toString('hex'),
  };
}

/** Every range detached from the log, lowest first. */
export async function readReclaimedRanges(db: SqlQueryable, schema: string): Promise<ReclaimedRange[]> {
  const rows = await db.query<{
    from_position: Int8;
    to_position: Int8;
    partition_name: string;
    event_count: Int8;
    log_hash: Uint8Array;
    actor: string;
    reason: string;
    reclaimed_at: Date | string;
  }>(`select * from "${schema}".reclaimed_ranges order by from_position`);
  return rows.map((row) => ({
    fromPosition: Number(row.from_position),
    toPosition: Number(row.to_position),
    partition: row.partition_name,
    eventCount: Number(row.event_count),
    logHash: Buffer.from(row.log_hash).toString('hex'),
    actor: row.actor,
    reason: row.reason,
    reclaimedAt: new Date(row.reclaimed_at),
  }));
}

/** The `$lifecycle` records of detaches, sealed (at or before `upTo`): position and data. */
export async function readDetachRecords(
  db: SqlQueryable,
  schema: string,
  type: string,
  upTo: number,
): Promise<{ position: number; data: Record<string, unknown> }[]> {
  const rows = await db.query<{ position: Int8; data: Record<string, unknown> }>(
    `select position, data from "${schema}".events
      where stream_id = '$lifecycle' and event_type = $1 and position <= $2 order by position`,
    [type, upTo],
  );
  return rows.map((row) => ({ position: Number(row.position), data: row.data }));
}
