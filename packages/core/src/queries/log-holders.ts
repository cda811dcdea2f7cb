/**
 * Who holds the log. An append holds the log lock (a transaction-level advisory lock, see
 * sql/0001_event_store.sql) from drawing positions to its commit; meanwhile other appends
 * wait and readers see the log up to before it. `pg_locks` names the holder and its waiters.
 */
import { logLockSql } from '../db/locks.js';
import type { SqlQueryable } from '../db/sql-client.js';
import type { LogHolder } from '../types.js';

export async function readLogHolders(db: SqlQueryable, schema: string): Promise<LogHolder[]> {
  const rows = await db.query<{
    pid: number;
    xact_start: Date | null;
    open_for_ms: number | string | null;
    state: string | null;
    query: string | null;
    application_name: string | null;
    waiting: number | string | bigint;
  }>(
    `with log_lock as (
       select l.pid, l.granted
         from pg_locks l, (select ${logLockSql(schema)}) as k(class_key, object_key)
        where l.locktype = 'advisory' and l.objsubid = 2
          and l.classid = k.class_key::oid and l.objid = k.object_key::oid
          and l.database = (select oid from pg_database where datname = current_database()))
     select a.pid, a.xact_start, a.state, a.query, a.application_name,
            extract(epoch from (clock_timestamp() - a.xact_start)) * 1000 as open_for_ms,
            (select count(*) from log_lock w where not w.granted) as waiting
       from log_lock h
       join pg_stat_activity a on a.pid = h.pid
      where h.granted`,
  );
  return rows.map((row) => ({
    pid: row.pid,
    transactionStartedAt: row.xact_start,
    openForMs: Math.round(Number(row.open_for_ms ?? 0)),
    state: row.state,
    query: row.query,
    applicationName: row.application_name,
    waiting: Number(row.waiting),
  }));
}
