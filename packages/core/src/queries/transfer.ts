/**
 * The SQL of bulk export and import (transfer/): keyset pages of the log in the transfer
 * format's text, and the statements an import runs inside one batch's transaction while it
 * holds the log lock. Events are read and written as stored (personal fields stay encrypted).
 */
import type { SqlQueryable } from '../db/sql-client.js';

type Int8 = string | number | bigint;

/** A row of the log as the transfer format writes it (see transfer/ndjson.ts). */
export interface TransferPageRow {
  position: Int8;
  id: string;
  streamId: string;
  streamVersion: Int8;
  type: string;
  data: string;
  metadata: string;
  recordedAt: string;
}

const transferColumns = `position, event_id::text as "id", stream_id as "streamId", stream_version as "streamVersion",
  event_type as "type", data::text as data, metadata::text as metadata,
  to_char(recorded_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as "recordedAt"`;

/**
 * Up to `limit` events with `after` < position <= `until`, in position order, with the JSON as
 * jsonb text and the time in UTC to the microsecond. With categories, each one is walked in its
 * own (category, position) index (as in read-all.ts), so a page costs the same at any depth.
 */
export async function readTransferPage(
  db: SqlQueryable,
  schema: string,
  after: number,
  until: number,
  limit: number,
  categories?: readonly string[],
): Promise<TransferPageRow[]> {
  if (categories) {
    return db.query<TransferPageRow>(
      `select ${transferColumns} from "${schema}".events
         join (
           select p.position from unnest($4::text[]) as c(value)
           cross join lateral (
             select position from "${schema}".events
              where (category, position) > (c.value, $1) and category = c.value and position <= $2
              order by category, position
              limit $3) as p
           order by p.position
           limit $3) as picked using (position)
        order by position`,
      [after, until, limit, categories],
      { prepare: true },
    );
  }
  return db.query<TransferPageRow>(
    `select ${transferColumns} from "${schema}".events
      where position > $1 and position <= $2
      order by position
      limit $3`,
    [after, until, limit],
    { prepare: true },
  );
}

/** Whether the connected role may write the log directly: INSERT on events, and lock log_head. */
export async function canWriteLog(db: SqlQueryable, schema: string): Promise<boolean> {
  const [row] = await db.query<{ ok: boolean }>(
    `select has_table_privilege(format('%I.events', $1::text), 'INSERT')
        and has_table_privilege(format('%I.log_head', $1::text), 'UPDATE') as ok`,
    [schema],
  );
  return row?.ok === true;
}

/**
 * Takes the log lock (the row lock on log_head that append_events takes, docs/ordering.md) until
 * the transaction ends, and returns the head position read under it.
 */
export async function lockLogForImport(tx: SqlQueryable, schema: string): Promise<number> {
  await tx.query(`select 1 from "${schema}".log_head where id for update`);
  const [row] = await tx.query<{ head: Int8 | null }>(`select max(position) as head from "${schema}".events`);
  return Number(row?.head ?? 0);
}

/** The current version of each stream (0 for one with no events): one backward probe each. */
export async function readStreamVersions(
  tx: SqlQueryable,
  schema: string,
  streamIds: readonly string[],
): Promise<Map<string, number>> {
  const rows = await tx.query<{ stream_id: string; version: Int8 | null }>(
    `select s.stream_id, (select max(e.stream_version) from "${schema}".events e where e.stream_id = s.stream_id) as version
       from unnest($1::text[]) as s(stream_id)`,
    [streamIds],
  );
  return new Map(rows.map((row) => [row.stream_id, Number(row.version ?? 0)]));
}

/** An event of an import, its JSON as the source spells it. */
export interface ImportRow {
  position: number;
  id: string;
  streamId: string;
  streamVersion: number;
  type: string;
  data: string;
  metadata: string;
  recordedAt: string;
}

/**
 * For the rows whose ids are stored already: which row (its index), and whether the stored
 * event has the same stream, type and data (what makes a retried append a duplicate).
 */
export async function findStoredIds(
  tx: SqlQueryable,
  schema: string,
  rows: readonly ImportRow[],
): Promise<Map<number, { same: boolean; position: number; streamId: string }>> {
  const found = await tx.query<{ n: Int8; same: boolean; position: Int8; stream_id: string }>(
    `select i.n, e.position, e.stream_id,
            e.stream_id = i.s and e.event_type = i.t and e.data = i.d as same
       from unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[]) with ordinality as i(id, s, t, d, n)
       join "${schema}".events e on e.event_id = i.id`,
    [rows.map((r) => r.id), rows.map((r) => r.streamId), rows.map((r) => r.type), rows.map((r) => r.data)],
  );
  return new Map(
    found.map((f) => [Number(f.n) - 1, { same: f.same, position: Number(f.position), streamId: f.stream_id }]),
  );
}

/**
 * For rows at positions the log holds already (a restore resumed): the index of the first one
 * whose stored event differs in any column, or -1 when every one is stored exactly.
 */
export async function firstDifferentAtPosition(
  tx: SqlQueryable,
  schema: string,
  rows: readonly ImportRow[],
): Promise<number> {
  const [row] = await tx.query<{ n: Int8 | null }>(
    `select min(i.n) as n
       from unnest($1::int8[], $2::uuid[], $3::text[], $4::int8[], $5::text[], $6::jsonb[], $7::jsonb[], $8::timestamptz[])
            with ordinality as i(p, id, s, v, t, d, m, at, n)
       left join "${schema}".events e on e.position = i.p
      where e.position is null
         or (e.event_id, e.stream_id, e.stream_version, e.event_type, e.data, e.metadata, e.recorded_at)
            is distinct from (i.id, i.s, i.v, i.t, i.d, i.m, i.at)`,
    [
      rows.map((r) => r.position),
      rows.map((r) => r.id),
      rows.map((r) => r.streamId),
      rows.map((r) => r.streamVersion),
      rows.map((r) => r.type),
      rows.map((r) => r.data),
      rows.map((r) => r.metadata),
      rows.map((r) => r.recordedAt),
    ],
  );
  return row?.n === null || row?.n === undefined ? -1 : Number(row.n) - 1;
}

const importColumns = 'position, stream_id, stream_version, event_id, event_type, data, metadata, recorded_at';

/** The COPY statement an import feeds with rows from {@link copyRow}. */
export const copyStatement = (schema: string) => `copy "${schema}".events (${importColumns}) from stdin`;

/**
 * Inserts rows without COPY (a client that has none): one statement per call, the columns as
 * arrays. The rows' positions must continue the log.
 */
export async function insertImported(tx: SqlQueryable, schema: string, rows: readonly ImportRow[]): Promise<void> {
  await tx.query(
    `insert into "${schema}".events (${importColumns})
     select * from unnest($1::int8[], $2::text[], $3::int8[], $4::uuid[], $5::text[], $6::jsonb[], $7::jsonb[], $8::timestamptz[])`,
    [
      rows.map((r) => r.position),
      rows.map((r) => r.streamId),
      rows.map((r) => r.streamVersion),
      rows.map((r) => r.id),
      rows.map((r) => r.type),
      rows.map((r) => r.data),
      rows.map((r) => r.metadata),
      rows.map((r) => r.recordedAt),
    ],
  );
}

/** One NOTIFY for the batch, as append_events sends one per transaction: the last position. */
export async function notifyImported(tx: SqlQueryable, channel: string, last: number): Promise<void> {
  await tx.query('select pg_notify($1, $2)', [channel, String(last)]);
}
