/** Consumer group membership: heartbeats, and the live members in a stable order. */
import type { SqlQueryable } from '../db/sql-client.js';

/** Renews `member`'s heartbeat, forgets members silent for `timeoutMs`, returns the live ones in order. */
export async function heartbeat(
  db: SqlQueryable,
  schema: string,
  group: string,
  member: string,
  timeoutMs: number,
): Promise<string[]> {
  await db.query(
    `insert into "${schema}".group_members (group_name, member_id) values ($1, $2)
     on conflict (group_name, member_id) do update set heartbeat_at = now()`,
    [group, member],
  );
  await db.query(
    `delete from "${schema}".group_members
      where group_name = $1 and heartbeat_at < now() - make_interval(secs => $2::float8 / 1000)`,
    [group, timeoutMs],
  );
  const rows = await db.query<{ member_id: string }>(
    `select member_id from "${schema}".group_members where group_name = $1 order by member_id`,
    [group],
  );
  return rows.map((row) => row.member_id);
}

export async function leaveGroup(db: SqlQueryable, schema: string, group: string, member: string): Promise<void> {
  await db.query(`delete from "${schema}".group_members where group_name = $1 and member_id = $2`, [group, member]);
}
