/** Checkpoints of subscriptions and projections, and the events subscriptions parked. */
import type { SqlQueryable } from '../db/sql-client.js';

type Int8 = string | number | bigint;

/** The stored position of `name`, or null when it has none yet. */
export async function readCheckpoint(db: SqlQueryable, schema: string, name: string): Promise<number | null> {
  const [row] = await db.query<{ position: Int8 }>(`select position from "${schema}".checkpoints where name = $1`, [
    name,
  ]);
  return row ? Number(row.position) : null;
}

/** Stores the position of `name` (subscriptions: after the handler ran, at-least-once). */
export async function writeCheckpoint(db: SqlQueryable, schema: string, name: string, position: number) {
  await db.query(
    `insert into "${schema}".checkpoints (name, position) values ($1, $2)
     on conflict (name) do update set position = excluded.position, updated_at = now()`,
    [name, position],
    { prepare: true },
  );
}

/**
 * Locks the checkpoint row of `name` for the rest of the transaction (creating it at 0) and
 * returns its position. Two runners of one projection serialize here; the second then reads
 * the position the first committed, so no event is applied twice.
 */
export async function lockCheckpoint(tx: SqlQueryable, schema: string, name: string): Promise<number> {
  await tx.query(`insert into "${schema}".checkpoints (name) values ($1) on conflict (name) do nothing`, [name], {
    prepare: true,
  });
  const [row] = await tx.query<{ position: Int8 }>(
    `select position from "${schema}".checkpoints where name = $1 for update`,
    [name],
    { prepare: true },
  );
  return Number(row?.position ?? 0);
}

/** Moves a checkpoint locked by {@link lockCheckpoint} from `from` to `to`, in the same transaction. */
export async function moveCheckpoint(tx: SqlQueryable, schema: string, name: string, from: number, to: number) {
  await tx.query(
    `update "${schema}".checkpoints set position = $2, updated_at = now() where name = $1 and position = $3`,
    [name, to, from],
    { prepare: true },
  );
}

export interface ParkedEvent {
  subscription: string;
  position: number;
  eventId: string;
  attempts: number;
  error: string;
  parkedAt: Date;
}

export async function parkEvent(
  db: SqlQueryable,
  schema: string,
  parked: Omit<ParkedEvent, 'parkedAt'>,
): Promise<void> {
  await db.query(
    `insert into "${schema}".parked_events (subscription, position, event_id, attempts, error)
     values ($1, $2, $3, $4, $5)
     on conflict (subscription, position) do update
       set attempts = parked_events.attempts + excluded.attempts, error = excluded.error, parked_at = now()`,
    [parked.subscription, parked.position, parked.eventId, parked.attempts, parked.error],
  );
}

export async function listParked(db: SqlQueryable, schema: string, subscription: string): Promise<ParkedEvent[]> {
  const rows = await db.query<{
    subscription: string;
    position: Int8;
    event_id: string;
    attempts: number;
    error: string;
    parked_at: Date;
  }>(
    `select subscription, position, event_id, attempts, error, parked_at
       from "${schema}".parked_events where subscription = $1 order by position`,
    [subscription],
  );
  return rows.map((r) => ({
    subscription: r.subscription,
    position: Number(r.position),
    eventId: r.event_id,
    attempts: r.attempts,
    error: r.error,
    parkedAt: r.parked_at,
  }));
}

export async function countParked(db: SqlQueryable, schema: string, subscription: string): Promise<number> {
  const [row] = await db.query<{ n: Int8 }>(
    `select count(*) as n from "${schema}".parked_events where subscription = $1`,
    [subscription],
  );
  return Number(row?.n ?? 0);
}

export async function unparkEvent(db: SqlQueryable, schema: string, subscription: string, position: number) {
  await db.query(`delete from "${schema}".parked_events where subscription = $1 and position = $2`, [
    subscription,
    position,
  ]);
}

/** A stored checkpoint with how far behind the log it is. */
export interface CheckpointStatus {
  name: string;
  position: number;
  updatedAt: Date;
  /** Events in the log after it. */
  lag: number;
  /** Age of the oldest event after it (0 when caught up). */
  lagSeconds: number;
  parked: number;
}

/** Every stored checkpoint, with its lag: one query. */
export async function readCheckpointStatuses(db: SqlQueryable, schema: string): Promise<CheckpointStatus[]> {
  const rows = await db.query<{
    name: string;
    position: Int8;
    updated_at: Date;
    head: Int8 | null;
    oldest: Date | null;
    parked: Int8;
  }>(
    `select c.name, c.position, c.updated_at,
            (select max(position) from "${schema}".events) as head,
            (select recorded_at from "${schema}".events e where e.position = c.position + 1) as oldest,
            (select count(*) from "${schema}".parked_events p where p.subscription = c.name) as parked
       from "${schema}".checkpoints c
      order by c.name`,
  );
  const now = Date.now();
  return rows.map((r) => ({
    name: r.name,
    position: Number(r.position),
    updatedAt: r.updated_at,
    lag: Math.max(0, Number(r.head ?? 0) - Number(r.position)),
    lagSeconds: r.oldest ? Math.max(0, (now - r.oldest.getTime()) / 1000) : 0,
    parked: Number(r.parked),
  }));
}
