/**
 * Where the append coordinator listens (sql/0013_append_coordinator.sql): the holder records
 * itself, the others look it up. See docs/ordering.md, "Appends from many processes".
 */
import { appendCoordinatorKeys } from '../db/locks.js';
import type { SqlQueryable } from '../db/sql-client.js';

/** The coordinator as its row names it. */
export interface CoordinatorRecord {
  address: string;
  token: string;
}

/**
 * Records this session as the coordinator. Run on the session that holds the lease, so that
 * `backend_pid` is the lock holder's.
 */
export async function recordCoordinator(session: SqlQueryable, schema: string, record: CoordinatorRecord) {
  await session.query(
    `insert into "${schema}".append_coordinator (id, address, token, backend_pid, since)
     values (true, $1, $2, pg_backend_pid(), now())
     on conflict (id) do update
        set address = excluded.address, token = excluded.token,
            backend_pid = excluded.backend_pid, since = excluded.since`,
    [record.address, record.token],
  );
}

/**
 * The coordinator, if one holds the lease now: the row counts only while the backend it names
 * holds the lease's advisory lock (int4 keys appear in pg_locks as oids, two-key form).
 */
export async function findCoordinator(db: SqlQueryable, schema: string): Promise<CoordinatorRecord | undefined> {
  const { classKey, objectKey } = appendCoordinatorKeys(schema);
  const [row] = await db.query<CoordinatorRecord>(
    `select c.address, c.token from "${schema}".append_coordinator c
      where exists (select 1 from pg_catalog.pg_locks l
                     where l.locktype = 'advisory' and l.granted and l.pid = c.backend_pid
                       and l.classid = (${classKey})::oid and l.objid = (${objectKey})::oid
                       and l.objsubid = 2)`,
  );
  return row;
}
