/**
 * The append hot path: one call of `append_events` (sql/0001_event_store.sql) for a batch of
 * appends, one round trip, parameters as parallel arrays. Each append gets its own outcome.
 */
import type { SqlQueryable } from '../db/sql-client.js';
import type { PreparedWrite } from '../validation.js';

/** Outcome of one write (one stream of one append) as `append_events` reports it. */
export interface WriteOutcome {
  /**
   * `refused`: another write of the same append failed. `deleted`, `tombstoned`, `archived`:
   * this write was refused by its stream's lifecycle state (migration 0009).
   */
  outcome: 'ok' | 'duplicate' | 'conflict' | 'id_reused' | 'refused' | 'deleted' | 'tombstoned' | 'archived';
  /** Stream version found before the append (for a conflict: the version that did not match). */
  actualVersion: number;
  /** Stream version after the append (null unless ok or duplicate). */
  streamVersion: number | null;
  firstPosition: number | null;
  lastPosition: number | null;
  /** When the events were stored (null unless ok or duplicate). */
  recordedAt: Date | null;
}

/**
 * Appends a batch: `appends[i]` is one append's writes (all or nothing); the result has the
 * same shape. No stream may appear in two appends of one batch.
 */
export async function appendEvents(
  db: SqlQueryable,
  schema: string,
  appends: readonly (readonly PreparedWrite[])[],
): Promise<WriteOutcome[][]> {
  const appendNo: number[] = [];
  const streamIds: string[] = [];
  const expected: number[] = [];
  const eventCount: number[] = [];
  const eventWrite: number[] = [];
  const eventIndex: number[] = [];
  const eventIds: string[] = [];
  const eventTypes: string[] = [];
  const data: string[] = [];
  const metadata: string[] = [];
  appends.forEach((writes, a) => {
    for (const write of writes) {
      appendNo.push(a + 1);
      streamIds.push(write.streamId);
      expected.push(write.expectedCode);
      eventCount.push(write.events.length);
      const w = streamIds.length;
      write.events.forEach((event, e) => {
        eventWrite.push(w);
        eventIndex.push(e + 1);
        eventIds.push(event.id);
        eventTypes.push(event.type);
        data.push(event.data);
        metadata.push(event.metadata);
      });
    }
  });

  const rows = await db.query<{
    write_no: number;
    outcome: WriteOutcome['outcome'];
    actual_version: string | number | bigint;
    stream_version: string | number | bigint | null;
    first_position: string | number | bigint | null;
    last_position: string | number | bigint | null;
    recorded_at: Date | null;
  }>(
    `select * from "${schema}".append_events(
       $1::int[], $2::text[], $3::bigint[], $4::int[], $5::int[], $6::int[],
       $7::uuid[], $8::text[], $9::jsonb[], $10::jsonb[])`,
    [appendNo, streamIds, expected, eventCount, eventWrite, eventIndex, eventIds, eventTypes, data, metadata],
    { prepare: true, groupCommit: true },
  );

  const outcomes: WriteOutcome[][] = appends.map(() => []);
  for (const row of rows) {
    const a = appendNo[row.write_no - 1] as number;
    outcomes[a - 1]?.push({
      outcome: row.outcome,
      actualVersion: Number(row.actual_version),
      streamVersion: toNumberOrNull(row.stream_version),
      firstPosition: toNumberOrNull(row.first_position),
      lastPosition: toNumberOrNull(row.last_position),
      recordedAt: row.recorded_at,
    });
  }
  return outcomes;
}

function toNumberOrNull(value: string | number | bigint | null): number | null {
  return value === null ? null : Number(value);
}
