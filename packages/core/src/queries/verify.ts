/**
 * Tamper evidence: recompute each event's hash from its stored content and its predecessor's
 * hash (`event_hash` in sql/0001_event_store.sql) and compare with the stored one.
 */
import type { SqlQueryable } from '../db/sql-client.js';

/** The first place where the stored log does not match its hashes. */
export interface BrokenLink {
  position: number;
  streamId: string;
  streamVersion: number;
  reason: 'content or hash changed' | 'previous event of the stream missing' | 'position missing' | 'version missing';
}

interface Row {
  position: string | number | bigint;
  stream_id: string;
  stream_version: string | number | bigint;
  intact: boolean;
  linked: boolean;
}

/**
 * Checks up to `limit` events after `after` (a position, or a version when `streamId` is
 * given), in order; returns how far it got and the first broken link.
 */
export async function verifyPage(
  db: SqlQueryable,
  schema: string,
  after: number,
  limit: number,
  streamId?: string,
): Promise<{ checked: number; last: number; broken: BrokenLink | null }> {
  const where = streamId === undefined ? 'e.position > $1' : 'e.stream_id = $3 and e.stream_version > $1';
  const order = streamId === undefined ? 'e.position' : 'e.stream_version';
  const rows = await db.query<Row>(
    `select e.position, e.stream_id, e.stream_version,
            e.hash = "${schema}".event_hash(coalesce(p.hash, ''::bytea), e.event_id, e.stream_id, e.stream_version,
                                            e.position, e.event_type, e.data, e.metadata, e.recorded_at) as intact,
            (e.stream_version = 1 or p.position is not null) as linked
       from "${schema}".events e
       left join "${schema}".events p on p.stream_id = e.stream_id and p.stream_version = e.stream_version - 1
      where ${where}
      order by ${order}
      limit $2`,
    streamId === undefined ? [after, limit] : [after, limit, streamId],
  );
  let last = after;
  for (const row of rows) {
    const position = Number(row.position);
    const streamVersion = Number(row.stream_version);
    const at = { position, streamId: row.stream_id, streamVersion };
    const next = streamId === undefined ? position : streamVersion;
    if (next !== last + 1) {
      return {
        checked: next - after - 1,
        last,
        broken: { ...at, reason: streamId === undefined ? 'position missing' : 'version missing' },
      };
    }
    if (!row.linked)
      return { checked: next - after - 1, last, broken: { ...at, reason: 'previous event of the stream missing' } };
    if (!row.intact) return { checked: next - after - 1, last, broken: { ...at, reason: 'content or hash changed' } };
    last = next;
  }
  return { checked: rows.length, last, broken: null };
}
