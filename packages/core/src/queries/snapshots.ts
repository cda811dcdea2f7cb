/** Snapshots: one row per (stream, decider), replaced only by a newer one. */
import type { SqlQueryable } from '../db/sql-client.js';
import type { JsonValue } from '../types.js';

/** A stored snapshot of a stream's state as one decider folds it. */
export interface Snapshot {
  streamId: string;
  decider: string;
  modelVersion: number;
  /** The stream version the state includes. */
  streamVersion: number;
  state: JsonValue;
}

export async function readSnapshot(
  db: SqlQueryable,
  schema: string,
  streamId: string,
  decider: string,
): Promise<Snapshot | null> {
  const [row] = await db.query<{ model_version: number; stream_version: string | number | bigint; state: JsonValue }>(
    `select model_version, stream_version, state from "${schema}".snapshots where stream_id = $1 and decider = $2`,
    [streamId, decider],
    { prepare: true },
  );
  return row
    ? {
        streamId,
        decider,
        modelVersion: row.model_version,
        streamVersion: Number(row.stream_version),
        state: row.state,
      }
    : null;
}

/**
 * Stores a snapshot unless the stored one is of the same model version and at least as new
 * (two writers racing never move a snapshot backwards), and only while every data subject of
 * the stream still has its key, which it holds (FOR KEY SHARE) until the insert commits: an
 * erasure either waits and then drops this snapshot, or has already deleted the key and this
 * snapshot — possibly folded from data decrypted before — is not written.
 */
export async function writeSnapshot(db: SqlQueryable, schema: string, snapshot: Snapshot, stateJson: string) {
  await db.query(
    `with held as (
       select k.subject_id from "${schema}".subject_streams ss
         join "${schema}".subject_keys k on k.subject_id = ss.subject_id
        where ss.stream_id = $1
          for key share of k)
     insert into "${schema}".snapshots as s (stream_id, decider, model_version, stream_version, state)
     select $1, $2, $3, $4, $5::jsonb
      where (select count(*) from held) = (select count(*) from "${schema}".subject_streams where stream_id = $1)
     on conflict (stream_id, decider) do update
       set model_version = excluded.model_version, stream_version = excluded.stream_version,
           state = excluded.state, created_at = now()
     where s.model_version <> excluded.model_version or s.stream_version < excluded.stream_version`,
    [snapshot.streamId, snapshot.decider, snapshot.modelVersion, snapshot.streamVersion, stateJson],
    { prepare: true },
  );
}
