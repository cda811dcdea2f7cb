/**
 * Stream lifecycle: one change of a stream's state through `change_stream_state`
 * (sql/0009_stream_lifecycle.sql), which takes the log lock, checks the expected version and
 * the state, and writes `stream_states`. The caller records the change as an event in the
 * same transaction.
 */
import type { SqlQueryable } from '../db/sql-client.js';
import type { StreamState } from '../types.js';

/** The stream where every lifecycle change is recorded (category `$lifecycle`). */
export const lifecycleStream = '$lifecycle';

/** What `change_stream_state` reports. */
export interface StateChange {
  outcome: 'ok' | 'unchanged' | 'conflict' | 'tombstoned' | 'deleted';
  previousState: StreamState;
  /** The stream's version (its last event's, whatever its state). */
  streamVersion: number;
  /** Versions below this are hidden from default reads, after the change. */
  truncateBefore: number;
}

/** Moves `streamId` to `to` (`active` is unarchive) if it is at `expectedCode` (-1 any, -3 exists, >= 0). */
export async function changeStreamState(
  db: SqlQueryable,
  schema: string,
  streamId: string,
  to: Exclude<StreamState, 'active'> | 'active',
  expectedCode: number,
): Promise<StateChange> {
  const [row] = await db.query<{
    outcome: StateChange['outcome'];
    previous_state: StreamState;
    stream_version: string | number | bigint;
    truncate_before: string | number | bigint;
  }>(`select * from "${schema}".change_stream_state($1, $2, $3)`, [streamId, to, expectedCode]);
  if (!row) throw new Error('change_stream_state returned no row');
  return {
    outcome: row.outcome,
    previousState: row.previous_state,
    streamVersion: Number(row.stream_version),
    truncateBefore: Number(row.truncate_before),
  };
}

/** A stream's lifecycle columns as a read joins them (null: no row, an active stream). */
export interface StateColumns {
  state: StreamState | null;
  truncate_before: string | number | bigint | null;
}

/**
 * The SQL condition, on a row `alias` of `events` of the stream `streamParam` whose
 * stream_states row is `h` (left-joined), that it is visible to a default read of the stream:
 * not below its truncation (a soft delete or retention's truncateBefore), within its maxCount
 * (one backward probe of the stream's versions, only when set) and its maxAge (by
 * recorded_at, which never decreases along a stream). What is hidden is a prefix.
 */
export function visibleInStream(schema: string, alias: string, streamParam: string): string {
  return `${alias}.stream_version >= coalesce(h.truncate_before, 0)
      and (h.max_count is null or ${alias}.stream_version >
           (select max(x.stream_version) from "${schema}".events x where x.stream_id = ${streamParam}) - h.max_count)
      and (h.max_age_seconds is null or ${alias}.recorded_at >= now() - make_interval(secs => h.max_age_seconds))`;
}

/** What `set_stream_retention` reports. */
export interface RetentionChange {
  outcome: 'ok' | 'unchanged' | 'tombstoned' | 'beyond';
  state: StreamState;
  streamVersion: number;
  truncateBefore: number;
  maxCount: number | null;
  maxAge: number | null;
}

/**
 * Sets the retention of `streamId`: `maxCount` / `maxAge` (seconds) replace the current ones
 * when given (null: none), `truncateBefore` raises its truncation.
 */
export async function setStreamRetention(
  db: SqlQueryable,
  schema: string,
  streamId: string,
  retention: { maxCount?: number | null; maxAge?: number | null; truncateBefore?: number },
): Promise<RetentionChange> {
  const [row] = await db.query<{
    outcome: RetentionChange['outcome'];
    state: StreamState;
    stream_version: string | number | bigint;
    truncate_before: string | number | bigint;
    max_count: string | number | bigint | null;
    max_age_seconds: string | number | bigint | null;
  }>(`select * from "${schema}".set_stream_retention($1, $2, $3, $4, $5, $6)`, [
    streamId,
    retention.maxCount !== undefined,
    retention.maxCount ?? null,
    retention.maxAge !== undefined,
    retention.maxAge ?? null,
    retention.truncateBefore ?? null,
  ]);
  if (!row) throw new Error('set_stream_retention returned no row');
  return {
    outcome: row.outcome,
    state: row.state,
    streamVersion: Number(row.stream_version),
    truncateBefore: Number(row.truncate_before),
    maxCount: row.max_count === null ? null : Number(row.max_count),
    maxAge: row.max_age_seconds === null ? null : Number(row.max_age_seconds),
  };
}

/**
 * The SQL condition, on a row of `events` named `alias`, that it is not hidden from a default
 * read of the log: events of tombstoned streams and below a truncation (a soft delete or
 * retention's truncateBefore) unless `include.deleted`, of archived streams unless
 * `include.archived`. Undefined when nothing is hidden.
 *
 * Why it is shaped so: a probe of stream_states' key per row costs a log read about a quarter
 * of its speed (measured: 300k events in pages of 1000, 760 ms against 1010 ms). So the probe
 * sits in the ELSE of a CASE whose condition, an uncorrelated subquery (run once per page, an
 * InitPlan), asks whether any stream hides anything at all: a store that never deleted,
 * archived or truncated a stream reads its log at full speed.
 */
export function hiddenByLifecycle(
  schema: string,
  alias: string,
  include: { deleted: boolean; archived: boolean },
): string | undefined {
  const any: string[] = [];
  const row: string[] = [];
  if (!include.deleted) {
    any.push(`a.state = 'tombstoned'`, 'a.truncate_before > 0');
    row.push(`h.state = 'tombstoned' or ${alias}.stream_version < h.truncate_before`);
  }
  if (!include.archived) {
    any.push(`a.state = 'archived'`);
    row.push(`h.state = 'archived'`);
  }
  if (row.length === 0) return undefined;
  return `(case when not exists (select 1 from "${schema}".stream_states a where ${any.join(' or ')}) then true
           else not exists (select 1 from "${schema}".stream_states h
                             where h.stream_id = ${alias}.stream_id and (${row.join(' or ')})) end)`;
}

/** The lifecycle states of those of `streamIds` that are not active (read under the log lock by an import). */
export async function readInactiveStates(
  db: SqlQueryable,
  schema: string,
  streamIds: readonly string[],
): Promise<Map<string, StreamState>> {
  const rows = await db.query<{ stream_id: string; state: StreamState }>(
    `select stream_id, state from "${schema}".stream_states where stream_id = any($1::text[]) and state <> 'active'`,
    [streamIds],
  );
  return new Map(rows.map((row) => [row.stream_id, row.state]));
}
