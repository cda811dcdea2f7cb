/**
 * The seals table (sql/0005_seals.sql): one SHA-256 per event, chained per stream. Events are
 * read here in their stored canonical form (`data::text`, `metadata::text`, the time in
 * microseconds), which is what a seal covers: a client's JSON of the same event may differ
 * in key order, spacing or number spelling.
 */
import { lockForTransaction, sealLock } from '../db/locks.js';
import type { SqlQueryable } from '../db/sql-client.js';

/** An event as a seal covers it: every column, as the database prints it. */
export interface CanonicalEvent {
  position: number;
  streamId: string;
  streamVersion: number;
  eventId: string;
  eventType: string;
  data: string;
  metadata: string;
  /** Microseconds since 1970, as digits. */
  recordedAt: string;
}

/** A seal with the event it covers as stored now (null where the event is gone). */
export interface SealedEvent {
  position: number;
  streamId: string;
  streamVersion: number;
  hash: Buffer;
  event: CanonicalEvent | null;
}

type Int8 = string | number | bigint;

interface CanonicalRow {
  position: Int8 | null;
  stream_id: string;
  stream_version: Int8;
  event_id: string;
  event_type: string;
  data: string;
  metadata: string;
  recorded_at: string;
}

const canonicalColumns = (alias: string) =>
  `${alias}.position, ${alias}.stream_id, ${alias}.stream_version, ${alias}.event_id::text as event_id,
   ${alias}.event_type, ${alias}.data::text as data, ${alias}.metadata::text as metadata,
   (extract(epoch from ${alias}.recorded_at) * 1000000)::int8::text as recorded_at`;

const toCanonical = (row: CanonicalRow): CanonicalEvent => ({
  position: Number(row.position),
  streamId: row.stream_id,
  streamVersion: Number(row.stream_version),
  eventId: row.event_id,
  eventType: row.event_type,
  data: row.data,
  metadata: row.metadata,
  recordedAt: row.recorded_at,
});

/** Takes the seal lock for the rest of the transaction; a second sealer waits here. */
export async function lockSealing(db: SqlQueryable, schema: string): Promise<void> {
  await lockForTransaction(db, sealLock(schema));
}

/** The last sealed position: one probe of the primary key. */
export async function readLastSealed(db: SqlQueryable, schema: string): Promise<number> {
  const [row] = await db.query<{ head: Int8 | null }>(`select max(position) as head from "${schema}".seals`);
  return Number(row?.head ?? 0);
}

/**
 * The last seal's position and log hash, and whether an event is stored at its position with
 * its stream and version (false means the seals were tampered with: sealing must not go on).
 */
export async function readSealTip(
  db: SqlQueryable,
  schema: string,
): Promise<{ position: number; logHash: Buffer | null; matchesEvent: boolean }> {
  const [row] = await db.query<{ position: Int8; log_hash: Uint8Array; matches: boolean }>(
    `select s.position, s.log_hash,
            exists (select 1 from "${schema}".events e
                     where e.position = s.position and e.stream_id = s.stream_id
                       and e.stream_version = s.stream_version) as matches
       from "${schema}".seals s order by s.position desc limit 1`,
  );
  return row
    ? { position: Number(row.position), logHash: Buffer.from(row.log_hash), matchesEvent: row.matches }
    : { position: 0, logHash: null, matchesEvent: true };
}

/** Up to `limit` events after `after`, in position order, in canonical form. */
export async function readCanonicalPage(
  db: SqlQueryable,
  schema: string,
  after: number,
  limit: number,
): Promise<CanonicalEvent[]> {
  const rows = await db.query<CanonicalRow>(
    `select ${canonicalColumns('e')} from "${schema}".events e
      where e.position > $1 order by e.position limit $2`,
    [after, limit],
    { prepare: true },
  );
  return rows.map(toCanonical);
}

/** The hash of each stream's last seal (streams without one are absent). One index probe each. */
export async function readLastHashes(
  db: SqlQueryable,
  schema: string,
  streamIds: readonly string[],
): Promise<Map<string, Buffer>> {
  const rows = await db.query<{ stream_id: string; hash: Uint8Array }>(
    `select s.id as stream_id, last.hash
       from unnest($1::text[]) as s(id)
       cross join lateral (
         select hash from "${schema}".seals where stream_id = s.id order by stream_version desc limit 1
       ) as last`,
    [streamIds],
    { prepare: true },
  );
  return new Map(rows.map((row) => [row.stream_id, Buffer.from(row.hash)]));
}

