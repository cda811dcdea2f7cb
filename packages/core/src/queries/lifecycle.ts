/**
 * Stream lifecycle: one change of a stream's state through `change_stream_state`
 * (sql/0009_stream_lifecycle.sql), which takes the log lock, checks the expected version and
 * the state, and writes `stream_states`. The caller records the change as an event in the
 * same transaction.
 */
import type { SqlQueryable } from '../db/sql-client.js';
import type { StreamState } from '../types.js';

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
 * The SQL condition, on a row of `events` named `alias`, that hides it from a default read:
 * events of tombstoned streams and below a soft delete's truncation (unless `includeDeleted`),
 * of archived streams (unless `includeArchived`). Undefined when nothing is hidden. One probe
 * of stream_states' key per row; the table holds only streams that ever changed state.
 */
export function hiddenByLifecycle(
  schema: string,
  alias: string,
  include: { deleted: boolean; archived: boolean },
): string | undefined {
  const hidden: string[] = [];
  if (!include.deleted) hidden.push(`h.state = 'tombstoned' or ${alias}.stream_version < h.truncate_before`);
  if (!include.archived) hidden.push(`h.state = 'archived'`);
  if (hidden.length === 0) return undefined;
  return `not exists (select 1 from "${schema}".stream_states h
           where h.stream_id = ${alias}.stream_id and (${hidden.join(' or ')}))`;
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