/** Stores seals: one statement, arrays unnested. */
export async function insertSeals(
  db: SqlQueryable,
  schema: string,
  seals: readonly { position: number; streamId: string; streamVersion: number; hash: Buffer; logHash: Buffer }[],
): Promise<void> {
  await db.query(
    `insert into "${schema}".seals (position, stream_id, stream_version, hash, log_hash)
     select p, s, v, decode(h, 'hex'), decode(l, 'hex')
       from unnest($1::int8[], $2::text[], $3::int8[], $4::text[], $5::text[]) as t(p, s, v, h, l)`,
    [
      seals.map((s) => s.position),
      seals.map((s) => s.streamId),
      seals.map((s) => s.streamVersion),
      seals.map((s) => s.hash.toString('hex')),
      seals.map((s) => s.logHash.toString('hex')),
    ],
    { prepare: true },
  );
}

/**
 * Seals in chain order — by stream, then version — after `(streamId, version)` and at positions
 * up to `upTo`, each with the event now stored at its position. `only` keeps to the stream
 * `after.streamId`.
 */
export async function readSealChain(
  db: SqlQueryable,
  schema: string,
  after: { streamId: string; streamVersion: number },
  limit: number,
  upTo: number,
  only = false,
): Promise<SealedEvent[]> {
  const where = only ? 's.stream_id = $1 and s.stream_version > $2' : '(s.stream_id, s.stream_version) > ($1, $2)';
  const rows = await db.query<
    CanonicalRow & { seal_position: Int8; seal_stream: string; seal_version: Int8; hash: Uint8Array }
  >(
    `select s.position as seal_position, s.stream_id as seal_stream, s.stream_version as seal_version, s.hash,
            ${canonicalColumns('e')}
       from "${schema}".seals s left join "${schema}".events e on e.position = s.position
      where ${where} and s.position <= $4
      order by s.stream_id, s.stream_version
      limit $3`,
    [after.streamId, after.streamVersion, limit, upTo],
    { prepare: true },
  );
  return rows.map((row) => ({
    position: Number(row.seal_position),
    streamId: row.seal_stream,
    streamVersion: Number(row.seal_version),
    hash: Buffer.from(row.hash),
    event: row.position === null ? null : toCanonical(row),
  }));
}

/** Seals in position order after `after`, up to `upTo`: the log chain. */
export async function readLogChain(
  db: SqlQueryable,
  schema: string,
  after: number,
  limit: number,
  upTo: number,
): Promise<{ position: number; hash: Buffer; logHash: Buffer }[]> {
  const rows = await db.query<{ position: Int8; hash: Uint8Array; log_hash: Uint8Array }>(
    `select position, hash, log_hash from "${schema}".seals where position > $1 and position <= $3
      order by position limit $2`,
    [after, limit, upTo],
    { prepare: true },
  );
  return rows.map((row) => ({
    position: Number(row.position),
    hash: Buffer.from(row.hash),
    logHash: Buffer.from(row.log_hash),
  }));
}

/** The first event of a stream, up to `upTo`, that has no seal (null when all have one). */
export async function readFirstUnsealedOfStream(
  db: SqlQueryable,
  schema: string,
  streamId: string,
  upTo: number,
): Promise<{ position: number; streamVersion: number; eventId: string } | null> {
  const [row] = await db.query<{ position: Int8; stream_version: Int8; event_id: string }>(
    `select e.position, e.stream_version, e.event_id::text as event_id from "${schema}".events e
      where e.stream_id = $1 and e.position <= $2
        and not exists (select 1 from "${schema}".seals s where s.position = e.position)
      order by e.stream_version limit 1`,
    [streamId, upTo],
  );
  return row
    ? { position: Number(row.position), streamVersion: Number(row.stream_version), eventId: row.event_id }
    : null;
}

/**
 * A page of one partition's events after `after`, in position order, each with its seal and
 * its stream's previous seal (null where missing): what `partitions(store).detach` checks
 * before a range leaves the log. `partition` is a name checked by the caller.
 */
export async function readPartitionSeals(
  db: SqlQueryable,
  schema: string,
  partition: string,
  after: number,
  limit: number,
): Promise<{ event: CanonicalEvent; hash: Buffer | null; previous: Buffer | null }[]> {
  const rows = await db.query<CanonicalRow & { hash: Uint8Array | null; previous: Uint8Array | null }>(
    `select ${canonicalColumns('e')}, s.hash, p.hash as previous
       from "${schema}"."${partition}" e
       left join "${schema}".seals s on s.position = e.position
         and s.stream_id = e.stream_id and s.stream_version = e.stream_version
       left join "${schema}".seals p on p.stream_id = e.stream_id and p.stream_version = e.stream_version - 1
      where e.position > $1
      order by e.position
      limit $2`,
    [after, limit],
  );
  return rows.map((row) => ({
    event: toCanonical(row),
    hash: row.hash ? Buffer.from(row.hash) : null,
    previous: row.previous ? Buffer.from(row.previous) : null,
  }));
}
